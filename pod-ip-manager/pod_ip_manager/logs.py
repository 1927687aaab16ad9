"""Structured logs: one JSON object per line on stdout, with stable keys."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Protocol

_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class Writable(Protocol):
    """Where log lines go (stdout, or a test's buffer)."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra keys}``; values that are not JSON become strings."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, sort_keys=False)


def configure(level: str, stream: Writable | None = None) -> logging.Handler:
    """Send the package's logs to ``stream`` (stdout by default) as JSON lines. Returns the handler so a caller
    that runs the manager in-process (tests) can remove it."""
    handler: logging.Handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("pod_ip_manager")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


def unconfigure(handler: logging.Handler) -> None:
    logger = logging.getLogger("pod_ip_manager")
    logger.removeHandler(handler)
    logger.propagate = True
