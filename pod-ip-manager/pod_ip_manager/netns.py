"""The node agent's view of the pods on its node: their network namespaces, and their links and addresses.

Container runtimes keep each pod's network namespace as a file in one directory (containerd on EKS:
``/var/run/netns/cni-<uuid>``). The runtime **creates the file first and bind-mounts the namespace on it a moment
later**, so a file that is not (yet) an ``nsfs`` mount is retried with a short backoff, never read as an empty
namespace. The directory is watched with inotify (through ``ctypes``: ``inotify_init1``/``inotify_add_watch``);
where inotify is unavailable (no libc symbol, or ``fs.inotify.max_user_instances`` exhausted) it is listed again
every ``POLL_SECONDS`` instead. A mount or unmount makes no inotify event, so every full resync (``rescan``) also
checks that each file still holds the namespace we watch.

Each namespace is followed with ``netlink.NetlinkAddresses`` (the sidecar's adapter): its sockets are created by a
thread that entered the namespace with ``setns`` (CAP_SYS_ADMIN) and stay there, and one ``epoll`` covers every
namespace's notification socket, the directory and the stop pipe. A notification from a namespace makes it be
read again whole (a dump of a pod's few links is cheap, and the same path covers ``ENOBUFS``).

The agent's own network namespace (the host's: it runs with ``hostNetwork``) is followed the same way: addresses
the host carries are never unassigned.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import selectors
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from pod_ip_manager.model import PodInterface
from pod_ip_manager.netlink import NetlinkAddresses, Stopper

log = logging.getLogger(__name__)

#: ``ioctl(fd, NS_GET_NSTYPE)`` (Linux >= 4.11) answers the kind of namespace an nsfs file holds; a plain file
#: answers ENOTTY. Unprivileged.
NS_GET_NSTYPE = 0xB703
CLONE_NEWNET = 0x40000000

#: Listing interval when inotify is not available.
POLL_SECONDS = 2.0
#: Backoff for a file that is not a namespace mount yet: 0.05 s doubling up to 5 s (then every 5 s).
MOUNT_RETRY_FIRST_SECONDS = 0.05
MOUNT_RETRY_MAX_SECONDS = 5.0
#: After this many attempts a file that is still no namespace is reported once, with the likely cause.
MOUNT_RETRY_WARN_AFTER = 12

_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_Q_OVERFLOW, _IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
_IN_ONLYDIR = 0x01000000
_DIRECTORY_EVENTS = _IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_DELETE_SELF | _IN_MOVE_SELF
_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


@dataclass(frozen=True, slots=True)
class NsIdentity:
    """Which namespace a file holds: the nsfs device and inode (``ip netns identify`` compares the same)."""

    device: int
    inode: int


def identify(path: str) -> NsIdentity | None:
    """The network namespace mounted at ``path``, or ``None`` while the file is not a network namespace mount.
    Raises ``FileNotFoundError`` when the file is gone."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        try:
            kind = fcntl.ioctl(fd, NS_GET_NSTYPE)
        except OSError as error:
            if error.errno in (errno.ENOTTY, errno.EINVAL):
                return None
            raise
        if kind != CLONE_NEWNET:
            return None
        stat = os.fstat(fd)
        return NsIdentity(stat.st_dev, stat.st_ino)
    finally:
        os.close(fd)


