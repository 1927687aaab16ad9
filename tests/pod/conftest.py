"""Fixtures for the pod side: real network namespaces, the local AWS with a worker instance, a local IMDSv2.

Network namespaces need CAP_SYS_ADMIN; where ``ip netns add`` is refused, the tests that need one are skipped
with the reason. Names carry the worker's pid and a counter, so ``pytest -n 2`` workers never collide, and
every namespace is deleted in the fixture's teardown even when the test fails.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Network
from typing import Any

import pytest

import localaws.ec2_secondary_ips  # noqa: F401 - registers the secondary-IP behaviours with LocalAWS
from localaws import LocalAWS
from localaws.imds import LocalImds
from pod_ip_manager.app import main

REGION = "eu-west-1"
NO_MANAGE = {"Key": "node.k8s.amazonaws.com/no_manage", "Value": "true"}
_names = itertools.count()


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)  # noqa: S603, S607


def _netns_refusal() -> str | None:
    if sys.version_info < (3, 12):
        return (
            "PIM_NETNS enters the pod's namespace with os.setns, new in Python 3.12 "
            "(the container runs Python 3.13; the development default is 3.13 too)"
        )
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"pimprobe{os.getpid()}"
    result = ip("netns", "add", probe, check=False)
    if result.returncode != 0:
        return f"cannot create network namespaces here: {result.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


_REFUSAL: list[str | None] = []


def netns_refusal() -> str | None:
    if not _REFUSAL:
        _REFUSAL.append(_netns_refusal())
    return _REFUSAL[0]


@dataclass
class PodNetns:
    """A pod's network namespace: ``eth0`` (veth, the primary pod interface) and macvlan Multus interfaces on
    an uplink (macvlan stands in for ipvlan, which is not available here; both carry the MAC we give them)."""

    name: str
    interfaces: list[str] = field(default_factory=list)

    def run(self, *args: str) -> None:
        ip("-n", self.name, *args)

    def add_multus(self, name: str, mac: str) -> None:
        self.run("link", "add", "link", "uplink", "name", name, "address", mac, "type", "macvlan", "mode", "bridge")
        self.run("link", "set", name, "up")
        self.interfaces.append(name)

    def add_address(self, interface: str, cidr: str) -> None:
        extra = ["nodad"] if ":" in cidr else []
        self.run("addr", "add", cidr, "dev", interface, *extra)

    def del_address(self, interface: str, cidr: str) -> None:
        self.run("addr", "del", cidr, "dev", interface)


@pytest.fixture
def pod_netns() -> Iterator[PodNetns]:
    refusal = netns_refusal()
    if refusal:
        pytest.skip(refusal)
    name = f"pim-{os.getpid()}-{next(_names)}"
    ip("netns", "add", name)
    try:
        netns = PodNetns(name)
        netns.run("link", "set", "lo", "up")
        netns.run("link", "add", "eth0", "type", "veth", "peer", "name", "uplink")
        for link in ("eth0", "uplink"):
            netns.run("link", "set", link, "up")
        netns.add_address("eth0", "192.168.77.10/32")
        yield netns
    finally:
        ip("netns", "del", name, check=False)


# --- the local AWS ---------------------------------------------------------------------------------------------


@dataclass
class World:
    """One VPC; a worker instance with two Multus ENIs (device 1 in 10.0.4.0/24, device 2 in 10.0.5.0/24),
    and a second worker ("other node") with its own ENI in 10.0.4.0/24, for addresses that move."""

    aws: LocalAWS
    ec2: Any
    instance_id: str
    primary_eni: str
    eni_a: str
    mac_a: str
    eni_b: str
    mac_b: str
    other_eni: str
    ipv6_a: str
    """The IPv6 /64 of the 10.0.4.0/24 subnet."""
    subnet_a: str = ""
    """The subnet id of 10.0.4.0/24."""

    def secondary_ips(self, eni_id: str) -> set[str]:
        eni = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
        ipv4 = {i["PrivateIpAddress"] for i in eni["PrivateIpAddresses"] if not i["Primary"]}
        return ipv4 | {i["Ipv6Address"] for i in eni.get("Ipv6Addresses", [])}

    def v6(self, host: int) -> str:
        """An address of the 10.0.4.0/24 subnet's IPv6 /64."""
        return str(IPv6Network(self.ipv6_a)[host])


