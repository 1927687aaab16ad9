"""Addresses refused as in use that no describe shows (ENIs of another account in a RAM-shared subnet)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address

from multus_ipam.strategies import HIDDEN_ADDRESS_MEMORY_SECONDS, RECENT_REFUSAL_SECONDS, HiddenAddresses

SUBNET = "subnet-0aaaaaaaaaaaaaaaa"
OTHER = "subnet-0bbbbbbbbbbbbbbbb"
A4 = IPv4Address("10.0.4.4")
A5 = IPv4Address("10.0.4.5")


class ManualClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def test_given_a_refused_address_no_describe_shows_then_it_is_remembered_for_its_subnet_only() -> None:
    memory = HiddenAddresses(ManualClock())
    memory.refused(SUBNET, [A4])
    assert memory.hidden(SUBNET, shown=frozenset()).addresses == {A4}
    assert memory.hidden(OTHER, shown=frozenset()).addresses == frozenset()


def test_given_a_refused_address_a_describe_then_shows_then_it_is_forgotten() -> None:
    memory = HiddenAddresses(ManualClock())
    memory.refused(SUBNET, [A4, A5])
    assert memory.hidden(SUBNET, shown=frozenset({A4})).addresses == {A5}
    remembered = memory.hidden(SUBNET, shown=frozenset())
    assert remembered.addresses == {A5}, "A4 was a concurrent claim, covered by describes from now on"


def test_given_a_remembered_address_when_its_time_is_up_then_it_is_tried_again() -> None:
    clock = ManualClock()
    memory = HiddenAddresses(clock)
    memory.refused(SUBNET, [A4])
    clock.sleep(HIDDEN_ADDRESS_MEMORY_SECONDS - 1)
    assert memory.hidden(SUBNET, shown=frozenset()).addresses == {A4}
    clock.sleep(1)
    assert memory.hidden(SUBNET, shown=frozenset()).addresses == frozenset()


def test_given_a_remembered_address_refused_again_then_its_memory_starts_over() -> None:
    clock = ManualClock()
    memory = HiddenAddresses(clock)
    memory.refused(SUBNET, [A4])
    clock.sleep(HIDDEN_ADDRESS_MEMORY_SECONDS - 1)
    memory.refused(SUBNET, [A4])
    clock.sleep(HIDDEN_ADDRESS_MEMORY_SECONDS - 1)
    assert memory.hidden(SUBNET, shown=frozenset()).addresses == {A4}


def test_given_a_refusal_when_it_is_recent_then_it_may_still_be_a_concurrent_claim_not_shown_yet() -> None:
    clock = ManualClock()
    memory = HiddenAddresses(clock)
    memory.refused(SUBNET, [A4])
    assert memory.hidden(SUBNET, shown=frozenset()).recent == {A4}
    clock.sleep(RECENT_REFUSAL_SECONDS)
    remembered = memory.hidden(SUBNET, shown=frozenset())
    assert remembered.recent == frozenset(), "still not shown after that long: an ENI we cannot see"
    assert remembered.addresses == {A4}
