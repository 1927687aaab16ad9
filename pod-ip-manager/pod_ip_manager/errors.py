"""Our error types. Each carries the exit code the process ends with, so an operator can tell failures apart
(``kubectl describe pod`` shows the code of the last termination)."""

from __future__ import annotations

from collections.abc import Sequence


class PodIpManagerError(Exception):
    """Base of every failure we report deliberately. ``exit_code`` is the process exit status."""

    exit_code = 1


class ConfigurationError(PodIpManagerError):
    """An environment variable (or the mode argument) is missing or malformed."""

    exit_code = 2

    def __init__(self, variable: str, problem: str, accepted: str = "") -> None:
        self.variable = variable
        self.problem = problem
        self.accepted = accepted
        hint = f" (accepted: {accepted})" if accepted else ""
        super().__init__(f"{variable}: {problem}{hint}")


class InterfacesMissing(PodIpManagerError):
    """Multus did not attach the expected interfaces (with a usable address) within the wait bound."""

    exit_code = 3

    def __init__(self, missing: Sequence[str], waited_seconds: float) -> None:
        self.missing = tuple(missing)
        self.waited_seconds = waited_seconds
        super().__init__(f"after waiting {waited_seconds:g}s still missing: {'; '.join(self.missing)}")


class UnroutableAddress(PodIpManagerError):
    """A pod address cannot be mapped to exactly one secondary ENI of this instance."""

    exit_code = 4

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


class AwsError(PodIpManagerError):
    """EC2 refused a call (after the throttling retries, if it was throttled)."""

    exit_code = 5

    def __init__(self, operation: str, code: str, message: str) -> None:
        self.operation = operation
        self.code = code
        super().__init__(f"{operation} failed: {code}: {message}")


class Throttled(AwsError):
    """EC2 throttled the call (``RequestLimitExceeded`` or HTTP 503): the only error we retry."""


class MetadataError(PodIpManagerError):
    """The instance metadata service (IMDSv2) could not be read."""

    exit_code = 6


class AssignmentNotVisible(PodIpManagerError):
    """EC2 accepted the assignment but IMDS did not show it on the ENI within the confirmation bound."""

    exit_code = 7

    def __init__(self, pending: Sequence[str], waited_seconds: float) -> None:
        self.pending = tuple(pending)
        super().__init__(f"not visible in instance metadata after {waited_seconds:g}s: {', '.join(self.pending)}")


class ProtectedHolder(PodIpManagerError):
    """An address this pod needs is held by an ENI we never take addresses from: an instance's primary ENI
    (device index 0) or an ENI without the ``node.k8s.amazonaws.com/no_manage=true`` tag (the VPC CNI's)."""

    exit_code = 8

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("refusing to take addresses from a protected ENI: " + "; ".join(self.reasons))


class Stopped(PodIpManagerError):
    """SIGTERM arrived before the interfaces were ready: nothing was assigned, so stopping is a success."""

    exit_code = 0

    def __init__(self) -> None:
        super().__init__("stopped while waiting for Multus interfaces")
