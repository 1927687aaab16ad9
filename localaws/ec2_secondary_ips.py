"""Secondary addresses on ENIs as EC2 handles them (moto accepts everything here).

* ``AssignPrivateIpAddresses``: a requested address must lie in the ENI's subnet and outside its five reserved
  addresses (``InvalidParameterValue``); one held by **another** ENI moves only with ``AllowReassignment=true``
  (it is then removed from the other ENI), else ``InvalidIPAddress.InUse``; another ENI's *primary* address
  never moves (``InvalidParameterValue``). ``SecondaryPrivateIpAddressCount`` picks free addresses outside
  reservations. Only the newly assigned addresses are returned.
* ``AssignIpv6Addresses``: no reassignment exists for IPv6: an address held by another ENI is refused with
  ``InvalidIPAddress.InUse`` until its holder unassigns it.
* ``UnassignPrivateIpAddresses`` / ``UnassignIpv6Addresses``: an address the ENI does not hold is refused with
  ``InvalidParameterValue`` ("Some of the specified addresses are not assigned to interface ..."); the primary
  private address cannot be unassigned.

Error codes: ``InvalidParameterValue`` for unassigning an address the ENI does not hold is what EC2 answers
in practice; the code for an in-use address on *assign* is not documented per operation: we use
``InvalidIPAddress.InUse`` as for ``CreateNetworkInterface`` (unconfirmed, like ``localaws.addresses``).
"""

# ruff: noqa: ANN401 - moto models and response objects are untyped; they are `Any` here by necessity.

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses import EC2Response

from localaws import addresses
from localaws._install import Patch, extension
from localaws._session import Session

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@extension("ec2-secondary-ips")
def secondary_ips_extension(session: Session) -> Iterable[Patch]:
    yield Patch(EC2Response, "assign_private_ip_addresses", lambda _: _assign_ipv4(session))
    yield Patch(EC2Response, "unassign_private_ip_addresses", lambda _: _unassign_ipv4)
    yield Patch(EC2Response, "assign_ipv6_addresses", lambda _: _assign_ipv6(session))
    yield Patch(EC2Response, "unassign_ipv6_addresses", lambda _: _unassign_ipv6)


def _held_ipv4(eni: Any) -> list[str]:
    return [item["PrivateIpAddress"] for item in eni.private_ip_addresses]


def _holder(backend: Any, address: Address) -> Any | None:
    """The ENI holding ``address`` (IPv4 primary/secondary or IPv6), if any."""
    text = str(address)
    for eni in backend.enis.values():
        if text in _held_ipv4(eni) or text in [str(ipaddress.ip_address(a)) for a in eni.ipv6_addresses]:
            return eni
    return None


def _requested(eni: Any, raw: list[str], version: int) -> list[Address]:
    parsed: list[Address] = []
    for text in raw:
        address = addresses.check_requested(eni.subnet, text, taken=set())
        if address.version != version:
            raise EC2ClientError("InvalidParameterValue", f"Invalid IPv{version} address: {text}")
        parsed.append(address)
    return parsed


def _assign_ipv4(session: Session) -> Callable[[Any], ActionResult]:
    def assign_private_ip_addresses(self: Any) -> ActionResult:
        backend = self.ec2_backend
        eni = backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        requested = _requested(eni, list(self._get_param("PrivateIpAddresses", []) or []), 4)
        count = self._get_int_param("SecondaryPrivateIpAddressCount", 0) or 0
        reassign = str(self._get_param("AllowReassignment", "false")).lower() == "true"
        if requested and count:
            raise EC2ClientError(
                "InvalidParameterCombination", "PrivateIpAddresses and SecondaryPrivateIpAddressCount together"
            )
        moves: list[tuple[Any, str]] = []
        for address in requested:
            holder = _holder(backend, address)
            if holder is None or holder is eni:
                continue
            if holder.private_ip_address == str(address):
                raise EC2ClientError(
                    "InvalidParameterValue", f"Address {address} is the primary private IP of {holder.id}"
                )
            if not reassign:
                raise EC2ClientError("InvalidIPAddress.InUse", f"Address {address} is in use by {holder.id}.")
            moves.append((holder, str(address)))
        if count:
            requested = list(
                addresses.pick(eni.subnet, count, version=4, taken=addresses.in_use(eni.subnet), rng=session.rng)
            )
        for holder, text in moves:
            holder.private_ip_addresses[:] = [i for i in holder.private_ip_addresses if i["PrivateIpAddress"] != text]
        held = _held_ipv4(eni)
        new = [str(a) for a in requested if str(a) not in held]
        eni.private_ip_addresses.extend({"Primary": False, "PrivateIpAddress": text} for text in new)
        return ActionResult(
            {
                "NetworkInterfaceId": eni.id,
                "AssignedPrivateIpAddresses": [{"PrivateIpAddress": text} for text in new],
            }
        )

    return assign_private_ip_addresses


def _unassign_ipv4(self: Any) -> ActionResult:
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    wanted = [str(ipaddress.ip_address(a)) for a in self._get_param("PrivateIpAddresses", []) or []]
    held = _held_ipv4(eni)
    if any(text not in held for text in wanted):
        raise EC2ClientError(
            "InvalidParameterValue", f"Some of the specified addresses are not assigned to interface {eni.id}"
        )
    if eni.private_ip_address in wanted:
        raise EC2ClientError("InvalidParameterValue", "The primary private IP address cannot be unassigned")
    eni.private_ip_addresses[:] = [i for i in eni.private_ip_addresses if i["PrivateIpAddress"] not in wanted]
    return ActionResult({})


def _assign_ipv6(session: Session) -> Callable[[Any], ActionResult]:
    def assign_ipv6_addresses(self: Any) -> ActionResult:
        backend = self.ec2_backend
        eni = backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        requested = _requested(eni, list(self._get_param("Ipv6Addresses", []) or []), 6)
        count = self._get_int_param("Ipv6AddressCount", 0) or 0
        for address in requested:
            holder = _holder(backend, address)
            if holder is not None and holder is not eni:
                raise EC2ClientError("InvalidIPAddress.InUse", f"Address {address} is in use by {holder.id}.")
        if count:
            requested = list(
                addresses.pick(eni.subnet, count, version=6, taken=addresses.in_use(eni.subnet), rng=session.rng)
            )
        held = {ipaddress.ip_address(a) for a in eni.ipv6_addresses}
        new = [str(a) for a in requested if a not in held]
        eni.ipv6_addresses.extend(new)
        return ActionResult({"NetworkInterfaceId": eni.id, "AssignedIpv6Addresses": new})

    return assign_ipv6_addresses


def _unassign_ipv6(self: Any) -> ActionResult:
    eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    wanted = {ipaddress.ip_address(a) for a in self._get_param("Ipv6Addresses", []) or []}
    held = {ipaddress.ip_address(a) for a in eni.ipv6_addresses}
    if not wanted <= held:
        raise EC2ClientError(
            "InvalidParameterValue", f"Some of the specified addresses are not assigned to interface {eni.id}"
        )
    eni.ipv6_addresses[:] = [a for a in eni.ipv6_addresses if ipaddress.ip_address(a) not in wanted]
    return ActionResult({"NetworkInterfaceId": eni.id, "UnassignedIpv6Addresses": sorted(str(a) for a in wanted)})
