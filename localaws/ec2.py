"""EC2 behaviours moto lacks: ENI addresses, client tokens, attach rules, DeleteOnTermination, paging.

Each replacement is an action method of moto's ``EC2Response`` (it reads parameters with moto's own parser and
raises ``EC2ClientError``, which moto serialises as AWS does) or a small model method.
"""

# ruff: noqa: ANN401 - moto models and response objects are untyped; they are `Any` here by necessity.

from __future__ import annotations

import base64
import binascii
import fnmatch
import ipaddress
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ec2.exceptions import (
    EC2ClientError,
    InvalidCidrReservationNotWithinSubnetCidr,
    InvalidCidrReservationOverlapExisting,
)
from moto.ec2.models.elastic_network_interfaces import Attachment, NetworkInterface
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ec2.models.instances import Instance
from moto.ec2.models.subnets import Subnet, SubnetBackend, SubnetCidrReservation
from moto.ec2.responses import EC2Response
from moto.ec2.utils import add_tag_specification, random_eni_attach_id, random_subnet_cidr_reservation_id

from localaws import addresses, consistency
from localaws._install import Patch, extension
from localaws._session import Session

_IGNORED_FOR_TOKEN = frozenset({"Action", "Version", "ClientToken"})


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


class _ClientTokens:
    """CreateNetworkInterface client tokens: token -> (parameters, ENI id)."""

    def __init__(self) -> None:
        self.by_token: dict[tuple[str, str, str], tuple[tuple[tuple[str, tuple[str, ...]], ...], str]] = {}


@extension("ec2")
def ec2_extension(session: Session) -> Iterable[Patch]:
    yield Patch(EC2Response, "create_network_interface", lambda _: _create_network_interface(session))
    yield Patch(EC2Response, "delete_network_interface", _delete_network_interface)
    yield Patch(EC2Response, "attach_network_interface", lambda _: _attach_network_interface(session))
    yield Patch(EC2Response, "modify_network_interface_attribute", _modify_network_interface_attribute)
    yield Patch(EC2Response, "describe_network_interfaces", lambda _: _describe_network_interfaces)
    yield Patch(EC2Response, "get_subnet_cidr_reservations", _get_subnet_cidr_reservations)
    yield Patch(Attachment, "__init__", _attachment_init)
    yield Patch(Instance, "detach_eni", lambda _: _detach_eni)
    yield Patch(Instance, "terminate", _terminate)
    yield Patch(Instance, "prep_nics", _prep_nics)
    for name, read in _PRIMARY_READS.items():
        yield Patch(Instance, name, _as_property(read))
    yield Patch(Subnet, "get_available_subnet_ip", lambda _: _available_subnet_ip(session))
    yield Patch(Subnet, "request_ip", lambda _: _request_ip)
    yield Patch(Subnet, "create_cidr_reservation", _create_cidr_reservation)
    yield Patch(NetworkInterface, "get_filter_value", _eni_filter_value)
    yield Patch(Subnet, "ipv6_cidr_block_association_set", _as_property(_subnet_ipv6_associations))
    yield Patch(SubnetBackend, "describe_subnets", _describe_subnets)


# --- CreateNetworkInterface ---------------------------------------------------------------------------------


def _create_network_interface(session: Session) -> Callable[[Any], ActionResult]:
    def create_network_interface(self: Any) -> ActionResult:
        backend = self.ec2_backend
        token = self._get_param("ClientToken")
        fingerprint = tuple(sorted((k, tuple(v)) for k, v in self.querystring.items() if k not in _IGNORED_FOR_TOKEN))
        tokens = session.state("ec2.client_tokens", _ClientTokens).by_token
        key = (self.current_account, self.region, token or "")
        if token and key in tokens:
            known, eni_id = tokens[key]
            if known != fingerprint:
                raise EC2ClientError(
                    "IdempotentParameterMismatch",
                    f"The client token '{token}' has already been used with different parameters.",
                )
            if eni_id in backend.enis:
                return ActionResult({"NetworkInterface": backend.enis[eni_id], "ClientToken": token})
        subnet = backend.get_subnet(self._get_param("SubnetId"))
        self.error_on_dryrun()
        primary, secondaries = _ipv4_addresses(self, subnet, session)
        ipv6 = _ipv6_addresses(self, subnet, session)
        private_ip_addresses = [{"Primary": True, "PrivateIpAddress": primary}] if primary else []
        private_ip_addresses += [{"Primary": False, "PrivateIpAddress": ip} for ip in secondaries]
        eni = backend.create_network_interface(
            subnet,
            primary,
            private_ip_addresses,
            self._get_param("Groups", []),
            self._get_param("Description"),
            add_tag_specification(self._get_param("TagSpecifications", [])),
            ipv6_addresses=ipv6,
        )
        if addresses.ipv4_network(subnet) is None:
            # IPv6-only subnet: AWS gives the ENI no IPv4 address; moto makes a random one up.
            eni.private_ip_address = None
            eni.private_ip_addresses = []
        if token:
            tokens[key] = (fingerprint, eni.id)
        result: dict[str, Any] = {"NetworkInterface": eni}
        if token:
            result["ClientToken"] = token
        return ActionResult(result)

    return create_network_interface


