"""Composition root shared by both functions: settings, clients, adapters and the engine, built once per
execution environment; then one call per event. The functions' app.py only pick the strategy.

Two ways in, one engine: a batch of SQS records from the intake queue's event source mapping (each record's body
is the EventBridge lifecycle event; a record the engine deferred, or could not handle, is reported in
``batchItemFailures`` so only it comes back), or one EventBridge lifecycle event handed over directly (a user's
own rule, ``sam local invoke``): then a deferral fails the invocation (``RetryLater``), which is what makes
Lambda's asynchronous retry bring the event back.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, assert_never

from aws_lambda_powertools import Logger

from multus_ipam.aws.autoscaling import AutoScalingAdapter
from multus_ipam.aws.clients import Clients, make_clients
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.aws.retry_deadline import SdkRetryDeadline
from multus_ipam.aws.sqs import SqsIntake
from multus_ipam.errors import ConfigurationError, InvalidEvent, LifecycleActionGone, MultusIpamError, RetryLater
from multus_ipam.events import LifecycleAction, TestNotification, parse_lifecycle_event
from multus_ipam.lifecycle import Delivery, LifecycleService, Status
from multus_ipam.observability import PowertoolsMetrics, make_logger
from multus_ipam.ports import Clock
from multus_ipam.reconciler import Reconciler
from multus_ipam.settings import LifecycleResult, Settings, load_settings
from multus_ipam.strategies import AddressStrategy, CidrReservation, StaticLowestFree

#: What each function's role must allow (tests/stack/test_iam.py holds the template to it; tests/handlers holds
#: it to the calls each function really makes). The event source mapping reads the intake queue with the
#: lifecycle function's role (its SQS actions are the template's, not ours).
LIFECYCLE_IAM_ACTIONS = Ec2Adapter.IAM_ACTIONS | frozenset(
    {
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
        "autoscaling:DescribeAutoScalingInstances",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeWarmPool",
    }
)
RECONCILER_IAM_ACTIONS = SqsIntake.IAM_ACTIONS | frozenset(
    {
        "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DeleteNetworkInterface",
        "autoscaling:DescribeAutoScalingGroups",
        "autoscaling:DescribeWarmPool",
        "autoscaling:DescribeLifecycleHooks",
        "autoscaling:RecordLifecycleActionHeartbeat",
    }
)


class Mode(StrEnum):
    STATIC = "static"
    CIDR_RESERVATION = "cidr-reservation"


class LambdaContext(Protocol):
    aws_request_id: str

    def get_remaining_time_in_millis(self) -> int: ...


class SystemClock:
    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    service: LifecycleService
    metrics: PowertoolsMetrics
    logger: Logger


def build_runtime(
    mode: Mode,
    env: Mapping[str, str],
    *,
    clients: Clients | None = None,
    logger: Logger | None = None,
    clock: Clock | None = None,
    page_size: int = 1000,
) -> Runtime:
    """Validate the configuration and wire the engine. Raises ConfigurationError naming the variable."""
    settings = load_settings(env)
    logger = logger or make_logger()
    clock = clock or SystemClock()
    clients = clients or make_clients(settings.aws_max_attempts)
    deadline = SdkRetryDeadline(clock)  # the SDK's retries end within each phase of an invocation
    deadline.install(clients.ec2)
    deadline.install(clients.autoscaling)
    ec2 = Ec2Adapter(clients.ec2, page_size=page_size)
    autoscaling = AutoScalingAdapter(clients.autoscaling)
    strategy: AddressStrategy
    match mode:
        case Mode.STATIC:
            strategy = StaticLowestFree(settings, ec2, clock)
        case Mode.CIDR_RESERVATION:
            strategy = CidrReservation(settings, ec2, clock)
        case _ as unreachable:
            assert_never(unreachable)
    metrics = PowertoolsMetrics(mode.value)
    service = LifecycleService(
        settings=settings,
        ec2=ec2,
        autoscaling=autoscaling,
        strategy=strategy,
        metrics=metrics,
        clock=clock,
        deadline=deadline,
        logger=logger,  # type: ignore[arg-type]  # Powertools Logger is a logging.Logger look-alike
    )
    return Runtime(settings=settings, service=service, metrics=metrics, logger=logger)


#: A record is not started with less time left than this beyond the launch's safety margin: it would only
#: defer. It is reported failed at once and comes back.
RECORD_MIN_SECONDS = 20


def handle_event(runtime: Runtime, event: object, context: LambdaContext) -> dict[str, Any]:
    """The handler: an SQS batch from the intake queue, or one EventBridge event handed over directly."""
    if is_sqs_batch(event):
        assert isinstance(event, dict)
        return handle_batch(runtime, event["Records"], context)
    outcome = handle_one(runtime, event, context, Delivery())
    if outcome["status"] == Status.DEFERRED.value:
        # Failing the invocation is what makes the event come back (Lambda's asynchronous retries).
        raise RetryLater(f"lifecycle action not completed, retry the event: {outcome['reason']}")
    return outcome


def is_sqs_batch(event: object) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def handle_batch(runtime: Runtime, records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    """Each record in turn; those deferred, rejected or failed are reported in ``batchItemFailures`` (the
    event source mapping's ReportBatchItemFailures): they come back after the queue's visibility timeout, and
    after MAX_RECEIVE_COUNT receives go to the dead-letter queue, where the alarm sees them."""
    failed: list[str] = []
    minimum_ms = (runtime.settings.safety_margin_seconds + RECORD_MIN_SECONDS) * 1000
    for record in records:
        message_id = str(record.get("messageId", ""))
        _bind_request(runtime.logger, context)  # no keys of the previous record on this one's lines
        if context.get_remaining_time_in_millis() < minimum_ms:
            runtime.logger.warning("no time left for this record: it comes back", extra={"message_id": message_id})
            failed.append(message_id)
            continue
        try:
            event = json.loads(record.get("body") or "")
        except ValueError as error:
            runtime.logger.error("rejected record: body is not JSON: %s", error, extra={"message_id": message_id})
            failed.append(message_id)
            continue
        delivery = Delivery(receive_count=_receive_count(record), max_receives=runtime.settings.max_receive_count)
        try:
            outcome = handle_one(runtime, event, context, delivery)
        except Exception:  # one record's failure must not fail the others; it comes back
            runtime.logger.exception("record failed: it comes back", extra={"message_id": message_id})
            failed.append(message_id)
            continue
        if outcome["status"] in (Status.DEFERRED.value, Status.REJECTED.value):
            failed.append(message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _receive_count(record: dict[str, Any]) -> int | None:
    attributes = record.get("attributes")
    raw = attributes.get("ApproximateReceiveCount") if isinstance(attributes, dict) else None
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def handle_one(runtime: Runtime, event: object, context: LambdaContext, delivery: Delivery) -> dict[str, Any]:
    """One EventBridge event: parse, bind log keys, skip other tools' hooks, delegate (the engine verifies the
    instance before it acts), flush metrics."""
    logger = runtime.logger
    _bind_request(logger, context)
    try:
        try:
            parsed = parse_lifecycle_event(event)
        except InvalidEvent as error:
            logger.error("rejected event: %s", error, extra={"event_id": _event_id(event)})
            return {"status": "rejected", "reason": str(error)}
        if isinstance(parsed, TestNotification):
            return runtime.service.handle(parsed, context.get_remaining_time_in_millis, delivery).as_dict()
        logger.thread_safe_append_keys(**parsed.log_keys(), correlation_id=parsed.event_id)
        hooks = runtime.settings.hook_names
        if parsed.hook not in hooks:
            # Another tool's hook on the same group (a drain hook, say): its action is not ours to complete.
            reason = f"detail.LifecycleHookName: {parsed.hook!r} is not one of {sorted(hooks)} (LIFECYCLE_HOOK_NAMES)"
            logger.info("ignored event: %s", reason)
            return {"status": "ignored", "reason": reason}
        return runtime.service.handle(parsed, context.get_remaining_time_in_millis, delivery).as_dict()
    finally:
        runtime.metrics.flush()


def _bind_request(logger: Logger, context: LambdaContext) -> None:
    """Only the invocation's request id on the lines that follow (each event binds its own keys after)."""
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(request_id=getattr(context, "aws_request_id", None))


