"""The link plan as a CloudFormation custom resource (``Custom::MultusLinkPlan``, function ``functions/link_plan``).

CloudFormation sends a request (Create, Update, Delete) and then waits, up to an hour, for one answer at the
request's ``ResponseURL``: a presigned S3 URL taking one PUT of a JSON document (CloudFormation user guide,
"Custom resources", request and response objects). So every request is answered, whatever happens:

- Create, Update: describe the Multus subnets (``ec2:DescribeSubnets``, the only AWS call), plan their link
  names (``multus_ipam.links``), answer SUCCESS with ``Data.Plan`` (``<subnet>=<az>=<name>`` entries); a subnet
  that does not exist or a bad name answers FAILED with a Reason naming it, which CloudFormation shows in the
  stack's events before rolling back;
- Delete: SUCCESS at once, without reading anything (the plan is data; a failing Delete would block the stack);
- anything unexpected (AWS refusing the call, a bug): FAILED with the error;
- no answer ``WATCHDOG_MARGIN_SECONDS`` before the function's timeout (an AWS call that hangs): a watchdog
  answers FAILED, so the stack never waits out CloudFormation's hour.

The PhysicalResourceId is stable (the one CloudFormation sent; ``multus-link-plan`` on Create): an Update never
looks like a replacement, so CloudFormation never follows it with a Delete of the old plan.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from aws_lambda_powertools import Logger

from multus_ipam.aws.clients import retry_config
from multus_ipam.aws.ec2 import Ec2Adapter
from multus_ipam.errors import SubnetMisconfigured
from multus_ipam.links import LinkPlanError, PlannedLink, parse_interface_names, plan_links, render_plan
from multus_ipam.observability import make_logger

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

#: What the function's role must allow (tests/stack hold the template to it; the handler test to the calls made).
LINK_PLAN_IAM_ACTIONS = frozenset({"ec2:DescribeSubnets"})
PHYSICAL_RESOURCE_ID = "multus-link-plan"
#: The watchdog answers FAILED this long before the function's timeout if nothing was answered by then.
WATCHDOG_MARGIN_SECONDS = 40.0
#: CloudFormation takes a response body of at most 4096 bytes; the Reason is cut well below that.
MAX_REASON_LENGTH = 1000
#: botocore attempts for DescribeSubnets (5xx, throttling); the watchdog bounds the whole anyway.
AWS_MAX_ATTEMPTS = 3

#: Each subnet's Availability Zone, for the given subnet ids.
SubnetZones = Callable[[Sequence[str]], Mapping[str, str]]
#: PUT ``body`` to the presigned ``url``.
Send = Callable[[str, bytes], None]


class RemainingTime(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class Watchdog(Protocol):
    def start(self) -> None: ...

    def cancel(self) -> None: ...

    def join(self) -> None: ...


def thread_timer(delay: float, action: Callable[[], None]) -> Watchdog:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    return timer


class Status(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class Answer:
    status: Status
    reason: str
    data: Mapping[str, str] = field(default_factory=dict)


def decide(event: Mapping[str, Any], zones: SubnetZones) -> Answer:
    """The answer to one request. Raises only on what nobody foresaw (the caller answers FAILED then)."""
    request_type = event.get("RequestType")
    if request_type == "Delete":
        return Answer(Status.SUCCESS, "nothing to delete: the plan is data")
    if request_type not in ("Create", "Update"):
        return Answer(Status.FAILED, f"RequestType {request_type!r} is not Create, Update or Delete")
    properties = event.get("ResourceProperties") or {}
    subnet_ids = _subnet_ids(properties.get("SubnetIds"))
    if not subnet_ids:
        return Answer(Status.FAILED, "SubnetIds: no Multus subnet given")
    node_subnets = set(_subnet_ids(properties.get("NodeSubnetIds")))
    if shared := [subnet_id for subnet_id in subnet_ids if subnet_id in node_subnets]:
        return Answer(
            Status.FAILED,
            f"MultusSubnetIds: {', '.join(shared)} also in NodeSubnetIds: the nodes' own ENIs (the primary, the VPC "
            "CNI's) are there, so a Multus subnet must be a subnet of its own",
        )
    try:
        names = parse_interface_names(str(properties.get("InterfaceNames") or ""), subnet_ids)
        try:
            found = zones(subnet_ids)
        except SubnetMisconfigured as error:
            raise LinkPlanError(str(error).replace("MULTUS_SUBNET_IDS: ", "MultusSubnetIds: ", 1)) from error
        planned = plan_links(subnet_ids, found, names)
        if request_type == "Update":
            _refuse_renames(event.get("OldResourceProperties") or {}, planned, found, zones)
    except LinkPlanError as error:
        return Answer(Status.FAILED, str(error))
    return Answer(Status.SUCCESS, f"planned {len(subnet_ids)} Multus links", {"Plan": render_plan(planned)})


def _refuse_renames(
    old: Mapping[str, Any], planned: Sequence[PlannedLink], found: Mapping[str, str], zones: SubnetZones
) -> None:
    """An update must not give a subnet's link another name: nodes launched before keep the old one, and a NAD's
    master names one link for all. Subnets added at the end of MultusSubnetIds, or named in MultusInterfaceNames,
    keep every existing name; an old plan that no longer resolves (a subnet deleted since) has nothing to keep."""
    old_ids = _subnet_ids(old.get("SubnetIds"))
    try:
        missing = [subnet_id for subnet_id in old_ids if subnet_id not in found]
        old_zones = {**found, **(zones(missing) if missing else {})}
        before = plan_links(old_ids, old_zones, parse_interface_names(str(old.get("InterfaceNames") or ""), old_ids))
    except (LinkPlanError, SubnetMisconfigured):
        return
    names = {link.subnet_id: link.name for link in before}
    renamed = [
        f"{link.subnet_id} {names[link.subnet_id]} -> {link.name}"
        for link in planned
        if names.get(link.subnet_id, link.name) != link.name
    ]
    if renamed:
        raise LinkPlanError(
            f"this update renames Multus links ({'; '.join(renamed)}) while nodes launched before keep the old "
            "names: add subnets at the end of MultusSubnetIds, or pin the names in MultusInterfaceNames"
        )


def _subnet_ids(value: object) -> list[str]:
    """A List<AWS::EC2::Subnet::Id> arrives as a list of strings; a comma-separated string is taken too."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(item).strip() for item in items if str(item).strip()]


