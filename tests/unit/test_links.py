"""Stable Multus link names: positions per AZ, names given per subnet, and every way a name can be wrong."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multus_ipam.links import (
    LinkPlanError,
    PlannedLink,
    links_in_zone,
    name_problem,
    parse_interface_names,
    parse_plan,
    plan_links,
    render_plan,
)

A, B, C, D = (f"subnet-0{letter * 16}" for letter in "abcd")
AZ1, AZ2 = "eu-west-1a", "eu-west-1b"
ZONES = {A: AZ1, B: AZ2, C: AZ1, D: AZ2}


def _names(links: tuple[PlannedLink, ...]) -> dict[str, str]:
    return {link.subnet_id: link.name for link in links}


def test_given_subnets_in_two_azs_when_planned_then_each_is_named_by_its_position_in_its_own_az() -> None:
    links = plan_links([A, B, C, D], ZONES)
    assert _names(links) == {A: "multus0", B: "multus0", C: "multus1", D: "multus1"}
    assert [link.availability_zone for link in links] == [AZ1, AZ2, AZ1, AZ2]


def test_given_the_plan_when_rendered_then_subnet_az_name_entries_in_subnet_order_that_parse_back() -> None:
    links = plan_links([A, B, C, D], ZONES)
    text = render_plan(links)
    assert text == f"{A}={AZ1}=multus0 {B}={AZ2}=multus0 {C}={AZ1}=multus1 {D}={AZ2}=multus1"
    assert parse_plan(text) == links


def test_given_a_node_in_one_az_when_selecting_its_links_then_only_that_az_s() -> None:
    links = plan_links([A, B, C, D], ZONES)
    assert [link.name for link in links_in_zone(links, AZ2)] == ["multus0", "multus1"]
    assert {link.subnet_id for link in links_in_zone(links, AZ2)} == {B, D}
    assert links_in_zone(links, "eu-west-1c") == ()


def test_given_a_name_for_one_subnet_when_planned_then_the_others_keep_their_default_names() -> None:
    names = parse_interface_names(f"{A}=n6", [A, B, C, D])
    assert _names(plan_links([A, B, C, D], ZONES, names)) == {A: "n6", B: "multus0", C: "multus1", D: "multus1"}


def test_given_names_with_spaces_around_them_when_parsed_then_they_are_trimmed() -> None:
    assert parse_interface_names(f" {A} = n6 , {B}=sbi ,", [A, B]) == {A: "n6", B: "sbi"}


def test_given_no_names_when_parsed_then_every_subnet_keeps_its_default() -> None:
    assert parse_interface_names("", [A]) == {}
    assert parse_interface_names(" , ", [A]) == {}


def test_given_one_name_in_two_azs_when_planned_then_it_is_allowed() -> None:
    names = parse_interface_names(f"{A}=sbi,{B}=sbi", [A, B])
    assert _names(plan_links([A, B], ZONES, names)) == {A: "sbi", B: "sbi"}


def test_given_a_name_that_equals_another_subnet_s_default_in_its_az_when_planned_then_refused_naming_both() -> None:
    names = parse_interface_names(f"{C}=multus0", [A, C])
    with pytest.raises(LinkPlanError, match=rf"{A} and {C} would both be named 'multus0' in {AZ1}"):
        plan_links([A, C], ZONES, names)


def test_given_a_name_for_a_subnet_that_is_not_a_multus_subnet_when_parsed_then_refused_naming_it() -> None:
    with pytest.raises(LinkPlanError, match=rf"MultusInterfaceNames: {D} is not one of MultusSubnetIds"):
        parse_interface_names(f"{D}=n6", [A, B])


def test_given_a_subnet_named_twice_when_parsed_then_refused() -> None:
    with pytest.raises(LinkPlanError, match=rf"{A} is named twice"):
        parse_interface_names(f"{A}=n6,{A}=n7", [A])


@pytest.mark.parametrize("pair", ["n6", f"={A}", "=n6"])
def test_given_a_pair_without_a_subnet_when_parsed_then_refused_quoting_it(pair: str) -> None:
    with pytest.raises(LinkPlanError, match="is not subnet-id=name"):
        parse_interface_names(pair, [A])


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        ("x" * 16, "longer than 15 characters"),
        ("a/b", "contains '/'"),
        ("a:b", "contains ':'"),
        ("a%d", "contains '%'"),
        ("a=b", "contains '='"),
        ("a,b", "contains ','"),
        ("a*", "contains '*'"),
        ("a b", "contains ' '"),
        ("a\tb", "contains '\\t'"),
        ("é", "only ASCII letters, digits, '_', '.' and '-'"),
        (".", "'.' and '..'"),
        ("..", "'.' and '..'"),
        ("42", "all digits"),
        ("lo", "loopback"),
        ("eth1", "starts with 'eth'"),
        ("ens6", "starts with 'en'"),
        ("eni3f2a", "starts with 'en'"),
        ("veth1", "starts with 'veth'"),
    ],
)
def test_given_an_invalid_name_when_checked_then_the_problem_is_named(name: str, problem: str) -> None:
    found = name_problem(name)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("name", ["multus0", "n6", "sbi", "x" * 15, "net-1.a_b", "n3gpp"])
def test_given_a_valid_name_when_checked_then_no_problem(name: str) -> None:
    assert name_problem(name) is None


def test_given_an_invalid_name_when_parsed_then_the_error_names_the_subnet_the_name_and_the_problem() -> None:
    with pytest.raises(LinkPlanError) as raised:
        parse_interface_names(f"{A}=averyveryverylongname", [A])
    assert str(raised.value) == (
        f"MultusInterfaceNames: 'averyveryverylongname' (for {A}) is not a valid interface name: "
        "longer than 15 characters"
    )


def test_given_a_subnet_listed_twice_when_planned_then_refused() -> None:
    with pytest.raises(LinkPlanError, match=rf"MultusSubnetIds: {A} is listed twice"):
        plan_links([A, A], ZONES)


def test_given_a_subnet_without_an_az_when_planned_then_refused_naming_it() -> None:
    with pytest.raises(LinkPlanError, match=rf"MultusSubnetIds: {B} was not found"):
        plan_links([A, B], {A: AZ1})


def test_given_names_for_an_unlisted_subnet_when_planned_directly_then_refused() -> None:
    with pytest.raises(LinkPlanError, match=rf"{D} is not one of MultusSubnetIds"):
        plan_links([A], ZONES, {D: "n6"})


@pytest.mark.parametrize("text", ["subnet-a=az", "subnet-a==multus0", "subnet-a=az=n=x"])
def test_given_a_malformed_plan_when_parsed_then_refused_quoting_the_entry(text: str) -> None:
    with pytest.raises(LinkPlanError, match="is not <subnet>=<az>=<name>"):
        parse_plan(text)


@given(st.lists(st.sampled_from([AZ1, AZ2, "eu-west-1c"]), min_size=1, max_size=12))
def test_given_any_layout_when_planned_then_names_are_unique_per_az_and_count_up_from_0(zones: list[str]) -> None:
    subnets = [f"subnet-{i:017x}" for i in range(len(zones))]
    links = plan_links(subnets, dict(zip(subnets, zones, strict=True)))
    for zone in set(zones):
        names = [link.name for link in links_in_zone(links, zone)]
        assert names == [f"multus{k}" for k in range(zones.count(zone))]
    assert parse_plan(render_plan(links)) == links
