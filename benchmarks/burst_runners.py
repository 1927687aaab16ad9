"""How a burst's launch events reach the function: one runner per design, each returning what it delivered.

A runner takes the world, the launch events of the burst (right after ``World.scale_out``: the local AWS clock
stands at the launch) and the design's settings, delivers the events as that design would on the local AWS clock,
and returns a ``Delivered``. The metrics (``benchmarks.burst_metrics``) come from the local AWS's own records,
not from what a runner returns: the lifecycle results with their times, the call log, the token buckets.

* ``run_per_event``: today's design, the baseline. EventBridge invokes the function once per event,
  asynchronously and at once: every event in its own execution environment (its own runtime: clients, retry
  quota, caches), all as concurrent callers on the local AWS clock (``aws.run_concurrently``), each with the
  function's timeout counted on that clock.
* ``run_intake``: the intake design (issue 9). EventBridge puts each event on an SQS queue; a Lambda event
  source mapping polls it with ``ScalingConfig.MaximumConcurrency`` M and a batch size, each worker reusing its
  execution environment, and a message the function reports failed comes back after the visibility timeout
  (``localaws.intake``; without that module only ``--design intake`` fails, with ``NotImplementedError``).
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from multus_ipam.runtime import handle_event
from tests.handlers.world import FakeClock, FakeContext, World, deliver

#: template.yaml: the functions' Timeout.
FUNCTION_TIMEOUT_SECONDS = 180
#: tests.handlers.world's hooks: HeartbeatTimeout.
HOOK_HEARTBEAT_TIMEOUT_SECONDS = 300
#: What EventBridge takes to deliver a lifecycle event after the launch (AWS publishes no figure; typically
#: well under a few seconds). The new instances are visible to EC2's describes by then.
EVENTBRIDGE_DELAY_SECONDS = 5.0


@dataclass(frozen=True)
class Delivered:
    """What a runner did: its function invocations, how many of them failed (raised, timed out, or, for a batch,
    failed as a whole), and the local AWS time when it was done."""

    invocations: int
    failed_invocations: int
    ended_at: datetime
    notes: tuple[str, ...] = ()
    """Design-specific observations worth a line under the table."""


Runner = Callable[[World, Sequence[Mapping[str, Any]]], Delivered]
"""A design's delivery of a burst's launch events, its settings bound (``functools.partial``)."""


@dataclass(frozen=True)
class IntakeSettings:
    """The intake design's settings: the queue, its SQS event source mapping and the function it invokes.
    ``localaws.intake`` refuses what CreateEventSourceMapping refuses (MaximumConcurrency 2-1000, BatchSize
    above 10 without a batching window, a visibility timeout below the function timeout)."""

    maximum_concurrency: int = 10
    """ScalingConfig.MaximumConcurrency: concurrent invocations at most."""
    batch_size: int = 10
    """Messages per invocation at most (BatchSize)."""
    function_timeout_seconds: int = FUNCTION_TIMEOUT_SECONDS
    visibility_timeout_seconds: int = 210
    """The queue's VisibilityTimeout: how long a deferred or failed message takes to come back (the engine's
    RETRY_DELAY_SECONDS default)."""
    max_receive_count: int = 5
    """The queue's redrive maxReceiveCount (the engine's MAX_RECEIVE_COUNT default)."""
    max_seconds: float = 3600.0
    """The run ends after this much simulated time even if launch actions are still open."""

    @property
    def label(self) -> str:
        return f"intake M={self.maximum_concurrency} batch={self.batch_size}"


def run_per_event(
    world: World,
    events: Sequence[Mapping[str, Any]],
    *,
    function_timeout_seconds: int = FUNCTION_TIMEOUT_SECONDS,
) -> Delivered:
    """Today's design (the baseline): every event delivered at once, each to its own execution environment."""
    world.aws.clock.advance(EVENTBRIDGE_DELAY_SECONDS)
    tasks = [_execution_environment(world, event, function_timeout_seconds) for event in events]
    outcomes = world.aws.run_concurrently(tasks)
    failed = [o.error for o in outcomes if o.error is not None]
    kinds = Counter(type(error).__name__ for error in failed)
    notes = (f"invocations that raised, by exception: {dict(sorted(kinds.items()))}",) if failed else ()
    return Delivered(
        invocations=len(outcomes), failed_invocations=len(failed), ended_at=world.aws.clock.now(), notes=notes
    )


