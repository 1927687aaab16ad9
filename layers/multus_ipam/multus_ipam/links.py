"""Stable names for a node's Multus links: one name per Multus subnet, the same on every node of an AZ.

A Multus ENI's kernel name depends on its device index and on the instance family (Amazon Linux 2023's
predictable names: ``ens6`` on one family, ``enp39s0`` on another), and its device index moves when the VPC CNI
takes it first. A NetworkAttachmentDefinition's ``master`` needs one name. So the node names each Multus link
after its subnet instead:

- by default ``multus<k>``, ``k`` the subnet's position among the Multus subnets **of its AZ**, in
  ``MultusSubnetIds`` order: subnets [a (az1), b (az2), c (az1), d (az2)] give a → multus0, c → multus1 in az1
  and b → multus0, d → multus1 in az2, so one ``master: multus0`` is right in every AZ;
- or the name given to the subnet in ``MultusInterfaceNames`` (``subnet-aaa=n6,subnet-bbb=sbi``). A subnet
  without one keeps its default name: positions count every Multus subnet of the AZ, named or not, so naming one
  subnet never renames another.

A node cannot learn another subnet's AZ from IMDS, so the plan is made at deploy time (the custom resource in
``multus_ipam.link_plan``) and handed to the node as text: ``<subnet>=<az>=<name>`` entries separated by spaces,
in ``MultusSubnetIds`` order (``render_plan``; the node's scripts read the same form).

Pure functions: no AWS, no I/O.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from multus_ipam.errors import MultusIpamError

DEFAULT_PREFIX = "multus"
#: IFNAMSIZ is 16 with the terminating NUL.
MAX_NAME_LENGTH = 15
#: The kernel refuses '/', ':' and whitespace in a name (``dev_valid_name``) and reads '%' as a template
#: (``eth%d``); the name is also a systemd unit's instance (``multus-link-up@<name>.service``, which udev starts
#: for the renamed link after a reboot), and unit names take ASCII letters, digits and ``:_.-\`` only; '=' and
#: ',' separate our own formats. What is left: letters, digits, '_', '.' and '-'.
ALLOWED_CHARACTERS = frozenset(string.ascii_letters + string.digits + "_.-")
#: Names the kernel, udev or the VPC CNI give other interfaces: a Multus link named so could collide with them.
RESERVED_NAMES = frozenset({"lo"})
RESERVED_PREFIXES = ("eth", "en", "veth")


class LinkPlanError(MultusIpamError):
    """The Multus subnets or MultusInterfaceNames do not give a valid plan; the message names the problem."""


@dataclass(frozen=True, slots=True)
class PlannedLink:
    subnet_id: str
    availability_zone: str
    name: str


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a Multus link, or None if it can."""
    return next(_name_problems(name), None)


def _name_problems(name: str) -> Iterator[str]:
    if not name:
        yield "empty"
    elif name in (".", ".."):
        yield "'.' and '..' are not interface names"
    elif len(name.encode()) > MAX_NAME_LENGTH:
        yield f"longer than {MAX_NAME_LENGTH} characters"
    elif refused := sorted(set(name) - ALLOWED_CHARACTERS):
        yield (
            f"contains {' '.join(repr(c) for c in refused)}: only ASCII letters, digits, '_', '.' and '-' "
            "(the kernel refuses '/', ':' and whitespace; the name is in a systemd unit's name too)"
        )
    elif name.isdigit():
        yield "all digits (systemd takes a number for an interface index)"
    elif name in RESERVED_NAMES:
        yield "the loopback's name"
    elif prefix := next((p for p in RESERVED_PREFIXES if name.startswith(p)), None):
        used = ", ".join(f"{p}*" for p in RESERVED_PREFIXES)
        yield f"starts with {prefix!r}: the kernel, udev and the VPC CNI name other interfaces so ({used})"


