"""Init mode end to end: real network namespace, local AWS, local IMDSv2, the CLI entry point in-process."""

from __future__ import annotations

import pytest

from localaws.imds import LocalImds
from tests.pod.conftest import LogStream, PodNetns, World, ip, manager_env, run_init

RANDOM_MAC = "02:42:ac:11:00:02"


def test_given_two_multus_interfaces_on_two_enis_when_init_runs_then_ipv4_and_ipv6_are_assigned_and_exit_0(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.add_address("net1", f"{world.v6(0x200)}/64")
    pod_netns.add_multus("net2", world.mac_b)
    pod_netns.add_address("net2", "10.0.5.200/24")

    finished = run_init(manager_env(world, imds, pod_netns, PIM_INTERFACES="net1,net2"))

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", world.v6(0x200)}
    assert world.secondary_ips(world.eni_b) == {"10.0.5.200"}
    assert world.secondary_ips(world.primary_eni) == set()
    assigned = [r for r in finished.log.records() if r["message"] == "assigned"]
    assert {(r["address"], r["eni"], r["matched_by"]) for r in assigned} == {
        ("10.0.4.200", world.eni_a, "mac"),
        (world.v6(0x200), world.eni_a, "mac"),
        ("10.0.5.200", world.eni_b, "mac"),
    }


def test_given_addresses_already_assigned_when_init_runs_again_then_no_assign_call_is_made(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    env = manager_env(world, imds, pod_netns)
    assert run_init(env).exit_code == 0
    world.aws.clear_calls()

    assert run_init(env).exit_code == 0
    assert world.aws.calls_to("ec2", "AssignPrivateIpAddresses") == []


def test_given_an_interface_mac_that_is_no_eni_when_init_runs_then_the_subnet_containing_the_address_decides(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", RANDOM_MAC)
    pod_netns.add_address("net1", "10.0.5.201/26")  # a longer prefix than the subnet's /24: containment, not text

    finished = run_init(manager_env(world, imds, pod_netns))

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_b) == {"10.0.5.201"}
    assert next(r for r in finished.log.records() if r["message"] == "assigned")["matched_by"] == "subnet"


def test_given_multus_attaches_late_within_the_bound_when_init_waits_then_it_assigns_and_exits_0(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    def multus_attaches(log: LogStream) -> None:
        log.wait_for(lambda r: r["message"] == "waiting for Multus interfaces")
        pod_netns.add_multus("net1", world.mac_a)
        pod_netns.add_address("net1", "10.0.4.202/24")

    finished = run_init(
        manager_env(world, imds, pod_netns, PIM_INTERFACES="net1", PIM_WAIT_SECONDS="10"), during=multus_attaches
    )

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.202"}


def test_given_multus_never_attaches_an_expected_interface_when_the_bound_passes_then_exit_3_names_it(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")

    finished = run_init(manager_env(world, imds, pod_netns, PIM_INTERFACES="net1,net2", PIM_WAIT_SECONDS="0.3"))

    assert finished.exit_code == 3
    assert "interface net2 does not exist" in finished.error()["message"]
    assert world.secondary_ips(world.eni_a) == set()  # nothing assigned on partial readiness


def test_given_ec2_refuses_the_assignment_when_init_runs_then_exit_5_with_the_aws_error(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="UnauthorizedOperation", status=403)

    finished = run_init(manager_env(world, imds, pod_netns))

    assert finished.exit_code == 5
    assert "AssignPrivateIpAddresses failed: UnauthorizedOperation" in finished.error()["message"]


def test_given_ipv4_succeeds_but_ipv6_fails_when_init_runs_then_it_does_not_exit_0(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.add_address("net1", f"{world.v6(0x201)}/64")
    world.aws.faults.fail("ec2", "AssignIpv6Addresses", code="InternalError", status=500)

    finished = run_init(manager_env(world, imds, pod_netns))

    assert finished.exit_code == 5
    assert "AssignIpv6Addresses" in finished.error()["message"]


def test_given_throttling_within_the_retry_bound_when_init_runs_then_it_retries_and_succeeds(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="RequestLimitExceeded", status=503, times=2)

    finished = run_init(manager_env(world, imds, pod_netns, PIM_MAX_ATTEMPTS="3"))

    assert finished.exit_code == 0
    assert [c.outcome for c in world.aws.calls_to("ec2", "AssignPrivateIpAddresses")] == [
        "RequestLimitExceeded",
        "RequestLimitExceeded",
        "ok",
    ]


def test_given_throttling_beyond_the_retry_bound_when_init_runs_then_exit_5(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="RequestLimitExceeded", status=503, times=5)

    finished = run_init(manager_env(world, imds, pod_netns, PIM_MAX_ATTEMPTS="2"))

    assert finished.exit_code == 5
    assert len(world.aws.calls_to("ec2", "AssignPrivateIpAddresses")) == 2
    assert finished.error()["error"] == "Throttled"


def test_given_an_address_only_the_primary_subnet_contains_when_init_runs_then_exit_4_and_nothing_is_touched(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", RANDOM_MAC)
    pod_netns.add_address("net1", "10.0.0.200/24")

    finished = run_init(manager_env(world, imds, pod_netns))

    assert finished.exit_code == 4
    assert "primary" in finished.error()["message"]
    assert world.aws.calls_to("ec2", "AssignPrivateIpAddresses") == []


def test_given_imds_never_shows_the_assignment_when_the_confirm_bound_passes_then_exit_7(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")

    with imds.stale():
        finished = run_init(manager_env(world, imds, pod_netns, PIM_CONFIRM_SECONDS="0.3"))

    assert finished.exit_code == 7
    assert "10.0.4.200 on" in finished.error()["message"]


def test_given_an_ipv4_held_by_another_nodes_eni_when_init_runs_then_it_is_moved_with_reassignment(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.other_eni, PrivateIpAddresses=["10.0.4.240"])
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.240/24")

    assert run_init(manager_env(world, imds, pod_netns)).exit_code == 0

    assert world.secondary_ips(world.eni_a) == {"10.0.4.240"}
    assert world.secondary_ips(world.other_eni) == set()
    assert world.aws.calls_to("ec2", "AssignPrivateIpAddresses")[-1].params["AllowReassignment"] == "true"


def test_given_an_ipv6_held_by_another_nodes_eni_when_init_runs_then_it_is_unassigned_there_then_assigned_here(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    address = world.v6(0x240)
    world.ec2.assign_ipv6_addresses(NetworkInterfaceId=world.other_eni, Ipv6Addresses=[address])
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", f"{address}/64")

    assert run_init(manager_env(world, imds, pod_netns)).exit_code == 0

    assert world.secondary_ips(world.eni_a) == {address}
    assert world.secondary_ips(world.other_eni) == set()


def test_given_a_bad_variable_when_the_cli_starts_then_exit_2_and_a_json_error_names_it(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    finished = run_init(manager_env(world, imds, pod_netns, PIM_WAIT_SECONDS="forever"))

    assert finished.exit_code == 2
    assert finished.error()["message"].startswith("PIM_WAIT_SECONDS: 'forever'")


def _dual_stack_with_real_dad(world: World, pod_netns: PodNetns, address: str, *, dad_transmits: int) -> None:
    """net1 up (its veth uplink is up at both ends, so DAD really runs), IPv4 ready at once, IPv6 tentative
    until ``dad_transmits`` neighbour solicitations, 100 ms apart, went unanswered (no ``nodad`` here)."""
    pod_netns.add_multus("net1", world.mac_a)
    sysctl = ["netns", "exec", pod_netns.name, "sysctl", "-q", "-w"]
    ip(*sysctl, "net.ipv6.conf.net1.accept_dad=1")
    ip(*sysctl, f"net.ipv6.conf.net1.dad_transmits={dad_transmits}")
    ip(*sysctl, "net.ipv6.neigh.net1.retrans_time_ms=100")
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.run("addr", "add", f"{address}/64", "dev", "net1")


def test_given_ipv6_still_in_dad_when_init_starts_then_it_waits_and_assigns_both_families(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    # ~4 s of DAD: long enough that init meets the address still tentative even when the machine is busy (0.3 s
    # was not, under CI's load), well within PIM_WAIT_SECONDS.
    _dual_stack_with_real_dad(world, pod_netns, world.v6(0x210), dad_transmits=40)

    finished = run_init(manager_env(world, imds, pod_netns, PIM_INTERFACES="net1", PIM_WAIT_SECONDS="20"))

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", world.v6(0x210)}
    assert any("tentative" in " ".join(r.get("missing", [])) for r in finished.log.records())


def test_given_ipv6_still_in_dad_when_the_bound_passes_then_exit_3_names_the_interface_and_the_tentative_address(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _dual_stack_with_real_dad(world, pod_netns, world.v6(0x211), dad_transmits=200)  # ~20 s of DAD

    finished = run_init(manager_env(world, imds, pod_netns, PIM_WAIT_SECONDS="0.3"))

    assert finished.exit_code == 3
    message = finished.error()["message"]
    assert "interface net1 has tentative address(es)" in message
    assert world.v6(0x211) in message
    assert world.secondary_ips(world.eni_a) == set()  # not even the IPv4: nothing on partial readiness


def _protected_holder(world: World, *, primary: bool) -> str:
    """An ENI in the Multus subnet 10.0.4.0/24 we must never take from: a (third) instance's primary ENI, or an
    untagged secondary ENI (what the VPC CNI attaches for its pods)."""
    created = world.ec2.run_instances(
        ImageId="ami-12c6146b", InstanceType="m5.large", MinCount=1, MaxCount=1, SubnetId=world.subnet_a
    )["Instances"][0]
    world.aws.clock.advance(60)  # a node that has been up a while: EC2 lists it everywhere
    if primary:
        return str(created["NetworkInterfaces"][0]["NetworkInterfaceId"])
    eni = world.ec2.create_network_interface(SubnetId=world.subnet_a)["NetworkInterface"]["NetworkInterfaceId"]
    world.aws.clock.advance(60)
    world.ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=created["InstanceId"], DeviceIndex=1)
    return str(eni)


@pytest.mark.parametrize("primary", [True, False], ids=["primary-eni", "untagged-eni"])
@pytest.mark.parametrize("family", [4, 6])
def test_given_an_address_held_by_a_primary_or_untagged_eni_when_init_runs_then_exit_8_and_nothing_moves(
    world: World, imds: LocalImds, pod_netns: PodNetns, primary: bool, family: int
) -> None:
    reason = "primary ENI (device index 0)" if primary else "not tagged node.k8s.amazonaws.com/no_manage=true"
    holder = _protected_holder(world, primary=primary)
    address = "10.0.4.77" if family == 4 else world.v6(0x77)
    if family == 4:
        world.ec2.assign_private_ip_addresses(NetworkInterfaceId=holder, PrivateIpAddresses=[address])
    else:
        world.ec2.assign_ipv6_addresses(NetworkInterfaceId=holder, Ipv6Addresses=[address])
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", f"{address}/{24 if family == 4 else 64}")
    world.aws.clear_calls()

    finished = run_init(manager_env(world, imds, pod_netns))

    assert finished.exit_code == 8
    message = finished.error()["message"]
    assert f"{address} is held by {holder}" in message
    assert reason in message
    assert address in world.secondary_ips(holder)
    assert [c.operation for c in world.aws.calls if c.operation.startswith(("Assign", "Unassign"))] == []


def test_given_pim_interfaces_when_an_unrelated_interface_has_an_address_then_it_is_left_alone(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")
    pod_netns.add_multus("mon0", RANDOM_MAC)  # say, a monitoring link no ENI can carry
    pod_netns.add_address("mon0", "172.31.9.9/24")

    finished = run_init(manager_env(world, imds, pod_netns, PIM_INTERFACES="net1"))

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}
    assert all("mon0" not in str(r) for r in finished.log.records() if r["message"] == "assigned")
