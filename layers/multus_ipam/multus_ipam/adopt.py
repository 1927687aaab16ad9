"""Taking over a group the AWS sample serves: ``python -m multus_ipam adopt --group NAME [--apply]``.

The sample (DOMAIN.md section 7) leaves on each node one ENI per Multus subnet, tagged
``node.k8s.amazonaws.com/no_manage=true`` plus the user's tags, with none of our ownership tags, so our terminate
path never releases them and our sweep never sees them. Adoption gives each such ENI our ownership tags (owner,
instance, subnet, created-at: the adoption's time) and sets DeleteOnTermination where the sample left it off.

:func:`decide` is pure (what each ENI is and what would change); :func:`read_group` and :func:`apply` are the AWS
reads and writes, through the same adapters the functions use.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from multus_ipam.ports import AttachedInterface, Eni, GroupInstance, Instance, LifecycleHook, Subnet
from multus_ipam.settings import CREATED_AT_TAG, INSTANCE_TAG, NO_MANAGE_TAG, OWNER_TAG, SUBNET_TAG, format_created_at

#: What the read-only report reads; --apply adds ADOPT_APPLY_IAM_ACTIONS (docs/migration.md).
ADOPT_READ_IAM_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLifecycleHooks",
    "ec2:DescribeSubnets",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
)
ADOPT_APPLY_IAM_ACTIONS = ("ec2:CreateTags", "ec2:ModifyNetworkInterfaceAttribute")
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
#: The hooks EKS puts on every managed node group's Auto Scaling group (docs/managed-node-groups.md).
EKS_HOOKS = frozenset({"Launch-LC-Hook", "Terminate-LC-Hook"})


def stack_hook_names(owner: str) -> tuple[str, ...]:
    """The names the stack gives its two hooks: on an existing group (template.yaml, ExistingGroup*Hook), and on
    the group it creates (its LifecycleHookSpecificationList)."""
    return f"{owner}-multus-launch", f"{owner}-multus-terminate", "multus-launch", "multus-terminate"


class HookKind(StrEnum):
    OURS = "ours"
    EKS = "EKS's (managed node group): leave it"
    OTHER = "another tool's: if it is the AWS sample's, remove it once --apply is done (docs/migration.md)"


@dataclass(frozen=True, slots=True)
class HookFinding:
    name: str
    launching: bool
    kind: HookKind


class Verdict(StrEnum):
    OURS = "ours"
    """Already carries our ownership tags for this instance and subnet."""
    ADOPT = "adopt"
    """A sample ENI that matches our configuration: --apply tags it."""
    REFUSED = "refused"
    """Ambiguous or someone else's: reported, never changed."""
    LEFT_ALONE = "left alone"
    """Not a Multus ENI (the primary, the VPC CNI's, outside the Multus subnets): never changed."""


class Change(StrEnum):
    TAG = "tag with our ownership tags"
    DELETE_ON_TERMINATION = "set DeleteOnTermination"


@dataclass(frozen=True, slots=True)
class Finding:
    eni_id: str
    subnet_id: str
    """Empty for an interface outside the Multus subnets (EC2 was not asked about it)."""
    device_index: int | None
    addresses: tuple[str, ...]
    verdict: Verdict
    reason: str
    changes: tuple[Change, ...] = ()
    attachment_id: str | None = None


@dataclass(frozen=True, slots=True)
class InstanceReport:
    instance_id: str
    availability_zone: str
    lifecycle_state: str
    findings: tuple[Finding, ...]
    missing: tuple[str, ...]
    """Configured subnets of the instance's AZ without a Multus ENI on it."""


@dataclass(frozen=True, slots=True)
class Report:
    group: str
    owner: str
    instances: tuple[InstanceReport, ...]
    unattached: tuple[Finding, ...]
    """Sample ENIs in the Multus subnets attached to nothing (the half-made case), and detached ENIs of ours."""
    hooks: tuple[HookFinding, ...] = ()
    missing_hooks: tuple[str, ...] = ()
    """Our hooks that are not on the group (a launch one: nothing gives a new node its Multus ENIs)."""

    @property
    def findings(self) -> tuple[Finding, ...]:
        return (*(f for i in self.instances for f in i.findings), *self.unattached)

    @property
    def refused(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.verdict is Verdict.REFUSED)

    @property
    def problems(self) -> int:
        """What keeps the group from being fully ours: refused ENIs and missing ones."""
        return len(self.refused) + sum(len(i.missing) for i in self.instances) + len(self.missing_hooks)

    @property
    def pending(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.changes)


