"""The SDK retry deadline: botocore asks its needs-retry handlers whether to retry; ours answers first.

The events are emitted here exactly as ``botocore.endpoint.Endpoint._needs_retry`` emits them, on a client with
botocore's standard retry handler registered, so the test also holds the order the handlers run in.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.hooks import first_non_none_response

from multus_ipam.aws.clients import retry_config
from multus_ipam.aws.retry_deadline import ATTEMPT_SECONDS, THROTTLE_BACKOFF_CAP, SdkRetryDeadline, retry_cost

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class StoppedClock:
    def __init__(self) -> None:
        self.at = START

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def _client() -> EC2Client:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    client: EC2Client = session.client("ec2", config=retry_config(10))
    return client


def _ask_to_retry(client: EC2Client, attempts: int, status: int = 503, code: str = "RequestLimitExceeded") -> Any:
    """What botocore does after attempt ``attempts`` of an AttachNetworkInterface: the first non-None answer of
    its needs-retry handlers (a delay in seconds: retry; None or False: do not)."""
    operation = client.meta.service_model.operation_model("AttachNetworkInterface")
    http = AWSResponse("https://ec2.us-east-1.amazonaws.com/", status, HTTPHeaders(), None)
    parsed = {"Error": {"Code": code, "Message": "Request limit exceeded."}, "ResponseMetadata": {}}
    responses = client.meta.events.emit(
        "needs-retry.ec2.AttachNetworkInterface",
        response=(http, parsed),
        endpoint=None,
        operation=operation,
        attempts=attempts,
        caught_exception=None,
        request_dict={"context": {}},
    )
    return first_non_none_response(responses)


def test_given_no_deadline_bound_when_throttled_then_botocore_retries_as_configured() -> None:
    client = _client()
    SdkRetryDeadline(StoppedClock()).install(client)

    answer = _ask_to_retry(client, attempts=1)

    assert isinstance(answer, float)
    assert 0 <= answer <= 1


def test_given_time_enough_for_another_retry_when_throttled_then_botocore_retries() -> None:
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)

    with deadline.within(START + timedelta(seconds=retry_cost(3))):
        answer = _ask_to_retry(client, attempts=3)

    assert isinstance(answer, float)


def test_given_less_time_than_another_attempt_takes_when_throttled_then_the_call_stops_retrying() -> None:
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)

    with deadline.within(START + timedelta(seconds=ATTEMPT_SECONDS - 0.5)):
        answer = _ask_to_retry(client, attempts=3)

    assert answer is False, "False stops botocore's own retry handler from answering with a delay"


def test_given_a_deadline_when_throttled_past_max_attempts_then_this_handler_keeps_retrying_until_the_deadline() -> (
    None
):
    # botocore's standard handler would stop at max_attempts (10) and take 5 retry-quota units per retry; a
    # burst's throttling is the normal case, so throttled calls are retried here, bounded by the deadline only.
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)

    with deadline.within(START + timedelta(seconds=THROTTLE_BACKOFF_CAP + ATTEMPT_SECONDS)):
        answers = [_ask_to_retry(client, attempts=n) for n in (1, 10, 50)]

    assert all(isinstance(a, float) and 0 <= a <= THROTTLE_BACKOFF_CAP for a in answers)
    assert deadline.throttled_retries == 3


def test_given_a_deadline_when_aws_answers_a_5xx_then_botocore_decides() -> None:
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)

    with deadline.within(START + timedelta(seconds=retry_cost(1))):
        answer = _ask_to_retry(client, attempts=1, status=500, code="InternalError")

    assert isinstance(answer, float), "botocore's standard handler drew the delay"
    assert answer <= 0.05, "a non-throttling error gets botocore's 50 ms scale, not ours"
    assert deadline.throttled_retries == 0


def test_given_a_successful_attempt_near_the_deadline_then_the_handler_leaves_it_to_botocore() -> None:
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)

    with deadline.within(START):
        answer = _ask_to_retry(client, attempts=1, status=200, code="")

    assert answer is None


def test_given_a_deadline_bound_in_another_thread_when_throttled_here_then_this_thread_still_retries() -> None:
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)
    bound, asked = threading.Event(), threading.Event()

    def other_invocation() -> None:
        with deadline.within(START):  # no time left over there
            bound.set()
            asked.wait(timeout=5)

    other = threading.Thread(target=other_invocation)
    other.start()
    bound.wait(timeout=5)
    try:
        answer = _ask_to_retry(client, attempts=1)
    finally:
        asked.set()
        other.join()

    assert isinstance(answer, float)


def test_given_a_phase_when_it_ends_then_the_previous_deadline_is_back() -> None:
    clock = StoppedClock()
    deadline = SdkRetryDeadline(clock)

    with deadline.within(START + timedelta(seconds=100)):
        with deadline.within(START + timedelta(seconds=10)):
            assert deadline.seconds_left() == pytest.approx(10)
        assert deadline.seconds_left() == pytest.approx(100)
    assert deadline.seconds_left() is None


def test_given_installed_twice_on_one_client_then_it_answers_once() -> None:
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)
    deadline.install(client)

    with deadline.within(START):
        operation = client.meta.service_model.operation_model("AttachNetworkInterface")
        http = AWSResponse("https://ec2.us-east-1.amazonaws.com/", 503, HTTPHeaders(), None)
        responses = client.meta.events.emit(
            "needs-retry.ec2.AttachNetworkInterface",
            response=(http, {"Error": {"Code": "RequestLimitExceeded"}, "ResponseMetadata": {}}),
            endpoint=None,
            operation=operation,
            attempts=1,
            caught_exception=None,
            request_dict={"context": {}},
        )

    assert [answer for _, answer in responses if answer is False] == [False]


def test_given_attempts_when_costing_another_retry_then_backoff_is_capped_at_20s_plus_one_attempt() -> None:
    assert retry_cost(1) == 3
    assert retry_cost(4) == 10
    assert retry_cost(9) == 22


def test_given_many_throttled_retries_when_aws_then_answers_a_5xx_then_the_sdk_still_retries_it() -> None:
    # botocore runs every needs-retry handler (the first answer wins); if its standard handler still saw the
    # throttled retries it would take 5 quota units each (500 per client) and, once spent, retry nothing more.
    client, clock = _client(), StoppedClock()
    deadline = SdkRetryDeadline(clock)
    deadline.install(client)

    with deadline.within(START + timedelta(seconds=60)):
        throttled = [_ask_to_retry(client, attempts=1 + n % 5) for n in range(150)]
        answer = _ask_to_retry(client, attempts=1, status=500, code="InternalError")

    assert all(isinstance(a, float) for a in throttled)
    assert isinstance(answer, float), "the standard handler's retry quota was not spent on throttling"
