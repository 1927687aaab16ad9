"""The intake on the local AWS clock: SQS (visibility timeout, redrive, retention, receipt handles, long polling)
and Lambda's SQS event source mapping (creation checks, the event, MaximumConcurrency, warm environments, partial
batch responses, timeouts). Each test names the AWS behaviour it reproduces; where the local AWS adds the
behaviour to moto, a plain-moto twin shows moto without it.

Times are asserted on the simulated clock only: ``Realism.strict()`` (the ``aws`` fixture) has no latency, so
time moves only when someone waits on the clock.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from localaws import (
    EventSourceMapping,
    Invocation,
    InvocationContext,
    InvocationResult,
    InvocationTimedOut,
    LocalAWS,
    QueuePair,
    Realism,
    SimulatedCrash,
    create_queue_pair,
    put_events,
)
from localaws.intake import Handler, reported_failures

from .conftest import START, error_code, error_message

EVENTS = Path(__file__).resolve().parents[2] / "events"
VISIBILITY = 30
TIMEOUT = 20


@pytest.fixture
def sqs(aws: LocalAWS) -> Any:
    return aws.client("sqs")


@pytest.fixture
def plain() -> Iterator[LocalAWS]:
    """moto as it is (the SQS time and long polls are still the local AWS clock's)."""
    with LocalAWS(region="us-east-1", start_time=START, extensions=False) as local:
        yield local


@pytest.fixture
def queues(aws: LocalAWS) -> QueuePair:
    return create_queue_pair(aws, "intake", visibility_timeout=VISIBILITY, max_receive_count=3)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def receive(sqs: Any, url: str, **kwargs: Any) -> list[dict[str, Any]]:
    response = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"], **kwargs)
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


def visible_count(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def held_count(sqs: Any, url: str) -> int:
    """Visible plus in flight: what the queue still holds."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def events(count: int) -> list[dict[str, Any]]:
    base = json.loads((EVENTS / "launch.json").read_text())
    return [{**base, "id": f"event-{n}"} for n in range(count)]


def environment(handler: Handler) -> Callable[[], Handler]:
    """A factory that makes the same handler every time (the tests count the calls on the mapping)."""
    return lambda: handler


def esm(aws: LocalAWS, queues: QueuePair, handler: Handler, **kwargs: Any) -> EventSourceMapping:
    """A mapping of the queue pair: function timeout 20 s, MaximumConcurrency 2, unless ``kwargs`` say otherwise."""
    settings: dict[str, Any] = {
        "function_timeout_seconds": TIMEOUT,
        "maximum_concurrency": 2,
        "make_environment": environment(handler),
        **kwargs,
    }
    return EventSourceMapping(aws, queue_url=queues.url, **settings)


def drained(sqs: Any, queues: QueuePair) -> Callable[[], bool]:
    return lambda: held_count(sqs, queues.url) == 0


def ok(event: dict[str, Any], context: InvocationContext) -> None:
    return None


# --- SQS on the local AWS clock --------------------------------------------------------------------------------


def test_sqs_timestamps_are_read_from_the_local_aws_clock(aws: LocalAWS, sqs: Any) -> None:
    # AWS: SentTimestamp and ApproximateFirstReceiveTimestamp are epoch milliseconds of the send and first receive.
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    aws.clock.advance(7)

    (message,) = receive(sqs, url)

    assert message["Attributes"]["SentTimestamp"] == str(ms(START))
    assert message["Attributes"]["ApproximateFirstReceiveTimestamp"] == str(ms(START + timedelta(seconds=7)))


def test_a_received_message_stays_invisible_for_the_visibility_timeout_on_the_clock(aws: LocalAWS, sqs: Any) -> None:
    # AWS: a received message is hidden from other receives until its visibility timeout ends, then it is back
    # with ApproximateReceiveCount incremented.
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    receive(sqs, url)

    aws.clock.advance(29.9)
    hidden = receive(sqs, url)
    aws.clock.advance(0.2)
    (back,) = receive(sqs, url)

    assert hidden == []
    assert back["Attributes"]["ApproximateReceiveCount"] == "2"
    assert back["Attributes"]["ApproximateFirstReceiveTimestamp"] == str(ms(START))


def test_change_message_visibility_counts_from_the_call_on_the_clock(aws: LocalAWS, sqs: Any) -> None:
    # AWS: ChangeMessageVisibility sets the remaining visibility timeout from the moment of the call.
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    (message,) = receive(sqs, url)
    aws.clock.advance(10)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=100)

    aws.clock.advance(99.9)
    hidden = receive(sqs, url)
    aws.clock.advance(0.2)

    assert hidden == []
    assert len(receive(sqs, url)) == 1


def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(
    aws: LocalAWS, sqs: Any, queues: QueuePair
) -> None:
    # AWS: once ReceiveCount exceeds maxReceiveCount (3 here), SQS moves the message to the dead-letter queue
    # instead of returning it.
    sqs.send_message(QueueUrl=queues.url, MessageBody="poison")
    counts = []
    for _ in range(3):
        (message,) = receive(sqs, queues.url)
        counts.append(message["Attributes"]["ApproximateReceiveCount"])
        aws.clock.advance(VISIBILITY + 0.1)

    fourth = receive(sqs, queues.url)

    assert counts == ["1", "2", "3"]
    assert fourth == []
    (moved,) = receive(sqs, queues.dlq_url)
    assert moved["Body"] == "poison"


def test_a_message_past_the_retention_period_is_deleted(aws: LocalAWS, sqs: Any) -> None:
    # AWS: "If you leave a message in the queue for longer than the queue's configured retention period, Amazon
    # SQS automatically deletes it." The message sent after it is still there.
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    aws.clock.advance(30)
    sqs.send_message(QueueUrl=url, MessageBody="new")

    aws.clock.advance(30)

    assert visible_count(sqs, url) == 1
    assert [m["Body"] for m in receive(sqs, url, MaxNumberOfMessages=10)] == ["new"]


def test_plain_moto_lets_an_expired_message_block_the_queue(plain: LocalAWS) -> None:
    # Without localaws.sqs: moto still counts the expired message, and a receive that reaches it returns nothing,
    # not even the fresh message behind it.
    sqs = plain.client("sqs")
    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    plain.clock.advance(30)
    sqs.send_message(QueueUrl=url, MessageBody="new")

    plain.clock.advance(30)

    assert visible_count(sqs, url) == 2
    assert receive(sqs, url, MaxNumberOfMessages=10) == []


def test_a_dead_letter_message_expires_counting_from_its_first_send(aws: LocalAWS, sqs: Any, queues: QueuePair) -> None:
    # AWS: "the expiration of a message is always based on its original enqueue timestamp": a message moved to
    # the dead-letter queue does not get a new retention period.
    pair = create_queue_pair(
        aws, "short", visibility_timeout=10, max_receive_count=1, retention_seconds=100, dlq_retention_seconds=120
    )
    sqs.send_message(QueueUrl=pair.url, MessageBody="x")
    receive(sqs, pair.url)
    aws.clock.advance(10.1)
    receive(sqs, pair.url)  # moves it

    aws.clock.advance(110)

    assert held_count(sqs, pair.dlq_url) == 0


def test_an_old_receipt_handle_deletes_nothing(aws: LocalAWS, sqs: Any) -> None:
    # AWS DeleteMessage: "If you use an old ReceiptHandle, the request will succeed, but the message might not be
    # deleted": a consumer whose visibility timeout ran out has lost the message to the next receiver.
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    (first,) = receive(sqs, url)
    aws.clock.advance(10.1)
    (second,) = receive(sqs, url)

    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])

    assert held_count(sqs, url) == 1
    sqs.delete_message(QueueUrl=url, ReceiptHandle=second["ReceiptHandle"])
    assert held_count(sqs, url) == 0


def test_plain_moto_deletes_with_an_old_receipt_handle(plain: LocalAWS) -> None:
    sqs = plain.client("sqs")
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "10"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    (first,) = receive(sqs, url)
    plain.clock.advance(10.1)
    receive(sqs, url)

    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])

    assert held_count(sqs, url) == 0


def test_an_empty_long_poll_waits_its_wait_time_on_the_clock(aws: LocalAWS, sqs: Any) -> None:
    # AWS: a long poll (WaitTimeSeconds 20) on an empty queue answers after 20 s with no messages. Here those are
    # 20 s of the local AWS clock (moto would spin in wall time).
    url = sqs.create_queue(QueueName="q")["QueueUrl"]

    messages = receive(sqs, url, WaitTimeSeconds=20)

    assert messages == []
    assert aws.clock.now() == START + timedelta(seconds=20)


def test_a_long_poll_returns_once_a_message_becomes_visible(aws: LocalAWS, sqs: Any) -> None:
    # AWS: a long poll returns as soon as a message is available (here within LONG_POLL_STEP_SECONDS of it).
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "5", "ReceiveMessageWaitTimeSeconds": "20"})
    url = url["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    receive(sqs, url)

    (back,) = receive(sqs, url)  # the queue's ReceiveMessageWaitTimeSeconds makes it a long poll

    assert back["Body"] == "x"
    assert START + timedelta(seconds=5) < aws.clock.now() <= START + timedelta(seconds=5.2)


def test_sqs_calls_are_logged_and_never_throttled() -> None:
    # SQS publishes no per-action request buckets: a burst well past EC2's bucket sizes goes through.
    with LocalAWS(region="us-east-1", start_time=START, realism=Realism()) as aws:
        sqs = aws.client("sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        for n in range(120):
            sqs.send_message(QueueUrl=url, MessageBody=str(n))

        sends = aws.calls_to("sqs", "SendMessage")

    assert len(sends) == 120
    assert all(call.ok for call in sends)


# --- creating the event source mapping -------------------------------------------------------------------------


def test_the_mapping_refuses_a_queue_whose_visibility_timeout_is_below_the_function_timeout(
    aws: LocalAWS, queues: QueuePair
) -> None:
    # AWS CreateEventSourceMapping: InvalidParameterValueException "Queue visibility timeout: 30 seconds is less
    # than Function timeout: 31 seconds".
    with pytest.raises(ClientError) as excinfo:
        esm(aws, queues, ok, function_timeout_seconds=VISIBILITY + 1)

    assert error_code(excinfo) == "InvalidParameterValueException"
    assert error_message(excinfo) == "Queue visibility timeout: 30 seconds is less than Function timeout: 31 seconds"


def test_the_mapping_accepts_a_visibility_timeout_equal_to_the_function_timeout(
    aws: LocalAWS, queues: QueuePair
) -> None:
    mapping = esm(aws, queues, ok, function_timeout_seconds=VISIBILITY)

    assert mapping.queue_arn == queues.arn


@pytest.mark.parametrize(
    ("concurrency", "bound"), [(1, "greater than or equal to 2"), (1001, "less than or equal to 1000")]
)
def test_the_mapping_refuses_maximum_concurrency_outside_2_to_1000(
    aws: LocalAWS, queues: QueuePair, concurrency: int, bound: str
) -> None:
    # AWS ScalingConfig: MaximumConcurrency "Valid Range: Minimum value of 2. Maximum value of 1000."
    with pytest.raises(ClientError) as excinfo:
        esm(aws, queues, ok, maximum_concurrency=concurrency)

    assert error_code(excinfo) == "ValidationException"
    assert error_message(excinfo) == (
        f"1 validation error detected: Value '{concurrency}' at 'scalingConfig.maximumConcurrency' failed to "
        f"satisfy constraint: Member must have value {bound}"
    )


@pytest.mark.parametrize("concurrency", [2, 1000])
def test_the_mapping_accepts_maximum_concurrency_at_its_bounds(
    aws: LocalAWS, queues: QueuePair, concurrency: int
) -> None:
    assert esm(aws, queues, ok, maximum_concurrency=concurrency).maximum_concurrency == concurrency


def test_the_mapping_refuses_a_batch_above_10_without_a_batching_window(aws: LocalAWS, queues: QueuePair) -> None:
    # AWS: a standard queue's batch may exceed 10 only with MaximumBatchingWindowInSeconds > 0 (not modelled).
    with pytest.raises(ClientError) as excinfo:
        esm(aws, queues, ok, batch_size=11)

    assert error_code(excinfo) == "InvalidParameterValueException"
    assert "greater than 10" in error_message(excinfo)


# --- the event and the context -----------------------------------------------------------------------------------


def test_the_function_gets_the_sqs_event_lambda_builds_from_the_eventbridge_event(
    aws: LocalAWS, sqs: Any, queues: QueuePair
) -> None:
    # AWS: EventBridge's SQS target sends the event as the body; Lambda's SQS event has one record per message.
    (event,) = events(1)
    (message_id,) = put_events(aws, queues.url, [event])
    seen: list[tuple[dict[str, Any], int, str]] = []

    def handler(sqs_event: dict[str, Any], context: InvocationContext) -> None:
        seen.append((sqs_event, context.get_remaining_time_in_millis(), context.function_name))

    esm(aws, queues, handler, function_name="multus-intake").run(drained(sqs, queues), max_seconds=60)

    ((sqs_event, remaining_ms, function_name),) = seen
    (record,) = sqs_event["Records"]
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert record["messageId"] == message_id
    assert json.loads(record["body"]) == event
    assert list(record["attributes"])[:4] == [
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    ]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"] == str(ms(START))
    assert record["messageAttributes"] == {}
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        queues.arn,
        "us-east-1",
    )
    assert remaining_ms == TIMEOUT * 1000
    assert function_name == "multus-intake"


def test_the_context_counts_the_function_timeout_down_on_the_clock(aws: LocalAWS, sqs: Any, queues: QueuePair) -> None:
    put_events(aws, queues.url, events(2))
    remaining: list[int] = []
    request_ids: list[str] = []

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        aws.clock.sleep(4.5)
        remaining.append(context.get_remaining_time_in_millis())
        request_ids.append(context.aws_request_id)

    esm(aws, queues, handler, batch_size=1).run(drained(sqs, queues), max_seconds=60)

    assert remaining == [15_500, 15_500]
    assert len(set(request_ids)) == 2


def test_a_cold_start_s_init_phase_is_not_counted_in_the_function_timeout(
    aws: LocalAWS, sqs: Any, queues: QueuePair
) -> None:
    # AWS: the init phase of a new execution environment comes before the invocation's timeout starts.
    put_events(aws, queues.url, events(1))
    remaining: list[int] = []

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        remaining.append(context.get_remaining_time_in_millis())

    mapping = esm(aws, queues, handler, init_seconds=5)
    mapping.run(drained(sqs, queues), max_seconds=60)

    (invocation,) = mapping.invocations
    assert invocation.cold_start
    assert invocation.ended - invocation.started == timedelta(seconds=5)
    assert remaining == [TIMEOUT * 1000]


# --- results: what Lambda deletes ----------------------------------------------------------------------------


def test_a_failed_invocation_s_messages_come_back_after_the_visibility_timeout_and_not_before(
    aws: LocalAWS, sqs: Any, queues: QueuePair
) -> None:
    # AWS: when the function raises, no message of the batch is deleted; they reappear after the visibility
    # timeout (30 s here) and only then.
    put_events(aws, queues.url, events(2))
    calls: list[datetime] = []

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        calls.append(aws.clock.now())
        if len(calls) == 1:
            raise RuntimeError("boom")

    mapping = esm(aws, queues, handler)
    mapping.run(drained(sqs, queues), max_seconds=120)

    first, second = mapping.invocations
    assert first.result is InvocationResult.ERROR
    assert first.kept == first.message_ids
    assert len(first.message_ids) == 2
    assert second.result is InvocationResult.SUCCEEDED
    assert second.message_ids == first.message_ids
    assert timedelta(seconds=VISIBILITY) < second.started - first.started <= timedelta(seconds=VISIBILITY + 1)


@pytest.mark.parametrize("report", [True, False])
def test_partial_batch_failures_delete_only_the_successes_with_report_batch_item_failures(
    aws: LocalAWS, sqs: Any, queues: QueuePair, report: bool
) -> None:
    # AWS: with ReportBatchItemFailures, {"batchItemFailures": [{"itemIdentifier": id}]} deletes every other
    # message of the batch. Without it Lambda does not read the response: a normal return deletes them all.
    ids = put_events(aws, queues.url, events(3))
    failing = ids[1]

    def handler(event: dict[str, Any], context: InvocationContext) -> dict[str, Any]:
        first_time = all(r["attributes"]["ApproximateReceiveCount"] == "1" for r in event["Records"])
        return {"batchItemFailures": [{"itemIdentifier": failing}] if first_time else []}

    mapping = esm(aws, queues, handler, report_batch_item_failures=report)
    mapping.run(drained(sqs, queues), max_seconds=120)

    first = mapping.invocations[0]
    assert first.message_ids == tuple(ids)
    if report:
        assert first.result is InvocationResult.PARTIAL
        assert first.kept == (failing,)
        assert first.deleted == (ids[0], ids[2])
        assert mapping.deliveries == {ids[0]: 1, failing: 2, ids[2]: 1}
    else:
        assert first.result is InvocationResult.SUCCEEDED
        assert mapping.deliveries == dict.fromkeys(ids, 1)


@pytest.mark.parametrize(
    "failure",
    [{"itemIdentifier": ""}, {"itemIdentifier": None}, {"itemIdentifier": "not-a-message-id"}, {"id": "x"}],
    ids=["empty", "null", "unknown", "bad key name"],
)
def test_an_invalid_item_identifier_fails_the_whole_batch(
    aws: LocalAWS, sqs: Any, queues: QueuePair, failure: dict[str, Any]
) -> None:
    # AWS: an empty or null itemIdentifier, a bad key name or an id not in the batch: Lambda treats the batch as a
    # complete failure, every message comes back.
    ids = put_events(aws, queues.url, events(2))

    def handler(event: dict[str, Any], context: InvocationContext) -> dict[str, Any]:
        first_time = event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1"
        return {"batchItemFailures": [failure] if first_time else []}

    mapping = esm(aws, queues, handler, report_batch_item_failures=True)
    mapping.run(drained(sqs, queues), max_seconds=120)

    assert mapping.invocations[0].result is InvocationResult.INVALID_RESPONSE
    assert mapping.deliveries == dict.fromkeys(ids, 2)


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"status": "CONTINUE"}],
    ids=["null", "empty", "empty list", "null list", "no key"],
)
def test_an_empty_or_absent_failure_list_is_a_complete_success(response: object) -> None:
    # AWS: an empty or null batchItemFailures list, an empty or null response: the batch succeeded.
    assert reported_failures(response, ("a", "b")) == ()


def test_a_response_lambda_cannot_read_fails_the_whole_batch() -> None:
    assert reported_failures("OK", ("a",)) is None
    assert reported_failures({"batchItemFailures": "a"}, ("a",)) is None
    assert reported_failures({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "a"}]}, "ab") == (
        "a",
        "b",
    )


def test_a_message_that_keeps_failing_goes_to_the_dead_letter_queue_after_max_receive_count(
    aws: LocalAWS, sqs: Any, queues: QueuePair
) -> None:
    # AWS: each failed invocation leaves the message in the queue; after maxReceiveCount (3) receives SQS moves
    # it to the dead-letter queue, and Lambda never sees it again.
    (poison,) = put_events(aws, queues.url, events(1))

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        raise ValueError("cannot parse")

    mapping = esm(aws, queues, handler)
    report = mapping.run(lambda: held_count(sqs, queues.dlq_url) == 1, max_seconds=300)

    assert report.reached
    assert mapping.deliveries == {poison: 3}
    assert held_count(sqs, queues.url) == 0
    starts = [i.started for i in mapping.invocations]
    assert all(b - a > timedelta(seconds=VISIBILITY) for a, b in itertools.pairwise(starts))


def test_never_more_than_maximum_concurrency_invocations_at_once(aws: LocalAWS, sqs: Any, queues: QueuePair) -> None:
    # AWS ScalingConfig: MaximumConcurrency "limits the number of concurrent instances that the Amazon SQS event
    # source can invoke", however many messages wait.
    ids = put_events(aws, queues.url, events(40))

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        aws.clock.sleep(5)

    mapping = esm(aws, queues, handler, batch_size=1, maximum_concurrency=3)
    mapping.run(drained(sqs, queues), max_seconds=600)

    assert mapping.max_concurrent_invocations == 3
    assert max_overlap(mapping.invocations) == 3
    assert mapping.deliveries == dict.fromkeys(ids, 1)


@pytest.mark.parametrize("ramp", [True, False])
def test_lambda_starts_with_five_concurrent_batches_and_adds_at_most_300_a_minute(
    aws: LocalAWS, sqs: Any, queues: QueuePair, ramp: bool
) -> None:
    # AWS: "Lambda starts processing five batches at a time with five concurrent invocations ... increases the
    # number of processes that are reading batches by up to 300 more instances per minute" (5 a second), up to
    # MaximumConcurrency. Off (scaling_ramp=False): all 20 at once.
    put_events(aws, queues.url, events(60))

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        aws.clock.sleep(10)

    mapping = esm(aws, queues, handler, batch_size=1, maximum_concurrency=20, scaling_ramp=ramp)
    mapping.run(drained(sqs, queues), max_seconds=600)

    invocations = mapping.invocations
    first = min(i.started for i in invocations)
    at_once = sum(i.started == first for i in invocations)
    assert mapping.max_concurrent_invocations == 20
    if ramp:
        assert at_once == 5
        for start in (i.started for i in invocations):
            running = sum(i.started <= start < i.ended for i in invocations)
            assert running <= 5 + 5 * (start - first).total_seconds()
    else:
        assert at_once == 20


def max_overlap(invocations: list[Invocation]) -> int:
    moments = sorted([(i.started, 1) for i in invocations] + [(i.ended, -1) for i in invocations])
    level = peak = 0
    for _, step in moments:  # an end sorts before a start at the same moment
        level += step
        peak = max(peak, level)
    return peak


def test_an_invocation_past_its_timeout_counts_as_failed_and_its_environment_is_replaced(
    aws: LocalAWS, sqs: Any, queues: QueuePair
) -> None:
    # AWS: an invocation that reaches the function timeout fails (Lambda stops it): nothing is deleted, and the
    # next invocation starts a new execution environment.
    (message_id,) = put_events(aws, queues.url, events(1))
    made: list[int] = []

    def make() -> Handler:
        made.append(len(made))

        def handler(event: dict[str, Any], context: InvocationContext) -> None:
            if len(made) == 1:
                aws.clock.sleep(TIMEOUT + 1)

        return handler

    mapping = esm(aws, queues, ok, maximum_concurrency=2, make_environment=make)
    mapping.run(drained(sqs, queues), max_seconds=120)

    late, retried = mapping.invocations
    assert late.result is InvocationResult.TIMED_OUT
    assert late.kept == (message_id,)
    assert retried.result is InvocationResult.SUCCEEDED
    assert retried.cold_start
    assert mapping.environments_made == 2


@pytest.mark.parametrize(("failure", "environments"), [(RuntimeError("bug"), 2), (SimulatedCrash("ec2", "X"), 3)])
def test_an_exception_keeps_the_execution_environment_and_a_crash_replaces_it(
    aws: LocalAWS, sqs: Any, queues: QueuePair, failure: BaseException, environments: int
) -> None:
    # AWS: an unhandled exception is reported and the environment serves the next invocation; a process that
    # dies (Runtime.ExitError) takes its environment with it. Two workers: 2 environments, 3 after a crash.
    put_events(aws, queues.url, events(10))
    failures: list[BaseException] = [failure]

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        aws.clock.sleep(1)
        if failures:
            raise failures.pop()

    mapping = esm(aws, queues, handler, batch_size=1, maximum_concurrency=2)
    mapping.run(drained(sqs, queues), max_seconds=120)

    invocations = mapping.invocations
    (failed,) = [i for i in invocations if i.result is InvocationResult.ERROR]
    assert failed.error is failure
    assert {i.worker for i in invocations if i.started >= failed.ended} == {0, 1}
    assert mapping.environments_made == environments


def test_a_timed_out_invocation_cannot_reach_aws_after_its_deadline(aws: LocalAWS, sqs: Any, queues: QueuePair) -> None:
    # AWS: Lambda stops the function at its timeout; what it would have done afterwards never happens.
    put_events(aws, queues.url, events(1))
    other = sqs.create_queue(QueueName="side-effects")["QueueUrl"]
    writer = aws.client("sqs")

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        if event["Records"][0]["attributes"]["ApproximateReceiveCount"] == "1":
            aws.clock.sleep(TIMEOUT)
            writer.send_message(QueueUrl=other, MessageBody="too late")

    mapping = esm(aws, queues, handler)
    mapping.run(drained(sqs, queues), max_seconds=120)

    first = mapping.invocations[0]
    assert first.result is InvocationResult.TIMED_OUT
    assert isinstance(first.error, InvocationTimedOut)
    assert held_count(sqs, other) == 0


def test_each_worker_reuses_its_execution_environment(aws: LocalAWS, sqs: Any, queues: QueuePair) -> None:
    # AWS: Lambda reuses a warm execution environment for later invocations: MaximumConcurrency environments
    # serve all the batches, not one per invocation.
    put_events(aws, queues.url, events(20))

    def handler(event: dict[str, Any], context: InvocationContext) -> None:
        aws.clock.sleep(1)

    mapping = esm(aws, queues, handler, batch_size=1, maximum_concurrency=3)
    mapping.run(drained(sqs, queues), max_seconds=300)

    invocations = mapping.invocations
    assert len(invocations) == 20
    assert mapping.environments_made == 3
    assert sum(i.cold_start for i in invocations) == 3
    assert all(len({i.worker for i in invocations if i.environment == e}) == 1 for e in (1, 2, 3))


# --- running ---------------------------------------------------------------------------------------------------


def test_a_run_whose_condition_never_holds_stops_after_max_seconds(aws: LocalAWS, queues: QueuePair) -> None:
    report = esm(aws, queues, ok).run(lambda: False, max_seconds=10)

    assert not report.reached
    assert 10 <= report.seconds <= 11
    assert report.invocations == 0


def test_extra_tasks_run_on_the_same_clock_and_stop_with_the_run(aws: LocalAWS, queues: QueuePair) -> None:
    # A scheduled function (EventBridge Scheduler, every minute) next to the intake.
    fired: list[datetime] = []
    mapping = esm(aws, queues, ok)

    report = mapping.run(
        lambda: False, extra_tasks=[mapping.every(60, lambda: fired.append(aws.clock.now()))], max_seconds=150
    )

    assert fired == [report.started + timedelta(seconds=s) for s in (0, 60, 120)]


def simulate(seed: int) -> list[tuple[object, ...]]:
    """A run with latency, several workers and failures, reduced to what happened when."""
    with LocalAWS(region="us-east-1", start_time=START, realism=Realism(), seed=seed) as aws:
        sqs = aws.client("sqs")
        queues = create_queue_pair(aws, "intake", visibility_timeout=VISIBILITY, max_receive_count=2)
        put_events(aws, queues.url, events(12))

        def handler(event: dict[str, Any], context: InvocationContext) -> dict[str, Any]:
            sqs.get_queue_attributes(QueueUrl=queues.url, AttributeNames=["All"])  # some AWS time
            odd = [r["messageId"] for r in event["Records"] if json.loads(r["body"])["id"].endswith(("1", "3"))]
            return {"batchItemFailures": [{"itemIdentifier": i} for i in odd]}

        mapping = esm(aws, queues, handler, batch_size=3, maximum_concurrency=3, report_batch_item_failures=True)
        mapping.run(drained(sqs, queues), max_seconds=600)
        return [(i.worker, i.started, i.ended, i.message_ids, i.result, i.request_id) for i in mapping.invocations]


def test_the_same_seed_gives_the_same_run() -> None:
    first = simulate(seed=7)

    assert simulate(seed=7) == first
    assert simulate(seed=8) != first
    assert len(first) > 4
