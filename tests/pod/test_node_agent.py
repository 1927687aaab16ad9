"""The node agent end to end: real network namespaces in a temporary netns directory, the local AWS and IMDSv2,
the agent in-process with real signals (SIGHUP: resync now; SIGTERM: stop)."""

from __future__ import annotations

from localaws.imds import LocalImds
from tests.pod.conftest import World, ip
from tests.pod.node_pods import Agent, NodePods, agent_env, node_pods, run_agent

__all__ = ["node_pods"]  # the fixture


def test_given_a_pod_with_an_address_when_the_agent_starts_then_it_is_assigned_and_a_new_pod_is_followed(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    first = node_pods.add()
    first.add_multus("net1", world.mac_a)
    first.add_address("net1", "10.0.4.200/24")

    def new_pod_arrives(agent: Agent) -> None:
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}
        second = node_pods.add()
        second.add_multus("net1", world.mac_a)
        second.add_address("net1", "10.0.4.201/24")
        assigned = agent.wait("assigned", address="10.0.4.201")
        assert (assigned["netns"], assigned["eni"], assigned["interface"]) == (second.netns, world.eni_a, "net1")
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201"}

    finished = run_agent(agent_env(world, imds, node_pods), new_pod_arrives)

    assert finished.exit_code == 0
    first_assigned = next(r for r in finished.log.records() if r["message"] == "assigned")
    assert (first_assigned["netns"], first_assigned["address"]) == (first.netns, "10.0.4.200")


def test_given_a_running_agent_when_a_pod_adds_and_removes_addresses_then_the_eni_follows(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")

    def change_addresses(agent: Agent) -> None:
        pod.add_address("net1", "10.0.4.202/32")
        agent.wait("assigned", address="10.0.4.202")
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.202"}
        pod.del_address("net1", "10.0.4.202/32")
        unassigned = agent.wait("unassigned", address="10.0.4.202")
        assert (unassigned["netns"], unassigned["eni"]) == (pod.netns, world.eni_a)
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}

    finished = run_agent(agent_env(world, imds, node_pods), change_addresses)

    assert finished.exit_code == 0


def test_given_a_pod_when_its_namespace_is_deleted_then_its_addresses_are_unassigned(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    staying, leaving = node_pods.add(), node_pods.add()
    staying.add_multus("net1", world.mac_a)
    staying.add_address("net1", "10.0.4.200/24")
    leaving.add_multus("net1", world.mac_a)
    leaving.add_address("net1", "10.0.4.203/24")
    leaving.add_address("net1", f"{world.v6(0x203)}/64")

    def pod_goes(agent: Agent) -> None:
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.203", world.v6(0x203)}
        node_pods.delete(leaving)
        agent.wait("namespace gone", netns=leaving.netns)
        for address in ("10.0.4.203", world.v6(0x203)):
            assert agent.wait("unassigned", address=address)["netns"] == leaving.netns
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}
        assert agent.metric("pim_namespaces_watched") == 1
        assert agent.metric("pim_unassignments_total") == 2

    finished = run_agent(agent_env(world, imds, node_pods), pod_goes)

    assert finished.exit_code == 0


def test_given_two_pods_in_two_subnets_when_the_agent_runs_then_each_address_is_on_its_subnets_eni(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    in_a, in_b = node_pods.add(), node_pods.add()
    in_a.add_multus("net1", world.mac_a)
    in_a.add_address("net1", "10.0.4.200/24")
    in_b.add_multus("net1", world.mac_b)
    in_b.add_address("net1", "10.0.5.200/24")

    def both_in_place(agent: Agent) -> None:
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}
        assert world.secondary_ips(world.eni_b) == {"10.0.5.200"}
        in_b.add_address("net1", "10.0.5.201/32")
        assert agent.wait("assigned", address="10.0.5.201")["eni"] == world.eni_b

    finished = run_agent(agent_env(world, imds, node_pods), both_in_place)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_b) == {"10.0.5.200", "10.0.5.201"}


