"""The scheduled reconciler: what does not belong on the lifecycle hot path, every minute or two.

1. **Orphan sweep** (:mod:`multus_ipam.orphans`): our detached ENIs whose instance is gone.
2. **Lost events.** Auto Scaling emits lifecycle events best-effort, and EventBridge or the intake may lose one
   (a rule disabled for a moment, a message aged out). Without its event, an instance waits in ``Pending:Wait``
   until the hook's heartbeat timeout, then gets the hook's default result (``ABANDON``: terminated and
   replaced). The reconciler finds instances waiting on one of our hooks for longer than
   ``LOST_EVENT_GRACE_SECONDS`` while no message waits in the intake queue (none visible or delayed: their event
   cannot be waiting for its turn, as it is in a burst's backlog) and none is in flight, or none has been for
   longer than one visibility timeout (``RETRY_DELAY_SECONDS``) past the grace period (an event of theirs in flight
   would have been handled or be visible again by then: so a record that keeps failing does not block the
   recovery) and, while messages are in flight, only launches that have no ENI of ours yet (one that has is being
   retried: its deferred message comes back by itself), and queues an event for each, made as Auto Scaling would
   but without the token: the function
   completes the action by instance id. A late event (the same action handled twice) is harmless: the engine
   adopts what exists and "No active Lifecycle Action" is taken as done.

3. **Waits behind a backlog.** While the intake queue holds messages, an instance whose event is still queued
   must not reach its hook's heartbeat timeout: at half of it the reconciler records a heartbeat on our hook.
   Before requeueing a "lost" event it also asks (a heartbeat by instance id) whether our hook still waits: an
   instance may wait on another hook alone (EKS's ``Terminate-LC-Hook`` while EKS drains a managed node).

How long an instance has waited: Auto Scaling does not say, so the reconciler remembers when it first saw each
waiting instance (per execution environment: runs a minute apart reuse one in practice, and a new execution
environment starts counting afresh, which only delays a recovery by one grace period).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from multus_ipam.budget import SWEEP_STOP_SECONDS
from multus_ipam.errors import LifecycleActionGone, MultusIpamError
from multus_ipam.events import LAUNCH_DETAIL_TYPE, TERMINATE_DETAIL_TYPE, Transition
from multus_ipam.orphans import OrphanSweep
from multus_ipam.ports import CallDeadline, Clock, Ec2, GroupInstance, GroupReader, Intake, LifecycleHook
from multus_ipam.settings import Settings, format_created_at

RECONCILER_SOURCE = "multus-ipam.reconciler"
#: Lifecycle states that wait on a launch hook, and on a terminate hook, with where the instance goes.
LAUNCH_WAITS: Mapping[str, str] = {"Pending:Wait": "AutoScalingGroup", "Warmed:Pending:Wait": "WarmPool"}
TERMINATE_WAITS = frozenset({"Terminating:Wait", "Warmed:Terminating:Wait"})
#: Runs come a schedule period apart, and each reads the clock after its own AWS calls: without some slack a wait
#: of exactly the grace period can measure a fraction of a second short and cost a whole extra period.
SCHEDULE_SLACK_SECONDS = 5.0
#: template.yaml: the reconciler runs every minute.
SCHEDULE_PERIOD_SECONDS = 60


class Metric(StrEnum):
    LOST_EVENTS_REQUEUED = "LostEventsRequeued"
    HEARTBEATS_RECORDED = "QueuedEventHeartbeats"
    ORPHANS_RELEASED = "OrphanEnisReleased"


class Metrics(Protocol):
    def count(self, metric: Metric, value: int = 1) -> None: ...


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    orphans_deleted: tuple[str, ...] = ()
    requeued: tuple[str, ...] = ()
    """Instance ids whose lost event was queued again."""
    waiting: int = 0
    """Instances seen waiting on one of our hooks."""
    backlog: int | None = None
    """Messages in the intake queue (None: not read)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "orphansDeleted": list(self.orphans_deleted),
            "requeued": list(self.requeued),
            "waiting": self.waiting,
            "backlog": self.backlog,
        }


def lost_event(
    action_hook: LifecycleHook, instance: GroupInstance, group: str, seen_since: datetime
) -> dict[str, object]:
    """The lifecycle event Auto Scaling would have sent for this wait, without its token (see the module)."""
    launching = action_hook.transition == Transition.LAUNCHING.value
    detail: dict[str, object] = {
        "AutoScalingGroupName": group,
        "LifecycleHookName": action_hook.name,
        "EC2InstanceId": instance.instance_id,
        "LifecycleTransition": action_hook.transition,
    }
    if launching:
        detail["Destination"] = LAUNCH_WAITS[instance.lifecycle_state]
    return {
        "version": "0",
        "id": f"lost-{instance.instance_id}-{action_hook.name}-{format_created_at(seen_since)}",
        "detail-type": LAUNCH_DETAIL_TYPE if launching else TERMINATE_DETAIL_TYPE,
        "source": RECONCILER_SOURCE,
        "time": format_created_at(seen_since),
        "detail": detail,
    }


