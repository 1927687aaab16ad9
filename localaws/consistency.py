"""EC2's eventual consistency and asynchronous attachments, on the local AWS clock.

* **Visibility lag** (EC2 developer guide, "Eventual consistency in the Amazon EC2 API"): right after a
  resource is created, describes may not list it and calls that name it may answer that it does not exist
  (``InvalidNetworkInterfaceID.NotFound``, ``InvalidInstanceID.NotFound``) — "this does not mean the resource
  does not exist". Each new ENI and instance is invisible to API requests for a uniform 0 to ``visibility_lag``
  seconds; its addresses are taken all the same (a create asking for one is refused ``InvalidIPAddress.InUse``).
* **Attach and detach take time** (EC2 API reference, ``NetworkInterfaceAttachment.Status``: attaching |
  attached | detaching | detached): an attachment is ``attaching`` (the ENI ``attaching``) for
  ``attach_seconds``, then ``attached`` (``in-use``); ``DetachNetworkInterface`` answers at once but the ENI stays
  on the instance, ``detaching``, for ``detach_seconds``: deleting it meanwhile is refused
  (``InvalidNetworkInterface.InUse``) and its device index stays taken. ``ModifyNetworkInterfaceAttribute`` with
  the new attachment id is accepted at once (the VPC CNI does exactly that).
* **Other accounts' ENIs in a shared subnet** (AWS RAM subnet sharing: a participant sees only its own ENIs):
  ``LocalAWS.occupy_as_other_account`` creates ENIs that hold addresses but that no describe of ours lists.

Only API requests see the lag (``Session.in_request``); the local AWS's own bookkeeping and its VPC CNI actors
see everything.
"""

# ruff: noqa: ANN401 - moto models and response objects are untyped; they are `Any` here by necessity.

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from moto.core.responses import EmptyResult
from moto.ec2.exceptions import InvalidInstanceIdError, InvalidNetworkAttachmentIdError, InvalidNetworkInterfaceIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_network_interfaces import Attachment, NetworkInterfaceBackend
from moto.ec2.models.instances import InstanceBackend
from moto.ec2.responses import EC2Response

from localaws._install import Patch, extension
from localaws._session import Session

#: The account id of the "other account" whose ENIs share our subnets.
OTHER_ACCOUNT_ID = "210987654321"


class Visibility:
    """When each new resource becomes visible to API requests, and which ENIs belong to another account."""

    def __init__(self) -> None:
        self.visible_at: dict[str, datetime] = {}
        self.foreign: set[str] = set()

    def hide(self, resource_id: str, until: datetime) -> None:
        self.visible_at[resource_id] = until

    def hidden(self, resource_id: str, now: datetime) -> bool:
        if resource_id in self.foreign:
            return True
        until = self.visible_at.get(resource_id)
        if until is None:
            return False
        if now >= until:
            del self.visible_at[resource_id]
            return False
        return True


def visibility(session: Session) -> Visibility:
    return session.state("consistency.visibility", Visibility)


@extension("consistency")
def consistency_extension(session: Session) -> Iterable[Patch]:
    realism = session.realism
    yield Patch(NetworkInterfaceBackend, "create_network_interface", lambda o: _hide_new_eni(session, o))
    yield Patch(NetworkInterfaceBackend, "get_network_interface", lambda o: _get_network_interface(session, o))
    yield Patch(NetworkInterfaceBackend, "get_all_network_interfaces", lambda o: _get_all_enis(session, o))
    yield Patch(InstanceBackend, "run_instances", lambda o: _hide_new_instances(session, o))
    yield Patch(InstanceBackend, "get_instance", lambda o: _get_instance(session, o))
    yield Patch(InstanceBackend, "all_reservations", lambda o: _all_reservations(session, o))
    if realism.attach_seconds is not None:
        yield Patch(Attachment, "__init__", _attachment_status)
    if realism.detach_seconds is not None:
        yield Patch(EC2Response, "detach_network_interface", lambda _: _detach_later(session))


# --- visibility -----------------------------------------------------------------------------------------------


def _lag(session: Session) -> timedelta:
    return timedelta(seconds=session.realism_rng.uniform(0.0, session.realism.visibility_lag))


