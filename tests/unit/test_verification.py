"""The pure decision of multus_ipam.verification: which events are ours to act on, and how the others are told."""

from __future__ import annotations

import pytest

from multus_ipam.events import LifecycleAction, Transition
from multus_ipam.ports import Membership
from multus_ipam.verification import Refusal, verify, waiting_states

GROUP = "multus-workers"
LAUNCH = Transition.LAUNCHING
TERMINATE = Transition.TERMINATING


def action(
    transition: Transition, destination: str | None = None, group: str = GROUP, origin: str | None = None
) -> LifecycleAction:
    return LifecycleAction(
        transition=transition,
        event_id="e-1",
        group=group,
        hook="multus-launch",
        token="t-1",
        instance_id="i-0123456789abcdef0",
        destination=destination,
        origin=origin,
    )


def member(state: str, group: str = GROUP) -> Membership:
    return Membership("i-0123456789abcdef0", group, "us-east-1a", state)


@pytest.mark.parametrize(
    ("transition", "destination", "state"),
    [
        (LAUNCH, "AutoScalingGroup", "Pending:Wait"),
        (LAUNCH, None, "Pending:Wait"),
        (LAUNCH, "WarmPool", "Warmed:Pending:Wait"),
        (TERMINATE, None, "Terminating:Wait"),
        (TERMINATE, "WarmPool", "Terminating:Wait"),
        (TERMINATE, "EC2", "Warmed:Terminating:Wait"),
    ],
)
def test_given_our_instance_waiting_for_the_transition_then_it_is_ours_to_act_on(
    transition: Transition, destination: str | None, state: str
) -> None:
    assert verify(action(transition, destination), GROUP, member(state)) is None


@pytest.mark.parametrize(
    ("origin", "state", "ours"),
    [
        ("AutoScalingGroup", "Terminating:Wait", True),
        ("AutoScalingGroup", "Warmed:Terminating:Wait", False),
        ("WarmPool", "Warmed:Terminating:Wait", True),
        ("WarmPool", "Terminating:Wait", False),
    ],
)
def test_given_a_termination_with_an_origin_then_only_that_origins_wait_state_is_ours(
    origin: str, state: str, ours: bool
) -> None:
    assert (verify(action(TERMINATE, origin=origin), GROUP, member(state)) is None) is ours


def test_given_an_event_for_another_group_then_it_is_stray_before_the_instance_matters() -> None:
    refusal = verify(action(LAUNCH, group="other"), GROUP, member("Pending:Wait", group="other"))

    assert refusal == Refusal(
        f"the event is for group 'other'; this function serves '{GROUP}' (AUTOSCALING_GROUP_NAME)", stray=True
    )


def test_given_an_instance_in_no_group_then_it_is_not_waiting_as_a_redelivery_after_it_is_gone_finds_it() -> None:
    assert verify(action(LAUNCH), GROUP, None) == Refusal(
        "instance i-0123456789abcdef0 is in no Auto Scaling group: terminated, or never one of ours", stray=False
    )


def test_given_an_instance_of_another_group_then_it_is_stray_whatever_its_state() -> None:
    assert verify(action(LAUNCH), GROUP, member("Pending:Wait", group="other")) == Refusal(
        f"instance i-0123456789abcdef0 is in group 'other', not '{GROUP}'", stray=True
    )


@pytest.mark.parametrize(
    ("transition", "destination", "state", "reason"),
    [
        (LAUNCH, None, "InService", "is InService, not waiting for this launch (Pending:Wait)"),
        (LAUNCH, None, "Pending:Proceed", "is Pending:Proceed, not waiting for this launch (Pending:Wait)"),
        (LAUNCH, None, "Warmed:Pending:Wait", "is Warmed:Pending:Wait, not waiting for this launch (Pending:Wait)"),
        (LAUNCH, None, "Terminating:Wait", "is Terminating:Wait, not waiting for this launch (Pending:Wait)"),
        (
            LAUNCH,
            "WarmPool",
            "Pending:Wait",
            "is Pending:Wait, not waiting for this launch into the warm pool (Warmed:Pending:Wait)",
        ),
        (
            TERMINATE,
            None,
            "InService",
            "is InService, not waiting for this termination (Terminating:Wait or Warmed:Terminating:Wait)",
        ),
        (
            TERMINATE,
            None,
            "Pending:Wait",
            "is Pending:Wait, not waiting for this termination (Terminating:Wait or Warmed:Terminating:Wait)",
        ),
    ],
)
def test_given_our_instance_in_another_state_then_it_is_not_waiting_and_not_stray(
    transition: Transition, destination: str | None, state: str, reason: str
) -> None:
    assert verify(action(transition, destination), GROUP, member(state)) == Refusal(
        f"instance i-0123456789abcdef0 {reason}", stray=False
    )


@pytest.mark.parametrize(
    ("transition", "destination", "state", "what"),
    [
        (LAUNCH, None, "Pending", "launch yet (Pending:Wait)"),
        (LAUNCH, "WarmPool", "Warmed:Pending", "launch into the warm pool yet (Warmed:Pending:Wait)"),
        (TERMINATE, None, "Terminating", "termination yet (Terminating:Wait or Warmed:Terminating:Wait)"),
        (TERMINATE, None, "Warmed:Terminating", "termination yet (Terminating:Wait or Warmed:Terminating:Wait)"),
    ],
)
def test_given_our_instance_just_before_the_wait_then_early_so_the_event_comes_back(
    transition: Transition, destination: str | None, state: str, what: str
) -> None:
    refusal = verify(action(transition, destination), GROUP, member(state))

    assert refusal == Refusal(
        f"instance i-0123456789abcdef0 is {state}, not waiting for this {what}", stray=False, early=True
    )


def test_given_each_transition_then_its_waiting_states_are_exactly_auto_scalings_wait_states() -> None:
    assert waiting_states(action(LAUNCH)) == {"Pending:Wait"}
    assert waiting_states(action(LAUNCH, "WarmPool")) == {"Warmed:Pending:Wait"}
    assert waiting_states(action(TERMINATE)) == {"Terminating:Wait", "Warmed:Terminating:Wait"}
    assert waiting_states(action(TERMINATE, "WarmPool")) == {"Terminating:Wait", "Warmed:Terminating:Wait"}
    assert waiting_states(action(TERMINATE, origin="AutoScalingGroup")) == {"Terminating:Wait"}
    assert waiting_states(action(TERMINATE, origin="WarmPool")) == {"Warmed:Terminating:Wait"}