class _Inotify:
    """An inotify instance watching one directory for entries created, deleted or moved."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = int(self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if fd < 0:
            number = ctypes.get_errno()
            raise OSError(number, f"inotify_init1: {os.strerror(number)}")
        self.fd = fd
        self.watching = False

    def watch(self) -> bool:
        """Add the watch on the directory; ``False`` if the directory does not exist (yet)."""
        wd = int(self._libc.inotify_add_watch(self.fd, os.fsencode(self._directory), _DIRECTORY_EVENTS | _IN_ONLYDIR))
        if wd < 0:
            number = ctypes.get_errno()
            if number in (errno.ENOENT, errno.ENOTDIR):
                return False
            raise OSError(number, f"inotify_add_watch {self._directory}: {os.strerror(number)}")
        self.watching = True
        return True

    def drain(self) -> None:
        """Read every pending event (their content does not matter: the directory is listed again); notice when
        the watch itself went away (directory deleted or moved)."""
        while True:
            try:
                data = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            offset = 0
            while offset + _EVENT_HEADER.size <= len(data):
                _wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
                offset += _EVENT_HEADER.size + length
                if mask & (_IN_IGNORED | _IN_DELETE_SELF | _IN_MOVE_SELF):
                    self.watching = False
                if mask & _IN_Q_OVERFLOW:
                    log.info("inotify queue overflowed; listing the namespace directory again")

    def close(self) -> None:
        os.close(self.fd)


class Wakeup:
    """A request (a full resync on SIGHUP) that wakes ``PodNamespaces.wait``: safe to ``set`` from a signal
    handler (one ``os.write``); ``take`` reads and clears it."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._flag = threading.Event()

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        self._flag.set()
        with contextlib.suppress(BlockingIOError):  # the pipe is full: it is readable already
            os.write(self._write, b"x")

    def take(self) -> bool:
        """Whether it was set since the last ``take``; clears it."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass
        fired = self._flag.is_set()
        self._flag.clear()
        return fired

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


@dataclass(frozen=True, slots=True)
class NamespaceChanges:
    """What ``PodNamespaces`` saw since it was last asked."""

    updated: dict[str, tuple[PodInterface, ...]] = field(default_factory=dict)
    """Namespaces that appeared or changed: all their links now."""
    removed: tuple[str, ...] = ()
    """Namespaces that are gone (file deleted, unmounted or replaced)."""
    host: tuple[PodInterface, ...] | None = None
    """The host's links, if they changed."""
    failed: tuple[tuple[str, str], ...] = ()
    """Namespaces whose file is there but could not be read (name, why): retried with backoff. Not gone: what
    their pods carried is unknown, not nothing."""

    def __bool__(self) -> bool:
        return bool(self.updated or self.removed or self.host is not None or self.failed)


class _Source(Enum):
    """What a ready file descriptor is, besides a pod namespace (whose key holds its name)."""

    WAKE = "wake"
    DIRECTORY = "directory"
    HOST = "host"


@dataclass
class _Watched:
    identity: NsIdentity
    addresses: NetlinkAddresses


@dataclass
class _Pending:
    attempts: int
    due: float
    warned: bool = False


