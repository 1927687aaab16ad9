"""Composition root shared by both functions: settings, clients, adapters and the engine, built once per
execution environment; then one call per event. The functions' app.py only pick the strategy.
"""

from __future__ import annotations

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
from multus_ipam.errors import ConfigurationError, InvalidEvent, LifecycleActionGone, MultusIpamError
from multus_ipam.events import LifecycleAction, TestNotification, parse_lifecycle_event
from multus_ipam.lifecycle import LifecycleService
from multus_ipam.observability import PowertoolsMetrics, make_logger
from multus_ipam.ports import Clock
from multus_ipam.settings import LifecycleResult, Settings, load_settings
from multus_ipam.strategies import AddressStrategy, CidrReservation, StaticLowestFree


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
            strategy = StaticLowestFree(settings, ec2, autoscaling, clock)
        case Mode.CIDR_RESERVATION:
            strategy = CidrReservation(settings, ec2)
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


def handle_event(runtime: Runtime, event: object, context: LambdaContext) -> dict[str, Any]:
    """The whole handler: parse, check the group, bind log keys, delegate, flush metrics."""
    logger = runtime.logger
    logger.thread_safe_clear_keys()
    logger.thread_safe_append_keys(request_id=getattr(context, "aws_request_id", None))
    try:
        try:
            parsed = parse_lifecycle_event(event)
        except InvalidEvent as error:
            logger.error("rejected event: %s", error, extra={"event_id": _event_id(event)})
            return {"status": "rejected", "reason": str(error)}
        if isinstance(parsed, TestNotification):
            return runtime.service.handle(parsed, context.get_remaining_time_in_millis).as_dict()
        logger.thread_safe_append_keys(**parsed.log_keys(), correlation_id=parsed.event_id)
        if parsed.group != runtime.settings.group_name:
            reason = (
                f"detail.AutoScalingGroupName: event is for group {parsed.group!r}, "
                f"this function serves {runtime.settings.group_name!r} (AUTOSCALING_GROUP_NAME)"
            )
            logger.error("rejected event: %s", reason)
            return {"status": "rejected", "reason": reason}
        hooks = runtime.settings.hook_names
        if hooks and parsed.hook not in hooks:
            # Another tool's hook on the same group (a drain hook, say): its action is not ours to complete.
            reason = f"detail.LifecycleHookName: {parsed.hook!r} is not one of {sorted(hooks)} (LIFECYCLE_HOOK_NAMES)"
            logger.info("ignored event: %s", reason)
            return {"status": "ignored", "reason": reason}
        return runtime.service.handle(parsed, context.get_remaining_time_in_millis).as_dict()
    finally:
        runtime.metrics.flush()


def _event_id(event: object) -> str | None:
    return event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else None


def complete_despite_configuration_error(
    error: ConfigurationError, event: object, env: Mapping[str, str], make: Callable[[int], Clients] = make_clients
) -> None:
    """A broken configuration must not leave the instance waiting for the hook timeout.

    If the event is a lifecycle action, complete it with FAILURE_RESULT when that variable itself is valid
    (else ABANDON), then the caller re-raises so the invocation fails loudly with the variable's name.
    """
    logger = make_logger()
    logger.error("configuration error: %s", error)
    try:
        action = parse_lifecycle_event(event)
    except InvalidEvent:
        return
    if not isinstance(action, LifecycleAction):
        return
    hooks = {name.strip() for name in env.get("LIFECYCLE_HOOK_NAMES", "").split(",") if name.strip()}
    if hooks and action.hook not in hooks:
        return  # another tool's action: never ours to complete, configuration error or not
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
