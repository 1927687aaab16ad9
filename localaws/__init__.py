"""A local AWS for tests and the demo: moto, plus the AWS behaviours moto lacks that this project depends on.

``LocalAWS`` starts moto's in-process mock (``mock_aws``: every boto3 client created while it is active talks
to it) and installs, in one place (``localaws._install``), a thin layer over moto's responses and models:

* **dispatch**: one lock around moto's request processing, so 100 threads can call it at once; a thread-safe
  call log (``aws.calls``); fault injection (``aws.faults``) that answers with real AWS error responses, so
  botocore's retry modes behave as against AWS, and a crash-after mode (``SimulatedCrash``);
* **EC2** (``localaws.ec2``): the ENI address rules (in use, outside the subnet, AWS-reserved, no free address,
  CIDR reservations), ``ClientToken`` idempotency, device-index / network-card / AZ / ENI-limit checks on
  attach, deleting an attached ENI refused, ``DeleteOnTermination`` recorded and honoured when an instance
  terminates, ``MaxResults``/``NextToken`` paging;
* **Auto Scaling** (``localaws.autoscaling`` + ``localaws.lifecycle``): lifecycle hooks declared at group
  creation, ``Pending:Wait`` / ``Terminating:Wait``, ``CompleteLifecycleAction``,
  ``RecordLifecycleActionHeartbeat``, heartbeat and global timeouts on a controllable clock (``aws.clock``),
  warm pools, and the EventBridge event AWS sends for each lifecycle action (``aws.lifecycle.event``);
* **SQS** (``localaws.sqs``): moto's queues on the local AWS clock (visibility timeouts, delays, retention,
  redrive to a dead-letter queue at ``maxReceiveCount``), long polls that wait on that clock, expired messages
  deleted, an old receipt handle deleting nothing;
* **the intake** (``localaws.intake``): EventBridge events sent to an SQS queue as a rule's SQS target does,
  and Lambda's event source mapping for it (``EventSourceMapping``): ``MaximumConcurrency`` pollers on the
  clock, the SQS event Lambda builds, a context whose remaining time runs on the clock, warm execution
  environments, timeouts that cut the invocation off, and Lambda's deletes (whole batch, or all but the
  ``batchItemFailures`` with ReportBatchItemFailures);
* **realism** (``localaws.realism``, on by default): requests validated against botocore's service models
  (``localaws.validation``), latency, EC2's per-action token buckets (``localaws.throttling``), eventual
  consistency and asynchronous attach/detach (``localaws.consistency``), each new node's VPC CNI
  (``localaws.vpc_cni``), all on the clock: ``aws.run_concurrently(tasks)`` runs concurrent callers one at
  a time on it, deterministically for the seed, so botocore's backoff and the engine's waits cost no wall time.

Why: our Lambda functions are judged on exactly these behaviours (a taken IP, an occupied device index, an
ABANDON that terminates, a token that is no longer active, a parameter AWS refuses, a throttled burst, an ENI
that a describe does not list yet), and plain moto silently accepts what AWS refuses and answers instantly and
consistently. Every behaviour has a test named after the AWS behaviour it reproduces; ``Realism.ideal()`` (or
``LOCALAWS_IDEAL=1``) switches the realistic ones off and ``LocalAWS(extensions=False)`` (or
``LOCALAWS_PLAIN_MOTO=1``) everything, to show those tests fail without them.

Still not modelled: see ``NOT_MODELLED``.

Shipped code (``layers/``, ``functions/``) never imports this package.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from moto import mock_aws
from moto.moto_api._internal import mock_random

from localaws._install import installed
from localaws._session import Session
from localaws.calls import Call
from localaws.clock import Outcome, StuckSimulation
from localaws.consistency import OTHER_ACCOUNT_ID, occupy_as_other_account
from localaws.faults import Faults, SimulatedCrash
from localaws.intake import (
    EventSourceMapping,
    Invocation,
    InvocationContext,
    InvocationResult,
    InvocationTimedOut,
    QueuePair,
    RunReport,
    create_queue_pair,
    put_events,
)
from localaws.lifecycle import LifecycleAction, LifecycleResult, RejectedCompletion
from localaws.realism import Bucket, Realism, Throttling
from localaws.throttling import Buckets
from localaws.vpc_cni import VpcCni, vpc_cni

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from localaws.clock import Clock
    from localaws.lifecycle import Lifecycle

__all__ = [
    "NOT_MODELLED",
    "OTHER_ACCOUNT_ID",
    "Bucket",
    "Call",
    "EventSourceMapping",
    "Invocation",
    "InvocationContext",
    "InvocationResult",
    "InvocationTimedOut",
    "LifecycleAction",
    "LifecycleResult",
    "LocalAWS",
    "Outcome",
    "QueuePair",
    "Realism",
    "RejectedCompletion",
    "RunReport",
    "SimulatedCrash",
    "StuckSimulation",
    "Throttling",
    "create_queue_pair",
    "put_events",
]

T = TypeVar("T")

DEFAULT_ACCOUNT_ID = "123456789012"  # moto's account

#: What the local AWS still does not model, and what that means for tests that rely on it.
NOT_MODELLED: dict[str, str] = {
    "Auto Scaling rates": "Auto Scaling publishes no rate limits: its bucket (Throttling.autoscaling) is an "
    "assumption, one per action.",
    "Auto Scaling consistency": "DescribeAutoScalingGroups/Instances and DescribeWarmPool are read-after-write "
    "consistent here (AWS documents no lag for them).",
    "EC2 resource rate limits": "Only request token buckets; the resource buckets (RunInstances, ...) are not "
    "modelled: no function of ours launches instances.",
    "latency distribution": "AWS publishes none: a uniform draw per request (Realism.latency).",
    "attachment-id lag": "A new attachment id is usable at once (ipamd relies on it); only new ENIs and instances lag.",
    "ENI prefixes": "Ipv4Prefixes/Ipv6Prefixes on ENIs are ignored by moto and occupy no addresses here.",
    "per-ENI address limits": "PrivateIpAddressLimitExceeded (Ipv4AddressesPerInterface) is not enforced.",
    "IPv6 error codes": "A taken requested IPv6 address gives InvalidIPAddress.InUse as for IPv4 (unconfirmed).",
    "cross-AZ attach code": "Attaching an ENI from another AZ gives InvalidParameterCombination (code unconfirmed).",
    "notification targets": "Lifecycle hooks' SNS/SQS targets and the test notification are not sent.",
    "event delivery": "No EventBridge rules, retries, archive or EventBridge's own DLQ: put_events sends each "
    "event to the queue as the rule's SQS target does (one SendMessage, the event as the body), at once, exactly "
    "once; or tests render aws.lifecycle.events() and call the handler themselves.",
    "ESM scaling": "EventSourceMapping ramps up as Lambda documents (5 pollers, then +300 a minute at most) and "
    "drops back to 5 as soon as the queue looks idle (Lambda scales down more slowly: never sooner than AWS). "
    "Lambda's back-off of concurrency after function errors (without ReportBatchItemFailures) is not modelled: "
    "the other messages of a failing function are served sooner here.",
    "ESM features": "Standard queues only: no FIFO, no batching window (so BatchSize <= 10), no event filtering, "
    "no provisioned mode, no function throttling (reserved concurrency, the account's limit); the 6 MB payload "
    "limit is not enforced. A worker keeps its environment until a timeout or crash (Lambda may recycle any).",
    "ESM polling": "A poller asks with WaitTimeSeconds=0 and waits poll_interval_seconds on the clock when the "
    "queue is empty (Lambda long-polls and sees a message at once): up to that much later than Lambda.",
    "invocation kill": "A timed-out invocation's later AWS calls fail (InvocationTimedOut), but a wait on the "
    "clock alone is not cut short: its worker stays busy until the handler returns.",
    "SQS delivery": "Standard queues deliver exactly once here (AWS: at least once, rarely twice); a "
    "WaitTimeSeconds=0 receive sees every visible message (AWS samples some servers); a long poll returns within "
    "0.1 s of a message becoming visible. ChangeMessageVisibility does not answer MessageNotInflight.",
    "scaling slowdown": "AWS slows launches when hooks keep abandoning; here replacements launch at once.",
    "termination policy": "Scale-in picks the AZ with most instances, then the oldest; no other policies.",
    "instance refresh, mixed instances": "Not lifecycle-aware (moto's own behaviour).",
    "warm pool scale-in reuse": "Only with InstanceReusePolicy.ReuseOnScaleIn; pool size is not trimmed.",
    "describe paging elsewhere": "Only DescribeNetworkInterfaces and GetSubnetCidrReservations page here "
    "(DescribeInstances pages in moto itself).",
    "VPC CNI beyond its first ENI": "Each node's ipamd makes one ENI of its own (WARM_ENI_TARGET=1) and no "
    "secondary-address calls.",
    "doc-text limits on lists": "Limits the model states only in documentation text are enforced for integers, "
    "not for list lengths (e.g. DescribeAutoScalingInstances InstanceIds <= 50).",
}


class LocalAWS:
    """The local AWS. Use as a context manager; nothing is patched outside it.

    Only one may be active at a time in a process (moto's mock is process-wide).
    """

    _active: LocalAWS | None = None

    def __init__(
        self,
        region: str = "us-east-1",
        *,
        extensions: bool | None = None,
        start_time: datetime | None = None,
        seed: int = 0,
        skip_retry_delays: bool = True,
        default_amis: bool = False,
        realism: Realism | None = None,
    ) -> None:
        """``extensions``: the AWS behaviours on top of moto; default on unless ``LOCALAWS_PLAIN_MOTO=1``.
        ``start_time``: the clock's start (timezone-aware; default now). ``seed``: seeds the addresses EC2
        picks. ``skip_retry_delays``: botocore's standard/adaptive backoff is computed but not slept (recorded
        in ``skipped_retry_delays``). ``default_amis``: load moto's ~1300 public AMIs (0.5 s per region); off, so
        register an image first (``scenario.build`` does). ``realism``: how strict, slow, throttled and eventually
        consistent AWS is (``localaws.realism``; default ``Realism()``: all of it; ``LOCALAWS_IDEAL=1`` or plain
        moto: ``Realism.ideal()``)."""
        if extensions is None:
            extensions = os.environ.get("LOCALAWS_PLAIN_MOTO", "") not in ("1", "true", "yes")
        if realism is None:
            ideal = os.environ.get("LOCALAWS_IDEAL", "") in ("1", "true", "yes")
            realism = Realism.ideal() if ideal or not extensions else Realism()
        self.region = region
        self.extensions = extensions
        self.realism = realism
        self.seed = seed
        self._skip_retry_delays = skip_retry_delays
        self._default_amis = default_amis
        self._session = Session(
            region=region, account_id=DEFAULT_ACCOUNT_ID, start=start_time, seed=seed, realism=realism
        )
        self._stack: ExitStack | None = None
        self._saved_env: dict[str, str | None] = {}

    # --- lifecycle of the context ------------------------------------------------------------------------

    def __enter__(self) -> LocalAWS:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if LocalAWS._active is not None:
            raise RuntimeError("another LocalAWS is already active in this process")
        stack = ExitStack()
        try:
            stack.enter_context(mock_aws())
            mock_random.seed(self.seed)  # moto's resource ids: the same seed, the same ids, the same run
            stack.enter_context(
                installed(self._session, extensions=self.extensions, skip_retry_delays=self._skip_retry_delays)
            )
            stack.callback(self._restore_env)
            self._set_env()
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        LocalAWS._active = self

    def stop(self) -> None:
        stack, self._stack = self._stack, None
        if LocalAWS._active is self:
            LocalAWS._active = None
        if stack is not None:
            stack.close()

    def _set_env(self) -> None:
        wanted = {"AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region}
        if not self._default_amis:
            wanted["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
        for name, value in wanted.items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value

    def _restore_env(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    # --- what tests use ------------------------------------------------------------------------------------

    @classmethod
    def active(cls) -> LocalAWS | None:
        """The LocalAWS active in this process, if any."""
        return cls._active

    @property
    def account_id(self) -> str:
        return self._session.account_id

    def client(self, service: str, **kwargs: Any) -> Any:  # noqa: ANN401 - each service has its own client type
        """A boto3 client for ``service`` in this region (any client created while active is mocked too).

        Typed as ``Any`` to stay free of boto3-stubs here; annotate at the call site
        (``ec2: EC2Client = aws.client("ec2")``).
        """
        kwargs.setdefault("region_name", self.region)
        return boto3.client(service, **kwargs)  # type: ignore[call-overload]

    @property
    def clock(self) -> Clock:
        return self._session.clock

    @property
    def faults(self) -> Faults:
        return self._session.faults

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every call so far, in arrival order."""
        return self._session.calls.snapshot()

    def calls_to(self, service: str, operation: str) -> list[Call]:
        return self._session.calls.to(service, operation)

    def clear_calls(self) -> None:
        self._session.calls.clear()

    @property
    def lifecycle(self) -> Lifecycle:
        return self._session.lifecycle

    @property
    def skipped_retry_delays(self) -> list[float]:
        """The backoff delays botocore asked for (slept on the local AWS clock with ``Realism.retry_delays``,
        else not slept at all)."""
        return list(self._session.skipped_retry_delays)

    def run_concurrently(self, tasks: Sequence[Callable[[], T]]) -> list[Outcome[T]]:
        """Run ``tasks`` as concurrent callers, one at a time on the local AWS clock, deterministically for the
        seed (``localaws.clock``). Each task's value or exception is in its ``Outcome``."""
        return self._session.clock.run_concurrently(tasks)

    @property
    def buckets(self) -> Buckets | None:
        """The account's throttling buckets (None with throttling off)."""
        return self._session.buckets

    @property
    def vpc_cni(self) -> VpcCni:
        """What the VPC CNI actors of new nodes did."""
        return vpc_cni(self._session)

    def occupy_as_other_account(self, subnet_id: str, addresses: list[str]) -> list[str]:
        """ENIs of another account in a subnet shared through AWS RAM: they hold ``addresses`` but none of our
        describes lists them. Returns their ids."""
        return occupy_as_other_account(self._session, subnet_id, addresses)
