"""Sidecar mode end to end: it follows netlink notifications and a real SIGTERM ends it."""

from __future__ import annotations

from pathlib import Path

from localaws.imds import LocalImds
from tests.pod.conftest import LogStream, PodNetns, World, manager_env, run_init, run_sidecar, wait_until


def _pod_with_net1(world: World, pod_netns: PodNetns) -> None:
    pod_netns.add_multus("net1", world.mac_a)
    pod_netns.add_address("net1", "10.0.4.200/24")


def test_given_a_running_sidecar_when_an_address_is_added_then_it_is_assigned_to_the_eni(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)

    def add_address(log: LogStream) -> None:
        pod_netns.add_address("net1", "10.0.4.201/32")
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.201")
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201"}

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_RELEASE_ON_EXIT="false"), add_address)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201"}  # kept: release disabled


def test_given_a_floating_ip_on_another_nodes_eni_when_it_moves_to_this_pod_then_it_is_reassigned_here(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.other_eni, PrivateIpAddresses=["10.0.4.250"])

    def vip_moves_here(log: LogStream) -> None:
        pod_netns.add_address("net1", "10.0.4.250/32")  # keepalived takes over the VIP
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.250")
        assert "10.0.4.250" in world.secondary_ips(world.eni_a)
        assert world.secondary_ips(world.other_eni) == set()

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_RELEASE_ON_EXIT="false"), vip_moves_here)

    assert finished.exit_code == 0
    moved = next(r for r in finished.log.records() if r["message"] == "moving address from another ENI")
    assert (moved["from_eni"], moved["to_eni"]) == (world.other_eni, world.eni_a)


def test_given_an_assigned_address_when_it_is_removed_from_the_pod_then_it_is_unassigned_from_the_eni(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", "10.0.4.202/32")

    def remove_address(_log: LogStream) -> None:
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.202"}
        pod_netns.del_address("net1", "10.0.4.202/32")
        wait_until(lambda: world.secondary_ips(world.eni_a) == {"10.0.4.200"}, what="10.0.4.202 unassigned")

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_RELEASE_ON_EXIT="false"), remove_address)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}


def test_given_a_floating_ip_taken_over_by_another_node_when_it_leaves_this_pod_then_the_other_eni_keeps_it(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", "10.0.4.251/32")

    def other_node_takes_over(log: LogStream) -> None:
        world.ec2.assign_private_ip_addresses(
            NetworkInterfaceId=world.other_eni, PrivateIpAddresses=["10.0.4.251"], AllowReassignment=True
        )
        pod_netns.del_address("net1", "10.0.4.251/32")
        log.wait_for(lambda r: "nothing to unassign" in r["message"])

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_RELEASE_ON_EXIT="false"), other_node_takes_over)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.other_eni) == {"10.0.4.251"}
    assert world.aws.calls_to("ec2", "UnassignPrivateIpAddresses") == []


def test_given_an_ipv6_on_another_nodes_eni_when_it_moves_to_this_pod_then_it_is_unassigned_there_and_assigned_here(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    address = world.v6(0x250)
    world.ec2.assign_ipv6_addresses(NetworkInterfaceId=world.other_eni, Ipv6Addresses=[address])

    def ipv6_moves_here(log: LogStream) -> None:
        pod_netns.add_address("net1", f"{address}/128")
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == address)

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_RELEASE_ON_EXIT="false"), ipv6_moves_here)

    assert finished.exit_code == 0
    assert address in world.secondary_ips(world.eni_a)
    assert world.secondary_ips(world.other_eni) == set()
    operations = [c.operation for c in world.aws.calls if c.operation.endswith("Ipv6Addresses")]
    assert operations[-2:] == ["UnassignIpv6Addresses", "AssignIpv6Addresses"]


def test_given_a_running_sidecar_when_sigterm_arrives_then_what_this_pod_assigned_is_released_and_it_exits_0(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", f"{world.v6(0x260)}/64")
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.eni_a, PrivateIpAddresses=["10.0.4.99"])

    def add_then_terminate(log: LogStream) -> None:
        pod_netns.add_address("net1", "10.0.4.203/32")
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.203")

    finished = run_sidecar(manager_env(world, imds, pod_netns), add_then_terminate)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.99"}  # not ours: left alone
    assert "stopping: releasing what this pod assigned" in finished.messages()


