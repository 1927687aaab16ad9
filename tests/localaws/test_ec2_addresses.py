"""CreateNetworkInterface address rules (DOMAIN.md §3, §4)."""

from __future__ import annotations

import ipaddress
import threading
from collections import Counter

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ec2 import EC2Client

from localaws import LocalAWS

from .conftest import Net, error_code, run_instance


def _primary(ec2: EC2Client, subnet_id: str, **kwargs: object) -> str:
    eni = ec2.create_network_interface(SubnetId=subnet_id, **kwargs)["NetworkInterface"]  # type: ignore[arg-type]
    return eni["PrivateIpAddress"]


def test_given_an_address_held_as_primary_when_another_eni_requests_it_then_invalid_ip_address_in_use(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: InvalidIPAddress.InUse — a requested private IP is already assigned in the subnet.
    ec2.create_network_interface(SubnetId=net.subnet_id, PrivateIpAddress="10.0.1.5")

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id, PrivateIpAddress="10.0.1.5")

    assert error_code(excinfo) == "InvalidIPAddress.InUse"


def test_given_an_address_held_as_secondary_when_another_eni_requests_it_then_invalid_ip_address_in_use(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: InvalidIPAddress.InUse — secondary addresses are taken just like primaries.
    ec2.create_network_interface(
        SubnetId=net.subnet_id,
        PrivateIpAddresses=[
            {"PrivateIpAddress": "10.0.1.5", "Primary": True},
            {"PrivateIpAddress": "10.0.1.6", "Primary": False},
        ],
    )

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(
            SubnetId=net.subnet_id, PrivateIpAddresses=[{"PrivateIpAddress": "10.0.1.6", "Primary": True}]
        )

    assert error_code(excinfo) == "InvalidIPAddress.InUse"


def test_given_an_address_outside_the_subnet_when_requested_then_invalid_parameter_value(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: InvalidParameterValue — the address does not fall within the subnet's range.
    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id, PrivateIpAddress="10.0.9.9")

    assert error_code(excinfo) == "InvalidParameterValue"


@pytest.mark.parametrize("address", ["10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.15"])
def test_given_an_aws_reserved_address_when_requested_then_invalid_parameter_value(
    ec2: EC2Client, net: Net, address: str
) -> None:
    # AWS: InvalidParameterValue — the first four and the last address of every subnet are AWS's.
    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id, PrivateIpAddress=address)

    assert error_code(excinfo) == "InvalidParameterValue"


def test_given_a_full_subnet_when_an_eni_is_created_then_insufficient_free_addresses_in_subnet(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: InsufficientFreeAddressesInSubnet — a /28 has 11 assignable addresses.
    for _ in range(11):
        ec2.create_network_interface(SubnetId=net.subnet_id)

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id)

    assert error_code(excinfo) == "InsufficientFreeAddressesInSubnet"


def test_given_an_explicit_reservation_when_an_address_inside_it_is_requested_then_it_is_assigned(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: explicit reservations are for addresses you assign yourself (how pods get theirs): allowed.
    ec2.create_subnet_cidr_reservation(SubnetId=net.subnet_id, Cidr="10.0.1.8/29", ReservationType="explicit")

    assert _primary(ec2, net.subnet_id, PrivateIpAddress="10.0.1.9") == "10.0.1.9"


@pytest.mark.parametrize("reservation_type", ["explicit", "prefix"])
def test_given_a_reservation_when_enis_are_created_without_an_address_then_ec2_picks_only_outside_it(
    ec2: EC2Client, net: Net, reservation_type: str
) -> None:
    # AWS: EC2 never assigns reserved (CIDR reservation or AWS-reserved) addresses itself; when the rest is
    # used up: InsufficientFreeAddressesInSubnet. 10.0.1.0/28 minus .0-.3, .15 and 10.0.1.8/29 leaves .4-.7.
    ec2.create_subnet_cidr_reservation(
        SubnetId=net.subnet_id,
        Cidr="10.0.1.8/29",
        ReservationType=reservation_type,  # type: ignore[arg-type]
    )

    picked = {_primary(ec2, net.subnet_id) for _ in range(4)}

    assert picked == {"10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.1.7"}
    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id)
    assert error_code(excinfo) == "InsufficientFreeAddressesInSubnet"


def test_given_a_reservation_when_secondary_addresses_are_counted_then_ec2_picks_distinct_ones_outside_it(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: SecondaryPrivateIpAddressCount follows the same rules as the primary address.
    ec2.create_subnet_cidr_reservation(SubnetId=net.subnet_id, Cidr="10.0.1.8/29", ReservationType="explicit")

    eni = ec2.create_network_interface(SubnetId=net.subnet_id, SecondaryPrivateIpAddressCount=3)["NetworkInterface"]

    assert {a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]} == {
        "10.0.1.4",
        "10.0.1.5",
        "10.0.1.6",
        "10.0.1.7",
    }


