"""IMDSv2 adapter: the token dance, then per-MAC network data.

Inside a pod, IMDS is two hops away: the instance's metadata options need ``HttpPutResponseHopLimit`` >= 2,
else the token PUT times out. Every failure says what happened: no answer (timeout; for the token request from a
pod, the hop limit), nothing listening (connection refused), IMDS failing (5xx after the retries), or IMDS
refusing (400/401/403/404, each with what it means).
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
        self._endpoint = endpoint.rstrip("/")
        self._base = self._endpoint + "/latest/"
        self._timeout = timeout_seconds
        self._attempts = attempts
        self._backoff = RetryPolicy(attempts, backoff.base_seconds, backoff.max_seconds)
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._token: str | None = None

    # --- the port ----------------------------------------------------------------------------------------

    def instance_id(self) -> str:
        return self._get("meta-data/instance-id").strip()

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
            return self._read(path)
        except _NotFound:
            return ""

    def _get(self, path: str) -> str:
        """A path that must exist: a 404 is an error naming it (not a crash)."""
        try:
            return self._read(path)
        except _NotFound:
            raise MetadataError(
                f"GET {path}: HTTP 404 Not Found: IMDS has no such entry for this instance (an ENI detached while "
                "it was being read?)"
            ) from None

    def _read(self, path: str) -> str:
        try:
            return self._with_token(path)
        except urllib.error.HTTPError as error:
            if error.code != HTTPStatus.UNAUTHORIZED:
                raise MetadataError(_refused(f"GET {path}", error.code)) from None
        self._token = None  # 401: the token expired or IMDS restarted: one fresh token, then give up
        try:
            return self._with_token(path)
        except urllib.error.HTTPError as error:
            if error.code == HTTPStatus.UNAUTHORIZED:
                raise MetadataError(
                    f"GET {path}: HTTP 401 Unauthorized even with a fresh token: IMDS keeps rejecting the session "
                    "tokens it has just issued"
                ) from None
            raise MetadataError(_refused(f"GET {path}", error.code)) from None

    def _with_token(self, path: str) -> str:
        token = self._token or self._fetch_token()
        request = urllib.request.Request(  # noqa: S310 - the endpoint is validated as http://host[:port]
            self._base + path, headers={"X-aws-ec2-metadata-token": token}
        )
        return self._send(request, f"GET {path}")

    def _fetch_token(self) -> str:
        request = urllib.request.Request(  # noqa: S310
            self._base + "api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        what = "IMDSv2 token request (PUT api/token)"
        try:
            self._token = self._send(request, what)
        except _NotFound:
            raise MetadataError(_refused(what, HTTPStatus.NOT_FOUND)) from None
        except urllib.error.HTTPError as error:
            raise MetadataError(_refused(what, error.code)) from None
        return self._token

    def _send(self, request: urllib.request.Request, what: str) -> str:
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
                    raise _NotFound(what) from None
                if error.code < HTTPStatus.INTERNAL_SERVER_ERROR:
                    raise
                last = error
            except (urllib.error.URLError, OSError) as error:
                last = error
        raise MetadataError(self._failed(what, last, token=request.get_method() == "PUT"))

    def _failed(self, what: str, last: Exception | None, *, token: bool) -> str:
        """What went wrong on every attempt, told apart: IMDS failing (5xx), no answer (timeout), nothing
        listening (refused), or no way there."""
        tries = f"{self._attempts} attempt(s)"
        if isinstance(last, urllib.error.HTTPError):
            return (
                f"{what}: IMDS answered HTTP {last.code} {_phrase(last.code)} to each of {tries}: the metadata "
                "service itself is failing (not a hop-limit, network or permission problem)"
            )
        reason = last.reason if isinstance(last, urllib.error.URLError) else last
        if isinstance(reason, TimeoutError):
            hint = (
                " From a pod that is what the instance's HttpPutResponseHopLimit of 1 does (the token's answer is "
                "dropped one hop short of the pod): set PIM_ENI_LOOKUP=ec2, which needs no IMDS, or give the nodes "
                "a hop limit of 2 (the stack's ImdsHopLimit)"
                if token
                else " (IMDS answered the token request, so this is no hop-limit problem: is it overloaded?)"
            )
            return (
                f"{what}: no answer from IMDS at {self._endpoint} within {self._timeout:g}s, {tries} (timeout).{hint}"
            )
        if isinstance(reason, ConnectionRefusedError):
            return (
                f"{what}: connection to {self._endpoint} refused: nothing listens there (a wrong "
                "PIM_IMDS_ENDPOINT, or not on EC2)"
            )
        return (
            f"{what}: cannot connect to IMDS at {self._endpoint}: {reason} ({tries}; a NetworkPolicy or firewall "
            "rule blocking 169.254.169.254?)"
        )


#: What IMDS means by the 4xx answers it gives (EC2 user guide, instance metadata "Error codes").
_MEANINGS: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "IMDS found the request malformed (a bug here: please report it)",
    HTTPStatus.UNAUTHORIZED: "the session token was rejected",
    HTTPStatus.FORBIDDEN: (
        "IMDS refuses it: the metadata service is turned off for this instance (HttpEndpoint=disabled), or the "
        "request is not allowed (a token request that came through a proxy, with X-Forwarded-For)"
    ),
    HTTPStatus.NOT_FOUND: "no such path (is this endpoint IMDS?)",
    HTTPStatus.METHOD_NOT_ALLOWED: "method not allowed (is this endpoint IMDS?)",
}


def _phrase(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _refused(what: str, code: int) -> str:
    meaning = _MEANINGS.get(code, "")
    return f"{what}: HTTP {code} {_phrase(code)}" + (f": {meaning}" if meaning else "")