def test_given_ec2_fails_while_following_when_an_address_is_added_then_the_sidecar_exits_non_zero(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)

    def add_with_ec2_down(log: LogStream) -> None:
        world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="UnauthorizedOperation", status=403)
        pod_netns.add_address("net1", "10.0.4.204/32")
        log.wait_for(lambda r: r["level"] == "ERROR")  # before the driver's SIGTERM (see above)

    finished = run_sidecar(manager_env(world, imds, pod_netns), add_with_ec2_down)

    assert finished.exit_code == 5
    assert "UnauthorizedOperation" in finished.error()["message"]


def test_given_a_floating_ip_moved_to_another_pod_on_the_same_node_when_it_leaves_this_pod_then_the_eni_keeps_it(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    """Both pods' ipvlan links share this node's ENI: the new holder needs the VIP on that very ENI, so the old
    holder's sidecar must not unassign it (neither when it leaves the pod nor on release at SIGTERM)."""
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", "10.0.4.250/32")

    def vip_moves_to_a_pod_on_the_same_node(log: LogStream) -> None:
        assert "10.0.4.250" in world.secondary_ips(world.eni_a)
        # keepalived in the other pod (same node, same ENI) took the VIP; it still needs it on eni_a
        pod_netns.del_address("net1", "10.0.4.250/32")
        log.wait_for(lambda r: r["message"].startswith("floating IP left on the ENI"))
        assert "10.0.4.250" in world.secondary_ips(world.eni_a)

    finished = run_sidecar(
        manager_env(world, imds, pod_netns, PIM_FLOATING_IPS="10.0.4.250"), vip_moves_to_a_pod_on_the_same_node
    )

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.250"}  # 10.0.4.200 released, the VIP kept
    assert all("10.0.4.250" not in str(c.params) for c in world.aws.calls_to("ec2", "UnassignPrivateIpAddresses"))


def test_given_a_floating_ip_held_at_sigterm_when_releasing_then_it_stays_on_the_eni(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", "10.0.4.250/32")

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_FLOATING_IPS="10.0.4.250"), lambda _log: None)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.250"}


def test_given_a_ready_file_path_when_the_first_assignment_is_confirmed_then_the_file_appears(
    world: World, imds: LocalImds, pod_netns: PodNetns, tmp_path: Path
) -> None:
    _pod_with_net1(world, pod_netns)
    ready = tmp_path / "ready"
    ready.write_text("stale from the previous container\n")
    seen: list[bool] = []

    def check(_log: LogStream) -> None:
        seen.append(ready.is_file() and ready.read_text() == "ready\n")

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_READY_FILE=str(ready)), check)

    assert finished.exit_code == 0
    assert seen == [True]


def test_given_a_stale_ready_file_when_the_interfaces_never_come_then_it_is_removed(
    world: World, imds: LocalImds, pod_netns: PodNetns, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    ready.write_text("ready\n")

    finished = run_init(manager_env(world, imds, pod_netns, PIM_READY_FILE=str(ready), PIM_WAIT_SECONDS="0.2"))

    assert finished.exit_code == 3
    assert not ready.exists()


def test_given_the_unassign_not_yet_applied_when_the_ipv6_assign_says_in_use_then_it_is_retried_and_succeeds(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    address = world.v6(0x270)
    world.ec2.assign_ipv6_addresses(NetworkInterfaceId=world.other_eni, Ipv6Addresses=[address])

    def ipv6_moves_here(log: LogStream) -> None:
        world.aws.faults.fail("ec2", "AssignIpv6Addresses", code="InvalidIPAddress.InUse", times=1)
        pod_netns.add_address("net1", f"{address}/128")
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == address)

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_RELEASE_ON_EXIT="false"), ipv6_moves_here)

    assert finished.exit_code == 0
    assert address in world.secondary_ips(world.eni_a)
    assert [c.outcome for c in world.aws.calls_to("ec2", "AssignIpv6Addresses")][-2:] == [
        "InvalidIPAddress.InUse",
        "ok",
    ]


