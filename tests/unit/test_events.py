"""Parsing EventBridge lifecycle events: accepted shapes, and rejections that name the field."""

from datetime import UTC, datetime

import pytest

from multus_ipam.errors import InvalidEvent
from multus_ipam.events import (
    QUOTED_AT_MOST,
    LifecycleAction,
    TestNotification,
    Transition,
    parse_lifecycle_event,
    quoted,
)
from tests.eventfiles import load_event


def test_given_a_launch_event_when_parsed_then_all_fields_are_carried() -> None:
    action = parse_lifecycle_event(load_event("launch.json"))
    assert action == LifecycleAction(
        transition=Transition.LAUNCHING,
        event_id="468fcf5c-9d1c-4fba-9c5b-6a3f1e0c7a11",
        group="multus-workers",
        hook="multus-launch",
        token="87654321-4321-4321-4321-210987654321",
        instance_id="i-0123456789abcdef0",
        origin="EC2",
        destination="AutoScalingGroup",
        time=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
    )


@pytest.mark.parametrize("time", [None, "", "yesterday"])
def test_given_an_event_time_that_is_missing_or_unreadable_when_parsed_then_the_action_is_still_handled(
    time: str | None,
) -> None:
    event = load_event("launch.json")
    if time is None:
        del event["time"]
    else:
        event["time"] = time

    action = parse_lifecycle_event(event)

    assert isinstance(action, LifecycleAction)
    assert action.time is None


def test_given_an_event_time_with_an_offset_when_parsed_then_it_is_in_utc() -> None:
    event = load_event("launch.json")
    event["time"] = "2026-11-24T11:00:00+01:00"

    action = parse_lifecycle_event(event)

    assert isinstance(action, LifecycleAction)
    assert action.time == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_given_a_terminate_event_when_parsed_then_it_is_a_terminating_action() -> None:
    action = parse_lifecycle_event(load_event("terminate.json"))
    assert isinstance(action, LifecycleAction)
    assert action.transition is Transition.TERMINATING
    assert not action.into_warm_pool


def test_given_a_terminate_into_the_warm_pool_when_parsed_then_it_says_so() -> None:
    action = parse_lifecycle_event(load_event("terminate-into-warm-pool.json"))
    assert isinstance(action, LifecycleAction)
    assert action.into_warm_pool


def test_given_optional_fields_absent_when_parsed_then_they_are_none() -> None:
    event = load_event("launch.json")
    del event["detail"]["Origin"], event["detail"]["Destination"]
    action = parse_lifecycle_event(event)
    assert isinstance(action, LifecycleAction)
    assert action.origin is None
    assert action.destination is None


def test_given_unknown_extra_fields_when_parsed_then_they_are_ignored() -> None:
    event = load_event("launch.json")
    event["detail"]["SomethingNew"] = "x"
    assert isinstance(parse_lifecycle_event(event), LifecycleAction)


def test_given_a_test_notification_when_parsed_then_it_is_recognised() -> None:
    assert parse_lifecycle_event(load_event("test-notification.json")) == TestNotification(group="multus-workers")


def test_given_a_missing_instance_id_when_parsed_then_the_field_is_named() -> None:
    with pytest.raises(InvalidEvent, match=r"detail\.EC2InstanceId: Field required"):
        parse_lifecycle_event(load_event("malformed-missing-instance-id.json"))


def test_given_another_detail_type_when_parsed_then_it_is_rejected_by_name() -> None:
    with pytest.raises(InvalidEvent, match="detail-type: unsupported value 'EC2 Instance Launch Successful'"):
        parse_lifecycle_event(load_event("launch-successful-not-a-lifecycle-action.json"))


