"""The sample events in events/ (what users give to `sam local invoke -e`) drive the real flow.

Each file is filled in with the ids of a lifecycle action the local AWS is really waiting on (token,
instance, group, hook), then delivered; everything else in the file is used as it is.
"""

from __future__ import annotations

from typing import Any

from localaws import LocalAWS
from localaws.lifecycle import LifecycleAction
from tests.eventfiles import load_event
from tests.handlers.world import GROUP, World, build_world, deliver


def filled(name: str, action: LifecycleAction) -> dict[str, Any]:
    return load_event(
        name,
        LifecycleActionToken=action.token,
        EC2InstanceId=action.instance_id,
        AutoScalingGroupName=GROUP,
        LifecycleHookName=action.hook,
    )


def only_action(world: World) -> LifecycleAction:
    (action,) = world.aws.lifecycle.active()
    return action


def test_given_launch_and_terminate_samples_when_delivered_then_the_node_comes_and_goes_cleanly(world: World) -> None:
    world.scale_out(1)
    runtime = world.runtime()

    launch = only_action(world)
    assert deliver(runtime, filled("launch.json", launch))["result"] == "CONTINUE"
    assert len(world.our_enis()) == 2
    world.scale_in_instance(launch.instance_id)
    assert deliver(runtime, filled("terminate.json", only_action(world)))["result"] == "CONTINUE"

    assert [r.result for r in world.aws.lifecycle.results] == ["CONTINUE", "CONTINUE"]
    assert world.our_enis() == []


def test_given_the_warm_pool_samples_when_delivered_then_both_launches_share_the_enis(aws: LocalAWS) -> None:
    world = build_world(aws, warm_pool=True)
    runtime = world.runtime()
    into_pool = only_action(world)

    assert deliver(runtime, filled("launch-into-warm-pool.json", into_pool))["result"] == "CONTINUE"
    aws.lifecycle.leave_warm_pool(GROUP, into_pool.instance_id)
    second = deliver(runtime, filled("launch-from-warm-pool.json", only_action(world)))

    assert second["result"] == "CONTINUE"
    assert all(e["adopted"] for e in second["enis"])
    assert len(world.our_enis()) == 2
