"""The burst's figures, read from the local AWS's own records, never from what the function said it did.

* **results**: ``aws.lifecycle.results``, the launch hook's accepted results for the burst's instances
  (``by="api"``: CompleteLifecycleAction; ``by="timeout"``: the hook's DefaultResult). An action still open
  when the runner is done is left to time out on the clock first, so every instance has a result.
* **launch to completion**: the result's ``at`` minus the lifecycle action's ``started`` (the moment of
  SetDesiredCapacity); p50 / p95 / max by nearest rank.
* **calls**: ``aws.calls`` from the launch until the runner is done: our clients' HTTP attempts, per API (the
  intake's SQS calls too, reported apart); a throttled attempt (``RequestLimitExceeded``, ``Throttling``) counts
  under "throttled", every other one under "calls". Calls made on a runner's background threads (the intake's
  reconciler: ``Delivered.background_threads``, matched with ``Call.thread``) are reported apart, not per launch,
  but take part in the floor. The VPC CNI actors call nothing through boto3
  (``localaws.vpc_cni``): their steps are in ``aws.vpc_cni.steps``, not in the call log.
* **bucket floor**: the least time the burst's requests need at the buckets' refill rates. Per bucket, the
  tokens taken from the launch until the last result (our calls that were not throttled, and the VPC CNI
  actors' steps that took a token): ``max(0, tokens - size) / (refill * (1 - others_share))``, buckets full at
  the launch. The floor is the largest; its bucket binds. The tokens are checked against the buckets' own count
  (``aws.buckets.taken``, which counts both) over the whole run.
* **leaked ENIs**: ENIs with our owner tag, once the visibility lag and detaches are over, that are not attached
  to an instance both running (EC2) and InService (Auto Scaling).
* **device index misses**: nodes in service whose Multus ENIs are not at device indexes 1 and 2 of network
  card 0, in subnet order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from benchmarks.burst_runners import Delivered
from localaws import Bucket, Call, LifecycleResult, LocalAWS
from localaws.throttling import Buckets
from localaws.vpc_cni import Step
from multus_ipam.settings import OWNER_TAG
from tests.handlers.world import GROUP, LAUNCH_HOOK, World

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import NetworkInterfaceTypeDef

#: The services whose requests take tokens from the account's buckets (localaws.throttling); others (the
#: intake's SQS) are counted as calls but are no part of the floor.
THROTTLED_SERVICES = frozenset({"ec2", "autoscaling"})
#: What a throttled attempt is answered with (localaws.throttling: EC2, Auto Scaling).
THROTTLED = frozenset({"RequestLimitExceeded", "Throttling"})
#: How the tables name the services.
SERVICE_NAMES = {"ec2": "EC2", "autoscaling": "ASG", "sqs": "SQS"}
#: VPC CNI step outcomes that took a token (localaws.vpc_cni: the device-index check comes after the token).
_CNI_TOOK_A_TOKEN = frozenset({"ok", "stopped: no free device index"})
#: Wire parameters (query protocol) that make a non-mutating EC2 request filtered or paginated: Filter.N.*,
#: MaxResults, NextToken, or a list of ids (InstanceId.N, SubnetId.N, ...), as localaws.throttling decides.
_NARROWING = re.compile(r"^(Filter\.\d+\.|MaxResults$|NextToken$|\w+Id\.\d+$)")
_NON_MUTATING = ("Describe", "Get", "List", "Search")
_API = tuple[str, str]  # (service, operation)


@dataclass(frozen=True)
class Launches:
    """The burst as launched: each instance's launch moment, and what the buckets had counted by then."""

    started: Mapping[str, datetime]
    """instance id -> its launch action's ``started`` (SetDesiredCapacity)."""
    taken_before: Mapping[_API, int]

    @classmethod
    def of(cls, aws: LocalAWS, events: Sequence[Mapping[str, Any]]) -> Launches:
        """Right after ``World.scale_out``: the burst's launch actions are the active ones with the events' tokens."""
        tokens = {str(event["detail"]["LifecycleActionToken"]) for event in events}
        started = {a.instance_id: a.started for a in aws.lifecycle.active() if a.token in tokens}
        return cls(started=started, taken_before=dict(_buckets(aws).taken))

    @property
    def at(self) -> datetime:
        return min(self.started.values())


@dataclass(frozen=True)
class BucketUse:
    service: str
    key: str
    """The bucket's key in ``localaws.throttling`` (the operation, ``...:unfiltered`` for the smaller bucket)."""
    bucket: Bucket
    ours: int
    vpc_cni: int
    seconds: float
    """max(0, tokens - size) / (refill * (1 - others_share))."""

    @property
    def name(self) -> str:
        return f"{SERVICE_NAMES.get(self.service, self.service)} {self.key}"


