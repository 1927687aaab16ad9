"""Pods on a node, as the node agent sees them: network namespaces bind-mounted as files in one directory (the
way containerd keeps ``/var/run/netns/cni-<uuid>``), here a temporary directory; and the agent run in-process.

Each pod is an ``ip netns`` namespace (the ``PodNetns`` of the sidecar tests: ``eth0`` on a veth, macvlan
Multus links carrying the emulated ENIs' MACs) whose ``/run/netns`` file is bind-mounted onto ``cni-<uuid>`` in
the directory; ``add(mounted=False)`` leaves the file empty (the runtime's first step) until ``mount``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localaws.imds import LocalImds
from pod_ip_manager.app import main
from tests.pod.conftest import REGION, Finished, LogStream, PodNetns, World, ip, netns_refusal

_names = itertools.count()


@dataclass
class NodePod(PodNetns):
    """A pod: its ``ip netns`` name (for ``ip -n``) and its file in the node's namespace directory."""

    file: Path = Path("/nonexistent")

    @property
    def netns(self) -> str:
        """The name the agent knows it by (the file's), as in its logs."""
        return self.file.name


class NodePods:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._pods: list[NodePod] = []

    def add(self, *, mounted: bool = True) -> NodePod:
        name = f"pimn-{os.getpid()}-{next(_names)}"
        ip("netns", "add", name)
        pod = NodePod(name, file=self.directory / f"cni-{uuid.uuid4()}")
        self._pods.append(pod)
        pod.run("link", "set", "lo", "up")
        pod.run("link", "add", "eth0", "type", "veth", "peer", "name", "uplink")
        for link in ("eth0", "uplink"):
            pod.run("link", "set", link, "up")
        pod.file.touch()
        if mounted:
            self.mount(pod)
        return pod

    def mount(self, pod: NodePod) -> None:
        _run("mount", "--bind", f"/run/netns/{pod.name}", str(pod.file))

    def delete(self, pod: NodePod) -> None:
        """What the runtime does when the pod goes: unmount, remove the file; the namespace then dies."""
        _run("umount", str(pod.file), check=False)
        pod.file.unlink(missing_ok=True)
        ip("netns", "del", pod.name, check=False)
        self._pods.remove(pod)

    def cleanup(self) -> None:
        for pod in list(self._pods):
            self.delete(pod)


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)  # noqa: S603


def _mount_refusal(directory: Path) -> str | None:
    probe = directory / ".probe"
    probe.touch()
    try:
        result = _run("mount", "--bind", "/proc/self/ns/net", str(probe), check=False)
        if result.returncode != 0:
            return f"cannot bind-mount a network namespace onto a file here: {result.stderr.strip()}"
        _run("umount", str(probe), check=False)
        return None
    finally:
        probe.unlink(missing_ok=True)


@pytest.fixture
def node_pods(tmp_path: Path) -> Iterator[NodePods]:
    refusal = netns_refusal()
    directory = tmp_path / "netns"
    directory.mkdir()
    refusal = refusal or _mount_refusal(directory)
    if refusal:
        pytest.skip(refusal)
    pods = NodePods(directory)
    try:
        yield pods
    finally:
        pods.cleanup()


# --- running the agent in-process ------------------------------------------------------------------------------


def agent_env(world: World, imds: LocalImds, pods: NodePods, **overrides: str) -> dict[str, str]:
    env = {
        "PIM_REGION": REGION,
        "PIM_IMDS_ENDPOINT": imds.endpoint,
        "PIM_NETNS_DIR": str(pods.directory),
        "PIM_STATUS_ADDRESS": "127.0.0.1:0",
        "PIM_RESYNC_SECONDS": "3600",  # tests ask for resyncs (SIGHUP): none comes on its own
        "PIM_RETRY_BASE_SECONDS": "0.001",
        "PIM_RETRY_MAX_SECONDS": "0.002",
        "PIM_LOG_LEVEL": "DEBUG",
    }
    env.update(overrides)
    return env


@dataclass
class Agent:
    """The running agent, seen from the test's driver thread."""

    log: LogStream

    def resync(self) -> dict[str, Any]:
        """Ask for a full resync (SIGHUP) and wait for its ``resynced`` line."""
        done = [r["number"] for r in self.log.records() if r["message"] == "resynced"]
        os.kill(os.getpid(), signal.SIGHUP)
        return self.log.wait_for(lambda r: r["message"] == "resynced" and r["number"] > max(done, default=0))

    def wait(self, message: str, **fields: object) -> dict[str, Any]:
        return self.log.wait_for(lambda r: r["message"] == message and all(r.get(k) == v for k, v in fields.items()))

    def get(self, path: str) -> tuple[int, str]:
        port = self.wait("starting")["status_port"]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, ""

    def metric(self, sample: str) -> float:
        """The value of one sample of ``/metrics`` (``name`` or ``name{labels}``), 0 when absent."""
        _, text = self.get("/metrics")
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def run_agent(env: dict[str, str], script: Callable[[Agent], None], *, after: str = "resynced") -> Finished:
    """``python -m pod_ip_manager node-agent`` in-process, in the main thread (where signal handlers run).

    ``script`` runs in a driver thread once the agent logged ``after`` (by default: the first full resync is
    done); then the driver sends a real SIGTERM.
    Handlers of our own are in place around the run, so a SIGTERM or SIGHUP that arrives outside the agent's
    own handlers cannot kill the test worker."""
    log = LogStream()
    failures: list[BaseException] = []
    finished = threading.Event()

    def drive() -> None:
        try:
            log.wait_for(lambda r: r["message"] == after)
            script(Agent(log))
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(error)
        finally:
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    previous = {sig: signal.signal(sig, lambda _signum, _frame: None) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        driver = threading.Thread(target=drive)
        driver.start()
        code = main(["node-agent"], env, out=log)
        finished.set()
        driver.join(60)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failures:
        raise failures[0]
    return Finished(code, log)
