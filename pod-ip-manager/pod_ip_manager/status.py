"""The node agent's status: liveness, readiness and Prometheus metrics, served over HTTP from a thread.

* ``/healthz`` (liveness): 200 while the agent's loop has beaten within ``stale_after`` seconds (it beats at every
  turn, at least every few seconds, and between EC2 calls), else 503;
* ``/readyz`` (readiness): 200 once a full resync has succeeded, else 503;
* ``/metrics``: Prometheus text format 0.0.4.

The loop writes, the HTTP thread reads: one lock around the numbers. The clocks are injected (tests drive them).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

#: Liveness fails when the loop has not beaten for this long: the longest blocking step is one EC2 call with its
#: throttling retries (attempts x (connect + read timeouts + backoff)), well under this.
LIVENESS_STALE_SECONDS = 300.0


class Status:
    """Counters and gauges the agent updates, and the health it reports."""

    def __init__(
        self,
        *,
        stale_after: float = LIVENESS_STALE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._wall = wall
        self._stale_after = stale_after
        self._beat = clock()
        self._ready = False
        self.assignments = 0
        self.unassignments = 0
        self.errors: Counter[str] = Counter()
        self.skips: Counter[str] = Counter()
        self.skipped_now: dict[str, int] = {}
        self.namespaces = 0
        self.resyncs: Counter[str] = Counter()
        self.last_resync: float | None = None

    # --- the loop's side -----------------------------------------------------------------------------------

    def beat(self) -> None:
        with self._lock:
            self._beat = self._clock()

    def assigned(self, count: int = 1) -> None:
        with self._lock:
            self.assignments += count

    def unassigned(self, count: int = 1) -> None:
        with self._lock:
            self.unassignments += count

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] += 1

    def skipped(self, reason: str) -> None:
        with self._lock:
            self.skips[reason] += 1

    def set_skipped_now(self, by_reason: dict[str, int]) -> None:
        with self._lock:
            self.skipped_now = dict(by_reason)

    def set_namespaces(self, count: int) -> None:
        with self._lock:
            self.namespaces = count

    def resynced(self, *, ok: bool) -> None:
        with self._lock:
            self.resyncs["ok" if ok else "failed"] += 1
            if ok:
                self._ready = True
                self.last_resync = self._wall()

    # --- the probes' side ----------------------------------------------------------------------------------

    def alive(self) -> bool:
        with self._lock:
            return self._clock() - self._beat <= self._stale_after

    def ready(self) -> bool:
        with self._lock:
            return self._ready

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        with self._lock:
            lines: list[str] = []

            def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} {kind}")
                lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

            metric("pim_assignments_total", "counter", "Addresses assigned to a Multus ENI.", [("", self.assignments)])
            metric(
                "pim_unassignments_total",
                "counter",
                "Addresses unassigned from a Multus ENI (no pod carries them).",
                [("", self.unassignments)],
            )
            metric(
                "pim_errors_total",
                "counter",
                "Failures by kind (AWS error code, IMDS, netns); retried at the next resync.",
                [(f'{{kind="{kind}"}}', n) for kind, n in sorted(self.errors.items())],
            )
            metric(
                "pim_skips_total",
                "counter",
                "Times an address a pod carries was found unusable and skipped, by reason.",
                [(f'{{reason="{reason}"}}', n) for reason, n in sorted(self.skips.items())],
            )
            metric(
                "pim_skipped_addresses",
                "gauge",
                "Addresses pods carry now that the agent skips, by reason.",
                [(f'{{reason="{reason}"}}', n) for reason, n in sorted(self.skipped_now.items())],
            )
            metric("pim_namespaces_watched", "gauge", "Pod network namespaces followed.", [("", self.namespaces)])
            metric(
                "pim_resyncs_total",
                "counter",
                "Full resyncs, by result.",
                [(f'{{result="{result}"}}', n) for result, n in sorted(self.resyncs.items())],
            )
            if self.last_resync is not None:
                metric(
                    "pim_last_resync_timestamp_seconds",
                    "gauge",
                    "Unix time of the last successful full resync.",
                    [("", self.last_resync)],
                )
            metric("pim_ready", "gauge", "1 once a full resync has succeeded.", [("", 1 if self._ready else 0)])
            return "\n".join(lines) + "\n"


class StatusServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` on ``host:port`` (port 0: any free port), in a daemon thread."""

    def __init__(self, host: str, port: int, status: Status) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    alive = status.alive()
                    self._send(HTTPStatus.OK if alive else HTTPStatus.SERVICE_UNAVAILABLE, "ok\n" if alive else "")
                elif path == "/readyz":
                    ready = status.ready()
                    self._send(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE, "ok\n" if ready else "")
                elif path == "/metrics":
                    self._send(HTTPStatus.OK, status.render(), "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, "")

            def _send(self, code: HTTPStatus, body: str, kind: str = "text/plain; charset=utf-8") -> None:
                payload = body.encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return  # probes every few seconds: not worth a log line each

        family_host = host.strip("[]")
        server_class = _server_class(family_host)
        self._server = server_class((family_host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="status", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


class _Ipv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    return _Ipv6Server if ":" in host else ThreadingHTTPServer