def test_given_no_unassign_before_it_when_an_ipv6_assign_says_in_use_then_the_sidecar_exits_5(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)

    def add_ipv6(log: LogStream) -> None:
        world.aws.faults.fail("ec2", "AssignIpv6Addresses", code="InvalidIPAddress.InUse", times=1)
        pod_netns.add_address("net1", f"{world.v6(0x271)}/128")
        # Before the driver's SIGTERM: under load the sidecar could otherwise stop before it saw the address.
        log.wait_for(lambda r: r["level"] == "ERROR")

    finished = run_sidecar(manager_env(world, imds, pod_netns), add_ipv6)

    assert finished.exit_code == 5
    assert "InvalidIPAddress.InUse" in finished.error()["message"]


def test_given_pim_interfaces_when_an_address_appears_on_another_interface_then_the_sidecar_ignores_it(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_multus("mon0", "02:42:ac:11:00:09")

    def add_elsewhere(log: LogStream) -> None:
        pod_netns.add_address("mon0", "172.31.9.9/24")
        pod_netns.add_address("net1", "10.0.4.205/32")  # processed after mon0's: proves mon0's was handled
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.205")

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_INTERFACES="net1"), add_elsewhere)

    assert finished.exit_code == 0


def test_given_a_stale_ready_file_when_imds_is_unreachable_then_it_is_removed_before_failing(
    world: World, imds: LocalImds, pod_netns: PodNetns, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    ready.write_text("ready\n")
    env = manager_env(world, imds, pod_netns, PIM_READY_FILE=str(ready), PIM_IMDS_ENDPOINT="http://127.0.0.1:9")
    env.pop("PIM_REGION")

    finished = run_init({**env, "PIM_IMDS_TIMEOUT_SECONDS": "0.1"})

    assert finished.exit_code == 6
    assert not ready.exists()


def test_given_an_address_no_eni_can_carry_when_it_appears_then_the_sidecar_reports_it_keeps_going_and_releases(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    # Before: UnroutableAddress, exit 4, and the restarted sidecar met the same address again: a crash loop.
    _pod_with_net1(world, pod_netns)

    def unroutable_then_routable(log: LogStream) -> None:
        pod_netns.add_address("net1", "192.168.50.5/32")  # in no subnet of any ENI of the instance
        skipped = log.wait_for(lambda r: r["message"].startswith("address skipped"))
        assert (skipped["level"], skipped["address"], skipped["interface"]) == ("ERROR", "192.168.50.5", "net1")
        pod_netns.add_address("net1", "10.0.4.203/32")  # still followed afterwards
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.203")
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.203"}

    finished = run_sidecar(manager_env(world, imds, pod_netns), unroutable_then_routable)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == set()  # what it assigned is released on SIGTERM
    assert "192.168.50.5" not in str(world.aws.calls_to("ec2", "AssignPrivateIpAddresses"))


def test_given_an_unroutable_address_from_the_start_when_the_sidecar_starts_then_it_reports_it_once_and_gets_ready(
    world: World, imds: LocalImds, pod_netns: PodNetns, tmp_path: Path
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", "192.168.50.6/32")
    ready = tmp_path / "ready"

    def resync_twice(log: LogStream) -> None:
        assert ready.exists()  # the routable address is confirmed: the app may start
        pod_netns.run("link", "set", "net1", "down")  # link changes: full resyncs, the address still unroutable
        pod_netns.run("link", "set", "net1", "up")
        pod_netns.add_address("net1", "10.0.4.204/32")
        log.wait_for(lambda r: r["message"] == "assigned" and r["address"] == "10.0.4.204")

    finished = run_sidecar(manager_env(world, imds, pod_netns, PIM_READY_FILE=str(ready)), resync_twice)

    assert finished.exit_code == 0
    skipped = [r for r in finished.log.records() if r["message"].startswith("address skipped")]
    assert [r["address"] for r in skipped] == ["192.168.50.6"]
    assert world.secondary_ips(world.eni_a) == set()


def test_given_an_unroutable_address_when_init_runs_then_it_still_fails_the_pod_start_with_exit_4(
    world: World, imds: LocalImds, pod_netns: PodNetns
) -> None:
    _pod_with_net1(world, pod_netns)
    pod_netns.add_address("net1", "192.168.50.7/32")

    finished = run_init(manager_env(world, imds, pod_netns))

    assert finished.exit_code == 4
    assert "192.168.50.7 on net1" in finished.error()["message"]
