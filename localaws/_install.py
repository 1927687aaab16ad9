"""The one place that patches moto.

Two layers, both undone when the ``LocalAWS`` context exits:

* **dispatch** (always on): wraps moto's botocore stubber so that every request is logged, may be failed or
  crashed by fault injection, and is processed under one lock (moto is not thread-safe). Also always on, because
  they make the local AWS's own time hold everywhere: moto's SQS reads the local AWS clock (visibility timeouts,
  delays, retention, ``SentTimestamp``, ``ApproximateFirstReceiveTimestamp``); a long poll (``WaitTimeSeconds``
  > 0) waits on that clock instead of spinning in wall time; and a Lambda invocation that the local AWS runs
  with a deadline (``invocation_deadline``, used by ``localaws.intake``) cannot reach AWS once it has passed it.
* **extensions** (on unless ``extensions=False`` / ``LOCALAWS_PLAIN_MOTO=1``): the AWS behaviours moto lacks.
  An extension is a function ``(Session) -> Iterable[Patch]`` registered with ``@extension("name")`` in a
  module listed in ``EXTENSION_MODULES``. A ``Patch`` replaces one attribute (usually a moto response-class
  action method such as ``EC2Response.create_network_interface``, or a model method); its ``build`` receives
  the original so the replacement can delegate to moto.

To add behaviour (say ``localaws/ec2_secondary_ips.py`` for Assign/UnassignPrivateIpAddresses): write the
module with an ``@extension`` function, add its dotted name to ``EXTENSION_MODULES``, and reproduce AWS's error
codes by raising ``moto.ec2.exceptions.EC2ClientError(code, message)`` (or moto's Auto Scaling
``ValidationError``). ``localaws.addresses`` has the subnet address rules to reuse.
"""

# ruff: noqa: ANN401 - moto models and response objects are untyped; they are `Any` here by necessity.

from __future__ import annotations

import importlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import parse_qsl

import botocore.endpoint
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.sqs import models as sqs_models

from localaws import validation
from localaws.calls import CRASH, OK, normalise_service
from localaws.faults import Injected, SimulatedCrash

#: Modules whose ``@extension`` functions are installed. Add yours here.
EXTENSION_MODULES: tuple[str, ...] = (
    "localaws.ec2",
    "localaws.ec2_secondary_ips",
    "localaws.autoscaling",
    "localaws.consistency",
    "localaws.vpc_cni",
    "localaws.sqs",
)


@dataclass(frozen=True)
class Patch:
    """Replace ``target.attribute`` while active. ``build(original)`` returns the replacement (``original`` is
    ``None`` when moto lacks the attribute, e.g. an action moto does not implement)."""

    target: Any
    attribute: str
    build: Callable[[Any], Any]


if TYPE_CHECKING:
    from localaws._session import Session

Extension = Callable[["Session"], Iterable[Patch]]

_EXTENSIONS: dict[str, Extension] = {}


def extension(name: str) -> Callable[[Extension], Extension]:
    """Register an extension under a unique name."""

    def register(fn: Extension) -> Extension:
        existing = _EXTENSIONS.get(name)
        if existing is not None and existing.__qualname__ != fn.__qualname__:
            raise ValueError(f"extension {name!r} is already registered by {existing.__module__}")
        _EXTENSIONS[name] = fn
        return fn

    return register


def registered_extensions() -> Mapping[str, Extension]:
    for module in EXTENSION_MODULES:
        importlib.import_module(module)
    return dict(_EXTENSIONS)


@contextmanager
def installed(session: Session, *, extensions: bool, skip_retry_delays: bool) -> Iterator[None]:
    """Apply the dispatch layer (and the extensions) for the duration of the context."""
    with ExitStack() as stack:
        for patch in _infrastructure(session, skip_retry_delays=skip_retry_delays):
            _apply(stack, patch)
        if extensions:
            for build in registered_extensions().values():
                for patch in build(session):
                    _apply(stack, patch)
        yield


def _apply(stack: ExitStack, patch: Patch) -> None:
    original = patch.target.__dict__.get(patch.attribute) if isinstance(patch.target, type) else None
    if original is None:
        original = getattr(patch.target, patch.attribute, None)
    stack.enter_context(
        mock.patch.object(patch.target, patch.attribute, patch.build(original), create=original is None)
    )


# --- dispatch layer -------------------------------------------------------------------------------------------


def _infrastructure(session: Session, *, skip_retry_delays: bool) -> Iterable[Patch]:
    yield Patch(BaseClient, "_make_api_call", lambda original: _remember_call(session, original))
    yield Patch(BotocoreStubber, "__call__", lambda original: _dispatcher(session, original))
    yield Patch(sqs_models, "unix_time", lambda original: _clock_seconds(session, original))
    yield Patch(sqs_models, "unix_time_millis", lambda original: _clock_millis(session, original))
    yield Patch(sqs_models.SQSBackend, "receive_message", lambda original: _long_poll_on_clock(session, original))
    if session.realism.retry_delays:
        yield Patch(ExponentialBackoff, "delay_amount", lambda original: _seeded_delay(session, original))
        yield Patch(botocore.endpoint, "time", lambda original: _EndpointTime(session, original))
    elif skip_retry_delays:
        yield Patch(ExponentialBackoff, "delay_amount", lambda original: _no_delay(session, original))


