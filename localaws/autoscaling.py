"""Auto Scaling behaviours moto lacks: lifecycle hooks that hold instances, and the APIs that release them.

The replacements route moto's group mechanics (desired capacity, instance termination, warm pools) through
``localaws.lifecycle``, and add the two actions moto does not implement: ``CompleteLifecycleAction`` and
``RecordLifecycleActionHeartbeat``. ``LifecycleHookSpecificationList`` on ``CreateAutoScalingGroup`` declares
the hooks before the group's first launch, as on AWS.
"""

# ruff: noqa: ANN401 - moto models and response objects are untyped; they are `Any` here by necessity.

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, TerminateInstanceActivity
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from localaws._install import Patch, extension
from localaws._session import Session
from localaws.lifecycle import LAUNCHING, TERMINATING

_TRANSITIONS = (LAUNCHING, TERMINATING)


@extension("autoscaling")
def autoscaling_extension(session: Session) -> Iterable[Patch]:
    yield Patch(AutoScalingResponse, "create_auto_scaling_group", _create_auto_scaling_group)
    yield Patch(AutoScalingResponse, "put_lifecycle_hook", _put_lifecycle_hook)
    yield Patch(AutoScalingResponse, "complete_lifecycle_action", lambda _: _complete(session))
    yield Patch(AutoScalingResponse, "record_lifecycle_action_heartbeat", lambda _: _heartbeat(session))
    yield Patch(AutoScalingResponse, "describe_warm_pool", lambda _: _describe_warm_pool(session))
    yield Patch(FakeAutoScalingGroup, "set_desired_capacity", lambda o: _set_desired_capacity(session, o))
    yield Patch(FakeAutoScalingGroup, "replace_autoscaling_group_instances", lambda _: _replace(session))
    yield Patch(AutoScalingBackend, "terminate_instance", lambda _: _terminate_instance(session))
    yield Patch(AutoScalingBackend, "notify_terminate_instances", lambda _: _notify_terminate(session))
    yield Patch(AutoScalingBackend, "delete_auto_scaling_group", lambda o: _delete_group(session, o))
    yield Patch(AutoScalingBackend, "describe_auto_scaling_instances", lambda o: _describe_instances(session, o))
    yield Patch(AutoScalingBackend, "put_warm_pool", lambda o: _put_warm_pool(session, o))


# --- hooks ----------------------------------------------------------------------------------------------------


def _validated_hook(spec: dict[str, Any]) -> dict[str, Any]:
    transition = spec.get("LifecycleTransition")
    if transition not in _TRANSITIONS:
        raise ValidationError(f"Invalid Lifecycle Transition {transition}")
    timeout = spec.get("HeartbeatTimeout")
    if timeout is not None and not 30 <= int(timeout) <= 7200:
        raise ValidationError("Heartbeat timeout must be between 30 and 7200 seconds")
    result = spec.get("DefaultResult") or "ABANDON"
    if result not in ("CONTINUE", "ABANDON"):
        raise ValidationError(f"Invalid DefaultResult {result}")
    return spec


def _create_hook(backend: Any, group_name: str, spec: dict[str, Any]) -> None:
    spec = _validated_hook(spec)
    timeout = spec.get("HeartbeatTimeout")
    hook = backend.create_lifecycle_hook(
        name=spec["LifecycleHookName"],
        as_name=group_name,
        transition=spec["LifecycleTransition"],
        timeout=int(timeout) if timeout is not None else None,
        result=spec.get("DefaultResult"),
    )
    hook.notification_metadata = spec.get("NotificationMetadata")