def response_body(event: Mapping[str, Any], answer: Answer) -> bytes:
    reason = answer.reason
    if len(reason) > MAX_REASON_LENGTH:
        reason = reason[: MAX_REASON_LENGTH - 3] + "..."
    return json.dumps(
        {
            "Status": answer.status.value,
            "Reason": reason,
            "PhysicalResourceId": event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID,
            "StackId": event.get("StackId", ""),
            "RequestId": event.get("RequestId", ""),
            "LogicalResourceId": event.get("LogicalResourceId", ""),
            "NoEcho": False,
            "Data": dict(answer.data),
        }
    ).encode()


def put_response(url: str, body: bytes, *, attempts: int = 3, backoff_seconds: float = 1.0) -> None:
    """One PUT of the answer to the presigned URL, retried on a failure to reach it or a 5xx.

    ``Content-Type`` is sent empty: the URL is signed without one (urllib would add a form type otherwise).
    """
    if not url.startswith(("https://", "http://")):
        raise ValueError("ResponseURL is not an http(s) URL")
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - scheme checked above
                response.read()
                return
        except urllib.error.HTTPError as error:
            if error.code < 500 or attempt == attempts:
                raise
        except urllib.error.URLError:
            if attempt == attempts:
                raise
        time.sleep(backoff_seconds * attempt)


