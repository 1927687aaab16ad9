"""Verify before acting: whether an event's lifecycle action is ours to carry out.

An event is caller data. The EventBridge rule forwards only Auto Scaling's own events, but whoever may invoke the
function (or send to its queue, or a mistaken rule) could otherwise hand it any instance of the account. So a
lifecycle action is carried out only for an instance that Auto Scaling itself reports (DescribeAutoScalingInstances,
or for a static launch the group's listing) in the group this function serves, waiting in the state of this very
transition:

- a launch into the group waits in ``Pending:Wait``; a launch into the warm pool in ``Warmed:Pending:Wait``;
- a termination from the group waits in ``Terminating:Wait`` (also on its way back to the warm pool), one from the
  warm pool (``Origin: WarmPool``) in ``Warmed:Terminating:Wait``.

Anything else is refused before anything is changed. Three kinds, because they mean different things:

- **stray**: the instance is another group's, or the event names another group. Nothing Auto Scaling sends us
  looks like this: a misrouted rule or a forged event. The event is kept for an operator (it ends in the
  dead-letter queue).
- **not waiting**: the instance does not wait for this transition: most often a late redelivery of an action that
  was completed already (SQS delivers at least once; a terminated or abandoned instance is in no group any more),
  else an event for another action (a terminate for a node in service, a launch token replayed). Nothing to do,
  and nothing to keep.
- **not waiting yet**: the instance is in the state just before this transition's wait (``Pending`` before
  ``Pending:Wait``): a read that lags the event. The event comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import assert_never

from multus_ipam.events import LifecycleAction, Transition
from multus_ipam.ports import Membership

#: Lifecycle states of an instance whose launch waits on a hook (or is about to): a burst's waiting launches.
LAUNCH_WAITING_STATES = frozenset({"Pending", "Pending:Wait", "Warmed:Pending", "Warmed:Pending:Wait"})


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an event's action is not carried out. ``stray``: the instance (or the event's group) is not ours;
    ``early``: the instance is about to wait for this transition (ask again later)."""

    reason: str
    stray: bool
    early: bool = False


def verify(action: LifecycleAction, group: str, membership: Membership | None) -> Refusal | None:
    """None when ``action`` is ours to carry out: ``membership`` (what Auto Scaling reports of the event's
    instance) puts the instance in ``group``, the group this function serves, waiting for this transition."""
    instance = action.instance_id
    if action.group != group:
        return Refusal(
            f"the event is for group {action.group!r}; this function serves {group!r} (AUTOSCALING_GROUP_NAME)",
            stray=True,
        )
    if membership is None:
        # What a redelivery finds once its instance is terminated (a termination done, a launch abandoned).
        return Refusal(
            f"instance {instance} is in no Auto Scaling group: terminated, or never one of ours", stray=False
        )
    if membership.group != group:
        return Refusal(f"instance {instance} is in group {membership.group!r}, not {group!r}", stray=True)
    expected = waiting_states(action)
    if membership.lifecycle_state in expected:
        return None
    early = membership.lifecycle_state in {state.removesuffix(":Wait") for state in expected}
    return Refusal(
        f"instance {instance} is {membership.lifecycle_state}, not waiting for this {_what(action)}"
        f"{' yet' if early else ''} ({' or '.join(sorted(expected))})",
        stray=False,
        early=early,
    )


def waiting_states(action: LifecycleAction) -> frozenset[str]:
    """The lifecycle states in which the instance waits on an action like this one.

    A launch into the warm pool waits in Warmed:Pending:Wait, a launch into the group (from EC2 or from the pool)
    in Pending:Wait, so a stale event of the first warm-pool action is recognised as done while the second one
    waits. A termination waits in Terminating:Wait, or Warmed:Terminating:Wait when it starts in the pool (the
    event's Origin says which; the reconciler's events, without one, accept both).
    """
    match action.transition:
        case Transition.LAUNCHING:
            return frozenset({"Warmed:Pending:Wait"} if action.into_warm_pool else {"Pending:Wait"})
        case Transition.TERMINATING:
            match action.origin:
                case "WarmPool":
                    return frozenset({"Warmed:Terminating:Wait"})
                case "AutoScalingGroup":
                    return frozenset({"Terminating:Wait"})
                case _:  # the reconciler's events name no origin
                    return frozenset({"Terminating:Wait", "Warmed:Terminating:Wait"})
        case _ as unreachable:
            assert_never(unreachable)


def _what(action: LifecycleAction) -> str:
    match action.transition:
        case Transition.LAUNCHING:
            return "launch into the warm pool" if action.into_warm_pool else "launch"
        case Transition.TERMINATING:
            return "termination"
        case _ as unreachable:
            assert_never(unreachable)