@dataclass(frozen=True, slots=True)
class GroupView:
    """What adoption reads: the group's instances (with their attached interfaces, None if EC2 does not show
    the instance), the configured subnets and every ENI in them."""

    instances: tuple[tuple[GroupInstance, Instance | None], ...]
    subnets: tuple[Subnet, ...]
    enis: tuple[Eni, ...]
    hooks: tuple[LifecycleHook, ...] = ()


def _addresses(eni: Eni) -> tuple[str, ...]:
    return tuple(str(a) for a in (*eni.private_ipv4s, *eni.ipv6s))


def _finding(eni: Eni, verdict: Verdict, reason: str, changes: tuple[Change, ...] = ()) -> Finding:
    attachment = eni.attachment
    return Finding(
        eni_id=eni.eni_id,
        subnet_id=eni.subnet_id,
        device_index=attachment.device_index if attachment else None,
        addresses=_addresses(eni),
        verdict=verdict,
        reason=reason,
        changes=changes,
        attachment_id=attachment.attachment_id if attachment else None,
    )


def _classify_attached(
    eni: Eni, instance: GroupInstance, *, owner: str, subnet_az: Mapping[str, str], crowded: set[str]
) -> Finding:
    """One ENI in a Multus subnet attached to one of the group's instances."""
    assert eni.attachment is not None
    if eni.tags.get(NO_MANAGE_TAG[0]) != NO_MANAGE_TAG[1]:
        return _finding(eni, Verdict.LEFT_ALONE, "no no_manage tag: the VPC CNI's")
    if eni.attachment.device_index == 0:
        return _finding(eni, Verdict.LEFT_ALONE, "primary ENI")
    refusal = _refusal(eni, instance, owner=owner, subnet_az=subnet_az, crowded=crowded)
    if refusal is not None:
        return _finding(eni, Verdict.REFUSED, refusal)
    dot = () if eni.attachment.delete_on_termination else (Change.DELETE_ON_TERMINATION,)
    off = "; DeleteOnTermination off" if dot else ""
    if eni.tags.get(OWNER_TAG) == owner:
        return _finding(eni, Verdict.OURS, f"ours{off}", dot)
    return _finding(eni, Verdict.ADOPT, f"sample ENI{off}", (Change.TAG, *dot))


def _refusal(
    eni: Eni, instance: GroupInstance, *, owner: str, subnet_az: Mapping[str, str], crowded: set[str]
) -> str | None:
    """Why a no_manage ENI on a secondary device index must not be adopted, if it must not."""
    their_owner = eni.tags.get(OWNER_TAG)
    if their_owner is not None and their_owner != owner:
        return f"owned by another stack ({OWNER_TAG}={their_owner})"
    if eni.subnet_id in crowded:
        return "more than one no_manage ENI of this subnet on the instance: ambiguous"
    if subnet_az.get(eni.subnet_id) != instance.availability_zone:
        return "its subnet is not in the instance's Availability Zone"
    if their_owner == owner and (
        eni.tags.get(INSTANCE_TAG) != instance.instance_id or eni.tags.get(SUBNET_TAG) != eni.subnet_id
    ):
        return "our owner tag, but another instance's or subnet's tags"
    return None


def _classify_unattached(eni: Eni, *, owner: str) -> Finding | None:
    tags = eni.tags
    if tags.get(NO_MANAGE_TAG[0]) != NO_MANAGE_TAG[1]:
        return None
    their_owner = tags.get(OWNER_TAG)
    if their_owner == owner:
        return _finding(eni, Verdict.OURS, "ours, attached to nothing: the reconciler's sweep deletes it")
    if their_owner is not None:
        return None  # another stack's: not ours to report
    return _finding(
        eni,
        Verdict.REFUSED,
        "sample ENI attached to nothing (a launch the sample never finished): not tagged; once no launch is in "
        f"progress, delete it: aws ec2 delete-network-interface --network-interface-id {eni.eni_id}",
    )


