"""The functions' entry points as Lambda calls them: configuration from the environment, built once."""

from __future__ import annotations

import pytest

from functions.cidr_reservation import app as cidr_app
from functions.static_ip import app as static_app
from localaws import LocalAWS
from multus_ipam.errors import ConfigurationError
from multus_ipam.runtime import LambdaEntry, Mode
from tests.handlers.world import LAUNCH_HOOK, TERMINATE_HOOK, FakeClock, FakeContext, World


def results(aws: LocalAWS, hook: str) -> list[str]:
    return [r.result for r in aws.lifecycle.results if r.hook == hook]


def entry_on(world: World, mode: Mode, env: dict[str, str]) -> LambdaEntry:
    """The function's entry point, its waits on the local AWS clock (not in wall time)."""
    return LambdaEntry(mode, env, clock=FakeClock(follow=world.aws.clock))


@pytest.mark.parametrize("mode", [Mode.STATIC, Mode.CIDR_RESERVATION])
def test_given_a_valid_environment_when_invoked_twice_then_the_runtime_is_built_once(world: World, mode: Mode) -> None:
    env = world.env(MULTUS_SUBNET_IDS=world.multus_subnets[2])  # no Multus subnet in the workers' AZ
    entry = entry_on(world, mode, env)
    first, second = world.scale_out(2)

    assert entry(first, FakeContext())["result"] == "ABANDON"
    world.aws.clear_calls()
    assert entry(second, FakeContext())["result"] == "ABANDON"

    assert world.aws.calls_to("ec2", "DescribeSubnets") == [], "subnets are looked up once per environment"


def test_given_a_bad_variable_when_a_launch_arrives_then_it_fails_by_name_after_abandoning_the_action(
    world: World,
) -> None:
    (event,) = world.scale_out(1)
    entry = LambdaEntry(Mode.STATIC, world.env(MULTUS_SECURITY_GROUP_IDS="not-a-group"))

    with pytest.raises(ConfigurationError, match=r"^MULTUS_SECURITY_GROUP_IDS: 'not-a-group' is not a valid id"):
        entry(event, FakeContext())

    assert results(world.aws, LAUNCH_HOOK) == ["ABANDON"], "no instance may wait for the hook timeout"
    assert world.our_enis() == []


def test_given_a_bad_variable_and_failure_result_continue_then_the_launch_continues(world: World) -> None:
    (event,) = world.scale_out(1)
    entry = LambdaEntry(Mode.STATIC, world.env(DEVICE_INDEXES="oops", FAILURE_RESULT="CONTINUE"))

    with pytest.raises(ConfigurationError, match=r"^DEVICE_INDEXES"):
        entry(event, FakeContext())

    assert results(world.aws, LAUNCH_HOOK) == ["CONTINUE"]


def test_given_a_bad_variable_when_a_terminate_arrives_then_the_termination_continues(world: World) -> None:
    (launch,) = world.scale_out(1)
    assert entry_on(world, Mode.STATIC, world.env())(launch, FakeContext())["result"] == "CONTINUE"
    event = world.scale_in_instance(launch["detail"]["EC2InstanceId"])
    entry = LambdaEntry(Mode.STATIC, world.env(AUTOSCALING_GROUP_NAME=""))

    with pytest.raises(ConfigurationError, match=r"^AUTOSCALING_GROUP_NAME: is required"):
        entry(event, FakeContext())

    assert results(world.aws, TERMINATE_HOOK) == ["CONTINUE"]


def test_given_a_bad_variable_and_a_malformed_event_then_only_the_configuration_error_is_raised(
    world: World,
) -> None:
    entry = LambdaEntry(Mode.STATIC, world.env(NETWORK_CARD_INDEX="-1"))
    world.aws.clear_calls()

    with pytest.raises(ConfigurationError, match=r"^NETWORK_CARD_INDEX"):
        entry({"detail-type": "nonsense"}, FakeContext())

    assert world.aws.calls == []


def test_given_the_deployed_handlers_then_each_uses_its_own_strategy() -> None:
    assert static_app.ENTRY._mode is Mode.STATIC
    assert cidr_app.ENTRY._mode is Mode.CIDR_RESERVATION


def test_given_an_event_of_another_hook_when_hook_names_are_configured_then_it_is_left_alone(world: World) -> None:
    (event,) = world.scale_out(1)
    event["detail"]["LifecycleHookName"] = "node-termination-handler-drain"  # another tool's hook on the group
    entry = LambdaEntry(Mode.STATIC, world.env(LIFECYCLE_HOOK_NAMES=f"{LAUNCH_HOOK},{TERMINATE_HOOK}"))
    world.aws.clear_calls()

    outcome = entry(event, FakeContext())

    assert outcome["status"] == "ignored"
    assert "node-termination-handler-drain" in outcome["reason"]
    assert world.aws.calls == [], "another tool's lifecycle action is not ours to complete"


def test_given_a_bad_variable_and_another_hooks_event_then_that_action_is_not_completed(world: World) -> None:
    (event,) = world.scale_out(1)
    event["detail"]["LifecycleHookName"] = "someone-elses-hook"
    entry = LambdaEntry(Mode.STATIC, world.env(LIFECYCLE_HOOK_NAMES=LAUNCH_HOOK, DEVICE_INDEXES="oops"))
    world.aws.clear_calls()

    with pytest.raises(ConfigurationError, match=r"^DEVICE_INDEXES"):
        entry(event, FakeContext())

    assert world.aws.calls == []


def test_given_no_hook_names_when_any_event_arrives_then_it_fails_by_name_and_completes_nothing(world: World) -> None:
    """LIFECYCLE_HOOK_NAMES is required: on an EKS managed node group every instance also waits on EKS's own
    Launch-LC-Hook, and completing that for EKS would let the node in before EKS is done with it. Without the
    names the function cannot tell ours from theirs, so even the configuration error completes nothing."""
    (event,) = world.scale_out(1)
    entry = LambdaEntry(Mode.STATIC, {k: v for k, v in world.env().items() if k != "LIFECYCLE_HOOK_NAMES"})
    world.aws.clear_calls()

    with pytest.raises(ConfigurationError, match=r"^LIFECYCLE_HOOK_NAMES: required"):
        entry(event, FakeContext())

    assert world.aws.calls == []
    assert world.lifecycle_state(event["detail"]["EC2InstanceId"]) == "Pending:Wait"
