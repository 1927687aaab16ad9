"""EC2's subnet address rules, over moto's subnet and ENI models. Extensions share these.

A subnet's address is *in use* when any ENI in the subnet holds it (primary or secondary) or moto recorded it
for an instance. EC2 itself only hands out (for ENIs and instances created without an address, and for
``SecondaryPrivateIpAddressCount`` / ``Ipv6AddressCount``) addresses that are free, not among the five AWS
reserves (first four and last), and outside every subnet CIDR reservation (explicit or prefix). A caller may
still *ask* for an address inside an explicit reservation: that is what explicit reservations are for.
"""

# ruff: noqa: ANN401 - moto models and response objects are untyped; they are `Any` here by necessity.

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from typing import Any

from moto.ec2.exceptions import EC2ClientError

IPv4 = ipaddress.IPv4Address
IPv6 = ipaddress.IPv6Address
Address = IPv4 | IPv6
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_RANDOM_PROBES = 64


def in_use(subnet: Any) -> set[Address]:
    """Every address held in ``subnet`` (IPv4 and IPv6)."""
    held: set[Address] = set()
    for eni in subnet.ec2_backend.enis.values():
        if eni.subnet.id != subnet.id:
            continue
        for item in eni.private_ip_addresses:
            held.add(ipaddress.ip_address(item["PrivateIpAddress"]))
        held.update(ipaddress.ip_address(ip) for ip in eni.ipv6_addresses)
    held.update(ipaddress.ip_address(ip) for ip in subnet._subnet_ips)
    return held


def ipv4_network(subnet: Any) -> ipaddress.IPv4Network | None:
    return subnet.cidr if isinstance(subnet.cidr, ipaddress.IPv4Network) else None


def ipv6_networks(subnet: Any) -> list[ipaddress.IPv6Network]:
    return [
        ipaddress.IPv6Network(association["ipv6CidrBlock"])
        for association in subnet.ipv6_cidr_block_associations.values()
        if association.get("ipv6CidrBlockState", {}).get("State") == "associated"
    ]


def aws_reserved(network: Network) -> set[Address]:
    """The first four addresses and the last: EC2 never assigns them and refuses them when asked."""
    base = network.network_address
    return {base, base + 1, base + 2, base + 3, network.broadcast_address}


def reserved_networks(subnet: Any) -> list[Network]:
    """Every CIDR reservation of the subnet (explicit and prefix)."""
    return [reservation.cidr for reservation in subnet._cidr_reservations]


def check_requested(subnet: Any, address: str, taken: set[Address]) -> Address:
    """The error EC2 returns for a requested address, if any; else the parsed address."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise EC2ClientError("InvalidParameterValue", f"Invalid IP address: {address}") from None
    networks: list[Network] = (
        [n for n in [ipv4_network(subnet)] if n is not None] if parsed.version == 4 else [*ipv6_networks(subnet)]
    )
    network = next((n for n in networks if parsed in n), None)
    if network is None:
        raise EC2ClientError(
            "InvalidParameterValue", f"Address {address} does not fall within the subnet's address range"
        )
    if parsed in aws_reserved(network):
        raise EC2ClientError("InvalidParameterValue", f"Address {address} is in subnet's reserved address range")
    if parsed in taken:
        # AWS documents InvalidIPAddress.InUse for IPv4; for IPv6 we assume the same code (unconfirmed).
        raise EC2ClientError("InvalidIPAddress.InUse", "The specified address is already in use.")
    return parsed


def pick(subnet: Any, count: int, *, version: int, taken: set[Address], rng: random.Random) -> list[Address]:
    """``count`` addresses EC2 may assign itself, or ``InsufficientFreeAddressesInSubnet``.

    Like EC2, the choice looks random (seeded ``rng``); a linear scan backs it up when the subnet is nearly full.
    """
    networks: list[Network] = (
        [n for n in [ipv4_network(subnet)] if n is not None] if version == 4 else [*ipv6_networks(subnet)]
    )
    reservations = [r for r in reserved_networks(subnet) if r.version == version]
    chosen: list[Address] = []
    excluded = set(taken)
    for network in networks:
        forbidden = aws_reserved(network)

        def allowed(candidate: Address, forbidden: set[Address] = forbidden) -> bool:
            return (
                candidate not in excluded
                and candidate not in forbidden
                and not any(candidate in r for r in reservations)
            )

        while len(chosen) < count:
            found = _probe(network, allowed, rng) or _scan(network, allowed)
            if found is None:
                break
            chosen.append(found)
            excluded.add(found)
        if len(chosen) == count:
            return chosen
    raise EC2ClientError(
        "InsufficientFreeAddressesInSubnet",
        "The specified subnet does not have enough free addresses to satisfy the request.",
    )


def _probe(network: Network, allowed: Any, rng: random.Random) -> Address | None:
    size = network.num_addresses
    for _ in range(_RANDOM_PROBES):
        candidate = network.network_address + rng.randrange(size)
        if allowed(candidate):
            return candidate
    return None


def _scan(network: Network, allowed: Any) -> Address | None:
    hosts: Iterable[Address] = (network.network_address + i for i in range(min(network.num_addresses, 1 << 20)))
    return next((h for h in hosts if allowed(h)), None)
