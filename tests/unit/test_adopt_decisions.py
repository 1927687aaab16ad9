"""The pure decisions of ``python -m multus_ipam adopt`` (:func:`multus_ipam.adopt.decide`): which ENI is adopted,
which is refused, which is left alone."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from multus_ipam.__main__ import EXIT_USAGE, main
from multus_ipam.adopt import Change, GroupView, HookKind, Report, Verdict, decide
from multus_ipam.ports import Attachment, Eni, GroupInstance, Instance, LifecycleHook, Subnet
from multus_ipam.settings import INSTANCE_TAG, NO_MANAGE_TAG, OWNER_TAG, SUBNET_TAG

A, B, OTHER_AZ_SUBNET = "subnet-0000000000000000a", "subnet-0000000000000000b", "subnet-0000000000000000c"
NODE = "i-0000000000000000a"
SAMPLE_TAGS = {NO_MANAGE_TAG[0]: NO_MANAGE_TAG[1], "team": "ims"}
LAUNCHING, TERMINATING = "autoscaling:EC2_INSTANCE_LAUNCHING", "autoscaling:EC2_INSTANCE_TERMINATING"
#: The stack's two hooks on an existing group whose stack is named "ours".
OUR_HOOKS = (
    LifecycleHook("ours-multus-launch", LAUNCHING, 600),
    LifecycleHook("ours-multus-terminate", TERMINATING, 600),
)


def eni(eni_id: str, subnet: str, index: int | None, tags: dict[str, str] | None = None, *, dot: bool = True) -> Eni:
    attachment = (
        Attachment(f"attach-{eni_id}", NODE, index, 0, delete_on_termination=dot, status="attached")
        if index is not None
        else None
    )
    return Eni(
        eni_id,
        subnet,
        "in-use" if attachment else "available",
        private_ipv4s=(IPv4Address("10.0.4.10"),),
        attachment=attachment,
        tags=SAMPLE_TAGS if tags is None else tags,
    )


def report(*enis: Eni, hooks: tuple[LifecycleHook, ...] = OUR_HOOKS, hook_names: tuple[str, ...] = ()) -> Report:
    subnets = (
        Subnet(A, "az-1", "vpc-1", IPv4Network("10.0.4.0/24"), None),
        Subnet(B, "az-1", "vpc-1", IPv4Network("10.0.5.0/24"), None),
        Subnet(OTHER_AZ_SUBNET, "az-2", "vpc-1", IPv4Network("10.0.6.0/24"), None),
    )
    node = (GroupInstance(NODE, "az-1", "InService"), Instance(NODE, "az-1", "running"))
    view = GroupView((node,), subnets, enis, hooks)
    return decide(view, group="g", owner="ours", subnet_ids=(A, B, OTHER_AZ_SUBNET), hook_names=hook_names)


def verdicts(found: Report) -> dict[str, tuple[Verdict, tuple[Change, ...]]]:
    return {f.eni_id: (f.verdict, f.changes) for f in found.findings}


def test_given_a_sample_eni_per_subnet_then_both_are_adopted_and_dot_set_only_where_off() -> None:
    found = report(eni("eni-1", A, 1), eni("eni-2", B, 2, dot=False))

    assert verdicts(found) == {
        "eni-1": (Verdict.ADOPT, (Change.TAG,)),
        "eni-2": (Verdict.ADOPT, (Change.TAG, Change.DELETE_ON_TERMINATION)),
    }
    assert found.problems == 0


def test_given_two_sample_enis_of_one_subnet_on_a_node_then_both_are_refused() -> None:
    found = report(eni("eni-1", A, 1), eni("eni-3", A, 3), eni("eni-2", B, 2))

    assert verdicts(found)["eni-1"][0] is Verdict.REFUSED
    assert verdicts(found)["eni-3"][0] is Verdict.REFUSED
    assert verdicts(found)["eni-2"] == (Verdict.ADOPT, (Change.TAG,))
    assert found.problems == 2


def test_given_an_eni_another_stack_owns_then_it_is_refused_and_named() -> None:
    found = report(eni("eni-1", A, 1, {**SAMPLE_TAGS, OWNER_TAG: "theirs"}), eni("eni-2", B, 2))

    (refused,) = found.refused
    assert (refused.eni_id, refused.reason) == ("eni-1", f"owned by another stack ({OWNER_TAG}=theirs)")


def test_given_an_eni_without_no_manage_in_a_multus_subnet_then_it_is_left_alone_and_the_subnet_missing() -> None:
    found = report(eni("eni-1", A, 1, {}), eni("eni-2", B, 2))

    assert verdicts(found)["eni-1"] == (Verdict.LEFT_ALONE, ())
    assert found.instances[0].missing == (A,)
    assert found.problems == 1


def test_given_a_no_manage_eni_at_device_0_then_it_is_left_alone() -> None:
    found = report(eni("eni-0", A, 0), eni("eni-1", A, 1), eni("eni-2", B, 2))

    assert verdicts(found)["eni-0"] == (Verdict.LEFT_ALONE, ())
    assert verdicts(found)["eni-1"] == (Verdict.ADOPT, (Change.TAG,))


def test_given_our_eni_without_dot_then_only_dot_is_set() -> None:
    ours = {**SAMPLE_TAGS, OWNER_TAG: "ours", INSTANCE_TAG: NODE, SUBNET_TAG: A}
    found = report(eni("eni-1", A, 1, ours, dot=False), eni("eni-2", B, 2, {**ours, SUBNET_TAG: B}))

    assert verdicts(found) == {
        "eni-1": (Verdict.OURS, (Change.DELETE_ON_TERMINATION,)),
        "eni-2": (Verdict.OURS, ()),
    }


def test_given_our_owner_tag_with_another_instance_then_it_is_refused() -> None:
    tags = {**SAMPLE_TAGS, OWNER_TAG: "ours", INSTANCE_TAG: "i-0000000000000000b", SUBNET_TAG: A}
    found = report(eni("eni-1", A, 1, tags), eni("eni-2", B, 2))

    assert verdicts(found)["eni-1"][0] is Verdict.REFUSED


def test_given_unattached_enis_then_the_sample_s_is_refused_ours_reported_and_others_ignored() -> None:
    found = report(
        eni("eni-1", A, 1),
        eni("eni-2", B, 2),
        eni("eni-sample", A, None),
        eni("eni-ours", A, None, {**SAMPLE_TAGS, OWNER_TAG: "ours"}),
        eni("eni-theirs", A, None, {**SAMPLE_TAGS, OWNER_TAG: "theirs"}),
        eni("eni-cni", A, None, {}),
    )

    assert {f.eni_id: f.verdict for f in found.unattached} == {"eni-sample": Verdict.REFUSED, "eni-ours": Verdict.OURS}


def test_given_no_subnets_or_no_owner_when_adopting_then_a_usage_error_with_exit_2() -> None:
    for env in ({"OWNER_ID": "ours"}, {"MULTUS_SUBNET_IDS": A}):
        with pytest.raises(SystemExit) as stopped:
            main(["adopt", "--group", "g"], env=env)
        assert stopped.value.code == EXIT_USAGE


def test_given_the_hooks_of_a_group_then_each_is_ours_eks_or_another_tools() -> None:
    """Given our two hooks, EKS's two (a managed node group) and the AWS sample's, when deciding, then ours are
    ours, EKS's are to be left, the sample's are another tool's, and nothing is missing."""
    eks = (LifecycleHook("Launch-LC-Hook", LAUNCHING, 1800), LifecycleHook("Terminate-LC-Hook", TERMINATING, 1800))
    sample = (LifecycleHook("sample-launch", LAUNCHING, 300),)

    found = report(eni("eni-1", A, 1), eni("eni-2", B, 2), hooks=(*OUR_HOOKS, *eks, *sample))

    kinds = {h.name: (h.kind, h.launching) for h in found.hooks}
    assert kinds == {
        "ours-multus-launch": (HookKind.OURS, True),
        "ours-multus-terminate": (HookKind.OURS, False),
        "Launch-LC-Hook": (HookKind.EKS, True),
        "Terminate-LC-Hook": (HookKind.EKS, False),
        "sample-launch": (HookKind.OTHER, True),
    }
    assert found.missing_hooks == ()
    assert found.problems == 0


