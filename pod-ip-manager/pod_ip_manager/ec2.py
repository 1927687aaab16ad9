"""EC2 adapter: the only place that calls boto3. Translates ``ClientError`` into our errors and retries only
throttling, with our own bounded, jittered schedule (botocore's retries are switched off so there is exactly
one retry loop and its bounds are the ones in the settings)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import TYPE_CHECKING, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pod_ip_manager.errors import AwsError, Throttled
from pod_ip_manager.model import AttachedEni, HolderEni, IPAddress
from pod_ip_manager.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef

T = TypeVar("T")

#: Every IAM action this adapter calls; ``deploy/iam/policy.json`` grants exactly the adapters' union (tested).
IAM_ACTIONS = frozenset(
    {
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
        "ec2:AssignIpv6Addresses",
        "ec2:UnassignIpv6Addresses",
        "ec2:DescribeNetworkInterfaces",
    }
)

#: The tag on our Multus ENIs (the VPC CNI leaves them alone); the IAM policy requires it too.
NO_MANAGE_TAG = "node.k8s.amazonaws.com/no_manage"

#: Error codes that mean "slow down" (EC2 and the generic one); HTTP 503 counts too.
THROTTLING_CODES = frozenset({"RequestLimitExceeded", "Throttling", "ThrottlingException"})
_SERVICE_UNAVAILABLE = 503


def ec2_client(region: str, endpoint_url: str | None = None) -> EC2Client:
    """A client with botocore's own retries off: ``call_with_retry`` is the one retry loop. ``endpoint_url``
    (``PIM_EC2_ENDPOINT``): ``None`` leaves it to botocore (the region's public endpoint)."""
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=20)
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint_url, config=config)