def _execution_environment(
    world: World, event: Mapping[str, Any], timeout_seconds: int
) -> Callable[[], dict[str, Any]]:
    """One delivery in its own execution environment: its own runtime (clients, retry quota, caches), the
    function's timeout counted from when the invocation starts."""
    clock = FakeClock(follow=world.aws.clock)
    runtime = world.runtime(clock=clock, page_size=1000)  # the production page size
    timeout_ms = timeout_seconds * 1000
    return lambda: deliver(runtime, dict(event), FakeContext(remaining_ms=timeout_ms, clock=clock))


def intake_available() -> bool:
    """Whether the local AWS models the intake (``localaws.intake``)."""
    return importlib.util.find_spec("localaws.intake") is not None


def run_intake(world: World, events: Sequence[Mapping[str, Any]], settings: IntakeSettings) -> Delivered:
    """The intake design: EventBridge puts each event on the intake queue (after EVENTBRIDGE_DELAY_SECONDS), the
    event source mapping (``localaws.intake``: MaximumConcurrency workers, each reusing its execution environment,
    ReportBatchItemFailures) invokes the function with batches, and a message the function reports failed comes
    back after the visibility timeout (to the dead-letter queue after maxReceiveCount receives). Done once no
    launch action of the burst is open and no batch is in flight, or after ``settings.max_seconds``."""
    if not intake_available():
        raise NotImplementedError("the intake design needs localaws.intake: run --design baseline")
    from localaws import intake  # noqa: PLC0415 - optional until localaws.intake is in every checkout

    aws = world.aws
    arrival = aws.clock.now() + timedelta(seconds=EVENTBRIDGE_DELAY_SECONDS)
    queue = intake.create_queue_pair(
        aws,
        "multus-intake",
        visibility_timeout=settings.visibility_timeout_seconds,
        max_receive_count=settings.max_receive_count,
    )
    env = {  # the engine's view of the same queue and hooks
        "RETRY_DELAY_SECONDS": str(settings.visibility_timeout_seconds),
        "MAX_RECEIVE_COUNT": str(settings.max_receive_count),
        "HOOK_HEARTBEAT_TIMEOUT_SECONDS": str(HOOK_HEARTBEAT_TIMEOUT_SECONDS),
    }

    def make_environment() -> intake.Handler:
        runtime = world.runtime(world.mode, FakeClock(follow=aws.clock), 1000, **env)
        return lambda event, context: handle_event(runtime, event, context)

    mapping = intake.EventSourceMapping(
        aws,
        queue_url=queue.url,
        make_environment=make_environment,
        function_timeout_seconds=settings.function_timeout_seconds,
        maximum_concurrency=settings.maximum_concurrency,
        batch_size=settings.batch_size,
        report_batch_item_failures=True,
    )
    burst = {str(event["detail"]["EC2InstanceId"]) for event in events}
    aws.clock.advance(max((arrival - aws.clock.now()).total_seconds(), 0.0))  # the set-up's calls took some time
    mapping.put_events(events)
    report = mapping.run(
        lambda: not any(a.instance_id in burst for a in aws.lifecycle.active()), max_seconds=settings.max_seconds
    )
    invocations = mapping.invocations
    failures = (
        intake.InvocationResult.ERROR,
        intake.InvocationResult.TIMED_OUT,
        intake.InvocationResult.INVALID_RESPONSE,
    )
    results = Counter(i.result.value for i in invocations)
    sqs = aws.client("sqs")
    dead = sqs.get_queue_attributes(QueueUrl=queue.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    notes = (
        f"invocations by result: {dict(sorted(results.items()))}; at most {mapping.max_concurrent_invocations} at "
        f"once; {mapping.environments_made} execution environments; deliveries per message: at most "
        f"{max(mapping.deliveries.values(), default=0)}; "
        f"{dead['Attributes']['ApproximateNumberOfMessages']} messages in the dead-letter queue"
        + ("" if report.reached else f"; stopped after {settings.max_seconds:.0f} s with launch actions open"),
    )
    return Delivered(
        invocations=len(invocations),
        failed_invocations=sum(1 for i in invocations if i.result in failures),
        ended_at=report.ended,
        notes=notes,
    )