def _remember_call(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    """Keep the call's parameters as the caller passed them (before serialisation) for the dispatch layer:
    validation and throttling read them, not the wire form."""

    def make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        previous = session.current_call()
        session.set_current_call((client.meta.service_model.service_name, operation_name, api_params))
        try:
            return original(client, operation_name, api_params)
        finally:
            session.set_current_call(previous)

    return make_api_call


def _no_delay(session: Session, original: Callable[..., float]) -> Callable[..., float]:
    """botocore's standard-mode backoff, computed and recorded but not slept (tests stay fast)."""

    def delay_amount(backoff: Any, context: Any) -> float:
        session.skipped_retry_delays.append(original(backoff, context))
        return 0.0

    return delay_amount


def _seeded_delay(session: Session, original: Callable[..., float]) -> Callable[..., float]:
    """botocore's standard-mode backoff with its jitter drawn from the seed: the same seed, the same run."""

    def delay_amount(backoff: Any, context: Any) -> float:
        backoff._random = session.realism_rng.random
        return original(backoff, context)

    return delay_amount


class _EndpointTime:
    """``botocore.endpoint``'s ``time`` module, whose ``sleep`` (the wait before a retry botocore actually makes,
    once every needs-retry handler has answered) waits on the local AWS clock instead."""

    def __init__(self, session: Session, original: Any) -> None:
        self._session = session
        self._original = original

    def sleep(self, seconds: float) -> None:
        self._session.skipped_retry_delays.append(seconds)
        self._session.clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _dispatcher(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    realism = session.realism

    def dispatch(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        if not stubber.enabled:
            return None
        _, service_id, operation = event_name.split(".", 2)
        service = normalise_service(service_id)
        params = _request_params(request)
        current = session.current_call()
        structured = current[2] if current is not None and current[1] == operation else None

        def refuse(code: str, status: int, message: str) -> Any:
            session.calls.record(
                service=service, operation=operation, params=params, outcome=code, status=status, at=session.clock.now()
            )
            return _error_response(request, service, Injected(kind="error", code=code, status=status, message=message))

        if realism.validation and current is not None and structured is not None:
            rejection = validation.check_request(current[0], operation, structured)
            if rejection is not None:
                return refuse(rejection.code, rejection.status, rejection.message)
        latency = session.realism_rng.uniform(*realism.latency) if realism.latency else 0.0
        session.clock.sleep(latency / 2)  # the request on its way
        _stop_past_deadline(session, service, operation)  # Lambda ended the invocation: the request never left
        if session.buckets is not None:
            refusal = session.buckets.take(service, operation, structured, session.clock.now())
            if refusal is not None:
                response = refuse(refusal.code, refusal.status, refusal.message)
                session.clock.sleep(latency / 2)
                return response
        injected = session.faults.take(service, operation, "error")
        if injected is not None:
            session.calls.record(
                service=service,
                operation=operation,
                params=params,
                outcome=injected.code,
                status=injected.status,
                at=session.clock.now(),
            )
            return _error_response(request, service, injected)
        with _waiting_request(session) as wait:
            while True:
                with session.lock:
                    # EC2's eventual consistency is for EC2 requests: Auto Scaling's own work on instances sees
                    # them all
                    session.set_in_request(service == "ec2")
                    try:
                        response = original(stubber, event_name, request, **kwargs)
                    finally:
                        session.set_in_request(False)
                    at = session.clock.now()
                if not wait.again:
                    break
                # a long poll that found nothing yet: ask again a little later on the clock, outside the lock
                wait.again = False
                session.clock.sleep(wait.step(at))
        if response is None:  # not an AWS endpoint moto serves: let botocore go on
            return None
        status = int(response.status_code)
        outcome = OK if status < 400 else _error_code(response.content)
        crash = status < 400 and session.faults.take(service, operation, "crash") is not None
        session.calls.record(
            service=service,
            operation=operation,
            params=params,
            outcome=CRASH if crash else outcome,
            status=status,
            at=at,
        )
        if crash:
            raise SimulatedCrash(service, operation)
        session.clock.sleep(latency / 2)  # the answer on its way back
        _stop_past_deadline(session, service, operation)  # applied, but the invocation ended before the answer
        return response

    return dispatch


# --- SQS on the local AWS clock ---------------------------------------------------------------------------------

#: A long poll that finds nothing asks again after at most this many seconds of local AWS time: it returns within
#: this long of a message becoming available (AWS: as soon as one is), never sooner.
LONG_POLL_STEP_SECONDS = 0.1


def _clock_seconds(session: Session, original: Callable[..., float]) -> Callable[..., float]:
    """moto's ``unix_time`` as moto.sqs.models sees it: the local AWS clock's, unless given a moment."""

    def unix_time(dt: datetime | None = None) -> float:
        return original(dt) if dt is not None else session.clock.now().timestamp()

    return unix_time


def _clock_millis(session: Session, original: Callable[..., float]) -> Callable[..., float]:
    def unix_time_millis(dt: datetime | None = None) -> float:
        return original(dt) if dt is not None else session.clock.now().timestamp() * 1000.0

    return unix_time_millis


@dataclass
class _Wait:
    """One request's wait on the clock: a long poll's end (set by its first attempt) and whether the model asked
    for another attempt."""

    until: datetime | None = None
    again: bool = False

    def step(self, now: datetime) -> float:
        left = (self.until - now).total_seconds() if self.until is not None else 0.0
        return max(min(LONG_POLL_STEP_SECONDS, left), 0.0)


class _Waits(dict[int, _Wait]):
    """Thread ident -> the wait of the request that thread is making."""


@contextmanager
def _waiting_request(session: Session) -> Iterator[_Wait]:
    waits = session.state("dispatch.waits", _Waits)
    ident = threading.get_ident()
    wait = waits[ident] = _Wait()
    try:
        yield wait
    finally:
        waits.pop(ident, None)


def _long_poll_on_clock(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    """moto's ReceiveMessage never waits itself (it would spin in wall time while the clock stands still, under
    the request lock): an empty long poll asks the dispatcher to try again later on the clock, until its
    ``WaitTimeSeconds`` (or the queue's ``ReceiveMessageWaitTimeSeconds``) have passed."""

    def receive_message(
        backend: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kwargs: Any
    ) -> Any:
        messages = original(backend, queue_name, count, 0, *args, **kwargs)
        wait = session.state("dispatch.waits", _Waits).get(threading.get_ident())
        if messages or not wait_seconds_timeout or wait is None:
            return messages
        now = session.clock.now()
        if wait.until is None:
            wait.until = now + timedelta(seconds=int(wait_seconds_timeout))
        wait.again = now < wait.until
        return messages

    return receive_message


# --- Lambda's timeout -------------------------------------------------------------------------------------------


class InvocationTimedOut(BaseException):
    """Lambda ended the invocation at its timeout: an AWS call it makes afterwards never reaches AWS (or its
    answer never reaches the function).

    A ``BaseException``, as ``SimulatedCrash``: the code under test's ``except Exception`` does not catch it,
    just as nothing runs in an invocation Lambda has stopped."""

    def __init__(self, service: str, operation: str, deadline: datetime) -> None:
        super().__init__(f"{service}:{operation} after the invocation's deadline {deadline.isoformat()}")
        self.service = service
        self.operation = operation
        self.deadline = deadline


class _Deadlines(dict[int, datetime]):
    """Thread ident -> the deadline of the Lambda invocation running on that thread."""


@contextmanager
def invocation_deadline(session: Session, deadline: datetime) -> Iterator[None]:
    """While inside, this thread runs a Lambda invocation that ends at ``deadline`` on the local AWS clock."""
    deadlines = session.state("dispatch.deadlines", _Deadlines)
    ident = threading.get_ident()
    deadlines[ident] = deadline
    try:
        yield
    finally:
        deadlines.pop(ident, None)


def _stop_past_deadline(session: Session, service: str, operation: str) -> None:
    deadline = session.state("dispatch.deadlines", _Deadlines).get(threading.get_ident())
    if deadline is not None and session.clock.now() >= deadline:
        raise InvocationTimedOut(service, operation, deadline)


def _request_params(request: Any) -> dict[str, str]:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not body or not isinstance(body, str):
        return {}
    if body.lstrip().startswith("{"):
        try:
            decoded = json.loads(body)
        except ValueError:
            return {}
        return {str(k): json.dumps(v) if not isinstance(v, str) else v for k, v in decoded.items()}
    return {k: v for k, v in parse_qsl(body, keep_blank_values=True) if k not in ("Action", "Version")}


def _error_code(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    start = text.find("<Code>")
    if start >= 0:
        return text[start + len("<Code>") : text.find("</Code>", start)]
    try:
        decoded = json.loads(text)
    except ValueError:
        return "UnknownError"
    code = decoded.get("__type", "UnknownError") if isinstance(decoded, dict) else "UnknownError"
    return str(code).rsplit("#", 1)[-1]


def _error_response(request: Any, service: str, injected: Injected) -> Any:
    """An error response in the service's wire protocol, so botocore parses it into a real ``ClientError``."""
    request_id = str(uuid.uuid4())
    content_type = request.headers.get("Content-Type", b"")
    if isinstance(content_type, bytes):
        content_type = content_type.decode()
    if service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{injected.code}</Code><Message>{injected.message}</Message>"
            f"</Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        headers = {"Content-Type": "text/xml"}
    elif "x-www-form-urlencoded" in content_type:
        kind = "Receiver" if injected.status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{injected.code}</Code>"
            f"<Message>{injected.message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        headers = {"Content-Type": "text/xml"}
    else:
        body = json.dumps({"__type": injected.code, "message": injected.message})
        headers = {"Content-Type": "application/x-amz-json-1.1"}
    headers["x-amzn-RequestId"] = request_id
    wire_headers = HTTPHeaders()
    for name, value in headers.items():
        wire_headers[name] = value
    return AWSResponse(request.url, injected.status, wire_headers, MockRawResponse(body))