class PodNamespaces:
    """The pods' network namespaces in ``directory``, followed over netlink. Not thread-safe: one loop uses it."""

    def __init__(
        self,
        directory: str,
        *,
        stopper: Stopper,
        wakeup: Wakeup | None = None,
        watch_host: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._directory = directory
        self._stopper = stopper
        self._clock = clock
        self._watched: dict[str, _Watched] = {}
        self._pending: dict[str, _Pending] = {}
        self._selector = selectors.DefaultSelector()
        self._selector.register(stopper.fileno(), selectors.EVENT_READ, _Source.WAKE)
        if wakeup is not None:
            self._selector.register(wakeup.fileno(), selectors.EVENT_READ, _Source.WAKE)
        self._inotify = self._start_inotify()
        self._missing_reported = False
        self._next_poll = clock()
        self._host: NetlinkAddresses | None = None
        if watch_host:
            self._host = NetlinkAddresses(stopper=stopper)
            self._selector.register(self._host.fileno(), selectors.EVENT_READ, _Source.HOST)

    @property
    def inotify(self) -> bool:
        return self._inotify is not None

    def watched(self) -> tuple[str, ...]:
        return tuple(sorted(self._watched))

    def host_links(self) -> tuple[PodInterface, ...]:
        return self._host.interfaces() if self._host is not None else ()

    def close(self) -> None:
        for name in list(self._watched):
            self._forget(name)
        if self._host is not None:
            self._host.close()
        if self._inotify is not None:
            self._inotify.close()
        self._selector.close()

    # --- the two ways in ---------------------------------------------------------------------------------

    def rescan(self) -> NamespaceChanges:
        """List the directory, open what is new, drop what is gone or replaced, and read every namespace again
        (a full resync)."""
        self._ensure_watch()
        updated, removed, failed = self._sync_directory(verify=True)
        for name in sorted(set(self._watched) - set(updated)):
            links = self._read(name)
            if isinstance(links, str):
                failed = (*failed, (name, links))
            else:
                updated[name] = links
        return NamespaceChanges(updated, removed, self.host_links(), failed)

    def wait(self, timeout: float | None) -> NamespaceChanges:
        """Block until something changes (a namespace comes or goes, a pod's links or addresses change, a retry
        is due), the stop signal fires or ``timeout`` passes; then say what changed."""
        limit = self._next_due(timeout)
        ready = self._selector.select(limit)
        if self._stopper.is_set():
            return NamespaceChanges()
        directory_changed = False
        changed: set[str] = set()
        host_changed = False
        for key, _ in ready:
            source = key.data
            if source is _Source.DIRECTORY and self._inotify is not None:
                self._inotify.drain()
                directory_changed = True
            elif source is _Source.HOST and self._host is not None:
                host_changed = bool(self._host.wait(0))
            elif isinstance(source, str) and source in self._watched and self._watched[source].addresses.wait(0):
                changed.add(source)
        now = self._clock()
        if (self._inotify is None or not self._inotify.watching) and now >= self._next_poll:
            self._ensure_watch()
            directory_changed = True
            self._next_poll = now + POLL_SECONDS
        due = any(p.due <= now for p in self._pending.values())
        updated: dict[str, tuple[PodInterface, ...]] = {}
        removed: tuple[str, ...] = ()
        failed: tuple[tuple[str, str], ...] = ()
        if directory_changed or due:
            updated, removed, failed = self._sync_directory(verify=directory_changed)
        for name in sorted(changed - set(updated) - set(removed)):
            links = self._read(name)
            if isinstance(links, str):
                failed = (*failed, (name, links))
            else:
                updated[name] = links
        host = self._host.interfaces() if host_changed and self._host is not None else None
        return NamespaceChanges(updated, removed, host, failed)

    # --- the directory -----------------------------------------------------------------------------------

    def _sync_directory(
        self, *, verify: bool
    ) -> tuple[dict[str, tuple[PodInterface, ...]], tuple[str, ...], tuple[tuple[str, str], ...]]:
        names = self._list()
        updated: dict[str, tuple[PodInterface, ...]] = {}
        removed: list[str] = []
        failed: list[tuple[str, str]] = []
        for name in sorted(set(self._watched) - names):
            self._forget(name)
            removed.append(name)
            log.info("namespace gone", extra={"netns": name})
        for name in sorted(set(self._pending) - names):
            del self._pending[name]
        if verify:
            for name in sorted(set(self._watched) & names):
                try:
                    now = identify(self._path(name))
                except FileNotFoundError:
                    now = None
                except OSError as error:  # there, but unreadable now: not gone
                    reason = f"{type(error).__name__}: {error}"
                    self._forget(name)
                    self._retry_later(name, reason, quiet=True)
                    failed.append((name, reason))
                    continue
                if now != self._watched[name].identity:
                    self._forget(name)
                    removed.append(name)
                    log.info("namespace file no longer holds the namespace we watched", extra={"netns": name})
        now_time = self._clock()
        for name in sorted(names - set(self._watched)):
            pending = self._pending.get(name)
            if pending is not None and pending.due > now_time:
                continue
            outcome = self._open(name)
            if isinstance(outcome, tuple):
                updated[name] = outcome
            elif outcome:
                failed.append((name, outcome))
        return updated, tuple(removed), tuple(failed)

    def _open(self, name: str) -> tuple[PodInterface, ...] | str | None:
        """Start following namespace ``name``: its links now; ``None`` if it is not mounted yet or vanished
        (retried or forgotten); a reason string if it cannot be read (retried with backoff)."""
        path = self._path(name)
        try:
            identity = identify(path)
            if identity is None:
                self._retry_later(name, "not a network namespace mount yet")
                return None
            addresses = NetlinkAddresses(stopper=self._stopper, netns=path)
        except FileNotFoundError:
            self._pending.pop(name, None)
            return None
        except OSError as error:
            if error.errno == errno.EINVAL:  # unmounted between the check and setns
                self._retry_later(name, "not a network namespace mount yet")
                return None
            reason = f"{type(error).__name__}: {error}"
            if isinstance(error, PermissionError):
                reason += " (entering a pod's network namespace needs CAP_SYS_ADMIN)"
            self._retry_later(name, reason, quiet=True)
            log.error("cannot read namespace", extra={"netns": name, "error": reason})
            return reason
        try:
            links = addresses.interfaces()
        except OSError as error:
            addresses.close()
            reason = f"{type(error).__name__}: {error}"
            self._retry_later(name, reason, quiet=True)
            log.error("cannot read namespace", extra={"netns": name, "error": reason})
            return reason
        self._pending.pop(name, None)
        self._watched[name] = _Watched(identity, addresses)
        self._selector.register(addresses.fileno(), selectors.EVENT_READ, name)
        log.info("watching namespace", extra={"netns": name, "links": [link.name for link in links]})
        return links

    def _read(self, name: str) -> tuple[PodInterface, ...] | str:
        """The links of a watched namespace now; if netlink fails on it (a dump timing out on a busy node, no file
        descriptor left), the reason: the namespace is closed and opened again with backoff (its file is still
        there: a failure to read is not the pod going away)."""
        try:
            return self._watched[name].addresses.interfaces()
        except OSError as error:
            reason = f"{type(error).__name__}: {error}"
            log.warning("cannot read namespace; opening it again", extra={"netns": name, "error": reason})
            self._forget(name)
            self._retry_later(name, reason, quiet=True)
            return reason

    def _retry_later(self, name: str, reason: str, *, quiet: bool = False) -> None:
        pending = self._pending.get(name) or _Pending(0, 0.0)
        pending.attempts += 1
        delay = min(MOUNT_RETRY_MAX_SECONDS, MOUNT_RETRY_FIRST_SECONDS * 2 ** (pending.attempts - 1))
        pending.due = self._clock() + delay
        self._pending[name] = pending
        if quiet:
            return
        if pending.attempts == 1:
            log.info("namespace file not ready; retrying", extra={"netns": name, "reason": reason})
        elif pending.attempts >= MOUNT_RETRY_WARN_AFTER and not pending.warned:
            pending.warned = True
            log.warning(
                "namespace file is still not a network namespace mount; is the directory mounted with "
                "mountPropagation: HostToContainer?",
                extra={"netns": name, "attempts": pending.attempts, "path": self._path(name)},
            )

    def _forget(self, name: str) -> None:
        watched = self._watched.pop(name)
        self._selector.unregister(watched.addresses.fileno())
        watched.addresses.close()  # our sockets hold the namespace alive: let it go

    def _list(self) -> set[str]:
        try:
            entries = list(os.scandir(self._directory))
        except FileNotFoundError:
            if not self._missing_reported:
                self._missing_reported = True
                log.warning("namespace directory does not exist (yet): no pods", extra={"path": self._directory})
            return set()
        self._missing_reported = False
        return {entry.name for entry in entries if not entry.name.startswith(".") and not entry.is_dir()}

    def _path(self, name: str) -> str:
        return os.path.join(self._directory, name)

    # --- inotify -----------------------------------------------------------------------------------------

    def _start_inotify(self) -> _Inotify | None:
        try:
            inotify = _Inotify(self._directory)
        except (OSError, AttributeError) as error:
            log.warning(
                "inotify unavailable; listing the namespace directory periodically instead",
                extra={"error": str(error), "poll_seconds": POLL_SECONDS},
            )
            return None
        self._selector.register(inotify.fd, selectors.EVENT_READ, _Source.DIRECTORY)
        return inotify

    def _ensure_watch(self) -> None:
        if self._inotify is None or self._inotify.watching:
            return
        try:
            self._inotify.watch()
        except OSError as error:  # e.g. fs.inotify.max_user_watches reached: keep listing periodically
            log.warning("cannot watch the namespace directory; listing it periodically", extra={"error": str(error)})
            self._selector.unregister(self._inotify.fd)
            self._inotify.close()
            self._inotify = None

    def _next_due(self, timeout: float | None) -> float | None:
        dues = [p.due for p in self._pending.values()]
        if self._inotify is None or not self._inotify.watching:
            dues.append(self._next_poll)
        if not dues:
            return timeout
        until = max(0.0, min(dues) - self._clock())
        return until if timeout is None else min(timeout, until)
