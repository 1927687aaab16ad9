"""node/multus-links-wait (kubelet's ExecStartPre): succeeds once every Multus link of the instance's AZ is
present and UP, fails after its bound naming those that are not, and never waits for another AZ's links."""

from __future__ import annotations

import subprocess

from localaws.imds import LocalImds
from multus_ipam.links import parse_plan, render_plan
from tests.node.conftest import AZ_A, AZ_B, LINK_UP, LINKS_WAIT, Node, NodeNetns, World, run, script_env


def _links_up(world: World, netns: NodeNetns, imds: LocalImds, node: Node) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    netns.add_eni("ens7", world.first.macs["b"])
    for name in ("ens6", "ens7"):
        assert run(LINK_UP, name, env=script_env(node, netns, imds)).returncode == 0


def test_given_every_link_of_the_az_up_when_waiting_then_it_succeeds_at_once(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    _links_up(world, netns, imds, node)

    result = run(LINKS_WAIT, env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    assert f"the Multus links of {AZ_A} are up: multus0 multus1" in result.stderr


def test_given_another_az_s_links_in_the_plan_when_waiting_then_only_this_az_s_are_expected(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # The plan names AZ_B's subnet n6, a link this node never has.
    plan = [
        link if link.availability_zone == AZ_A else type(link)(link.subnet_id, AZ_B, "n6")
        for link in parse_plan(world.plan_text())
    ]
    node.plan.write_text(render_plan(plan) + "\n")
    _links_up(world, netns, imds, node)

    result = run(LINKS_WAIT, env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    assert "n6" not in result.stderr


def test_given_a_link_missing_when_the_bound_passes_then_it_fails_naming_it(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    assert run(LINK_UP, "ens6", env=script_env(node, netns, imds)).returncode == 0

    result = run(LINKS_WAIT, env=script_env(node, netns, imds, MULTUS_LINKS_WAIT_SECONDS="1"))

    assert result.returncode == 1
    assert "Multus links not ready after 1 s: multus1 (absent); kubelet does not start" in result.stderr


def test_given_a_link_down_or_without_carrier_when_the_bound_passes_then_it_fails_saying_which(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    _links_up(world, netns, imds, node)
    netns.run("link", "set", "multus0", "down")
    netns.run("link", "set", "peer1", "down")  # multus1's other end: no carrier

    result = run(LINKS_WAIT, env=script_env(node, netns, imds))

    assert result.returncode == 1
    assert "not ready after 0 s: multus0 (down) multus1 (no-carrier)" in result.stderr


def test_given_a_link_that_comes_up_during_the_wait_when_waiting_then_it_succeeds_then(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    netns.add_eni("ens7", world.first.macs["b"])
    assert run(LINK_UP, "ens6", env=script_env(node, netns, imds)).returncode == 0
    env = script_env(node, netns, imds, MULTUS_LINKS_WAIT_SECONDS="120")
    with subprocess.Popen([str(LINKS_WAIT)], env=env, stderr=subprocess.PIPE, text=True) as waiting:  # noqa: S603
        assert waiting.stderr is not None
        assert "waiting up to 120 s" in waiting.stderr.readline()  # it is waiting (on state, not on a clock)
        assert run(LINK_UP, "ens7", env=script_env(node, netns, imds)).returncode == 0
        rest = waiting.stderr.read()
    assert waiting.returncode == 0, rest
    assert "are up: multus0 multus1" in rest


def test_given_no_multus_subnet_in_the_az_when_waiting_then_nothing_to_wait_for(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    node.plan.write_text(" ".join(f"{link.subnet_id}={AZ_B}={link.name}" for link in world.plan) + "\n")

    result = run(LINKS_WAIT, env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    assert f"the link plan has no Multus subnet in {AZ_A}: nothing to wait for" in result.stderr


def test_given_imds_failing_when_the_bound_passes_then_it_fails_without_an_az(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    _links_up(world, netns, imds, node)
    imds.fail(500, times=1000)

    result = run(LINKS_WAIT, env=script_env(node, netns, imds))

    assert result.returncode == 1
    assert "IMDS did not give this instance's Availability Zone within 0 s; kubelet does not start" in result.stderr


def test_given_failure_result_continue_when_the_bound_passes_then_kubelet_starts_without_the_links(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # FailureResult=CONTINUE: a node may serve without its Multus interfaces (the stack sets start-kubelet then).
    netns.add_eni("ens6", world.first.macs["a"])
    assert run(LINK_UP, "ens6", env=script_env(node, netns, imds)).returncode == 0

    result = run(LINKS_WAIT, env=script_env(node, netns, imds, MULTUS_LINKS_ON_TIMEOUT="start-kubelet"))

    assert result.returncode == 0, result.stderr
    assert (
        "Multus links not ready after 0 s: multus1 (absent); kubelet starts without them "
        "(MULTUS_LINKS_ON_TIMEOUT=start-kubelet)"
    ) in result.stderr


def test_given_the_links_were_up_once_this_boot_when_kubelet_restarts_then_it_does_not_wait_again(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # A Multus link that goes away later is a Multus problem: it must not keep kubelet (every pod) off the node.
    _links_up(world, netns, imds, node)
    assert run(LINKS_WAIT, env=script_env(node, netns, imds)).returncode == 0
    assert node.ready_file.exists()
    netns.run("link", "set", "multus1", "down")

    result = run(LINKS_WAIT, env=script_env(node, netns, imds, MULTUS_LINKS_WAIT_SECONDS="1"))

    assert result.returncode == 0, result.stderr
    assert "the Multus links were up once this boot: not waiting again" in result.stderr


def test_given_a_wait_that_failed_then_no_marker_and_the_next_start_waits_again(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    assert run(LINK_UP, "ens6", env=script_env(node, netns, imds)).returncode == 0

    failed = run(LINKS_WAIT, env=script_env(node, netns, imds, MULTUS_LINKS_WAIT_SECONDS="1"))

    assert failed.returncode == 1
    assert not node.ready_file.exists()
