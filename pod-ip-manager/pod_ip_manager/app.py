"""Composition root and command line: ``python -m pod_ip_manager init|sidecar|node-agent`` (the node agent's
own composition is ``agent_app``).

Settings are read once; adapters are built once here (never at import time); then one run. The exit status
tells what happened: 0 done (or stopped cleanly), 2 configuration, 3 interfaces missing, 4 address not
mappable to an ENI, 5 AWS error, 6 IMDS error, 7 assignment not visible in time, 8 address held by a primary
or untagged ENI (refused), 1 anything unexpected.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import assert_never

from pod_ip_manager import logs
from pod_ip_manager.agent_app import run_node_agent
from pod_ip_manager.config import EniLookup, Mode, Settings, load_settings
from pod_ip_manager.ec2 import Ec2, ec2_client
from pod_ip_manager.eni_lookup import Ec2EniLookup
from pod_ip_manager.errors import ConfigurationError, PodIpManagerError, Stopped
from pod_ip_manager.imds import Imds
from pod_ip_manager.netlink import NetlinkAddresses, Stopper
from pod_ip_manager.planning import multus_interfaces
from pod_ip_manager.ports import InstanceMetadata
from pod_ip_manager.retry import RetryPolicy
from pod_ip_manager.service import CONFIRM_INTERVAL_EC2_SECONDS, CONFIRM_INTERVAL_SECONDS, Options, PodIpManager

log = logging.getLogger("pod_ip_manager")

USAGE = "usage: python -m pod_ip_manager [init|sidecar|node-agent]   (or set PIM_MODE; see README for the variables)"


def main(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None, *, out: logs.Writable | None = None
) -> int:
    """Run once and return the exit status. ``env`` defaults to ``os.environ``, ``out`` (the log stream) to
    stdout; tests pass their own."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    environment = os.environ if env is None else env
    if arguments and arguments[0] in ("-h", "--help"):
        print(USAGE, file=out or sys.stdout)
        return 0
    handler = logs.configure("INFO", out)
    try:
        if len(arguments) > 1:
            raise ConfigurationError("arguments", f"expected at most one (the mode), got {arguments}", USAGE)
        settings = load_settings(environment, arguments[0] if arguments else None)
        log.setLevel(settings.log_level.value)
        return run(settings)
    except PodIpManagerError as error:
        level = logging.INFO if error.exit_code == 0 else logging.ERROR
        log.log(level, str(error), extra={"error": type(error).__name__, "exit_code": error.exit_code})
        return error.exit_code
    except Exception:
        log.exception("unexpected failure", extra={"exit_code": 1})
        return 1
    finally:
        logs.unconfigure(handler)


def run(settings: Settings) -> int:
    if settings.mode is Mode.NODE_AGENT:
        return run_node_agent(settings)
    ready = ReadyFile(settings.ready_file)
    ready.clear()  # an emptyDir outlives a restarted container: a stale file would pass the startupProbe at once
    imds = Imds(settings.imds_endpoint, timeout_seconds=settings.imds_timeout_seconds)
    region = settings.region or imds.region()  # PIM_ENI_LOOKUP=ec2 requires the region: IMDS is never asked
    policy = RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
    client = ec2_client(region, settings.ec2_endpoint)
    ec2 = Ec2(client, policy)
    stopper = Stopper()
    try:
        with _stop_on_signals(stopper, settings.mode), NetlinkAddresses(stopper=stopper, netns=settings.netns) as pod:
            metadata: InstanceMetadata = imds
            if settings.eni_lookup is EniLookup.EC2:
                metadata = Ec2EniLookup(client, policy, region=region, macs=lambda: _multus_macs(settings, pod))
            manager = PodIpManager(
                ec2=ec2,
                metadata=metadata,
                pod=pod,
                options=Options(
                    primary_interface=settings.primary_interface,
                    expected_names=settings.interfaces,
                    expected_count=settings.expected_count,
                    wait_seconds=settings.wait_seconds,
                    confirm_seconds=settings.confirm_seconds,
                    floating_ips=frozenset(settings.floating_ips),
                    move_retry=policy,
                    skip_unroutable=settings.mode is Mode.SIDECAR,
                    confirm_interval_seconds=(
                        CONFIRM_INTERVAL_EC2_SECONDS
                        if settings.eni_lookup is EniLookup.EC2
                        else CONFIRM_INTERVAL_SECONDS
                    ),
                ),
                stopped=stopper.is_set,
            )
            log.info(
                "starting",
                extra={
                    "mode": settings.mode.value,
                    "region": region,
                    "netns": settings.netns,
                    "eni_lookup": settings.eni_lookup.value,
                    "ec2_endpoint": settings.ec2_endpoint,
                },
            )
            match settings.mode:
                case Mode.INIT:
                    bindings = manager.sync(manager.wait_for_interfaces())
                    ready.mark()
                    log.info("done", extra={"addresses": [str(b.address) for b in bindings]})
                    return 0
                case Mode.SIDECAR:
                    return _sidecar(manager, pod, stopper, ready, release=settings.release_on_exit)
                case _:
                    assert_never(settings.mode)
    finally:
        stopper.close()


def _multus_macs(settings: Settings, pod: NetlinkAddresses) -> list[str]:
    """The MACs of the pod's Multus interfaces that have addresses: with ipvlan, their master ENIs'
    (``PIM_ENI_LOOKUP=ec2``)."""
    interfaces = multus_interfaces(pod.interfaces(), settings.primary_interface, settings.interfaces)
    return [interface.mac for interface in interfaces if interface.addresses or interface.tentative]


def _sidecar(manager: PodIpManager, pod: NetlinkAddresses, stopper: Stopper, ready: ReadyFile, *, release: bool) -> int:
    try:
        manager.sync(manager.wait_for_interfaces())
    except Stopped:
        log.info("stopped before the interfaces were ready; nothing to release")
        return 0
    ready.mark()
    log.info("following address changes", extra={"owned": [str(a) for a in manager.owned]})
    while not stopper.is_set():
        manager.handle(pod.wait(None))
    if release:
        log.info("stopping: releasing what this pod assigned", extra={"owned": [str(a) for a in manager.owned]})
        manager.release()
    else:
        log.info("stopping: PIM_RELEASE_ON_EXIT=false, addresses stay assigned")
    return 0


class ReadyFile:
    """``PIM_READY_FILE``: absent until the first assignment is confirmed, then present (a startupProbe checks
    it, so a native sidecar holds the app back until its addresses are routable)."""

    def __init__(self, path: str | None) -> None:
        self._path = Path(path) if path else None

    def clear(self) -> None:
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def mark(self) -> None:
        if self._path is not None:
            self._path.write_text("ready\n")
            log.info("ready file written", extra={"path": str(self._path)})


@contextmanager
def _stop_on_signals(stopper: Stopper, mode: Mode) -> Iterator[None]:
    """In sidecar mode, SIGTERM/SIGINT set the stopper (the handler only writes one byte to a pipe).
    Init mode keeps the default: a terminated init container has nothing to clean up."""
    if mode is not Mode.SIDECAR or threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.signal(sig, lambda _signum, _frame: stopper.set()) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