def _ipv4_addresses(response: Any, subnet: Any, session: Session) -> tuple[str | None, list[str]]:
    requested_primary = response._get_param("PrivateIpAddress")
    listed = response._get_param("PrivateIpAddresses", [])
    secondary_count = int(response._get_param("SecondaryPrivateIpAddressCount") or 0)
    taken = addresses.in_use(subnet)
    primary: str | None = requested_primary
    secondaries: list[str] = []
    for item in listed:
        ip = item["PrivateIpAddress"]
        if _bool(item.get("Primary", False)) and primary is None:
            primary = ip
        elif ip != primary:
            secondaries.append(ip)
    for ip in [primary, *secondaries]:
        if ip is not None:
            taken.add(addresses.check_requested(subnet, ip, taken))
    if addresses.ipv4_network(subnet) is None:
        return None, []  # IPv6-only subnet: no IPv4 to pick
    wanted = (0 if primary else 1) + secondary_count
    picked = [str(a) for a in addresses.pick(subnet, wanted, version=4, taken=taken, rng=session.rng)] if wanted else []
    if primary is None:
        primary, picked = picked[0], picked[1:]
    return primary, secondaries + picked


def _ipv6_addresses(response: Any, subnet: Any, session: Session) -> list[str]:
    requested = [item["Ipv6Address"] for item in response._get_param("Ipv6Addresses", [])]
    count = int(response._get_param("Ipv6AddressCount") or 0)
    if not requested and not count:
        return []
    if not addresses.ipv6_networks(subnet):
        raise EC2ClientError("InvalidParameterValue", f"Subnet {subnet.id} has no IPv6 CIDR block")
    taken = addresses.in_use(subnet)
    chosen = []
    for ip in requested:
        parsed = addresses.check_requested(subnet, ip, taken)
        taken.add(parsed)
        chosen.append(str(parsed))
    chosen += [str(a) for a in addresses.pick(subnet, count, version=6, taken=taken, rng=session.rng)]
    return chosen


# --- DeleteNetworkInterface ---------------------------------------------------------------------------------


def _delete_network_interface(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def delete_network_interface(self: Any) -> Any:
        eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
        if eni.instance is not None:
            raise EC2ClientError(
                "InvalidNetworkInterface.InUse", f"The network interface '{eni.id}' is currently in use."
            )
        result = original(self)
        _release_addresses(eni)
        return result

    return delete_network_interface


def _release_addresses(eni: Any) -> None:
    for item in eni.private_ip_addresses:
        eni.subnet._subnet_ips.pop(item["PrivateIpAddress"], None)


# --- AttachNetworkInterface / detach ------------------------------------------------------------------------


def _attach_network_interface(session: Session) -> Callable[[Any], ActionResult]:
    return lambda response: _attach(session, response)


def _attach(session: Session, self: Any) -> ActionResult:
    backend = self.ec2_backend
    eni = backend.get_network_interface(self._get_param("NetworkInterfaceId"))
    instance = backend.get_instance(self._get_param("InstanceId"))
    device_index = int(self._get_param("DeviceIndex"))
    card = int(self._get_param("NetworkCardIndex") or 0)
    self.error_on_dryrun()
    if eni.instance is not None:
        raise EC2ClientError("InvalidNetworkInterface.InUse", f"Interface: [{eni.id}] in use.")
    if instance.state in ("shutting-down", "terminated"):
        raise EC2ClientError(
            "IncorrectInstanceState", f"The instance '{instance.id}' is not in a valid state for this operation."
        )
    if eni.availability_zone != instance.placement.zone:
        # The code AWS returns here is unconfirmed; the message is AWS's.
        raise EC2ClientError(
            "InvalidParameterCombination",
            "You may not attach a network interface to an instance if they are not in the same availability zone",
        )
    network_info = INSTANCE_TYPES.get(instance.instance_type, {}).get("NetworkInfo", {})
    cards = {c["NetworkCardIndex"]: c for c in network_info.get("NetworkCards", [])}
    if cards and card not in cards:
        raise EC2ClientError(
            "InvalidParameterValue", f"Network card index '{card}' is not valid for {instance.instance_type}"
        )
    on_card = [nic for nic in instance.nics.values() if getattr(nic, "network_card_index", 0) == card]
    if any(nic.device_index == device_index for nic in on_card):
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Instance '{instance.id}' already has an interface attached at device index '{device_index}'.",
        )
    limit = cards[card]["MaximumNetworkInterfaces"] if cards else None
    if limit is not None and len(on_card) >= limit:
        raise EC2ClientError(
            "AttachmentLimitExceeded",
            f"Interface count {len(on_card) + 1} exceeds the limit for {instance.instance_type}",
        )
    eni.network_card_index = card
    if card:  # moto keys ``nics`` by device index alone; a card>0 interface is keyed (card, index) here
        instance.nics[(card, device_index)] = eni
        eni.instance = instance
        eni.attachment_id = random_eni_attach_id()
        eni.attach_time = utcnow()
        eni.status = "in-use"
        eni.device_index = device_index
    else:
        instance.attach_eni(eni, device_index)
    eni.delete_on_termination = False  # AttachNetworkInterface leaves DeleteOnTermination false
    consistency.begin_attach(session, eni)
    return ActionResult({"AttachmentId": eni.attachment_id, "NetworkCardIndex": card})


