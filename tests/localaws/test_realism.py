"""The realistic local AWS: throttling, latency, eventual consistency, asynchronous attachments, other accounts'
ENIs, each node's VPC CNI and strict parameters. Each test names the AWS behaviour it reproduces and shows that
the behaviour goes away when its switch is off (``Realism.ideal()`` or one field), so a passing handler test
cannot owe its pass to a more forgiving emulation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_autoscaling import AutoScalingClient
from mypy_boto3_ec2 import EC2Client

from localaws import Bucket, LocalAWS, Realism, Throttling

from .conftest import START, error_code, run_instance

#: Only the behaviour under test: no latency (time stands still unless a test moves it), no lag, no CNI.
QUIET = Realism.strict()
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def local(realism: Realism, seed: int = 0) -> LocalAWS:
    return LocalAWS(region="us-east-1", start_time=START, realism=realism, seed=seed)


@pytest.fixture
def throttled() -> Iterator[LocalAWS]:
    with local(replace(QUIET, throttling=Throttling())) as aws:
        yield aws


def subnet(ec2: EC2Client, cidr: str = "10.0.1.0/24") -> str:
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]


def describe_filtered(ec2: EC2Client, subnet_id: str) -> None:
    ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])


# --- throttling: EC2 developer guide, "Request throttling" ------------------------------------------------------


def test_given_a_full_describe_bucket_when_101_filtered_describes_at_once_then_the_101st_is_request_limit_exceeded(
    throttled: LocalAWS,
) -> None:
    # AWS: non-mutating actions have a bucket of 100 tokens; an empty bucket answers RequestLimitExceeded (503).
    ec2: EC2Client = throttled.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    for _ in range(100):
        describe_filtered(ec2, subnet_id)

    with pytest.raises(ClientError) as excinfo:
        describe_filtered(ec2, subnet_id)

    assert error_code(excinfo) == "RequestLimitExceeded"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_given_an_empty_describe_bucket_when_one_second_passes_then_20_tokens_are_back(throttled: LocalAWS) -> None:
    # AWS: the non-mutating bucket refills 20 tokens per second.
    ec2: EC2Client = throttled.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    for _ in range(100):
        describe_filtered(ec2, subnet_id)

    throttled.clock.advance(1)
    for _ in range(20):
        describe_filtered(ec2, subnet_id)
    with pytest.raises(ClientError) as excinfo:
        describe_filtered(ec2, subnet_id)

    assert error_code(excinfo) == "RequestLimitExceeded"


def test_given_unfiltered_unpaginated_describes_when_51_in_one_instant_then_the_51st_is_throttled(
    throttled: LocalAWS,
) -> None:
    # AWS: a describe with neither a filter nor pagination falls in the smaller bucket (50 / 10 per s).
    ec2: EC2Client = throttled.client("ec2", config=NO_RETRIES)
    for _ in range(50):
        ec2.describe_network_interfaces()

    with pytest.raises(ClientError) as excinfo:
        ec2.describe_network_interfaces()

    assert error_code(excinfo) == "RequestLimitExceeded"


def test_given_each_action_has_its_own_bucket_when_creates_are_exhausted_then_attach_still_has_tokens(
    throttled: LocalAWS,
) -> None:
    # AWS: "each API is evaluated individually": CreateNetworkInterface (100 / 5) and AttachNetworkInterface (50 / 5)
    # do not share tokens.
    ec2: EC2Client = throttled.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2, "10.0.1.0/24")
    instance_id = run_instance(ec2, subnet_id)
    enis = [ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"] for _ in range(100)]
    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=subnet_id)

    ec2.attach_network_interface(
        NetworkInterfaceId=enis[0]["NetworkInterfaceId"], InstanceId=instance_id, DeviceIndex=1
    )

    assert error_code(excinfo) == "RequestLimitExceeded"
    assert throttled.buckets is not None
    assert throttled.buckets.refused == {("ec2", "CreateNetworkInterface"): 1}


def test_given_other_callers_take_half_of_every_refill_when_one_second_passes_then_only_half_the_tokens_are_back() -> (
    None
):
    # The account's buckets are shared with every other caller (other tools, other node groups' VPC CNI).
    with local(replace(QUIET, throttling=Throttling(others_share=0.5))) as aws:
        ec2: EC2Client = aws.client("ec2", config=NO_RETRIES)
        subnet_id = subnet(ec2)
        for _ in range(100):
            describe_filtered(ec2, subnet_id)
        aws.clock.advance(1)
        for _ in range(10):
            describe_filtered(ec2, subnet_id)
        with pytest.raises(ClientError) as excinfo:
            describe_filtered(ec2, subnet_id)

    assert error_code(excinfo) == "RequestLimitExceeded"


def test_given_the_autoscaling_bucket_is_empty_when_describing_groups_then_throttling_rate_exceeded() -> None:
    # AWS: Auto Scaling answers Throttling "Rate exceeded" (HTTP 400); its figures are unpublished (a parameter).
    with local(replace(QUIET, throttling=Throttling(autoscaling=Bucket(3, 1)))) as aws:
        autoscaling: AutoScalingClient = aws.client("autoscaling", config=NO_RETRIES)
        for _ in range(3):
            autoscaling.describe_auto_scaling_groups()
        with pytest.raises(ClientError) as excinfo:
            autoscaling.describe_auto_scaling_groups()

    assert error_code(excinfo) == "Throttling"
    assert excinfo.value.response["Error"]["Message"] == "Rate exceeded"


def test_given_throttling_off_when_200_describes_in_one_instant_then_none_is_refused() -> None:
    with local(QUIET) as aws:
        ec2: EC2Client = aws.client("ec2", config=NO_RETRIES)
        subnet_id = subnet(ec2)
        for _ in range(200):
            describe_filtered(ec2, subnet_id)

    assert all(call.ok for call in aws.calls)


def test_given_a_throttled_call_when_botocore_retries_then_its_backoff_is_waited_on_the_local_aws_clock() -> None:
    # botocore standard mode: backoff rand * min(2^(n-1), 20) s between attempts; here that moves the clock.
    with local(replace(QUIET, throttling=Throttling(), retry_delays=True)) as aws:
        ec2: EC2Client = aws.client("ec2", config=Config(retries={"mode": "standard", "total_max_attempts": 6}))
        subnet_id = subnet(ec2)
        for _ in range(100):
            describe_filtered(ec2, subnet_id)
        before = aws.clock.now()

        describe_filtered(ec2, subnet_id)  # refused, then retried after a backoff that refilled the bucket

        waited = (aws.clock.now() - before).total_seconds()
        outcomes = [c.outcome for c in aws.calls_to("ec2", "DescribeNetworkInterfaces")][100:]

    assert outcomes[0] == "RequestLimitExceeded"
    assert outcomes[-1] == "ok"
    assert len(aws.skipped_retry_delays) == len(outcomes) - 1
    assert waited == pytest.approx(sum(aws.skipped_retry_delays), abs=1e-5 * len(outcomes))  # clock: microseconds
    assert waited > 0


# --- latency ------------------------------------------------------------------------------------------------------


def test_given_latency_when_a_call_is_made_then_local_aws_time_moves_by_a_draw_within_the_range() -> None:
    with local(replace(QUIET, latency=(0.1, 0.3))) as aws:
        ec2: EC2Client = aws.client("ec2")
        before = aws.clock.now()
        ec2.describe_vpcs()
        took = (aws.clock.now() - before).total_seconds()

    assert 0.1 <= took <= 0.3


def test_given_no_latency_when_a_call_is_made_then_time_stands_still() -> None:
    with local(QUIET) as aws:
        ec2: EC2Client = aws.client("ec2")
        ec2.describe_vpcs()

        assert aws.clock.now() == START


# --- eventual consistency: EC2 developer guide, "Eventual consistency" ------------------------------------------


@pytest.fixture
def lagging() -> Iterator[LocalAWS]:
    with local(replace(QUIET, visibility_lag=5.0)) as aws:
        yield aws


def test_given_a_new_eni_when_described_by_id_at_once_then_not_found_until_the_lag_passed(lagging: LocalAWS) -> None:
    # AWS: right after a create, an ID lookup may answer InvalidNetworkInterfaceID.NotFound.
    ec2: EC2Client = lagging.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]

    with pytest.raises(ClientError) as excinfo:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])
    listed = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])
    lagging.clock.advance(5)
    later = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]

    assert error_code(excinfo) == "InvalidNetworkInterfaceID.NotFound"
    assert listed["NetworkInterfaces"] == []
    assert [e["NetworkInterfaceId"] for e in later] == [eni_id]


def test_given_a_new_eni_not_visible_yet_when_attaching_it_then_not_found(lagging: LocalAWS) -> None:
    # AWS: calls that name a resource just created may say it does not exist.
    ec2: EC2Client = lagging.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    instance_id = run_instance(ec2, subnet_id)
    lagging.clock.advance(5)  # the instance is visible by now
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]

    with pytest.raises(ClientError) as excinfo:
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)

    assert error_code(excinfo) == "InvalidNetworkInterfaceID.NotFound"


def test_given_a_new_eni_not_visible_yet_when_its_address_is_asked_for_then_it_is_in_use(lagging: LocalAWS) -> None:
    # An invisible resource exists all the same: its address is taken.
    ec2: EC2Client = lagging.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.4")

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.4")

    assert error_code(excinfo) == "InvalidIPAddress.InUse"


def test_given_a_just_launched_instance_when_described_then_not_found_and_not_listed(lagging: LocalAWS) -> None:
    # AWS: "If you describe an instance right after launching it, you may get InvalidInstanceID.NotFound ...
    # this does not mean the instance does not exist."
    ec2: EC2Client = lagging.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    instance_id = run_instance(ec2, subnet_id)

    with pytest.raises(ClientError) as excinfo:
        ec2.describe_instances(InstanceIds=[instance_id])
    listed = ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": [instance_id]}])["Reservations"]
    lagging.clock.advance(5)
    later = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]

    assert error_code(excinfo) == "InvalidInstanceID.NotFound"
    assert listed == []
    assert later[0]["Instances"][0]["InstanceId"] == instance_id


def test_given_no_visibility_lag_when_described_at_once_then_found() -> None:
    with local(QUIET) as aws:
        ec2: EC2Client = aws.client("ec2", config=NO_RETRIES)
        eni_id = ec2.create_network_interface(SubnetId=subnet(ec2))["NetworkInterface"]["NetworkInterfaceId"]

        found = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"]

    assert len(found) == 1


# --- asynchronous attach and detach ---------------------------------------------------------------------------


@pytest.fixture
def slow_attachments() -> Iterator[LocalAWS]:
    with local(replace(QUIET, attach_seconds=(2.0, 2.0), detach_seconds=(6.0, 6.0))) as aws:
        yield aws


def attachment(ec2: EC2Client, eni_id: str) -> dict[str, Any]:
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return {"eni": eni["Status"], "attachment": eni.get("Attachment", {}).get("Status")}


def test_given_an_attach_when_described_at_once_then_attaching_and_later_attached(slow_attachments: LocalAWS) -> None:
    # AWS: NetworkInterfaceAttachment.Status attaching | attached | detaching | detached; attaching takes time.
    ec2: EC2Client = slow_attachments.client("ec2")
    subnet_id = subnet(ec2)
    instance_id = run_instance(ec2, subnet_id)
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    attachment_id = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)[
        "AttachmentId"
    ]

    at_once = attachment(ec2, eni_id)
    # ipamd sets DeleteOnTermination right after its attach: accepted while attaching
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni_id, Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True}
    )
    slow_attachments.clock.advance(2)

    assert at_once == {"eni": "attaching", "attachment": "attaching"}
    assert attachment(ec2, eni_id) == {"eni": "in-use", "attachment": "attached"}


def test_given_a_detach_when_deleting_at_once_then_in_use_and_after_detaching_available(
    slow_attachments: LocalAWS,
) -> None:
    # AWS: DetachNetworkInterface is asynchronous; deleting a 'detaching' ENI is InvalidNetworkInterface.InUse.
    ec2: EC2Client = slow_attachments.client("ec2", config=NO_RETRIES)
    subnet_id = subnet(ec2)
    instance_id = run_instance(ec2, subnet_id)
    eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    attachment_id = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)[
        "AttachmentId"
    ]
    slow_attachments.clock.advance(2)

    ec2.detach_network_interface(AttachmentId=attachment_id)
    detaching = attachment(ec2, eni_id)
    with pytest.raises(ClientError) as excinfo:
        ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    slow_attachments.clock.advance(6)
    detached = attachment(ec2, eni_id)
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)

    assert detaching == {"eni": "detaching", "attachment": "detaching"}
    assert error_code(excinfo) == "InvalidNetworkInterface.InUse"
    assert detached == {"eni": "available", "attachment": None}


def test_given_instant_attachments_when_attached_then_attached_at_once() -> None:
    with local(QUIET) as aws:
        ec2: EC2Client = aws.client("ec2")
        subnet_id = subnet(ec2)
        instance_id = run_instance(ec2, subnet_id)
        eni_id = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=instance_id, DeviceIndex=1)

        assert attachment(ec2, eni_id) == {"eni": "in-use", "attachment": "attached"}


# --- another account's ENIs in a shared subnet ---------------------------------------------------------------


def test_given_another_accounts_eni_in_a_shared_subnet_when_we_describe_then_it_is_unseen_but_its_address_taken() -> (
    None
):
    # AWS RAM subnet sharing: participants see only their own ENIs; the addresses are taken all the same.
    with local(QUIET) as aws:
        ec2: EC2Client = aws.client("ec2", config=NO_RETRIES)
        subnet_id = subnet(ec2)
        (foreign,) = aws.occupy_as_other_account(subnet_id, ["10.0.1.4"])

        listed = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])
        with pytest.raises(ClientError) as by_id:
            ec2.describe_network_interfaces(NetworkInterfaceIds=[foreign])
        with pytest.raises(ClientError) as create:
            ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.0.1.4")

    assert listed["NetworkInterfaces"] == []
    assert error_code(by_id) == "InvalidNetworkInterfaceID.NotFound"
    assert error_code(create) == "InvalidIPAddress.InUse"


# --- strict parameters (botocore's model) ---------------------------------------------------------------------


def test_given_validation_when_describe_warm_pool_asks_for_100_records_then_validation_error() -> None:
    # AWS: DescribeWarmPool MaxRecords "The maximum value is 50" (botocore's model, documentation text).
    with local(QUIET) as aws:
        autoscaling: AutoScalingClient = aws.client("autoscaling", config=NO_RETRIES)
        with pytest.raises(ClientError) as excinfo:
            autoscaling.describe_warm_pool(AutoScalingGroupName="any", MaxRecords=100)

    assert error_code(excinfo) == "ValidationError"
    assert "50" in excinfo.value.response["Error"]["Message"]


def test_given_validation_off_when_describe_auto_scaling_instances_asks_for_100_records_then_moto_accepts_it() -> None:
    # The same class of mistake (MaxRecords: "The maximum value is 50"): plain moto lets it through.
    with local(Realism.ideal()) as aws:
        plain: AutoScalingClient = aws.client("autoscaling", config=NO_RETRIES)
        plain.describe_auto_scaling_instances(MaxRecords=100)
    with local(QUIET) as aws:
        strict: AutoScalingClient = aws.client("autoscaling", config=NO_RETRIES)
        with pytest.raises(ClientError) as excinfo:
            strict.describe_auto_scaling_instances(MaxRecords=100)

    assert error_code(excinfo) == "ValidationError"


def test_given_validation_when_describe_instances_has_201_filter_values_then_filter_limit_exceeded() -> None:
    # AWS: DescribeInstances takes at most 200 filter values per call (FilterLimitExceeded).
    with local(QUIET) as aws:
        ec2: EC2Client = aws.client("ec2", config=NO_RETRIES)
        ids = [f"i-{n:017x}" for n in range(201)]
        with pytest.raises(ClientError) as excinfo:
            ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids}])
        ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids[:200]}])

    assert error_code(excinfo) == "FilterLimitExceeded"


# --- each node's VPC CNI --------------------------------------------------------------------------------------


def group_with_one_node(aws: LocalAWS) -> str:
    ec2: EC2Client = aws.client("ec2")
    autoscaling: AutoScalingClient = aws.client("autoscaling")
    subnet_id = subnet(ec2)
    ec2.create_launch_template(
        LaunchTemplateName="nodes", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.xlarge"}
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="nodes",
        LaunchTemplate={"LaunchTemplateName": "nodes", "Version": "$Latest"},
        MinSize=0,
        MaxSize=5,
        DesiredCapacity=1,
        VPCZoneIdentifier=subnet_id,
    )
    (instance,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["nodes"])["AutoScalingGroups"][0][
        "Instances"
    ]
    return instance["InstanceId"]


def test_given_a_new_node_when_its_vpc_cni_starts_then_it_attaches_its_own_eni_at_the_lowest_free_index() -> None:
    # amazon-vpc-cni-k8s ipamd: create, attach at the lowest free device index on card 0, DeleteOnTermination.
    with local(replace(QUIET, throttling=Throttling(), vpc_cni_delay=(30.0, 30.0))) as aws:
        instance_id = group_with_one_node(aws)
        ec2: EC2Client = aws.client("ec2")
        before = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
        aws.clock.advance(31)
        after = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
        assert aws.buckets is not None
        taken = dict(aws.buckets.taken)

    assert [e["Attachment"]["DeviceIndex"] for e in before["NetworkInterfaces"]] == [0]
    cni = [e for e in after["NetworkInterfaces"] if e["Attachment"]["DeviceIndex"] == 1]
    assert len(cni) == 1
    assert cni[0]["Attachment"]["DeleteOnTermination"] is True
    assert [(s.operation, s.outcome) for s in aws.vpc_cni.steps] == [
        ("CreateNetworkInterface", "ok"),
        ("AttachNetworkInterface", "ok"),
        ("ModifyNetworkInterfaceAttribute", "ok"),
    ]
    # its calls came out of the account's buckets, ours
    assert taken[("ec2", "CreateNetworkInterface")] == 1
    assert taken[("ec2", "AttachNetworkInterface")] == 1


def test_given_the_vpc_cni_off_when_time_passes_then_the_node_keeps_only_its_primary_interface() -> None:
    with local(QUIET) as aws:
        instance_id = group_with_one_node(aws)
        aws.clock.advance(300)
        ec2: EC2Client = aws.client("ec2")
        enis = ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])

    assert len(enis["NetworkInterfaces"]) == 1
    assert aws.vpc_cni.steps == []


# --- concurrent callers on the clock --------------------------------------------------------------------------


def run_race(seed: int) -> tuple[list[str], float]:
    with local(Realism(vpc_cni_delay=None), seed=seed) as aws:
        ec2: EC2Client = aws.client("ec2")
        subnet_id = subnet(ec2)
        aws.clock.advance(10)
        start = aws.clock.now()
        aws.clear_calls()

        def claim(n: int) -> str:
            client: EC2Client = aws.client("ec2")
            for _ in range(3):
                describe_filtered(client, subnet_id)
            return client.create_network_interface(SubnetId=subnet_id, Description=str(n))["NetworkInterface"][
                "NetworkInterfaceId"
            ]

        outcomes = aws.run_concurrently([lambda n=n: claim(n) for n in range(20)])  # type: ignore[misc]
        order = [f"{c.thread}:{c.operation}" for c in aws.calls]
        took = (max(o.finished_at for o in outcomes if o.finished_at) - start).total_seconds()
        assert all(o.error is None for o in outcomes)
        return order, took


def test_given_the_same_seed_when_a_race_of_20_callers_runs_twice_then_the_interleaving_is_identical() -> None:
    first, took = run_race(seed=7)
    second, _ = run_race(seed=7)

    assert first == second
    assert len({entry.split(":")[0] for entry in first}) == 20  # they did run as 20 callers
    assert took < 5  # concurrent: far less than 20 x 4 calls x latency in sequence


def test_given_concurrent_callers_when_one_sleeps_then_the_others_run_meanwhile_and_time_jumps() -> None:
    with local(QUIET) as aws:
        log: list[tuple[str, float]] = []

        def sleeper() -> str:
            aws.clock.sleep(10)
            log.append(("sleeper", (aws.clock.now() - START).total_seconds()))
            return "slept"

        def worker() -> str:
            aws.clock.sleep(1)
            log.append(("worker", (aws.clock.now() - START).total_seconds()))
            raise ValueError("boom")

        outcomes = aws.run_concurrently([sleeper, worker])

    assert log == [("worker", 1.0), ("sleeper", 10.0)]
    assert outcomes[0].get() == "slept"
    assert isinstance(outcomes[1].error, ValueError)
    assert aws.clock.now() - START == timedelta(seconds=10)


def test_given_a_scheduled_callback_that_fails_when_tasks_run_then_every_task_still_runs_and_the_error_is_raised() -> (
    None
):
    # A failing timer (say a VPC CNI actor in a full subnet) must not strand the task that happened to hand on.
    with local(QUIET) as aws:
        ran: list[str] = []

        def boom() -> None:
            raise ValueError("timer failed")

        def task(name: str, wait: float) -> str:
            aws.clock.sleep(wait)
            ran.append(name)
            return name

        aws.clock.call_later(1.0, boom)
        with pytest.raises(RuntimeError, match="scheduled callback") as raised:
            aws.run_concurrently([lambda: task("a", 1.0), lambda: task("b", 1.2)])

    assert sorted(ran) == ["a", "b"]
    assert isinstance(raised.value.__cause__, ValueError)


def test_given_a_retry_that_a_needs_retry_handler_refuses_when_throttled_then_no_backoff_is_waited() -> None:
    # botocore asks every needs-retry handler; the delay the standard handler draws is waited only when botocore
    # really retries (endpoint sleep), never for a retry another handler refused.
    with local(replace(QUIET, throttling=Throttling(), retry_delays=True)) as aws:
        ec2: EC2Client = aws.client("ec2", config=Config(retries={"mode": "standard", "total_max_attempts": 5}))
        ec2.meta.events.register_first("needs-retry.ec2", lambda **_: False)  # type: ignore[arg-type]  # botocore reads the answer
        subnet_id = subnet(ec2)
        for _ in range(100):
            describe_filtered(ec2, subnet_id)
        before = aws.clock.now()
        with pytest.raises(ClientError):
            describe_filtered(ec2, subnet_id)

        assert aws.clock.now() == before
        assert aws.skipped_retry_delays == []
