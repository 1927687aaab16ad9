"""The node agent's loop: keep every Multus ENI's secondary addresses equal to what the node's pods carry.

Two paths, one decision (``node_planning``):

* **events**: a pod's namespace appears or goes, or its addresses change: the addresses concerned are looked up in
  EC2 (who holds them now) and reconciled, at once;
* **full resync** at start, every ``resync_seconds`` and on request (SIGHUP): this instance's ENIs and their
  addresses are read from EC2 **before** the pods are read again, so an address some other tool assigned for a
  pod just now is already carried by that pod when the agent compares (the pod's link gets its address before
  anything can assign it); then every difference is reconciled. This is what repairs anything missed, including
  what changed while the agent was not running.

Failures are per address and never end the loop: an address no ENI of the node can carry is reported and
skipped; an AWS error (after the throttling retries) is logged and counted, and the next resync tries again.
Stopping (SIGTERM) leaves every assignment in place: the pods still run.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv6Address
from typing import Protocol

from pod_ip_manager.effects import Effects
from pod_ip_manager.errors import AwsError, MetadataError, Throttled
from pod_ip_manager.model import HolderEni, IPAddress, PodInterface
from pod_ip_manager.netns import NamespaceChanges
from pod_ip_manager.node_planning import (
    Carried,
    MultusEni,
    NodePlan,
    Release,
    Skipped,
    desired_state,
    held_by,
    multus_enis,
    not_held,
    plan_node,
)
from pod_ip_manager.planning import plan_assignments, plan_unassign, usable
from pod_ip_manager.ports import Ec2NodeAddresses, NodeMetadata
from pod_ip_manager.status import Status

log = logging.getLogger(__name__)

#: EC2 takes at most 200 filter values per call; holders are looked up in chunks this size.
HOLDER_CHUNK = 100
#: The loop beats (liveness) at least this often, even with nothing to do.
HEARTBEAT_SECONDS = 5.0
#: After a failed full resync (EC2 or IMDS unreadable), the next one comes this soon (or at the normal period,
#: if shorter).
FAILED_RESYNC_RETRY_SECONDS = 10.0


class Interrupted(Exception):
    """The stop signal fired during a backoff sleep: abandon the current step (the loop then ends)."""


class Namespaces(Protocol):
    """The pods' network namespaces (``netns.PodNamespaces``)."""

    def rescan(self) -> NamespaceChanges: ...

    def wait(self, timeout: float | None) -> NamespaceChanges: ...

    def watched(self) -> tuple[str, ...]: ...


