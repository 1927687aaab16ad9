"""The link plan custom resource on the local AWS, answering a local HTTP server that stands in for the presigned
S3 URL CloudFormation waits on: every request gets exactly one answer, whatever happens."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from functions.link_plan import app
from localaws import LocalAWS
from multus_ipam.aws.clients import retry_config
from multus_ipam.link_plan import (
    LINK_PLAN_IAM_ACTIONS,
    PHYSICAL_RESOURCE_ID,
    WATCHDOG_MARGIN_SECONDS,
    Ec2SubnetZones,
    LinkPlanEntry,
    LinkPlanResource,
    SubnetZones,
    put_response,
)
from tests.handlers.world import FakeContext

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

AZ1, AZ2 = "us-east-1a", "us-east-1b"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/test-stack/0e8a7c10-ca56-11f0-8de9-0242ac120002"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ResponseUrl:
    """The presigned S3 URL's stand-in: records every PUT; answers ``statuses`` first (then 200)."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def answer(self) -> dict[str, Any]:
        (only,) = self.received
        return only.body


@pytest.fixture
def response_url() -> Iterator[ResponseUrl]:
    recorder = ResponseUrl(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with lock:
                status = recorder.statuses.pop(0) if recorder.statuses else 200
                recorder.received.append(Received("PUT", self.path, dict(self.headers.items()), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    recorder.url = f"http://{host!s}:{port}/cfn-response/LinkPlan?X-Amz-Signature=abc"
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Subnets:
    a: str
    b: str
    c: str

    @property
    def ids(self) -> list[str]:
        return [self.a, self.b, self.c]


@pytest.fixture
def subnets(aws: LocalAWS) -> Subnets:
    """a and c in AZ1, b in AZ2."""
    ec2: EC2Client = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    def subnet(cidr: str, az: str) -> str:
        return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]

    return Subnets(a=subnet("10.0.4.0/24", AZ1), b=subnet("10.0.5.0/24", AZ2), c=subnet("10.0.6.0/24", AZ1))


def request(
    response_url: ResponseUrl, request_type: str, subnet_ids: Sequence[str], names: str = "", **extra: Any
) -> dict[str, Any]:
    """A request as CloudFormation sends it (CloudFormation user guide, custom resource request object)."""
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:test-stack-LinkPlanFunction",
        "ResponseURL": response_url.url,
        "StackId": STACK_ID,
        "RequestId": "5d478078-13e9-baf0-464a-7ef285ecc786",
        "LogicalResourceId": "LinkPlan",
        "ResourceType": "Custom::MultusLinkPlan",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:test-stack-LinkPlanFunction",
            "SubnetIds": list(subnet_ids),
            "InterfaceNames": names,
        },
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = PHYSICAL_RESOURCE_ID
    event.update(extra)
    return event


def zones_on(aws: LocalAWS) -> Ec2SubnetZones:
    return Ec2SubnetZones(aws.client("ec2", config=retry_config(3)))


def handle(zones: SubnetZones, event: Mapping[str, Any], **kwargs: Any) -> dict[str, str]:
    return LinkPlanResource(zones, **kwargs).handle(event, FakeContext())


def test_given_multus_subnets_in_two_azs_when_created_then_success_with_the_plan_and_a_stable_id(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    aws.clear_calls()
    outcome = handle(zones_on(aws), request(response_url, "Create", subnets.ids))
    answer = response_url.answer
    assert outcome == {"status": "SUCCESS", "reason": "planned 3 Multus links"}
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"] == {"Plan": f"{subnets.a}={AZ1}=multus0 {subnets.b}={AZ2}=multus0 {subnets.c}={AZ1}=multus1"}
    assert answer["PhysicalResourceId"] == PHYSICAL_RESOURCE_ID
    assert (answer["StackId"], answer["LogicalResourceId"]) == (STACK_ID, "LinkPlan")
    assert answer["RequestId"] == "5d478078-13e9-baf0-464a-7ef285ecc786"
    (put,) = response_url.received
    assert put.path.startswith("/cfn-response/LinkPlan?X-Amz-Signature=")
    assert put.headers.get("Content-Type") == ""  # the presigned URL is signed without a content type
    assert {f"ec2:{c.operation}" for c in aws.calls} == LINK_PLAN_IAM_ACTIONS


def test_given_interface_names_when_updated_then_the_plan_uses_them_and_keeps_the_physical_id(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    event = request(response_url, "Update", subnets.ids, f"{subnets.a}=n6, {subnets.b}=sbi")
    event["PhysicalResourceId"] = "the-id-cloudformation-knows"
    handle(zones_on(aws), event)
    answer = response_url.answer
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"]["Plan"] == f"{subnets.a}={AZ1}=n6 {subnets.b}={AZ2}=sbi {subnets.c}={AZ1}=multus1"
    assert answer["PhysicalResourceId"] == "the-id-cloudformation-knows"


def test_given_an_unknown_subnet_when_created_then_failed_naming_it(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    unknown = "subnet-0123456789abcdef0"
    handle(zones_on(aws), request(response_url, "Create", [subnets.a, unknown]))
    answer = response_url.answer
    assert answer["Status"] == "FAILED"
    assert unknown in answer["Reason"]
    assert answer["Reason"].startswith("MultusSubnetIds: ")
    assert answer["PhysicalResourceId"] == PHYSICAL_RESOURCE_ID
    assert "Plan" not in answer["Data"]


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ("{a}=a/b", "'a/b' (for {a}) is not a valid interface name: contains '/'"),
        ("{a}=averyveryverylongname", "longer than 15 characters"),
        ("{a}=.", "'.' and '..' are not interface names"),
        ("{c}=multus0", "{a} and {c} would both be named 'multus0' in us-east-1a"),
        ("subnet-0123456789abcdef0=n6", "subnet-0123456789abcdef0 is not one of MultusSubnetIds"),
    ],
)
def test_given_a_bad_interface_name_when_created_then_failed_naming_the_problem(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl, names: str, problem: str
) -> None:
    values = {"a": subnets.a, "c": subnets.c}
    handle(zones_on(aws), request(response_url, "Create", subnets.ids, names.format(**values)))
    answer = response_url.answer
    assert answer["Status"] == "FAILED"
    assert problem.format(**values) in answer["Reason"]
    assert answer["Reason"].startswith("MultusInterfaceNames: ")


def test_given_a_delete_when_handled_then_success_without_reading_anything(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    aws.clear_calls()
    # Even with properties that would not plan (a stack rolling back from a failed Create deletes it too).
    handle(zones_on(aws), request(response_url, "Delete", ["subnet-0123456789abcdef0"], "x=/"))
    answer = response_url.answer
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == PHYSICAL_RESOURCE_ID
    assert aws.calls == []


def test_given_aws_refusing_the_describe_when_created_then_failed_with_the_operation_and_code(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    aws.faults.fail("ec2", "DescribeSubnets", code="UnauthorizedOperation", status=403)
    outcome = handle(zones_on(aws), request(response_url, "Create", subnets.ids))
    answer = response_url.answer
    assert answer["Status"] == "FAILED"
    assert "DescribeSubnets" in answer["Reason"]
    assert "UnauthorizedOperation" in answer["Reason"]
    assert outcome["status"] == "FAILED"


def test_given_an_unexpected_exception_when_created_then_still_answers_failed_with_it(
    subnets: Subnets, response_url: ResponseUrl
) -> None:
    def broken(_subnet_ids: Sequence[str]) -> Mapping[str, str]:
        raise RuntimeError("something nobody foresaw")

    outcome = handle(broken, request(response_url, "Create", subnets.ids))
    answer = response_url.answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "unexpected RuntimeError: something nobody foresaw"
    assert outcome == {"status": "FAILED", "reason": answer["Reason"]}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"RequestType": "Replace"}, "RequestType 'Replace' is not Create, Update or Delete"),
        ({"ResourceProperties": {"InterfaceNames": ""}}, "SubnetIds: no Multus subnet given"),
    ],
)
def test_given_a_malformed_request_when_handled_then_failed_naming_the_field(
    aws: LocalAWS, response_url: ResponseUrl, changes: dict[str, Any], reason: str
) -> None:
    handle(zones_on(aws), request(response_url, "Create", ["subnet-0123456789abcdef0"], **changes))
    assert response_url.answer["Status"] == "FAILED"
    assert response_url.answer["Reason"] == reason


