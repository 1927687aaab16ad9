"""Address discovery on real Linux interfaces: a network namespace with a veth eth0 and macvlan Multus links."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address

import pytest

from pod_ip_manager.model import AddressEvent, EventKind
from pod_ip_manager.netlink import NetlinkAddresses, Stopper
from tests.pod.conftest import PodNetns

MAC = "02:00:00:aa:bb:01"


@pytest.fixture
def watcher(pod_netns: PodNetns) -> Iterator[tuple[NetlinkAddresses, Stopper]]:
    stopper = Stopper()
    try:
        with NetlinkAddresses(stopper=stopper, netns=pod_netns.name) as addresses:
            yield addresses, stopper
    finally:
        stopper.close()


def _collect_on(addresses: NetlinkAddresses, index: int, wanted: int) -> list[AddressEvent]:
    """Address events of one interface until ``wanted`` of them arrived (each wait is bounded)."""
    events: list[AddressEvent] = []
    for _ in range(50):
        events += [e for e in addresses.wait(5.0) if e.kind is not EventKind.LINK and e.index == index]
        if len(events) >= wanted:
            return events
    raise AssertionError(f"only {events}")


def test_given_a_macvlan_with_addresses_when_listing_then_name_mac_and_usable_addresses_are_seen(
    pod_netns: PodNetns, watcher: tuple[NetlinkAddresses, Stopper]
) -> None:
    pod_netns.add_multus("net1", MAC)
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.add_address("net1", "2600:1f14::200/64")
    addresses, _ = watcher
    by_name = {i.name: i for i in addresses.interfaces()}
    assert by_name["net1"].mac == MAC
    assert IPv4Address("10.0.4.200") in by_name["net1"].addresses
    assert IPv6Address("2600:1f14::200") in by_name["net1"].addresses
    assert by_name["eth0"].addresses == (IPv4Address("192.168.77.10"),)


def test_given_a_subscription_when_an_address_is_added_and_removed_then_both_notifications_arrive(
    pod_netns: PodNetns, watcher: tuple[NetlinkAddresses, Stopper]
) -> None:
    pod_netns.add_multus("net1", MAC)
    addresses, _ = watcher
    index = next(i.index for i in addresses.interfaces() if i.name == "net1")
    pod_netns.add_address("net1", "10.0.4.201/32")
    pod_netns.del_address("net1", "10.0.4.201/32")
    # The kernel's own link-local addresses on the other links (eth0, uplink) may be announced meanwhile.
    events = _collect_on(addresses, index, 2)
    assert events[:2] == [
        AddressEvent(EventKind.ADDED, index, IPv4Address("10.0.4.201")),
        AddressEvent(EventKind.REMOVED, index, IPv4Address("10.0.4.201")),
    ]


def test_given_an_ipv6_address_in_duplicate_address_detection_then_it_is_not_usable_yet(
    pod_netns: PodNetns, watcher: tuple[NetlinkAddresses, Stopper]
) -> None:
    pod_netns.add_multus("net1", MAC)
    pod_netns.run("link", "set", "net1", "down")  # DAD cannot finish on a down link: it stays tentative
    pod_netns.run("addr", "add", "2600:1f14::300/64", "dev", "net1")
    addresses, _ = watcher
    net1 = next(i for i in addresses.interfaces() if i.name == "net1")
    assert IPv6Address("2600:1f14::300") not in net1.addresses
    assert IPv6Address("2600:1f14::300") in net1.tentative  # reported, so init waits for it


def test_given_a_waiting_watcher_when_the_stopper_fires_from_another_thread_then_wait_returns(
    watcher: tuple[NetlinkAddresses, Stopper],
) -> None:
    addresses, stopper = watcher
    threading.Timer(0.05, stopper.set).start()
    assert addresses.wait(30.0) == ()
    assert stopper.is_set()


def test_given_no_change_when_waiting_with_a_bound_then_wait_returns_empty(
    watcher: tuple[NetlinkAddresses, Stopper],
) -> None:
    addresses, _ = watcher
    assert addresses.wait(0.05) == ()
