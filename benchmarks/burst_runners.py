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
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from multus_ipam.aws.clients import Clients, retry_config
from multus_ipam.runtime import build_reconciler, handle_event
from tests.handlers.world import LAUNCH_HOOK, TERMINATE_HOOK, FakeClock, FakeContext, World, deliver

#: template.yaml: the functions' Timeout.
FUNCTION_TIMEOUT_SECONDS = 180
#: Lambda's retries of a failed asynchronous invocation (EventBridge invokes asynchronously): two, after about
#: one and then two minutes (Lambda developer guide, "Error handling and automatic retries").
ASYNC_RETRY_DELAYS_SECONDS = (60.0, 120.0)
#: template.yaml: HookHeartbeatTimeout's default (the stack refuses less than 420 s).
HOOK_HEARTBEAT_TIMEOUT_SECONDS = 600
#: template.yaml: the reconciler's Timeout and schedule.
RECONCILER_TIMEOUT_SECONDS = 60
RECONCILER_EVERY_SECONDS = 60.0
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
    background_threads: frozenset[str] = frozenset()
    """Threads whose AWS calls are not the function's (the intake's reconciler): ``Call.thread`` tells them."""


Runner = Callable[[World, Sequence[Mapping[str, Any]]], Delivered]
"""A design's delivery of a burst's launch events, its settings bound (``functools.partial``)."""


@dataclass(frozen=True)
class IntakeSettings:
    """The intake design's settings, defaults as template.yaml deploys it: the queue, its SQS event source
    mapping, the function it invokes and the scheduled reconciler. ``localaws.intake`` refuses what
    CreateEventSourceMapping refuses (MaximumConcurrency 2-1000, BatchSize above 10 without a batching window, a
    visibility timeout below the function timeout)."""

    maximum_concurrency: int = 20
    """ScalingConfig.MaximumConcurrency (IntakeMaximumConcurrency)."""
    batch_size: int = 1
    """Messages per invocation at most (BatchSize)."""
    function_timeout_seconds: int = FUNCTION_TIMEOUT_SECONDS
    visibility_timeout_seconds: int = 210
    """The queue's VisibilityTimeout (the function's RETRY_DELAY_SECONDS): when a deferred message comes back."""
    max_receive_count: int = 5
    """The queue's redrive maxReceiveCount (IntakeMaxReceiveCount, the function's MAX_RECEIVE_COUNT)."""
    hook_heartbeat_timeout_seconds: int = HOOK_HEARTBEAT_TIMEOUT_SECONDS
    """The world's hooks' HeartbeatTimeout, as the function is told it (HOOK_HEARTBEAT_TIMEOUT_SECONDS)."""
    reconciler: bool = True
    """Run the reconciler every minute meanwhile (its calls count as ours)."""
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
    """Today's design (the baseline): every event delivered at once, each to its own execution environment; an
    invocation that fails is retried as Lambda retries asynchronous invocations."""
    world.aws.clock.advance(EVENTBRIDGE_DELAY_SECONDS)
    tasks = [_execution_environment(world, event, function_timeout_seconds) for event in events]
    outcomes = [outcome.get() for outcome in world.aws.run_concurrently(tasks)]
    failed = [error for _, errors in outcomes for error in errors]
    kinds = Counter(type(error).__name__ for error in failed)
    notes = (f"invocations that raised, by exception: {dict(sorted(kinds.items()))}",) if failed else ()
    return Delivered(
        invocations=sum(invocations for invocations, _ in outcomes),
        failed_invocations=len(failed),
        ended_at=world.aws.clock.now(),
        notes=notes,
    )


def _execution_environment(
    world: World, event: Mapping[str, Any], timeout_seconds: int
) -> Callable[[], tuple[int, list[Exception]]]:
    """One event's invocations in its own execution environment (its own runtime: clients, retry quota, caches),
    each with the function's timeout counted from its start: the first, then a retry after each failure, as
    Lambda retries an asynchronous invocation. Returns the invocations made and the errors they raised."""
    clock = FakeClock(follow=world.aws.clock)
    runtime = world.runtime(clock=clock, page_size=1000)  # the production page size
    timeout_ms = timeout_seconds * 1000

    def invoke() -> tuple[int, list[Exception]]:
        invocations, errors = 0, list[Exception]()
        for retry_after in (*ASYNC_RETRY_DELAYS_SECONDS, None):
            invocations += 1
            try:
                deliver(runtime, dict(event), FakeContext(remaining_ms=timeout_ms, clock=clock))
            except Exception as error:  # noqa: BLE001 - any function error is a failed invocation, as in Lambda
                errors.append(error)
                if retry_after is not None:
                    clock.sleep(retry_after)
                    continue
            break
        return invocations, errors

    return invoke


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
    env = world.env(  # as template.yaml configures the function
        LIFECYCLE_HOOK_NAMES=f"{LAUNCH_HOOK},{TERMINATE_HOOK}",
        RETRY_DELAY_SECONDS=str(settings.visibility_timeout_seconds),
        MAX_RECEIVE_COUNT=str(settings.max_receive_count),
        HOOK_HEARTBEAT_TIMEOUT_SECONDS=str(settings.hook_heartbeat_timeout_seconds),
    )

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
    reconciler_threads: set[str] = set()
    reconcile = _reconciler(world, queue.url, env, reconciler_threads)
    extra = [mapping.every(RECONCILER_EVERY_SECONDS, reconcile)] if settings.reconciler else []
    report = mapping.run(
        lambda: not any(a.instance_id in burst for a in aws.lifecycle.active()),
        extra_tasks=extra,
        max_seconds=settings.max_seconds,
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
        background_threads=frozenset(reconciler_threads),
    )


def _reconciler(world: World, queue_url: str, env: Mapping[str, str], threads: set[str]) -> Callable[[], object]:
    """One scheduled run of the reconciler (reserved concurrency 1: one execution environment, reused); adds the
    thread it runs on to ``threads``."""
    clock = FakeClock(follow=world.aws.clock)
    clients = Clients(
        ec2=world.aws.client("ec2", config=retry_config(10)),
        autoscaling=world.aws.client("autoscaling", config=retry_config(10)),
        sqs=world.aws.client("sqs", config=retry_config(10)),
    )
    reconciler, metrics = build_reconciler({**env, "INTAKE_QUEUE_URL": queue_url}, clients=clients, clock=clock)

    def run() -> object:
        threads.add(threading.current_thread().name)
        context = FakeContext(remaining_ms=RECONCILER_TIMEOUT_SECONDS * 1000, clock=clock)
        try:
            return reconciler.run(context.get_remaining_time_in_millis)
        finally:
            metrics.flush()

    return run