@dataclass
class ManualTimer:
    """The watchdog's timer, fired by the test: the moment the function's time runs out, made explicit."""

    delay: float
    action: Callable[[], None]
    started: bool = False
    cancelled: bool = False

    def start(self) -> None:
        self.started = True

    def cancel(self) -> None:
        self.cancelled = True

    def join(self) -> None:
        return

    def fire(self) -> None:
        assert self.started
        assert not self.cancelled
        self.action()


def test_given_a_describe_that_outlives_the_function_when_created_then_the_watchdog_answers_failed_once(
    subnets: Subnets, response_url: ResponseUrl
) -> None:
    timers: list[ManualTimer] = []

    def make_timer(delay: float, action: Callable[[], None]) -> ManualTimer:
        timers.append(ManualTimer(delay, action))
        return timers[-1]

    def hanging(subnet_ids: Sequence[str]) -> Mapping[str, str]:
        timers[0].fire()  # the function's time runs out while DescribeSubnets has not answered
        return dict.fromkeys(subnet_ids, AZ1)  # then it answers, too late

    resource = LinkPlanResource(hanging, timer=make_timer)
    outcome = resource.handle(request(response_url, "Create", subnets.ids), FakeContext(remaining_ms=120_000))
    assert timers[0].delay == 120 - WATCHDOG_MARGIN_SECONDS
    assert response_url.answer["Status"] == "FAILED"  # one answer only: the work's own came too late
    assert "did not answer in time" in response_url.answer["Reason"]
    assert outcome["status"] == "FAILED"
    assert timers[0].cancelled


