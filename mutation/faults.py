"""The engine's behaviour classes (issue 13), each as a fault applied by hand, and the tests that must catch it.

    python -m mutation.faults [NAME ...]      # every fault when none is named; exit 1 if one is not caught

A fault replaces one line (or a few) of one function, in the test process only: no file is edited. Each run is
one pytest process with this module as a plugin (``-p mutation.faults``) and ``MUTATION_FAULT=<name>``. A fault is
caught when at least one of its tests fails; the run without a fault must pass first.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

ENV = "MUTATION_FAULT"
LIFECYCLE = "multus_ipam.lifecycle"
ENGINE = "tests/handlers/test_engine_behaviours.py"
FAULTS_FILE = "tests/handlers/test_faults_and_redelivery.py::"


@dataclass(frozen=True, slots=True)
class Fault:
    behaviour: str
    module: str
    function: str
    """``name`` or ``Class.name`` in ``module``."""
    before: str
    after: str
    tests: tuple[str, ...]


FAULTS: dict[str, Fault] = {
    "no-dedup": Fault(
        "parallel deliveries converge on one ENI",
        LIFECYCLE,
        "LifecycleService._owned_in",
        "if extra.eni_id != keep.eni_id and extra.attachment is None:",
        "if False:",
        (ENGINE,),
    ),
    "delete-attached-duplicates": Fault(
        "parallel deliveries converge on one ENI",
        LIFECYCLE,
        "LifecycleService._owned_in",
        "if extra.eni_id != keep.eni_id and extra.attachment is None:",
        "if extra.eni_id != keep.eni_id:",
        (ENGINE,),
    ),
    "keep-highest-id": Fault(
        "parallel deliveries converge on one ENI",
        LIFECYCLE,
        "LifecycleService._owned_in",
        "keep = min(attached or mine, key=lambda e: e.eni_id)",
        "keep = max(attached or mine, key=lambda e: e.eni_id)",
        (ENGINE,),
    ),
    "ignore-attached": Fault(
        "parallel deliveries converge on one ENI",
        LIFECYCLE,
        "LifecycleService._owned_in",
        "keep = min(attached or mine, key=lambda e: e.eni_id)",
        "keep = min(mine, key=lambda e: e.eni_id)",
        (ENGINE,),
    ),
    "ignore-subnet": Fault(
        "parallel deliveries converge on one ENI",
        LIFECYCLE,
        "LifecycleService._owned_in",
        "mine = [eni for eni in owned if _in_subnet(eni, subnet_id)]",
        "mine = list(owned)",
        (ENGINE,),
    ),
    "skip-detach-wait": Fault(
        "the wait for a detach",
        LIFECYCLE,
        "LifecycleService._wait_detached",
        "started = self._clock.now()",
        "return",
        (
            ENGINE,
            "tests/handlers/test_deadlines.py",
            FAULTS_FILE + "test_given_a_permanent_error_on_a_launch_call_then_rollback_and_abandon"
            "[static-ModifyNetworkInterfaceAttribute]",
        ),
    ),
    "detach-wait-ignores-time": Fault(
        "the wait for a detach",
        LIFECYCLE,
        "LifecycleService._wait_detached",
        "until = min(started + timedelta(seconds=self._settings.detach_timeout_seconds), budget.rollback_until)",
        "until = started + timedelta(seconds=self._settings.detach_timeout_seconds)",
        ("tests/handlers/test_deadlines.py",),
    ),
    "attached-elsewhere-accepted": Fault(
        "attach recovery",
        LIFECYCLE,
        "LifecycleService._attached_already",
        "if eni.attachment.instance_id == instance.instance_id:",
        "if True:",
        (ENGINE,),
    ),
    "card-ignored": Fault(
        "attach recovery",
        LIFECYCLE,
        "LifecycleService._occupied",
        "for i in launch.instance.interfaces if i.network_card_index == card}",
        "for i in launch.instance.interfaces}",
        (ENGINE,),
    ),
    "index-taken-never-settled": Fault(
        "attach recovery",
        LIFECYCLE,
        "LifecycleService._settled_elsewhere",
        "instance_id = launch.instance.instance_id",
        "return None",
        (ENGINE,),
    ),
    "deleted-never-converged": Fault(
        "attach recovery",
        LIFECYCLE,
        "LifecycleService._converged_elsewhere",
        "fresh = self._ec2.owned_enis(self._settings.owner, launch.instance.instance_id)",
        "return None",
        (ENGINE,),
    ),
    "already-attached-not-seen": Fault(
        "attach recovery",
        LIFECYCLE,
        "LifecycleService._attach",
        "if current and current.attachment and current.attachment.instance_id == instance.instance_id:",
        "if False:",
        (ENGINE,),
    ),
    "unexpected-error-escapes": Fault(
        "an unexpected error is rolled back and completed",
        LIFECYCLE,
        "LifecycleService._launch",
        "self._fail(action, budget, error, tuple(known.values()))",
        "pass",
        (ENGINE,),
    ),
    "missing-subnet-keyerror": Fault(
        "a MULTUS_SUBNET_IDS entry that does not exist",
        LIFECYCLE,
        "LifecycleService._subnets_in",
        "if missing:",
        "if False:",
        (ENGINE,),
    ),
    "warm-pool-launch-state": Fault(
        "warm-pool waiting states",
        "multus_ipam.verification",
        "waiting_states",
        'return frozenset({"Warmed:Pending:Wait"} if action.into_warm_pool else {"Pending:Wait"})',
        'return frozenset({"Pending:Wait"})',
        ("tests/unit/test_verification.py", "tests/handlers/test_sample_events.py"),
    ),
    "warm-pool-terminate-state": Fault(
        "warm-pool waiting states",
        "multus_ipam.verification",
        "waiting_states",
        'return frozenset({"Warmed:Terminating:Wait"})',
        'return frozenset({"Terminating:Wait"})',
        ("tests/unit/test_verification.py",),
    ),
    "rollback-keeps-dot-enis": Fault(
        "a rollback releases everything it made",
        LIFECYCLE,
        "LifecycleService._fail",
        "left = self._release(action.instance_id, budget, everything=True, known=known)",
        "left = self._release(action.instance_id, budget, everything=False, known=known)",
        (ENGINE,),
    ),
    "release-strips-other-instance": Fault(
        "a release keeps what another instance has attached",
        LIFECYCLE,
        "LifecycleService._release",
        "if attachment is not None and attachment.instance_id != instance_id:",
        "if False:",
        (ENGINE,),
    ),
}


def apply(fault: Fault) -> None:
    """Replace the function with a copy whose source has the fault, wherever the original is bound."""
    module = importlib.import_module(fault.module)
    *path, name = fault.function.split(".")
    owner: object = module
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    source = textwrap.dedent(inspect.getsource(original))
    if source.count(fault.before) != 1:
        raise ValueError(f"{fault.function} does not contain {fault.before!r} exactly once: update mutation/faults.py")
    namespace: dict[str, object] = {}
    code = compile(source.replace(fault.before, fault.after), f"<fault in {fault.function}>", "exec")
    exec(code, vars(module), namespace)  # noqa: S102 - our own source, changed as listed above
    setattr(owner, name, namespace[name])
    if not path:  # a module function: also where it was imported by name (from x import f)
        for other in list(sys.modules.values()):
            if getattr(other, name, None) is original:
                setattr(other, name, namespace[name])


def pytest_configure(config: pytest.Config) -> None:
    name = os.environ.get(ENV)
    if name:
        apply(FAULTS[name])


def _run(name: str | None, tests: Sequence[str]) -> tuple[int, list[str]]:
    env = {**os.environ, ENV: name or "", "LOCALAWS_SEED": os.environ.get("LOCALAWS_SEED", "1234")}
    command = [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-p", "mutation.faults"]
    finished = subprocess.run([*command, *tests], env=env, capture_output=True, text=True, check=False)  # noqa: S603 - fixed arguments
    failed = [
        line.split(" - ")[0].removeprefix("FAILED ")
        for line in finished.stdout.splitlines()
        if line.startswith("FAILED ")
    ]
    return finished.returncode, failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation.faults", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"faults to apply (default: all): {', '.join(FAULTS)}")
    names = parser.parse_args(argv).names or list(FAULTS)
    unknown = [n for n in names if n not in FAULTS]
    if unknown:
        parser.error(f"unknown fault(s) {', '.join(unknown)}")
    missed = []
    for name in names:
        fault = FAULTS[name]
        clean, _ = _run(None, fault.tests)
        if clean != 0:
            print(f"{name}: its tests fail without the fault: fix them first")
            return 1
        code, failed = _run(name, fault.tests)
        if code == 0:
            missed.append(name)
        print(f"{name} ({fault.behaviour}): {'caught by ' + ', '.join(failed) if failed else 'NOT CAUGHT'}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