@dataclass(frozen=True)
class BurstMetrics:
    design: str
    n: int
    results: Mapping[tuple[str, str], int]
    """(CONTINUE | ABANDON, api | timeout) -> instances."""
    unfinished: int
    times: Sequence[float]
    """Launch to completion per instance with a result, seconds, sorted."""
    buckets: Sequence[BucketUse]
    """Sorted by time needed, the binding bucket first."""
    calls: Mapping[_API, int]
    """The function's calls (and, for the intake, EventBridge's and the mapping's SQS calls)."""
    throttled: Mapping[_API, int]
    background_calls: Mapping[_API, int]
    """Calls of the runner's background callers (the intake's reconciler): not per launch, in the floor."""
    background_throttled: Mapping[_API, int]
    vpc_cni_throttled: int
    token_mismatches: Mapping[_API, tuple[int, int]]
    """(service, operation) -> (tokens by the call log and the VPC CNI steps, tokens by the buckets): empty when
    the two agree, as they should."""
    leaked: Sequence[str]
    index_misses: Sequence[str]
    replacements: int
    """Launches the group made after an ABANDON; no runner delivers their events."""
    invocations: int
    failed_invocations: int
    notes: Sequence[str]
    """The runner's own observations."""
    simulated_seconds: float
    """From the launch until the runner was done (its last invocation ended)."""
    wall_seconds: float

    def count(self, result: str, by: str | None = None) -> int:
        return sum(v for (r, b), v in self.results.items() if r == result and by in (None, b))

    def percentile(self, p: float) -> float:
        """Nearest rank."""
        if not self.times:
            return math.nan
        return self.times[max(math.ceil(p / 100 * len(self.times)), 1) - 1]

    @property
    def floor(self) -> BucketUse | None:
        return self.buckets[0] if self.buckets else None

    def per_launch(self, service: str, counts: Mapping[_API, int]) -> float:
        return sum(v for (s, _), v in counts.items() if s == service) / self.n


def measure(
    world: World, launches: Launches, delivered: Delivered, *, design: str, wall_seconds: float
) -> BurstMetrics:
    """Read the figures off the local AWS once the runner is done (see the module docstring). Moves the clock
    on: past open actions' timeouts, then past the visibility lag and detaches."""
    aws = world.aws
    buckets = _buckets(aws)
    calls = [c for c in aws.calls if c.at >= launches.at]  # before our own describes below join the log
    throttled_services = [c for c in calls if c.service in THROTTLED_SERVICES]
    steps = [s for s in aws.vpc_cni.steps if s.at >= launches.at]
    taken_now = dict(buckets.taken)
    _settle(world, launches)
    results: dict[str, LifecycleResult] = {}
    for result in aws.lifecycle.results:
        if result.instance_id in launches.started and result.hook == LAUNCH_HOOK:
            results.setdefault(result.instance_id, result)
    times = sorted((r.at - launches.started[r.instance_id]).total_seconds() for r in results.values())
    last = max((r.at for r in results.values()), default=delivered.ended_at)
    function = [c for c in calls if c.thread not in delivered.background_threads]
    background = [c for c in calls if c.thread in delivered.background_threads]
    in_service = _in_service(world)
    enis = world.our_enis()
    continued = {i for i, r in results.items() if r.result == "CONTINUE"}
    return BurstMetrics(
        design=design,
        n=len(launches.started),
        results=Counter((r.result, r.by) for r in results.values()),
        unfinished=len(launches.started) - len(results),
        times=times,
        buckets=_floor(
            buckets, aws, [c for c in throttled_services if c.at <= last], [s for s in steps if s.at <= last]
        ),
        calls=_ours(function),
        throttled=_throttled(function),
        background_calls=_ours(background),
        background_throttled=_throttled(background),
        vpc_cni_throttled=sum(1 for s in steps if s.outcome in THROTTLED),
        token_mismatches=_token_check(launches.taken_before, taken_now, throttled_services, steps),
        leaked=sorted(e["NetworkInterfaceId"] for e in enis if _attached_to(e) not in in_service),
        index_misses=_index_misses(world, enis, continued & in_service),
        replacements=len(
            {r.instance_id for r in aws.lifecycle.results if r.hook == LAUNCH_HOOK}.union(
                a.instance_id for a in aws.lifecycle.active() if a.hook == LAUNCH_HOOK
            ).difference(launches.started)
        ),
        invocations=delivered.invocations,
        failed_invocations=delivered.failed_invocations,
        notes=delivered.notes,
        simulated_seconds=(delivered.ended_at - launches.at).total_seconds(),
        wall_seconds=wall_seconds,
    )


def _buckets(aws: LocalAWS) -> Buckets:
    if aws.buckets is None:
        raise ValueError("the burst benchmark needs the local AWS's token buckets (Realism.throttling)")
    return aws.buckets


