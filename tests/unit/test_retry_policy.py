"""The retry policy: which failures a later attempt may not meet (the event comes back), which attempt is the last,
and how a batch of SQS records from the intake queue is answered (``batchItemFailures``: those come back).

No AWS here: the runtime's clients would fail any call (sockets are blocked); where a record reaches the engine,
the engine's entry point is replaced by a recorder that answers as the engine does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from multus_ipam.aws.clients import Clients, retry_config
from multus_ipam.errors import (
    THROTTLING_CODES,
    AddressConflictsExhausted,
    AwsCallFailed,
    DeadlineExceeded,
    InstanceGone,
    InsufficientAddresses,
    LifecycleFailure,
    MissingReservation,
    SubnetMisconfigured,
    WorkerRangeExhausted,
)
from multus_ipam.events import ParsedEvent
from multus_ipam.lifecycle import Delivery, Outcome, Status
from multus_ipam.runtime import RECORD_MIN_SECONDS, Mode, Runtime, build_runtime, handle_batch, handle_event
from multus_ipam.settings import LifecycleResult
from tests.eventfiles import load_event

# --- which failures are retryable -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_given_a_throttling_answer_then_the_failure_is_retryable(code: str) -> None:
    # botocore's standard retry mode counts these codes as throttling, whatever the status (EC2 answers
    # RequestLimitExceeded with 503, Auto Scaling Throttling with 400).
    assert AwsCallFailed("AttachNetworkInterface", code, "slow down", status=400).retryable


@pytest.mark.parametrize(
    ("code", "status"),
    [("InternalError", 500), ("ServiceUnavailable", 503), ("SomethingAwsAddsLater", 500), ("", 599)],
)
def test_given_a_5xx_answer_then_the_failure_is_retryable_whatever_its_code(code: str, status: int) -> None:
    assert AwsCallFailed("CreateNetworkInterface", code, "oops", status=status).retryable


@pytest.mark.parametrize(
    "code",
    ["RequestTimeout", "InvalidNetworkInterfaceID.NotFound", "InvalidAttachmentID.NotFound"],
)
def test_given_a_timeout_or_a_new_id_ec2_still_does_not_show_then_the_failure_is_retryable(code: str) -> None:
    assert AwsCallFailed("AttachNetworkInterface", code, "not yet", status=400).retryable


def test_given_no_answer_at_all_then_the_failure_is_retryable() -> None:
    failure = AwsCallFailed("CreateNetworkInterface", "ReadTimeoutError", "no answer", no_answer=True)

    assert failure.retryable


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("UnauthorizedOperation", 403),
        ("AccessDenied", 403),
        ("InvalidParameterValue", 400),
        ("InvalidParameterCombination", 400),
        ("NoFreeDeviceIndex", None),
    ],
)
def test_given_a_refusal_retrying_will_not_fix_then_the_failure_is_not_retryable(code: str, status: int | None) -> None:
    assert not AwsCallFailed("AttachNetworkInterface", code, "no", status=status).retryable


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        (DeadlineExceeded("the launch phase is over"), True),
        (AddressConflictsExhausted("every choice was taken"), True),
        (WorkerRangeExhausted("no address below the bound"), False),
        (InsufficientAddresses("subnet full"), False),
        (MissingReservation("no pod reservation"), False),
        (SubnetMisconfigured("not found"), False),
        (InstanceGone("terminated"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, LifecycleFailure) else str(value),
)
def test_the_engines_own_failures_are_retryable_only_when_time_or_contention_caused_them(
    failure: LifecycleFailure, retryable: bool
) -> None:
    assert failure.retryable is retryable


# --- the last attempt -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("receive_count", "max_receives", "last"),
    [
        (None, None, False),  # handed over directly: whether it comes back is up to the sender
        (None, 5, False),  # a record without ApproximateReceiveCount
        (3, None, False),
        (1, 5, False),
        (4, 5, False),
        (5, 5, True),
        (6, 5, True),  # SQS counts approximately: past the redrive count is the last too
        (1, 1, True),
    ],
)
def test_the_last_delivery_is_the_receive_that_reaches_the_queues_max_receive_count(
    receive_count: int | None, max_receives: int | None, last: bool
) -> None:
    assert Delivery(receive_count=receive_count, max_receives=max_receives).last is last


# --- a batch of records ---------------------------------------------------------------------------------------

ENV = {
    "AUTOSCALING_GROUP_NAME": "multus-workers",
    "MULTUS_SUBNET_IDS": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
    "MULTUS_SECURITY_GROUP_IDS": "sg-0123456789abcdef0",
    "LIFECYCLE_HOOK_NAMES": "multus-launch,multus-terminate",
    "MAX_RECEIVE_COUNT": "5",
    "SAFETY_MARGIN_SECONDS": "30",
}
#: What a record needs left to be started (the safety margin plus RECORD_MIN_SECONDS).
MINIMUM_MS = (30 + RECORD_MIN_SECONDS) * 1000


class StoppedClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class Context:
    remaining_ms: int = 120_000
    aws_request_id: str = "11111111-1111-1111-1111-111111111111"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Engine:
    """Stands in for ``LifecycleService.handle`` (same signature): records what reaches it and answers
    ``status``; ``then`` runs after each event (time passing, a failure)."""

    status: Status = Status.COMPLETED
    then: Callable[[ParsedEvent], None] = lambda _event: None
    seen: list[tuple[ParsedEvent, Delivery | None]] = field(default_factory=list)

    def handle(self, event: ParsedEvent, remaining_ms: Callable[[], int], delivery: Delivery | None = None) -> Outcome:
        self.seen.append((event, delivery))
        self.then(event)
        result = LifecycleResult.CONTINUE if self.status is Status.COMPLETED else None
        return Outcome(self.status, result)


def make_runtime() -> Runtime:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    clients = Clients(
        ec2=session.client("ec2", config=retry_config(1)),
        autoscaling=session.client("autoscaling", config=retry_config(1)),
    )
    return build_runtime(Mode.STATIC, ENV, clients=clients, clock=StoppedClock())


@pytest.fixture
def runtime() -> Runtime:
    return make_runtime()


@pytest.fixture
def engine(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Engine:
    recorder = Engine()
    monkeypatch.setattr(runtime.service, "handle", recorder.handle)
    return recorder


def record(message_id: str, body: str, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """One record of Lambda's SQS event; ``attributes`` None: as SQS sends them on a first receive."""
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"} if attributes is None else attributes,
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:multus-intake",
        "awsRegion": "us-east-1",
    }