def _event_id(event: object) -> str | None:
    """The event's id for a log line, at most 64 characters (EventBridge's are 36): the event is caller data."""
    found = event.get("id") if isinstance(event, dict) else None
    return found[:64] if isinstance(found, str) else None


def complete_despite_configuration_error(
    error: ConfigurationError, event: object, env: Mapping[str, str], make: Callable[[int], Clients] = make_clients
) -> None:
    """A broken configuration must not leave the instance waiting for the hook timeout.

    If the event is a lifecycle action, complete it with FAILURE_RESULT when that variable itself is valid
    (else ABANDON), then the caller re-raises so the invocation fails loudly with the variable's name.
    """
    logger = make_logger()
    logger.error("configuration error: %s", error)
    if is_sqs_batch(event):
        assert isinstance(event, dict)
        for record in event["Records"]:
            try:
                body = json.loads(record.get("body") or "")
            except ValueError:
                continue
            complete_despite_configuration_error(error, body, env, make)
        return
    try:
        action = parse_lifecycle_event(event)
    except InvalidEvent:
        return
    if not isinstance(action, LifecycleAction):
        return
    hooks = {name.strip() for name in env.get("LIFECYCLE_HOOK_NAMES", "").split(",") if name.strip()}
    if action.hook not in hooks:
        # Another tool's action, or no hook names to tell: never completed unless it is provably ours.
        return
    raw = env.get("FAILURE_RESULT", "").strip().upper()
    result = LifecycleResult(raw) if raw in LifecycleResult.__members__ else LifecycleResult.ABANDON
    if action.transition.value.endswith("TERMINATING"):
        result = LifecycleResult.CONTINUE
    adapter = AutoScalingAdapter(make(3).autoscaling)
    try:
        adapter.complete_lifecycle_action(
            group=action.group, hook=action.hook, token=action.token, instance_id=action.instance_id, result=result
        )
    except (LifecycleActionGone, MultusIpamError) as failure:
        logger.error("could not complete the lifecycle action either: %s", failure)
    else:
        logger.warning("completed lifecycle action with %s despite the configuration error", result.value)