def _settle(world: World, launches: Launches) -> None:
    """Let what is still open end on the clock: the burst's unanswered launch actions time out (the hook's
    DefaultResult), new ENIs become visible, detaches finish and the buckets refill for our describes."""
    aws = world.aws
    open_deadlines = [
        min(a.deadline, a.global_deadline) for a in aws.lifecycle.active() if a.instance_id in launches.started
    ]
    if open_deadlines:
        aws.clock.advance(max((max(open_deadlines) - aws.clock.now()).total_seconds(), 0.0) + 0.001)
    realism = aws.realism
    detach = realism.detach_seconds[1] if realism.detach_seconds else 0.0
    aws.clock.advance(realism.visibility_lag + detach + 10.0)


def _ours(calls: Sequence[Call]) -> Counter[_API]:
    return Counter((c.service, c.operation) for c in calls if c.outcome not in THROTTLED)


def _throttled(calls: Sequence[Call]) -> Counter[_API]:
    return Counter((c.service, c.operation) for c in calls if c.outcome in THROTTLED)


def _bucket_of(buckets: Buckets, service: str, operation: str, wire: Mapping[str, str] | None) -> tuple[str, Bucket]:
    """The bucket a request took its token from. ``wire``: the request's parameters as logged (None: the VPC CNI's
    requests, made with ids). The log keeps the wire form, so narrowing is recognised on it."""
    if service != "ec2" or wire is None or not operation.startswith(_NON_MUTATING):
        return buckets.bucket_for(service, operation, None)
    narrowed = any(_NARROWING.match(key) for key in wire)
    return buckets.bucket_for(service, operation, None if narrowed else {})


def _floor(buckets: Buckets, aws: LocalAWS, calls: Sequence[Call], steps: Sequence[Step]) -> list[BucketUse]:
    throttling = aws.realism.throttling
    assert throttling is not None
    share = 1.0 - throttling.others_share
    ours: Counter[tuple[str, str]] = Counter()
    figures: dict[tuple[str, str], Bucket] = {}
    for call in calls:
        if call.outcome in THROTTLED:
            continue
        key, bucket = _bucket_of(buckets, call.service, call.operation, call.params)
        ours[(call.service, key)] += 1
        figures[(call.service, key)] = bucket
    cni: Counter[tuple[str, str]] = Counter()
    for step in steps:
        if step.outcome in _CNI_TOOK_A_TOKEN:
            key, bucket = _bucket_of(buckets, "ec2", step.operation, None)
            cni[("ec2", key)] += 1
            figures[("ec2", key)] = bucket
    uses = [
        BucketUse(
            service=service,
            key=key,
            bucket=bucket,
            ours=ours[(service, key)],
            vpc_cni=cni[(service, key)],
            seconds=max(0.0, ours[(service, key)] + cni[(service, key)] - bucket.size) / (bucket.refill * share),
        )
        for (service, key), bucket in figures.items()
    ]
    return sorted(uses, key=lambda u: (-u.seconds, -(u.ours + u.vpc_cni), u.name))


def _token_check(
    before: Mapping[_API, int], after: Mapping[_API, int], calls: Sequence[Call], steps: Sequence[Step]
) -> dict[_API, tuple[int, int]]:
    """Tokens by the call log and the VPC CNI steps against the buckets' own count, per API, over the run."""
    counted = _ours(calls)
    counted.update(("ec2", s.operation) for s in steps if s.outcome in _CNI_TOOK_A_TOKEN)
    by_buckets = {api: after[api] - before.get(api, 0) for api in after if after[api] != before.get(api, 0)}
    return {
        api: (counted.get(api, 0), by_buckets.get(api, 0))
        for api in sorted(set(counted) | set(by_buckets))
        if counted.get(api, 0) != by_buckets.get(api, 0)
    }


def _in_service(world: World) -> set[str]:
    """Instances both running (EC2) and InService (Auto Scaling)."""
    group = world.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    serving = {i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"}
    pages = world.ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}]
    )
    running = {i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]}
    return serving & running


def _attached_to(eni: NetworkInterfaceTypeDef) -> str | None:
    attachment = eni.get("Attachment")
    if attachment is None or attachment.get("Status") not in ("attaching", "attached"):
        return None
    return attachment.get("InstanceId")


def _index_misses(world: World, enis: Sequence[NetworkInterfaceTypeDef], nodes: set[str]) -> list[str]:
    """Nodes whose Multus ENIs are not at (network card 0, device index 1, 2, ...) in subnet order."""
    wanted = {subnet: (0, index) for index, subnet in enumerate(world.multus_subnets[:2], start=1)}
    got: dict[str, dict[str, tuple[int, int]]] = {node: {} for node in nodes}
    for eni in enis:
        node = _attached_to(eni)
        if node in got and OWNER_TAG in {t["Key"] for t in eni.get("TagSet", [])}:
            attachment = eni["Attachment"]
            place = (attachment.get("NetworkCardIndex", 0), attachment["DeviceIndex"])
            got[node][eni["SubnetId"]] = place
    return sorted(node for node, places in got.items() if places != wanted)
