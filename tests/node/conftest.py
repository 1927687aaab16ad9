"""Fixtures for the node's scripts (node/): network namespaces standing in for nodes, links carrying the ENIs'
MACs, the local AWS with the instances and their ENIs, and a local IMDSv2 serving them.

Each test's node is a network namespace of its own (named after the worker's pid and a counter, deleted in the
teardown even when the test fails); its ENIs are veth links carrying the ENIs' MACs (the kernel here has no
dummy links), each with its peer up, so a link brought up has carrier. The scripts run on the host with
``MULTUS_NETNS`` set (their ``ip`` commands go to that namespace) and talk to the local IMDS on 127.0.0.1.
Where ``ip netns add`` is refused, the tests that need a namespace are skipped with the reason.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from localaws import LocalAWS
from localaws.imds import LocalImds
from localaws.realism import Realism
from multus_ipam.links import PlannedLink, plan_links, render_plan

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

NODE = Path(__file__).resolve().parents[2] / "node"
LINK_UP = NODE / "multus-link-up"
LINKS_WAIT = NODE / "multus-links-wait"
REGION = "eu-west-1"
AZ_A, AZ_B = f"{REGION}a", f"{REGION}b"
NO_MANAGE = {"Key": "node.k8s.amazonaws.com/no_manage", "Value": "true"}
_names = itertools.count()


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)  # noqa: S603, S607


_REFUSAL: list[str | None] = []


def netns_refusal() -> str | None:
    if not _REFUSAL:
        reason = None
        if shutil.which("ip") is None or shutil.which("curl") is None:
            reason = "the scripts need `ip` (iproute2) and `curl`"
        else:
            probe = f"mlprobe{os.getpid()}"
            result = ip("netns", "add", probe, check=False)
            if result.returncode != 0:
                reason = f"cannot create network namespaces here: {result.stderr.strip()}"
            ip("netns", "del", probe, check=False)
        _REFUSAL.append(reason)
    return _REFUSAL[0]


@dataclass
class Link:
    name: str
    mac: str
    flags: frozenset[str]

    @property
    def up(self) -> bool:
        return {"UP", "LOWER_UP"} <= self.flags


@dataclass
class NodeNetns:
    """A node's network namespace."""

    name: str
    _peers: Iterator[int] = field(default_factory=itertools.count)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return ip("-n", self.name, *args)

    def add_eni(self, kernel_name: str, mac: str, *, up: bool = False) -> None:
        """A link named as the kernel would name the hot-plugged ENI, carrying its MAC (down, as it appears)."""
        peer = f"peer{next(self._peers)}"
        self.run("link", "add", kernel_name, "address", mac, "type", "veth", "peer", "name", peer)
        self.run("link", "set", peer, "up")
        if up:
            self.run("link", "set", kernel_name, "up")

    def links(self) -> dict[str, Link]:
        """Every link but the loopback and the veth peers, by name."""
        found = {}
        for line in self.run("-o", "link", "show").stdout.splitlines():
            name = line.split(": ", 2)[1].split("@", 1)[0]
            flags = frozenset(line.split("<", 1)[1].split(">", 1)[0].split(","))
            mac = line.split(" link/", 1)[1].split()[1]
            if name != "lo" and not name.startswith("peer"):
                found[name] = Link(name, mac, flags)
        return found


@pytest.fixture
def netns() -> Iterator[NodeNetns]:
    yield from _netns()


@pytest.fixture
def other_netns() -> Iterator[NodeNetns]:
    """A second node."""
    yield from _netns()


def _netns() -> Iterator[NodeNetns]:
    refusal = netns_refusal()
    if refusal:
        pytest.skip(refusal)
    name = f"mln-{os.getpid()}-{next(_names)}"
    ip("netns", "add", name)
    try:
        yield NodeNetns(name)
    finally:
        ip("netns", "del", name, check=False)


# --- the local AWS --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    instance_id: str
    macs: dict[str, str]
    """Each ENI's MAC by what it is: "primary", "vpc-cni", "a", "b" (the Multus subnets)."""


@dataclass(frozen=True)
class World:
    """Multus subnets a and b in AZ_A, c in AZ_B (MultusSubnetIds order a, c, b: a → multus0, c → multus0 in
    AZ_B, b → multus1), the node subnet in AZ_A. Two nodes in AZ_A:
    - ``first``: the primary at device 0, a's ENI at 1, b's at 2;
    - ``second``: the primary, the VPC CNI's ENI at 1 (it got there first), a's ENI at 2, b's at 3."""

    aws: LocalAWS
    subnets: dict[str, str]
    plan: tuple[PlannedLink, ...]
    first: Instance
    second: Instance

    def plan_text(self) -> str:
        return render_plan(self.plan)