def launch_body(**detail: str) -> str:
    return json.dumps(load_event("launch.json", **detail))


def failed(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


@pytest.mark.parametrize(
    "attributes",
    [{}, {"SentTimestamp": "1700000000000"}, {"ApproximateReceiveCount": "not a number"}],
    ids=["no-attributes", "no-receive-count", "unreadable-receive-count"],
)
def test_given_a_record_without_a_readable_receive_count_then_it_is_never_taken_for_the_last_attempt(
    runtime: Runtime, engine: Engine, attributes: dict[str, str]
) -> None:
    # A retryable failure then defers (the event comes back) instead of rolling back a launch that might succeed.
    response = handle_batch(runtime, [record("m-1", launch_body(), attributes)], Context())

    assert failed(response) == []
    ((_, delivery),) = engine.seen
    assert delivery == Delivery(receive_count=None, max_receives=5)
    assert delivery is not None
    assert not delivery.last


def test_given_a_record_received_max_receive_count_times_then_the_engine_is_told_it_is_the_last(
    runtime: Runtime, engine: Engine
) -> None:
    handle_batch(runtime, [record("m-1", launch_body(), {"ApproximateReceiveCount": "5"})], Context())

    ((_, delivery),) = engine.seen
    assert delivery == Delivery(receive_count=5, max_receives=5)


def test_given_less_than_the_minimum_time_left_then_every_record_is_reported_failed_unprocessed(
    runtime: Runtime, engine: Engine
) -> None:
    records = [record("m-1", launch_body()), record("m-2", launch_body(EC2InstanceId="i-0123456789abcdef1"))]

    response = handle_batch(runtime, records, Context(remaining_ms=MINIMUM_MS - 1))

    assert failed(response) == ["m-1", "m-2"]
    assert engine.seen == []


def test_given_exactly_the_minimum_time_left_then_the_record_is_started(runtime: Runtime, engine: Engine) -> None:
    response = handle_batch(runtime, [record("m-1", launch_body())], Context(remaining_ms=MINIMUM_MS))

    assert failed(response) == []
    assert len(engine.seen) == 1


def test_given_the_time_runs_short_during_a_batch_then_the_records_not_started_come_back(
    runtime: Runtime, engine: Engine
) -> None:
    context = Context(remaining_ms=MINIMUM_MS + 30_000)

    def spend_a_minute(_event: ParsedEvent) -> None:
        context.remaining_ms -= 60_000

    engine.then = spend_a_minute
    records = [record(f"m-{n}", launch_body(EC2InstanceId=f"i-0123456789abcdef{n}")) for n in range(3)]

    response = handle_batch(runtime, records, context)

    assert failed(response) == ["m-1", "m-2"]
    assert len(engine.seen) == 1


@pytest.mark.parametrize(
    ("status", "reported"),
    [(Status.REJECTED, ["m-1"]), (Status.NOT_WAITING, []), (Status.ALREADY_COMPLETED, []), (Status.SKIPPED, [])],
)
def test_given_the_engine_refuses_a_record_then_only_a_stray_one_is_reported_failed(
    runtime: Runtime, engine: Engine, status: Status, reported: list[str]
) -> None:
    # A stray event (not our instance) comes back and, after maxReceiveCount receives, reaches the dead-letter
    # queue (the alarm); one for our instance that no longer waits (a late redelivery) is consumed.
    engine.status = status

    response = handle_batch(runtime, [record("m-1", launch_body())], Context())

    assert failed(response) == reported


@pytest.mark.parametrize("body", ["{not json", "", "null", '"a string"', json.dumps({"detail-type": "Something"})])
def test_given_a_body_that_is_not_a_lifecycle_event_then_it_is_reported_failed(
    runtime: Runtime, engine: Engine, body: str
) -> None:
    response = handle_batch(runtime, [record("m-1", body)], Context())

    assert failed(response) == ["m-1"]
    assert engine.seen == []


def test_given_a_test_notification_then_it_succeeds_and_is_deleted(runtime: Runtime) -> None:
    # Auto Scaling sends one when a notification target is added: nothing to do, not an error (the real engine
    # answers it without any AWS call).
    notification = json.dumps(load_event("test-notification.json"))

    response = handle_batch(runtime, [record("m-1", notification)], Context())

    assert failed(response) == []


def test_given_another_tools_hook_then_the_record_is_ignored_and_not_retried(runtime: Runtime, engine: Engine) -> None:
    response = handle_batch(runtime, [record("m-1", launch_body(LifecycleHookName="node-drain"))], Context())

    assert failed(response) == []
    assert engine.seen == []


def test_given_a_deferred_record_then_only_it_is_reported_failed(runtime: Runtime, engine: Engine) -> None:
    def defer_the_first(event: ParsedEvent) -> None:
        engine.status = Status.DEFERRED if len(engine.seen) == 1 else Status.COMPLETED

    engine.then = defer_the_first
    records = [record(f"m-{n}", launch_body(EC2InstanceId=f"i-0123456789abcdef{n}")) for n in range(2)]

    response = handle_batch(runtime, records, Context())

    assert failed(response) == ["m-0"]
    assert len(engine.seen) == 2


def test_given_a_record_whose_handling_raises_then_it_alone_is_reported_failed(
    runtime: Runtime, engine: Engine
) -> None:
    def crash_on_the_first(_event: ParsedEvent) -> None:
        if len(engine.seen) == 1:
            raise RuntimeError("a bug")

    engine.then = crash_on_the_first
    records = [record(f"m-{n}", launch_body(EC2InstanceId=f"i-0123456789abcdef{n}")) for n in range(2)]

    response = handle_batch(runtime, records, Context())

    assert failed(response) == ["m-0"]
    assert len(engine.seen) == 2


def test_given_records_that_are_not_all_from_sqs_then_the_event_is_not_taken_for_a_batch(
    runtime: Runtime, engine: Engine
) -> None:
    # Lambda's SQS event: every record has eventSource aws:sqs. Anything else is one (unknown) event: rejected.
    mixed = {"Records": [record("m-1", launch_body()), {**record("m-2", launch_body()), "eventSource": "aws:sns"}]}

    outcome = handle_event(runtime, mixed, Context())

    assert outcome["status"] == "rejected"
    assert engine.seen == []


class Lines(logging.Handler):
    """The JSON lines the function's logger writes, formatted as it emits them (with the keys bound then)."""

    def __init__(self, runtime: Runtime) -> None:
        super().__init__()
        self.setFormatter(runtime.logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines(runtime: Runtime) -> Iterator[Lines]:
    handler = Lines(runtime)
    logger = logging.getLogger(runtime.logger.service)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.parametrize("second", ["no time left", "not json"])
def test_given_a_record_that_is_not_started_then_its_log_line_names_no_other_records_instance(
    runtime: Runtime, engine: Engine, lines: Lines, second: str
) -> None:
    context = Context(remaining_ms=MINIMUM_MS)

    def spend_the_time(_event: ParsedEvent) -> None:
        if second == "no time left":
            context.remaining_ms = MINIMUM_MS - 1

    engine.then = spend_the_time
    first = record("m-1", launch_body(EC2InstanceId="i-0123456789abcdef1"))
    body = launch_body(EC2InstanceId="i-0123456789abcdef2") if second == "no time left" else "{not json"

    response = handle_batch(runtime, [first, record("m-2", body)], context)

    assert failed(response) == ["m-2"]
    (line,) = [line for line in lines.lines if line.get("message_id") == "m-2"]
    assert line.get("instance_id") != "i-0123456789abcdef1", f"m-2 logged as m-1's instance: {line}"


@pytest.mark.parametrize("code", ["IdempotentParameterMismatch", "InvalidNetworkInterface.InUse"])
def test_given_another_delivery_got_there_first_when_classified_then_the_launch_is_retried(code: str) -> None:
    # A parallel delivery's create with our client token but other tags (a requeued event has another time), or
    # its attach of the duplicate we would delete: the next attempt adopts what it made.
    assert AwsCallFailed("CreateNetworkInterface", code, "", status=400).retryable


def test_given_a_huge_forged_event_when_rejected_then_its_log_line_stays_small(runtime: Runtime, lines: Lines) -> None:
    # Whoever may invoke the function chooses the event: a 200 kB field must not become a megabyte of logs.
    event = load_event("launch.json")
    event["id"] = "e" * 200_000
    event["detail-type"] = "d" * 200_000

    outcome = handle_event(runtime, event, Context())

    assert outcome["status"] == "rejected"
    (line,) = [line for line in lines.lines if line.get("message", "").startswith("rejected event")]
    assert len(json.dumps(line)) < 2_000
    assert len(json.dumps(outcome)) < 2_000
