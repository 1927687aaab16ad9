"""Static mode in a subnet shared through AWS RAM: the other participants' ENIs hold addresses that none of our
describes shows. EC2 refuses them (InvalidIPAddress.InUse); an execution environment remembers such an address
for a while and treats it as used, so later launches do not walk the same hidden addresses again.

Until the local AWS models a second account, a test-side wrapper around the adapter refuses the hidden
addresses exactly as EC2 would, and no describe lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.errors import IpAddressInUse
from multus_ipam.ports import CreateEni, Eni
from multus_ipam.strategies import HIDDEN_ADDRESS_MEMORY_SECONDS
from tests.handlers.records import deliver_last
from tests.handlers.timing import engine_clock, settle
from tests.handlers.world import World, deliver


class OtherAccount:
    """Holds ``hidden`` addresses of the first Multus subnet; records what our creates asked for there."""

    def __init__(self, world: World, monkeypatch: pytest.MonkeyPatch, hidden: set[str]) -> None:
        self.subnet = world.multus_subnets[0]
        self.hidden = hidden
        self.asked: list[str] = []
        real_create: Callable[[Ec2Adapter, CreateEni], Eni] = Ec2Adapter.create_eni

        def create_eni(adapter: Ec2Adapter, request: CreateEni) -> Eni:
            if request.subnet_id == self.subnet and request.ipv4 is not None:
                self.asked.append(str(request.ipv4))
                if str(request.ipv4) in self.hidden:
                    raise IpAddressInUse("The specified address is already in use.")
            return real_create(adapter, request)

        monkeypatch.setattr(Ec2Adapter, "create_eni", create_eni)


def by_instance_id(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """In instance-id order each launch is first among those still waiting: rank 0, the lowest free address."""
    return sorted(events, key=lambda e: str(e["detail"]["EC2InstanceId"]))


def hosts(*numbers: int) -> list[str]:
    return [f"10.0.4.{n}" for n in numbers]


def test_given_hidden_addresses_when_launches_follow_each_other_then_only_the_first_walks_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = OtherAccount(world, monkeypatch, hidden=set(hosts(4, 5, 6)))
    runtime = world.runtime(clock=engine_clock(world))

    outcomes = [deliver(runtime, event) for event in by_instance_id(world.scale_out(3))]

    assert [o["result"] for o in outcomes] == ["CONTINUE"] * 3
    assert other.asked == hosts(4, 5, 6, 7, 8, 9), "the later launches must not retry the remembered addresses"
    assert [o["enis"][0]["ipv4"] for o in outcomes] == hosts(7, 8, 9)


def test_given_more_hidden_addresses_than_attempts_when_the_next_launch_comes_then_it_starts_past_them(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = OtherAccount(world, monkeypatch, hidden=set(hosts(4, 5, 6, 7)))
    runtime = world.runtime(clock=engine_clock(world), MAX_ADDRESS_ATTEMPTS="3", FAILURE_RESULT="CONTINUE")
    first, second = by_instance_id(world.scale_out(2))

    walked = deliver_last(runtime, first)  # the last attempt: no retry later, it ends (CONTINUE without ENIs)
    outcome = deliver(runtime, second)

    assert "AddressConflictsExhausted" in walked["reason"]
    assert outcome["reason"] is None
    assert outcome["enis"][0]["ipv4"] == "10.0.4.8"
    assert other.asked == hosts(4, 5, 6, 7, 8)


def test_given_a_remembered_address_when_its_memory_expires_then_it_is_tried_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = OtherAccount(world, monkeypatch, hidden=set(hosts(4)))
    clock = engine_clock(world)
    runtime = world.runtime(clock=clock)
    (first,) = world.scale_out(1)
    assert deliver(runtime, first)["enis"][0]["ipv4"] == "10.0.4.5"
    other.hidden.clear()  # the other account's ENI is gone meanwhile

    clock.sleep(HIDDEN_ADDRESS_MEMORY_SECONDS)
    (second,) = world.scale_out(1)
    outcome = deliver(runtime, second)

    assert outcome["enis"][0]["ipv4"] == "10.0.4.4"


def test_given_an_address_refused_because_a_visible_eni_took_it_then_it_is_not_remembered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_create = Ec2Adapter.create_eni
    raced: list[str] = []

    def racing_create(adapter: Ec2Adapter, request: CreateEni) -> Eni:
        if not raced and request.ipv4 is not None:  # another tool claims the address first, visibly
            eni = world.ec2.create_network_interface(SubnetId=request.subnet_id, PrivateIpAddress=str(request.ipv4))
            raced.append(eni["NetworkInterface"]["NetworkInterfaceId"])
        return real_create(adapter, request)

    monkeypatch.setattr(Ec2Adapter, "create_eni", racing_create)
    runtime = world.runtime(clock=engine_clock(world))
    first, second, third = by_instance_id(world.scale_out(3))
    assert deliver(runtime, first)["enis"][0]["ipv4"] == "10.0.4.5"
    settle(world)
    assert deliver(runtime, second)["enis"][0]["ipv4"] == "10.0.4.6"  # its describe shows the other tool's ENI
    world.ec2.delete_network_interface(NetworkInterfaceId=raced[0])  # the other tool lets it go

    outcome = deliver(runtime, third)

    assert outcome["enis"][0]["ipv4"] == "10.0.4.4", "a describe explained the refusal: nothing to remember"
