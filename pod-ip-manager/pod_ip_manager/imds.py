"""IMDSv2 adapter: the token dance, then per-MAC network data.

Inside a pod, IMDS is two hops away: the instance's metadata options need ``HttpPutResponseHopLimit`` >= 2,
else the token PUT times out (the error says so).
"""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from pod_ip_manager.errors import MetadataError
from pod_ip_manager.model import Eni
from pod_ip_manager.retry import RetryPolicy, delays

TOKEN_TTL_SECONDS = 21600
_MACS = "meta-data/network/interfaces/macs/"
#: Between attempts after a 5xx or a connection failure: full jitter over 0.1 s, 0.2 s, ... capped at 1 s.
BACKOFF = RetryPolicy(max_attempts=3, base_seconds=0.1, max_seconds=1.0)


class _NotFound(Exception):
    pass


class Imds:
    """Reads IMDSv2 at ``endpoint`` (``http://169.254.169.254`` on EC2)."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_seconds: float,
        attempts: int = 3,
        backoff: RetryPolicy = BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._base = endpoint.rstrip("/") + "/latest/"
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._backoff = RetryPolicy(attempts, backoff.base_seconds, backoff.max_seconds)
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._token: str | None = None

    # --- the port ----------------------------------------------------------------------------------------

    def region(self) -> str:
        return self._get("meta-data/placement/region").strip()

    def enis(self) -> tuple[Eni, ...]:
        macs = [line.strip().rstrip("/") for line in self._get(_MACS).splitlines() if line.strip()]
        return tuple(self._eni(mac.lower()) for mac in macs)

    # --- reading -----------------------------------------------------------------------------------------

    def _eni(self, mac: str) -> Eni:
        base = f"{_MACS}{mac}/"
        ipv4_cidr = self._optional(base + "subnet-ipv4-cidr-block")
        try:
            return Eni(
                mac=mac,
                eni_id=self._get(base + "interface-id").strip(),
                device_number=int(self._get(base + "device-number").strip()),
                subnet_ipv4=IPv4Network(ipv4_cidr.strip()) if ipv4_cidr.strip() else None,
                subnet_ipv6=tuple(IPv6Network(line.strip()) for line in self._lines(base + "subnet-ipv6-cidr-blocks")),
                ipv4s=frozenset(IPv4Address(line.strip()) for line in self._lines(base + "local-ipv4s")),
                ipv6s=frozenset(IPv6Address(line.strip()) for line in self._lines(base + "ipv6s")),
            )
        except ValueError as error:
            raise MetadataError(f"IMDS returned malformed data for MAC {mac}: {error}") from None

    def _lines(self, path: str) -> list[str]:
        return [line for line in self._optional(path).splitlines() if line.strip()]

    def _optional(self, path: str) -> str:
        """A path that IMDS omits (404) when empty, e.g. ``ipv6s`` of an ENI without IPv6."""
        try:
            return self._get(path)
        except _NotFound:
            return ""

    def _get(self, path: str) -> str:
        try:
            return self._with_token(path)
        except _NotFound:
            raise
        except urllib.error.HTTPError as error:
            if error.code != HTTPStatus.UNAUTHORIZED:
                raise MetadataError(f"GET {path}: HTTP {error.code}") from None
        self._token = None  # 401: the token expired or IMDS restarted: one fresh token, then give up
        try:
            return self._with_token(path)
        except urllib.error.HTTPError as error:
            raise MetadataError(f"GET {path}: HTTP {error.code} even with a fresh token") from None

    def _with_token(self, path: str) -> str:
        token = self._token or self._fetch_token()
        request = urllib.request.Request(  # noqa: S310 - the endpoint is validated as http://host[:port]
            self._base + path, headers={"X-aws-ec2-metadata-token": token}
        )
        return self._send(request, path)

    def _fetch_token(self) -> str:
        request = urllib.request.Request(  # noqa: S310
            self._base + "api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        try:
            self._token = self._send(request, "api/token")
        except (_NotFound, urllib.error.HTTPError) as error:
            code = error.code if isinstance(error, urllib.error.HTTPError) else HTTPStatus.NOT_FOUND
            raise MetadataError(f"IMDSv2 token request refused: HTTP {code}") from None
        return self._token

    def _send(self, request: urllib.request.Request, path: str) -> str:
        last: Exception | None = None
        pauses = delays(self._backoff, self._rng)
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(next(pauses, 0.0))  # 5xx or unreachable: back off (jittered) before trying again
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                    body: bytes = response.read()
                    return body.decode()
            except urllib.error.HTTPError as error:
                if error.code == HTTPStatus.NOT_FOUND:
                    raise _NotFound(path) from None
                if error.code < HTTPStatus.INTERNAL_SERVER_ERROR:
                    raise
                last = error
            except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
                last = error
        raise MetadataError(
            f"cannot reach IMDS at {self._base} for {path} ({last}); inside a pod the instance needs "
            "HttpPutResponseHopLimit >= 2 (one hop more than the node)"
        )