def _detach_eni(self: Any, eni: Any) -> None:
    """Detach wherever the interface is keyed (see ``_attach_network_interface``)."""
    for key, nic in list(self.nics.items()):
        if nic is eni:
            del self.nics[key]
    eni.instance = None
    eni.attachment_id = None
    eni.attach_time = None
    eni.status = "available"
    eni.device_index = None
    eni.network_card_index = 0
    eni.delete_on_termination = False
    eni.localaws_attachment_status = None


def _attachment_init(original: Callable[..., None]) -> Callable[..., None]:
    def init(self: Any, eni: Any) -> None:
        original(self, eni)
        self.network_card_index = getattr(eni, "network_card_index", 0)

    return init


# --- ModifyNetworkInterfaceAttribute ------------------------------------------------------------------------


def _modify_network_interface_attribute(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def modify_network_interface_attribute(self: Any) -> Any:
        attachment = self._get_param("Attachment") or {}
        if attachment:
            eni = self.ec2_backend.get_network_interface(self._get_param("NetworkInterfaceId"))
            attachment_id = attachment.get("AttachmentId")
            if not attachment_id or eni.attachment_id != attachment_id:
                raise EC2ClientError(
                    "InvalidAttachmentID.NotFound", f"The attachment ID '{attachment_id}' does not exist"
                )
            if "DeleteOnTermination" in attachment:
                eni.delete_on_termination = _bool(attachment["DeleteOnTermination"])
        return original(self)

    return modify_network_interface_attribute


# --- instance termination: DeleteOnTermination ---------------------------------------------------------------


def _prep_nics(original: Callable[..., None]) -> Callable[..., None]:
    """Interfaces an instance launch creates default to DeleteOnTermination=true, as in AWS (moto: false)."""

    def prep_nics(self: Any, nic_spec: list[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        before = set(self.ec2_backend.enis)
        explicit_false = {
            int(spec.get("DeviceIndex", 0))
            for spec in nic_spec
            if "DeleteOnTermination" in spec and not _bool(spec["DeleteOnTermination"])
        }
        original(self, nic_spec, *args, **kwargs)
        for nic in self.nics.values():
            if nic.id not in before and nic.device_index not in explicit_false:
                nic.delete_on_termination = True

    return prep_nics


def _terminate(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Delete the interfaces with DeleteOnTermination, detach the others (they become ``available``)."""

    def terminate(self: Any) -> Any:
        if 0 in self.nics:
            self.localaws_last_primary = self.nics[0]
        for nic in list(self.nics.values()):
            delete = bool(nic.delete_on_termination)
            _detach_eni(self, nic)
            if delete:
                self.ec2_backend.enis.pop(nic.id, None)
                _release_addresses(nic)
        return original(self)

    return terminate


def _subnet_ipv6_associations(subnet: Any) -> list[dict[str, Any]]:
    """DescribeSubnets' Ipv6CidrBlockAssociationSet with the state as AWS gives it.

    moto nests its own state dict inside the state (``{'State': "{'State': 'associated'}"}``), so a reader that
    checks ``Ipv6CidrBlockState.State == 'associated'``, as it must on AWS, would see no IPv6 block at all.
    """
    return [
        {
            "ipv6CidrBlock": association["ipv6CidrBlock"],
            "associationId": association["associationId"],
            "ipv6CidrBlockState": {"state": association["ipv6CidrBlockState"]["State"]},
        }
        for association in subnet.ipv6_cidr_block_associations.values()
    ]


def _describe_subnets(original: Callable[..., Any]) -> Callable[..., Any]:
    """DescribeSubnets with an id that does not exist: InvalidSubnetID.NotFound naming the unknown ids, as AWS
    does. moto names an arbitrary one of the ids asked for (it compares ids with subnet objects), so an error
    that names "the" wrong subnet would name an existing one half the time. For several unknown ids the wording
    is the one AWS uses for instance ids ("The ... IDs '...' do not exist"), assumed for subnets."""

    def describe_subnets(self: Any, subnet_ids: list[str] | None = None, filters: Any = None) -> Any:
        if subnet_ids:
            known = {subnet.id for zone in self.subnets.values() for subnet in zone.values()}
            unknown = [subnet_id for subnet_id in dict.fromkeys(subnet_ids) if subnet_id not in known]
            if len(unknown) == 1:
                raise EC2ClientError("InvalidSubnetID.NotFound", f"The subnet ID '{unknown[0]}' does not exist")
            if unknown:
                raise EC2ClientError("InvalidSubnetID.NotFound", f"The subnet IDs '{', '.join(unknown)}' do not exist")
        return original(self, subnet_ids, filters)

    return describe_subnets


def _as_property(read: Callable[[Any], Any]) -> Callable[[Any], property]:
    return lambda _: property(read)


def _primary(instance: Any) -> Any:
    """The primary interface, or the one it had before termination (moto reads ``nics[0]`` unguarded)."""
    return instance.nics.get(0) or getattr(instance, "localaws_last_primary", None)


_PRIMARY_READS: dict[str, Callable[[Any], Any]] = {
    "private_ip": lambda instance: getattr(_primary(instance), "private_ip_address", None),
    "private_ip_address": lambda instance: getattr(_primary(instance), "private_ip_address", None),
    "public_ip": lambda instance: getattr(_primary(instance), "public_ip", None),
    "public_ip_address": lambda instance: getattr(_primary(instance), "public_ip", None),
}


# --- addresses EC2 picks for instances ----------------------------------------------------------------------


def _available_subnet_ip(session: Session) -> Callable[[Any, Any], str]:
    def get_available_subnet_ip(self: Any, instance: Any) -> str:
        address = str(addresses.pick(self, 1, version=4, taken=addresses.in_use(self), rng=session.rng)[0])
        self._subnet_ips[address] = instance
        return address

    return get_available_subnet_ip


def _request_ip(self: Any, ip: str, instance: Any) -> None:
    addresses.check_requested(self, ip, addresses.in_use(self))
    self._subnet_ips[ip] = instance


def _create_cidr_reservation(original: Callable[..., Any]) -> Callable[..., Any]:
    """moto enumerates every reserved address into a set: an IPv6 /65 never finishes. Our address rules read
    the reservations themselves, so IPv6 blocks are recorded without enumerating them (same checks as moto)."""

    def create_cidr_reservation(
        self: Any, reservation_type: str, cidr_block: Any, tag_specifications: Any = None
    ) -> Any:
        if cidr_block.version == 4:
            return original(self, reservation_type, cidr_block, tag_specifications)
        if not self._cidr_within_subnet_cidr_blocks(cidr_block):
            raise InvalidCidrReservationNotWithinSubnetCidr(str(self.cidr))
        if self._cidr_overlaps_with_existing_reservation(cidr_block):
            raise InvalidCidrReservationOverlapExisting(str(cidr_block))
        reservation = SubnetCidrReservation(
            ec2_backend=self.ec2_backend,
            subnet_id=self.id,
            cidr=cidr_block,
            reservation_type=reservation_type,
            owner_id=self.owner_id,
            tag_specifications=tag_specifications,
            subnet_cidr_reservation_id=random_subnet_cidr_reservation_id(),
        )
        self._cidr_reservations.append(reservation)
        return reservation

    return create_cidr_reservation


# --- filters and paging -------------------------------------------------------------------------------------


_ENI_FILTERS: dict[str, Callable[[Any], Any]] = {
    # AWS matches any of the interface's addresses; moto only the primary.
    "addresses.private-ip-address": lambda eni: [i["PrivateIpAddress"] for i in eni.private_ip_addresses],
    "private-ip-address": lambda eni: [i["PrivateIpAddress"] for i in eni.private_ip_addresses],
    "status": lambda eni: eni.status,
    "attachment.device-index": lambda eni: str(eni.device_index) if eni.instance else None,
    "attachment.status": lambda eni: "attached" if eni.instance else None,
    "ipv6-addresses.ipv6-address": lambda eni: list(eni.ipv6_addresses),
    "mac-address": lambda eni: eni.mac_address,
}


def _eni_filter_value(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_filter_value(self: Any, filter_name: str, method_name: str | None = None) -> Any:
        if filter_name in _ENI_FILTERS:
            return _ENI_FILTERS[filter_name](self)
        return original(self, filter_name, method_name)

    return get_filter_value


def _page_size(response: Any, *, ids_param: str | None) -> int | None:
    raw = response._get_param("MaxResults")
    if raw is None:
        return None
    size = int(raw)
    if ids_param and response._get_param(ids_param):
        raise EC2ClientError(
            "InvalidParameterCombination", f"The parameter {ids_param} cannot be used with the parameter maxResults"
        )
    if not 5 <= size <= 1000:
        raise EC2ClientError(
            "InvalidParameterValue",
            f"Value ( {size} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.",
        )
    return size


def _encode_token(position: str) -> str:
    return base64.urlsafe_b64encode(position.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise EC2ClientError("InvalidNextToken", "The token is invalid") from None


def _page(
    items: list[Any], key: Callable[[Any], str], response: Any, *, ids_param: str | None
) -> tuple[list[Any], str | None]:
    size = _page_size(response, ids_param=ids_param)
    token = response._get_param("NextToken")
    items = sorted(items, key=key)
    if token:
        after = _decode_token(token)
        items = [item for item in items if key(item) > after]
    if size is None or len(items) <= size:
        return items, None
    page = items[:size]
    return page, _encode_token(key(page[-1]))


#: Filters on attributes an interface has several of. AWS keeps an interface when any of the filter's values
#: matches any of them (values of one filter are ORed); moto keeps it only when the values are a subset or a
#: superset of the interface's, so two addresses in one filter found nothing (an interface also holds its primary).
_MULTI_VALUED = frozenset({"addresses.private-ip-address", "private-ip-address", "ipv6-addresses.ipv6-address"})


def _describe_network_interfaces(self: Any) -> ActionResult:
    ids = self._get_param("NetworkInterfaceIds", [])
    filters = self._filters_from_querystring()
    self.error_on_dryrun()
    any_of = {name: filters.pop(name) for name in list(filters) if name in _MULTI_VALUED}
    enis = self.ec2_backend.get_all_network_interfaces(ids, filters)
    for name, patterns in any_of.items():
        enis = [
            eni
            for eni in enis
            if any(fnmatch.fnmatchcase(str(held), pattern) for held in _ENI_FILTERS[name](eni) for pattern in patterns)
        ]
    page, next_token = _page(enis, lambda eni: str(eni.id), self, ids_param="NetworkInterfaceIds")
    result: dict[str, Any] = {"NetworkInterfaces": page}
    if next_token:
        result["NextToken"] = next_token
    return ActionResult(result)


def _get_subnet_cidr_reservations(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def get_subnet_cidr_reservations(self: Any) -> Any:
        if self._get_param("MaxResults") is None and not self._get_param("NextToken"):
            return original(self)
        self.error_on_dryrun()
        found = self.ec2_backend.get_subnet_cidr_reservations(
            self._get_param("SubnetId"), self._filters_from_querystring()
        )
        everything = found["SubnetIpv4CidrReservations"] + found["SubnetIpv6CidrReservations"]
        page, next_token = _page(everything, lambda r: str(r.id), self, ids_param=None)
        result: dict[str, Any] = {
            "SubnetIpv4CidrReservations": [r for r in page if isinstance(r.cidr, ipaddress.IPv4Network)],
            "SubnetIpv6CidrReservations": [r for r in page if isinstance(r.cidr, ipaddress.IPv6Network)],
        }
        if next_token:
            result["NextToken"] = next_token
        return ActionResult(result)

    return get_subnet_cidr_reservations