def classify_hooks(
    hooks: Sequence[LifecycleHook], ours: Sequence[str]
) -> tuple[tuple[HookFinding, ...], tuple[str, ...]]:
    """Each hook on the group: ours (named in ``ours``), EKS's, or another tool's; and what of ours is missing:
    a launch hook and a terminate hook among ``ours``."""
    found = tuple(
        HookFinding(
            h.name,
            h.transition == LAUNCHING,
            HookKind.OURS if h.name in ours else HookKind.EKS if h.name in EKS_HOOKS else HookKind.OTHER,
        )
        for h in sorted(hooks, key=lambda h: h.name)
    )
    mine = [h for h in found if h.kind is HookKind.OURS]
    missing = []
    for launching, what in ((True, "launch"), (False, "terminate")):
        if not any(h.launching == launching for h in mine):
            names = [n for n in ours if n.endswith(f"-{what}")] or list(ours)
            missing.append(f"a {what} hook of ours ({' or '.join(names)})")
    return found, tuple(missing)


def decide(
    view: GroupView, *, group: str, owner: str, subnet_ids: Sequence[str], hook_names: Sequence[str] = ()
) -> Report:
    """What each ENI of the group's instances and each unattached sample ENI is, what --apply would change, and
    whose each hook on the group is (``hook_names``: ours; default: the stack's names on an existing group).

    Pure: ``view`` was read already. Only ENIs in ``subnet_ids`` with the no_manage tag, attached to one of the
    group's instances at a device index other than 0, are ever adopted."""
    subnet_az = {s.subnet_id: s.availability_zone for s in view.subnets if s.subnet_id in subnet_ids}
    multus = [e for e in view.enis if e.subnet_id in subnet_az]
    by_instance: dict[str, list[Eni]] = {}
    for eni in multus:
        if eni.attachment is not None:
            by_instance.setdefault(eni.attachment.instance_id, []).append(eni)
    reports = []
    for member, instance in view.instances:
        enis = sorted(
            by_instance.get(member.instance_id, []), key=lambda e: e.attachment.device_index if e.attachment else 0
        )
        counts = Counter(
            e.subnet_id
            for e in enis
            if e.tags.get(NO_MANAGE_TAG[0]) == NO_MANAGE_TAG[1] and e.attachment and e.attachment.device_index
        )
        crowded = {subnet for subnet, count in counts.items() if count > 1}
        findings = [_classify_attached(e, member, owner=owner, subnet_az=subnet_az, crowded=crowded) for e in enis]
        shown = {e.eni_id for e in enis}
        interfaces: tuple[AttachedInterface, ...] = instance.interfaces if instance else ()
        findings.extend(
            Finding(
                eni_id=nic.eni_id,
                subnet_id="",
                device_index=nic.device_index,
                addresses=(),
                verdict=Verdict.LEFT_ALONE,
                reason="primary ENI" if nic.device_index == 0 else "outside the Multus subnets",
            )
            for nic in sorted(interfaces, key=lambda n: (n.network_card_index, n.device_index))
            if nic.eni_id not in shown
        )
        have = {f.subnet_id for f in findings if f.verdict in (Verdict.OURS, Verdict.ADOPT, Verdict.REFUSED)}
        missing = tuple(s for s in subnet_ids if subnet_az.get(s) == member.availability_zone and s not in have)
        reports.append(
            InstanceReport(
                member.instance_id, member.availability_zone, member.lifecycle_state, tuple(findings), missing
            )
        )
    unattached = [_classify_unattached(e, owner=owner) for e in multus if e.attachment is None]
    hooks, missing_hooks = classify_hooks(view.hooks, tuple(hook_names) or stack_hook_names(owner))
    return Report(group, owner, tuple(reports), tuple(f for f in unattached if f is not None), hooks, missing_hooks)


