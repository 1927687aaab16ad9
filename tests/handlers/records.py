"""Lifecycle events as the intake's event source mapping hands them to the function: SQS records."""

from __future__ import annotations

import json
from typing import Any

from localaws import EventSourceMapping, LocalAWS, QueuePair, create_queue_pair
from localaws.intake import Handler
from multus_ipam.lifecycle import Delivery
from multus_ipam.runtime import Runtime, handle_event, handle_one
from tests.handlers.world import LAUNCH_HOOK, TERMINATE_HOOK, FakeClock, FakeContext, World

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


# --- the intake as the stack deploys it, on the local AWS ---------------------------------------------------

#: template.yaml: the lifecycle function's Timeout and the intake queue's VisibilityTimeout (the function's
#: RETRY_DELAY_SECONDS: a message reported failed is received again this long after its last receive).
FUNCTION_TIMEOUT_SECONDS = 180
VISIBILITY_TIMEOUT_SECONDS = 210


def intake_queue(aws: LocalAWS, *, max_receive_count: int, name: str = "multus-intake") -> QueuePair:
    """The intake queue and its dead-letter queue (redrive after ``max_receive_count`` receives)."""
    return create_queue_pair(
        aws, name, visibility_timeout=VISIBILITY_TIMEOUT_SECONDS, max_receive_count=max_receive_count
    )


def function_env(*, max_receive_count: int, hook_timeout: int = 300, **env: str) -> dict[str, str]:
    """The lifecycle function's variables that template.yaml sets for the intake (``env`` adds and overrides);
    ``World.env`` adds the group's. ``hook_timeout``: the world's hooks' HeartbeatTimeout (build_world's
    default), as the function is told it."""
    settings = {
        "LIFECYCLE_HOOK_NAMES": f"{LAUNCH_HOOK},{TERMINATE_HOOK}",
        "RETRY_DELAY_SECONDS": str(VISIBILITY_TIMEOUT_SECONDS),
        "MAX_RECEIVE_COUNT": str(max_receive_count),
        "HOOK_HEARTBEAT_TIMEOUT_SECONDS": str(hook_timeout),
    }
    settings.update(env)
    return settings


def intake_mapping(
    world: World,
    queue: QueuePair,
    env: dict[str, str],
    *,
    maximum_concurrency: int = 2,
    batch_size: int = 1,
) -> EventSourceMapping:
    """The event source mapping of the intake queue, with ReportBatchItemFailures as the template has it; each
    execution environment gets its own runtime (clients, caches) of the world's function."""

    def make_environment() -> Handler:
        runtime = world.runtime(world.mode, FakeClock(follow=world.aws.clock), 5, **env)
        return lambda event, context: handle_event(runtime, event, context)

    return EventSourceMapping(
        world.aws,
        queue_url=queue.url,
        make_environment=make_environment,
        function_timeout_seconds=FUNCTION_TIMEOUT_SECONDS,
        maximum_concurrency=maximum_concurrency,
        batch_size=batch_size,
        report_batch_item_failures=True,
    )


def queue_depth(aws: LocalAWS, url: str) -> int:
    """Messages the queue holds: visible, in flight and delayed."""
    names: list[Any] = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)
