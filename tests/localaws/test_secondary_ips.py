"""Secondary IPs behave as on EC2 (``localaws.ec2_secondary_ips``); plain moto accepts all of these."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Network
from typing import Any

import pytest
from botocore.exceptions import ClientError

import localaws.ec2_secondary_ips  # noqa: F401 - registers the extension
from localaws import LocalAWS, Realism


@dataclass
class Pair:
    ec2: Any
    a: str
    b: str
    ipv6: str


@pytest.fixture
def pair() -> Iterator[Pair]:
    with LocalAWS(region="eu-west-1", realism=Realism.strict()) as aws:  # rules only (timing: test_realism.py)
        ec2 = aws.client("ec2")
        vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
        block = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
        # Canonical form: moto writes the VPC block with zero-padded groups (":0100::"), EC2 and localaws
        # answer with compressed ones, and the assertions compare strings.
        ipv6 = str(IPv6Network(block.replace("/56", "/64")))
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.4.0/24", Ipv6CidrBlock=ipv6)["Subnet"]["SubnetId"]
        a, b = (ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"] for _ in "ab")
        yield Pair(ec2, a, b, ipv6.split("/", maxsplit=1)[0])


def _ips(pair: Pair, eni: str) -> set[str]:
    found = pair.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    return {i["PrivateIpAddress"] for i in found["PrivateIpAddresses"] if not i["Primary"]} | {
        i["Ipv6Address"] for i in found.get("Ipv6Addresses", [])
    }


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_given_an_ipv4_on_another_eni_when_assigned_without_reassignment_then_in_use(pair: Pair) -> None:
    pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.a, PrivateIpAddresses=["10.0.4.200"])
    with pytest.raises(ClientError) as caught:
        pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.b, PrivateIpAddresses=["10.0.4.200"])
    assert _code(caught) == "InvalidIPAddress.InUse"
    assert _ips(pair, pair.a) == {"10.0.4.200"}


def test_given_an_ipv4_on_another_eni_when_assigned_with_reassignment_then_it_moves(pair: Pair) -> None:
    pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.a, PrivateIpAddresses=["10.0.4.200"])
    pair.ec2.assign_private_ip_addresses(
        NetworkInterfaceId=pair.b, PrivateIpAddresses=["10.0.4.200"], AllowReassignment=True
    )
    assert (_ips(pair, pair.a), _ips(pair, pair.b)) == (set(), {"10.0.4.200"})


def test_given_another_enis_primary_ip_when_reassigned_then_invalid_parameter_value(pair: Pair) -> None:
    primary = pair.ec2.describe_network_interfaces(NetworkInterfaceIds=[pair.a])["NetworkInterfaces"][0]
    with pytest.raises(ClientError) as caught:
        pair.ec2.assign_private_ip_addresses(
            NetworkInterfaceId=pair.b, PrivateIpAddresses=[primary["PrivateIpAddress"]], AllowReassignment=True
        )
    assert _code(caught) == "InvalidParameterValue"


def test_given_an_address_outside_the_subnet_when_assigned_then_invalid_parameter_value(pair: Pair) -> None:
    with pytest.raises(ClientError) as caught:
        pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.a, PrivateIpAddresses=["10.0.5.9"])
    assert _code(caught) == "InvalidParameterValue"


def test_given_an_address_not_on_the_eni_when_unassigned_then_invalid_parameter_value(pair: Pair) -> None:
    with pytest.raises(ClientError) as caught:
        pair.ec2.unassign_private_ip_addresses(NetworkInterfaceId=pair.a, PrivateIpAddresses=["10.0.4.201"])
    assert _code(caught) == "InvalidParameterValue"


def test_given_an_ipv6_on_another_eni_when_assigned_then_in_use_until_its_holder_unassigns_it(pair: Pair) -> None:
    address = pair.ipv6 + "99"
    pair.ec2.assign_ipv6_addresses(NetworkInterfaceId=pair.a, Ipv6Addresses=[address])
    with pytest.raises(ClientError) as caught:
        pair.ec2.assign_ipv6_addresses(NetworkInterfaceId=pair.b, Ipv6Addresses=[address])
    assert _code(caught) == "InvalidIPAddress.InUse"
    pair.ec2.unassign_ipv6_addresses(NetworkInterfaceId=pair.a, Ipv6Addresses=[address])
    pair.ec2.assign_ipv6_addresses(NetworkInterfaceId=pair.b, Ipv6Addresses=[address])
    assert (_ips(pair, pair.a), _ips(pair, pair.b)) == (set(), {address})


def test_given_an_ipv6_not_on_the_eni_when_unassigned_then_invalid_parameter_value(pair: Pair) -> None:
    with pytest.raises(ClientError) as caught:
        pair.ec2.unassign_ipv6_addresses(NetworkInterfaceId=pair.a, Ipv6Addresses=[pair.ipv6 + "98"])
    assert _code(caught) == "InvalidParameterValue"


def test_given_a_count_when_assigning_then_free_addresses_are_picked_and_only_they_are_returned(pair: Pair) -> None:
    answer = pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.a, SecondaryPrivateIpAddressCount=2)
    picked = {i["PrivateIpAddress"] for i in answer["AssignedPrivateIpAddresses"]}
    assert len(picked) == 2
    assert _ips(pair, pair.a) == picked


def test_given_several_addresses_in_one_filter_when_described_then_every_eni_holding_any_of_them_is_found(
    pair: Pair,
) -> None:
    # AWS ORs the values of one filter; moto wanted them to be a subset or superset of the interface's addresses
    # (and every interface also holds its primary), so a lookup of two addresses found nobody.
    pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.a, PrivateIpAddresses=["10.0.4.200"])
    pair.ec2.assign_private_ip_addresses(NetworkInterfaceId=pair.b, PrivateIpAddresses=["10.0.4.201"])
    pair.ec2.assign_ipv6_addresses(NetworkInterfaceId=pair.b, Ipv6Addresses=[pair.ipv6 + "97"])

    def found(name: str, values: list[str]) -> set[str]:
        answer = pair.ec2.describe_network_interfaces(Filters=[{"Name": name, "Values": values}])
        return {eni["NetworkInterfaceId"] for eni in answer["NetworkInterfaces"]}

    assert found("addresses.private-ip-address", ["10.0.4.200", "10.0.4.201", "127.0.0.1"]) == {pair.a, pair.b}
    assert found("addresses.private-ip-address", ["10.0.4.200", "10.0.4.202"]) == {pair.a}
    assert found("ipv6-addresses.ipv6-address", [pair.ipv6 + "97", pair.ipv6 + "96"]) == {pair.b}
    assert found("addresses.private-ip-address", ["10.0.4.202"]) == set()