def test_given_a_transition_that_contradicts_the_detail_type_when_parsed_then_rejected() -> None:
    event = load_event("launch.json", LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING")
    with pytest.raises(InvalidEvent, match=r"detail\.LifecycleTransition"):
        parse_lifecycle_event(event)


def test_given_a_malformed_instance_id_when_parsed_then_rejected() -> None:
    with pytest.raises(InvalidEvent, match=r"detail\.EC2InstanceId"):
        parse_lifecycle_event(load_event("launch.json", EC2InstanceId="not-an-instance"))


def test_given_another_source_when_parsed_then_rejected() -> None:
    event = load_event("launch.json")
    event["source"] = "aws.ec2"
    with pytest.raises(InvalidEvent, match="source"):
        parse_lifecycle_event(event)


@pytest.mark.parametrize("event", [None, [], "text", 42])
def test_given_a_non_object_when_parsed_then_rejected(event: object) -> None:
    with pytest.raises(InvalidEvent, match="must be a JSON object"):
        parse_lifecycle_event(event)


def test_given_a_lifecycle_action_that_also_claims_to_be_a_test_notification_when_parsed_then_it_is_the_action() -> (
    None
):
    # A test notification has no lifecycle detail-type; one with it is a lifecycle action whatever else it says
    # (taken for a test notification, it would be skipped and its instance left waiting).
    event = load_event("launch.json")
    event["Event"] = "autoscaling:TEST_NOTIFICATION"
    event["detail"]["Event"] = "autoscaling:TEST_NOTIFICATION"

    assert isinstance(parse_lifecycle_event(event), LifecycleAction)


def test_given_a_huge_detail_type_when_rejected_then_the_message_quotes_only_its_start() -> None:
    event = load_event("launch.json")
    event["detail-type"] = "x" * 200_000

    with pytest.raises(InvalidEvent, match=r"detail-type: unsupported value 'xxx.*\(200002 characters\)") as raised:
        parse_lifecycle_event(event)

    assert len(str(raised.value)) < 300


def test_given_an_event_id_longer_than_any_eventbridge_or_reconciler_id_when_parsed_then_rejected_by_name() -> None:
    event = load_event("launch.json")
    event["id"] = "i" * 513

    with pytest.raises(InvalidEvent, match="id: String should have at most 512 characters"):
        parse_lifecycle_event(event)


def test_given_two_wrong_fields_when_parsed_then_each_is_named_by_its_path_in_the_event() -> None:
    event = load_event("launch.json", LifecycleHookName="")
    del event["detail"]["EC2InstanceId"]
    with pytest.raises(InvalidEvent) as raised:
        parse_lifecycle_event(event)
    assert str(raised.value) == (
        "detail.LifecycleHookName: String should have at least 1 character; detail.EC2InstanceId: Field required"
    )


def test_given_an_event_without_its_detail_when_parsed_then_detail_is_named() -> None:
    event = load_event("launch.json")
    del event["detail"]
    with pytest.raises(InvalidEvent) as raised:
        parse_lifecycle_event(event)
    assert str(raised.value) == "detail: Field required"


def test_given_a_list_when_parsed_then_the_message_names_its_type() -> None:
    with pytest.raises(InvalidEvent) as raised:
        parse_lifecycle_event([])
    assert str(raised.value) == "event must be a JSON object, got list"


def test_given_an_auto_scaling_event_without_a_token_when_parsed_then_rejected_naming_the_token() -> None:
    event = load_event("launch.json")
    del event["detail"]["LifecycleActionToken"]
    with pytest.raises(InvalidEvent) as raised:
        parse_lifecycle_event(event)
    assert str(raised.value) == "detail.LifecycleActionToken: Field required (Auto Scaling always sends one)"


def test_given_a_reconciler_event_without_a_token_when_parsed_then_the_action_is_by_instance_id() -> None:
    event = load_event("launch.json")
    event["source"] = "multus-ipam.reconciler"
    del event["detail"]["LifecycleActionToken"]
    action = parse_lifecycle_event(event)
    assert isinstance(action, LifecycleAction)
    assert action.token is None


@pytest.mark.parametrize(
    ("event", "group"),
    [
        # SNS / SQS hook targets: the notification's fields at the top (what events/test-notification.json holds)
        ({"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "g", "detail": "x"}, "g"),
        # the same fields as an event's detail
        ({"detail": {"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": "g"}}, "g"),
        ({"detail": {"Event": "autoscaling:TEST_NOTIFICATION", "AutoScalingGroupName": 7}}, None),
        ({"Event": "autoscaling:TEST_NOTIFICATION"}, None),
    ],
    ids=["top-level", "in-detail", "group-not-a-string", "no-group"],
)
def test_given_a_test_notification_in_either_shape_when_parsed_then_it_names_its_group(
    event: dict[str, object], group: str | None
) -> None:
    assert parse_lifecycle_event(event) == TestNotification(group=group)


def test_given_a_detail_that_is_not_a_test_notification_when_parsed_then_it_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match=r"^detail-type: unsupported value None"):
        parse_lifecycle_event({"detail": {"Event": "autoscaling:EC2_INSTANCE_LAUNCH"}})


def test_given_a_value_of_exactly_the_quoted_length_when_quoted_then_it_is_shown_whole() -> None:
    at_most = "x" * (QUOTED_AT_MOST - 2)  # its repr adds the two quotes
    assert quoted(at_most) == repr(at_most)
    assert quoted(at_most + "x") == f"{repr(at_most + 'x')[:QUOTED_AT_MOST]}... ({QUOTED_AT_MOST + 1} characters)"


def test_given_an_action_when_logging_then_its_keys_name_it_and_say_how_it_is_completed() -> None:
    action = parse_lifecycle_event(load_event("launch.json"))
    assert isinstance(action, LifecycleAction)
    assert action.log_keys() == {
        "instance_id": "i-0123456789abcdef0",
        "group": "multus-workers",
        "hook": "multus-launch",
        "transition": "autoscaling:EC2_INSTANCE_LAUNCHING",
        "lifecycle_token": "87654321-4321-4321-4321-210987654321",
        "event_id": "468fcf5c-9d1c-4fba-9c5b-6a3f1e0c7a11",
        "origin": "EC2",
        "destination": "AutoScalingGroup",
    }


def test_given_a_reconciler_action_without_origin_when_logging_then_it_says_it_is_completed_by_instance_id() -> None:
    event = load_event("launch.json")
    event["source"] = "multus-ipam.reconciler"
    for field in ("LifecycleActionToken", "Origin", "Destination"):
        del event["detail"][field]
    action = parse_lifecycle_event(event)
    assert isinstance(action, LifecycleAction)
    keys = action.log_keys()
    assert keys["lifecycle_token"] == "(none: by instance id)"
    assert "origin" not in keys
    assert "destination" not in keys
