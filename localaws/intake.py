"""The intake on the local AWS clock: EventBridge -> SQS standard queue (redrive to a dead-letter queue) -> Lambda
event source mapping (ESM) with ``ScalingConfig.MaximumConcurrency`` -> the function.

``EventSourceMapping`` is Lambda's SQS poller for one function. Its workers are concurrent callers of the local
AWS (``aws.run_concurrently``): they poll the queue through the SQS API, invoke the function's handler with the
event Lambda builds, and delete what Lambda deletes, all on the simulated clock, deterministically for the seed.

**AWS behaviour reproduced** (AWS Lambda developer guide, "Using Lambda with Amazon SQS": "Creating and
configuring an Amazon SQS event source mapping", "Configuring scaling behavior for SQS event source mappings",
"Handling errors for an SQS event source in Lambda"; Lambda API reference, CreateEventSourceMapping and
ScalingConfig):

* **creation**, as CreateEventSourceMapping refuses it (``botocore.exceptions.ClientError`` with AWS's code and
  wording): ``MaximumConcurrency`` outside 2..1000 and ``BatchSize`` outside 1..10000 (``ValidationException``,
  from the Lambda model's constraints, ``localaws.validation``); ``BatchSize`` above 10 without a batching
  window (``InvalidParameterValueException``, "Maximum batch window in seconds must be greater than 0 if maximum
  batch size is greater than 10"); a queue whose visibility timeout is below the function timeout
  (``InvalidParameterValueException``, "Queue visibility timeout: 30 seconds is less than Function timeout: 60
  seconds", as AWS answers it in public reports).
* **concurrency**: ``maximum_concurrency`` workers, each making one invocation at a time, so never more
  invocations at once than MaximumConcurrency; of those, 5 poll when messages appear and 300 more a minute join
  while the workers keep finding messages (Lambda's ramp-up; back to 5 as soon as a receive finds nothing while
  no other worker holds a batch, sooner than Lambda scales down, so never faster than Lambda). Each worker keeps
  the execution environment it made (one call of ``make_environment``, on its first batch) for all its
  invocations, as Lambda reuses warm environments; after a timeout or a crash (``SimulatedCrash``,
  ``SystemExit``) Lambda replaces the environment: the next invocation there is a cold start.
* **polling**: ReceiveMessage with ``MaxNumberOfMessages=batch_size``, the queue's visibility timeout and every
  attribute. Lambda long-polls (up to 20 s) and gets a message as soon as one is visible; here a worker asks with
  ``WaitTimeSeconds=0`` and, finding nothing, waits ``poll_interval_seconds`` on the clock (1 s): never sooner
  than Lambda.
* **the event**: ``{"Records": [...]}`` with ``messageId``, ``receiptHandle``, ``body``, ``attributes``
  (``ApproximateReceiveCount``, ``SentTimestamp``, ``SenderId``, ``ApproximateFirstReceiveTimestamp``, and any other
  system attribute SQS returned), ``messageAttributes`` (lower-camel, binary values base64), ``md5OfBody``
  (``md5OfMessageAttributes`` when there are attributes), ``eventSource`` ``aws:sqs``, ``eventSourceARN`` and
  ``awsRegion``; the context's ``get_remaining_time_in_millis()`` counts the function timeout down on the clock.
* **results**: the handler raises, or its response cannot be serialised to JSON: nothing is deleted, the whole
  batch returns after the visibility timeout. It runs to its timeout: the same, and any AWS call it makes after
  its deadline does not reach AWS (``InvocationTimedOut``, a ``BaseException``, is raised in it instead; a wait on
  the clock alone cannot be cut short, so a worker may stay busy past the deadline, never less). Without
  ReportBatchItemFailures any return deletes the whole batch. With it: ``None``, ``{}``, a response without
  ``batchItemFailures`` or with an empty or null list deletes the whole batch; ``{"batchItemFailures":
  [{"itemIdentifier": id}, ...]}`` deletes all but those; an empty, null or unknown ``itemIdentifier``, an item
  without that key, or a response that is not a JSON object fails the whole batch. Deletes are one
  DeleteMessageBatch; SQS's redrive (``maxReceiveCount``) and retention then do the rest (``localaws.sqs``).

EventBridge -> SQS: ``put_events`` sends each event as EventBridge's SQS target does (SendMessage, the event's
JSON as the body). ``create_queue_pair`` makes the queue and its dead-letter queue through the SQS API.

Not reproduced: see ``localaws.NOT_MODELLED`` ("event delivery", "ESM scaling", ...).
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.config import Config
from botocore.exceptions import ClientError

from localaws import validation
from localaws._install import InvocationTimedOut, invocation_deadline
from localaws.faults import SimulatedCrash

if TYPE_CHECKING:
    from localaws import LocalAWS
    from localaws.clock import Clock

__all__ = [
    "EventSourceMapping",
    "Handler",
    "Invocation",
    "InvocationContext",
    "InvocationResult",
    "InvocationTimedOut",
    "QueuePair",
    "RunReport",
    "create_queue_pair",
    "put_events",
    "reported_failures",
]

#: Lambda's largest batch for a standard queue without a batching window (CreateEventSourceMapping, BatchSize).
MAX_BATCH_SIZE_WITHOUT_WINDOW = 10
#: A Lambda function's timeout range, seconds (CreateFunction, Timeout).
FUNCTION_TIMEOUT_RANGE = (1, 900)
#: SQS's defaults and limits (CreateQueue attributes): 4 days' retention by default, 14 days at most.
DEFAULT_RETENTION_SECONDS = 345_600
MAX_RETENTION_SECONDS = 1_209_600
#: Lambda's scaling for a standard queue ("Configuring scaling behavior for SQS event source mappings"): "Lambda
#: starts processing five batches at a time with five concurrent invocations"; "if messages are still available,
#: Lambda increases the number of processes that are reading batches by up to 300 more instances per minute".
INITIAL_CONCURRENCY = 5
RAMP_PER_MINUTE = 300
#: The order of the system attributes in Lambda's documented example event; any others follow.
_ATTRIBUTE_ORDER = ("ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")


@dataclass
class InvocationContext:
    """The Lambda context object, as the Python runtime passes it (the parts handlers read)."""

    function_name: str
    aws_request_id: str
    invoked_function_arn: str
    deadline: datetime
    clock: Clock = field(repr=False)
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - self.clock.now()).total_seconds() * 1000), 0)


#: A function's handler: ``(event, context) -> response``.
Handler = Callable[[dict[str, Any], InvocationContext], object]


class InvocationResult(StrEnum):
    SUCCEEDED = "succeeded"
    """Every message of the batch deleted."""
    PARTIAL = "partial"
    """ReportBatchItemFailures named some messages: the others deleted."""
    ERROR = "error"
    """The handler raised (or its environment failed to start, or its response was not JSON): none deleted."""
    TIMED_OUT = "timed_out"
    """The invocation reached the function timeout: none deleted."""
    INVALID_RESPONSE = "invalid_response"
    """ReportBatchItemFailures and a response Lambda counts as a complete failure: none deleted."""


@dataclass(frozen=True)
class Invocation:
    """One invocation of the function by the mapping."""

    request_id: str
    worker: int
    environment: int
    """Which execution environment ran it (the count of ``make_environment`` calls, from 1)."""
    cold_start: bool
    started: datetime
    """When the worker handed the batch on (a cold start's init phase follows, outside the function timeout)."""
    ended: datetime
    message_ids: tuple[str, ...]
    result: InvocationResult
    kept: tuple[str, ...]
    """Messages Lambda did not delete: they come back once their visibility timeout ends."""
    delete_failures: tuple[str, ...] = ()
    """Messages Lambda meant to delete whose delete SQS did not confirm."""
    error: BaseException | None = None

    @property
    def deleted(self) -> tuple[str, ...]:
        gone = set(self.kept) | set(self.delete_failures)
        return tuple(m for m in self.message_ids if m not in gone)


@dataclass(frozen=True)
class RunReport:
    started: datetime
    ended: datetime
    reached: bool
    """``until()`` became true; False: ``max_seconds`` of simulated time passed first."""
    invocations: int
    """Invocations during this run."""

    @property
    def seconds(self) -> float:
        return (self.ended - self.started).total_seconds()


@dataclass(frozen=True)
class QueuePair:
    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


def create_queue_pair(
    aws: LocalAWS,
    name: str,
    *,
    visibility_timeout: int,
    max_receive_count: int,
    retention_seconds: int = DEFAULT_RETENTION_SECONDS,
    dlq_retention_seconds: int = MAX_RETENTION_SECONDS,
) -> QueuePair:
    """The intake queue ``name`` and its dead-letter queue ``name-dlq`` (RedrivePolicy ``deadLetterTargetArn`` and
    ``maxReceiveCount``), made through the local AWS's SQS API. AWS advises a dead-letter retention longer than
    the source's: an expired message is gone from the dead-letter queue too (expiry counts from the first send)."""
    sqs = aws.client("sqs")
    dlq_url: str = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes={"MessageRetentionPeriod": str(dlq_retention_seconds)}
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}
    url: str = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(retention_seconds),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return QueuePair(url=url, arn=_queue_arn(sqs, url), dlq_url=dlq_url, dlq_arn=dlq_arn)


