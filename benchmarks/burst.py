"""Burst benchmark: N simultaneous launches through the static function's handler, on the realistic local AWS
and on the ideal one.

* **realistic** (``Realism()``): strict parameters, latency, EC2's token buckets, visibility lag, asynchronous
  attachments and each new node's VPC CNI; the N deliveries run as N concurrent callers on the local AWS clock
  (``aws.run_concurrently``), each in its own execution environment (its own runtime: clients, retry quota,
  caches), with the function's 180 s timeout counted on that clock. Seeded: ``--seed``.
* **ideal** (``Realism.ideal()``): instant, consistent, unthrottled; N real threads share one runtime, as the
  project's first benchmark did.

Reports per N: CONTINUE results, whether the addresses per subnet are exactly the lowest free ones,
CreateNetworkInterface attempts per ENI, EC2 and Auto Scaling calls per launch, throttled calls, device index
fallbacks (the VPC CNI got there first), the simulated time the burst took and wall time. Not part of
`make test`. Run: `make bench` (or `python -m benchmarks.burst 10 50 100 --seed 1`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from localaws import LocalAWS, Realism
from tests.handlers.world import FakeClock, FakeContext, World, build_world, deliver

LAMBDA_TIMEOUT_MS = 180_000  # template.yaml: the functions' Timeout


@dataclass(frozen=True)
class BurstResult:
    kind: str
    n: int
    continued: int
    lowest: bool
    create_attempts_per_eni: float
    ec2_calls_per_launch: float
    autoscaling_calls_per_launch: float
    throttled: int
    fallbacks: int
    simulated_seconds: float
    wall_seconds: float


def _lowest(world: World, n: int) -> bool:
    enis = world.our_enis()
    for subnet in world.multus_subnets[:2]:
        network = IPv4Network(world.cidrs[subnet])
        got = sorted(IPv4Address(e["PrivateIpAddress"]) for e in enis if e["SubnetId"] == subnet)
        first = int(network.network_address) + 4
        if got != [IPv4Address(first + i) for i in range(n)]:
            return False
    return True


def _deliveries(world: World, events: list[dict[str, Any]], realistic: bool) -> list[Callable[[], dict[str, Any]]]:
    if not realistic:
        runtime = world.runtime(page_size=1000)  # the production page size
        return [lambda e=e: deliver(runtime, e) for e in events]  # type: ignore[misc]
    return [_execution_environment(world, event) for event in events]


def _execution_environment(world: World, event: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """One delivery in its own execution environment: its own runtime (clients, retry quota, caches)."""
    clock = FakeClock(follow=world.aws.clock)
    runtime = world.runtime(clock=clock, page_size=1000)
    return lambda: deliver(runtime, event, FakeContext(remaining_ms=LAMBDA_TIMEOUT_MS, clock=clock))


def run_burst(n: int, *, realistic: bool, seed: int) -> BurstResult:
    realism = Realism() if realistic else Realism.ideal()
    with LocalAWS(region="us-east-1", realism=realism, seed=seed) as aws:
        world = build_world(aws, multus_prefix=24)
        events = world.scale_out(n)
        aws.clock.advance(5)  # EventBridge takes a moment to deliver: the new instances are visible by then
        tasks = _deliveries(world, events, realistic)
        aws.clear_calls()
        throttled_before = sum(aws.buckets.refused.values()) if aws.buckets else 0
        started, began = time.perf_counter(), aws.clock.now()
        with contextlib.redirect_stdout(io.StringIO()):  # metrics are EMF JSON on stdout, as in Lambda
            if realistic:
                outcomes = [o.get() for o in aws.run_concurrently(tasks)]
            else:
                with ThreadPoolExecutor(max_workers=n) as pool:
                    outcomes = list(pool.map(lambda task: task(), tasks))
        wall = time.perf_counter() - started
        simulated = (aws.clock.now() - began).total_seconds()
        aws.clock.advance(aws.realism.visibility_lag)
        calls = aws.calls
        enis = world.our_enis()
        return BurstResult(
            kind="realistic" if realistic else "ideal",
            n=n,
            continued=sum(1 for o in outcomes if o.get("result") == "CONTINUE"),
            lowest=_lowest(world, n),
            create_attempts_per_eni=len(aws.calls_to("ec2", "CreateNetworkInterface")) / max(len(enis), 1),
            ec2_calls_per_launch=sum(1 for c in calls if c.service == "ec2") / n,
            autoscaling_calls_per_launch=sum(1 for c in calls if c.service == "autoscaling") / n,
            throttled=(sum(aws.buckets.refused.values()) - throttled_before) if aws.buckets else 0,
            fallbacks=sum(
                1 for o in outcomes for i, e in enumerate(o.get("enis", []), start=1) if e["deviceIndex"] != i
            ),
            simulated_seconds=simulated,
            wall_seconds=wall,
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[10, 50, 100])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("realistic", "ideal"))
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the handler's per-step logs would drown the table
    print(
        "| local AWS | N | CONTINUE | N lowest free | creates per ENI | EC2 calls per launch | ASG calls per launch "
        "| throttled calls | index fallbacks | simulated time | wall |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ok = True
    kinds = [args.only == "realistic" or args.only is None, args.only == "ideal" or args.only is None]
    for n in args.sizes:
        for realistic, wanted in zip((True, False), kinds, strict=True):
            if not wanted:
                continue
            r = run_burst(n, realistic=realistic, seed=args.seed)
            ok &= r.continued == n
            simulated = f"{r.simulated_seconds:.1f} s" if realistic else "-"
            print(
                f"| {r.kind} | {r.n} | {r.continued}/{r.n} | {'yes' if r.lowest else 'NO'} "
                f"| {r.create_attempts_per_eni:.2f} | {r.ec2_calls_per_launch:.1f} "
                f"| {r.autoscaling_calls_per_launch:.1f} | {r.throttled} | {r.fallbacks} | {simulated} "
                f"| {r.wall_seconds:.1f} s |",
                flush=True,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
