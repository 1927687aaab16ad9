"""``PIM_ENI_LOOKUP=ec2`` end to end: no IMDS at all (its endpoint refuses every connection, so any request would
fail the run with exit 6); the ENI found by the interface's MAC through DescribeNetworkInterfaces on the local
EC2, the assignment confirmed by reading the ENI again from EC2."""

from __future__ import annotations

import pytest

from tests.pod.conftest import REGION, LogStream, PodNetns, World, run_init, run_sidecar, wait_until

RANDOM_MAC = "02:42:ac:11:00:02"
#: Nothing listens there: a single IMDS request would end the run with exit 6.
NO_IMDS = "http://127.0.0.1:9"


def ec2_env(netns: PodNetns, **overrides: str) -> dict[str, str]:
    env = {
        "PIM_ENI_LOOKUP": "ec2",
        "AWS_REGION": REGION,
        "PIM_IMDS_ENDPOINT": NO_IMDS,
        "PIM_NETNS": netns.name,
        "PIM_WAIT_SECONDS": "5",
        "PIM_CONFIRM_SECONDS": "2",
        "PIM_RETRY_BASE_SECONDS": "0.001",
        "PIM_RETRY_MAX_SECONDS": "0.002",
        "PIM_LOG_LEVEL": "DEBUG",
    }
    env.update(overrides)
    return env


def _filters(world: World) -> list[tuple[str, str]]:
    """(filter name, first value) of every DescribeNetworkInterfaces call made so far."""
    found = []
    for call in world.aws.calls_to("ec2", "DescribeNetworkInterfaces"):
        name = call.params.get("Filter.1.Name")
        if name:
            found.append((str(name), str(call.params.get("Filter.1.Value.1"))))
    return found


def _mac_of(world: World, eni_id: str) -> str:
    eni = world.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return str(eni["MacAddress"]).lower()


