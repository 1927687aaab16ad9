"""The pure decision of multus_ipam.verification: which events are ours to act on, and how the others are told."""

from __future__ import annotations

import pytest

from multus_ipam.events import LifecycleAction, Transition
from multus_ipam.ports import Membership
from multus_ipam.verification import Refusal, verify, waiting_states

GROUP = "multus-workers"
LAUNCH = Transition.LAUNCHING
TERMINATE = Transition.TERMINATING


def action(transition: Transition, destination: str | None = None, group: str = GROUP) -> LifecycleAction:
    return LifecycleAction(
        transition=transition,
        event_id="e-1",
        group=group,
        hook="multus-launch",
        token="t-1",
        instance_id="i-0123456789abcdef0",
        destination=destination,
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


def test_given_an_event_for_another_group_then_it_is_stray_before_the_instance_matters() -> None:
    refusal = verify(action(LAUNCH, group="other"), GROUP, member("Pending:Wait", group="other"))

    assert refusal == Refusal(
        f"the event is for group 'other'; this function serves '{GROUP}' (AUTOSCALING_GROUP_NAME)", stray=True
    )


def test_given_an_instance_in_no_group_then_it_is_stray() -> None:
    assert verify(action(LAUNCH), GROUP, None) == Refusal(
        "instance i-0123456789abcdef0 is in no Auto Scaling group (or does not exist)", stray=True
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


def test_given_each_transition_then_its_waiting_states_are_exactly_auto_scalings_wait_states() -> None:
    assert waiting_states(action(LAUNCH)) == {"Pending:Wait"}
    assert waiting_states(action(LAUNCH, "WarmPool")) == {"Warmed:Pending:Wait"}
    assert waiting_states(action(TERMINATE)) == {"Terminating:Wait", "Warmed:Terminating:Wait"}
    assert waiting_states(action(TERMINATE, "WarmPool")) == {"Terminating:Wait", "Warmed:Terminating:Wait"}
