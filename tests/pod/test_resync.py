"""Missed netlink notifications (ENOBUFS): the sidecar re-reads the pod's interfaces and reconciles."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from ipaddress import ip_address

import pytest

from localaws.imds import LocalImds
from pod_ip_manager.ec2 import Ec2, ec2_client
from pod_ip_manager.imds import Imds
from pod_ip_manager.model import AddressEvent, EventKind
from pod_ip_manager.netlink import NetlinkAddresses, Stopper
from pod_ip_manager.retry import RetryPolicy
from pod_ip_manager.service import Options, PodIpManager
from tests.pod.conftest import REGION, PodNetns, World

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


@pytest.fixture
def watcher(pod_netns: PodNetns) -> Iterator[NetlinkAddresses]:
    stopper = Stopper()
    try:
        with NetlinkAddresses(stopper=stopper, netns=pod_netns.name) as addresses:
            yield addresses
    finally:
        stopper.close()


def _manager(
    world: World, imds: LocalImds, pod: NetlinkAddresses, floating: frozenset[str] = frozenset()
) -> PodIpManager:
    return PodIpManager(
        ec2=Ec2(ec2_client(REGION), RetryPolicy(2, 0.001, 0.002)),
        metadata=Imds(imds.endpoint, timeout_seconds=2),
        pod=pod,
        options=Options(
            primary_interface="eth0",
            expected_names=("net1",),
            expected_count=1,
            wait_seconds=5,
            confirm_seconds=2,
            floating_ips=frozenset(ip_address(a) for a in floating),
        ),
    )


def test_given_a_tiny_receive_buffer_when_notifications_overflow_then_wait_reports_a_resync_event(
    pod_netns: PodNetns, watcher: NetlinkAddresses
) -> None:
    pod_netns.add_multus("net1", "02:00:00:aa:bb:01")
    watcher._events.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1)  # the kernel's minimum: a few messages
    batch = "".join(f"addr add 10.0.4.{host}/32 dev net1\n" for host in range(10, 110))
    subprocess.run(["ip", "-n", pod_netns.name, "-batch", "-"], input=batch, text=True, check=True)  # noqa: S603, S607

    assert AddressEvent(EventKind.LINK, 0) in watcher.wait(5.0)


def test_given_missed_notifications_when_resyncing_then_new_addresses_are_assigned_and_vanished_unassigned(
    world: World, imds: LocalImds, pod_netns: PodNetns, watcher: NetlinkAddresses
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.add_address("net1", "10.0.4.201/32")
    pod_netns.add_address("net1", "10.0.4.250/32")
    manager = _manager(world, imds, watcher, floating=frozenset({"10.0.4.250"}))
    manager.sync(manager.wait_for_interfaces())
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201", "10.0.4.250"}
    # changes whose notifications the kernel dropped (ENOBUFS): we never hand them to the manager
    pod_netns.del_address("net1", "10.0.4.201/32")
    pod_netns.del_address("net1", "10.0.4.250/32")
    pod_netns.add_address("net1", "10.0.4.202/32")

    manager.handle([AddressEvent(EventKind.LINK, 0)])

    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.202", "10.0.4.250"}  # the VIP is floating
    assert {str(a) for a in manager.owned} == {"10.0.4.200", "10.0.4.202"}
