"""Command line: ``python -m multus_ipam plan ...`` prints a Multus subnet's plan (see :mod:`multus_ipam.plan`).

Offline, from a CIDR::

    python -m multus_ipam plan --cidr 10.0.4.0/24 --worker-bound 10.0.4.63          # static mode
    python -m multus_ipam plan --cidr 10.0.4.0/24 --pod-range 10.0.4.128/25         # cidr-reservation mode

Against a live subnet (reads the subnet, its ENIs and its CIDR reservations: ec2:DescribeSubnets,
ec2:DescribeNetworkInterfaces, ec2:GetSubnetCidrReservations)::

    python -m multus_ipam plan --subnet-id subnet-0abc... --worker-bound 10.0.4.63 [--owner STACK] [--region R]

Exit status: 0 the plan has no conflicts, 1 it has conflicts (listed), 2 the arguments describe no plan.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from ipaddress import ip_address, ip_network
from typing import TextIO

from multus_ipam.addressing import IPAddress, IPNetwork
from multus_ipam.errors import MultusIpamError
from multus_ipam.plan import PlanError, SubnetPlan, plan_subnet, render
from multus_ipam.ports import Ec2

EXIT_OK, EXIT_CONFLICTS, EXIT_USAGE = 0, 1, 2


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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m multus_ipam", description="eks-multus-ipam tools")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan",
        help="show how a Multus subnet splits between workers, pods and AWS, and the whereabouts IPAM block",
        description="Worker range, pod range, AWS-reserved addresses, capacities, conflicts and a whereabouts "
        "IPAM block. Give --worker-bound (static mode) or --pod-range (cidr-reservation mode); with "
        "--subnet-id and neither, the subnet's explicit CIDR reservations are the pod ranges.",
    )
    subnet = plan.add_mutually_exclusive_group(required=True)
    subnet.add_argument("--cidr", type=_network, help="plan offline for this subnet CIDR")
    subnet.add_argument("--subnet-id", help="read this live subnet, its ENIs and its CIDR reservations")
    mode = plan.add_mutually_exclusive_group()
    mode.add_argument(
        "--worker-bound", type=_address, help="static mode: the highest worker address (WORKER_IP_UPPER_BOUNDS)"
    )
    mode.add_argument(
        "--pod-range",
        type=_network,
        action="append",
        default=[],
        metavar="CIDR",
        help="cidr-reservation mode: a pod range, i.e. an explicit subnet CIDR reservation (repeatable)",
    )
    plan.add_argument("--owner", help="only ENIs whose multus-ipam:owner tag has this value (the stack name) are ours")
    plan.add_argument("--region", help="AWS region of the live subnet (default: the usual boto3 lookup)")
    return parser


def _live_ec2(region: str | None) -> Ec2:
    import boto3  # noqa: PLC0415  # only the live mode needs AWS

    from multus_ipam.aws.clients import make_clients  # noqa: PLC0415
    from multus_ipam.aws.ec2 import Ec2Adapter  # noqa: PLC0415

    return Ec2Adapter(make_clients(5, boto3.session.Session(region_name=region)).ec2)


def live_plan(
    ec2: Ec2,
    subnet_id: str,
    *,
    worker_bound: IPAddress | None = None,
    pod_ranges: Sequence[IPNetwork] = (),
    owner: str | None = None,
) -> SubnetPlan:
    """Read the subnet, its ENIs and its reservations through the EC2 port, then plan."""
    (subnet,) = ec2.describe_subnets([subnet_id])
    wanted = worker_bound.version if worker_bound else pod_ranges[0].version if pod_ranges else None
    blocks: list[IPNetwork] = [n for n in (subnet.ipv4_cidr, subnet.ipv6_cidr) if n is not None]
    matching = [n for n in blocks if wanted is None or n.version == wanted]
    if not matching:
        raise PlanError(f"{subnet_id} has no IPv{wanted} CIDR block")
    return plan_subnet(
        matching[0],
        worker_bound=worker_bound,
        pod_ranges=pod_ranges,
        enis=ec2.subnet_enis([subnet_id]),
        reservations=ec2.subnet_reservations(subnet_id),
        owner=owner,
        subnet_id=f"{subnet_id}, {subnet.availability_zone}",
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    ec2_factory: Callable[[str | None], Ec2] = _live_ec2,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = _parser().parse_args(argv)
    try:
        if args.subnet_id:
            plan = live_plan(
                ec2_factory(args.region),
                args.subnet_id,
                worker_bound=args.worker_bound,
                pod_ranges=args.pod_range,
                owner=args.owner,
            )
        else:
            plan = plan_subnet(args.cidr, worker_bound=args.worker_bound, pod_ranges=args.pod_range)
    except (PlanError, MultusIpamError) as error:  # includes AWS refusals and a subnet that does not exist
        err.write(f"plan: {error}\n")
        return EXIT_USAGE
    out.write(render(plan))
    return EXIT_CONFLICTS if plan.conflicts else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