class Ec2:
    """``Ec2Addresses`` over boto3."""

    def __init__(
        self,
        client: EC2Client,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._policy = policy
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography

    def holders(self, addresses: Collection[IPAddress]) -> dict[IPAddress, str]:
        return {address: holder.eni_id for address, holder in self.holder_enis(addresses).items()}

    def holder_enis(
        self, addresses: Collection[IPAddress], subnet_ids: Collection[str] = ()
    ) -> dict[IPAddress, HolderEni]:
        """``subnet_ids``: only ENIs in those subnets (the node agent's Multus subnets: another VPC may use the
        same private addresses)."""
        wanted = set(addresses)
        v4 = sorted(str(a) for a in wanted if isinstance(a, IPv4Address))
        v6 = sorted(str(a) for a in wanted if isinstance(a, IPv6Address))
        found: dict[IPAddress, HolderEni] = {}
        within: list[FilterTypeDef] = [{"Name": "subnet-id", "Values": sorted(subnet_ids)}] if subnet_ids else []
        for name, values in (("addresses.private-ip-address", v4), ("ipv6-addresses.ipv6-address", v6)):
            if values:
                found.update(self._held(wanted, [{"Name": name, "Values": values}, *within]))
        return found

    def instance_enis(self, instance_id: str) -> tuple[AttachedEni, ...]:
        """Every ENI attached to ``instance_id``, with its tags and addresses (the node agent's actual state)."""
        filters: list[FilterTypeDef] = [{"Name": "attachment.instance-id", "Values": [instance_id]}]

        def describe() -> tuple[AttachedEni, ...]:
            found: list[AttachedEni] = []
            for page in self._client.get_paginator("describe_network_interfaces").paginate(Filters=filters):
                for eni in page.get("NetworkInterfaces", []):
                    attachment = eni.get("Attachment", {})
                    tags = {tag.get("Key"): tag.get("Value") for tag in eni.get("TagSet", [])}
                    primary: set[IPAddress] = set()
                    secondary: set[IPAddress] = set()
                    for item in eni.get("PrivateIpAddresses", []):
                        if item.get("PrivateIpAddress"):
                            held = primary if item.get("Primary") else secondary
                            held.add(ip_address(item["PrivateIpAddress"]))
                    for v6 in eni.get("Ipv6Addresses", []):
                        if v6.get("Ipv6Address"):
                            held = primary if v6.get("IsPrimaryIpv6") else secondary
                            held.add(ip_address(v6["Ipv6Address"]))
                    found.append(
                        AttachedEni(
                            eni_id=eni.get("NetworkInterfaceId", ""),
                            subnet_id=eni.get("SubnetId", ""),
                            mac=eni.get("MacAddress", "").lower(),
                            device_index=attachment.get("DeviceIndex") if "DeviceIndex" in attachment else None,
                            no_manage=tags.get(NO_MANAGE_TAG) == "true",
                            primary=frozenset(primary),
                            secondary=frozenset(secondary),
                        )
                    )
            return tuple(found)

        return self._call("DescribeNetworkInterfaces", describe)

    def assign_ipv4(self, eni_id: str, addresses: Sequence[IPv4Address]) -> None:
        self._call(
            "AssignPrivateIpAddresses",
            lambda: self._client.assign_private_ip_addresses(
                NetworkInterfaceId=eni_id, PrivateIpAddresses=[str(a) for a in addresses], AllowReassignment=True
            ),
        )

    def unassign_ipv4(self, eni_id: str, addresses: Sequence[IPv4Address]) -> None:
        self._call(
            "UnassignPrivateIpAddresses",
            lambda: self._client.unassign_private_ip_addresses(
                NetworkInterfaceId=eni_id, PrivateIpAddresses=[str(a) for a in addresses]
            ),
        )

    def assign_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None:
        self._call(
            "AssignIpv6Addresses",
            lambda: self._client.assign_ipv6_addresses(
                NetworkInterfaceId=eni_id, Ipv6Addresses=[str(a) for a in addresses]
            ),
        )

    def unassign_ipv6(self, eni_id: str, addresses: Sequence[IPv6Address]) -> None:
        self._call(
            "UnassignIpv6Addresses",
            lambda: self._client.unassign_ipv6_addresses(
                NetworkInterfaceId=eni_id, Ipv6Addresses=[str(a) for a in addresses]
            ),
        )

    # --- helpers -----------------------------------------------------------------------------------------

    def _held(self, wanted: set[IPAddress], filters: list[FilterTypeDef]) -> dict[IPAddress, HolderEni]:
        def describe() -> dict[IPAddress, HolderEni]:
            found: dict[IPAddress, HolderEni] = {}
            for page in self._client.get_paginator("describe_network_interfaces").paginate(Filters=filters):
                for eni in page.get("NetworkInterfaces", []):
                    attachment = eni.get("Attachment", {})
                    tags = {tag.get("Key"): tag.get("Value") for tag in eni.get("TagSet", [])}
                    holder = HolderEni(
                        eni_id=eni.get("NetworkInterfaceId", ""),
                        device_index=attachment.get("DeviceIndex") if "DeviceIndex" in attachment else None,
                        no_manage=tags.get(NO_MANAGE_TAG) == "true",
                    )
                    held = [item.get("PrivateIpAddress", "") for item in eni.get("PrivateIpAddresses", [])]
                    held += [item.get("Ipv6Address", "") for item in eni.get("Ipv6Addresses", [])]
                    for text in held:
                        if text and ip_address(text) in wanted:
                            found[ip_address(text)] = holder
            return found

        return self._call("DescribeNetworkInterfaces", describe)

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        def once() -> T:
            try:
                return fn()
            except ClientError as error:
                raise _translate(operation, error) from None
            except BotoCoreError as error:
                raise AwsError(operation, type(error).__name__, str(error)) from None

        return call_with_retry(once, self._policy, sleep=self._sleep, rng=self._rng)


def translate_client_error(operation: str, error: ClientError) -> AwsError:
    """``ClientError`` as our error (``Throttled`` for throttling): for every adapter that calls EC2."""
    return _translate(operation, error)


def _translate(operation: str, error: ClientError) -> AwsError:
    details = error.response.get("Error", {})
    code = details.get("Code", "Unknown")
    message = details.get("Message", str(error))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in THROTTLING_CODES or status == _SERVICE_UNAVAILABLE:
        return Throttled(operation, code, message)
    return AwsError(operation, code, message)
