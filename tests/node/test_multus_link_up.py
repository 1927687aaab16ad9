"""node/multus-link-up: a Multus ENI's link gets its subnet's planned name, whatever the kernel named it and
whatever device index it got; everything else is left alone; running it again changes nothing."""

from __future__ import annotations

from localaws.imds import LocalImds
from tests.node.conftest import LINK_UP, Node, NodeNetns, SecondNode, World, imds_statuses, run, script_env


def test_given_a_multus_eni_named_ens6_when_run_then_it_is_renamed_multus0_and_up_with_its_files(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    mac = world.first.macs["a"]
    netns.add_eni("ens6", mac)

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    links = netns.links()
    assert "ens6" not in links
    assert links["multus0"].mac == mac
    assert links["multus0"].up
    files = node.files()
    assert files["10-multus-multus0.link"].endswith(f"[Match]\nPermanentMACAddress={mac}\n\n[Link]\nName=multus0\n")
    assert files["10-multus-multus0.network"].endswith(f"[Match]\nPermanentMACAddress={mac}\n\n[Link]\nUnmanaged=yes\n")
    assert (node.link_dir / "10-multus-multus0.link").exists()
    assert (node.network_dir / "10-multus-multus0.network").exists()
    assert node.commands() == [
        "networkctl reload",
        "udevadm control --reload",
        "systemctl stop udev-net-manager@ens6.service",
    ]
    assert f"ens6 ({mac}, {world.subnets['a']}) renamed multus0" in result.stderr


def test_given_the_same_subnets_at_other_device_indexes_and_kernel_names_when_run_then_the_same_names(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node, second: SecondNode
) -> None:
    # The first node's Multus ENIs are at device indexes 1 and 2 (ens6, ens7 on one instance family); the
    # second node's VPC CNI took index 1 first, so its Multus ENIs are at 2 and 3 (enp40s0, enp41s0 on another).
    netns.add_eni("ens6", world.first.macs["a"])
    netns.add_eni("ens7", world.first.macs["b"])
    second.netns.add_eni("enp39s0", world.second.macs["vpc-cni"])
    second.netns.add_eni("enp40s0", world.second.macs["a"])
    second.netns.add_eni("enp41s0", world.second.macs["b"])

    for name in ("ens6", "ens7"):
        assert run(LINK_UP, name, env=script_env(node, netns, imds)).returncode == 0
    for name in ("enp39s0", "enp40s0", "enp41s0"):
        assert run(LINK_UP, name, env=script_env(second.node, second.netns, second.imds)).returncode == 0

    first_links, second_links = netns.links(), second.netns.links()
    assert (first_links["multus0"].mac, first_links["multus1"].mac) == (world.first.macs["a"], world.first.macs["b"])
    assert (second_links["multus0"].mac, second_links["multus1"].mac) == (
        world.second.macs["a"],
        world.second.macs["b"],
    )
    assert set(first_links) == {"multus0", "multus1"}
    assert set(second_links) == {"enp39s0", "multus0", "multus1"}  # the VPC CNI's ENI keeps its name


def test_given_an_eni_whose_subnet_is_not_in_the_plan_when_run_then_it_is_left_alone(
    world: World, second: SecondNode
) -> None:
    second.netns.add_eni("ens6", world.second.macs["vpc-cni"])

    result = run(LINK_UP, "ens6", env=script_env(second.node, second.netns, second.imds))

    assert result.returncode == 0, result.stderr
    assert f"is in {world.subnets['node']}, not a Multus subnet of the plan: left alone" in result.stderr
    links = second.netns.links()
    assert set(links) == {"ens6"}
    assert "UP" not in links["ens6"].flags
    assert second.node.files() == {}
    assert second.node.commands() == []


def test_given_the_primary_eni_when_run_then_it_is_left_alone(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens5", world.first.macs["primary"], up=True)

    result = run(LINK_UP, "ens5", env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    assert set(netns.links()) == {"ens5"}
    assert node.files() == {}


def test_given_a_run_done_when_run_again_and_after_a_reboot_then_nothing_changes(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    assert run(LINK_UP, "ens6", env=script_env(node, netns, imds)).returncode == 0
    files, commands = node.files(), node.commands()

    again = run(LINK_UP, "multus0", env=script_env(node, netns, imds))  # udev's unit for the renamed link
    late = run(LINK_UP, "ens6", env=script_env(node, netns, imds))  # the user data's loop, a moment late
    netns.run("link", "set", "multus0", "down")  # a reboot: udev named it multus0 from the .link file, down
    reboot = run(LINK_UP, "multus0", env=script_env(node, netns, imds))

    assert (again.returncode, late.returncode, reboot.returncode) == (0, 0, 0)
    assert "ens6: no such link (gone, or renamed already): nothing to do" in late.stderr
    assert node.files() == files
    assert node.commands() == commands  # no reload, no rename: nothing changed
    assert netns.links()["multus0"].up
    assert set(netns.links()) == {"multus0"}


def test_given_imds_that_does_not_know_the_eni_yet_when_run_then_it_asks_again_until_it_does(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # IMDS learns a hot-plugged ENI a moment after the kernel: 404 for its MAC until then.
    netns.add_eni("ens6", world.first.macs["a"])
    imds.fail(404, times=2)

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    assert imds_statuses(imds, "/subnet-id") == [404, 404, 200]
    assert netns.links()["multus0"].up


def test_given_imds_that_never_knows_the_mac_when_run_then_it_fails_after_its_attempts_naming_it(
    netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", "02:00:00:aa:bb:cc")

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds, MULTUS_IMDS_ATTEMPTS="3"))

    assert result.returncode == 1
    assert "ens6 (02:00:00:aa:bb:cc): IMDS did not give its subnet and device number after 3 attempts" in result.stderr
    assert imds_statuses(imds, "/subnet-id") == [404, 404, 404]
    assert set(netns.links()) == {"ens6"}


def test_given_the_planned_name_taken_by_another_link_when_run_then_it_fails_without_renaming(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    netns.add_eni("multus0", "02:00:00:aa:bb:cc")

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds))

    assert result.returncode == 2, "refused for good: the unit does not restart"
    assert "another link is already named multus0: not renamed" in result.stderr
    assert netns.links()["multus0"].mac == "02:00:00:aa:bb:cc"
    assert "ens6" in netns.links()


def test_given_an_address_networkd_gave_it_before_our_file_when_run_then_the_master_has_none(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # The EKS AMI's udev-net-manager@ may have had networkd configure the new ENI with DHCP first.
    netns.add_eni("ens6", world.first.macs["a"], up=True)
    netns.run("addr", "add", "10.0.4.10/24", "dev", "ens6")

    assert run(LINK_UP, "ens6", env=script_env(node, netns, imds)).returncode == 0

    assert netns.run("-o", "-4", "addr", "show", "dev", "multus0").stdout == ""


def test_given_no_link_plan_when_run_then_it_fails_saying_so(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    netns.add_eni("ens6", world.first.macs["a"])
    node.plan.unlink()

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds))

    assert result.returncode == 1
    assert f"no link plan at {node.plan}" in result.stderr
    assert set(netns.links()) == {"ens6"}


def test_given_a_plan_listing_the_node_subnet_when_run_on_the_primary_then_it_is_left_alone(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # A node subnet listed as a Multus subnet by mistake must not rename and strip the node's own interface.
    node.plan.write_text(f"{world.subnets['node']}=eu-west-1a=multus9 {world.plan_text()}\n")
    netns.add_eni("ens5", world.first.macs["primary"], up=True)
    netns.run("addr", "add", "10.0.0.10/24", "dev", "ens5")

    result = run(LINK_UP, "ens5", env=script_env(node, netns, imds))

    assert result.returncode == 0, result.stderr
    assert "is the primary ENI (device 0): left alone" in result.stderr
    assert set(netns.links()) == {"ens5"}
    assert "10.0.0.10/24" in netns.run("-o", "addr", "show", "dev", "ens5").stdout
    assert node.files() == {}


def test_given_the_subnets_link_already_claimed_by_another_eni_when_run_then_it_is_refused_untouched(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    # Two ENIs of one node in one Multus subnet: the second must not take the name or the first one's files.
    node.link_dir.mkdir(parents=True, exist_ok=True)
    claim = node.link_dir / "10-multus-multus0.link"
    claim.write_text("[Match]\nPermanentMACAddress=02:00:00:00:00:99\n\n[Link]\nName=multus0\n")
    netns.add_eni("ens6", world.first.macs["a"])

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds))

    assert result.returncode == 2
    assert "whose link multus0 is the ENI 02:00:00:00:00:99 already: two ENIs in one Multus subnet" in result.stderr
    assert set(netns.links()) == {"ens6"}
    assert "02:00:00:00:00:99" in claim.read_text()


def test_given_a_hand_written_plan_with_a_bad_name_when_run_then_it_is_refused_untouched(
    world: World, netns: NodeNetns, imds: LocalImds, node: Node
) -> None:
    node.plan.write_text(f"{world.subnets['a']}=eu-west-1a=../evil\n")
    netns.add_eni("ens6", world.first.macs["a"])

    result = run(LINK_UP, "ens6", env=script_env(node, netns, imds))

    assert result.returncode == 2
    assert "'../evil', is not a valid interface name" in result.stderr
    assert node.files() == {}
    assert set(netns.links()) == {"ens6"}
