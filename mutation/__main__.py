"""`make mutation`: mutation testing of the pure modules and the engine's flows, each against the tests that own it.

    python -m mutation [--jobs N] [--keep] [TARGET ...]     # every target when none is named
    python -m mutation --list

For each target: lay out its stage (mutation.stage), run ``mutmut run`` there (its output goes to
``mutants/<target>/mutmut.log``), then print the score and every survivor as ``file:line  function  before -> after``.
Survivors listed in mutation/equivalent.toml do not count. Exit status 1 when a target with a goal misses it.
The whole report is also written to ``mutants/report.txt``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mutation.report import Equivalent, Mutant, Score, load_equivalents, read_results, score, unused_equivalents
from mutation.stage import LOCALAWS_SEED, STAGES, build, staged_path
from mutation.targets import TARGETS, Target, by_name


def _mutmut() -> str:
    return str(Path(sys.executable).with_name("mutmut"))


def run_target(target: Target, *, jobs: int, fresh: bool) -> float:
    """Stage and mutate ``target``; the seconds it took."""
    started = time.monotonic()
    stage = build(target, fresh=fresh)
    env = {**os.environ, "LOCALAWS_SEED": LOCALAWS_SEED, "PYTHONDONTWRITEBYTECODE": "1"}
    with (stage / "mutmut.log").open("w") as log:
        finished = subprocess.run(  # noqa: S603 - our own virtualenv's mutmut, fixed arguments
            [_mutmut(), "run", "--max-children", str(jobs)],
            cwd=stage,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if finished.returncode != 0:
        tail = (stage / "mutmut.log").read_text(errors="replace").splitlines()[-30:]
        raise SystemExit(f"mutmut failed on {target.name} (exit {finished.returncode}):\n" + "\n".join(tail))
    return time.monotonic() - started


def results(target: Target) -> list[Mutant]:
    files = [(source, staged_path(source)) for source in target.sources]
    return read_results(STAGES / target.name, files)


def _percent(ratio: float) -> str:
    return f"{100 * ratio:5.1f} %"


def describe(target: Target, result: Score, mutants: Sequence[Mutant], stale: Sequence[Equivalent]) -> list[str]:
    goal = "report only" if target.goal is None else f"goal {_percent(target.goal).strip()}"
    met = target.goal is None or result.ratio >= target.goal
    lines = [
        f"{target.name}: {_percent(result.ratio)}  {result.killed} of {result.counted} killed"
        f" ({result.total} mutants, {len(result.equivalent)} equivalent)  [{goal}{'' if met else ': MISSED'}]"
    ]
    lines.extend(
        f"  {mutant.path}:{mutant.line}  {mutant.function}  [{mutant.status}]  {mutant.change()}"
        for mutant in result.survivors
    )
    lines.extend(
        f"  listed as equivalent but killed, remove the entry: {mutant.path}:{mutant.line} {entry}"
        for mutant, entry in result.killed_but_listed
    )
    lines.extend(f"  stale entry in equivalent.toml (matches no mutant): {entry}" for entry in stale)
    if not mutants:
        lines.append("  no mutants: nothing was mutated (see the mutmut.log of this target)")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested in parallel (default 2)")
    parser.add_argument("--keep", action="store_true", help="keep earlier results (mutmut re-tests what changed)")
    parser.add_argument("--report-only", action="store_true", help="report the last run without running again")
    parser.add_argument("--list", action="store_true", help="list the targets and their tests")
    args = parser.parse_args(argv)
    if args.list:
        for target in TARGETS:
            print(f"{target.name}: {', '.join(target.sources)}\n  tests: {' '.join(target.tests)}")
        return 0
    equivalents = load_equivalents()
    report: list[str] = []
    summary: list[str] = []
    missed = False
    total_started = time.monotonic()
    for target in by_name(args.targets):
        took = "-"
        if not args.report_only:
            print(f"mutating {target.name} ({', '.join(target.sources)}) ...", flush=True)
            took = f"{run_target(target, jobs=args.jobs, fresh=not args.keep):.0f} s"
        mutants = results(target)
        result = score(mutants, equivalents)
        modules = {m.module for m in mutants}
        stale = unused_equivalents(equivalents, modules, mutants)
        lines = describe(target, result, mutants, stale)
        print("\n".join(lines), flush=True)
        report.extend(lines)
        missed |= target.goal is not None and result.ratio < target.goal
        goal = "-" if target.goal is None else _percent(target.goal)
        summary.append(
            f"| {target.name:<13}| {_percent(result.ratio)} | {result.killed:>4} / {result.counted:<4} "
            f"| {len(result.equivalent):>3} | {goal:>7} | {took:>7} |"
        )
    table = [
        "",
        "| target       | score   | killed      | eq. | goal    | time    |",
        "|--------------|---------|-------------|-----|---------|---------|",
        *summary,
    ]
    if not args.report_only:
        table.append(f"total time {time.monotonic() - total_started:.0f} s")
    print("\n".join(table))
    STAGES.mkdir(exist_ok=True)
    (STAGES / "report.txt").write_text("\n".join(report + table) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