def test_given_ec2_lookup_when_init_runs_then_the_enis_are_found_by_mac_and_both_families_assigned_without_imds(
    world: World, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.add_address("net1", f"{world.v6(0x200)}/64")
    pod_netns.add_multus("net2", world.mac_b)
    pod_netns.add_address("net2", "10.0.5.200/24")
    world.aws.clear_calls()

    finished = run_init(ec2_env(pod_netns, PIM_INTERFACES="net1,net2"))

    assert finished.exit_code == 0, finished.messages()
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", world.v6(0x200)}
    assert world.secondary_ips(world.eni_b) == {"10.0.5.200"}
    assigned = {(r["address"], r["eni"], r["matched_by"]) for r in finished.log.records() if r["message"] == "assigned"}
    assert assigned == {
        ("10.0.4.200", world.eni_a, "mac"),
        (world.v6(0x200), world.eni_a, "mac"),
        ("10.0.5.200", world.eni_b, "mac"),
    }
    filters = _filters(world)
    assert filters[0][0] == "mac-address"
    last_assign = max(c.seq for c in world.aws.calls if c.operation.startswith("Assign"))
    confirmations = [
        c
        for c in world.aws.calls_to("ec2", "DescribeNetworkInterfaces")
        if c.seq > last_assign and c.params.get("Filter.1.Name") == "attachment.instance-id"
    ]
    assert confirmations, "the confirmation reads the instance's ENIs from EC2 again, after the assignments"
    assert world.aws.calls_to("ec2", "DescribeSubnets")
    starting = next(r for r in finished.log.records() if r["message"] == "starting")
    assert starting["eni_lookup"] == "ec2"


def test_given_ec2_lookup_when_no_eni_has_the_interface_mac_then_exit_4_and_nothing_is_assigned(
    world: World, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", RANDOM_MAC)  # say, a macvlan link: its own MAC, no ENI's
    pod_netns.add_address("net1", "10.0.5.201/24")
    world.aws.clear_calls()

    finished = run_init(ec2_env(pod_netns))

    assert finished.exit_code == 4
    warning = next(r for r in finished.log.records() if r["level"] == "WARNING")
    assert warning["macs"] == [RANDOM_MAC]
    assert "10.0.5.201 on net1" in finished.error()["message"]
    assert [c.operation for c in world.aws.calls if c.operation.startswith(("Assign", "Unassign"))] == []


def test_given_ec2_lookup_when_the_interface_has_the_primary_enis_mac_then_exit_4_and_the_primary_is_untouched(
    world: World, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", _mac_of(world, world.primary_eni))
    pod_netns.add_address("net1", "10.0.0.200/24")
    world.aws.clear_calls()

    finished = run_init(ec2_env(pod_netns))

    assert finished.exit_code == 4
    assert "its MAC is the primary ENI's" in finished.error()["message"]
    assert world.secondary_ips(world.primary_eni) == set()
    assert [c.operation for c in world.aws.calls if c.operation.startswith(("Assign", "Unassign"))] == []


def test_given_ec2_lookup_when_the_interface_has_a_vpc_cni_enis_mac_then_exit_4_since_it_is_not_tagged_no_manage(
    world: World, pod_netns: PodNetns
) -> None:
    # What the VPC CNI attaches for its pods: no no_manage tag (IMDS cannot show tags; EC2 does), on a node of
    # its own (the worker's m5.large has no ENI slot left).
    node = world.ec2.run_instances(
        ImageId="ami-12c6146b", InstanceType="m5.large", MinCount=1, MaxCount=1, SubnetId=world.subnet_a
    )["Instances"][0]["InstanceId"]
    vpc_cni_eni = world.ec2.create_network_interface(SubnetId=world.subnet_a)["NetworkInterface"]["NetworkInterfaceId"]
    world.aws.clock.advance(60)
    world.ec2.attach_network_interface(NetworkInterfaceId=vpc_cni_eni, InstanceId=node, DeviceIndex=1)
    world.aws.clock.advance(60)
    pod_netns.add_multus("net1", _mac_of(world, vpc_cni_eni))
    pod_netns.add_address("net1", "10.0.4.210/24")
    world.aws.clear_calls()

    finished = run_init(ec2_env(pod_netns))

    assert finished.exit_code == 4
    message = finished.error()["message"]
    assert f"its MAC is {vpc_cni_eni}'s, not tagged node.k8s.amazonaws.com/no_manage=true" in message
    assert world.secondary_ips(vpc_cni_eni) == set()
    assert [c.operation for c in world.aws.calls if c.operation.startswith(("Assign", "Unassign"))] == []


@pytest.mark.parametrize("region_variable", ["AWS_REGION", "PIM_REGION", "AWS_DEFAULT_REGION"])
def test_given_ec2_lookup_when_the_region_comes_from_any_region_variable_then_it_is_used(
    world: World, pod_netns: PodNetns, region_variable: str
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    env = ec2_env(pod_netns)
    del env["AWS_REGION"]
    env[region_variable] = REGION

    finished = run_init(env)

    assert finished.exit_code == 0, finished.messages()
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}


def test_given_ec2_lookup_without_a_region_when_the_cli_starts_then_exit_2_names_the_setting_and_aws_region(
    world: World, pod_netns: PodNetns
) -> None:
    env = ec2_env(pod_netns)
    del env["AWS_REGION"]

    finished = run_init(env)

    assert finished.exit_code == 2
    message = finished.error()["message"]
    assert message.startswith("PIM_ENI_LOOKUP: is ec2")
    assert "AWS_REGION" in message


def test_given_ec2_lookup_when_the_sidecar_follows_an_added_address_then_it_is_assigned_and_released_on_sigterm(
    world: World, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")

    def add_address(log: LogStream) -> None:
        pod_netns.add_address("net1", "10.0.4.201/32")
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.201")
        wait_until(lambda: world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201"}, what="both assigned")

    finished = run_sidecar(ec2_env(pod_netns), add_address)

    assert finished.exit_code == 0, finished.messages()
    assert world.secondary_ips(world.eni_a) == set()  # released: PIM_RELEASE_ON_EXIT defaults to true
