"""What `make mutation` mutates, and which tests own each module.

A module is mutated against the tests that own it, not the whole suite: a mutant only another module's tests notice
is a behaviour this module's own tests leave unstated. Paths are the repository's; the stage (mutation.stage) maps
them onto the packages' import names.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The score every pure module must reach (killed / (mutants - equivalent ones)).
PURE_GOAL = 0.95
LAYER = "layers/multus_ipam/multus_ipam"
POD = "pod-ip-manager/pod_ip_manager"


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    sources: tuple[str, ...]
    """The files to mutate, as repository paths."""
    tests: tuple[str, ...]
    """pytest arguments selecting the owning tests (paths or node ids, from the repository root)."""
    goal: float | None
    """The score to reach; None: reported only (the engine, held to its behaviour classes instead)."""
    skip_lines: tuple[str, ...] = ()
    """Regular expressions: a call starting on a matching line is not mutated (mutmut's do_not_mutate_patterns)."""
    functions: tuple[str, ...] = ()
    """Only these functions are mutated (``name`` or ``Class.name``); empty: every function of the sources."""


# The engine's flows on the local AWS. A handler test costs about a second (a local AWS and a node group per
# test), and a surviving mutant runs every test that reaches its function: mutating all of lifecycle.py (some 1,200
# mutants) against its handler tests takes hours. So the engine's run mutates the functions that make the decisions
# the behaviour classes name, against the tests aimed at them:
ENGINE_FUNCTIONS = (
    # parallel deliveries converge on one ENI: keep an attached one, else the lowest id, delete the others
    "LifecycleService._owned_in",
    "_in_subnet",
    "LifecycleService._adopt_or_create",
    # the attach and its recoveries: attached elsewhere, the card's own indexes, a parallel delivery's attach or
    # delete
    "LifecycleService._attach",
    "LifecycleService._attached_already",
    "LifecycleService._occupied",
    "LifecycleService._settled_elsewhere",
    "LifecycleService._converged_elsewhere",
    # releasing: the wait for a detach, bounded by the invocation's time; what is kept
    "LifecycleService._release",
    "LifecycleService._wait_detached",
    # any failure, planned or not, is rolled back and completed
    "LifecycleService._launch",
    "LifecycleService._fail",
    "LifecycleService._terminate",
    # a MULTUS_SUBNET_IDS entry that does not exist
    "LifecycleService._subnets_in",
    # the states each transition waits in (warm pools included)
    "waiting_states",
    "verify",
)
_FAULTS = "tests/handlers/test_faults_and_redelivery.py::"
_STATIC = "tests/handlers/test_static_launch.py::"
ENGINE_TESTS = (
    "tests/unit/test_verification.py",
    "tests/handlers/test_engine_behaviours.py",
    "tests/handlers/test_deadlines.py",
    "tests/handlers/test_sample_events.py",
    "tests/handlers/test_verification.py",
    *(
        _STATIC + name
        for name in (
            "test_given_a_launch_when_handled_then_each_multus_subnet_of_the_az_gets_an_eni_with_the_lowest_address",
            "test_given_the_vpc_cni_took_device_index_1_when_attaching_then_the_next_free_index_is_used",
            "test_given_configured_device_indexes_when_attaching_then_they_are_used",
            "test_given_no_multus_subnet_in_the_az_when_launching_then_the_launch_fails_by_name",
            "test_given_a_subnet_that_does_not_exist_when_launching_then_the_launch_fails_by_name",
            "test_given_a_terminate_when_handled_then_our_enis_go_and_the_action_continues",
            "test_given_the_worker_bound_is_reached_when_launching_then_rollback_and_abandon",
        )
    ),
    *(
        _FAULTS + name
        for name in (
            "test_given_a_permanent_error_on_a_launch_call_then_rollback_and_abandon"
            "[static-ModifyNetworkInterfaceAttribute]",
            "test_given_a_crash_right_after_a_launch_call_when_redelivered_then_one_eni_per_subnet_and_one_result"
            "[static-AttachNetworkInterface]",
            "test_given_the_rollback_cannot_delete_then_the_action_completes_and_the_reconciler_sweeps_the_eni[static]",
            "test_given_the_same_event_three_times_in_parallel_then_one_eni_per_subnet_and_one_result[static]",
            "test_given_a_warm_pool_when_the_instance_launches_twice_then_both_succeed_without_duplicates[static]",
            "test_given_a_permanent_error_on_a_terminate_call_then_it_still_continues_and_reports_the_eni"
            "[static-DetachNetworkInterface]",
            "test_given_a_launch_failing_after_its_action_was_completed_meanwhile_then_its_unattached_enis_are_deleted"
            "[static-failed]",
        )
    ),
    "tests/handlers/test_eventual_consistency.py",
)
#: Log calls are not mutated in the engine: a log line is not one of its behaviours (its metrics and the outcome's
#: reason are, and stay mutated).
LOG_CALLS = (r"self\._log\.",)

TARGETS: tuple[Target, ...] = (
    Target("addressing", (f"{LAYER}/addressing.py",), ("tests/unit/test_addressing.py",), PURE_GOAL),
    # tests/plan/test_recommended_split.py holds the docs to the plan: it fails on a doc edit, not on plan.py.
    Target("plan", (f"{LAYER}/plan.py",), ("tests/unit/test_plan.py", "tests/plan/test_live_subnet.py"), PURE_GOAL),
    Target(
        "strategies",
        (f"{LAYER}/strategies.py",),
        ("tests/unit/test_strategies.py", "tests/unit/test_hidden_addresses.py"),
        PURE_GOAL,
    ),
    Target("settings", (f"{LAYER}/settings.py",), ("tests/unit/test_settings.py",), PURE_GOAL),
    Target("events", (f"{LAYER}/events.py",), ("tests/unit/test_events.py",), PURE_GOAL),
    Target("pod-planning", (f"{POD}/planning.py",), ("tests/pod/test_planning.py",), PURE_GOAL),
    Target("pod-model", (f"{POD}/model.py",), ("tests/pod/test_planning.py",), PURE_GOAL),
    # The engine: lifecycle.py and what was split out of it (the verification of an event's instance).
    Target(
        "engine",
        (f"{LAYER}/lifecycle.py", f"{LAYER}/verification.py"),
        ENGINE_TESTS,
        None,
        LOG_CALLS,
        ENGINE_FUNCTIONS,
    ),
)


def by_name(names: list[str]) -> list[Target]:
    """The targets named, in the order given; every target when none is named."""
    if not names:
        return list(TARGETS)
    known = {target.name: target for target in TARGETS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[name] for name in names]