class _Reply:
    """Sends at most one answer per request, from whichever thread gets there first (the work or the watchdog)."""

    def __init__(self, event: Mapping[str, Any], send: Send) -> None:
        url = event.get("ResponseURL")
        if not isinstance(url, str) or not url:
            raise ValueError("the request has no ResponseURL: nothing can be answered")
        self._event = event
        self._url = url
        self._send = send
        self._lock = threading.Lock()
        self.sent: Answer | None = None

    def send(self, answer: Answer) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            self.sent = answer
        self._send(self._url, response_body(self._event, answer))
        return True


class LinkPlanResource:
    """Answers CloudFormation's requests for the link plan (see the module's docstring)."""

    def __init__(
        self,
        zones: SubnetZones,
        *,
        send: Send = put_response,
        logger: Logger | None = None,
        watchdog_margin_seconds: float = WATCHDOG_MARGIN_SECONDS,
        timer: Callable[[float, Callable[[], None]], Watchdog] = thread_timer,
    ) -> None:
        """``timer``: makes the watchdog (a thread's timer; tests fire their own)."""
        self._zones = zones
        self._send = send
        self._logger = logger or make_logger()
        self._margin = watchdog_margin_seconds
        self._timer = timer

    def handle(self, event: Mapping[str, Any], context: RemainingTime) -> dict[str, str]:
        reply = _Reply(event, self._send)
        keys = {
            "request_type": str(event.get("RequestType")),
            "logical_resource_id": str(event.get("LogicalResourceId")),
            "request_id": str(event.get("RequestId")),
        }
        delay = max(context.get_remaining_time_in_millis() / 1000 - self._margin, 0.0)
        watchdog = self._timer(delay, lambda: self._answer_late(reply, delay, keys))
        watchdog.start()
        try:
            try:
                answer = decide(event, self._zones)
            except Exception as error:
                self._logger.exception("link plan failed unexpectedly", extra=keys)
                answer = Answer(Status.FAILED, f"unexpected {type(error).__name__}: {error}")
            if reply.send(answer):
                self._log(answer, keys)
        finally:
            watchdog.cancel()
            watchdog.join()  # a watchdog already answering finishes before the environment is frozen
        sent = reply.sent or answer
        return {"status": sent.status.value, "reason": sent.reason}

    def _answer_late(self, reply: _Reply, waited: float, keys: Mapping[str, str]) -> None:
        answer = Answer(Status.FAILED, f"no plan after {waited:.0f} s (DescribeSubnets did not answer in time)")
        try:
            if reply.send(answer):
                self._log(answer, keys)
        except Exception:
            self._logger.exception("could not answer CloudFormation", extra=keys)

    def _log(self, answer: Answer, keys: Mapping[str, str]) -> None:
        extra = {**keys, "status": answer.status.value, "reason": answer.reason, **answer.data}
        if answer.status is Status.SUCCESS:
            self._logger.info("answered CloudFormation", extra=extra)
        else:
            self._logger.error("answered CloudFormation", extra=extra)


class Ec2SubnetZones:
    """Each subnet's AZ from DescribeSubnets (the EC2 adapter's call), the client built on first use: a failure
    to build it is answered like any other."""

    def __init__(self, client: EC2Client | None = None) -> None:
        self._client = client
        self._adapter: Ec2Adapter | None = None

    def __call__(self, subnet_ids: Sequence[str]) -> dict[str, str]:
        if self._adapter is None:
            client = self._client or boto3.session.Session().client("ec2", config=retry_config(AWS_MAX_ATTEMPTS))
            self._adapter = Ec2Adapter(client)
        return {subnet.subnet_id: subnet.availability_zone for subnet in self._adapter.describe_subnets(subnet_ids)}


class LinkPlanEntry:
    """The function's entry point, built at import and reused by the execution environment's requests."""

    def __init__(self, zones: SubnetZones | None = None, *, send: Send = put_response) -> None:
        self._resource = LinkPlanResource(zones or Ec2SubnetZones(), send=send)

    def __call__(self, event: Mapping[str, Any], context: RemainingTime) -> dict[str, str]:
        return self._resource.handle(event, context)