def test_given_a_floating_ip_on_another_nodes_eni_when_a_pod_here_takes_it_then_it_moves_and_stays_after(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.other_eni, PrivateIpAddresses=["10.0.4.250"])

    def vip_comes_and_goes(agent: Agent) -> None:
        pod.add_address("net1", "10.0.4.250/32")  # keepalived takes over the VIP
        moved = agent.wait("assigned", address="10.0.4.250")
        assert (moved["from_eni"], moved["eni"]) == (world.other_eni, world.eni_a)
        assert world.secondary_ips(world.other_eni) == set()
        pod.del_address("net1", "10.0.4.250/32")  # ... and gives it up: it stays where it was last claimed
        agent.wait("floating IP left where it was last claimed", address="10.0.4.250")
        agent.resync()
        assert "10.0.4.250" in world.secondary_ips(world.eni_a)

    finished = run_agent(agent_env(world, imds, node_pods, PIM_FLOATING_IPS="10.0.4.250"), vip_comes_and_goes)

    assert finished.exit_code == 0
    assert world.aws.calls_to("ec2", "UnassignPrivateIpAddresses") == []


def test_given_an_ipv6_on_another_nodes_eni_when_a_pod_here_carries_it_then_it_is_released_there_first(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    address = world.v6(0x250)
    world.ec2.assign_ipv6_addresses(NetworkInterfaceId=world.other_eni, Ipv6Addresses=[address])

    def ipv6_moves_here(agent: Agent) -> None:
        pod.add_address("net1", f"{address}/128")
        assert agent.wait("assigned", address=address)["from_eni"] == world.other_eni
        assert world.secondary_ips(world.other_eni) == set()
        assert address in world.secondary_ips(world.eni_a)
        pod.del_address("net1", f"{address}/128")
        agent.wait("unassigned", address=address)

    finished = run_agent(agent_env(world, imds, node_pods), ipv6_moves_here)

    assert finished.exit_code == 0
    operations = [c.operation for c in world.aws.calls if c.operation.endswith("Ipv6Addresses")]
    assert operations == [
        "AssignIpv6Addresses",
        "UnassignIpv6Addresses",
        "AssignIpv6Addresses",
        "UnassignIpv6Addresses",
    ]
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}


