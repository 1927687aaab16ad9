"""The edge: EventBridge lifecycle events in, a typed action (or a named rejection) out.

Auto Scaling sends `EC2 Instance-launch Lifecycle Action` and `EC2 Instance-terminate Lifecycle Action`
events from `aws.autoscaling`. The reconciler (multus_ipam.reconciler) makes the same events, from
`multus-ipam.reconciler` and without a token, for lifecycle actions whose event was lost. Fields outside the
ones we use are ignored (AWS adds fields over time);
fields we use are validated, and anything wrong is reported with the path of the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from multus_ipam.errors import InvalidEvent
from multus_ipam.settings import parse_created_at

LAUNCH_DETAIL_TYPE = "EC2 Instance-launch Lifecycle Action"
TERMINATE_DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"
TEST_NOTIFICATION = "autoscaling:TEST_NOTIFICATION"


class Transition(StrEnum):
    LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
    TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


Place = Literal["EC2", "AutoScalingGroup", "WarmPool"]


class _Detail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    token: Annotated[str | None, Field(alias="LifecycleActionToken", min_length=1, max_length=36)] = None
    group: Annotated[str, Field(alias="AutoScalingGroupName", min_length=1, max_length=255)]
    hook: Annotated[str, Field(alias="LifecycleHookName", min_length=1, max_length=255)]
    instance_id: Annotated[str, Field(alias="EC2InstanceId", pattern=r"^i-[0-9a-f]{8,17}$")]
    metadata: Annotated[str | None, Field(alias="NotificationMetadata")] = None
    origin: Annotated[Place | None, Field(alias="Origin")] = None
    destination: Annotated[Place | None, Field(alias="Destination")] = None


class _LaunchDetail(_Detail):
    transition: Annotated[Literal[Transition.LAUNCHING], Field(alias="LifecycleTransition")]


class _TerminateDetail(_Detail):
    transition: Annotated[Literal[Transition.TERMINATING], Field(alias="LifecycleTransition")]


class _Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    id: Annotated[str, Field(min_length=1, max_length=512)]
    source: Literal["aws.autoscaling", "multus-ipam.reconciler"]
    time: str | None = None


class _LaunchEvent(_Envelope):
    detail_type: Annotated[Literal["EC2 Instance-launch Lifecycle Action"], Field(alias="detail-type")]
    detail: _LaunchDetail


class _TerminateEvent(_Envelope):
    detail_type: Annotated[Literal["EC2 Instance-terminate Lifecycle Action"], Field(alias="detail-type")]
    detail: _TerminateDetail


class _Event(BaseModel):
    event: Annotated[_LaunchEvent | _TerminateEvent, Field(discriminator="detail_type")]


@dataclass(frozen=True, slots=True)
class LifecycleAction:
    """One lifecycle action to carry out, identified by its token (warm pools give one instance several)."""

    transition: Transition
    event_id: str
    group: str
    hook: str
    token: str | None
    """None in an event the reconciler made for a lost one: the action is completed by instance id."""
    instance_id: str
    origin: str | None = None
    destination: str | None = None
    time: datetime | None = None
    """When Auto Scaling emitted the event (the envelope's ``time``): the same in every redelivery."""

    @property
    def into_warm_pool(self) -> bool:
        return self.destination == "WarmPool"

    def log_keys(self) -> dict[str, str]:
        keys = {
            "instance_id": self.instance_id,
            "group": self.group,
            "hook": self.hook,
            "transition": self.transition.value,
            "lifecycle_token": self.token or "(none: by instance id)",
            "event_id": self.event_id,
        }
        if self.origin:
            keys["origin"] = self.origin
        if self.destination:
            keys["destination"] = self.destination
        return keys


@dataclass(frozen=True, slots=True)
class TestNotification:
    """Sent by Auto Scaling when a notification target is added: nothing to do, not an error."""

    __test__: ClassVar[bool] = False  # not a pytest test class despite its name

    group: str | None


ParsedEvent = LifecycleAction | TestNotification


def _is_test_notification(event: dict[str, Any]) -> bool:
    """Only an event that is not a lifecycle action can be one: a lifecycle action with ``Event`` set to the test
    notification's value is still a lifecycle action (it would otherwise skip the action it carries)."""
    if event.get("detail-type") in (LAUNCH_DETAIL_TYPE, TERMINATE_DETAIL_TYPE):
        return False
    detail = event.get("detail")
    return event.get("Event") == TEST_NOTIFICATION or (
        isinstance(detail, dict) and detail.get("Event") == TEST_NOTIFICATION
    )


#: The most of a value from the event that a message or a log line repeats: an event is data anyone able to invoke
#: the function chooses, and a 200 kB field must not become a megabyte of logs.
QUOTED_AT_MOST = 80


def quoted(value: object) -> str:
    """``repr(value)``, cut to QUOTED_AT_MOST characters (with how long it was)."""
    text = repr(value)
    if len(text) <= QUOTED_AT_MOST:
        return text
    return f"{text[:QUOTED_AT_MOST]}... ({len(text)} characters)"


def _describe(error: ValidationError) -> str:
    """Each problem as ``path.in.the.event: what is wrong``. Pydantic's location starts with the wrapper's field
    and the detail-type the union was told apart by: neither is a key of the event."""
    return "; ".join(f"{'.'.join(str(part) for part in item['loc'][2:])}: {item['msg']}" for item in error.errors())


def parse_lifecycle_event(event: object) -> ParsedEvent:
    """Parse an EventBridge event into a :class:`LifecycleAction` or a :class:`TestNotification`.

    Raises :class:`InvalidEvent` naming the offending field for anything else.
    """
    if not isinstance(event, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}")
    if _is_test_notification(event):
        fields = event["detail"] if isinstance(event.get("detail"), dict) else event
        group = fields.get("AutoScalingGroupName")
        return TestNotification(group=group if isinstance(group, str) else None)
    detail_type = event.get("detail-type")
    if detail_type not in (LAUNCH_DETAIL_TYPE, TERMINATE_DETAIL_TYPE):
        raise InvalidEvent(
            f"detail-type: unsupported value {quoted(detail_type)} "
            f"(expected {LAUNCH_DETAIL_TYPE!r} or {TERMINATE_DETAIL_TYPE!r})"
        )
    try:
        parsed = _Event.model_validate({"event": event}).event
    except ValidationError as error:
        raise InvalidEvent(_describe(error)) from None
    detail = parsed.detail
    if detail.token is None and parsed.source == "aws.autoscaling":
        raise InvalidEvent("detail.LifecycleActionToken: Field required (Auto Scaling always sends one)")
    return LifecycleAction(
        transition=detail.transition,
        event_id=parsed.id,
        group=detail.group,
        hook=detail.hook,
        token=detail.token,
        instance_id=detail.instance_id,
        origin=detail.origin,
        destination=detail.destination,
        # the ENIs' created-at tag, the same in every delivery; None (no tag) when absent or unreadable: never
        # a reason to leave a lifecycle action unanswered
        time=parse_created_at(parsed.time),
    )
