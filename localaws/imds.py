"""A local IMDSv2 for tests: an HTTP server on 127.0.0.1 (ephemeral port) answering for one emulated instance.

It serves the token dance (``PUT /latest/api/token`` with a TTL header, then ``X-aws-ec2-metadata-token`` on
every GET; 400/401 otherwise, as IMDSv2 with ``HttpTokens=required``) and the per-MAC network data, read live
from the local AWS's ENIs: after an ``AssignPrivateIpAddresses``, ``local-ipv4s`` of that ENI's MAC shows it.

    with LocalAWS() as aws, LocalImds(aws, instance_id) as imds:
        env["PIM_IMDS_ENDPOINT"] = imds.endpoint

``fail(status, times)`` answers the next ``times`` metadata GETs with ``status`` (401: token rejected, 5xx);
``fail_tokens(status, times)`` the next token requests (403: IMDS turned off, 5xx).
``stale()`` freezes the address lists as they are (EC2 remaps asynchronously and IMDS shows it late);
``requests`` records what was asked.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING

from moto.ec2.models import ec2_backends

from localaws import addresses

if TYPE_CHECKING:
    from localaws import LocalAWS

MAX_TOKEN_TTL = 21600
_MACS = "meta-data/network/interfaces/macs/"


@dataclass(frozen=True)
class ImdsRequest:
    method: str
    path: str
    status: int


class LocalImds:
    def __init__(self, aws: LocalAWS, instance_id: str) -> None:
        self._aws = aws
        self.instance_id = instance_id
        self._tokens: set[str] = set()
        self._frozen: dict[str, dict[str, str]] | None = None
        self._failures: list[int] = []
        self._token_failures: list[int] = []
        self._lock = threading.Lock()
        self.requests: list[ImdsRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------------------

    def __enter__(self) -> LocalImds:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                imds._answer(self, "PUT")

            def do_GET(self) -> None:
                imds._answer(self, "GET")

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-imds", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "LocalImds is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` metadata GETs (not token requests) with ``status``."""
        with self._lock:
            self._failures.extend([status] * times)

    def fail_tokens(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` token requests (``PUT /latest/api/token``) with ``status``."""
        with self._lock:
            self._token_failures.extend([status] * times)

    @contextmanager
    def stale(self) -> Iterator[None]:
        """Serve the address lists as they are now until the block ends (IMDS lagging behind EC2)."""
        snapshot = {mac: dict(values) for mac, values in self._network().items()}
        with self._lock:
            self._frozen = snapshot
        try:
            yield
        finally:
            with self._lock:
                self._frozen = None

    # --- HTTP ------------------------------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        status, body = self._route(handler, method, path)
        with self._lock:
            self.requests.append(ImdsRequest(method, path, status))
        payload = body.encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _route(self, handler: BaseHTTPRequestHandler, method: str, path: str) -> tuple[int, str]:
        if path == "/latest/api/token":
            return self._token(handler) if method == "PUT" else (HTTPStatus.METHOD_NOT_ALLOWED, "")
        if method != "GET":
            return HTTPStatus.METHOD_NOT_ALLOWED, ""
        with self._lock:
            authorised = handler.headers.get("X-aws-ec2-metadata-token", "") in self._tokens
        if not authorised:
            return HTTPStatus.UNAUTHORIZED, ""
        with self._lock:
            injected = self._failures.pop(0) if self._failures else None
        if injected is not None:
            return injected, ""
        value = self._lookup(path.removeprefix("/latest/")) if path.startswith("/latest/") else None
        return (HTTPStatus.NOT_FOUND, "") if value is None else (HTTPStatus.OK, value)

    def _token(self, handler: BaseHTTPRequestHandler) -> tuple[int, str]:
        with self._lock:
            injected = self._token_failures.pop(0) if self._token_failures else None
        if injected is not None:
            return injected, ""
        if handler.headers.get("X-Forwarded-For"):  # IMDSv2 refuses token requests that went through a proxy
            return HTTPStatus.FORBIDDEN, ""
        ttl = handler.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= MAX_TOKEN_TTL:
            return HTTPStatus.BAD_REQUEST, ""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens.add(token)
        return HTTPStatus.OK, token

    def _lookup(self, path: str) -> str | None:
        network = self._network()
        primary = next((v for v in network.values() if v["device-number"] == "0"), {})
        fixed = {
            "meta-data/instance-id": self.instance_id,
            "meta-data/placement/region": self._aws.region,
            "meta-data/placement/availability-zone": primary.get("_az"),
            "meta-data/mac": primary.get("mac"),
            _MACS: "".join(f"{mac}/\n" for mac in network),
        }
        if path in fixed:
            return fixed[path]
        mac, _, key = path.removeprefix(_MACS).partition("/")
        values = network.get(mac) if path.startswith(_MACS) else None
        if values is None:
            return None
        if key == "":
            return "\n".join(k for k, v in values.items() if not k.startswith("_") and v)
        return values.get(key) or None  # IMDS omits empty keys (an ENI without IPv6: 404 for ipv6s)

    # --- data from the local AWS -----------------------------------------------------------------------------

    def _network(self) -> dict[str, dict[str, str]]:
        session = self._aws._session  # the lock that serialises moto (localaws._session)
        with session.lock:
            backend = ec2_backends[self._aws.account_id][self._aws.region]
            instance = backend.get_instance(self.instance_id)
            enis = sorted(instance.nics.items())
            live: dict[str, dict[str, str]] = {}
            for device_index, eni in enis:
                subnet = eni.subnet
                ipv4 = addresses.ipv4_network(subnet)
                live[eni.mac_address.lower()] = {
                    "device-number": str(device_index),
                    "interface-id": eni.id,
                    "mac": eni.mac_address.lower(),
                    "local-ipv4s": "\n".join(i["PrivateIpAddress"] for i in eni.private_ip_addresses),
                    "ipv6s": "\n".join(str(ipaddress.ip_address(a)) for a in eni.ipv6_addresses),
                    "subnet-id": subnet.id,
                    "vpc-id": subnet.vpc_id,
                    "subnet-ipv4-cidr-block": str(ipv4) if ipv4 else "",
                    "subnet-ipv6-cidr-blocks": "\n".join(str(n) for n in addresses.ipv6_networks(subnet)),
                    "_az": subnet.availability_zone,
                }
        with self._lock:
            frozen = self._frozen
        if frozen is not None:
            for mac, values in live.items():
                if mac in frozen:
                    values["local-ipv4s"] = frozen[mac]["local-ipv4s"]
                    values["ipv6s"] = frozen[mac]["ipv6s"]
        return live
