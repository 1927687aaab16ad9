"""Which detached ENIs of ours the orphan sweep deletes (pure decision)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from multus_ipam.orphans import orphan_reason
from multus_ipam.settings import CREATED_AT_TAG, INSTANCE_TAG

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
MIN_AGE = timedelta(minutes=10)


def tags(age: timedelta | None) -> dict[str, str]:
    found = {INSTANCE_TAG: "i-0123456789abcdef0"}
    if age is not None:
        found[CREATED_AT_TAG] = (NOW - age).strftime("%Y-%m-%dT%H:%M:%SZ")
    return found


@pytest.mark.parametrize("state", ["shutting-down", "terminated"])
@pytest.mark.parametrize("age", [None, timedelta(seconds=5), timedelta(hours=2)])
def test_given_an_instance_shown_as_gone_then_its_eni_is_an_orphan_at_any_age(
    state: str, age: timedelta | None
) -> None:
    reason = orphan_reason(tags(age), state, now=NOW, min_age=MIN_AGE)
    assert reason == f"its instance i-0123456789abcdef0 is {state}"


@pytest.mark.parametrize("state", ["pending", "running", "stopping", "stopped"])
def test_given_a_live_instance_then_its_eni_is_kept_however_old(state: str) -> None:
    assert orphan_reason(tags(timedelta(days=3)), state, now=NOW, min_age=MIN_AGE) is None


def test_given_an_instance_not_shown_and_an_eni_younger_than_the_cooldown_then_it_is_kept() -> None:
    assert orphan_reason(tags(MIN_AGE - timedelta(seconds=1)), None, now=NOW, min_age=MIN_AGE) is None


def test_given_an_instance_not_shown_and_an_eni_older_than_the_cooldown_then_it_is_an_orphan() -> None:
    reason = orphan_reason(tags(MIN_AGE), None, now=NOW, min_age=MIN_AGE)
    assert reason == "its instance i-0123456789abcdef0 is not found and the ENI is 600s old"


@pytest.mark.parametrize("created_at", [None, "", "last tuesday"])
def test_given_an_instance_not_shown_and_no_readable_creation_time_then_the_eni_is_kept(
    created_at: str | None,
) -> None:
    found = tags(None)
    if created_at is not None:
        found[CREATED_AT_TAG] = created_at
    assert orphan_reason(found, None, now=NOW, min_age=MIN_AGE) is None


def test_given_a_creation_time_in_the_future_then_the_eni_is_young() -> None:
    assert orphan_reason(tags(-timedelta(hours=1)), None, now=NOW, min_age=MIN_AGE) is None