def test_given_an_address_outside_every_eni_subnet_then_it_is_reported_and_skipped_and_the_agent_keeps_working(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    pod.add_address("net1", "10.0.9.9/32")  # no ENI of the node can carry it

    def keeps_working(agent: Agent) -> None:
        skipped = agent.wait("address skipped", address="10.0.9.9")
        assert (skipped["reason"], skipped["netns"]) == ("outside_subnet", pod.netns)
        assert agent.metric('pim_skipped_addresses{reason="outside_subnet"}') == 1
        pod.add_address("net1", "10.0.4.204/32")
        agent.wait("assigned", address="10.0.4.204")
        agent.resync()  # reported once, not at every resync
        assert agent.metric('pim_skips_total{reason="outside_subnet"}') == 1
        pod.del_address("net1", "10.0.9.9/32")
        pod.add_address("net1", "10.0.4.205/32")
        agent.wait("assigned", address="10.0.4.205")
        assert agent.metric('pim_skipped_addresses{reason="outside_subnet"}') == 0

    finished = run_agent(agent_env(world, imds, node_pods), keeps_working)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.204", "10.0.4.205"}
    sent = [c.params for c in world.aws.calls_to("ec2", "AssignPrivateIpAddresses")]
    assert not any("10.0.9.9" in params.values() for params in sent)


def test_given_assignments_in_place_when_the_agent_restarts_then_it_calls_nothing_for_them_and_drops_stale_ones(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod, leaving = node_pods.add(), node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    pod.add_address("net1", f"{world.v6(0x200)}/64")
    leaving.add_multus("net1", world.mac_a)
    leaving.add_address("net1", "10.0.4.210/24")
    env = agent_env(world, imds, node_pods, PIM_FLOATING_IPS="10.0.4.250")

    assert run_agent(env, lambda _agent: None).exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.210", world.v6(0x200)}
    # while the agent is not running: a pod goes, an address is left behind by someone, a VIP stays here
    node_pods.delete(leaving)
    world.ec2.assign_private_ip_addresses(
        NetworkInterfaceId=world.eni_a, PrivateIpAddresses=["10.0.4.211", "10.0.4.250"]
    )
    world.aws.clear_calls()

    def first_resync(agent: Agent) -> None:
        resynced = agent.wait("resynced", number=1)
        assert (resynced["assigned"], resynced["unassigned"]) == (0, 2)

    finished = run_agent(env, first_resync)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", world.v6(0x200), "10.0.4.250"}
    assert world.aws.calls_to("ec2", "AssignPrivateIpAddresses") == []
    assert world.aws.calls_to("ec2", "AssignIpv6Addresses") == []
    assert len(world.aws.calls_to("ec2", "UnassignPrivateIpAddresses")) == 1  # .210 and .211 in one call
    stale = {r["address"]: r for r in finished.log.records() if r["message"] == "unassigned"}
    assert set(stale) == {"10.0.4.210", "10.0.4.211"}
    assert stale["10.0.4.210"]["netns"] is None  # the namespace is gone: nobody to name


def test_given_throttling_within_the_retry_bound_when_assigning_then_it_is_retried_and_succeeds(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")

    def throttled_then_fine(agent: Agent) -> None:
        world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="RequestLimitExceeded", status=503, times=2)
        pod.add_address("net1", "10.0.4.201/32")
        agent.wait("assigned", address="10.0.4.201")
        assert agent.metric("pim_errors_total") == 0

    finished = run_agent(agent_env(world, imds, node_pods), throttled_then_fine)

    assert finished.exit_code == 0
    outcomes = [c.outcome for c in world.aws.calls_to("ec2", "AssignPrivateIpAddresses")]
    assert outcomes == ["ok", "RequestLimitExceeded", "RequestLimitExceeded", "ok"]
    assert sum(1 for r in finished.log.records() if r["message"] == "retrying") == 2


def test_given_throttling_beyond_the_retry_bound_then_the_error_is_counted_and_the_next_resync_assigns(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")

    def throttled_for_long(agent: Agent) -> None:
        world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="RequestLimitExceeded", status=503, times=6)
        pod.add_address("net1", "10.0.4.201/32")
        failed = agent.wait("EC2 call failed; retried at the next resync")
        assert (failed["kind"], failed["addresses"]) == ("RequestLimitExceeded", ["10.0.4.201"])
        assert agent.metric('pim_errors_total{kind="RequestLimitExceeded"}') == 1
        assert agent.get("/healthz")[0] == 200
        assert agent.resync()["assigned"] == 1
        assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201"}

    finished = run_agent(agent_env(world, imds, node_pods), throttled_for_long)

    assert finished.exit_code == 0


def test_given_an_aws_error_on_one_address_of_a_grouped_call_then_the_others_are_assigned_and_it_is_retried_later(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    pod.add_address("net1", "10.0.4.201/24")
    # the grouped call and the first single-address call fail; the second single-address call goes through
    world.aws.faults.fail("ec2", "AssignPrivateIpAddresses", code="UnauthorizedOperation", status=403, times=2)

    def one_left_for_later(agent: Agent) -> None:
        first = agent.wait("resynced", number=1)
        assert (first["assigned"], first["errors"]) == (1, 1)
        assert world.secondary_ips(world.eni_a) == {"10.0.4.201"}
        assert agent.metric('pim_errors_total{kind="UnauthorizedOperation"}') == 1
        assert agent.get("/readyz")[0] == 200  # per-address errors do not hold readiness back
        assert agent.resync()["assigned"] == 1

    finished = run_agent(agent_env(world, imds, node_pods), one_left_for_later)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", "10.0.4.201"}


def test_given_a_running_agent_when_sigterm_arrives_then_it_exits_0_and_leaves_every_assignment_in_place(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    pod.add_address("net1", f"{world.v6(0x200)}/64")

    finished = run_agent(agent_env(world, imds, node_pods), lambda _agent: None)  # then a real SIGTERM

    assert finished.exit_code == 0
    assert finished.messages()[-1] == "stopping: assignments stay in place (the pods still run)"
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", world.v6(0x200)}
    assert world.aws.calls_to("ec2", "UnassignPrivateIpAddresses") == []
    assert world.aws.calls_to("ec2", "UnassignIpv6Addresses") == []


def test_given_a_namespace_file_not_mounted_yet_when_it_is_mounted_later_then_its_addresses_are_assigned(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add(mounted=False)  # the runtime created the file; the bind mount comes a moment later
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")

    def mount_it(agent: Agent) -> None:
        agent.wait("namespace file not ready; retrying", netns=pod.netns)
        assert world.secondary_ips(world.eni_a) == set()  # never read as an empty namespace
        node_pods.mount(pod)
        agent.wait("assigned", address="10.0.4.200", netns=pod.netns)

    finished = run_agent(agent_env(world, imds, node_pods), mount_it)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}


def test_given_the_status_endpoint_then_liveness_readiness_and_metrics_answer(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")

    def probe(agent: Agent) -> None:
        assert agent.get("/healthz") == (200, "ok\n")
        assert agent.get("/readyz") == (200, "ok\n")
        assert agent.get("/nothing")[0] == 404
        assert agent.metric("pim_assignments_total") == 1
        assert agent.metric("pim_namespaces_watched") == 1
        assert agent.metric('pim_resyncs_total{result="ok"}') == 1
        assert agent.metric("pim_last_resync_timestamp_seconds") > 0
        assert agent.metric("pim_ready") == 1

    finished = run_agent(agent_env(world, imds, node_pods), probe)

    assert finished.exit_code == 0


def test_given_an_address_held_by_an_untagged_eni_then_it_is_never_taken_and_reported(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    vpc_cni = world.ec2.create_network_interface(
        SubnetId=world.subnet_a, PrivateIpAddresses=[{"PrivateIpAddress": "10.0.4.30", "Primary": True}]
    )["NetworkInterface"]["NetworkInterfaceId"]
    world.aws.clock.advance(world.aws.realism.visibility_lag)  # EC2 lists a new ENI after a short lag
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=vpc_cni, PrivateIpAddresses=["10.0.4.231"])
    world.aws.clear_calls()
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.231/24")

    def refused(agent: Agent) -> None:
        skipped = agent.wait("address skipped", address="10.0.4.231")
        assert skipped["reason"] == "protected_holder"
        assert vpc_cni in skipped["detail"]

    finished = run_agent(agent_env(world, imds, node_pods), refused)

    assert finished.exit_code == 0
    assert world.secondary_ips(vpc_cni) == {"10.0.4.231"}
    assert world.aws.calls_to("ec2", "AssignPrivateIpAddresses") == []


def test_given_an_ipv6_in_duplicate_address_detection_then_it_is_assigned_once_usable(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    sysctl = ["netns", "exec", pod.name, "sysctl", "-q", "-w"]
    ip(*sysctl, "net.ipv6.conf.net1.accept_dad=1")
    ip(*sysctl, "net.ipv6.conf.net1.dad_transmits=40")  # ~4 s of real DAD (100 ms apart), as in test_init
    ip(*sysctl, "net.ipv6.neigh.net1.retrans_time_ms=100")
    pod.add_address("net1", "10.0.4.200/24")
    pod.run("addr", "add", f"{world.v6(0x220)}/64", "dev", "net1")  # no nodad

    def dad_ends(agent: Agent) -> None:
        first = agent.wait("resynced", number=1)
        assert first["waiting"] == [f"{pod.netns}/{world.v6(0x220)}"]
        assert first["assigned"] == 1  # the IPv4 at once
        agent.wait("assigned", address=world.v6(0x220))  # the kernel announces the end of DAD

    finished = run_agent(agent_env(world, imds, node_pods), dad_ends)

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200", world.v6(0x220)}


def test_given_imds_failing_at_the_first_resync_then_the_agent_is_not_ready_until_a_resync_succeeds(
    world: World, imds: LocalImds, node_pods: NodePods
) -> None:
    pod = node_pods.add()
    pod.add_multus("net1", world.mac_a)
    pod.add_address("net1", "10.0.4.200/24")
    imds.fail(500, times=3)  # every attempt at the first metadata read

    def recovers(agent: Agent) -> None:
        assert agent.get("/readyz")[0] == 503
        assert agent.get("/healthz")[0] == 200
        assert agent.metric('pim_errors_total{kind="IMDS"}') == 1
        assert agent.metric('pim_resyncs_total{result="failed"}') == 1
        assert agent.resync()["assigned"] == 1
        assert agent.get("/readyz")[0] == 200

    finished = run_agent(
        agent_env(world, imds, node_pods), recovers, after="full resync: cannot read this instance's ENIs"
    )

    assert finished.exit_code == 0
    assert world.secondary_ips(world.eni_a) == {"10.0.4.200"}