def test_given_a_quick_answer_when_handled_then_the_watchdog_is_cancelled(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    timers: list[ManualTimer] = []

    def make_timer(delay: float, action: Callable[[], None]) -> ManualTimer:
        timers.append(ManualTimer(delay, action))
        return timers[-1]

    handle(zones_on(aws), request(response_url, "Create", subnets.ids), timer=make_timer)
    assert timers[0].started
    assert timers[0].cancelled
    assert len(response_url.received) == 1


def test_given_the_response_url_failing_once_with_a_5xx_when_answering_then_the_put_is_retried(
    response_url: ResponseUrl,
) -> None:
    response_url.statuses = [503]
    put_response(response_url.url, b'{"Status": "SUCCESS"}', backoff_seconds=0)
    assert [r.body for r in response_url.received] == [{"Status": "SUCCESS"}] * 2


def test_given_the_deployed_entry_point_when_invoked_then_it_answers_through_the_layer(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function as deployed (functions/link_plan/app.py), its EC2 client built on the first request.
    monkeypatch.setattr(app, "ENTRY", LinkPlanEntry())
    app.lambda_handler(request(response_url, "Create", subnets.ids), FakeContext())
    assert response_url.answer["Data"]["Plan"].endswith(f"{subnets.c}={AZ1}=multus1")


def test_given_a_node_subnet_among_the_multus_subnets_when_created_then_failed_naming_it(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    # The nodes' primary ENIs (and the VPC CNI's) are in their node subnet: a Multus link there would be theirs.
    event = request(response_url, "Create", subnets.ids)
    event["ResourceProperties"]["NodeSubnetIds"] = ["subnet-0aaaaaaaaaaaaaaaa", subnets.b]

    handle(zones_on(aws), event)

    answer = response_url.answer
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"MultusSubnetIds: {subnets.b} also in NodeSubnetIds")


def old_properties(subnet_ids: Sequence[str], names: str = "") -> dict[str, Any]:
    return {"SubnetIds": list(subnet_ids), "InterfaceNames": names}


def test_given_an_update_that_inserts_a_subnet_before_others_then_failed_naming_the_renames(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl
) -> None:
    # Old nodes keep their links' names; a NAD's master would mean another subnet on the new nodes.
    event = request(response_url, "Update", [subnets.c, subnets.a, subnets.b])
    event["OldResourceProperties"] = old_properties([subnets.a, subnets.b])

    handle(zones_on(aws), event)

    answer = response_url.answer
    assert answer["Status"] == "FAILED"
    assert f"{subnets.a} multus0 -> multus1" in answer["Reason"]
    assert "add subnets at the end of MultusSubnetIds, or pin the names in MultusInterfaceNames" in answer["Reason"]


@pytest.mark.parametrize(
    ("new_order", "names"),
    [(("a", "b", "c"), ""), (("c", "a", "b"), "{a}=multus0,{c}=multus1")],
    ids=["appended", "reordered-but-pinned"],
)
def test_given_an_update_that_keeps_every_existing_name_then_success(
    aws: LocalAWS, subnets: Subnets, response_url: ResponseUrl, new_order: tuple[str, ...], names: str
) -> None:
    ids = [getattr(subnets, letter) for letter in new_order]
    event = request(response_url, "Update", ids, names.format(a=subnets.a, c=subnets.c))
    event["OldResourceProperties"] = old_properties([subnets.a, subnets.b])

    handle(zones_on(aws), event)

    answer = response_url.answer
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert f"{subnets.a}={AZ1}=multus0" in answer["Data"]["Plan"]
    assert f"{subnets.b}={AZ2}=multus0" in answer["Data"]["Plan"]
