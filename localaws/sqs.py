"""SQS standard queues where moto is more forgiving than AWS.

**AWS behaviour reproduced** (Amazon SQS API reference, DeleteMessage; developer guide, "Amazon SQS message
retention" and "Using dead-letter queues"):

* **retention**: "If you leave a message in the queue for longer than the queue's configured retention period,
  Amazon SQS automatically deletes it." moto only skips an expired message when a receive reaches it, and then
  stops the receive there (the messages behind it are not returned either), counts it in
  ``ApproximateNumberOfMessages``, marks it received, and may even move it to the dead-letter queue. Here an
  expired message is gone from its queue as soon as any request looks at the queue. Expiry counts from the
  original send, in a dead-letter queue too ("the expiration of a message is always based on its original
  enqueue timestamp"; moto keeps ``SentTimestamp`` when it moves a message).
* **stale receipt handles**: "When you use the DeleteMessage action, you must use the ReceiptHandle from the most
  recent time you received the message. If you use an old ReceiptHandle, the request will succeed, but the
  message might not be deleted." moto deletes with any receipt handle the message ever had; here an old one
  succeeds and deletes nothing (a consumer whose visibility timeout ran out before it deleted has lost the
  message to the next receiver).

The time itself (visibility timeouts, delays, retention, the timestamps) is the local AWS clock's for SQS in
every mode (``localaws._install``), as is long polling.

Not reproduced: short polling's sampling of a subset of servers (a ``WaitTimeSeconds=0`` receive here sees every
visible message, as a long poll does on AWS); duplicate deliveries of standard queues (at-least-once); FIFO
specifics beyond moto's; ``MessageNotInflight`` on ChangeMessageVisibility for a message that is not in flight.
"""

# ruff: noqa: ANN401 - moto models are untyped; they are `Any` here by necessity.

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from moto.sqs.models import Queue, SQSBackend

from localaws._install import Patch, extension

if TYPE_CHECKING:
    from localaws._session import Session


@extension("sqs")
def sqs_rules(session: Session) -> Iterable[Patch]:
    yield Patch(SQSBackend, "get_queue", lambda original: _without_expired(session, original))
    yield Patch(Queue, "delete_message", _latest_handle_only)


def _without_expired(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    """Every request about a queue finds it through ``get_queue``: drop what has outlived the retention period."""

    def get_queue(backend: Any, queue_name: str) -> Any:
        queue = original(backend, queue_name)
        now_ms = session.clock.now().timestamp() * 1000.0
        retention_ms = int(queue.message_retention_period) * 1000
        expired = [
            m for m in queue._messages if m.sent_timestamp is not None and m.sent_timestamp + retention_ms <= now_ms
        ]
        if expired:
            gone = set(map(id, expired))
            queue._messages = [m for m in queue._messages if id(m) not in gone]
            for message in expired:
                queue.pending_messages.discard(message)
                queue.deleted_messages.update(message.all_receipt_handles)
        return queue

    return get_queue


def _latest_handle_only(original: Callable[..., Any]) -> Callable[..., Any]:
    def delete_message(queue: Any, receipt_handle: str) -> None:
        for message in queue._messages:
            if message.had_receipt_handle(receipt_handle) and message.receipt_handle != receipt_handle:
                return  # an old receipt handle: the request succeeds, the message stays
        original(queue, receipt_handle)

    return delete_message