class Flag(Protocol):
    """A request (``netns.Wakeup``): whether it was set since last asked."""

    def take(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class AgentOptions:
    resync_seconds: float
    floating_ips: frozenset[IPAddress] = frozenset()


class NodeAgent:
    def __init__(
        self,
        *,
        ec2: Ec2NodeAddresses,
        metadata: NodeMetadata,
        namespaces: Namespaces,
        effects: Effects,
        status: Status,
        options: AgentOptions,
        stopped: Callable[[], bool],
        resync_requested: Flag | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ec2 = ec2
        self._metadata = metadata
        self._namespaces = namespaces
        self._effects = effects
        self._status = status
        self._options = options
        self._stopped = stopped
        self._resync_requested = resync_requested
        self._clock = clock
        self._instance_id: str | None = None
        self._enis: tuple[MultusEni, ...] | None = None
        self._pods: dict[str, tuple[PodInterface, ...]] = {}
        self._host: tuple[PodInterface, ...] = ()
        self._skipped: dict[tuple[str, IPAddress], Skipped] = {}
        self._resyncs = 0

    # --- the loop ----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Until the stop signal: full resyncs on their schedule, events in between."""
        next_resync = self._clock()
        try:
            while not self._stopped():
                self._status.beat()
                requested = self._resync_requested is not None and self._resync_requested.take()
                if requested or self._clock() >= next_resync:
                    ok = self.resync()
                    period = self._options.resync_seconds
                    next_resync = self._clock() + (period if ok else min(period, FAILED_RESYNC_RETRY_SECONDS))
                    continue
                timeout = max(0.0, min(next_resync - self._clock(), HEARTBEAT_SECONDS))
                changes = self._namespaces.wait(timeout)
                if changes and not self._stopped():
                    self.apply(changes)
        except Interrupted:
            pass
        log.info("stopping: assignments stay in place (the pods still run)")

    # --- full resync -------------------------------------------------------------------------------------

    def resync(self) -> bool:
        """Read this instance's ENIs (EC2, IMDS), then every pod again, and reconcile everything. Returns
        whether it succeeded (readiness)."""
        self._resyncs += 1
        try:
            if self._instance_id is None:
                self._instance_id = self._metadata.instance_id()
            identities = self._metadata.enis()
            attached = self._ec2.instance_enis(self._instance_id)
        except (AwsError, MetadataError) as error:
            self._failed("full resync: cannot read this instance's ENIs", error)
            self._status.resynced(ok=False)
            return False
        enis, left_out = multus_enis(attached, identities)
        for why in left_out:
            log.info("ENI left out until the next resync", extra={"reason": why})
        if self._enis is None or {e.eni_id for e in enis} != {e.eni_id for e in self._enis}:
            log.info("multus ENIs", extra={"enis": {e.eni_id: e.mac for e in enis}})
        self._enis = enis
        previous = dict(self._pods)
        changes = self._namespaces.rescan()  # after the ENIs: see the module's docstring
        unreadable = {name for name, _ in changes.failed}
        # A namespace that could not be read still runs its pod: what it carried last stays wanted, and while one
        # whose addresses were never read exists, nothing is released (any owned address may be its).
        self._pods = {name: previous[name] for name in unreadable if name in previous} | dict(changes.updated)
        unknown = sorted(unreadable - set(previous) - set(changes.updated))
        self._host = changes.host or ()
        self._namespace_failures(changes)
        desired = desired_state(self._pods, enis, host=self._host)
        holders = held_by(enis)
        try:
            holders.update(self._holders(not_held(desired, holders)))
        except AwsError as error:
            self._failed("full resync: cannot look up who holds the pods' addresses", error)
            self._status.resynced(ok=False)
            return False
        plan = plan_node(desired, enis, holders, floating=self._options.floating_ips)
        if unknown and plan.release:
            log.warning(
                "not releasing anything this resync: a namespace could not be read yet",
                extra={"netns": unknown, "held_back": [str(r.address) for r in plan.release]},
            )
            plan = replace(plan, release=())
        self._record_skips(plan.skipped, scope=None)
        errors = self._carry_out(plan, holders, _owners(previous, self._pods))
        ok = not changes.failed
        self._status.resynced(ok=ok)
        log.info(
            "resynced",
            extra={
                "number": self._resyncs,
                "namespaces": len(self._pods),
                "carried": len(desired.carried),
                "assigned": len(plan.assign) - errors.assign,
                "unassigned": len(plan.release) - errors.release,
                "skipped": len(plan.skipped),
                "waiting": [f"{netns}/{address}" for netns, address in desired.waiting],
                "errors": errors.assign + errors.release,
                "ok": ok,
            },
        )
        return ok

    # --- events ------------------------------------------------------------------------------------------

    def apply(self, changes: NamespaceChanges) -> None:
        """Namespaces came, went or changed: reconcile the addresses concerned."""
        previous = dict(self._pods)
        scope: set[IPAddress] = set()
        for name in changes.removed:
            scope |= {a for _, a, _ in _facts(self._pods.pop(name, ()))}
        for name, links in changes.updated.items():
            scope |= {a for _, a, _ in _facts(self._pods.get(name, ())) ^ _facts(links)}
            self._pods[name] = links
        if changes.host is not None:
            scope |= {a for _, a, _ in _facts(self._host) ^ _facts(changes.host)}
            self._host = changes.host
        self._namespace_failures(changes)
        scope = {address for address in scope if usable(address)}  # not loopback, not link-local
        if not scope or self._enis is None:  # before the first full resync, which will see all of it
            return
        desired = desired_state(self._pods, self._enis, host=self._host)
        try:
            holders = self._holders(scope)
        except AwsError as error:
            self._failed("cannot look up who holds the addresses that changed", error)
            return
        plan = plan_node(desired, self._enis, holders, floating=self._options.floating_ips, scope=scope)
        self._record_skips(plan.skipped, scope=scope)
        self._carry_out(plan, holders, _owners(previous, self._pods))

    # --- carrying out ------------------------------------------------------------------------------------

    def _carry_out(
        self, plan: NodePlan, holders: Mapping[IPAddress, HolderEni], owners: Mapping[IPAddress, str]
    ) -> _Errors:
        for kept in plan.kept_floating:
            log.info(
                "floating IP left where it was last claimed",
                extra={"address": str(kept.address), "eni": kept.eni_id, "netns": owners.get(kept.address)},
            )
        actions = plan.actions(holders)
        if not actions:
            return _Errors()
        try:
            self._effects.apply(actions)
        except AwsError as error:
            if isinstance(error, Throttled) or len(plan.assign) + len(plan.release) == 1:
                self._failed("EC2 call failed; retried at the next resync", error, plan)
                return _Errors(len(plan.assign), len(plan.release))
            log.info("a grouped EC2 call failed; retrying address by address", extra={"error": str(error)})
            return self._one_by_one(plan, owners)
        for release in plan.release:
            self._unassigned(release, owners)
        for claim in plan.assign:
            self._assigned(claim, holders)
        return _Errors()

    def _one_by_one(self, plan: NodePlan, owners: Mapping[IPAddress, str]) -> _Errors:
        """After a grouped call failed: each address on its own, so one bad address does not hold up the
        others. Who holds what is read again (part of the grouped calls may have gone through)."""
        addresses = [r.address for r in plan.release] + [c.address for c in plan.assign]
        try:
            fresh = self._holders(addresses)
        except AwsError as error:
            self._failed("EC2 call failed; retried at the next resync", error, plan)
            return _Errors(len(plan.assign), len(plan.release))
        errors = _Errors()
        for release in plan.release:
            self._status.beat()
            holder = fresh.get(release.address)
            if holder is None or holder.eni_id != release.eni_id:
                continue  # gone meanwhile (the grouped call, or another node's takeover)
            try:
                self._effects.apply(plan_unassign([(release.address, release.eni_id)]))
            except AwsError as error:
                errors.release += 1
                self._failed("unassign failed; retried at the next resync", error, address=release.address)
                continue
            self._unassigned(release, owners)
        held = {address: holder.eni_id for address, holder in fresh.items()}
        for claim in plan.assign:
            self._status.beat()
            if held.get(claim.address) == claim.eni_id:
                self._assigned(claim, fresh)
                continue
            try:
                self._effects.apply(plan_assignments([claim.binding], held))
            except AwsError as error:
                errors.assign += 1
                self._failed("assign failed; retried at the next resync", error, address=claim.address)
                continue
            self._assigned(claim, fresh)
        return errors

    def _assigned(self, claim: Carried, holders: Mapping[IPAddress, HolderEni]) -> None:
        self._status.assigned()
        previous = holders.get(claim.address)
        extra: dict[str, object] = {
            "netns": claim.netns,
            "interface": claim.binding.interface,
            "address": str(claim.address),
            "eni": claim.eni_id,
        }
        if previous is not None and previous.eni_id != claim.eni_id:
            extra["from_eni"] = previous.eni_id
        log.info("assigned", extra=extra)

    def _unassigned(self, release: Release, owners: Mapping[IPAddress, str]) -> None:
        self._status.unassigned()
        log.info(
            "unassigned",
            extra={
                "netns": owners.get(release.address),
                "address": str(release.address),
                "eni": release.eni_id,
                "reason": "no pod on this node carries it",
            },
        )

    # --- reporting ---------------------------------------------------------------------------------------

    def _record_skips(self, skipped: Sequence[Skipped], *, scope: Iterable[IPAddress] | None) -> None:
        """Report each skipped address once (log + counter) while it stays skipped; keep the gauge current."""
        if scope is None:
            kept: dict[tuple[str, IPAddress], Skipped] = {}
        else:
            out = set(scope)
            kept = {key: s for key, s in self._skipped.items() if s.address not in out}
        for skip in skipped:
            key = (skip.netns, skip.address)
            if self._skipped.get(key) != skip:
                self._status.skipped(skip.reason.value)
                log.warning(
                    "address skipped",
                    extra={
                        "netns": skip.netns,
                        "interface": skip.interface,
                        "address": str(skip.address),
                        "reason": skip.reason.value,
                        "detail": skip.detail,
                    },
                )
            kept[key] = skip
        self._skipped = kept
        self._status.set_skipped_now(dict(Counter(s.reason.value for s in kept.values())))

    def _namespace_failures(self, changes: NamespaceChanges) -> None:
        for _name, _why in changes.failed:
            self._status.error("netns")
        self._status.set_namespaces(len(self._namespaces.watched()))

    def _failed(
        self,
        message: str,
        error: AwsError | MetadataError,
        plan: NodePlan | None = None,
        address: IPAddress | None = None,
    ) -> None:
        kind = error.code if isinstance(error, AwsError) else "IMDS"
        self._status.error(kind)
        extra: dict[str, object] = {"error": str(error), "kind": kind}
        if plan is not None:
            extra["addresses"] = [str(r.address) for r in plan.release] + [str(c.address) for c in plan.assign]
        if address is not None:
            extra["address"] = str(address)
        log.error(message, extra=extra)

    def _holders(self, addresses: Iterable[IPAddress]) -> dict[IPAddress, HolderEni]:
        wanted = sorted(set(addresses), key=lambda a: (isinstance(a, IPv6Address), a.packed))
        subnets = sorted({eni.subnet_id for eni in self._enis or ()} - {""})
        found: dict[IPAddress, HolderEni] = {}
        for start in range(0, len(wanted), HOLDER_CHUNK):
            found.update(self._ec2.holder_enis(wanted[start : start + HOLDER_CHUNK], subnets))
        return found


@dataclass(slots=True)
class _Errors:
    assign: int = 0
    release: int = 0


def _facts(links: Iterable[PodInterface]) -> set[tuple[str, IPAddress, bool]]:
    """(MAC, address, usable yet) of every address on ``links``: what a change is measured in."""
    return {(link.mac, a, True) for link in links for a in link.addresses} | {
        (link.mac, a, False) for link in links for a in link.tentative
    }


def _owners(*snapshots: Mapping[str, Sequence[PodInterface]]) -> dict[IPAddress, str]:
    """Which namespace carried (or carries) each address, for the logs; later snapshots win."""
    owners: dict[IPAddress, str] = {}
    for pods in snapshots:
        for name, links in pods.items():
            for link in links:
                for address in (*link.addresses, *link.tentative):
                    owners[address] = name
    return owners
