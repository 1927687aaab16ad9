"""What happens to ENIs a lost event left behind: the orphan sweep.

A launch that dies between creating and attaching an ENI, and whose event is never delivered again (the hook
times out, Auto Scaling terminates the instance without a terminate event), leaves a detached ENI of ours. The
sweep deletes such ENIs; it runs after every lifecycle action today and is a class of its own so that a
scheduled reconciler can run it off the hot path.

It must never delete a launch in flight: an ENI just created and about to be attached is detached too, and the
instance of a launch that just started may not be shown by DescribeInstances yet (eventual consistency). So
(:func:`orphan_reason`):
- an instance DescribeInstances shows as shutting-down or terminated is positive evidence: its detached ENIs go,
  whatever their age and whichever version made them (instance ids are never reused);
- an instance it does not show at all counts as gone only for ENIs whose created-at tag is older than
  ORPHAN_MIN_AGE_SECONDS; ENIs without the tag (made by older versions) are kept on that evidence alone;
- a live instance keeps its ENIs: its launch may be about to attach them.

Best effort: a failure is logged, never raised, and the next run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from multus_ipam.errors import MultusIpamError
from multus_ipam.ports import Clock, Ec2, Eni
from multus_ipam.settings import CREATED_AT_TAG, INSTANCE_TAG, parse_created_at

GONE_STATES = frozenset({"shutting-down", "terminated"})


def orphan_reason(tags: dict[str, str] | None, state: str | None, *, now: datetime, min_age: timedelta) -> str | None:
    """Why a detached ENI of ours with these tags is an orphan, or None to keep it.

    ``state`` is its instance's EC2 state as DescribeInstances shows it, None when not shown.
    """
    tags = tags or {}
    instance_id = tags.get(INSTANCE_TAG) or "(no instance tag)"
    if state in GONE_STATES:
        return f"its instance {instance_id} is {state}"
    if state is not None:
        return None  # alive (pending, running, stopping, stopped): its launch may be about to attach it
    created_at = parse_created_at(tags.get(CREATED_AT_TAG))
    if created_at is None:
        return None  # no proof of age: only positive evidence of the instance's end will do
    age = now - created_at
    if age < min_age:
        return None  # a new instance may not be shown yet
    return f"its instance {instance_id} is not found and the ENI is {age.total_seconds():.0f}s old"


@dataclass(frozen=True, slots=True)
class SweepResult:
    deleted: tuple[str, ...] = ()
    kept: int = 0


def in_multus_subnets(
    enis: Sequence[Eni], subnet_ids: Collection[str], log: logging.Logger | logging.LoggerAdapter[logging.Logger]
) -> list[Eni]:
    """The ENIs in the Multus subnets; the others are logged and left alone. An owner tag alone proves nothing
    (anyone who may tag an ENI can set it), and the roles may change no ENI elsewhere (IAM: ec2:Subnet)."""
    inside = [eni for eni in enis if eni.subnet_id in subnet_ids]
    if len(inside) < len(enis):
        outside = sorted(eni.eni_id for eni in enis if eni.subnet_id not in subnet_ids)
        log.warning("ENIs with our owner tag outside the Multus subnets: left alone", extra={"enis": outside})
    return inside


class OrphanSweep:
    """Delete our detached ENIs whose instance is gone (see the module docstring)."""

    def __init__(
        self,
        *,
        owner: str,
        subnet_ids: Collection[str],
        min_age_seconds: float,
        ec2: Ec2,
        clock: Clock,
        on_release: Callable[[], None] | None = None,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self._owner = owner
        self._subnet_ids = frozenset(subnet_ids)
        self._min_age = timedelta(seconds=min_age_seconds)
        self._ec2 = ec2
        self._clock = clock
        self._on_release = on_release
        self._log = logger or logging.getLogger(__name__)

    def run(self, until: datetime | None = None) -> SweepResult:
        """One sweep; stops deleting once ``until`` has passed. Never raises our errors.

        Only ENIs in the Multus subnets: the role may delete no other (an owner tag alone proves nothing: anyone
        who may tag an ENI can set it), and one that cannot be deleted does not stop the others."""
        deleted: list[str] = []
        kept = 0
        try:
            candidates = in_multus_subnets(self._ec2.detached_enis(self._owner), self._subnet_ids, self._log)
            if not candidates:
                return SweepResult()
            instance_ids = sorted({i for eni in candidates if (i := eni.tags.get(INSTANCE_TAG))})
            states = self._ec2.instance_states(instance_ids) if instance_ids else {}
            now = self._clock.now()
            for eni in candidates:
                instance_id = eni.tags.get(INSTANCE_TAG)
                reason = orphan_reason(
                    dict(eni.tags), states.get(instance_id) if instance_id else None, now=now, min_age=self._min_age
                )
                if reason is None:
                    kept += 1
                    continue
                if until is not None and self._clock.now() >= until:
                    self._log.info("orphan sweep out of time: the next run goes on", extra={"left": eni.eni_id})
                    break
                try:
                    self._ec2.delete_eni(eni.eni_id)
                except MultusIpamError as error:
                    self._log.warning(
                        "could not delete an orphaned ENI", extra={"eni": eni.eni_id, "error": str(error)}
                    )
                    continue
                deleted.append(eni.eni_id)
                if self._on_release is not None:
                    self._on_release()
                self._log.warning("deleted an orphaned ENI", extra={"eni": eni.eni_id, "reason": reason})
        except MultusIpamError as error:
            self._log.warning("could not sweep orphaned ENIs", extra={"error": str(error)})
        return SweepResult(tuple(deleted), kept)
