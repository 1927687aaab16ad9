"""One validated, frozen settings object, read once at start from the environment.

Every problem names the variable and the accepted form, so a bad manifest fails at once (exit code 2) with a
message an operator can act on, before anything touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pod_ip_manager.errors import ConfigurationError

#: Linux interface names: 1-15 characters, no slash, colon or whitespace.
IFNAME = re.compile(r"^[^/:\s]{1,15}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class Mode(StrEnum):
    INIT = "init"
    SIDECAR = "sidecar"
    NODE_AGENT = "node-agent"


class EniLookup(StrEnum):
    """Where init/sidecar read the instance's ENIs: IMDS (needs the instance's hop limit at 2), or EC2 with the
    pod's own role (``DescribeNetworkInterfaces`` by MAC; no IMDS access at all)."""

    IMDS = "imds"
    EC2 = "ec2"


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


#: Every variable we read, with its accepted form (used in error messages and the README table).
VARIABLES: dict[str, str] = {
    "PIM_MODE": "init, sidecar or node-agent (the command-line argument, if given, must agree)",
    "PIM_PRIMARY_INTERFACE": "a Linux interface name; default eth0",
    "PIM_INTERFACES": "comma-separated interface names, e.g. net1,net2",
    "PIM_EXPECTED_INTERFACE_COUNT": "an integer from 1 to 32; default 1 when PIM_INTERFACES is empty",
    "PIM_WAIT_SECONDS": "seconds from 0 to 3600; default 60",
    "PIM_CONFIRM_SECONDS": "seconds from 0.1 to 600; default 30",
    "PIM_RELEASE_ON_EXIT": "true or false; default true",
    "PIM_MAX_ATTEMPTS": "an integer from 1 to 20; default 6",
    "PIM_RETRY_BASE_SECONDS": "seconds from 0.001 to 10; default 0.2",
    "PIM_RETRY_MAX_SECONDS": "seconds from 0.001 to 60, at least PIM_RETRY_BASE_SECONDS; default 5",
    "PIM_IMDS_ENDPOINT": "http://host[:port]; default http://169.254.169.254",
    "PIM_IMDS_TIMEOUT_SECONDS": "seconds from 0.1 to 30; default 2",
    "PIM_REGION": "an AWS region such as eu-west-1; default AWS_REGION, AWS_DEFAULT_REGION, then IMDS",
    "PIM_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR; default INFO",
    "PIM_FLOATING_IPS": "comma-separated IPv4/IPv6 VIPs that move between pods, never unassigned",
    "PIM_READY_FILE": "an absolute file path (on a writable emptyDir), written after the first assignment",
    "PIM_NETNS": "a named network namespace to watch instead of the current one (debugging, tests)",
    "PIM_NETNS_DIR": "node-agent: the absolute path of the directory of the pods' network namespaces; "
    "default /var/run/netns",
    "PIM_RESYNC_SECONDS": "node-agent: seconds from 1 to 86400 between full resyncs; default 120",
    "PIM_STATUS_ADDRESS": "node-agent: host:port (IPv6 as [addr]:port; port 0: any) of /healthz, /readyz, /metrics; "
    "default 0.0.0.0:9580",
    "PIM_ENI_LOOKUP": "imds or ec2 (ec2: the ENI by MAC through DescribeNetworkInterfaces, no IMDS; needs AWS_REGION)"
    "; default imds",
    "PIM_EC2_ENDPOINT": "https://host[:port]; default AWS_ENDPOINT_URL_EC2, then the region's public EC2 endpoint",
}

Seconds = Annotated[float, Field(allow_inf_nan=False)]