class Reconciler:
    def __init__(
        self,
        *,
        settings: Settings,
        ec2: Ec2,
        autoscaling: GroupReader,
        intake: Intake,
        clock: Clock,
        metrics: Metrics,
        deadline: CallDeadline,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._settings = settings
        self._ec2 = ec2
        self._autoscaling = autoscaling
        self._intake = intake
        self._clock = clock
        self._metrics = metrics
        self._deadline = deadline
        self._log = logger or logging.getLogger(__name__)
        self._grace = timedelta(seconds=max(settings.lost_event_grace_seconds - SCHEDULE_SLACK_SECONDS, 0.0))
        self._lock = threading.Lock()
        self._first_seen: dict[tuple[str, str], datetime] = {}
        """(instance id, lifecycle state) -> when this execution environment first saw it waiting so."""
        self._beaten: dict[tuple[str, str], datetime] = {}
        """(instance id, hook) -> when this execution environment last recorded a heartbeat for it."""
        self.orphans = OrphanSweep(
            owner=settings.owner,
            subnet_ids=settings.subnet_ids,
            min_age_seconds=settings.orphan_min_age_seconds,
            ec2=ec2,
            clock=clock,
            on_release=lambda: metrics.count(Metric.ORPHANS_RELEASED),
            logger=self._log,
        )

    def run(self, remaining_ms: Callable[[], int]) -> ReconcileReport:
        """One pass: lost events first (an instance waits on them), then the sweep with the time left. Never
        raises our errors: what fails is logged and the next run tries again."""
        end = self._clock.now() + timedelta(milliseconds=remaining_ms()) - timedelta(seconds=SWEEP_STOP_SECONDS)
        report = ReconcileReport()
        with self._deadline.within(end):
            try:
                report = self._requeue_lost(end)
            except MultusIpamError as error:
                self._log.error("could not look for lost lifecycle events", extra={"error": str(error)})
            swept = self.orphans.run(until=end)
        return ReconcileReport(swept.deleted, report.requeued, report.waiting, report.backlog)

    def _requeue_lost(self, end: datetime) -> ReconcileReport:
        group = self._settings.group_name
        hooks = self._our_hooks(group)
        instances = self._autoscaling.group_instances(group)
        now = self._clock.now()
        waiting = [i for i in instances if i.lifecycle_state in LAUNCH_WAITS or i.lifecycle_state in TERMINATE_WAITS]
        since = self._remember(waiting, now)
        overdue = [i for i in waiting if now - since[(i.instance_id, i.lifecycle_state)] >= self._grace]
        due = self._heartbeats_due(hooks, waiting, since, now)
        if not overdue and not due:
            return ReconcileReport(waiting=len(waiting))
        backlog = self._intake.backlog()
        if backlog.total:
            self._keep_waiting(group, due, now, end)
        if not overdue:
            return ReconcileReport(waiting=len(waiting), backlog=backlog.total)
        if backlog.in_flight:
            settled = self._grace + timedelta(seconds=self._settings.retry_delay_seconds)
            overdue = [
                i
                for i in overdue
                if now - since[(i.instance_id, i.lifecycle_state)] >= settled and not self._launch_in_progress(i)
            ]
        if backlog.visible or backlog.delayed or not overdue:
            # Their events may be among those queued or in flight (a burst): not lost, only late.
            self._log.info(
                "instances wait past the grace period, but the intake queue is busy: not requeuing now",
                extra={"visible": backlog.visible, "in_flight": backlog.in_flight, "delayed": backlog.delayed},
            )
            return ReconcileReport(waiting=len(waiting), backlog=backlog.total)
        events: list[dict[str, object]] = []
        lost: list[GroupInstance] = []
        for instance in overdue:
            if self._clock.now() >= end:  # one question per instance: the rest wait for the next run
                break
            launching = instance.lifecycle_state in LAUNCH_WAITS
            seen = since[(instance.instance_id, instance.lifecycle_state)]
            pending = [
                hook
                for hook in hooks
                if (hook.transition == Transition.LAUNCHING.value) == launching
                and self._still_ours(group, hook, instance)
            ]
            if not pending:
                self._log.info(
                    "instance waits on another hook: ours is done",
                    extra={"instance_id": instance.instance_id, "lifecycle_state": instance.lifecycle_state},
                )
                with self._lock:  # asked again one grace period from now, not on every run
                    self._first_seen[(instance.instance_id, instance.lifecycle_state)] = now
                continue
            events.extend(lost_event(hook, instance, group, seen) for hook in pending)
            lost.append(instance)
        if not events or self._clock.now() >= end:
            return ReconcileReport(waiting=len(waiting), backlog=backlog.total)
        self._intake.send(events)
        self._metrics.count(Metric.LOST_EVENTS_REQUEUED, len(events))
        for instance in lost:
            self._log.warning(
                "lifecycle event lost: queued again",
                extra={"instance_id": instance.instance_id, "lifecycle_state": instance.lifecycle_state},
            )
            with self._lock:  # counted afresh: if this one is lost too, another grace period
                self._first_seen[(instance.instance_id, instance.lifecycle_state)] = now
        return ReconcileReport(requeued=tuple(i.instance_id for i in lost), waiting=len(waiting), backlog=backlog.total)

    def _heartbeats_due(
        self,
        hooks: list[LifecycleHook],
        waiting: list[GroupInstance],
        since: Mapping[tuple[str, str], datetime],
        now: datetime,
    ) -> list[tuple[GroupInstance, LifecycleHook]]:
        """Waits on our hooks that have used half their heartbeat timeout since they were first seen or last
        extended. The wait began up to one schedule period before the reconciler first saw it: that is counted
        as spent."""
        due: list[tuple[GroupInstance, LifecycleHook]] = []
        with self._lock:
            self._beaten = {key: at for key, at in self._beaten.items() if key[0] in {i.instance_id for i in waiting}}
            for instance in waiting:
                launching = instance.lifecycle_state in LAUNCH_WAITS
                start = since[(instance.instance_id, instance.lifecycle_state)]
                for hook in hooks:
                    if (hook.transition == Transition.LAUNCHING.value) != launching:
                        continue
                    last = max(start, self._beaten.get((instance.instance_id, hook.name), start))
                    spent = now - last + timedelta(seconds=SCHEDULE_PERIOD_SECONDS)
                    if spent >= timedelta(seconds=hook.heartbeat_timeout_seconds / 2):
                        due.append((instance, hook))
        return due

    def _keep_waiting(
        self, group: str, due: list[tuple[GroupInstance, LifecycleHook]], now: datetime, end: datetime
    ) -> None:
        """While the intake queue holds messages (a burst's backlog, deferred records), the events of waiting
        instances may still be queued behind others: a heartbeat on our hook keeps each from timing out (a
        launch's ABANDON terminates a node whose only fault was its place in the queue) until its event's turn.
        Once the queue is idle, what still waits is a lost event, requeued as usual."""
        for instance, hook in due:
            if self._clock.now() >= end:
                return
            try:
                self._autoscaling.record_heartbeat(
                    group=group, hook=hook.name, token=None, instance_id=instance.instance_id
                )
            except LifecycleActionGone:
                # Ours is done; the instance waits on another hook. Asked again half a timeout from now, not each run.
                with self._lock:
                    self._beaten[(instance.instance_id, hook.name)] = now
                continue
            except MultusIpamError as error:
                self._log.warning(
                    "could not extend the wait of an instance whose event is queued",
                    extra={"instance_id": instance.instance_id, "hook": hook.name, "error": str(error)},
                )
                continue
            with self._lock:
                self._beaten[(instance.instance_id, hook.name)] = now
            self._metrics.count(Metric.HEARTBEATS_RECORDED)

    def _still_ours(self, group: str, hook: LifecycleHook, instance: GroupInstance) -> bool:
        """Whether our hook's action for this wait is still active. Auto Scaling lists the wait, not the hooks it
        waits on: an instance of an EKS managed node group waits on EKS's own hooks too (``Terminate-LC-Hook``
        while EKS drains the node, up to its 1800 s timeout), long after ours completed. A heartbeat by instance
        id answers without changing anything but our own action's deadline (extended by one heartbeat timeout,
        which only helps the event queued now): "No active Lifecycle Action" means ours is done. Any other
        error cannot tell, so the event is queued as before (a late event is harmless)."""
        try:
            self._autoscaling.record_heartbeat(
                group=group, hook=hook.name, token=None, instance_id=instance.instance_id
            )
        except LifecycleActionGone:
            return False
        except MultusIpamError as error:
            self._log.warning(
                "could not ask whether our hook still waits: queuing its event anyway",
                extra={"instance_id": instance.instance_id, "hook": hook.name, "error": str(error)},
            )
        return True

    def _launch_in_progress(self, instance: GroupInstance) -> bool:
        """While messages are in flight: whether a delivery of this instance's event has been at work (it made an
        ENI of ours), so its message is coming back. A termination cannot tell: left to its hook's default."""
        if instance.lifecycle_state not in LAUNCH_WAITS:
            return True
        return bool(self._ec2.owned_enis(self._settings.owner, instance.instance_id))

    def _our_hooks(self, group: str) -> list[LifecycleHook]:
        names = self._settings.hook_names
        return [h for h in self._autoscaling.lifecycle_hooks(group) if not names or h.name in names]

    def _remember(self, waiting: list[GroupInstance], now: datetime) -> dict[tuple[str, str], datetime]:
        """First-seen times of the waiting instances; forgets those no longer waiting (in that state)."""
        keys = {(i.instance_id, i.lifecycle_state) for i in waiting}
        with self._lock:
            self._first_seen = {k: v for k, v in self._first_seen.items() if k in keys}
            for key in keys:
                self._first_seen.setdefault(key, now)
            return dict(self._first_seen)
