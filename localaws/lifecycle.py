"""Auto Scaling lifecycle actions as AWS runs them (DOMAIN.md §1, §2), over moto's group and instance models.

An instance that launches into a group with a launch hook waits in ``Pending:Wait`` (``Warmed:Pending:Wait``
on its way into a warm pool); one leaving a group with a terminate hook waits in ``Terminating:Wait``. Each
hook gives the instance one *action* with a token. ``CompleteLifecycleAction`` (or the hook's
``DefaultResult`` when the heartbeat or global timeout passes on ``aws.clock``) ends it; once an instance has
no active action left it moves on: CONTINUE on launch puts it in service (or stops it into the warm pool);
ABANDON on launch terminates it (DeleteOnTermination honoured) and the group launches a replacement; a
terminate action ends in termination, or, with ``Destination: WarmPool``, in the instance being stopped and
kept. Every accepted result and every rejected completion is recorded.
"""

# ruff: noqa: ANN401 - moto models are untyped; they are `Any` here by necessity.

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import ASG_NAME_TAG, InstanceState, autoscaling_backends

if TYPE_CHECKING:
    from localaws._session import Session

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
CONTINUE = "CONTINUE"
ABANDON = "ABANDON"
EC2 = "EC2"
GROUP = "AutoScalingGroup"
WARM_POOL = "WarmPool"
_DETAIL_TYPES = {
    LAUNCHING: "EC2 Instance-launch Lifecycle Action",
    TERMINATING: "EC2 Instance-terminate Lifecycle Action",
}
_GLOBAL_TIMEOUT_CAP = timedelta(hours=48)
_READY_IN_POOL = ("Warmed:Stopped", "Warmed:Running", "Warmed:Hibernated")


@dataclass(frozen=True)
class LifecycleAction:
    """One active lifecycle action (one instance, one hook)."""

    group: str
    hook: str
    instance_id: str
    token: str
    transition: str
    origin: str
    destination: str
    deadline: datetime
    global_deadline: datetime
    started: datetime
    heartbeat_timeout: int
    default_result: str
    notification_metadata: str | None
    group_arn: str
    event_id: str

    @property
    def is_launch(self) -> bool:
        return self.transition == LAUNCHING


@dataclass(frozen=True)
class LifecycleResult:
    """An accepted result: by ``"api"`` (CompleteLifecycleAction) or ``"timeout"`` (the hook's DefaultResult)."""

    group: str
    hook: str
    instance_id: str
    token: str
    transition: str
    result: str
    by: str
    at: datetime


@dataclass(frozen=True)
class RejectedCompletion:
    """A CompleteLifecycleAction (or heartbeat) AWS refused with ``ValidationError``."""

    operation: str
    group: str
    hook: str
    instance_id: str | None
    token: str | None
    result: str | None
    message: str
    at: datetime


@dataclass(frozen=True)
class _Request:
    operation: str
    group: str
    hook: str
    token: str | None
    instance_id: str | None
    result: str | None


