"""Burst benchmark: N simultaneous launches through the static function's handler against the local AWS.

Reports per N: CONTINUE results, whether the N addresses per subnet are exactly the N lowest free ones,
CreateNetworkInterface attempts per ENI, EC2 calls per launch, and wall time. Not part of `make test`.
Run: `make bench` (or `python -m benchmarks.burst 10 50 100`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from localaws import LocalAWS
from tests.handlers.world import build_world, deliver


@dataclass(frozen=True)
class BurstResult:
    n: int
    continued: int
    lowest: bool
    create_attempts_per_eni: float
    ec2_calls_per_launch: float
    autoscaling_calls_per_launch: float
    wall_seconds: float


def run_burst(n: int) -> BurstResult:
    with LocalAWS(region="us-east-1") as aws:
        world = build_world(aws, multus_prefix=24)
        events = world.scale_out(n)
        runtime = world.runtime(page_size=1000)  # the production page size
        aws.clear_calls()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool, contextlib.redirect_stdout(io.StringIO()):
            # (metrics are printed as EMF JSON on stdout, as in Lambda; not wanted in the table)
            outcomes = list(pool.map(lambda e: deliver(runtime, e), events))
        wall = time.perf_counter() - started
        enis = world.our_enis()
        lowest = True
        for subnet in world.multus_subnets[:2]:
            network = IPv4Network(world.cidrs[subnet])
            got = sorted(IPv4Address(e["PrivateIpAddress"]) for e in enis if e["SubnetId"] == subnet)
            first = int(network.network_address) + 4
            lowest &= got == [IPv4Address(first + i) for i in range(n)]
        calls = aws.calls
        creates = len(aws.calls_to("ec2", "CreateNetworkInterface"))
        return BurstResult(
            n=n,
            continued=sum(1 for o in outcomes if o["result"] == "CONTINUE"),
            lowest=lowest,
            create_attempts_per_eni=creates / max(len(enis), 1),
            ec2_calls_per_launch=sum(1 for c in calls if c.service == "ec2") / n,
            autoscaling_calls_per_launch=sum(1 for c in calls if c.service == "autoscaling") / n,
            wall_seconds=wall,
        )


def main(argv: list[str]) -> int:
    logging.disable(logging.CRITICAL)  # the handler's per-step logs would drown the table
    sizes = [int(a) for a in argv] or [10, 50, 100]
    print("| N | CONTINUE | N lowest free | creates per ENI | EC2 calls per launch | ASG calls per launch | wall |")
    print("|---|---|---|---|---|---|---|")
    ok = True
    for n in sizes:
        r = run_burst(n)
        ok &= r.continued == n and r.lowest
        print(
            f"| {r.n} | {r.continued}/{r.n} | {'yes' if r.lowest else 'NO'} | {r.create_attempts_per_eni:.2f} "
            f"| {r.ec2_calls_per_launch:.1f} | {r.autoscaling_calls_per_launch:.1f} | {r.wall_seconds:.1f} s |"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
