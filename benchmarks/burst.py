"""Burst benchmark (issue 9, "hold 500 launches at once"): N launches at once on the realistic local AWS, per design.

The world: two Multus subnets of /22 in the workers' AZ (a third in another AZ, configured, unused), a /20 node
subnet, a group whose MaxSize is N and whose hooks wait 600 s (the stack's default), scaled out by N with one
SetDesiredCapacity. The local AWS is realistic
(``Realism()``: strict parameters, latency, EC2's published token buckets, describe lag 0-2 s, attach latency,
each new node's VPC CNI actor), with 25 % of every refill taken by other callers in the account. Seeded: ``--seed``.

Designs (``benchmarks.burst_runners``):

* ``baseline``: today's design, every event delivered at once, each to its own execution environment;
* ``intake``: EventBridge -> SQS -> event source mapping with MaximumConcurrency M (``--max-concurrency``,
  ``--batch-size``; template.yaml's defaults: 20 and 1), and the reconciler every minute; needs
  ``localaws.intake``.

Reports per design and N, in simulated seconds (``benchmarks.burst_metrics`` says what each figure is read from):
CONTINUE / ABANDON (by API call / by hook timeout), launch-to-completion p50 / p95 / max, the bucket floor and the
bucket that binds it, p95 / floor, EC2 and Auto Scaling calls per launch (by API in a second table), throttled
responses, leaked ENIs, nodes whose Multus ENIs missed their device index, and the issue's targets missed. Exits
non-zero when a run misses N/N CONTINUE or leaks an ENI. Not part of `make test`. Run: `make bench` (or
`python -m benchmarks.burst --sizes 100 250 500 --design baseline intake --seed 1`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

from benchmarks.burst_metrics import SERVICE_NAMES, BurstMetrics, Launches, measure
from benchmarks.burst_runners import (
    FUNCTION_TIMEOUT_SECONDS,
    HOOK_HEARTBEAT_TIMEOUT_SECONDS,
    IntakeSettings,
    Runner,
    intake_available,
    run_intake,
    run_per_event,
)
from localaws import LocalAWS, Realism, Throttling
from tests.handlers.world import build_world

#: The issue's local AWS: realistic, with a quarter of every refill taken by other callers.
REALISM = replace(Realism(), throttling=Throttling(others_share=0.25))
MULTUS_PREFIX = 22  # 1019 usable addresses: a burst of 500 and the addresses already in use
NODE_PREFIX = 20  # each node's primary address and its VPC CNI ENI: 2 x 500 and room to spare


@dataclass(frozen=True)
class Targets:
    """The issue's targets. Missing CONTINUE or leaking fails the run (exit status); the rest are reported."""

    p95_over_floor: float = 1.25
    ec2_calls_per_launch: float = 10.0
    autoscaling_calls_per_launch: float = 2.0

    def missed(self, m: BurstMetrics) -> list[str]:
        missed = self.failed(m)
        floor = m.floor  # a floor of 0 (no bucket binds): the ratio says nothing, no target to miss
        if floor is not None and floor.seconds > 0 and m.percentile(95) > self.p95_over_floor * floor.seconds:
            missed.append("p95/floor")
        if m.per_launch("ec2", m.calls) > self.ec2_calls_per_launch:
            missed.append("EC2 calls")
        if m.per_launch("autoscaling", m.calls) > self.autoscaling_calls_per_launch:
            missed.append("ASG calls")
        return missed

    @staticmethod
    def failed(m: BurstMetrics) -> list[str]:
        failed = []
        if m.count("CONTINUE") != m.n:
            failed.append("CONTINUE")
        if m.leaked:
            failed.append("leaks")
        return failed


def run_burst(n: int, design: str, runner: Runner, *, seed: int) -> BurstMetrics:
    """Launch N at once on a fresh realistic local AWS, deliver the events with ``runner``, measure."""
    started = time.perf_counter()
    with LocalAWS(region="us-east-1", realism=REALISM, seed=seed) as aws:
        world = build_world(
            aws,
            multus_prefix=MULTUS_PREFIX,
            node_prefix=NODE_PREFIX,
            max_size=n,
            heartbeat_timeout=HOOK_HEARTBEAT_TIMEOUT_SECONDS,
        )
        events = world.scale_out(n)
        launches = Launches.of(aws, events)
        aws.clear_calls()
        with contextlib.redirect_stdout(io.StringIO()):  # metrics are EMF JSON on stdout, as in Lambda
            delivered = runner(world, events)
        return measure(world, launches, delivered, design=design, wall_seconds=time.perf_counter() - started)


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} s"


def _row(m: BurstMetrics, targets: Targets) -> str:
    floor = m.floor
    floor_s = floor.seconds if floor is not None else math.nan
    ratio = m.percentile(95) / floor_s if floor is not None and floor_s > 0 else math.nan
    abandoned = f"{m.count('ABANDON')} ({m.count('ABANDON', 'api')} / {m.count('ABANDON', 'timeout')})"
    cells = [
        m.design,
        str(m.n),
        f"{m.count('CONTINUE')}/{m.n}",
        abandoned,
        _seconds(m.percentile(50)),
        _seconds(m.percentile(95)),
        _seconds(m.percentile(100)),
        _seconds(floor_s),
        floor.name if floor is not None and floor.seconds > 0 else "-",
        "-" if math.isnan(ratio) else f"{ratio:.2f}",
        f"{m.per_launch('ec2', m.calls):.2f}",
        f"{m.per_launch('autoscaling', m.calls):.2f}",
        str(sum(m.throttled.values())),
        str(len(m.leaked)),
        str(len(m.index_misses)),
        ", ".join(targets.missed(m)) or "none",
        _seconds(m.simulated_seconds),
        f"{m.wall_seconds:.0f} s",
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| design | N | CONTINUE | ABANDON (api / timeout) | p50 | p95 | max | bucket floor | binding bucket "
    "| p95 / floor | EC2 calls per launch | ASG calls per launch | throttled | leaked ENIs | index misses "
    "| targets missed | simulated | wall |"
)