class Settings(BaseModel):
    """What the manager needs to know; field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_alias=True, validate_by_name=True)

    mode: Mode = Field(alias="PIM_MODE")
    primary_interface: str = Field("eth0", alias="PIM_PRIMARY_INTERFACE", pattern=IFNAME.pattern)
    interfaces: tuple[str, ...] = Field((), alias="PIM_INTERFACES")
    expected_interface_count: int | None = Field(None, alias="PIM_EXPECTED_INTERFACE_COUNT", ge=1, le=32)
    wait_seconds: Seconds = Field(60.0, alias="PIM_WAIT_SECONDS", ge=0, le=3600)
    confirm_seconds: Seconds = Field(30.0, alias="PIM_CONFIRM_SECONDS", ge=0.1, le=600)
    release_on_exit: bool = Field(True, alias="PIM_RELEASE_ON_EXIT")
    max_attempts: int = Field(6, alias="PIM_MAX_ATTEMPTS", ge=1, le=20)
    retry_base_seconds: Seconds = Field(0.2, alias="PIM_RETRY_BASE_SECONDS", ge=0.001, le=10)
    retry_max_seconds: Seconds = Field(5.0, alias="PIM_RETRY_MAX_SECONDS", ge=0.001, le=60)
    imds_endpoint: str = Field("http://169.254.169.254", alias="PIM_IMDS_ENDPOINT")
    imds_timeout_seconds: Seconds = Field(2.0, alias="PIM_IMDS_TIMEOUT_SECONDS", ge=0.1, le=30)
    region: str | None = Field(None, alias="PIM_REGION", pattern=REGION.pattern)
    log_level: LogLevel = Field(LogLevel.INFO, alias="PIM_LOG_LEVEL")
    netns: str | None = Field(None, alias="PIM_NETNS", pattern=r"^[\w.-]{1,64}$")
    ready_file: str | None = Field(None, alias="PIM_READY_FILE", pattern=r"^/.*[^/]$")
    floating_ips: tuple[IPv4Address | IPv6Address, ...] = Field((), alias="PIM_FLOATING_IPS")
    eni_lookup: EniLookup = Field(EniLookup.IMDS, alias="PIM_ENI_LOOKUP")
    ec2_endpoint: str | None = Field(None, alias="PIM_EC2_ENDPOINT")
    netns_dir: str = Field("/var/run/netns", alias="PIM_NETNS_DIR", pattern=r"^/\S*$")
    resync_seconds: Seconds = Field(120.0, alias="PIM_RESYNC_SECONDS", ge=1, le=86400)
    status_address: str = Field("0.0.0.0:9580", alias="PIM_STATUS_ADDRESS")

    @field_validator("interfaces", "floating_ips", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("interfaces")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not IFNAME.match(name):
                raise ValueError(f"{name!r} is not a Linux interface name")
        if len(set(value)) != len(value):
            raise ValueError("lists the same interface twice")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("imds_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{value!r} is not http://host[:port]")
        return value.rstrip("/")

    @field_validator("ec2_endpoint")
    @classmethod
    def _ec2_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{value!r} is not https://host[:port]")
        return value.rstrip("/")

    @field_validator("eni_lookup", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("status_address")
    @classmethod
    def _status_address(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not bare or not port.isdigit() or int(port) > 65535 or (":" in bare) != (bare != host):
            raise ValueError("is not host:port")
        return value

    @property
    def status_bind(self) -> tuple[str, int]:
        """``PIM_STATUS_ADDRESS`` as (host, port); an IPv6 host without its brackets."""
        host, _, port = self.status_address.rpartition(":")
        return host.strip("[]"), int(port)

    @model_validator(mode="after")
    def _node_agent(self) -> Self:
        if self.mode is Mode.NODE_AGENT and self.eni_lookup is EniLookup.EC2:
            raise _Cross("PIM_ENI_LOOKUP", "is ec2, but the node agent reads IMDS on the host network (unset it)")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.eni_lookup is EniLookup.EC2 and self.region is None:
            raise _Cross("PIM_ENI_LOOKUP", "is ec2, which asks IMDS nothing: set AWS_REGION (or PIM_REGION)")
        if self.primary_interface in self.interfaces:
            raise _Cross("PIM_INTERFACES", f"lists the primary interface {self.primary_interface}")
        if (
            self.interfaces
            and self.expected_interface_count is not None
            and self.expected_interface_count != len(self.interfaces)
        ):
            raise _Cross("PIM_EXPECTED_INTERFACE_COUNT", "disagrees with the number of names in PIM_INTERFACES")
        if self.retry_max_seconds < self.retry_base_seconds:
            raise _Cross("PIM_RETRY_MAX_SECONDS", "is below PIM_RETRY_BASE_SECONDS")
        return self

    @property
    def expected_count(self) -> int:
        if self.interfaces:
            return len(self.interfaces)
        return self.expected_interface_count or 1


class _Cross(ValueError):
    """A rule across variables; carries the variable to blame."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(problem)
        self.variable = variable


def load_settings(env: Mapping[str, str], mode_argument: str | None = None) -> Settings:
    """Parse the environment (and the optional ``init``/``sidecar`` argument) into ``Settings``.

    Empty values count as unset. Raises ``ConfigurationError`` naming the first bad variable.
    """
    raw: dict[str, str] = {}
    for name in VARIABLES:
        value = env.get(name, "").strip()
        if value:
            raw[name] = value
    if mode_argument is not None:
        if "PIM_MODE" in raw and raw["PIM_MODE"] != mode_argument:
            raise ConfigurationError(
                "PIM_MODE", f"is {raw['PIM_MODE']!r} but the command line says {mode_argument!r}", VARIABLES["PIM_MODE"]
            )
        raw["PIM_MODE"] = mode_argument
    sources: dict[str, str] = {}
    if "PIM_EC2_ENDPOINT" not in raw and env.get("AWS_ENDPOINT_URL_EC2", "").strip():
        raw["PIM_EC2_ENDPOINT"] = env["AWS_ENDPOINT_URL_EC2"].strip()
        sources["PIM_EC2_ENDPOINT"] = "AWS_ENDPOINT_URL_EC2"
    region_source = "PIM_REGION"
    if "PIM_REGION" not in raw:
        for fallback in ("AWS_REGION", "AWS_DEFAULT_REGION"):
            if env.get(fallback, "").strip():
                raw["PIM_REGION"] = env[fallback].strip()
                region_source = fallback
                break
    try:
        return Settings.model_validate(raw)
    except ValidationError as error:
        raise _configuration_error(error, raw, {**sources, "PIM_REGION": region_source}) from None


def _configuration_error(
    error: ValidationError, raw: Mapping[str, str], sources: Mapping[str, str]
) -> ConfigurationError:
    first = error.errors()[0]
    location = [str(part) for part in first["loc"]]
    context = first.get("ctx") or {}
    cause = context.get("error")
    if isinstance(cause, _Cross):
        return ConfigurationError(cause.variable, str(cause), VARIABLES[cause.variable])
    variable = location[0] if location and location[0] in VARIABLES else "environment"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif variable in raw:
        message = f"{raw[variable]!r}: {message}"
    accepted = VARIABLES.get(variable, "")
    variable = sources.get(variable, variable)  # the variable the value came from (AWS_REGION, say)
    return ConfigurationError(variable, message, accepted)
