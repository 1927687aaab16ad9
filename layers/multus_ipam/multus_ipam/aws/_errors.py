"""Translate botocore failures into our errors, in one place for every adapter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

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
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        raise AwsCallFailed(
            operation, error_code(error), error_message(error), status=status if isinstance(status, int) else None
        ) from error
    except BotoCoreError as error:
        # Connection errors and read timeouts got no answer from AWS: a later attempt may. Anything else
        # (parameter validation, say) is ours to fix.
        no_answer = isinstance(error, (BotoConnectionError, HTTPClientError))
        raise AwsCallFailed(operation, type(error).__name__, str(error), no_answer=no_answer) from error
