"""Each new node's VPC CNI (ipamd), as far as our functions can feel it.

When ipamd starts on a node (amazon-vpc-cni-k8s, ``pkg/ipamd``), it makes sure the node has a spare ENI for
pod addresses (WARM_ENI_TARGET=1 by default): it creates one in the node's subnet, attaches it at the lowest
free device index on network card 0 (``awsGetFreeDeviceNumber``) and sets DeleteOnTermination with
ModifyNetworkInterfaceAttribute. It starts once kubelet runs, which can be while the instance still waits in
Pending:Wait (DOMAIN.md §6b) — so it competes with our launch for device index 1 — and its three calls take
tokens from the account's same EC2 buckets. A throttled step is retried with the SDK's backoff.

Each actor starts ``Realism.vpc_cni_delay`` seconds after EC2 launches an Auto Scaling group's instance (paused
while the instance is stopped: a warm pool's stopped instances run no kubelet). What each actor did is in
``LocalAWS.vpc_cni`` (``steps``), not in the call log: those are not our calls.
"""

# ruff: noqa: ANN401 - moto models are untyped; they are `Any` here by necessity.

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.ec2.models.instance_types import INSTANCE_TYPES

from localaws import addresses
from localaws._install import Patch, extension
from localaws._session import Session

_STEPS = ("CreateNetworkInterface", "AttachNetworkInterface", "ModifyNetworkInterfaceAttribute")


@dataclass(frozen=True)
class Step:
    instance_id: str
    operation: str
    outcome: str
    """ok, RequestLimitExceeded, or why the actor stopped (instance gone, no free device index)."""
    at: datetime


@dataclass
class VpcCni:
    """What the VPC CNI actors did."""

    steps: list[Step] = field(default_factory=list)

    def enis(self) -> dict[str, str]:
        """instance id -> the ENI its ipamd attached."""
        return dict(self._enis)

    def __post_init__(self) -> None:
        self._enis: dict[str, str] = {}


def vpc_cni(session: Session) -> VpcCni:
    return session.state("vpc_cni", VpcCni)


@extension("vpc_cni")
def vpc_cni_extension(session: Session) -> Iterable[Patch]:
    if session.realism.vpc_cni_delay is None:
        return
    session.node_listeners.append(lambda instance: _start(session, instance))
    yield from ()


def _start(session: Session, instance: Any) -> None:
    delay = session.realism.vpc_cni_delay
    assert delay is not None
    actor = _Ipamd(session, instance)
    session.clock.call_later(session.realism_rng.uniform(*delay), actor.step)


class _Ipamd:
    def __init__(self, session: Session, instance: Any) -> None:
        self._session = session
        self._instance = instance
        self._stage = 0
        self._throttled = 0
        self._eni: Any = None

    def step(self) -> None:
        session, instance = self._session, self._instance
        operation = _STEPS[self._stage]
        if getattr(instance, "autoscaling_group", None) is None:
            return  # not a node of a node group (a test's bare instance): no kubelet, no ipamd
        if instance.state != "running":
            if instance.state in ("stopped", "stopping"):  # a warm pool instance: ipamd starts when it runs
                session.clock.call_later(30.0, self.step)
            else:
                self._log(operation, f"stopped: instance {instance.state}")
            return
        if session.buckets is not None:
            refusal = session.buckets.take("ec2", operation, None, session.clock.now())
            if refusal is not None:
                self._log(operation, refusal.code)
                self._throttled += 1
                backoff = session.realism_rng.random() * min(2.0**self._throttled, 20.0)
                session.clock.call_later(backoff, self.step)
                return
        self._throttled = 0
        match self._stage:
            case 0:
                self._create()
            case 1:
                if not self._attach():
                    return
            case _:
                self._eni.delete_on_termination = True
        self._log(operation, "ok")
        self._stage += 1
        if self._stage < len(_STEPS):
            session.clock.call_later(session.realism_rng.uniform(0.05, 0.25), self.step)

    def _create(self) -> None:
        instance = self._instance
        backend = instance.ec2_backend
        subnet = backend.get_subnet(instance.subnet_id)
        taken = addresses.in_use(subnet)
        (address,) = addresses.pick(subnet, 1, version=4, taken=taken, rng=self._session.realism_rng)
        tags = {
            "node.k8s.amazonaws.com/instance_id": instance.id,
            "node.k8s.amazonaws.com/createdAt": self._session.clock.now().isoformat(),
        }
        self._eni = backend.create_network_interface(
            subnet,
            str(address),
            [{"Primary": True, "PrivateIpAddress": str(address)}],
            [],
            "aws-K8S-" + instance.id,
            tags,
        )

    def _attach(self) -> bool:
        instance = self._instance
        taken = {key for key, nic in instance.nics.items() if isinstance(key, int)}
        index = next(i for i in range(len(taken) + 1) if i not in taken)
        limit = _max_enis(instance)
        if limit is not None and len(taken) >= limit:
            self._log("AttachNetworkInterface", "stopped: no free device index")
            instance.ec2_backend.enis.pop(self._eni.id, None)
            return False
        instance.attach_eni(self._eni, index)
        self._eni.delete_on_termination = False
        self._eni.network_card_index = 0
        vpc_cni(self._session)._enis[instance.id] = self._eni.id
        return True

    def _log(self, operation: str, outcome: str) -> None:
        vpc_cni(self._session).steps.append(Step(self._instance.id, operation, outcome, self._session.clock.now()))


def _max_enis(instance: Any) -> int | None:
    cards = INSTANCE_TYPES.get(instance.instance_type, {}).get("NetworkInfo", {}).get("NetworkCards", [])
    for card in cards:
        if card.get("NetworkCardIndex") == 0:
            return int(card["MaximumNetworkInterfaces"])
    return None