def build_reconciler(
    env: Mapping[str, str],
    *,
    clients: Clients | None = None,
    logger: Logger | None = None,
    clock: Clock | None = None,
    page_size: int = 1000,
) -> tuple[Reconciler, PowertoolsMetrics]:
    """The reconciler's wiring. It needs LIFECYCLE_HOOK_NAMES (which hooks are ours to complete) and
    INTAKE_QUEUE_URL (where lost events go back in). Raises ConfigurationError naming the variable."""
    settings = load_settings(env)
    if not settings.hook_names:
        raise ConfigurationError("LIFECYCLE_HOOK_NAMES", "required by the reconciler", "the stack's hook names")
    queue_url = env.get("INTAKE_QUEUE_URL", "").strip()
    if not queue_url.startswith("https://"):
        raise ConfigurationError("INTAKE_QUEUE_URL", f"not a queue URL: {queue_url!r}", "https://sqs...")
    logger = logger or make_logger()
    clock = clock or SystemClock()
    clients = clients or make_clients(settings.aws_max_attempts, sqs=True)
    if clients.sqs is None:
        raise ValueError("the reconciler needs an SQS client")
    deadline = SdkRetryDeadline(clock)
    for client in (clients.ec2, clients.autoscaling, clients.sqs):
        deadline.install(client)
    metrics = PowertoolsMetrics("reconciler")
    reconciler = Reconciler(
        settings=settings,
        ec2=Ec2Adapter(clients.ec2, page_size=page_size),
        autoscaling=AutoScalingAdapter(clients.autoscaling),
        intake=SqsIntake(clients.sqs, queue_url),
        clock=clock,
        metrics=metrics,
        deadline=deadline,
        logger=logger,  # type: ignore[arg-type]  # Powertools Logger is a logging.Logger look-alike
    )
    return reconciler, metrics


class ReconcilerEntry:
    """The reconciler function's entry point (a schedule invokes it): built once per execution environment."""

    def __init__(self, env: Mapping[str, str] = os.environ, *, clock: Clock | None = None) -> None:
        self._env = env
        self._clock = clock
        self._built: tuple[Reconciler, PowertoolsMetrics] | None = None

    def __call__(self, event: object, context: LambdaContext) -> dict[str, Any]:
        if self._built is None:
            self._built = build_reconciler(self._env, clock=self._clock)
        reconciler, metrics = self._built
        try:
            return reconciler.run(context.get_remaining_time_in_millis).as_dict()
        finally:
            metrics.flush()


class LambdaEntry:
    """One function's entry point: configuration and clients built on the first event of an execution
    environment (a bad variable fails that event by name, after completing its lifecycle action), then reused.
    """

    def __init__(self, mode: Mode, env: Mapping[str, str] = os.environ, *, clock: Clock | None = None) -> None:
        """``clock``: the system clock unless a test or a simulation gives its own."""
        self._mode = mode
        self._env = env
        self._clock = clock
        self._runtime: Runtime | None = None

    def __call__(self, event: object, context: LambdaContext) -> dict[str, Any]:
        if self._runtime is None:
            try:
                self._runtime = build_runtime(self._mode, self._env, clock=self._clock)
            except ConfigurationError as error:
                complete_despite_configuration_error(error, event, self._env)
                raise
        return handle_event(self._runtime, event, context)

    def reset(self) -> None:
        """Forget the built runtime, as a new execution environment would (tests, the demo)."""
        self._runtime = None