class Lifecycle:
    """The lifecycle state of every group in the session's region. All methods take the session lock."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._active: dict[str, LifecycleAction] = {}
        self._results: list[LifecycleResult] = []
        self._rejected: list[RejectedCompletion] = []
        self._abandoned: set[tuple[str, str]] = set()  # (instance, transition) with an ABANDON so far
        self._warm: dict[str, list[Any]] = {}  # group name -> InstanceState in the warm pool
        self._force_deleting: set[str] = set()
        session.clock.on_advance(self._fire_due)

    # --- what tests read ----------------------------------------------------------------------------------

    def active(self) -> list[LifecycleAction]:
        with self._session.lock:
            return sorted(self._active.values(), key=lambda a: (a.started, a.instance_id, a.hook))

    @property
    def results(self) -> list[LifecycleResult]:
        with self._session.lock:
            return list(self._results)

    @property
    def rejected_completions(self) -> list[RejectedCompletion]:
        with self._session.lock:
            return list(self._rejected)

    def event(self, action: LifecycleAction) -> dict[str, Any]:
        """The EventBridge event AWS sends for ``action`` (same ``id`` on every call: redelivery is identical)."""
        detail: dict[str, Any] = {
            "LifecycleActionToken": action.token,
            "AutoScalingGroupName": action.group,
            "LifecycleHookName": action.hook,
            "EC2InstanceId": action.instance_id,
            "LifecycleTransition": action.transition,
        }
        if action.notification_metadata is not None:
            detail["NotificationMetadata"] = action.notification_metadata
        detail["Origin"] = action.origin
        detail["Destination"] = action.destination
        return {
            "version": "0",
            "id": action.event_id,
            "detail-type": _DETAIL_TYPES[action.transition],
            "source": "aws.autoscaling",
            "account": self._session.account_id,
            "time": action.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._session.region,
            "resources": [action.group_arn],
            "detail": detail,
        }

    def events(self) -> list[dict[str, Any]]:
        """One event per active action, oldest first."""
        return [self.event(action) for action in self.active()]

    def warm_pool(self, group: str) -> list[str]:
        """Instance ids in the group's warm pool."""
        with self._session.lock:
            return [state.instance.id for state in self._warm.get(group, [])]

    def leave_warm_pool(self, group: str, instance_id: str) -> None:
        """Scale out by one using this warm instance: it gets its ``WarmPool -> AutoScalingGroup`` action."""
        with self._session.lock:
            model = self._group(group)
            state = next((s for s in self._warm.get(group, []) if s.instance.id == instance_id), None)
            if state is None or state.lifecycle_state not in _READY_IN_POOL:
                raise ValueError(f"{instance_id} is not a ready instance in the warm pool of {group}")
            if model.max_size is not None and model.desired_capacity >= model.max_size:
                raise ValueError(f"{group} is at its maximum size")
            model.desired_capacity += 1
            self._out_of_warm_pool(model, state)

    # --- the API calls (from localaws.autoscaling) --------------------------------------------------------

    def complete(self, *, group: str, hook: str, token: str | None, instance_id: str | None, result: str) -> None:
        request = _Request("CompleteLifecycleAction", group, hook, token, instance_id, result)
        with self._session.lock:
            if result not in (CONTINUE, ABANDON):
                self._reject(request, "Valid values for LifecycleActionResult are CONTINUE and ABANDON")
            self._finish(self._find(request), result, by="api")

    def heartbeat(self, *, group: str, hook: str, token: str | None, instance_id: str | None) -> None:
        with self._session.lock:
            action = self._find(_Request("RecordLifecycleActionHeartbeat", group, hook, token, instance_id, None))
            now = self._session.clock.now()
            deadline = min(now + timedelta(seconds=action.heartbeat_timeout), action.global_deadline)
            self._active[action.token] = replace(action, deadline=deadline)

    # --- group mechanics (from localaws.autoscaling, under the lock) --------------------------------------

    def reconcile(self, group: Any) -> None:
        """Bring the group to its desired capacity: warm instances first, then launches; scale-in through the
        terminate hooks. Instances in ``Terminating*`` no longer count."""
        counted = [s for s in group.instance_states if not s.lifecycle_state.startswith("Terminating")]
        delta = (group.desired_capacity or 0) - len(counted)
        if delta > 0:
            ready = [s for s in self._warm.get(group.name, []) if s.lifecycle_state in _READY_IN_POOL]
            for state in ready[:delta]:
                self._out_of_warm_pool(group, state)
            self.launch(group, delta - min(delta, len(ready)))
        elif delta < 0:
            for state in self._scale_in_victims(counted, -delta):
                self._begin_termination(group, state, destination=self._scale_in_destination(group))
        self._fill_warm_pool(group)

    def launch(self, group: Any, count: int, *, into_warm_pool: bool = False) -> None:
        """Launch ``count`` instances, spread over the group's subnets (fewest instances first)."""
        for _ in range(count):
            instance = self._run_instance(group, self._next_subnet(group))
            if into_warm_pool:
                state = InstanceState(instance, lifecycle_state="Warmed:Pending", autoscaling_group=group)
                self._warm.setdefault(group.name, []).append(state)
                self._enter(group, state, LAUNCHING, origin=EC2, destination=WARM_POOL)
            else:
                state = InstanceState(
                    instance,
                    lifecycle_state="Pending",
                    protected_from_scale_in=group.new_instances_protected_from_scale_in,
                    autoscaling_group=group,
                )
                group.instance_states.append(state)
                self._enter(group, state, LAUNCHING, origin=EC2, destination=GROUP)

    def terminate_in_group(self, group: Any, instance_id: str, *, decrement: bool) -> Any:
        """TerminateInstanceInAutoScalingGroup: through the terminate hooks; a replacement unless decrement."""
        state = next((s for s in group.instance_states if s.instance.id == instance_id), None)
        if state is None:
            raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
        if decrement:
            group.desired_capacity -= 1
        if not state.lifecycle_state.startswith("Terminating"):
            self._begin_termination(group, state, destination=EC2)
        self.reconcile(group)
        return state.instance

    def instances_terminated_outside(self, group: Any, instance_ids: list[str]) -> None:
        """EC2 TerminateInstances on group instances: their actions vanish; the group replaces them."""
        gone = set(instance_ids)
        for token, action in list(self._active.items()):
            if action.instance_id in gone:
                del self._active[token]
        group.instance_states = [s for s in group.instance_states if s.instance.id not in gone]
        self._warm[group.name] = [s for s in self._warm.get(group.name, []) if s.instance.id not in gone]
        self.reconcile(group)

    def force_delete(self, group: Any) -> None:
        """DeleteAutoScalingGroup: instances go without hooks."""
        self._force_deleting.add(group.name)
        for token, action in list(self._active.items()):
            if action.group == group.name:
                del self._active[token]
        warm = [s.instance.id for s in self._warm.pop(group.name, [])]
        if warm:
            group.ec2_backend.terminate_instances(warm)

    def forget(self, group_name: str) -> None:
        self._force_deleting.discard(group_name)

    def warm_states(self, group_name: str | None = None) -> list[Any]:
        if group_name is not None:
            return list(self._warm.get(group_name, []))
        return [s for states in self._warm.values() for s in states]

    # --- internals ----------------------------------------------------------------------------------------

    def _group(self, name: str) -> Any:
        backend = autoscaling_backends[self._session.account_id][self._session.region]
        if name not in backend.autoscaling_groups:
            raise ValueError(f"no Auto Scaling group {name}")
        return backend.autoscaling_groups[name]

    def _hooks(self, group: Any, transition: str) -> list[Any]:
        return [
            hook
            for hook in group.autoscaling_backend.lifecycle_hooks.values()
            if hook.auto_scaling_group_name == group.name and hook.lifecycle_transition == transition
        ]

    def _enter(self, group: Any, state: Any, transition: str, *, origin: str, destination: str) -> None:
        hooks = [] if group.name in self._force_deleting else self._hooks(group, transition)
        if not hooks:
            self._proceed(group, state, transition, destination, CONTINUE)
            return
        warmed = "Warmed:" if destination == WARM_POOL and transition == LAUNCHING else ""
        state.lifecycle_state = f"{warmed}{'Pending' if transition == LAUNCHING else 'Terminating'}:Wait"
        now = self._session.clock.now()
        for hook in hooks:
            timeout = int(hook.heartbeat_timeout)
            token = str(uuid.UUID(int=self._session.rng.getrandbits(128), version=4))
            self._active[token] = LifecycleAction(
                group=group.name,
                hook=hook.name,
                instance_id=state.instance.id,
                token=token,
                transition=transition,
                origin=origin,
                destination=destination,
                deadline=now + timedelta(seconds=timeout),
                global_deadline=now + min(_GLOBAL_TIMEOUT_CAP, timedelta(seconds=100 * timeout)),
                started=now,
                heartbeat_timeout=timeout,
                default_result=hook.default_result or ABANDON,
                notification_metadata=getattr(hook, "notification_metadata", None),
                group_arn=group.arn,
                event_id=str(uuid.UUID(int=self._session.rng.getrandbits(128), version=4)),
            )

    def _find(self, request: _Request) -> LifecycleAction:
        if request.token:
            action = self._active.get(request.token)
            if (
                action is not None
                and (action.group, action.hook) == (request.group, request.hook)
                and request.instance_id in (None, "", action.instance_id)
            ):
                return action
            self._reject(request, f"No active Lifecycle Action found with token {request.token}")
        if not request.instance_id:
            self._reject(request, "Either LifecycleActionToken or InstanceId must be specified")
        for action in self._active.values():
            if (action.group, action.hook, action.instance_id) == (request.group, request.hook, request.instance_id):
                return action
        return self._reject(request, f"No active Lifecycle Action found with instance ID {request.instance_id}")

    def _reject(self, request: _Request, message: str) -> NoReturn:
        self._rejected.append(
            RejectedCompletion(
                request.operation,
                request.group,
                request.hook,
                request.instance_id,
                request.token,
                request.result,
                message,
                self._session.clock.now(),
            )
        )
        raise ValidationError(message)

    def _finish(self, action: LifecycleAction, result: str, *, by: str, at: datetime | None = None) -> None:
        del self._active[action.token]
        now = at or self._session.clock.now()
        self._results.append(
            LifecycleResult(
                action.group, action.hook, action.instance_id, action.token, action.transition, result, by, now
            )
        )
        key = (action.instance_id, action.transition)
        if result == ABANDON:
            self._abandoned.add(key)
        if any((a.instance_id, a.transition) == key for a in self._active.values()):
            return  # other hooks of this transition still wait
        final = ABANDON if key in self._abandoned else CONTINUE
        self._abandoned.discard(key)
        group = self._group(action.group)
        state = self._state(group, action.instance_id)
        if state is not None:
            self._proceed(group, state, action.transition, action.destination, final)

    def _fire_due(self, now: datetime) -> None:
        while True:
            due = sorted(
                (a for a in self._active.values() if min(a.deadline, a.global_deadline) <= now),
                key=lambda a: (min(a.deadline, a.global_deadline), a.token),
            )
            if not due:
                return
            action = due[0]
            self._finish(action, action.default_result, by="timeout", at=min(action.deadline, action.global_deadline))

    def _state(self, group: Any, instance_id: str) -> Any | None:
        for state in [*group.instance_states, *self._warm.get(group.name, [])]:
            if state.instance.id == instance_id:
                return state
        return None

    def _proceed(self, group: Any, state: Any, transition: str, destination: str, result: str) -> None:
        backend = group.ec2_backend
        instance_id = state.instance.id
        if transition == LAUNCHING and result == CONTINUE:
            if destination == WARM_POOL:
                self._park_in_warm_pool(group, state)
            else:
                state.lifecycle_state = "InService"
            return
        if transition == TERMINATING and destination == WARM_POOL:
            group.instance_states = [s for s in group.instance_states if s is not state]
            self._warm.setdefault(group.name, []).append(state)
            self._park_in_warm_pool(group, state)
            return
        # ABANDON on launch, or the end of a termination: the instance is terminated.
        group.instance_states = [s for s in group.instance_states if s is not state]
        if group.name in self._warm:
            self._warm[group.name] = [s for s in self._warm[group.name] if s is not state]
        backend.terminate_instances([instance_id])
        if transition == LAUNCHING:
            self.reconcile(group)  # AWS replaces an abandoned launch

    def _park_in_warm_pool(self, group: Any, state: Any) -> None:
        pool_state = getattr(group.warm_pool, "pool_state", None) or "Stopped"
        if pool_state in ("Stopped", "Hibernated"):
            group.ec2_backend.stop_instances([state.instance.id])
        state.lifecycle_state = f"Warmed:{pool_state}"

    def _out_of_warm_pool(self, group: Any, state: Any) -> None:
        self._warm[group.name] = [s for s in self._warm.get(group.name, []) if s is not state]
        if state.instance.state != "running":
            group.ec2_backend.start_instances([state.instance.id])
        state.lifecycle_state = "Pending"
        group.instance_states.append(state)
        self._enter(group, state, LAUNCHING, origin=WARM_POOL, destination=GROUP)

    def _fill_warm_pool(self, group: Any) -> None:
        pool = getattr(group, "warm_pool", None)
        if pool is None or group.name in self._force_deleting:
            return
        prepared = pool.max_group_prepared_capacity
        ceiling = group.max_size if prepared is None or int(prepared) < 0 else int(prepared)
        wanted = max(int(pool.min_size or 0), (ceiling or 0) - (group.desired_capacity or 0))
        missing = wanted - len(self._warm.get(group.name, []))
        if missing > 0:
            self.launch(group, missing, into_warm_pool=True)

    def _scale_in_destination(self, group: Any) -> str:
        pool = getattr(group, "warm_pool", None)
        policy = (getattr(pool, "instance_reuse_policy", None) or {}) if pool is not None else {}
        reuse = str(policy.get("ReuseOnScaleIn", "false")).lower() == "true"
        return WARM_POOL if reuse else EC2

    def _begin_termination(self, group: Any, state: Any, *, destination: str) -> None:
        state.lifecycle_state = "Terminating"
        self._enter(group, state, TERMINATING, origin=GROUP, destination=destination)

    @staticmethod
    def _scale_in_victims(states: list[Any], count: int) -> list[Any]:
        """AWS's default policy, simplified: from the AZ with the most instances, the oldest first."""
        candidates = [s for s in states if not s.protected_from_scale_in]
        victims: list[Any] = []
        for _ in range(min(count, len(candidates))):
            per_az: dict[str, int] = {}
            for s in candidates:
                per_az[s.availability_zone] = per_az.get(s.availability_zone, 0) + 1
            busiest = max(per_az, key=lambda az: (per_az[az], az))
            victim = next(s for s in candidates if s.availability_zone == busiest)
            candidates.remove(victim)
            victims.append(victim)
        return victims

    def _next_subnet(self, group: Any) -> str | None:
        subnets = [s for s in (group.vpc_zone_identifier or "").split(",") if s]
        if not subnets:
            return None
        backend = group.ec2_backend
        in_use: dict[str, int] = {}
        for state in [*group.instance_states, *self._warm.get(group.name, [])]:
            in_use[state.availability_zone] = in_use.get(state.availability_zone, 0) + 1
        zones = {subnet: backend.get_subnet(subnet).availability_zone for subnet in subnets}
        return min(subnets, key=lambda s: (in_use.get(zones[s], 0), subnets.index(s)))

    def _run_instance(self, group: Any, subnet_id: str | None) -> Any:
        """One instance as moto's ``replace_autoscaling_group_instances`` launches it, in ``subnet_id``."""
        tags = group.get_propagated_tags()
        tags[ASG_NAME_TAG] = group.name
        tags.update(group.instance_tags)
        template = None
        if group.ec2_launch_template is not None:
            template = {"LaunchTemplateId": group.ec2_launch_template.id}
        zone = group.ec2_backend.get_subnet(subnet_id).availability_zone if subnet_id else group.availability_zones[0]
        reservation = group.ec2_backend.run_instances(
            group.image_id,
            1,
            group.user_data,
            group.security_groups,
            instance_type=group.instance_type,
            tags={"instance": tags},
            placement=zone,
            launch_config=group.launch_config,
            launch_template=template,
            is_instance_type_default=False,
            associate_public_ip=group.launch_config.associate_public_ip_address if group.launch_config else None,
            subnet_id=subnet_id,
        )
        instance = reservation.instances[0]
        instance.autoscaling_group = group
        return instance