@pytest.mark.parametrize("present", [(), OUR_HOOKS[:1], OUR_HOOKS[1:]])
def test_given_our_hooks_not_on_the_group_then_each_missing_one_is_a_problem(
    present: tuple[LifecycleHook, ...],
) -> None:
    """Given a group without one of our hooks (the stack not deployed on it yet), when deciding, then the missing
    hook is named and counted: nothing would give a new node its Multus ENIs, or release them."""
    found = report(eni("eni-1", A, 1), eni("eni-2", B, 2), hooks=present)

    expected = [what for h, what in zip(OUR_HOOKS, ("launch", "terminate"), strict=True) if h not in present]
    assert [m.split()[1] for m in found.missing_hooks] == expected
    assert all(f"ours-multus-{what}" in m for what, m in zip(expected, found.missing_hooks, strict=True))
    assert found.problems == len(expected)


def test_given_the_group_the_stack_created_when_deciding_without_hook_names_then_its_hooks_are_ours() -> None:
    """Given the stack's own group, whose hooks are multus-launch and multus-terminate (not <stack>-multus-...),
    when deciding without LIFECYCLE_HOOK_NAMES, then they are ours, not another tool's to remove."""
    hooks = (LifecycleHook("multus-launch", LAUNCHING, 600), LifecycleHook("multus-terminate", TERMINATING, 600))

    found = report(eni("eni-1", A, 1), eni("eni-2", B, 2), hooks=hooks)

    assert {h.kind for h in found.hooks} == {HookKind.OURS}
    assert found.missing_hooks == ()


def test_given_hook_names_when_deciding_then_only_those_are_ours() -> None:
    """Given LIFECYCLE_HOOK_NAMES naming other hooks, the stack's usual names are another tool's."""
    hooks = (LifecycleHook("multus-launch", LAUNCHING, 600), LifecycleHook("mine-terminate", TERMINATING, 600))

    found = report(eni("eni-1", A, 1), eni("eni-2", B, 2), hooks=hooks, hook_names=("mine-launch", "mine-terminate"))

    assert {h.name: h.kind for h in found.hooks} == {"multus-launch": HookKind.OTHER, "mine-terminate": HookKind.OURS}
    assert found.missing_hooks == ("a launch hook of ours (mine-launch)",)