def _hide_new_eni(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def create_network_interface(self: Any, *args: Any, **kwargs: Any) -> Any:
        eni = original(self, *args, **kwargs)
        if session.realism.visibility_lag > 0:
            visibility(session).hide(eni.id, session.clock.now() + _lag(session))
        return eni

    return create_network_interface


def _get_network_interface(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def get_network_interface(self: Any, eni_id: str) -> Any:
        if session.in_request() and visibility(session).hidden(eni_id, session.clock.now()):
            raise InvalidNetworkInterfaceIdError(eni_id)
        return original(self, eni_id)

    return get_network_interface


def _get_all_enis(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def get_all_network_interfaces(self: Any, eni_ids: list[str] | None = None, filters: Any = None) -> Any:
        found = original(self, eni_ids, filters)
        if not session.in_request():
            return found
        now, seen = session.clock.now(), visibility(session)
        for eni_id in eni_ids or []:
            if seen.hidden(eni_id, now):
                raise InvalidNetworkInterfaceIdError(eni_id)
        return [eni for eni in found if not seen.hidden(eni.id, now)]

    return get_all_network_interfaces


def _hide_new_instances(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = original(self, *args, **kwargs)
        if session.realism.visibility_lag > 0:
            for instance in reservation.instances:
                visibility(session).hide(instance.id, session.clock.now() + _lag(session))
        for listener in list(session.node_listeners):
            for instance in reservation.instances:
                listener(instance)
        return reservation

    return run_instances


def _get_instance(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def get_instance(self: Any, instance_id: str) -> Any:
        if session.in_request() and visibility(session).hidden(instance_id, session.clock.now()):
            raise InvalidInstanceIdError(instance_id)
        return original(self, instance_id)

    return get_instance


def _all_reservations(session: Session, original: Callable[..., Any]) -> Callable[..., Any]:
    def all_reservations(self: Any, filters: Any = None) -> Any:
        found = original(self, filters)
        if not session.in_request():
            return found
        now, seen = session.clock.now(), visibility(session)
        shown = []
        for reservation in found:
            instances = [i for i in reservation.instances if not seen.hidden(i.id, now)]
            if len(instances) == len(reservation.instances):
                shown.append(reservation)
            elif instances:
                partial = copy.copy(reservation)
                partial.instances = instances
                shown.append(partial)
        return shown

    return all_reservations


# --- attach and detach take time ------------------------------------------------------------------------------


def begin_attach(session: Session, eni: Any) -> None:
    """Called by the attach handler once the ENI is on the instance: 'attaching' for a while, then 'attached'."""
    span = session.realism.attach_seconds
    if span is None:
        return
    attachment_id = eni.attachment_id
    eni.localaws_attachment_status = "attaching"
    eni.status = "attaching"

    def attached() -> None:
        if eni.attachment_id == attachment_id and eni.localaws_attachment_status == "attaching":
            eni.localaws_attachment_status = "attached"
            eni.status = "in-use"

    session.clock.call_later(session.realism_rng.uniform(*span), attached)


def _attachment_status(original: Callable[..., None]) -> Callable[..., None]:
    def init(self: Any, eni: Any) -> None:
        original(self, eni)
        self.status = getattr(eni, "localaws_attachment_status", None) or "attached"

    return init


def _detach_later(session: Session) -> Callable[[Any], Any]:
    def detach_network_interface(self: Any) -> Any:
        attachment_id = self._get_param("AttachmentId")
        self.error_on_dryrun()
        backend = self.ec2_backend
        eni = next((e for e in backend.enis.values() if e.attachment_id == attachment_id), None)
        if eni is None or visibility(session).hidden(eni.id, session.clock.now()):
            raise InvalidNetworkAttachmentIdError(attachment_id)
        if getattr(eni, "localaws_attachment_status", None) == "detaching":
            return EmptyResult()  # already on its way
        eni.localaws_attachment_status = "detaching"
        eni.status = "detaching"
        span = session.realism.detach_seconds
        assert span is not None

        def detached() -> None:
            if eni.attachment_id != attachment_id:
                return  # the instance went meanwhile (termination detaches at once)
            try:
                backend.detach_network_interface(attachment_id)
            except InvalidNetworkAttachmentIdError:
                return
            eni.localaws_attachment_status = None

        session.clock.call_later(session.realism_rng.uniform(*span), detached)
        return EmptyResult()

    return detach_network_interface


# --- another account's ENIs -----------------------------------------------------------------------------------


def occupy_as_other_account(session: Session, subnet_id: str, addresses: list[str]) -> list[str]:
    """ENIs of another account in a subnet shared with ours through AWS RAM, holding ``addresses``: taken
    (a create asking for one is refused ``InvalidIPAddress.InUse``) but never listed by our describes."""
    with session.lock:
        backend = ec2_backends[session.account_id][session.region]
        subnet = backend.get_subnet(subnet_id)
        ids = []
        for address in addresses:
            eni = backend.create_network_interface(
                subnet, address, [{"Primary": True, "PrivateIpAddress": address}], [], "another account's ENI", {}
            )
            visibility(session).foreign.add(eni.id)
            ids.append(eni.id)
        return ids
