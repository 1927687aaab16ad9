"""SQS adapter: the intake queue, as the reconciler sees it (how much waits in it; putting lost events back)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from multus_ipam.aws._errors import aws_call
from multus_ipam.errors import AwsCallFailed
from multus_ipam.ports import Backlog

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: SendMessageBatch takes at most 10 entries (SQS API reference).
MAX_BATCH = 10
#: ApproximateNumberOfMessages: visible; ...NotVisible: received, in flight; ...Delayed: not visible yet.
_Backlog = Literal[
    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"
]
BACKLOG_ATTRIBUTES: tuple[_Backlog, ...] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class SqsIntake:
    """Implements :class:`multus_ipam.ports.Intake` over a boto3 SQS client and the queue's URL."""

    IAM_ACTIONS: ClassVar[frozenset[str]] = frozenset({"sqs:GetQueueAttributes", "sqs:SendMessage"})

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def backlog(self) -> Backlog:
        with aws_call("GetQueueAttributes"):
            response = self._client.get_queue_attributes(QueueUrl=self._url, AttributeNames=list(BACKLOG_ATTRIBUTES))
        attributes = response.get("Attributes", {})
        visible, in_flight, delayed = (int(attributes.get(name, "0")) for name in BACKLOG_ATTRIBUTES)
        return Backlog(visible=visible, in_flight=in_flight, delayed=delayed)

    def send(self, events: Sequence[Mapping[str, object]]) -> None:
        for start in range(0, len(events), MAX_BATCH):
            chunk = events[start : start + MAX_BATCH]
            entries = [{"Id": str(i), "MessageBody": json.dumps(event)} for i, event in enumerate(chunk)]
            with aws_call("SendMessageBatch"):
                response = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)  # type: ignore[arg-type]
            failed = response.get("Failed", [])
            if failed:
                first = failed[0]
                raise AwsCallFailed(
                    "SendMessageBatch",
                    str(first.get("Code", "Unknown")),
                    f"{len(failed)} of {len(entries)} events not queued: {first.get('Message', '')}",
                    status=500 if not first.get("SenderFault") else 400,
                )
