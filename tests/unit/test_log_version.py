"""Every log line of the functions says which version wrote it (``version``, the stack's Version output)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger

import multus_ipam
from multus_ipam.aws.clients import Clients, retry_config
from multus_ipam.observability import make_logger
from multus_ipam.runtime import Mode, Runtime, build_runtime, handle_event

ENV = {
    "AUTOSCALING_GROUP_NAME": "multus-workers",
    "MULTUS_SUBNET_IDS": "subnet-0123456789abcdef0",
    "MULTUS_SECURITY_GROUP_IDS": "sg-0123456789abcdef0",
    "LIFECYCLE_HOOK_NAMES": "multus-launch,multus-terminate",
}


@dataclass
class Context:
    aws_request_id: str = "11111111-1111-1111-1111-111111111111"

    def get_remaining_time_in_millis(self) -> int:
        return 120_000


class Lines(logging.Handler):
    """The JSON lines a Powertools logger writes, formatted as it emits them."""

    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def runtime() -> Runtime:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    clients = Clients(
        ec2=session.client("ec2", config=retry_config(1)),
        autoscaling=session.client("autoscaling", config=retry_config(1)),
    )
    return build_runtime(Mode.STATIC, ENV, clients=clients)


@pytest.fixture
def lines(runtime: Runtime) -> Iterator[Lines]:
    handler = Lines(runtime.logger)
    logger = logging.getLogger(runtime.logger.service)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_given_the_functions_logger_when_a_request_clears_its_keys_then_its_lines_still_carry_the_version() -> None:
    logger = make_logger()
    handler = Lines(logger)
    logging.getLogger(logger.service).addHandler(handler)
    try:
        logger.thread_safe_clear_keys()  # what each request does before binding its own keys
        logger.thread_safe_append_keys(request_id="r-1")
        logger.info("a line")
    finally:
        logging.getLogger(logger.service).removeHandler(handler)

    (line,) = handler.lines
    assert line["version"] == multus_ipam.__version__
    assert line["request_id"] == "r-1"


def test_given_a_second_logger_of_the_service_then_its_lines_carry_the_version_too() -> None:
    # Powertools gives a second Logger of one service the first one's formatter, constructor keys ignored.
    make_logger()
    assert make_logger().get_current_keys()["version"] == multus_ipam.__version__


def test_given_an_event_the_function_rejects_when_it_logs_then_the_line_names_the_version(
    runtime: Runtime, lines: Lines
) -> None:
    outcome = handle_event(runtime, {"detail-type": "nonsense"}, Context())

    assert outcome["status"] == "rejected"
    assert lines.lines, "the rejection is logged"
    assert all(line["version"] == multus_ipam.__version__ for line in lines.lines), lines.lines
