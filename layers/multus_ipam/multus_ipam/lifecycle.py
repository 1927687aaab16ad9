"""The one lifecycle engine both functions share.

First, for both transitions: verify (multus_ipam.verification). Nothing is done unless Auto Scaling reports the
event's instance in our group, waiting for this very transition; anything else is refused with nothing changed.

Launch: for each Multus subnet in the instance's AZ, in configured order, adopt our ENI if one exists, else
create it (address from the strategy, tags at creation, deterministic client token), attach it at its
device index on an explicit network card, set DeleteOnTermination (and SourceDestCheck off if asked), then
complete the lifecycle action with CONTINUE. On failure: release every ENI we own for the instance, then
complete with the configured failure result.

Terminate: into a warm pool, keep everything; otherwise release our ENIs that EC2 would not delete with the
instance, then complete with CONTINUE.

Every step is safe to repeat: the same event delivered twice, in parallel, or after a crash between any two
AWS calls ends with one ENI per subnet, attached once, and one lifecycle result.

Real EC2 is eventually consistent: a NotFound for the event's instance or for an id this launch just made is
retried with bounded backoff before it counts (multus_ipam.budget.Patience). The invocation's time is split into
phases (launch, rollback, completion) whose deadlines bound every wait, the SDK's own retries included
(multus_ipam.budget, multus_ipam.ports.CallDeadline).

Retry policy: a launch step that fails for a reason retrying will not fix (no address, a missing reservation, a
gone instance, a refused parameter) is rolled back and completed with the failure result. One that a later
attempt may not meet (throttling after the SDK's retries, a 5xx, no answer, the launch phase's time running out,
EC2 still not showing what we made) keeps what it made and is *deferred*: the handler reports the event failed so
it comes back (the queue's visibility timeout), after a lifecycle heartbeat if the hook could time out first.
Only the last attempt the queue allows rolls back and completes instead. Calls per launch (static mode): one
DescribeAutoScalingInstances (the verification), one DescribeInstances (also the device indexes taken), one
DescribeNetworkInterfaces for all its subnets, one group read, then per subnet a create, an attach and a modify,
and the completion; subnets and reservations are cached per execution environment. The orphan sweep runs off
this path, in the reconciler (multus_ipam.reconciler).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, TypeVar, assert_never

from multus_ipam.addressing import IPAddress, choose_device_index, default_device_indexes
from multus_ipam.budget import NEW_ENI_SETTLE_SECONDS, Budget, NoDeadline, Patience
from multus_ipam.errors import (
    AddressConflictsExhausted,
    AwsCallFailed,
    DeadlineExceeded,
    DeviceIndexTaken,
    InstanceGone,
    IpAddressInUse,
    LifecycleActionGone,
    LifecycleFailure,
    MultusIpamError,
    NotYetVisible,
    SubnetMisconfigured,
)
from multus_ipam.events import LifecycleAction, ParsedEvent, TestNotification, Transition
from multus_ipam.orphans import in_multus_subnets
from multus_ipam.ports import (
    Attachment,
    AutoScaling,
    CallDeadline,
    Clock,
    CreateEni,
    Ec2,
    Eni,
    GroupInstance,
    Instance,
    Membership,
    Subnet,
)
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG, SUBNET_TAG, LifecycleResult, Settings
from multus_ipam.strategies import AddressChoice, AddressStrategy
from multus_ipam.verification import LAUNCH_WAITING_STATES, verify, waiting_states

T = TypeVar("T")
#: Device indexes tried on one card before giving up (DeviceIndexTaken each time).
MAX_DEVICE_INDEX_TRIES = 16


class Metric(StrEnum):
    ENIS_CREATED = "EnisCreated"
    ENIS_ADOPTED = "EnisAdopted"
    ENIS_RELEASED = "EnisReleased"
    ADDRESS_CONFLICTS = "AddressConflictsRetried"
    DEVICE_INDEX_FALLBACKS = "DeviceIndexFallbacks"
    ROLLBACKS = "Rollbacks"
    LAUNCH_FAILURES = "LaunchFailures"
    """Launches that failed and were rolled back, whatever FAILURE_RESULT then reported."""
    CONTINUE = "LifecycleContinue"
    ABANDON = "LifecycleAbandon"
    ALREADY_COMPLETED = "LifecycleAlreadyCompleted"
    EVENTS_SKIPPED = "EventsSkipped"
    LAUNCHES_DEFERRED = "LaunchesDeferred"
    """Launches that failed for a reason a later attempt may not meet (throttling, 5xx, time): nothing rolled
    back, the event comes back."""
    HEARTBEATS = "LifecycleHeartbeats"
    EVENTS_REJECTED = "EventsRejected"
    """Events refused as not ours: the instance is another group's or in none, or the event names another group
    (multus_ipam.verification). Nothing Auto Scaling sends looks like this."""
    EVENTS_NOT_WAITING = "EventsNotWaiting"
    """Events refused because our instance does not wait for their transition: mostly late redeliveries."""


class Metrics(Protocol):
    def count(self, metric: Metric, value: int = 1) -> None: ...


class Status(StrEnum):
    COMPLETED = "completed"
    """We completed the lifecycle action with ``result``."""
    ALREADY_COMPLETED = "already-completed"
    """Someone else (an earlier delivery, a timeout) had completed it; we stopped quietly."""
    SKIPPED = "skipped"
    """A test notification: nothing to do."""
    REJECTED = "rejected"
    """Refused before anything was changed: the instance is not ours (``reason`` says why). The event is reported
    failed so that it ends in the dead-letter queue for an operator."""
    NOT_WAITING = "not-waiting"
    """Refused before anything was changed: our instance does not wait for this transition (a late redelivery,
    an event for another action). Nothing to do."""
    DEFERRED = "deferred"
    """Not completed on purpose: a later attempt may succeed (``reason``), so the event must come back (the
    handler reports it failed). What was made is kept for that attempt to adopt."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """How this event reached the function, for the retry policy.

    ``receive_count`` (SQS ``ApproximateReceiveCount``) and ``max_receives`` (the queue's redrive
    ``maxReceiveCount``): the attempt that has no successor. None: handed over directly (EventBridge, a test,
    ``sam local invoke``): whether it comes back is up to the sender (Lambda's asynchronous retries), and the
    scheduled reconciler handles a launch nobody finished.
    """

    receive_count: int | None = None
    max_receives: int | None = None

    @property
    def last(self) -> bool:
        return (
            self.receive_count is not None and self.max_receives is not None and self.receive_count >= self.max_receives
        )


@dataclass(frozen=True, slots=True)
class EniRecord:
    subnet_id: str
    eni_id: str
    ipv4: str | None
    ipv6: str | None
    device_index: int
    adopted: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    result: LifecycleResult | None = None
    enis: tuple[EniRecord, ...] = ()
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "result": self.result.value if self.result else None,
            "enis": [
                {
                    "subnetId": e.subnet_id,
                    "networkInterfaceId": e.eni_id,
                    "ipv4": e.ipv4,
                    "ipv6": e.ipv6,
                    "deviceIndex": e.device_index,
                    "adopted": e.adopted,
                }
                for e in self.enis
            ],
            "reason": self.reason,
        }


class RollbackIncomplete(MultusIpamError):
    """The lifecycle action was completed, but some of our ENIs could not be released: they are named."""


def client_token(instance_id: str, subnet_id: str, choice: AddressChoice) -> str:
    """Deterministic CreateNetworkInterface token (<= 64 ASCII characters).

    Keyed by what is created: a re-invoked launch that asks for the same ENI gets the same ENI back, and a
    retry with another address after a conflict is a different request, not a mismatch.
    """
    key = "|".join((instance_id, subnet_id, str(choice.ipv4 or "auto"), str(choice.ipv6 or choice.ipv6_auto)))
    return "multus-ipam-" + hashlib.sha256(key.encode()).hexdigest()[:48]


class _View:
    """What one launch reads of its subnets and its group: one DescribeNetworkInterfaces for all its subnets,
    one group read when a choice first needs it (see multus_ipam.strategies.LaunchView). A subnet is read again
    only after a collision told us the view is stale."""

    def __init__(
        self,
        ec2: Ec2,
        autoscaling: AutoScaling,
        group: str,
        subnets: Sequence[Subnet],
        listing: Sequence[GroupInstance] | None = None,
    ) -> None:
        """``listing``: the group's instances, if the verification read them already."""
        self._ec2 = ec2
        self._autoscaling = autoscaling
        self._group = group
        self._enis: dict[str, list[Eni]] = {s.subnet_id: [] for s in subnets}
        for eni in ec2.subnet_enis(list(self._enis)):
            self._enis.setdefault(eni.subnet_id, []).append(eni)
        self._waiting: list[GroupInstance] | None = (
            None if listing is None else [i for i in listing if i.lifecycle_state in LAUNCH_WAITING_STATES]
        )

    def enis(self, subnet: Subnet) -> list[Eni]:
        return self._enis.get(subnet.subnet_id, [])

    def refresh(self, subnet: Subnet) -> None:
        self._enis[subnet.subnet_id] = self._ec2.subnet_enis([subnet.subnet_id])

    def waiting(self, availability_zone: str) -> list[str]:
        if self._waiting is None:
            self._waiting = self._autoscaling.waiting_instances(self._group)
        return [i.instance_id for i in self._waiting if i.availability_zone == availability_zone]

    def owned(self, owner: str, instance_id: str) -> list[Eni]:
        """Our ENIs for the instance among those read (the launch's subnets)."""
        return [
            eni
            for enis in self._enis.values()
            for eni in enis
            if eni.tags.get(OWNER_TAG) == owner
            and (
                eni.tags.get(INSTANCE_TAG) == instance_id
                or (eni.attachment and eni.attachment.instance_id == instance_id)
            )
        ]


@dataclass(frozen=True, slots=True)
class _Verified:
    """What the verification read: where Auto Scaling has the instance, and the group's listing if it was read."""

    membership: Membership | None
    listing: tuple[GroupInstance, ...] | None = None


@dataclass(frozen=True, slots=True)
class _Ready:
    """A subnet's ENI, adopted or just created (``created``: when EC2 answered the create), not yet attached."""

    subnet: Subnet
    eni: Eni
    adopted: bool
    created: datetime | None


@dataclass(slots=True)
class _Launch:
    """What one launch has read: the instance, its subnets and group (the view), the device indexes taken."""

    instance: Instance
    view: _View
    created_at: datetime | None
    """The created-at tag of the ENIs this launch creates: the event's time, the same in every redelivery (None
    for an event without a time: no tag, see ``Settings.tags_for``)."""
    known: dict[str, Eni]
    """Every ENI this invocation created, adopted or attached, as last seen: a rollback releases them even if
    a listing does not show them yet (eventual consistency)."""
    occupied: set[int] | None = None


class LifecycleService:
    def __init__(
        self,
        *,
        settings: Settings,
        ec2: Ec2,
        autoscaling: AutoScaling,
        strategy: AddressStrategy,
        metrics: Metrics,
        clock: Clock,
        deadline: CallDeadline | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._settings = settings
        self._ec2 = ec2
        self._autoscaling = autoscaling
        self._strategy = strategy
        self._metrics = metrics
        self._clock = clock
        self._deadline: CallDeadline = deadline or NoDeadline()
        self._log = logger or logging.getLogger(__name__)
        self._subnets: dict[str, Subnet] | None = None

    # --- dispatch -------------------------------------------------------------------------------------

    def handle(self, event: ParsedEvent, remaining_ms: Callable[[], int], delivery: Delivery | None = None) -> Outcome:
        """Carry out the event's lifecycle action. ``delivery``: how it came (default: handed over directly)."""
        if isinstance(event, TestNotification):
            self._metrics.count(Metric.EVENTS_SKIPPED)
            self._log.info("test notification skipped", extra={"group": event.group})
            return Outcome(Status.SKIPPED, reason="test notification")
        budget = Budget.starting_now(self._clock, remaining_ms(), self._settings.safety_margin_seconds)
        verified = self._verify(event, budget, delivery or Delivery())
        if isinstance(verified, Outcome):
            return verified
        match event.transition:
            case Transition.LAUNCHING:
                return self._launch(event, budget, delivery or Delivery(), verified.listing)
            case Transition.TERMINATING:
                return self._terminate(event, budget)
            case _ as unreachable:
                assert_never(unreachable)

    def _verify(self, action: LifecycleAction, budget: Budget, delivery: Delivery) -> _Verified | Outcome:
        """Verify before acting (multus_ipam.verification): what was read when the action is ours to carry out,
        else the outcome of refusing it, with nothing changed.

        When Auto Scaling cannot be asked, nothing is made for an instance not known to be ours. A failure a later
        attempt may not meet (throttling, a 5xx) defers the event; any other, or the last attempt, completes the
        action with the failure result (nothing to roll back), by its token only: Auto Scaling accepts a token only
        for the action it was issued for, and the role may complete only our group's actions. Without a token (the
        reconciler's events) nothing is completed and the error propagates."""
        try:
            with self._deadline.within(budget.launch_until):
                verified = self._read_membership(action)
        except LifecycleFailure as failure:
            reason = f"verifying the instance: {type(failure).__name__}: {failure}"
            if failure.retryable and not delivery.last:
                self._log.warning("could not verify the instance: the event comes back", extra={"error": str(failure)})
                return Outcome(Status.DEFERRED, reason=reason)
            return self._unverified(action, budget, failure, reason)
        refusal = verify(action, self._settings.group_name, verified.membership)
        if refusal is None:
            return verified
        if refusal.early:
            self._log.warning("event ahead of its wait: it comes back", extra={"rejected_because": refusal.reason})
            return Outcome(Status.DEFERRED, reason=refusal.reason)
        if refusal.stray:
            self._metrics.count(Metric.EVENTS_REJECTED)
            self._log.error("rejected event: %s", refusal.reason, extra={"rejected_because": refusal.reason})
            return Outcome(Status.REJECTED, reason=refusal.reason)
        self._metrics.count(Metric.EVENTS_NOT_WAITING)
        self._log.warning("refused event: %s", refusal.reason, extra={"rejected_because": refusal.reason})
        return Outcome(Status.NOT_WAITING, reason=refusal.reason)

    def _unverified(self, action: LifecycleAction, budget: Budget, error: LifecycleFailure, reason: str) -> Outcome:
        if action.token is None:
            # By instance id, a completion would complete whichever of our hooks the event names: only a token,
            # which Auto Scaling binds to one action, may be trusted without the verification.
            self._log.error("could not verify the instance, and the event has no token: nothing completed")
            raise error
        launching = action.transition is Transition.LAUNCHING
        result = self._settings.failure_result if launching else LifecycleResult.CONTINUE
        self._log.error(
            "could not verify the instance: nothing was made, completing the action",
            extra={"error": str(error), "error_type": type(error).__name__, "result": result.value},
        )
        if launching:
            self._metrics.count(Metric.LAUNCH_FAILURES)
        completed = self._complete(action, result, budget)
        return Outcome(Status.COMPLETED if completed else Status.ALREADY_COMPLETED, result, reason=reason)

    def _read_membership(self, action: LifecycleAction) -> _Verified:
        """Where Auto Scaling has the event's instance. A launch whose strategy ranks the group's waiting launches
        (static) reads the group's listing, which it needs anyway: one Auto Scaling call for both. An instance the
        listing does not show waiting is asked for alone, so that a refusal rests on its own record and says where
        it is."""
        if action.group != self._settings.group_name:
            return _Verified(None)  # refused without asking AWS
        if action.transition is Transition.LAUNCHING and self._strategy.ranks_by_group:
            listing = self._autoscaling.group_instances(self._settings.group_name)
            expected = waiting_states(action)
            found = next(
                (i for i in listing if i.instance_id == action.instance_id and i.lifecycle_state in expected), None
            )
            if found is not None:
                membership = Membership(
                    found.instance_id, self._settings.group_name, found.availability_zone, found.lifecycle_state
                )
                return _Verified(membership, tuple(listing))
        # A refusal is decided on the instance's own record (a listing may lag, or show it twice during a move).
        return _Verified(self._membership(action))

    def _membership(self, action: LifecycleAction) -> Membership | None:
        return self._autoscaling.membership(action.instance_id)

    # --- launch ---------------------------------------------------------------------------------------

    def _launch(
        self,
        action: LifecycleAction,
        budget: Budget,
        delivery: Delivery,
        listing: Sequence[GroupInstance] | None = None,
    ) -> Outcome:
        records: list[EniRecord] = []  # filled as each subnet's ENI is ready
        known: dict[str, Eni] = {}  # filled as ENIs are created, adopted, attached
        try:
            with self._deadline.within(budget.launch_until):
                self._prepare_enis(action, budget, records, known, listing)
        except LifecycleFailure as failure:
            if failure.retryable and not delivery.last:
                return self._defer(action, budget, failure, tuple(known.values()))
            return self._fail(action, budget, failure, tuple(known.values()))
        except Exception as error:
            # A bug or an AWS fault we did not plan for: still roll back and complete, then let it propagate
            # so the invocation is marked failed (on-failure destination, alarm).
            self._log.exception("unexpected error during launch")
            self._fail(action, budget, error, tuple(known.values()))
            raise
        completed = self._complete(action, LifecycleResult.CONTINUE, budget)
        return Outcome(
            Status.COMPLETED if completed else Status.ALREADY_COMPLETED,
            LifecycleResult.CONTINUE,
            tuple(records),
        )

    def _prepare_enis(
        self,
        action: LifecycleAction,
        budget: Budget,
        records: list[EniRecord],
        known: dict[str, Eni],
        listing: Sequence[GroupInstance] | None,
    ) -> None:
        budget.check("looking up the instance")
        instance = self._find_instance(action.instance_id, budget)
        subnets = self._subnets_in(instance.availability_zone)
        for subnet in subnets:
            self._strategy.verify(subnet)
        defaults = default_device_indexes([s.subnet_id for s in subnets])
        launch = _Launch(
            instance=instance,
            view=_View(self._ec2, self._autoscaling, self._settings.group_name, subnets, listing),
            created_at=action.time,
            known=known,
        )
        # Every ENI first, then the attachments: EC2 does not know a new ENI to AttachNetworkInterface for a moment
        # (eventual consistency), and a NotFound still costs a token of the Attach bucket, the scarcest under a
        # burst. Creating them all first gives the first one that moment while the others are made.
        ready: list[_Ready] = []
        for subnet in subnets:
            budget.check(f"preparing the ENI in {subnet.subnet_id}")
            ready.append(self._adopt_or_create(action, launch, subnet, budget))
        for one in ready:
            budget.check(f"attaching the ENI in {one.subnet.subnet_id}")
            desired = self._settings.device_indexes.get(one.subnet.subnet_id, defaults[one.subnet.subnet_id])
            if one.created is not None:
                self._settle(one.created, budget)
            records.append(self._attach_one(launch, one, desired, budget))

    def _find_instance(self, instance_id: str, budget: Budget) -> Instance:
        """The event's instance. EC2 may not show an instance that launched moments ago (eventual consistency):
        "not found" is final only after a bounded wait."""
        patience = Patience(self._clock, budget.launch_until)
        while (instance := self._ec2.describe_instance(instance_id)) is None:
            if not patience.wait():
                raise InstanceGone(
                    f"instance {instance_id} is not found (DescribeInstances, still after {patience.waited:g}s)"
                )
            self._log.info("instance not shown by EC2 yet, asking again", extra={"waited": patience.waited})
        if instance.is_gone:
            raise InstanceGone(f"instance {instance_id} is {instance.state}")
        return instance

    def _adopt_or_create(self, action: LifecycleAction, launch: _Launch, subnet: Subnet, budget: Budget) -> _Ready:
        """Our ENI for the subnet: adopted, or created now (then with the moment EC2 answered the create)."""
        instance = launch.instance
        existing = self._owned_in(
            instance.instance_id, subnet.subnet_id, launch.view.owned(self._settings.owner, instance.instance_id)
        )
        if existing is not None:
            self._metrics.count(Metric.ENIS_ADOPTED)
            self._log.info("adopting existing ENI", extra={"eni": existing.eni_id, "subnet": subnet.subnet_id})
            launch.known.setdefault(existing.eni_id, existing)
            return _Ready(subnet, existing, adopted=True, created=None)
        created = self._create(action, launch, subnet, budget)
        launch.known.setdefault(created.eni_id, created)
        return _Ready(subnet, created, adopted=False, created=self._clock.now())

    def _settle(self, created: datetime, budget: Budget) -> None:
        """Give EC2 NEW_ENI_SETTLE_SECONDS from a create before the first attach of that ENI (see budget)."""
        left = NEW_ENI_SETTLE_SECONDS - (self._clock.now() - created).total_seconds()
        if left > 0 and budget.seconds_until(budget.launch_until) > left:
            self._clock.sleep(left)

    def _attach_one(self, launch: _Launch, ready: _Ready, desired: int, budget: Budget) -> EniRecord:
        subnet, adopted = ready.subnet, ready.adopted
        eni = self._attach(ready.eni, launch, desired, budget)
        launch.known[eni.eni_id] = eni
        attachment = eni.attachment
        assert attachment is not None
        if not attachment.delete_on_termination:
            self._patiently(budget, lambda: self._ec2.set_delete_on_termination(eni.eni_id, attachment.attachment_id))
        if self._settings.disable_source_dest_check and eni.source_dest_check:
            self._patiently(budget, lambda: self._ec2.set_source_dest_check(eni.eni_id, enabled=False))
        return EniRecord(
            subnet_id=subnet.subnet_id,
            eni_id=eni.eni_id,
            ipv4=str(eni.primary_ipv4) if eni.primary_ipv4 else None,
            ipv6=str(eni.ipv6s[0]) if eni.ipv6s else None,
            device_index=attachment.device_index,
            adopted=adopted,
        )

    def _patiently(self, budget: Budget, call: Callable[[], T]) -> T:
        """Run ``call``; a NotFound for an id we just made (NotYetVisible) is retried with bounded backoff,
        then fails the launch naming the operation and code."""
        patience = Patience(self._clock, budget.launch_until)
        while True:
            try:
                return call()
            except NotYetVisible as missing:
                if not patience.wait():
                    raise AwsCallFailed(
                        missing.operation,
                        missing.code,
                        f"{missing.resource_id} still not found after {patience.waited:g}s",
                    ) from missing
                self._log.info(
                    "not known to EC2 yet, asking again",
                    extra={"operation": missing.operation, "code": missing.code, "waited": patience.waited},
                )

    def _owned_in(self, instance_id: str, subnet_id: str, owned: list[Eni]) -> Eni | None:
        """Our ENI for the instance in the subnet, among ``owned``. With several (parallel deliveries raced),
        keep one: every racer applies the same rule (an attached one, else the lowest id) and deletes the rest,
        so they converge on the same ENI.
        """
        mine = [eni for eni in owned if _in_subnet(eni, subnet_id)]
        if not mine:
            return None
        attached = [e for e in mine if e.attachment and e.attachment.instance_id == instance_id]
        keep = min(attached or mine, key=lambda e: e.eni_id)
        for extra in mine:
            if extra.eni_id != keep.eni_id and extra.attachment is None:
                self._log.warning(
                    "deleting duplicate ENI from a parallel delivery", extra={"eni": extra.eni_id, "kept": keep.eni_id}
                )
                self._ec2.delete_eni(extra.eni_id)
        return keep

    def _create(self, action: LifecycleAction, launch: _Launch, subnet: Subnet, budget: Budget) -> Eni:
        instance = launch.instance
        taken: set[IPAddress] = set()
        for attempt in range(1, self._settings.max_address_attempts + 1):
            budget.check(f"creating an ENI in {subnet.subnet_id}")
            if attempt > 1:
                launch.view.refresh(subnet)  # the collision says the view is stale: read the subnet again
            choice = self._strategy.choose(subnet, instance, launch.view, frozenset(taken))
            request = CreateEni(
                subnet_id=subnet.subnet_id,
                security_groups=self._settings.security_groups[subnet.subnet_id],
                tags=self._settings.tags_for(instance.instance_id, subnet.subnet_id, created_at=launch.created_at),
                client_token=client_token(instance.instance_id, subnet.subnet_id, choice),
                description=f"Multus ENI of {instance.instance_id} ({action.group})",
                ipv4=choice.ipv4,
                ipv6=choice.ipv6,
                ipv6_count=1 if choice.ipv6_auto else 0,
            )
            try:
                eni = self._ec2.create_eni(request)
            except IpAddressInUse:
                taken.update(a for a in (choice.ipv4, choice.ipv6) if a is not None)
                self._strategy.refused(subnet, choice)
                self._metrics.count(Metric.ADDRESS_CONFLICTS)
                self._log.info(
                    "address taken meanwhile, choosing again",
                    extra={"subnet": subnet.subnet_id, "address": str(choice.ipv4 or choice.ipv6), "attempt": attempt},
                )
                continue
            launch.known[eni.eni_id] = eni
            self._metrics.count(Metric.ENIS_CREATED)
            self._log.info(
                "created ENI",
                extra={"eni": eni.eni_id, "subnet": subnet.subnet_id, "reason": choice.reason, "attempt": attempt},
            )
            # A parallel delivery of the same event may have created another one for this subnet meanwhile: both
            # aim at the same device index, so the attach tells (see _settled_elsewhere), at no cost otherwise.
            return eni
        raise AddressConflictsExhausted(
            f"{self._settings.max_address_attempts} address choices in {subnet.subnet_id} were all taken "
            "by concurrent claims (MAX_ADDRESS_ATTEMPTS)"
        )

    def _attach(self, eni: Eni, launch: _Launch, desired: int, budget: Budget, *, switched: bool = False) -> Eni:
        """Attach at the desired device index (or the next free one). ``switched``: this ENI replaced one that a
        parallel delivery deleted; switching happens at most once, so flickering listings cannot loop.

        Every turn of the loop returns, raises, or spends one of three bounded allowances: device indexes
        (MAX_DEVICE_INDEX_TRIES), patience for a NotFound, and one look for (and switch to) another ENI.
        """
        instance = launch.instance
        if eni.attachment is not None:
            return self._attached_already(eni, instance)
        card = self._settings.network_card_index
        occupied = self._occupied(launch)
        index = choose_device_index(desired, occupied)
        if index != desired:
            self._device_index_fallback(eni, desired, index)
        patience = Patience(self._clock, budget.launch_until)
        looked_elsewhere = switched
        index_tries = 0
        while index_tries < MAX_DEVICE_INDEX_TRIES:
            budget.check(f"attaching {eni.eni_id}")
            try:
                attachment_id = self._ec2.attach_eni(eni.eni_id, instance.instance_id, index, card)
            except DeviceIndexTaken:
                if (settled := self._settled_elsewhere(eni, launch)) is not None:
                    return settled
                index_tries += 1
                occupied.add(index)
                index = choose_device_index(index + 1, occupied)
                self._device_index_fallback(eni, desired, index)
                continue
            except NotYetVisible as missing:
                # A parallel delivery may have deleted this ENI as a duplicate; asked only once the answer is not
                # explained by the usual lag any more (a listing per NotFound would double the launch's reads).
                if not missing.about_instance and not looked_elsewhere and patience.waited >= NEW_ENI_SETTLE_SECONDS:
                    looked_elsewhere = True
                    if (kept := self._converged_elsewhere(eni, launch)) is not None:
                        return self._attach(kept, launch, desired, budget, switched=True)
                if not patience.wait():
                    raise _still_not_found(missing, eni, instance, patience.waited) from missing
                self._log.info(
                    "not known to EC2 yet, attaching again",
                    extra={"eni": eni.eni_id, "code": missing.code, "waited": patience.waited},
                )
                continue  # the same index: a NotFound says nothing about it
            except AwsCallFailed:
                current = self._ec2.describe_eni(eni.eni_id)
                if current and current.attachment and current.attachment.instance_id == instance.instance_id:
                    return current  # "already attached" to us by a parallel delivery
                if current is None and not switched and (kept := self._converged_elsewhere(eni, launch)):
                    return self._attach(kept, launch, desired, budget, switched=True)
                raise
            occupied.add(index)
            attachment = Attachment(attachment_id, instance.instance_id, index, card, False, "attaching")
            return replace(eni, attachment=attachment, status="in-use")
        raise AwsCallFailed("AttachNetworkInterface", "NoFreeDeviceIndex", f"no free device index for {eni.eni_id}")

    def _attached_already(self, eni: Eni, instance: Instance) -> Eni:
        assert eni.attachment is not None
        if eni.attachment.instance_id == instance.instance_id:
            return eni
        raise AwsCallFailed(
            "AttachNetworkInterface",
            "EniAttachedElsewhere",
            f"{eni.eni_id} is tagged for {instance.instance_id} but attached to {eni.attachment.instance_id}",
        )

    def _occupied(self, launch: _Launch) -> set[int]:
        """Device indexes taken on our card, as DescribeInstances showed them; a racing attach (the VPC CNI's,
        a parallel delivery's) shows as DeviceIndexTaken."""
        if launch.occupied is None:
            card = self._settings.network_card_index
            launch.occupied = {i.device_index for i in launch.instance.interfaces if i.network_card_index == card}
        return launch.occupied

    def _settled_elsewhere(self, eni: Eni, launch: _Launch) -> Eni | None:
        """After DeviceIndexTaken: the ENI this launch should go on with instead of attaching ``eni``, if any.

        ``eni`` itself attached to the instance (a parallel delivery attached it): that one. Another ENI of ours
        for the same subnet attached to the instance (a parallel delivery created and attached its own): that
        one, and ``eni`` is deleted as a duplicate. None: the index is someone else's (the VPC CNI's)."""
        instance_id = launch.instance.instance_id
        fresh = self._ec2.owned_enis(self._settings.owner, instance_id)
        for current in fresh:
            if current.eni_id == eni.eni_id and current.attachment and current.attachment.instance_id == instance_id:
                return current
        for other in fresh:
            if (
                other.eni_id != eni.eni_id
                and _in_subnet(other, eni.subnet_id)
                and other.attachment
                and other.attachment.instance_id == instance_id
            ):
                self._log.warning(
                    "deleting duplicate ENI from a parallel delivery", extra={"eni": eni.eni_id, "kept": other.eni_id}
                )
                self._ec2.delete_eni(eni.eni_id)
                launch.known.pop(eni.eni_id, None)
                return other
        return None

    def _device_index_fallback(self, eni: Eni, desired: int, index: int) -> None:
        self._metrics.count(Metric.DEVICE_INDEX_FALLBACKS)
        self._log.warning(
            "device index taken, using the next free one",
            extra={"eni": eni.eni_id, "desired_index": desired, "device_index": index},
        )

    def _converged_elsewhere(self, eni: Eni, launch: _Launch) -> Eni | None:
        """The other ENI of ours for this instance and subnet that parallel deliveries converge on, if ``eni``
        is not it (a parallel delivery may have deleted ``eni`` as a duplicate)."""
        fresh = self._ec2.owned_enis(self._settings.owner, launch.instance.instance_id)
        kept = self._owned_in(launch.instance.instance_id, eni.subnet_id, fresh)
        return kept if kept is not None and kept.eni_id != eni.eni_id else None

    def _subnets_in(self, availability_zone: str) -> list[Subnet]:
        if self._subnets is None:
            found = {s.subnet_id: s for s in self._ec2.describe_subnets(self._settings.subnet_ids)}
            missing = [s for s in self._settings.subnet_ids if s not in found]
            if missing:
                raise SubnetMisconfigured(f"MULTUS_SUBNET_IDS: {', '.join(missing)} not found")
            self._subnets = found  # subnets never change AZ or CIDR: cache per execution environment
        in_az = [
            self._subnets[s]
            for s in self._settings.subnet_ids
            if self._subnets[s].availability_zone == availability_zone
        ]
        if not in_az:
            raise SubnetMisconfigured(
                f"no subnet of MULTUS_SUBNET_IDS is in {availability_zone}; the group launches there, "
                "so its workers would have no Multus interface"
            )
        return in_az

    def _defer(
        self, action: LifecycleAction, budget: Budget, failure: LifecycleFailure, known: Sequence[Eni] = ()
    ) -> Outcome:
        """A failure a later attempt may not meet: keep what was made (the next attempt adopts it), make sure the
        hook outlives the wait for that attempt (a heartbeat), and let the event come back.

        If the action is no longer waiting, no attempt follows (see _done_elsewhere)."""
        reason = f"{type(failure).__name__}: {failure}"
        with self._deadline.within(budget.rollback_until):
            if not self._still_waiting(action):
                return self._done_elsewhere(known, reason)
            self._metrics.count(Metric.LAUNCHES_DEFERRED)
            self._log.warning(
                "launch step failed for a reason a later attempt may not meet: the event comes back",
                extra={"error": str(failure), "error_type": type(failure).__name__},
            )
            if self._heartbeat_needed(action, budget):
                try:
                    self._autoscaling.record_heartbeat(
                        group=action.group, hook=action.hook, token=action.token, instance_id=action.instance_id
                    )
                except MultusIpamError as error:
                    self._log.error("could not record a lifecycle heartbeat", extra={"error": str(error)})
                else:
                    self._metrics.count(Metric.HEARTBEATS)
        return Outcome(Status.DEFERRED, reason=reason)

    def _done_elsewhere(self, known: Sequence[Eni], reason: str) -> Outcome:
        """A launch step failed, but the action is no longer waiting (another delivery completed it, or it timed
        out): nothing is rolled back and no attempt follows. The ENIs this invocation made or adopted and did not
        attach would belong to nobody (the orphan sweep keeps the ENIs of a live instance), so they are deleted;
        attached ones belong to the node and stay."""
        self._metrics.count(Metric.ALREADY_COMPLETED)
        self._log.warning("launch step failed, but the action is no longer waiting: nothing rolled back")
        self._drop_unattached(known)
        return Outcome(Status.ALREADY_COMPLETED, reason=reason)

    def _drop_unattached(self, known: Sequence[Eni]) -> None:
        """Best effort: EC2 refuses to delete an ENI attached meanwhile (by the delivery that completed)."""
        for eni in known:
            if eni.attachment is not None:
                continue
            try:
                self._ec2.delete_eni(eni.eni_id)
            except MultusIpamError as error:
                self._log.warning(
                    "kept an ENI that could not be deleted", extra={"eni": eni.eni_id, "error": str(error)}
                )
            else:
                self._metrics.count(Metric.ENIS_RELEASED)
                self._log.info("deleted an ENI no attempt will attach", extra={"eni": eni.eni_id})

    def _heartbeat_needed(self, action: LifecycleAction, budget: Budget) -> bool:
        """Whether the hook may time out before the next attempt ends: that attempt comes RETRY_DELAY_SECONDS
        from now at the latest and may take as long as this invocation had. Counted from the event's time (the
        start of the wait; a heartbeat recorded since only makes this more cautious than needed)."""
        if action.time is None or action.token is None:
            return True  # no event time, or the reconciler's event (its time is when it first saw the wait)
        waited = (self._clock.now() - action.time).total_seconds()
        next_attempt_ends = waited + self._settings.retry_delay_seconds + budget.total_seconds
        return next_attempt_ends >= self._settings.hook_heartbeat_timeout_seconds

    def _fail(self, action: LifecycleAction, budget: Budget, error: Exception, known: Sequence[Eni] = ()) -> Outcome:
        result = self._settings.failure_result
        reason = f"{type(error).__name__}: {error}"
        with self._deadline.within(budget.rollback_until):
            if not self._still_waiting(action):
                # A late redelivery of an action that was completed meanwhile: the attached ENIs belong to a node
                # that is in service (or gone). Rolling back would strip a healthy node.
                return self._done_elsewhere(known, reason)
            self._log.error(
                "launch failed, rolling back",
                extra={"error": str(error), "error_type": type(error).__name__, "result": result.value},
            )
            self._metrics.count(Metric.LAUNCH_FAILURES)
            left = self._release(action.instance_id, budget, everything=True, known=known)
            self._metrics.count(Metric.ROLLBACKS)
        completed = self._complete(action, result, budget)
        if left:
            raise RollbackIncomplete(
                f"completed {action.instance_id} with {result.value}, but could not release {', '.join(left)}"
            )
        return Outcome(Status.COMPLETED if completed else Status.ALREADY_COMPLETED, result, reason=reason)

    def _still_waiting(self, action: LifecycleAction) -> bool:
        """Whether the instance still waits on an action of this kind. If that cannot be read, assume it does:
        the first delivery of a launch is by far the common case."""
        try:
            membership = self._membership(action)
        except MultusIpamError as error:
            self._log.warning("could not read the lifecycle state", extra={"error": str(error)})
            return True
        return verify(action, self._settings.group_name, membership) is None

    # --- terminate ------------------------------------------------------------------------------------

    def _terminate(self, action: LifecycleAction, budget: Budget) -> Outcome:
        if action.into_warm_pool:
            self._log.info("instance goes back to the warm pool: keeping its ENIs")
            completed = self._complete(action, LifecycleResult.CONTINUE, budget)
            return Outcome(
                Status.COMPLETED if completed else Status.ALREADY_COMPLETED,
                LifecycleResult.CONTINUE,
                reason="warm pool",
            )
        try:
            with self._deadline.within(budget.rollback_until):
                left = self._release(action.instance_id, budget, everything=False)
        except Exception:
            self._log.exception("unexpected error while releasing ENIs")
            self._complete(action, LifecycleResult.CONTINUE, budget)
            raise
        completed = self._complete(action, LifecycleResult.CONTINUE, budget)
        if left:
            raise RollbackIncomplete(f"completed {action.instance_id}, but could not release {', '.join(left)}")
        return Outcome(Status.COMPLETED if completed else Status.ALREADY_COMPLETED, LifecycleResult.CONTINUE)

    # --- shared steps ---------------------------------------------------------------------------------

    def _release(self, instance_id: str, budget: Budget, *, everything: bool, known: Sequence[Eni] = ()) -> list[str]:
        """Detach and delete our ENIs of the instance until the rollback's deadline; returns the ids that could
        not be released (and those the time did not allow to try).

        ``everything`` False keeps attached ENIs with DeleteOnTermination: EC2 deletes them with the instance. An
        ENI attached to another instance is that instance's, whatever its tags say: it is kept.
        ``known``: ENIs this invocation made or attached; released even if the listing does not show them yet.
        """
        left: list[str] = []
        try:
            listed = self._ec2.owned_enis(self._settings.owner, instance_id)
        except MultusIpamError as error:
            # The action must still be completed; the caller reports what could not be checked.
            self._log.error("could not list our ENIs to release them", extra={"error": str(error)})
            return [f"(unknown: listing ENIs of {instance_id} failed: {error})"]
        owned = in_multus_subnets(listed, self._settings.subnet_ids, self._log)
        owned, unconfirmed = self._with_known(owned, known, budget)
        left.extend(unconfirmed)
        for eni in owned:
            attachment = eni.attachment
            if attachment is not None and attachment.instance_id != instance_id:
                # Tagged for this instance, but another one has it (an operator moved it): that one's now.
                self._log.warning(
                    "kept an ENI tagged for this instance that another instance has attached",
                    extra={"eni": eni.eni_id, "attached_to": attachment.instance_id},
                )
                continue
            if (
                not everything
                and attachment
                and attachment.instance_id == instance_id
                and attachment.delete_on_termination
            ):
                continue
            if budget.seconds_until(budget.rollback_until) <= 0:
                self._log.error("no time left to release ENI: the completion comes first", extra={"eni": eni.eni_id})
                left.append(eni.eni_id)
                continue
            try:
                if attachment is not None:
                    self._ec2.detach_eni(attachment.attachment_id)
                    self._wait_detached(eni.eni_id, budget)
                self._ec2.delete_eni(eni.eni_id)
            except (MultusIpamError, TimeoutError) as error:
                self._log.error("could not release ENI", extra={"eni": eni.eni_id, "error": str(error)})
                left.append(eni.eni_id)
                continue
            self._metrics.count(Metric.ENIS_RELEASED)
            self._log.info("released ENI", extra={"eni": eni.eni_id})
        return left

    def _with_known(self, listed: list[Eni], known: Sequence[Eni], budget: Budget) -> tuple[list[Eni], list[str]]:
        """The listing, completed with what this invocation knows: an ENI it made that the listing does not
        show yet (waited for, bounded), and an attachment it made that the listing does not show yet. Returns
        the ENIs to release and the ids it had no time to confirm."""
        enis = {eni.eni_id: eni for eni in listed}
        unconfirmed: list[str] = []
        for mine in known:
            shown = enis.get(mine.eni_id)
            if shown is None:
                try:
                    shown = self._shown_eventually(mine.eni_id, budget)
                except DeadlineExceeded:
                    unconfirmed.append(mine.eni_id)
                    continue
                if shown is None:
                    self._log.info("an ENI this launch made is gone already", extra={"eni": mine.eni_id})
                    continue
            if shown.attachment is None and mine.attachment is not None:
                shown = replace(shown, attachment=mine.attachment)
            enis[mine.eni_id] = shown
        return list(enis.values()), unconfirmed

    def _shown_eventually(self, eni_id: str, budget: Budget) -> Eni | None:
        """The ENI once EC2 shows it (a new one may not be shown at first); None if it still is not after a
        bounded wait: deleted meanwhile (a parallel delivery). Raises DeadlineExceeded when out of time."""
        patience = Patience(self._clock, budget.rollback_until)
        while (current := self._ec2.describe_eni(eni_id)) is None:
            if not patience.wait():
                return None
        return current

    def _wait_detached(self, eni_id: str, budget: Budget) -> None:
        """Detaching is asynchronous: wait (bounded by DETACH_TIMEOUT_SECONDS and by the rollback's deadline)
        until the ENI is available before deleting it."""
        started = self._clock.now()
        until = min(started + timedelta(seconds=self._settings.detach_timeout_seconds), budget.rollback_until)
        delay = 0.5
        while True:
            current = self._ec2.describe_eni(eni_id)
            if current is None or current.status == "available":
                return
            left = (until - self._clock.now()).total_seconds()
            if left <= 0:
                waited = (self._clock.now() - started).total_seconds()
                raise TimeoutError(f"{eni_id} still {current.status} after {waited:.0f}s")
            self._clock.sleep(min(delay, left))
            delay = min(delay * 2, 5.0)

    def _complete(self, action: LifecycleAction, result: LifecycleResult, budget: Budget) -> bool:
        """Complete the action with the time that is left; False when it had already been completed (a
        redelivery, a timeout).

        "No active Lifecycle Action" is final once the instance no longer waits on this action; it has been
        reported briefly while the instance still waits, so then retry a few times with backoff (time allowing).
        """
        delay, attempts = 1.0, 4
        with self._deadline.within(budget.end):
            for attempt in range(1, attempts + 1):
                try:
                    self._autoscaling.complete_lifecycle_action(
                        group=action.group,
                        hook=action.hook,
                        token=action.token,
                        instance_id=action.instance_id,
                        result=result,
                    )
                except LifecycleActionGone:
                    membership = self._membership(action)
                    if verify(action, self._settings.group_name, membership) is not None:
                        self._metrics.count(Metric.ALREADY_COMPLETED)
                        self._log.info(
                            "lifecycle action was already completed",
                            extra={"lifecycle_state": membership.lifecycle_state if membership else "not in group"},
                        )
                        return False
                    if attempt == attempts or budget.seconds_until(budget.end) <= delay + 1:
                        break
                    self._clock.sleep(delay)
                    delay *= 2
                    continue
                self._metrics.count(Metric.CONTINUE if result is LifecycleResult.CONTINUE else Metric.ABANDON)
                self._log.info("lifecycle action completed", extra={"result": result.value})
                return True
        # Still "no active action" while the instance waits: another hook on the group holds it (ours is done),
        # or Auto Scaling has not caught up. Failing would bring the event back again and again (then to the
        # dead-letter queue) for an action that is most likely complete; if it is not, the reconciler queues the
        # event again after LOST_EVENT_GRACE_SECONDS.
        self._metrics.count(Metric.ALREADY_COMPLETED)
        self._log.warning(
            "CompleteLifecycleAction keeps answering 'No active Lifecycle Action' while the instance still waits "
            "(another hook holds it?): taken as completed",
            extra={"attempts": attempts},
        )
        return False


def _in_subnet(eni: Eni, subnet_id: str) -> bool:
    """Whether ``eni`` is the subnet's: by where it is, or by our subnet tag (the listing may lag)."""
    return eni.subnet_id == subnet_id or eni.tags.get(SUBNET_TAG) == subnet_id


def _still_not_found(missing: NotYetVisible, eni: Eni, instance: Instance, waited: float) -> LifecycleFailure:
    """The final decision on a NotFound that patience did not cure."""
    if missing.about_instance:
        return InstanceGone(
            f"instance {instance.instance_id} is not found ({missing.operation}: {missing.code}, "
            f"still after {waited:g}s)"
        )
    return AwsCallFailed(missing.operation, missing.code, f"{eni.eni_id} still not found after {waited:g}s")
