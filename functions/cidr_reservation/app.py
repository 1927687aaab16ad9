"""Lambda entry point (wired in the next step of the project)."""

from typing import Any


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    raise NotImplementedError("lifecycle handling lands with the lifecycle engine")