def parse_interface_names(text: str, subnet_ids: Sequence[str]) -> dict[str, str]:
    """``subnet-id=name`` pairs, comma-separated (empty: every subnet keeps its default name).

    Raises LinkPlanError naming the pair that is wrong: not ``subnet=name``, a subnet that is not one of
    ``subnet_ids``, a subnet given twice, a name that is not a valid interface name.
    """
    names: dict[str, str] = {}
    for raw in text.split(","):
        pair = raw.strip()
        if not pair:
            continue
        subnet_id, separator, name = (part.strip() for part in pair.partition("="))
        if not separator or not subnet_id:
            raise LinkPlanError(f"MultusInterfaceNames: {pair!r} is not subnet-id=name")
        if subnet_id not in subnet_ids:
            raise LinkPlanError(f"MultusInterfaceNames: {subnet_id} is not one of MultusSubnetIds")
        if subnet_id in names:
            raise LinkPlanError(f"MultusInterfaceNames: {subnet_id} is named twice")
        problem = name_problem(name)
        if problem:
            raise LinkPlanError(
                f"MultusInterfaceNames: {name!r} (for {subnet_id}) is not a valid interface name: {problem}"
            )
        names[subnet_id] = name
    return names


def plan_links(
    subnet_ids: Sequence[str], zones: Mapping[str, str], names: Mapping[str, str] | None = None
) -> tuple[PlannedLink, ...]:
    """Each Multus subnet's link name, in ``subnet_ids`` order. ``zones``: each subnet's AZ (DescribeSubnets).

    Raises LinkPlanError naming the problem: a subnet listed twice, a subnet whose AZ is unknown, a name for a
    subnet that is not listed, two links of one AZ with the same name.
    """
    names = names or {}
    seen: set[str] = set()
    for subnet_id in subnet_ids:
        if subnet_id in seen:
            raise LinkPlanError(f"MultusSubnetIds: {subnet_id} is listed twice")
        seen.add(subnet_id)
        if subnet_id not in zones:
            raise LinkPlanError(f"MultusSubnetIds: {subnet_id} was not found (DescribeSubnets)")
    for subnet_id in names:
        if subnet_id not in seen:
            raise LinkPlanError(f"MultusInterfaceNames: {subnet_id} is not one of MultusSubnetIds")
    positions: dict[str, int] = {}
    taken: dict[tuple[str, str], str] = {}
    planned = []
    for subnet_id in subnet_ids:
        zone = zones[subnet_id]
        position = positions.get(zone, 0)
        positions[zone] = position + 1
        name = names.get(subnet_id, f"{DEFAULT_PREFIX}{position}")
        other = taken.get((zone, name))
        if other is not None:
            raise LinkPlanError(
                f"MultusInterfaceNames: {other} and {subnet_id} would both be named {name!r} in {zone} "
                "(names must be unique within an AZ)"
            )
        taken[(zone, name)] = subnet_id
        planned.append(PlannedLink(subnet_id=subnet_id, availability_zone=zone, name=name))
    return tuple(planned)


def render_plan(links: Sequence[PlannedLink]) -> str:
    """The plan as the node reads it: ``<subnet>=<az>=<name>`` entries, separated by spaces."""
    return " ".join(f"{link.subnet_id}={link.availability_zone}={link.name}" for link in links)


def parse_plan(text: str) -> tuple[PlannedLink, ...]:
    """The inverse of ``render_plan`` (for a user-data author checking a plan, and for the tests)."""
    links = []
    for entry in text.split():
        parts = entry.split("=")
        if len(parts) != 3 or not all(parts):
            raise LinkPlanError(f"link plan: {entry!r} is not <subnet>=<az>=<name>")
        links.append(PlannedLink(subnet_id=parts[0], availability_zone=parts[1], name=parts[2]))
    return tuple(links)


def links_in_zone(links: Sequence[PlannedLink], zone: str) -> tuple[PlannedLink, ...]:
    """The links a node in ``zone`` has (what its kubelet waits for)."""
    return tuple(link for link in links if link.availability_zone == zone)