def _build_world(aws: LocalAWS) -> World:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    vpc_id = vpc["VpcId"]
    vpc = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    block = vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]  # a /56
    az = f"{REGION}a"

    def subnet(cidr: str, ipv6: str | None) -> str:
        kwargs: dict[str, Any] = {"VpcId": vpc_id, "CidrBlock": cidr, "AvailabilityZone": az}
        if ipv6:
            kwargs["Ipv6CidrBlock"] = ipv6
        return str(ec2.create_subnet(**kwargs)["Subnet"]["SubnetId"])

    primary_subnet = subnet("10.0.0.0/24", None)
    ipv6_a = str(list(IPv6Network(block).subnets(new_prefix=64))[4])
    subnet_a = subnet("10.0.4.0/24", ipv6_a)
    subnet_b = subnet("10.0.5.0/24", None)
    image = "ami-12c6146b"  # moto does not check the image; describing its catalogue costs a second

    def instance() -> tuple[str, str]:
        reservation = ec2.run_instances(
            ImageId=image, InstanceType="m5.large", MinCount=1, MaxCount=1, SubnetId=primary_subnet
        )
        created = reservation["Instances"][0]
        aws.clock.advance(aws.realism.visibility_lag)  # EC2 lists a new instance after a short lag
        return created["InstanceId"], created["NetworkInterfaces"][0]["NetworkInterfaceId"]

    def multus_eni(subnet_id: str, instance_id: str, device: int) -> tuple[str, str]:
        eni = ec2.create_network_interface(
            SubnetId=subnet_id,
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": [NO_MANAGE]}],
        )["NetworkInterface"]
        aws.clock.advance(aws.realism.visibility_lag)  # and a new ENI
        ec2.attach_network_interface(
            NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=instance_id, DeviceIndex=device
        )
        return eni["NetworkInterfaceId"], eni["MacAddress"].lower()

    instance_id, primary_eni = instance()
    eni_a, mac_a = multus_eni(subnet_a, instance_id, 1)
    eni_b, mac_b = multus_eni(subnet_b, instance_id, 2)
    other_instance, _ = instance()
    other_eni, _ = multus_eni(subnet_a, other_instance, 1)
    return World(aws, ec2, instance_id, primary_eni, eni_a, mac_a, eni_b, mac_b, other_eni, ipv6_a, subnet_a)


@pytest.fixture
def world() -> Iterator[World]:
    with LocalAWS(region=REGION) as aws:
        built = _build_world(aws)
        aws.clock.advance(600)  # the node booted minutes ago: its ENIs are attached and visible everywhere
        yield built


@pytest.fixture
def imds(world: World) -> Iterator[LocalImds]:
    with LocalImds(world.aws, world.instance_id) as server:
        yield server


# --- running the manager in-process ----------------------------------------------------------------------------


class LogStream(io.TextIOBase):
    """Where the manager writes its JSON lines; tests read (and wait on) them from any thread."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._partial = ""
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            self._partial += text
            *complete, self._partial = self._partial.split("\n")
            self._lines.extend(line for line in complete if line)
            self._changed.notify_all()
        return len(text)

    def records(self) -> list[dict[str, Any]]:
        with self._changed:
            return [json.loads(line) for line in self._lines]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self._lines:
                    record: dict[str, Any] = json.loads(line)
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching log line within {timeout}s; got {self._lines}")
                self._changed.wait(remaining)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Wait on state, with a bound (never a fixed sleep as an assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.02)


def manager_env(world: World, imds: LocalImds, netns: PodNetns, **overrides: str) -> dict[str, str]:
    env = {
        "PIM_REGION": REGION,
        "PIM_IMDS_ENDPOINT": imds.endpoint,
        "PIM_NETNS": netns.name,
        "PIM_WAIT_SECONDS": "5",
        "PIM_CONFIRM_SECONDS": "2",
        "PIM_RETRY_BASE_SECONDS": "0.001",
        "PIM_RETRY_MAX_SECONDS": "0.002",
        "PIM_LOG_LEVEL": "DEBUG",
    }
    env.update(overrides)
    return env


@dataclass
class Finished:
    exit_code: int
    log: LogStream

    def messages(self) -> list[str]:
        return [str(r["message"]) for r in self.log.records()]

    def error(self) -> dict[str, Any]:
        return next(r for r in self.log.records() if r["level"] == "ERROR")


def run_init(env: dict[str, str], during: Callable[[LogStream], None] | None = None) -> Finished:
    """``python -m pod_ip_manager init`` in-process; ``during`` runs in a thread while the manager runs."""
    log = LogStream()
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            assert during is not None
            during(log)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(error)

    driver = threading.Thread(target=drive) if during else None
    if driver:
        driver.start()
    code = main(["init"], env, out=log)
    if driver:
        driver.join(60)
    if failures:
        raise failures[0]
    return Finished(code, log)


def run_sidecar(env: dict[str, str], script: Callable[[LogStream], None]) -> Finished:
    """``python -m pod_ip_manager sidecar`` in-process, in the main thread (where signal handlers run).

    ``script`` runs in a driver thread once the sidecar follows address changes; then the driver sends a real
    SIGTERM to this process. A handler of our own is in place around the run, so a SIGTERM that arrives after
    the sidecar restored the previous handler cannot kill the test worker."""
    log = LogStream()
    failures: list[BaseException] = []
    finished = threading.Event()

    def drive() -> None:
        try:
            log.wait_for(lambda r: r["message"] == "following address changes")
            script(log)
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(error)
        finally:
            if not finished.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        driver = threading.Thread(target=drive)
        driver.start()
        code = main(["sidecar"], env, out=log)
        finished.set()
        driver.join(60)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failures:
        raise failures[0]
    return Finished(code, log)