def _build_world(aws: LocalAWS) -> World:
    ec2: EC2Client = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    def subnet(cidr: str, az: str) -> str:
        return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az)["Subnet"]["SubnetId"]

    subnets = {
        "node": subnet("10.0.0.0/24", AZ_A),
        "a": subnet("10.0.4.0/24", AZ_A),
        "b": subnet("10.0.5.0/24", AZ_A),
        "c": subnet("10.0.6.0/24", AZ_B),
    }

    def eni(kind: str, instance_id: str, device: int) -> str:
        tags = [{"ResourceType": "network-interface", "Tags": [NO_MANAGE]}] if kind != "node" else []
        made = ec2.create_network_interface(SubnetId=subnets[kind], TagSpecifications=tags)  # type: ignore[arg-type]
        ec2.attach_network_interface(
            NetworkInterfaceId=made["NetworkInterface"]["NetworkInterfaceId"],
            InstanceId=instance_id,
            DeviceIndex=device,
        )
        return made["NetworkInterface"]["MacAddress"].lower()

    def instance(layout: Mapping[str, tuple[str, int]]) -> Instance:
        created = ec2.run_instances(
            ImageId="ami-12c6146b", InstanceType="m6i.xlarge", MinCount=1, MaxCount=1, SubnetId=subnets["node"]
        )["Instances"][0]
        macs = {"primary": created["NetworkInterfaces"][0]["MacAddress"].lower()}
        for what, (kind, device) in layout.items():
            macs[what] = eni(kind, created["InstanceId"], device)
        return Instance(created["InstanceId"], macs)

    first = instance({"a": ("a", 1), "b": ("b", 2)})
    second = instance({"vpc-cni": ("node", 1), "a": ("a", 2), "b": ("b", 3)})
    order = [subnets["a"], subnets["c"], subnets["b"]]
    zones = {subnets["a"]: AZ_A, subnets["b"]: AZ_A, subnets["c"]: AZ_B}
    return World(aws, subnets, plan_links(order, zones), first, second)


@pytest.fixture
def world() -> Iterator[World]:
    # Strict parameters, instant and consistent: the node's view comes long after the launch's AWS calls.
    with LocalAWS(region=REGION, realism=Realism.strict()) as aws:
        yield _build_world(aws)


@pytest.fixture
def imds(world: World) -> Iterator[LocalImds]:
    """IMDS of the first node."""
    with LocalImds(world.aws, world.first.instance_id) as server:
        yield server


@pytest.fixture
def other_imds(world: World) -> Iterator[LocalImds]:
    """IMDS of the second node."""
    with LocalImds(world.aws, world.second.instance_id) as server:
        yield server


# --- running the scripts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """Where a script run puts its files, and what it asked of networkctl, udevadm and systemctl."""

    root: Path

    @property
    def link_dir(self) -> Path:
        return self.root / "etc/systemd/network-link"

    @property
    def network_dir(self) -> Path:
        return self.root / "etc/systemd/network"

    @property
    def plan(self) -> Path:
        return self.root / "etc/eks-multus-ipam/links.plan"

    @property
    def ready_file(self) -> Path:
        """multus-links-wait's once-per-boot marker (/run/eks-multus-ipam/links-ready on a node)."""
        return self.root / "run/eks-multus-ipam/links-ready"

    @property
    def commands_log(self) -> Path:
        return self.root / "commands.log"

    def commands(self) -> list[str]:
        return self.commands_log.read_text().splitlines() if self.commands_log.exists() else []

    def files(self) -> dict[str, str]:
        return {
            path.name: path.read_text()
            for directory in (self.link_dir, self.network_dir)
            if directory.exists()
            for path in sorted(directory.iterdir())
        }


def make_node(root: Path, plan: str) -> Node:
    node = Node(root)
    node.plan.parent.mkdir(parents=True)
    node.plan.write_text(plan + "\n")
    stub = root / "bin" / "record"
    stub.parent.mkdir()
    # networkctl, udevadm and systemctl as the scripts call them, recorded instead of run on the test machine.
    stub.write_text(f'#!/bin/sh\necho "$(basename "$0") $*" >> {node.commands_log}\n')
    stub.chmod(0o755)
    for command in ("networkctl", "udevadm", "systemctl"):
        (stub.parent / command).symlink_to(stub)
    return node


def script_env(node: Node, netns: NodeNetns, imds: LocalImds, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "MULTUS_LINK_PLAN": str(node.plan),
        "MULTUS_IMDS_ENDPOINT": imds.endpoint,
        "MULTUS_NETNS": netns.name,
        "MULTUS_LINK_DIR": str(node.link_dir),
        "MULTUS_NETWORK_DIR": str(node.network_dir),
        "MULTUS_IMDS_ATTEMPTS": "5",
        "MULTUS_IMDS_RETRY_SECONDS": "0.01",
        "MULTUS_NETWORKCTL": str(node.root / "bin" / "networkctl"),
        "MULTUS_UDEVADM": str(node.root / "bin" / "udevadm"),
        "MULTUS_SYSTEMCTL": str(node.root / "bin" / "systemctl"),
        "MULTUS_LINKS_WAIT_SECONDS": "0",
        "MULTUS_LINKS_POLL_SECONDS": "0.01",
        "MULTUS_LINKS_READY_FILE": str(node.ready_file),
    }
    env.update(overrides)
    return env


def run(script: Path, *args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(script), *args], env=dict(env), capture_output=True, text=True, check=False)  # noqa: S603


@pytest.fixture
def node(tmp_path: Path, world: World) -> Node:
    return make_node(tmp_path / "first", world.plan_text())


@pytest.fixture
def other_node(tmp_path: Path, world: World) -> Node:
    return make_node(tmp_path / "second", world.plan_text())


@dataclass(frozen=True)
class SecondNode:
    """The second node (World.second): its namespace, its IMDS and its files."""

    netns: NodeNetns
    imds: LocalImds
    node: Node


@pytest.fixture
def second(other_netns: NodeNetns, other_imds: LocalImds, other_node: Node) -> SecondNode:
    return SecondNode(other_netns, other_imds, other_node)


def imds_statuses(imds: LocalImds, what: str) -> list[int]:
    """The statuses IMDS answered for GETs whose path ends with ``what``."""
    return [r.status for r in imds.requests if r.method == "GET" and r.path.endswith(what)]
