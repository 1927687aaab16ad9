"""Logger and metrics set-up (Powertools), safe when several invocations share a process (the benchmark)."""

from __future__ import annotations

import threading
from enum import StrEnum

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from multus_ipam import __version__

SERVICE = "multus-ipam"
NAMESPACE = "EksMultusIpam"


def make_logger() -> Logger:
    """JSON logs; level from POWERTOOLS_LOG_LEVEL / LOG_LEVEL (Powertools reads them). Every line carries the
    code's ``version`` (the stack's Version output): which release wrote a line is never a guess."""
    logger = Logger(service=SERVICE)
    # Appended, not passed to Logger(): a second Logger of the same service reuses the first one's formatter and
    # ignores its constructor's keys. A formatter key survives thread_safe_clear_keys (each request's own keys).
    logger.append_keys(version=__version__)
    return logger


class PowertoolsMetrics:
    """Implements :class:`multus_ipam.lifecycle.Metrics` (and the reconciler's) as CloudWatch EMF metrics, one
    flush per invocation."""

    def __init__(self, mode: str, client: EphemeralMetrics | None = None) -> None:
        # EphemeralMetrics keeps its metrics to itself (Metrics shares them process-wide), so two functions'
        # engines in one process (the demo, the tests) never flush each other's counts under the wrong Mode.
        self._client = client or EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        self._mode = mode
        self._lock = threading.Lock()
        self._pending = False

    def count(self, metric: StrEnum, value: int = 1) -> None:
        with self._lock:
            self._client.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)
            self._pending = True

    def flush(self) -> None:
        """Publish what this invocation counted (a rejected event may have counted nothing)."""
        with self._lock:
            if not self._pending:
                return
            self._client.add_dimension(name="Mode", value=self._mode)
            self._client.flush_metrics(raise_on_empty_metrics=False)
            self._pending = False
