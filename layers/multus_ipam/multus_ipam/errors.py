"""Our error types. Adapters translate AWS error codes into these; the domain never sees botocore.

Each error says what went wrong in words an operator can act on. ``LifecycleFailure`` subclasses end a
launch with the configured failure result after a rollback; everything else is a bug or an AWS fault that
still completes the lifecycle action before it propagates.
"""

from __future__ import annotations


class MultusIpamError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(MultusIpamError):
    """An environment variable is missing or malformed. Raised at cold start, naming the variable."""

    def __init__(self, variable: str, problem: str, accepted: str | None = None) -> None:
        self.variable = variable
        message = f"{variable}: {problem}"
        if accepted:
            message += f" (expected {accepted})"
        super().__init__(message)


class RetryLater(MultusIpamError):
    """The lifecycle action was deliberately left uncompleted (throttling, a 5xx, time): the invocation fails so
    that the event comes back. What was made is kept for the next attempt."""


class InvalidEvent(MultusIpamError):
    """The event is not a lifecycle event we handle; nothing in AWS is touched."""


class LifecycleFailure(MultusIpamError):
    """A launch step failed. ``retryable`` False: retrying will not fix it (roll back, complete with the failure
    result). True: a later attempt may succeed (throttling, a 5xx, time running out, EC2 not showing a new
    resource yet): the engine keeps what it made and lets the event come back, unless this was its last attempt.
    """

    retryable: bool = False


class WorkerRangeExhausted(LifecycleFailure):
    """No free address is left in the worker range of a subnet (below its bound, outside reservations)."""


class InsufficientAddresses(LifecycleFailure):
    """EC2 has no address left to assign in the subnet (InsufficientFreeAddressesInSubnet)."""


class MissingReservation(LifecycleFailure):
    """A Multus subnet lacks the CIDR reservation that keeps workers out of the pod range."""


class SubnetMisconfigured(LifecycleFailure):
    """A configured Multus subnet does not exist or does not fit the configuration (bound, IP family)."""


class InstanceGone(LifecycleFailure):
    """The instance of the lifecycle action no longer exists or is shutting down."""


class AddressConflictsExhausted(LifecycleFailure):
    """Every attempt to claim an address collided with another claim; the subnet is under heavy churn."""

    retryable = True


class DeadlineExceeded(LifecycleFailure):
    """The invocation is about to time out; stop, and roll back or let the event come back while there is time."""

    retryable = True


#: Answers botocore's standard retry mode counts as throttling (botocore/retries/standard.py).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
#: Codes of answers a later attempt may not get: throttling, AWS's own faults, timeouts, and a NotFound for an
#: ENI or attachment just made that EC2 still does not show after the engine's patience (eventual consistency).
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "Unavailable",
        "InvalidNetworkInterfaceID.NotFound",
        "InvalidAttachmentID.NotFound",
        # Another delivery of the same launch got there first: its create with our client token but other tags
        # (a reconciler's event has another time), or it is attaching the duplicate we would delete. The next
        # attempt adopts what it made.
        "IdempotentParameterMismatch",
        "InvalidNetworkInterface.InUse",
    }
)


class AwsCallFailed(LifecycleFailure):
    """An AWS call failed with an error that is not one of the decisions below (after SDK retries).

    ``status``: the HTTP status AWS answered with, if any; ``no_answer``: the request got no answer at all (a
    connection error, a read timeout)."""

    def __init__(
        self, operation: str, code: str, message: str, *, status: int | None = None, no_answer: bool = False
    ) -> None:
        self.operation = operation
        self.code = code
        self.status = status
        self.no_answer = no_answer
        super().__init__(f"{operation} failed: {code}: {message}")

    @property
    def retryable(self) -> bool:  # type: ignore[override]  # per instance: by the answer's code and status
        return self.no_answer or self.code in TRANSIENT_CODES or (self.status or 0) >= 500


# --- decisions the engine takes on specific AWS answers ---------------------------------------------


class IpAddressInUse(MultusIpamError):
    """The requested private IP was taken meanwhile (InvalidIPAddress.InUse): try the next candidate."""


class NotYetVisible(MultusIpamError):
    """EC2 answered NotFound for an id we just created or the event named (InvalidInstanceID.NotFound,
    InvalidNetworkInterfaceID.NotFound, InvalidAttachmentID.NotFound).

    EC2 is eventually consistent: right after a create or a launch, an id may be unknown to some requests for a
    while, and "this does not mean the resource does not exist" (EC2 developer guide, "Eventual consistency").
    Never final at once: the engine retries with backoff, bounded, then decides.
    """

    def __init__(self, operation: str, code: str, resource_id: str, message: str) -> None:
        self.operation = operation
        self.code = code
        self.resource_id = resource_id
        super().__init__(f"{operation}: {code}: {message}")

    @property
    def about_instance(self) -> bool:
        return self.code.startswith("InvalidInstanceID")


class DeviceIndexTaken(MultusIpamError):
    """The device index is occupied, e.g. by an ENI the VPC CNI attached first: take the next free one."""


class LifecycleActionGone(MultusIpamError):
    """CompleteLifecycleAction answered "No active Lifecycle Action": completed or timed out already."""
