"""Command line: ``python -m multus_ipam plan ...`` prints a Multus subnet's plan (see :mod:`multus_ipam.plan`).

Offline, from a CIDR; here the split the docs recommend for a /24 (workers .4-.63, pods .64-.254), in either
mode, which gives one and the same whereabouts block::

    python -m multus_ipam plan --cidr 10.0.4.0/24 --worker-bound 10.0.4.63          # static mode
    python -m multus_ipam plan --cidr 10.0.4.0/24 --pod-range 10.0.4.64/26 --pod-range 10.0.4.128/25

(the second: cidr-reservation mode, the pod range being two explicit CIDR reservations). ``--exclude CIDR``
keeps more addresses from pods (a floating IP); a dual-stack subnet takes ``--cidr`` once per address family,
and IPv6 pod ranges as ``--pod-range``.

Against a live subnet (reads the subnet, its ENIs and its CIDR reservations: ec2:DescribeSubnets,
ec2:DescribeNetworkInterfaces, ec2:GetSubnetCidrReservations)::

    python -m multus_ipam plan --subnet-id subnet-0abc... --worker-bound 10.0.4.63 [--owner STACK] [--region R]

Exit status of ``plan``:
    0  the plan has no conflicts
    1  it has conflicts (listed on stdout); this includes no address left for pods, where no whereabouts block
       is printed
    2  the arguments describe no plan (or do not fit the subnet's CIDR blocks)
    3  the live subnet could not be read: no AWS credentials or region, access denied, no such subnet, no
       answer; one line on stderr

``python -m multus_ipam adopt --group NAME [--apply]`` takes over the Multus ENIs the AWS sample left on a
running group (see :mod:`multus_ipam.adopt` and docs/migration.md). Read-only without
``--apply``. The subnets and the owner come from ``--subnet-ids``/``--owner`` or, like the functions, from
``MULTUS_SUBNET_IDS``/``OWNER_ID``. Exit status: 0 nothing refused or missing (read-only: whatever would change
is listed), 1 something refused or missing (listed), 2 usage, 3 the group could not be read or changed (one line
on stderr).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import TextIO

from multus_ipam import adopt
from multus_ipam.addressing import IPAddress, IPNetwork
from multus_ipam.errors import AwsCallFailed, MultusIpamError, SubnetMisconfigured
from multus_ipam.plan import Plan, PlanError, plan_networks, render
from multus_ipam.ports import Ec2, Eni, Reservation, Subnet

EXIT_OK, EXIT_CONFLICTS, EXIT_USAGE, EXIT_UNREADABLE = 0, 1, 2, 3
#: What ``--subnet-id`` reads (docs/subnet-plan.md).
PLAN_IAM_ACTIONS = ("ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces", "ec2:GetSubnetCidrReservations")
#: EC2's answers for a request the caller's policy does not allow.
ACCESS_DENIED_CODES = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})
SUBNET_ID = re.compile(r"subnet-[0-9a-f]{8,17}")


class SubnetUnreadable(MultusIpamError):
    """The live subnet could not be read (exit status 3)."""


def _address(text: str) -> IPAddress:
    try:
        return ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def _network(text: str) -> IPNetwork:
    try:
        return ip_network(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CIDR block (network address/prefix length)") from None


def _subnet_id(text: str) -> str:
    if not SUBNET_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a subnet id (subnet-0123456789abcdef0)")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m multus_ipam", description="eks-multus-ipam tools")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan",
        help="show how a Multus subnet splits between workers, pods and AWS, and the whereabouts IPAM block",
        description="Worker range, pod range, AWS-reserved addresses, capacities, conflicts and a whereabouts "
        "IPAM block. Give --worker-bound (static mode) or --pod-range (cidr-reservation mode) per address "
        "family; with --subnet-id and neither, the subnet's explicit CIDR reservations are the pod ranges.",
        epilog="Exit status: 0 no conflicts; 1 conflicts (with no address left for pods: no whereabouts block); "
        "2 the arguments describe no plan; 3 the live subnet could not be read.",
    )
    subnet = plan.add_mutually_exclusive_group(required=True)
    subnet.add_argument(
        "--cidr",
        type=_network,
        action="append",
        help="plan offline for this subnet CIDR (a dual-stack subnet: once per address family)",
    )
    subnet.add_argument("--subnet-id", type=_subnet_id, help="read this live subnet, its ENIs and its reservations")
    plan.add_argument(
        "--worker-bound", type=_address, help="static mode: the highest worker address (WORKER_IP_UPPER_BOUNDS)"
    )
    plan.add_argument(
        "--pod-range",
        type=_network,
        action="append",
        default=[],
        metavar="CIDR",
        help="cidr-reservation mode: a pod range, i.e. an explicit subnet CIDR reservation (repeatable; several "
        "ranges of one family make one whereabouts range with the gaps excluded)",
    )
    plan.add_argument(
        "--exclude",
        type=_network,
        action="append",
        default=[],
        metavar="CIDR",
        help="more addresses pods must not get, e.g. a floating IP as 10.0.4.250/32 (repeatable)",
    )
    plan.add_argument("--owner", help="only ENIs whose multus-ipam:owner tag has this value (the stack name) are ours")
    plan.add_argument("--region", help="AWS region of the live subnet (default: the usual boto3 lookup)")
    adopting = commands.add_parser(
        "adopt",
        help="report the Multus ENIs the AWS sample left on a group, and with --apply give them our ownership tags",
        description="Per instance of the group: its Multus ENIs (no_manage tag, in a Multus subnet) by subnet, "
        "device index and addresses, whether each matches our configuration and what would change. --apply tags "
        "the matching ones (owner, instance, subnet, created-at) and sets DeleteOnTermination where it is off.",
        epilog="Exit status: 0 nothing refused or missing; 1 something refused or missing (listed); 2 usage; "
        "3 the group could not be read or changed.",
    )
    adopting.add_argument("--group", required=True, help="the Auto Scaling group (AUTOSCALING_GROUP_NAME)")
    adopting.add_argument(
        "--subnet-ids",
        type=_subnet_ids,
        help="the Multus subnets, comma-separated, in attachment order (default: MULTUS_SUBNET_IDS)",
    )
    adopting.add_argument("--owner", help="our stack's name, the multus-ipam:owner value (default: OWNER_ID)")
    adopting.add_argument("--apply", action="store_true", help="tag and fix what the report lists (default: report)")
    adopting.add_argument("--region", help="AWS region of the group (default: the usual boto3 lookup)")
    return parser


def _subnet_ids(text: str) -> tuple[str, ...]:
    ids = tuple(item.strip() for item in text.split(",") if item.strip())
    if not ids:
        raise argparse.ArgumentTypeError("no subnet ids")
    return tuple(_subnet_id(item) for item in ids)


def _live_group(region: str | None) -> tuple[adopt.AdoptionEc2, adopt.GroupInstances]:
    import boto3  # noqa: PLC0415  # only the live mode needs AWS
    from botocore.exceptions import BotoCoreError, NoRegionError  # noqa: PLC0415

    from multus_ipam.aws.autoscaling import AutoScalingAdapter  # noqa: PLC0415
    from multus_ipam.aws.clients import make_clients  # noqa: PLC0415
    from multus_ipam.aws.ec2 import Ec2Adapter  # noqa: PLC0415

    try:
        clients = make_clients(5, boto3.session.Session(region_name=region))
    except NoRegionError:
        raise SubnetUnreadable("no AWS region: give --region, or set AWS_REGION") from None
    except BotoCoreError as error:
        raise SubnetUnreadable(f"{type(error).__name__}: {error}") from None
    return Ec2Adapter(clients.ec2), AutoScalingAdapter(clients.autoscaling)


def _live_ec2(region: str | None) -> Ec2:
    import boto3  # noqa: PLC0415  # only the live mode needs AWS
    from botocore.exceptions import BotoCoreError, NoRegionError  # noqa: PLC0415

    from multus_ipam.aws.clients import make_clients  # noqa: PLC0415
    from multus_ipam.aws.ec2 import Ec2Adapter  # noqa: PLC0415

    try:
        client = make_clients(5, boto3.session.Session(region_name=region)).ec2
    except NoRegionError:
        raise SubnetUnreadable("no AWS region: give --region, or set AWS_REGION") from None
    except BotoCoreError as error:  # e.g. ProfileNotFound: AWS_PROFILE names no profile
        raise SubnetUnreadable(f"{type(error).__name__}: {error}") from None
    return Ec2Adapter(client)


@dataclass(frozen=True, slots=True)
class LiveSubnet:
    """What the plan reads of a live subnet."""

    subnet: Subnet
    enis: list[Eni]
    reservations: list[Reservation]


def read_subnet(ec2: Ec2, subnet_id: str) -> LiveSubnet:
    """The subnet, its ENIs and its reservations, through the EC2 port. Raises :class:`MultusIpamError` (ours,
    or the adapter's for AWS's answers) when it cannot be read."""
    try:
        found = ec2.describe_subnets([subnet_id])
    except SubnetMisconfigured:  # the adapter's InvalidSubnetID.NotFound
        found = []
    if len(found) != 1:
        raise SubnetUnreadable("no such subnet in this account and region (InvalidSubnetID.NotFound)")
    return LiveSubnet(found[0], ec2.subnet_enis([subnet_id]), ec2.subnet_reservations(subnet_id))


def live_plan(
    live: LiveSubnet,
    *,
    worker_bound: IPAddress | None = None,
    pod_ranges: Sequence[IPNetwork] = (),
    exclude: Sequence[IPNetwork] = (),
    owner: str | None = None,
) -> Plan:
    """Plan each CIDR block of the live subnet that has pods (pure: ``live`` was read already)."""
    subnet = live.subnet
    return plan_networks(
        [n for n in (subnet.ipv4_cidr, subnet.ipv6_cidr) if n is not None],
        worker_bound=worker_bound,
        pod_ranges=pod_ranges,
        exclude=exclude,
        enis=live.enis,
        reservations=live.reservations,
        owner=owner,
        subnet_id=f"{subnet.subnet_id}, {subnet.availability_zone}",
    )


def _why_unreadable(error: MultusIpamError) -> str:
    """One line, with what to do for a refusal."""
    return _why(error, PLAN_IAM_ACTIONS, "the plan")


def _why(error: MultusIpamError, actions: Sequence[str], what: str = "it") -> str:
    text = " ".join(str(error).split())
    if isinstance(error, AwsCallFailed) and error.code in ACCESS_DENIED_CODES:
        text += f" ({what} needs {', '.join(actions)})"
    return text


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    ec2_factory: Callable[[str | None], Ec2] = _live_ec2,
    group_factory: Callable[[str | None], tuple[adopt.AdoptionEc2, adopt.GroupInstances]] = _live_group,
    env: Mapping[str, str] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "adopt":
        return _adopt(
            parser, args, out=out, err=err, factory=group_factory, env=os.environ if env is None else env, now=now
        )
    live = None
    if args.subnet_id:
        try:
            live = read_subnet(ec2_factory(args.region), args.subnet_id)
        except MultusIpamError as error:  # ours and the adapter's: AWS refusals, no answer, no credentials
            err.write(f"plan: could not read {args.subnet_id}: {_why_unreadable(error)}\n")
            return EXIT_UNREADABLE
    try:
        if live is not None:
            plan = live_plan(
                live,
                worker_bound=args.worker_bound,
                pod_ranges=args.pod_range,
                exclude=args.exclude,
                owner=args.owner,
            )
        else:
            plan = plan_networks(
                args.cidr, worker_bound=args.worker_bound, pod_ranges=args.pod_range, exclude=args.exclude
            )
    except PlanError as error:
        err.write(f"plan: {error}\n")
        return EXIT_USAGE
    out.write(render(plan))
    return EXIT_CONFLICTS if plan.conflicts else EXIT_OK


def _adopt(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    factory: Callable[[str | None], tuple[adopt.AdoptionEc2, adopt.GroupInstances]],
    env: Mapping[str, str],
    now: Callable[[], datetime],
) -> int:
    subnet_ids: tuple[str, ...] | None = args.subnet_ids
    if subnet_ids is None:
        try:
            subnet_ids = _subnet_ids(env.get("MULTUS_SUBNET_IDS", ""))
        except argparse.ArgumentTypeError as error:
            parser.error(f"adopt: give --subnet-ids or set MULTUS_SUBNET_IDS ({error})")
    owner: str = args.owner or env.get("OWNER_ID", "").strip()
    if not owner:
        parser.error("adopt: give --owner (the stack name) or set OWNER_ID")
    try:
        ec2, autoscaling = factory(args.region)
        view = adopt.read_group(ec2, autoscaling, group=args.group, subnet_ids=subnet_ids)
    except MultusIpamError as error:
        err.write(f"adopt: could not read {args.group}: {_why(error, adopt.ADOPT_READ_IAM_ACTIONS)}\n")
        return EXIT_UNREADABLE
    hook_names = [name.strip() for name in env.get("LIFECYCLE_HOOK_NAMES", "").split(",") if name.strip()]
    report = adopt.decide(view, group=args.group, owner=owner, subnet_ids=subnet_ids, hook_names=hook_names)
    if args.apply:
        try:
            adopt.apply(ec2, report, now=now())
        except MultusIpamError as error:
            err.write(f"adopt: could not change {args.group}: {_why(error, adopt.ADOPT_APPLY_IAM_ACTIONS)}\n")
            return EXIT_UNREADABLE
    out.write(adopt.render(report, applied=args.apply))
    return EXIT_CONFLICTS if report.problems else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