def _create_auto_scaling_group(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Hooks in ``LifecycleHookSpecificationList`` exist before the first instance launches."""

    def create_auto_scaling_group(self: Any) -> Any:
        name = self._get_param("AutoScalingGroupName")
        backend = self.autoscaling_backend
        if name in backend.autoscaling_groups:
            raise ValidationError(f"AutoScalingGroup by this name already exists - {name}")  # AlreadyExists in AWS
        specs = self._get_param("LifecycleHookSpecificationList", []) or []
        for spec in specs:
            _create_hook(backend, name, spec)
        try:
            return original(self)
        except Exception:
            for spec in specs:
                backend.delete_lifecycle_hook(name, spec["LifecycleHookName"])
            raise

    return create_auto_scaling_group


def _put_lifecycle_hook(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def put_lifecycle_hook(self: Any) -> Any:
        spec = {
            key: self._get_param(key)
            for key in ("LifecycleHookName", "LifecycleTransition", "HeartbeatTimeout", "DefaultResult")
        }
        _validated_hook(spec)
        response = original(self)
        group, name = self._get_param("AutoScalingGroupName"), self._get_param("LifecycleHookName")
        hook = self.autoscaling_backend.lifecycle_hooks[f"{group}_{name}"]
        hook.notification_metadata = self._get_param("NotificationMetadata")
        return response

    return put_lifecycle_hook


def _complete(session: Session) -> Callable[[Any], Any]:
    def complete_lifecycle_action(self: Any) -> Any:
        session.lifecycle.complete(
            group=self._get_param("AutoScalingGroupName"),
            hook=self._get_param("LifecycleHookName"),
            token=self._get_param("LifecycleActionToken"),
            instance_id=self._get_param("InstanceId"),
            result=self._get_param("LifecycleActionResult"),
        )
        return EmptyResult()

    return complete_lifecycle_action


def _heartbeat(session: Session) -> Callable[[Any], Any]:
    def record_lifecycle_action_heartbeat(self: Any) -> Any:
        session.lifecycle.heartbeat(
            group=self._get_param("AutoScalingGroupName"),
            hook=self._get_param("LifecycleHookName"),
            token=self._get_param("LifecycleActionToken"),
            instance_id=self._get_param("InstanceId"),
        )
        return EmptyResult()

    return record_lifecycle_action_heartbeat


# --- group mechanics -------------------------------------------------------------------------------------------


def _set_desired_capacity(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        if self.mixed_instances_policy:  # weights: moto's own arithmetic, not lifecycle-aware (documented)
            original(self, new_capacity)
            return
        self.desired_capacity = self.min_size if new_capacity is None else new_capacity
        session.lifecycle.reconcile(self)
        if self.name in self.autoscaling_backend.autoscaling_groups:
            self.autoscaling_backend.update_attached_elbs(self.name)
            self.autoscaling_backend.update_attached_target_groups(self.name)

    return set_desired_capacity


def _replace(session: Session) -> Callable[..., None]:
    def replace_autoscaling_group_instances(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
        del propagated_tags  # recomputed per launch
        session.lifecycle.launch(self, count_needed)

    return replace_autoscaling_group_instances


def _terminate_instance(session: Session) -> Callable[..., Any]:
    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        for group in self.autoscaling_groups.values():
            if any(s.instance.id == instance_id for s in group.instance_states):
                original_size = group.desired_capacity
                instance = session.lifecycle.terminate_in_group(group, instance_id, decrement=should_decrement)
                return TerminateInstanceActivity(instance, original_size)
        raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")

    return terminate_instance


def _notify_terminate(session: Session) -> Callable[..., None]:
    def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
        ids = set(instance_ids)
        for group in list(self.autoscaling_groups.values()):
            members = {s.instance.id for s in [*group.instance_states, *session.lifecycle.warm_states(group.name)]}
            if members & ids:
                session.lifecycle.instances_terminated_outside(group, sorted(members & ids))

    return notify_terminate_instances


def _delete_group(session: Session, original: Callable[..., None]) -> Callable[..., None]:
    def delete_auto_scaling_group(self: Any, group_name: str) -> None:
        group = self.autoscaling_groups.get(group_name)
        if group is not None:
            session.lifecycle.force_delete(group)
        try:
            original(self, group_name)
        finally:
            session.lifecycle.forget(group_name)

    return delete_auto_scaling_group


def _describe_instances(session: Session, original: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """Warm pool instances are Auto Scaling instances too (``Warmed:*`` lifecycle states)."""

    def describe_auto_scaling_instances(self: Any, instance_ids: list[str]) -> list[Any]:
        warm = [s for s in session.lifecycle.warm_states() if not instance_ids or s.instance.id in instance_ids]
        return [*original(self, instance_ids), *warm]

    return describe_auto_scaling_instances


def _put_warm_pool(session: Session, original: Callable[..., None]) -> Callable[..., None]:
    def put_warm_pool(self: Any, group_name: str, **kwargs: Any) -> None:
        original(self, group_name=group_name, **kwargs)
        session.lifecycle.reconcile(self.autoscaling_groups[group_name])

    return put_warm_pool


def _describe_warm_pool(session: Session) -> Callable[[Any], ActionResult]:
    def describe_warm_pool(self: Any) -> ActionResult:
        name = self._get_param("AutoScalingGroupName")
        pool = self.autoscaling_backend.describe_warm_pool(group_name=name)
        return ActionResult({"WarmPoolConfiguration": pool, "Instances": session.lifecycle.warm_states(name)})

    return describe_warm_pool
