"""The intake on the local AWS clock: SQS (visibility timeout, redrive, retention, receipt handles, long polling).
Each test names the AWS behaviour it reproduces; where the local AWS adds the
behaviour to moto, a plain-moto twin shows moto without it.

Times are asserted on the simulated clock only: ``Realism.strict()`` (the ``aws`` fixture) has no latency, so
time moves only when someone waits on the clock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from localaws import LocalAWS, Realism

from .conftest import START

VISIBILITY = 30


@pytest.fixture
def sqs(aws: LocalAWS) -> Any:
    return aws.client("sqs")


@pytest.fixture
def plain() -> Iterator[LocalAWS]:
    """moto as it is (the SQS time and long polls are still the local AWS clock's)."""
    with LocalAWS(region="us-east-1", start_time=START, extensions=False) as local:
        yield local


def redrive_pair(sqs: Any, name: str, *, max_receive_count: int, **attributes: str) -> tuple[str, str]:
    """A queue whose RedrivePolicy sends to ``name-dlq``, and that dead-letter queue: (url, dlq url)."""
    dlq_attributes = {"MessageRetentionPeriod": attributes.pop("DlqRetention", "1209600")}
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq", Attributes=dlq_attributes)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
    url = sqs.create_queue(QueueName=name, Attributes={**attributes, "RedrivePolicy": redrive})["QueueUrl"]
    return url, dlq_url


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


def test_a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(aws: LocalAWS, sqs: Any) -> None:
    # AWS: once ReceiveCount exceeds maxReceiveCount (3 here), SQS moves the message to the dead-letter queue
    # instead of returning it.
    url, dlq_url = redrive_pair(sqs, "q", max_receive_count=3, VisibilityTimeout=str(VISIBILITY))
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    counts = []
    for _ in range(3):
        (message,) = receive(sqs, url)
        counts.append(message["Attributes"]["ApproximateReceiveCount"])
        aws.clock.advance(VISIBILITY + 0.1)

    fourth = receive(sqs, url)

    assert counts == ["1", "2", "3"]
    assert fourth == []
    (moved,) = receive(sqs, dlq_url)
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


def test_a_dead_letter_message_expires_counting_from_its_first_send(aws: LocalAWS, sqs: Any) -> None:
    # AWS: "the expiration of a message is always based on its original enqueue timestamp": a message moved to
    # the dead-letter queue does not get a new retention period.
    url, dlq_url = redrive_pair(
        sqs, "q", max_receive_count=1, VisibilityTimeout="10", MessageRetentionPeriod="100", DlqRetention="120"
    )
    sqs.send_message(QueueUrl=url, MessageBody="x")
    receive(sqs, url)
    aws.clock.advance(10.1)
    receive(sqs, url)  # moves it

    aws.clock.advance(110)

    assert held_count(sqs, dlq_url) == 0


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