def render(report: Report, *, applied: bool) -> str:
    lines = [f"group {report.group}, owner {report.owner}: {len(report.instances)} instance(s)"]
    for instance in report.instances:
        lines.append(f"{instance.instance_id} ({instance.availability_zone}, {instance.lifecycle_state})")
        lines.extend(f"  {_line(f, applied=applied)}" for f in instance.findings)
        lines.extend(
            f"  missing: no Multus ENI in {s}; adoption does not add one to a running node: replace the node"
            for s in instance.missing
        )
    if report.unattached:
        lines.append("attached to no instance")
        lines.extend(f"  {_line(f, applied=applied)}" for f in report.unattached)
    lines.append("lifecycle hooks")
    lines.extend(f"  {h.name} ({'launch' if h.launching else 'terminate'}): {h.kind.value}" for h in report.hooks)
    lines.extend(
        f"  missing: {what}: deploy the stack on this group first, or name our hooks (LIFECYCLE_HOOK_NAMES)"
        for what in report.missing_hooks
    )
    pending = report.pending
    verb = "changed" if applied else "to change"
    summary = f"{len(pending)} ENI(s) {verb}" if pending else "nothing to change"
    if pending and not applied:
        summary += ": run again with --apply"
    if report.problems:
        summary += f"; {report.problems} refused or missing (listed above)"
    lines.append(summary)
    return "\n".join(lines) + "\n"


def _line(f: Finding, *, applied: bool) -> str:
    where = f"device {f.device_index}" if f.device_index is not None else "unattached"
    subnet = f" {f.subnet_id}" if f.subnet_id else ""
    addresses = f" {','.join(f.addresses)}" if f.addresses else ""
    text = f"{f.eni_id}{subnet} {where}{addresses}: {f.verdict.value} ({f.reason})"
    if f.changes:
        text += (" -> done: " if applied else " -> would ") + ", ".join(c.value for c in f.changes)
    return text


class AdoptionEc2(Protocol):
    """The EC2 adapter's reads and writes adoption needs (:class:`multus_ipam.aws.ec2.Ec2Adapter`)."""

    def describe_instance(self, instance_id: str) -> Instance | None: ...

    def describe_subnets(self, subnet_ids: Sequence[str]) -> list[Subnet]: ...

    def subnet_enis(self, subnet_ids: Sequence[str]) -> list[Eni]: ...

    def tag_eni(self, eni_id: str, tags: Mapping[str, str]) -> None: ...

    def set_delete_on_termination(self, eni_id: str, attachment_id: str) -> None: ...


class GroupInstances(Protocol):
    def group_instances(self, group: str) -> list[GroupInstance]: ...

    def lifecycle_hooks(self, group: str) -> list[LifecycleHook]: ...


def read_group(ec2: AdoptionEc2, autoscaling: GroupInstances, *, group: str, subnet_ids: Sequence[str]) -> GroupView:
    """The group's instances, each one's interfaces, the configured subnets and their ENIs. Raises
    :class:`multus_ipam.errors.MultusIpamError` when something cannot be read."""
    members = autoscaling.group_instances(group)
    instances = tuple((m, ec2.describe_instance(m.instance_id)) for m in members)
    return GroupView(
        instances,
        tuple(ec2.describe_subnets(subnet_ids)),
        tuple(ec2.subnet_enis(subnet_ids)),
        tuple(autoscaling.lifecycle_hooks(group)),
    )


def apply(ec2: AdoptionEc2, report: Report, *, now: datetime) -> None:
    """Make the report's changes: DeleteOnTermination first, then the tags (a run that stops between the two
    leaves a sample ENI that the next run adopts)."""
    for finding in report.pending:
        instance_id = next(i.instance_id for i in report.instances if finding in i.findings)
        if Change.DELETE_ON_TERMINATION in finding.changes and finding.attachment_id is not None:
            ec2.set_delete_on_termination(finding.eni_id, finding.attachment_id)
        if Change.TAG in finding.changes:
            ec2.tag_eni(
                finding.eni_id,
                {
                    OWNER_TAG: report.owner,
                    INSTANCE_TAG: instance_id,
                    SUBNET_TAG: finding.subnet_id,
                    CREATED_AT_TAG: format_created_at(now),
                },
            )
