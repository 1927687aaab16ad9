"""Netlink adapter (pyroute2): the pod's links and addresses, and notifications when they change.

Two plain ``NETLINK_ROUTE`` sockets, with pyroute2 encoding the requests and parsing every message: one
answers ``RTM_GETLINK``/``RTM_GETADDR`` dumps, the other is subscribed to the link and IPv4/IPv6 address
groups. The subscribed one is a real file descriptor we ``select`` on together with the stop pipe, so the
sidecar sleeps in the kernel until something happens (no polling); it is opened before the first dump, so no
change falls between the two. (pyroute2's ``IPRoute`` reads notifications through an asyncio transport that
drains the socket into its own queue, which defeats ``select``; its netns support forks.)

For a named network namespace (tests, debugging from the host), both sockets are created by a short-lived
thread that entered the namespace with ``setns``: a socket stays in the namespace it was created in.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from ipaddress import ip_address
from types import TracebackType
from typing import Protocol

from pyroute2.netlink import NETLINK_ROUTE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR
from pyroute2.netlink.rtnl import (
    RTM_GETADDR,
    RTM_GETLINK,
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_LINK,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from pod_ip_manager.model import AddressEvent, EventKind, IPAddress, PodInterface

#: ifaddrmsg flags: an IPv6 address that has not passed (or failed) duplicate address detection is not usable.
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
_NOT_READY = IFA_F_DADFAILED | IFA_F_TENTATIVE
_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR
_RECV_SIZE = 1 << 16
_DUMP_TIMEOUT_SECONDS = 5.0
NETNS_DIR = "/run/netns"


class Stopper:
    """A stop flag that also wakes a ``select``: safe to ``set`` from a signal handler (one ``os.write``)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._flag = threading.Event()

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        self._flag.set()
        with contextlib.suppress(BlockingIOError):  # the pipe is full: it is readable already
            os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self._flag.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if the stop signal fires; returns whether it fired."""
        return self._flag.wait(seconds)

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class NetlinkAddresses:
    """``PodAddresses`` for the current network namespace, or the named one (``ip netns``) if given."""

    def __init__(self, *, stopper: Stopper, netns: str | None = None) -> None:
        self._stopper = stopper
        self._marshal = MarshalRtnl()
        self._sequence = 0
        self._events, self._dumps = _sockets(netns)
        try:
            self._events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._events.bind((0, _GROUPS))
            self._events.setblocking(False)
            self._dumps.bind((0, 0))
            self._dumps.settimeout(_DUMP_TIMEOUT_SECONDS)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> NetlinkAddresses:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._events.close()
        self._dumps.close()

    def fileno(self) -> int:
        """The notification socket, for a caller that ``select``s on many namespaces (the node agent); then
        ``wait(0)`` reads what arrived without blocking."""
        return self._events.fileno()

    # --- the port ----------------------------------------------------------------------------------------

    def interfaces(self) -> tuple[PodInterface, ...]:
        addresses: dict[int, list[IPAddress]] = {}
        tentative: dict[int, list[IPAddress]] = {}
        for message in self._dump(ifaddrmsg(), RTM_GETADDR):
            address = _address(message)
            if address is not None:
                ready = _ready_address(message) is not None
                (addresses if ready else tentative).setdefault(int(str(message["index"])), []).append(address)
        return tuple(
            PodInterface(
                name=str(link.get_attr("IFLA_IFNAME")),
                index=int(str(link["index"])),
                mac=str(link.get_attr("IFLA_ADDRESS") or "").lower(),
                addresses=tuple(addresses.get(int(str(link["index"])), ())),
                tentative=tuple(tentative.get(int(str(link["index"])), ())),
            )
            for link in self._dump(ifinfmsg(), RTM_GETLINK)
        )

    def wait(self, timeout: float | None) -> tuple[AddressEvent, ...]:
        if self._stopper.is_set():
            return ()
        events = self._events.fileno()
        readable, _, _ = select.select([events, self._stopper.fileno()], [], [], timeout)
        if events not in readable:
            return ()
        return tuple(self._drain())

    # --- dumps and notifications -------------------------------------------------------------------------

    def _dump(self, request: ifinfmsg | ifaddrmsg, kind: int) -> list[_Message]:
        self._sequence += 1
        request["header"]["type"] = kind
        request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        request["header"]["sequence_number"] = self._sequence
        request["family"] = socket.AF_UNSPEC
        request.encode()
        self._dumps.send(request.data)
        messages: list[_Message] = []
        while True:
            for message in self._marshal.parse(self._dumps.recv(_RECV_SIZE)):
                if message["header"]["sequence_number"] != self._sequence:
                    continue
                kind_seen = message["header"]["type"]
                if kind_seen == NLMSG_DONE:
                    return messages
                if kind_seen == NLMSG_ERROR:
                    raise OSError(f"netlink dump failed: {message['header'].get('error')}")
                messages.append(message)

    def _drain(self) -> list[AddressEvent]:
        events: list[AddressEvent] = []
        while True:
            try:
                data = self._events.recv(_RECV_SIZE)
            except BlockingIOError:
                return events
            except OSError as error:
                if error.errno == errno.ENOBUFS:  # the kernel dropped notifications: make the caller resync
                    events.append(AddressEvent(EventKind.LINK, 0))
                    continue
                raise
            events.extend(_event(message) for message in self._marshal.parse(data))


class _Message(Protocol):
    """The part of pyroute2's ``nlmsg`` we read."""

    def get_attr(self, name: str) -> object: ...

    def get(self, key: str) -> object: ...

    def __getitem__(self, key: str) -> object: ...


def _address(message: _Message) -> IPAddress | None:
    # IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS otherwise.
    text = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
    return ip_address(str(text)) if text else None


def _sockets(netns: str | None) -> tuple[socket.socket, socket.socket]:
    """Two NETLINK_ROUTE sockets in the current network namespace, or in ``netns`` (by name)."""

    def make() -> tuple[socket.socket, socket.socket]:
        return (
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE),
            socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE),
        )

    if netns is None:
        return make()
    made: list[tuple[socket.socket, socket.socket]] = []
    failure: list[BaseException] = []

    def enter_and_make() -> None:  # runs in its own thread: setns changes only the calling thread
        try:
            fd = os.open(os.path.join(NETNS_DIR, netns), os.O_RDONLY)
            try:
                os.setns(fd, os.CLONE_NEWNET)
            finally:
                os.close(fd)
            made.append(make())
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread below
            failure.append(error)

    thread = threading.Thread(target=enter_and_make, name=f"netns-{netns}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return made[0]


def _ready_address(message: _Message) -> IPAddress | None:
    flags = message.get_attr("IFA_FLAGS")
    if flags is None:
        flags = message["flags"]
    if int(str(flags)) & _NOT_READY:
        return None
    return _address(message)


def _event(message: _Message) -> AddressEvent:
    kind = message.get("event")
    index = int(str(message["index"]))
    address = _ready_address(message) if kind == "RTM_NEWADDR" else _address(message)
    if kind == "RTM_NEWADDR" and address is not None:
        return AddressEvent(EventKind.ADDED, index, address)
    if kind == "RTM_DELADDR" and address is not None:
        return AddressEvent(EventKind.REMOVED, index, address)
    return AddressEvent(EventKind.LINK, index)