def _details(runs: Sequence[BurstMetrics]) -> list[str]:
    lines = [
        "",
        "Calls per launch by API, throttled attempts apart (launch path: the function, and for the intake EventBridge's"
        " and the event source mapping's SQS calls; the reconciler's do not grow with N):",
        "",
    ]
    lines += ["| design | N | caller | API | calls per launch | throttled per launch |", "|---|---|---|---|---|---|"]
    for m in runs:
        for caller, calls, throttled in (
            ("launch path", m.calls, m.throttled),
            ("reconciler", m.background_calls, m.background_throttled),
        ):
            for api in sorted(set(calls) | set(throttled)):
                name = f"{SERVICE_NAMES.get(api[0], api[0])} {api[1]}"
                ok, refused = calls.get(api, 0) / m.n, throttled.get(api, 0) / m.n
                lines.append(f"| {m.design} | {m.n} | {caller} | {name} | {ok:.2f} | {refused:.2f} |")
    lines += [
        "",
        "Buckets, tokens taken from the launch to the last result (those that need time past their size):",
        "",
    ]
    lines += [
        "| design | N | bucket | size / refill per s | ours | VPC CNI | time needed |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in runs:
        for use in [u for u in m.buckets if u.seconds > 0] or m.buckets[:1]:
            figures = f"{use.bucket.size:g} / {use.bucket.refill:g}"
            lines.append(
                f"| {m.design} | {m.n} | {use.name} | {figures} | {use.ours} | {use.vpc_cni} | {use.seconds:.1f} s |"
            )
    notes = []
    for m in runs:
        where = f"{m.design}, N={m.n}"
        notes.append(
            f"- {where}: {m.invocations} invocations ({m.failed_invocations} failed), "
            f"{m.vpc_cni_throttled} VPC CNI steps throttled, "
            f"{m.replacements} replacement launches (no event is sent for them here)"
        )
        notes.extend(f"- {where}: {note}" for note in m.notes)
        if m.unfinished:
            notes.append(f"- {where}: {m.unfinished} launches without a result")
        if m.token_mismatches:
            notes.append(f"- {where}: call log and buckets disagree on tokens (counted, bucket): {m.token_mismatches}")
        if m.leaked:
            notes.append(f"- {where}: leaked {', '.join(m.leaked[:10])}{' ...' if len(m.leaked) > 10 else ''}")
        if m.index_misses:
            shown = ", ".join(m.index_misses[:10])
            notes.append(f"- {where}: device index missed on {shown}{' ...' if len(m.index_misses) > 10 else ''}")
    return [*lines, "", *notes]


def _runners(args: argparse.Namespace) -> list[tuple[str, Runner]]:
    timeout: int = args.function_timeout
    runners: list[tuple[str, Runner]] = []
    for design in args.design:
        if design == "baseline":
            runners.append(("per-event (baseline)", partial(run_per_event, function_timeout_seconds=timeout)))
        else:
            settings = IntakeSettings(
                maximum_concurrency=args.max_concurrency,
                batch_size=args.batch_size,
                function_timeout_seconds=timeout,
                reconciler=not args.no_reconciler,
            )
            runners.append((settings.label, partial(run_intake, settings=settings)))
    return runners


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[100, 250, 500], metavar="N")
    parser.add_argument(
        "--design",
        nargs="+",
        choices=("baseline", "intake"),
        default=["baseline", "intake"] if intake_available() else ["baseline"],
        help="baseline: today's per-event delivery; intake: EventBridge -> SQS -> event source mapping "
        "(default: both once localaws.intake exists, else baseline)",
    )
    parser.add_argument("--seed", type=int, default=1)
    defaults = IntakeSettings()
    parser.add_argument(
        "--max-concurrency", type=int, default=defaults.maximum_concurrency, help="intake: MaximumConcurrency M"
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults.batch_size, help="intake: messages per invocation at most"
    )
    parser.add_argument(
        "--no-reconciler", action="store_true", help="intake: without the reconciler running every minute"
    )
    parser.add_argument("--function-timeout", type=int, default=FUNCTION_TIMEOUT_SECONDS, metavar="SECONDS")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the handler's per-step logs would drown the table
    targets = Targets()
    runners = _runners(args)
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    runs: list[BurstMetrics] = []
    for n in args.sizes:
        for design, runner in runners:
            metrics = run_burst(n, design, runner, seed=args.seed)
            runs.append(metrics)
            print(_row(metrics, targets), flush=True)
    print("\n".join(_details(runs)))
    failed = [f"{m.design} N={m.n}: {', '.join(Targets.failed(m))}" for m in runs if Targets.failed(m)]
    if failed:
        print(f"\nFAILED: {'; '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
