"""``PIM_ENI_LOOKUP=ec2``: the instance's ENIs as EC2 shows them, for pods that do not reach IMDS.

With the stack's default ``HttpPutResponseHopLimit`` of 1 a pod gets no IMDSv2 token (the answer is dropped one
hop short of the pod's network namespace), which is what keeps every other pod on the node away from the node
role's credentials. This adapter gives the manager the view IMDS would give (every ENI of the instance, its
device index, subnet CIDR blocks and the addresses it holds now) from EC2 instead, with the pod's own role:

1. ``DescribeNetworkInterfaces`` filtered on ``mac-address``, the MACs of the pod's Multus interfaces (an ipvlan
   link carries its master ENI's MAC): those ENIs, and the instance they are attached to;
2. ``DescribeNetworkInterfaces`` filtered on ``attachment.instance-id``: every ENI of that instance, with its tags
   (an ENI without ``node.k8s.amazonaws.com/no_manage=true``, the VPC CNI's, is never touched) and its addresses.
   Each call reads them again, so an assignment is confirmed by EC2 itself;
3. ``DescribeSubnets`` for their subnets' CIDR blocks (asked once per subnet and process).

The region must be configured (``AWS_REGION``): IMDS is not asked for anything.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from pod_ip_manager.ec2 import NO_MANAGE_TAG, translate_client_error
from pod_ip_manager.errors import AwsError
from pod_ip_manager.model import Eni
from pod_ip_manager.retry import RetryPolicy, call_with_retry

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import FilterTypeDef, NetworkInterfaceTypeDef

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The IAM actions this adapter calls (both are describes: no resource-level permissions).
IAM_ACTIONS = frozenset({"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"})

#: The MAC of a link without one (``lo``): never an ENI's.
_NO_MAC = "00:00:00:00:00:00"


class Ec2EniLookup:
    """``InstanceMetadata`` over EC2. ``macs`` gives the MACs of the pod's Multus interfaces when asked."""

    def __init__(
        self,
        client: EC2Client,
        policy: RetryPolicy,
        *,
        region: str,
        macs: Callable[[], Iterable[str]],
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._policy = policy
        self._region = region
        self._macs = macs
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not cryptography
        self._instance_id: str | None = None
        self._subnets: dict[str, tuple[IPv4Network | None, tuple[IPv6Network, ...]]] = {}

    # --- the port ----------------------------------------------------------------------------------------

    def region(self) -> str:
        return self._region

    def enis(self) -> tuple[Eni, ...]:
        if self._instance_id is None:
            macs = sorted({mac.lower() for mac in self._macs()} - {_NO_MAC})
            if not macs:
                return ()
            matched = self._describe([{"Name": "mac-address", "Values": macs}])
            instances = {eni.get("Attachment", {}).get("InstanceId") for eni in matched} - {None}
            if len(instances) != 1:
                log.warning(
                    "no ENI attached to one instance has the MAC of a Multus interface (with ipvlan each Multus "
                    "interface has its master ENI's MAC)",
                    extra={"macs": macs, "instances": sorted(str(i) for i in instances)},
                )
                return self._enis(eni for eni in matched if "DeviceIndex" in eni.get("Attachment", {}))
            self._instance_id = str(instances.pop())
        return self._enis(self._describe([{"Name": "attachment.instance-id", "Values": [self._instance_id]}]))

    # --- reading -----------------------------------------------------------------------------------------

    def _enis(self, described: Iterable[NetworkInterfaceTypeDef]) -> tuple[Eni, ...]:
        listed = list(described)
        self._learn_subnets({eni.get("SubnetId", "") for eni in listed} - {""})
        enis: list[Eni] = []
        for eni in listed:
            attachment = eni.get("Attachment", {})
            ipv4_subnet, ipv6_subnets = self._subnets.get(eni.get("SubnetId", ""), (None, ()))
            tags = {tag.get("Key"): tag.get("Value") for tag in eni.get("TagSet", [])}
            enis.append(
                Eni(
                    mac=eni.get("MacAddress", "").lower(),
                    eni_id=eni.get("NetworkInterfaceId", ""),
                    device_number=attachment.get("DeviceIndex", -1),
                    subnet_ipv4=ipv4_subnet,
                    subnet_ipv6=ipv6_subnets,
                    ipv4s=frozenset(
                        IPv4Address(item["PrivateIpAddress"])
                        for item in eni.get("PrivateIpAddresses", [])
                        if item.get("PrivateIpAddress")
                    ),
                    ipv6s=frozenset(
                        IPv6Address(item["Ipv6Address"])
                        for item in eni.get("Ipv6Addresses", [])
                        if item.get("Ipv6Address")
                    ),
                    no_manage=tags.get(NO_MANAGE_TAG) == "true",
                )
            )
        return tuple(sorted(enis, key=lambda eni: eni.device_number))

    def _learn_subnets(self, subnet_ids: Collection[str]) -> None:
        unknown = sorted(set(subnet_ids) - set(self._subnets))
        if not unknown:
            return

        def describe() -> None:
            for page in self._client.get_paginator("describe_subnets").paginate(SubnetIds=unknown):
                for subnet in page.get("Subnets", []):
                    cidr = subnet.get("CidrBlock")
                    ipv6 = tuple(
                        IPv6Network(block["Ipv6CidrBlock"])
                        for block in subnet.get("Ipv6CidrBlockAssociationSet", [])
                        if block.get("Ipv6CidrBlock")
                        and block.get("Ipv6CidrBlockState", {}).get("State") == "associated"
                    )
                    self._subnets[subnet.get("SubnetId", "")] = (IPv4Network(cidr) if cidr else None, ipv6)

        self._call("DescribeSubnets", describe)

    def _describe(self, filters: list[FilterTypeDef]) -> list[NetworkInterfaceTypeDef]:
        def describe() -> list[NetworkInterfaceTypeDef]:
            paginator = self._client.get_paginator("describe_network_interfaces")
            return [eni for page in paginator.paginate(Filters=filters) for eni in page.get("NetworkInterfaces", [])]

        return self._call("DescribeNetworkInterfaces", describe)

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        def once() -> T:
            try:
                return fn()
            except ClientError as error:
                raise translate_client_error(operation, error) from None
            except BotoCoreError as error:
                raise AwsError(operation, type(error).__name__, str(error)) from None

        return call_with_retry(once, self._policy, sleep=self._sleep, rng=self._rng)
