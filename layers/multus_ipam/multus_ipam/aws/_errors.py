"""Translate botocore failures into our errors, in one place for every adapter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from multus_ipam.errors import AwsCallFailed


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


@contextmanager
def aws_call(operation: str) -> Iterator[None]:
    """Anything the adapter did not translate itself becomes AwsCallFailed naming the operation and code.

    Throttling and transient faults have already been retried by botocore (standard mode) when they get here.
    """
    try:
        yield
    except ClientError as error:
        raise AwsCallFailed(operation, error_code(error), error_message(error)) from error
    except BotoCoreError as error:
        raise AwsCallFailed(operation, type(error).__name__, str(error)) from error
