"""Composition root of ``python -m pod_ip_manager node-agent``: adapters built once, signals wired, one loop.

SIGTERM/SIGINT stop the loop (assignments stay: the pods still run); SIGHUP asks for a full resync now. Exit 0
after a stop; 2 for configuration (including a status address it cannot listen on); 6 if IMDS cannot tell the
region at start; 1 for a bug.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pod_ip_manager.config import Settings
from pod_ip_manager.ec2 import Ec2, ec2_client
from pod_ip_manager.effects import Effects
from pod_ip_manager.errors import ConfigurationError
from pod_ip_manager.imds import Imds
from pod_ip_manager.netlink import Stopper
from pod_ip_manager.netns import PodNamespaces, Wakeup
from pod_ip_manager.node_agent import AgentOptions, Interrupted, NodeAgent
from pod_ip_manager.retry import RetryPolicy
from pod_ip_manager.status import Status, StatusServer

log = logging.getLogger("pod_ip_manager")


def run_node_agent(settings: Settings) -> int:
    imds = Imds(settings.imds_endpoint, timeout_seconds=settings.imds_timeout_seconds)
    region = settings.region or imds.region()
    policy = RetryPolicy(settings.max_attempts, settings.retry_base_seconds, settings.retry_max_seconds)
    stopper = Stopper()
    resync = Wakeup()

    def sleep(seconds: float) -> None:
        """Backoff sleeps end early on SIGTERM, and abandon the step: stopping is prompt."""
        if stopper.sleep(seconds):
            raise Interrupted

    ec2 = Ec2(ec2_client(region, settings.ec2_endpoint), policy, sleep=sleep)
    status = Status()
    host, port = settings.status_bind
    try:
        server = StatusServer(host, port, status)
    except OSError as error:
        stopper.close()
        resync.close()
        raise ConfigurationError("PIM_STATUS_ADDRESS", f"cannot listen on {settings.status_address}: {error}") from None
    try:
        with _signals(stopper, resync):
            namespaces = PodNamespaces(settings.netns_dir, stopper=stopper, wakeup=resync)
            try:
                server.start()
                log.info(
                    "starting",
                    extra={
                        "mode": settings.mode.value,
                        "region": region,
                        "netns_dir": settings.netns_dir,
                        "inotify": namespaces.inotify,
                        "resync_seconds": settings.resync_seconds,
                        "status_port": server.port,
                        "floating_ips": [str(a) for a in settings.floating_ips],
                    },
                )
                NodeAgent(
                    ec2=ec2,
                    metadata=imds,
                    namespaces=namespaces,
                    effects=Effects(ec2, move_retry=policy, sleep=sleep),
                    status=status,
                    options=AgentOptions(
                        resync_seconds=settings.resync_seconds, floating_ips=frozenset(settings.floating_ips)
                    ),
                    stopped=stopper.is_set,
                    resync_requested=resync,
                ).run()
            finally:
                namespaces.close()
    finally:
        server.close()
        stopper.close()
        resync.close()
    return 0


@contextmanager
def _signals(stopper: Stopper, resync: Wakeup) -> Iterator[None]:
    """SIGTERM/SIGINT set the stopper, SIGHUP asks for a resync (each handler writes one byte to a pipe the loop
    waits on). Only the main thread can install handlers; elsewhere (an embedding test) the caller stops it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {
        signal.SIGTERM: lambda _signum, _frame: stopper.set(),
        signal.SIGINT: lambda _signum, _frame: stopper.set(),
        signal.SIGHUP: lambda _signum, _frame: resync.set(),
    }
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
