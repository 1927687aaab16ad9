"""The one place that patches moto.

Two layers, both undone when the ``LocalAWS`` context exits:

* **dispatch** (always on): wraps moto's botocore stubber so that every request is logged, may be failed or
  crashed by fault injection, and is processed under one lock (moto is not thread-safe).
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
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from unittest import mock
from urllib.parse import parse_qsl

import botocore.endpoint
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient
from botocore.compat import HTTPHeaders
from botocore.retries.standard import ExponentialBackoff
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

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
        with session.lock:
            # EC2's eventual consistency is for EC2 requests: Auto Scaling's own work on instances sees them all
            session.set_in_request(service == "ec2")
            try:
                response = original(stubber, event_name, request, **kwargs)
            finally:
                session.set_in_request(False)
            at = session.clock.now()
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
        return response

    return dispatch


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
