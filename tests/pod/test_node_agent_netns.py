"""The node agent's namespace watching on real namespaces: files that are not mounted yet, namespaces coming,
changing and going, the fallback when inotify is unavailable, and the privilege it needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from ipaddress import ip_address

import pytest

from pod_ip_manager import netns
from pod_ip_manager.model import PodInterface
from pod_ip_manager.netlink import Stopper
from pod_ip_manager.netns import NamespaceChanges, PodNamespaces, identify
from tests.pod.node_pods import NodePods, node_pods

__all__ = ["node_pods"]  # the fixture

MAC = "02:00:00:aa:bb:01"


@pytest.fixture
def watching(node_pods: NodePods) -> Iterator[PodNamespaces]:
    stopper = Stopper()
    namespaces = PodNamespaces(str(node_pods.directory), stopper=stopper, watch_host=False)
    try:
        yield namespaces
    finally:
        namespaces.close()
        stopper.close()


def wait_for(namespaces: PodNamespaces, condition: Callable[[NamespaceChanges], bool]) -> NamespaceChanges:
    """Wait on the watcher's own wake-ups (an event, or a retry falling due), a bounded number of times."""
    for _ in range(100):
        changes = namespaces.wait(1.0)
        if condition(changes):
            return changes
    raise AssertionError("the change never came")


def test_given_a_file_not_mounted_yet_then_it_is_retried_and_read_once_mounted(
    node_pods: NodePods, watching: PodNamespaces
) -> None:
    pod = node_pods.add(mounted=False)
    pod.add_multus("net1", MAC)
    pod.add_address("net1", "10.0.4.200/24")
    assert identify(str(pod.file)) is None

    first = watching.rescan()
    assert pod.netns not in first.updated
    assert first.failed == ()  # not an error: a moment in the runtime's sequence
    node_pods.mount(pod)

    changes = wait_for(watching, lambda c: pod.netns in c.updated)
    (net1,) = [link for link in changes.updated[pod.netns] if link.name == "net1"]
    assert (net1.mac, net1.addresses) == (MAC, (ip_address("10.0.4.200"),))


def test_given_a_watched_namespace_when_its_addresses_change_then_it_is_read_again(
    node_pods: NodePods, watching: PodNamespaces
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", MAC)
    assert pod.netns in watching.rescan().updated

    pod.add_address("net1", "10.0.4.201/32")

    changes = wait_for(
        watching, lambda c: any(ip_address("10.0.4.201") in link.addresses for link in c.updated.get(pod.netns, ()))
    )
    assert changes.removed == ()


def test_given_a_watched_namespace_when_the_runtime_removes_it_then_it_is_reported_gone(
    node_pods: NodePods, watching: PodNamespaces
) -> None:
    pod = node_pods.add()
    watching.rescan()
    assert watching.watched() == (pod.netns,)

    node_pods.delete(pod)

    wait_for(watching, lambda c: pod.netns in c.removed)
    assert watching.watched() == ()


def test_given_a_file_unmounted_but_left_in_place_then_the_next_rescan_drops_the_namespace(
    node_pods: NodePods, watching: PodNamespaces
) -> None:
    pod = node_pods.add()
    watching.rescan()
    subprocess.run(["umount", str(pod.file)], check=True)  # noqa: S603, S607 - no inotify event for this

    assert pod.netns in watching.rescan().removed
    assert watching.watched() == ()


def test_given_no_inotify_then_the_directory_is_listed_periodically_and_new_namespaces_are_found(
    node_pods: NodePods, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(_directory: str) -> None:
        raise OSError(24, "inotify_init1: Too many open files")  # fs.inotify.max_user_instances reached

    monkeypatch.setattr(netns, "_Inotify", unavailable)
    stopper = Stopper()
    namespaces = PodNamespaces(str(node_pods.directory), stopper=stopper, watch_host=False)
    try:
        assert namespaces.inotify is False
        namespaces.rescan()
        pod = node_pods.add()
        wait_for(namespaces, lambda c: pod.netns in c.updated)
    finally:
        namespaces.close()
        stopper.close()


def test_given_the_stop_signal_then_wait_returns_at_once_with_nothing(node_pods: NodePods) -> None:
    stopper = Stopper()
    namespaces = PodNamespaces(str(node_pods.directory), stopper=stopper, watch_host=False)
    try:
        stopper.set()
        assert not namespaces.wait(None)  # None: no timeout; only the stop pipe can end it
    finally:
        namespaces.close()
        stopper.close()


_PROBE = """
import sys
from pod_ip_manager.netlink import Stopper
from pod_ip_manager.netns import PodNamespaces
namespaces = PodNamespaces(sys.argv[1], stopper=Stopper(), watch_host=False)
changes = namespaces.rescan()
print(sorted(changes.updated), [why for _, why in changes.failed])
"""


@pytest.mark.parametrize(
    ("capabilities", "extra", "readable"),
    [
        ("-all,+sys_admin", [], True),
        ("-all,+sys_admin", ["--no-new-privs"], True),  # allowPrivilegeEscalation: false
        ("-all", [], False),
        ("-all,+net_admin", [], False),
    ],
    ids=["sys_admin", "sys_admin-no_new_privs", "none", "net_admin"],
)
def test_entering_a_pods_namespace_needs_cap_sys_admin_and_nothing_else(
    node_pods: NodePods, capabilities: str, extra: list[str], readable: bool
) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    pod = node_pods.add()
    command = ["setpriv", *extra, "--inh-caps=-all", f"--bounding-set={capabilities}", sys.executable, "-c", _PROBE]
    result = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [*command, str(node_pods.directory)], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    if readable:
        assert result.stdout.startswith(f"['{pod.netns}'] []")
    else:
        assert result.stdout.startswith("[] [")
        assert "needs CAP_SYS_ADMIN" in result.stdout


def test_given_a_watched_namespace_whose_read_fails_then_it_is_not_gone_and_is_opened_again_without_a_resync(
    node_pods: NodePods, watching: PodNamespaces
) -> None:
    """Given a pod's namespace whose netlink dump fails once (a timeout on a busy node, no file descriptor
    left), when the watcher reads it, then it reports the namespace as failed, never as removed (its file is
    there: the pod runs), and opens it again on its own backoff, with no full resync."""
    pod = node_pods.add()
    pod.add_multus("net1", MAC)
    pod.add_address("net1", "10.0.4.200/24")
    assert pod.netns in watching.rescan().updated
    addresses = watching._watched[pod.netns].addresses  # the failure is injected into its socket
    read = addresses.interfaces
    failures = iter([TimeoutError("netlink dump timed out")])

    def flaky() -> tuple[PodInterface, ...]:
        for failure in failures:
            raise failure
        return read()

    addresses.interfaces = flaky  # type: ignore[method-assign]
    pod.add_address("net1", "10.0.4.201/32")  # a change in the pod: the watcher reads it again

    failed = wait_for(watching, lambda c: bool(c.failed or c.removed))
    assert failed.removed == ()
    assert [name for name, _ in failed.failed] == [pod.netns]
    again = wait_for(watching, lambda c: pod.netns in c.updated)
    (net1,) = [link for link in again.updated[pod.netns] if link.name == "net1"]
    assert set(net1.addresses) == {ip_address("10.0.4.200"), ip_address("10.0.4.201")}
