"""Lifecycle events as the intake's event source mapping hands them to the function: SQS records."""

from __future__ import annotations

import json
from typing import Any

from localaws import LocalAWS
from multus_ipam.lifecycle import Delivery
from multus_ipam.runtime import Runtime, handle_one
from tests.handlers.world import FakeClock, FakeContext

QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:multus-ipam-intake"


def sqs_batch(events: list[dict[str, Any]], *, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event (Lambda's shape for an SQS event source) whose records carry ``events`` as their bodies,
    each received ``receive_count`` times so far (``ApproximateReceiveCount``)."""
    return {
        "Records": [
            {
                "messageId": f"message-{index}",
                "receiptHandle": f"handle-{index}",
                "body": json.dumps(event),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1700000000000",
                    "SenderId": "AIDAEVENTBRIDGE",
                    "ApproximateFirstReceiveTimestamp": "1700000000001",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
            for index, event in enumerate(events)
        ]
    }


def failed_ids(response: dict[str, Any]) -> list[str]:
    """The message ids a batch response reports failed (they come back)."""
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def deliver_last(runtime: Runtime, event: dict[str, Any], context: FakeContext | None = None) -> dict[str, Any]:
    """Hand the event over as its last receive from the intake queue (no later attempt: failures roll back and
    complete with FAILURE_RESULT); returns the engine's outcome for it."""
    last = runtime.settings.max_receive_count
    if context is None:
        active = LocalAWS.active()
        context = FakeContext(clock=FakeClock(follow=active.clock) if active is not None else None)
    return handle_one(runtime, event, context, Delivery(receive_count=last, max_receives=last))