def test_given_an_eni_holding_an_address_when_an_instance_launches_then_its_primary_address_is_another(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: instances' primary addresses come from the same pool; moto hands out .4 upward, ignoring ENIs.
    held = {_primary(ec2, net.subnet_id, PrivateIpAddress=f"10.0.1.{i}") for i in (4, 5, 6)}

    instance_id = run_instance(ec2, net.subnet_id)

    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["PrivateIpAddress"] not in held


def test_given_tag_specifications_when_an_eni_is_created_then_it_is_tagged_at_creation(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: TagSpecifications apply atomically at creation (moto does this already; kept as a guard).
    eni = ec2.create_network_interface(
        SubnetId=net.subnet_id,
        TagSpecifications=[
            {
                "ResourceType": "network-interface",
                "Tags": [{"Key": "node.k8s.amazonaws.com/no_manage", "Value": "true"}],
            }
        ],
    )["NetworkInterface"]

    assert eni["TagSet"] == [{"Key": "node.k8s.amazonaws.com/no_manage", "Value": "true"}]


def test_given_a_client_token_when_the_same_request_is_repeated_then_the_same_eni_comes_back(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: ClientToken idempotency — a retried create returns the original ENI and creates nothing.
    first = ec2.create_network_interface(SubnetId=net.subnet_id, ClientToken="launch-i-1-eth1")
    second = ec2.create_network_interface(SubnetId=net.subnet_id, ClientToken="launch-i-1-eth1")

    assert second["NetworkInterface"]["NetworkInterfaceId"] == first["NetworkInterface"]["NetworkInterfaceId"]
    assert len(ec2.describe_network_interfaces()["NetworkInterfaces"]) == 1


def test_given_a_client_token_when_reused_with_other_parameters_then_idempotent_parameter_mismatch(
    ec2: EC2Client, net: Net
) -> None:
    # AWS: IdempotentParameterMismatch — same token, different request.
    ec2.create_network_interface(SubnetId=net.subnet_id, ClientToken="launch-i-1-eth1", Description="a")

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=net.subnet_id, ClientToken="launch-i-1-eth1", Description="b")

    assert error_code(excinfo) == "IdempotentParameterMismatch"


def test_given_50_threads_requesting_25_addresses_twice_when_they_race_then_exactly_one_wins_each_address(
    aws: LocalAWS, ec2: EC2Client
) -> None:
    # AWS: InvalidIPAddress.InUse for every loser of a race for the same address; no duplicates ever.
    vpc_id = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.1.0.0/24", AvailabilityZone="us-east-1a")["Subnet"][
        "SubnetId"
    ]
    wanted = [f"10.1.0.{10 + i % 25}" for i in range(50)]
    outcomes: list[str] = []
    start = threading.Barrier(50)
    shared: EC2Client = aws.client("ec2")  # botocore clients are thread-safe

    def create(i: int) -> None:
        start.wait()
        try:
            shared.create_network_interface(SubnetId=subnet_id, PrivateIpAddress=wanted[i])
            outcomes.append("ok")
        except ClientError as error:
            outcomes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=create, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Counter(outcomes) == {"ok": 25, "InvalidIPAddress.InUse": 25}
    held = [eni["PrivateIpAddress"] for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]]
    assert sorted(held) == sorted(set(wanted))
    assert len(aws.calls_to("ec2", "CreateNetworkInterface")) == 50


# --- IPv6 ---------------------------------------------------------------------------------------------------


def _dual_stack_subnet(ec2: EC2Client) -> tuple[str, ipaddress.IPv6Network]:
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    vpc_block = ipaddress.IPv6Network(vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"])
    block = next(vpc_block.subnets(new_prefix=64))
    subnet = ec2.create_subnet(
        VpcId=vpc["VpcId"], CidrBlock="10.2.0.0/24", Ipv6CidrBlock=str(block), AvailabilityZone="us-east-1a"
    )
    return subnet["Subnet"]["SubnetId"], block


def test_given_an_ipv6_address_in_use_when_requested_again_then_invalid_ip_address_in_use(ec2: EC2Client) -> None:
    # AWS: a taken IPv6 address is refused. We assume InvalidIPAddress.InUse as for IPv4 (code unconfirmed).
    subnet_id, block = _dual_stack_subnet(ec2)
    address = str(block.network_address + 0x100)
    ec2.create_network_interface(SubnetId=subnet_id, Ipv6Addresses=[{"Ipv6Address": address}])

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=subnet_id, Ipv6Addresses=[{"Ipv6Address": address}])

    assert error_code(excinfo) == "InvalidIPAddress.InUse"


def test_given_an_ipv6_address_outside_the_subnet_when_requested_then_invalid_parameter_value(
    ec2: EC2Client,
) -> None:
    # AWS: InvalidParameterValue — the address is not in the subnet's IPv6 CIDR.
    subnet_id, _ = _dual_stack_subnet(ec2)

    with pytest.raises(ClientError) as excinfo:
        ec2.create_network_interface(SubnetId=subnet_id, Ipv6Addresses=[{"Ipv6Address": "2001:db8::10"}])

    assert error_code(excinfo) == "InvalidParameterValue"


def test_given_an_ipv6_reservation_when_addresses_are_counted_then_ec2_picks_distinct_ones_outside_it(
    aws: LocalAWS, ec2: EC2Client
) -> None:
    # AWS: Ipv6AddressCount never lands in a CIDR reservation or the reserved addresses.
    if not aws.extensions:
        pytest.fail("plain moto enumerates every address of an IPv6 /65 reservation and never returns")
    subnet_id, block = _dual_stack_subnet(ec2)
    reserved = next(block.subnets(new_prefix=65))
    ec2.create_subnet_cidr_reservation(SubnetId=subnet_id, Cidr=str(reserved), ReservationType="explicit")

    eni = ec2.create_network_interface(SubnetId=subnet_id, Ipv6AddressCount=12)["NetworkInterface"]

    picked = [ipaddress.IPv6Address(a["Ipv6Address"]) for a in eni["Ipv6Addresses"]]
    assert len(set(picked)) == 12
    assert all(a in block and a not in reserved for a in picked)
