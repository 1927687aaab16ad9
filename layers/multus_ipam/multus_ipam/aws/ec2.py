"""EC2 adapter: the only place the engine's EC2 calls are made."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import ClientError

from multus_ipam.aws._errors import aws_call, error_code, error_message
from multus_ipam.errors import (
    DeviceIndexTaken,
    InsufficientAddresses,
    IpAddressInUse,
    NotYetVisible,
    SubnetMisconfigured,
)
from multus_ipam.ports import AttachedInterface, Attachment, CreateEni, Eni, Instance, Reservation, Subnet
from multus_ipam.settings import INSTANCE_TAG, OWNER_TAG

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, NetworkInterfaceTypeDef

DEVICE_INDEX_TAKEN = "already has an interface attached at device index"
#: Codes EC2 answers for an id it does not know (yet): eventual consistency right after a create or a launch.
NOT_FOUND_CODES = frozenset(
    {"InvalidInstanceID.NotFound", "InvalidNetworkInterfaceID.NotFound", "InvalidAttachmentID.NotFound"}
)
#: EC2 describes take MaxResults from 5 to 1000 (EC2 API reference).
PAGE_SIZE_RANGE = (5, 1000)
#: A single EC2 request takes at most 200 filter values (FilterLimitExceeded beyond).
MAX_FILTER_VALUES = 200


class Ec2Adapter:
    """Implements :class:`multus_ipam.ports.Ec2` over a boto3 EC2 client."""

    IAM_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "ec2:DescribeInstances",
            "ec2:DescribeSubnets",
            "ec2:DescribeNetworkInterfaces",
            "ec2:GetSubnetCidrReservations",
            "ec2:CreateNetworkInterface",
            "ec2:CreateTags",  # tag-on-create: needed for TagSpecifications on CreateNetworkInterface
            "ec2:AttachNetworkInterface",
            "ec2:ModifyNetworkInterfaceAttribute",
            "ec2:DetachNetworkInterface",
            "ec2:DeleteNetworkInterface",
        }
    )

    def __init__(self, client: EC2Client, *, page_size: int = 1000) -> None:
        low, high = PAGE_SIZE_RANGE
        if not low <= page_size <= high:
            raise ValueError(f"page_size {page_size} is outside EC2's MaxResults range {low}-{high}")
        self._client = client
        self._page_size = page_size

    # --- reads ----------------------------------------------------------------------------------------

    def describe_instance(self, instance_id: str) -> Instance | None:
        with aws_call("DescribeInstances"):
            try:
                response = self._client.describe_instances(InstanceIds=[instance_id])
            except ClientError as error:
                if error_code(error) == "InvalidInstanceID.NotFound":
                    return None
                raise
        for reservation in response.get("Reservations", []):
            for item in reservation.get("Instances", []):
                return Instance(
                    instance_id=item["InstanceId"],
                    availability_zone=item["Placement"]["AvailabilityZone"],
                    state=item["State"]["Name"],
                    interfaces=tuple(
                        AttachedInterface(
                            eni_id=nic.get("NetworkInterfaceId", ""),
                            device_index=nic["Attachment"].get("DeviceIndex", 0),
                            network_card_index=nic["Attachment"].get("NetworkCardIndex", 0),
                        )
                        for nic in item.get("NetworkInterfaces", [])
                        if "Attachment" in nic
                    ),
                )
        return None

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[Subnet]:
        with aws_call("DescribeSubnets"):
            try:
                response = self._client.describe_subnets(SubnetIds=list(subnet_ids))
            except ClientError as error:
                if error_code(error) == "InvalidSubnetID.NotFound":
                    raise SubnetMisconfigured(f"MULTUS_SUBNET_IDS: {error_message(error)}") from error
                raise
        subnets = []
        for item in response.get("Subnets", []):
            ipv6 = [
                IPv6Network(assoc["Ipv6CidrBlock"])
                for assoc in item.get("Ipv6CidrBlockAssociationSet", [])
                if assoc.get("Ipv6CidrBlockState", {}).get("State") == "associated" and "Ipv6CidrBlock" in assoc
            ]
            cidr = item.get("CidrBlock")
            subnets.append(
                Subnet(
                    subnet_id=item["SubnetId"],
                    availability_zone=item["AvailabilityZone"],
                    vpc_id=item["VpcId"],
                    ipv4_cidr=IPv4Network(cidr) if cidr and not item.get("Ipv6Native") else None,
                    ipv6_cidr=ipv6[0] if ipv6 else None,
                )
            )
        return subnets

    def subnet_enis(self, subnet_ids: Sequence[str]) -> list[Eni]:
        if isinstance(subnet_ids, str):  # a str is a Sequence[str] too: one subnet's characters
            raise TypeError("subnet_ids: a sequence of subnet ids, not one id")
        ids = sorted(set(subnet_ids))
        if len(ids) > MAX_FILTER_VALUES:
            raise ValueError(f"{len(ids)} subnets: one request takes at most {MAX_FILTER_VALUES} filter values")
        return list(self._enis([{"Name": "subnet-id", "Values": ids}]))

    def owned_enis(self, owner: str, instance_id: str) -> list[Eni]:
        return list(
            self._enis(
                [
                    {"Name": f"tag:{OWNER_TAG}", "Values": [owner]},
                    {"Name": f"tag:{INSTANCE_TAG}", "Values": [instance_id]},
                ]
            )
        )

    def detached_enis(self, owner: str) -> list[Eni]:
        return list(
            self._enis(
                [
                    {"Name": f"tag:{OWNER_TAG}", "Values": [owner]},
                    {"Name": "status", "Values": ["available"]},
                ]
            )
        )

    def instance_states(self, instance_ids: Sequence[str]) -> dict[str, str]:
        states: dict[str, str] = {}
        ids = sorted(set(instance_ids))
        paginator = self._client.get_paginator("describe_instances")
        # A filter, not InstanceIds: one unknown id would fail the whole request with NotFound. At most
        # MAX_FILTER_VALUES values per request.
        for start in range(0, len(ids), MAX_FILTER_VALUES):
            chunk = ids[start : start + MAX_FILTER_VALUES]
            pages = paginator.paginate(
                Filters=[{"Name": "instance-id", "Values": chunk}], PaginationConfig={"PageSize": self._page_size}
            )
            with aws_call("DescribeInstances"):
                for page in pages:
                    for reservation in page.get("Reservations", []):
                        for item in reservation.get("Instances", []):
                            states[item["InstanceId"]] = item["State"]["Name"]
        return states

    def describe_eni(self, eni_id: str) -> Eni | None:
        with aws_call("DescribeNetworkInterfaces"):
            try:
                response = self._client.describe_network_interfaces(NetworkInterfaceIds=[eni_id])
            except ClientError as error:
                if error_code(error) == "InvalidNetworkInterfaceID.NotFound":
                    return None
                raise
        items = response.get("NetworkInterfaces", [])
        return _eni(items[0]) if items else None

    def subnet_reservations(self, subnet_id: str) -> list[Reservation]:
        # No botocore paginator for this operation: follow NextToken ourselves.
        reservations: list[Reservation] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"SubnetId": subnet_id, "MaxResults": self._page_size}
            if token:
                kwargs["NextToken"] = token
            with aws_call("GetSubnetCidrReservations"):
                response = self._client.get_subnet_cidr_reservations(**kwargs)
            found = [*response.get("SubnetIpv4CidrReservations", []), *response.get("SubnetIpv6CidrReservations", [])]
            reservations.extend(
                Reservation(
                    reservation_id=item.get("SubnetCidrReservationId", ""),
                    cidr=ip_network(item["Cidr"]),
                    kind=str(item.get("ReservationType", "explicit")),
                )
                for item in found
            )
            token = response.get("NextToken")
            if not token:
                return reservations

    def _enis(self, filters: Sequence[FilterTypeDef]) -> Iterator[Eni]:
        paginator = self._client.get_paginator("describe_network_interfaces")
        with aws_call("DescribeNetworkInterfaces"):
            for page in paginator.paginate(Filters=list(filters), PaginationConfig={"PageSize": self._page_size}):
                for item in page.get("NetworkInterfaces", []):
                    yield _eni(item)

    # --- writes ---------------------------------------------------------------------------------------

    def create_eni(self, request: CreateEni) -> Eni:
        kwargs: dict[str, Any] = {
            "SubnetId": request.subnet_id,
            "Groups": list(request.security_groups),
            "Description": request.description,
            "ClientToken": request.client_token,
            "TagSpecifications": [
                {
                    "ResourceType": "network-interface",
                    "Tags": [{"Key": k, "Value": v} for k, v in sorted(request.tags.items())],
                }
            ],
        }
        if request.ipv4 is not None:
            kwargs["PrivateIpAddress"] = str(request.ipv4)
        if request.ipv6 is not None:
            kwargs["Ipv6Addresses"] = [{"Ipv6Address": str(request.ipv6)}]
        elif request.ipv6_count:
            kwargs["Ipv6AddressCount"] = request.ipv6_count
        with aws_call("CreateNetworkInterface"):
            try:
                response = self._client.create_network_interface(**kwargs)
            except ClientError as error:
                code = error_code(error)
                if code == "InvalidIPAddress.InUse":
                    raise IpAddressInUse(error_message(error)) from error
                if code == "InsufficientFreeAddressesInSubnet":
                    raise InsufficientAddresses(f"{request.subnet_id}: {error_message(error)}") from error
                raise
        return _eni(response["NetworkInterface"])

    def attach_eni(self, eni_id: str, instance_id: str, device_index: int, network_card_index: int) -> str:
        with aws_call("AttachNetworkInterface"):
            try:
                response = self._client.attach_network_interface(
                    NetworkInterfaceId=eni_id,
                    InstanceId=instance_id,
                    DeviceIndex=device_index,
                    NetworkCardIndex=network_card_index,
                )
            except ClientError as error:
                # The code is the generic InvalidParameterValue: the message is what says the index is taken.
                if error_code(error) == "InvalidParameterValue" and DEVICE_INDEX_TAKEN in error_message(error):
                    raise DeviceIndexTaken(error_message(error)) from error
                _raise_if_not_found(error, "AttachNetworkInterface", eni_id, instance_id)
                raise
        return response["AttachmentId"]

    def set_delete_on_termination(self, eni_id: str, attachment_id: str) -> None:
        with aws_call("ModifyNetworkInterfaceAttribute"):
            try:
                self._client.modify_network_interface_attribute(
                    NetworkInterfaceId=eni_id, Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True}
                )
            except ClientError as error:
                _raise_if_not_found(error, "ModifyNetworkInterfaceAttribute", eni_id, attachment_id)
                raise

    def tag_eni(self, eni_id: str, tags: Mapping[str, str]) -> None:
        """Add (or overwrite) the tags on an existing ENI: ``python -m multus_ipam adopt --apply`` only; the
        functions tag at creation."""
        with aws_call("CreateTags"):
            self._client.create_tags(Resources=[eni_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def set_source_dest_check(self, eni_id: str, *, enabled: bool) -> None:
        with aws_call("ModifyNetworkInterfaceAttribute"):
            try:
                self._client.modify_network_interface_attribute(
                    NetworkInterfaceId=eni_id, SourceDestCheck={"Value": enabled}
                )
            except ClientError as error:
                _raise_if_not_found(error, "ModifyNetworkInterfaceAttribute", eni_id)
                raise

    def detach_eni(self, attachment_id: str) -> None:
        with aws_call("DetachNetworkInterface"):
            try:
                self._client.detach_network_interface(AttachmentId=attachment_id)
            except ClientError as error:
                if error_code(error) == "InvalidAttachmentID.NotFound":
                    return
                raise

    def delete_eni(self, eni_id: str) -> None:
        with aws_call("DeleteNetworkInterface"):
            try:
                self._client.delete_network_interface(NetworkInterfaceId=eni_id)
            except ClientError as error:
                if error_code(error) == "InvalidNetworkInterfaceID.NotFound":
                    return
                raise


def _raise_if_not_found(error: ClientError, operation: str, eni_id: str, other_id: str | None = None) -> None:
    """NotFound for an ENI, instance or attachment id: NotYetVisible, for the engine to retry patiently."""
    code = error_code(error)
    if code not in NOT_FOUND_CODES:
        return
    resource = eni_id if code == "InvalidNetworkInterfaceID.NotFound" else (other_id or eni_id)
    raise NotYetVisible(operation, code, resource, error_message(error)) from error


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("TagSet", []) if "Key" in t and "Value" in t}


def _eni(item: NetworkInterfaceTypeDef) -> Eni:
    attachment = item.get("Attachment")
    ipv4s = [IPv4Address(a["PrivateIpAddress"]) for a in item.get("PrivateIpAddresses", []) if "PrivateIpAddress" in a]
    if not ipv4s and item.get("PrivateIpAddress"):
        ipv4s = [IPv4Address(item["PrivateIpAddress"])]
    # The primary address first, so Eni.primary_ipv4 is the one the worker uses.
    primary = [IPv4Address(a["PrivateIpAddress"]) for a in item.get("PrivateIpAddresses", []) if a.get("Primary")]
    ordered = primary + [a for a in ipv4s if a not in primary]
    return Eni(
        eni_id=item["NetworkInterfaceId"],
        subnet_id=item.get("SubnetId", ""),
        status=item.get("Status", ""),
        private_ipv4s=tuple(ordered),
        ipv6s=tuple(IPv6Address(a["Ipv6Address"]) for a in item.get("Ipv6Addresses", []) if "Ipv6Address" in a),
        ipv4_prefixes=tuple(IPv4Network(p["Ipv4Prefix"]) for p in item.get("Ipv4Prefixes", []) if "Ipv4Prefix" in p),
        ipv6_prefixes=tuple(IPv6Network(p["Ipv6Prefix"]) for p in item.get("Ipv6Prefixes", []) if "Ipv6Prefix" in p),
        attachment=Attachment(
            attachment_id=attachment["AttachmentId"],
            instance_id=attachment.get("InstanceId", ""),
            device_index=attachment.get("DeviceIndex", 0),
            network_card_index=attachment.get("NetworkCardIndex", 0),
            delete_on_termination=attachment.get("DeleteOnTermination", False),
            status=attachment.get("Status", ""),
        )
        if attachment and "AttachmentId" in attachment and attachment.get("Status") != "detached"
        else None,
        source_dest_check=item.get("SourceDestCheck", True),
        tags=_tags(item),
    )