def put_events(aws: LocalAWS, queue_url: str, events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Deliver EventBridge events to the queue as a rule's SQS target does: one SendMessage each, the event's JSON
    as the body, no message attributes. Returns the message ids."""
    sqs = aws.client("sqs")
    return [_send_event(sqs, queue_url, event) for event in events]


class EventSourceMapping:
    """Lambda's SQS poller for one function: see the module docstring.

    ``make_environment`` makes one execution environment and returns its handler; each worker calls it once (on
    its first batch, and again after a timeout or a crash) and reuses the handler for all its invocations.
    """

    def __init__(
        self,
        aws: LocalAWS,
        *,
        queue_url: str,
        make_environment: Callable[[], Handler],
        function_timeout_seconds: int,
        maximum_concurrency: int,
        batch_size: int = 10,
        report_batch_item_failures: bool = False,
        function_name: str = "intake",
        poll_interval_seconds: float = 1.0,
        init_seconds: float = 0.0,
        scaling_ramp: bool = True,
    ) -> None:
        """Refuses what CreateEventSourceMapping refuses (``ClientError``, AWS's code and message).
        ``poll_interval_seconds``: a worker's wait after an empty receive. ``init_seconds``: the init phase of a
        new execution environment, on the clock (the factory's own AWS calls count anyway). ``scaling_ramp``:
        Lambda's ramp-up (5 workers, then 300 more a minute); off, all ``maximum_concurrency`` workers poll from
        the start (for tests where the ramp would only blur what is checked)."""
        low, high = FUNCTION_TIMEOUT_RANGE
        if not low <= function_timeout_seconds <= high:
            raise ValueError(f"function_timeout_seconds: a Lambda function's timeout is {low} to {high} seconds")
        if poll_interval_seconds <= 0 or init_seconds < 0:
            raise ValueError("poll_interval_seconds must be positive and init_seconds not negative")
        self._aws = aws
        self._session = aws._session  # the request lock and the per-thread deadlines (localaws._install)
        self._sqs = aws.client("sqs", config=Config(retries={"mode": "standard"}))
        attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        self.queue_url = queue_url
        self.queue_arn: str = attributes["QueueArn"]
        self.function_name = function_name
        self.function_arn = f"arn:aws:lambda:{aws.region}:{aws.account_id}:function:{function_name}"
        self.function_timeout_seconds = function_timeout_seconds
        self.maximum_concurrency = maximum_concurrency
        self.batch_size = batch_size
        self.report_batch_item_failures = report_batch_item_failures
        self.poll_interval_seconds = poll_interval_seconds
        self.init_seconds = init_seconds
        self.scaling_ramp = scaling_ramp
        self._check_creation(attributes)
        self._make_environment = make_environment
        self._environments: dict[int, tuple[int, Handler]] = {}  # worker -> (environment number, handler)
        self._environments_made = 0
        self._rng = random.Random(f"{aws.seed}:{function_name}")  # noqa: S311 - request ids, not cryptography
        self._lock = threading.Lock()
        self._invocations: list[Invocation] = []
        self._deliveries: Counter[str] = Counter()
        self._poll_errors: list[str] = []
        self._in_flight = 0
        self._max_in_flight = 0
        self._busy = 0  # workers between a receive and the end of its batch's deletes
        self._active_since: datetime | None = None  # when the workers last began finding messages (the ramp)
        self._stopping = False
        self._reached = False
        self._until: Callable[[], bool] = lambda: True
        self._stop_at: datetime | None = None

    # --- what tests and benchmarks read -------------------------------------------------------------------------

    @property
    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    @property
    def deliveries(self) -> Counter[str]:
        """Message id -> how many times it was handed to the function."""
        with self._lock:
            return Counter(self._deliveries)

    @property
    def max_concurrent_invocations(self) -> int:
        return self._max_in_flight

    @property
    def environments_made(self) -> int:
        """Calls of ``make_environment`` so far."""
        return self._environments_made

    @property
    def poll_errors(self) -> list[str]:
        """The error codes of receives that failed (``"crash"``: the answer was lost)."""
        with self._lock:
            return list(self._poll_errors)

    @property
    def stopping(self) -> bool:
        """True once the run is ending: extra tasks must return soon after (``every`` does)."""
        return self._stopping

    # --- running -------------------------------------------------------------------------------------------------

    def put_events(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """``put_events`` to this mapping's queue."""
        return [_send_event(self._sqs, self.queue_url, event) for event in events]

    def every(self, seconds: float, action: Callable[[], object]) -> Callable[[], None]:
        """A task for ``run(extra_tasks=...)``: ``action()`` at once and then every ``seconds`` of local AWS time
        (as a schedule fires a function), until the run stops. A run that overlaps the next moment delays it."""
        if seconds <= 0:
            raise ValueError("seconds must be positive")

        def task() -> None:
            clock = self._aws.clock
            next_at = clock.now()
            while not self._stopping:
                if clock.now() >= next_at:
                    action()
                    next_at += timedelta(seconds=seconds)
                    continue
                clock.sleep(min(self.poll_interval_seconds, (next_at - clock.now()).total_seconds()))

        return task

    def run(
        self, until: Callable[[], bool], *, extra_tasks: Sequence[Callable[[], object]] = (), max_seconds: float
    ) -> RunReport:
        """Run the ``maximum_concurrency`` workers (and ``extra_tasks``, such as ``every(60, reconcile)``) as
        concurrent callers on the local AWS clock. Workers stop once ``until()`` is true while no batch is in
        flight (they check between batches), or once ``max_seconds`` of simulated time have passed (then
        ``reached`` is False). Re-raises the first exception of a worker or an extra task (which ends the run)."""
        if max_seconds <= 0:
            raise ValueError("max_seconds must be positive")
        clock = self._aws.clock
        started = clock.now()
        before = len(self.invocations)
        self._until, self._stop_at = until, started + timedelta(seconds=max_seconds)
        self._stopping = self._reached = False
        workers = [self._stopping_on_error(lambda i=i: self._worker(i)) for i in range(self.maximum_concurrency)]  # type: ignore[misc]
        extras = [self._stopping_on_error(task) for task in extra_tasks]
        outcomes = self._aws.run_concurrently([*workers, *extras])
        for outcome in outcomes:
            outcome.get()
        return RunReport(
            started=started, ended=clock.now(), reached=self._reached, invocations=len(self.invocations) - before
        )

    def _stopping_on_error(self, task: Callable[[], object]) -> Callable[[], object]:
        def guarded() -> object:
            try:
                return task()
            except BaseException:
                self._stopping = True
                raise

        return guarded

    def _should_stop(self) -> bool:
        if self._stopping:
            return True
        if self._busy == 0 and self._until():
            self._reached = self._stopping = True
        elif self._stop_at is not None and self._aws.clock.now() >= self._stop_at:
            self._stopping = True
        return self._stopping

    def _worker(self, index: int) -> None:
        clock = self._aws.clock
        while not self._should_stop():
            if index >= self._scaled_to():
                clock.sleep(self.poll_interval_seconds)  # Lambda has not scaled this far (yet)
                continue
            self._busy += 1
            try:
                messages = self._receive()
                if messages:
                    if self._active_since is None:
                        self._active_since = clock.now()
                    self._invoke(index, messages)
                elif self._busy == 1:  # nothing to read and nothing in hand: back to the initial concurrency
                    self._active_since = None
            finally:
                self._busy -= 1
            if not messages:
                clock.sleep(self.poll_interval_seconds)

    def _scaled_to(self) -> int:
        """How many workers Lambda runs now: 5 when messages appear, then 300 more a minute (at most)."""
        if not self.scaling_ramp:
            return self.maximum_concurrency
        elapsed = 0.0 if self._active_since is None else (self._aws.clock.now() - self._active_since).total_seconds()
        return min(self.maximum_concurrency, INITIAL_CONCURRENCY + int(elapsed * RAMP_PER_MINUTE / 60))

    def _receive(self) -> list[dict[str, Any]]:
        try:
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except ClientError as error:
            self._note_poll_error(str(error.response.get("Error", {}).get("Code", "UnknownError")))
            return []
        except SimulatedCrash:  # the answer was lost: what SQS handed out stays invisible until its timeout
            self._note_poll_error("crash")
            return []
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _note_poll_error(self, code: str) -> None:
        with self._lock:
            self._poll_errors.append(code)

    # --- one invocation ----------------------------------------------------------------------------------------

    def _invoke(self, worker: int, messages: list[dict[str, Any]]) -> None:
        clock = self._aws.clock
        ids = tuple(str(m["MessageId"]) for m in messages)
        event = {"Records": [self._record(m) for m in messages]}
        request_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        with self._lock:
            self._deliveries.update(ids)
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        started = clock.now()
        deadline = started + timedelta(seconds=self.function_timeout_seconds)
        environment, cold_start = 0, False
        response: object = None
        error: BaseException | None = None
        killed = False
        try:
            environment, handler, cold_start = self._environment(worker)
            deadline = clock.now() + timedelta(seconds=self.function_timeout_seconds)  # the init phase is not counted
            context = InvocationContext(
                function_name=self.function_name,
                aws_request_id=request_id,
                invoked_function_arn=self.function_arn,
                deadline=deadline,
                clock=clock,
            )
            with invocation_deadline(self._session, deadline):
                response = handler(event, context)
            json.dumps(response)  # Lambda serialises the response: one it cannot is a failed invocation
        except InvocationTimedOut as timeout:
            killed, error = True, timeout
        except (Exception, SimulatedCrash, SystemExit) as failure:  # noqa: BLE001 - any failure fails the batch, as in Lambda
            error = failure
        finally:
            with self._lock:
                self._in_flight -= 1
        ended = clock.now()
        timed_out = killed or ended >= deadline
        if timed_out or isinstance(error, SimulatedCrash | SystemExit):
            self._environments.pop(worker, None)  # Lambda replaces an environment that timed out or died
        result, kept = self._judge(ids, response, error, timed_out)
        delete_failures = self._delete([m for m in messages if m["MessageId"] not in kept])
        invocation = Invocation(
            request_id=request_id,
            worker=worker,
            environment=environment,
            cold_start=cold_start,
            started=started,
            ended=ended,
            message_ids=ids,
            result=result,
            kept=kept,
            delete_failures=delete_failures,
            error=error,
        )
        with self._lock:
            self._invocations.append(invocation)

    def _environment(self, worker: int) -> tuple[int, Handler, bool]:
        """The worker's execution environment: made on its first batch (the init phase on the clock), then reused."""
        existing = self._environments.get(worker)
        if existing is not None:
            return existing[0], existing[1], False
        if self.init_seconds:
            self._aws.clock.sleep(self.init_seconds)
        with self._lock:
            self._environments_made += 1
            number = self._environments_made
        handler = self._make_environment()
        self._environments[worker] = (number, handler)
        return number, handler, True

    def _judge(
        self, ids: tuple[str, ...], response: object, error: BaseException | None, timed_out: bool
    ) -> tuple[InvocationResult, tuple[str, ...]]:
        """What Lambda makes of the invocation, and which messages it leaves in the queue."""
        if timed_out:
            return InvocationResult.TIMED_OUT, ids
        if error is not None:
            return InvocationResult.ERROR, ids
        if not self.report_batch_item_failures:
            return InvocationResult.SUCCEEDED, ()
        failed = reported_failures(response, ids)
        if failed is None:
            return InvocationResult.INVALID_RESPONSE, ids
        return (InvocationResult.PARTIAL, failed) if failed else (InvocationResult.SUCCEEDED, ())

    def _delete(self, messages: list[dict[str, Any]]) -> tuple[str, ...]:
        """Delete the batch's successes in one DeleteMessageBatch; the ids whose delete SQS did not confirm."""
        if not messages:
            return ()
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            response = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except ClientError:
            return tuple(str(m["MessageId"]) for m in messages)
        except SimulatedCrash:  # applied; only the answer was lost
            return ()
        return tuple(str(messages[int(failure["Id"])]["MessageId"]) for failure in response.get("Failed", []))

    def _record(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """One record of the event, as Lambda builds it from a received message."""
        attributes: Mapping[str, str] = message.get("Attributes", {})
        ordered = {name: attributes[name] for name in _ATTRIBUTE_ORDER if name in attributes}
        ordered.update({name: value for name, value in attributes.items() if name not in ordered})
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": ordered,
            "messageAttributes": {
                name: _lambda_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        record.update({"eventSource": "aws:sqs", "eventSourceARN": self.queue_arn, "awsRegion": self._aws.region})
        return record

    # --- CreateEventSourceMapping's checks ---------------------------------------------------------------------

    def _check_creation(self, queue_attributes: Mapping[str, str]) -> None:
        request: dict[str, Any] = {
            "FunctionName": self.function_name,
            "EventSourceArn": self.queue_arn,
            "BatchSize": self.batch_size,
            "ScalingConfig": {"MaximumConcurrency": self.maximum_concurrency},
            "FunctionResponseTypes": ["ReportBatchItemFailures"] if self.report_batch_item_failures else [],
        }
        rejection = validation.check_request("lambda", "CreateEventSourceMapping", request)
        if rejection is not None:  # Lambda (rest-json) answers its model's constraints with ValidationException
            raise _lambda_error("ValidationException", rejection.message)
        if self.batch_size > MAX_BATCH_SIZE_WITHOUT_WINDOW:
            raise _lambda_error(
                "InvalidParameterValueException",
                "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
            )
        if queue_attributes.get("FifoQueue") == "true":
            raise ValueError("FIFO queues are not modelled by localaws.intake (standard queues only)")
        visibility = int(queue_attributes["VisibilityTimeout"])
        if visibility < self.function_timeout_seconds:
            raise _lambda_error(
                "InvalidParameterValueException",
                f"Queue visibility timeout: {visibility} seconds is less than Function timeout: "
                f"{self.function_timeout_seconds} seconds",
            )


def reported_failures(response: object, ids: Sequence[str]) -> tuple[str, ...] | None:
    """The messages a ReportBatchItemFailures response names, in batch order; ``()`` for a complete success,
    ``None`` for a response Lambda counts as a complete failure (developer guide, "Handling errors for an SQS
    event source in Lambda": success and failure conditions). A response that is not a JSON object is counted as
    a failure here (the guide lists "an invalid JSON response")."""
    if response is None:
        return ()
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return ()
    if not isinstance(failures, list):
        return None
    named = [item.get("itemIdentifier") if isinstance(item, Mapping) else None for item in failures]
    if any(identifier not in ids for identifier in named):
        return None  # empty, null, missing (a bad key name) or not a message of this batch
    return tuple(i for i in ids if i in named)


def _lambda_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's event writes it: lower-camel keys, binary values base64-encoded."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [base64.b64encode(b).decode("ascii") for b in value.get("BinaryListValues", [])]
    attribute["dataType"] = value["DataType"]
    return attribute


def _lambda_error(code: str, message: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, "CreateEventSourceMapping")


def _queue_arn(sqs: Any, url: str) -> str:  # noqa: ANN401 - boto3 clients are untyped in localaws
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def _send_event(sqs: Any, queue_url: str, event: Mapping[str, Any]) -> str:  # noqa: ANN401 - as above
    message_id: str = sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))["MessageId"]
    return message_id
