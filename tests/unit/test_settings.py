"""Configuration: validated once, every problem names the variable."""

import json
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network

import pytest

from multus_ipam.errors import ConfigurationError
from multus_ipam.settings import (
    CREATED_AT_TAG,
    INSTANCE_TAG,
    NO_MANAGE_TAG,
    OWNER_TAG,
    LifecycleResult,
    load_settings,
    parse_created_at,
)

SUBNET_A = "subnet-0aaaaaaaaaaaaaaaa"
SUBNET_B = "subnet-0bbbbbbbbbbbbbbbb"
SG_1 = "sg-01111111111111111"
SG_2 = "sg-02222222222222222"


def env(**overrides: str) -> dict[str, str]:
    base = {
        "AUTOSCALING_GROUP_NAME": "multus-workers",
        "MULTUS_SUBNET_IDS": f"{SUBNET_A},{SUBNET_B}",
        "MULTUS_SECURITY_GROUP_IDS": SG_1,
        "LIFECYCLE_HOOK_NAMES": "multus-launch,multus-terminate",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v != "<unset>"}


def test_given_the_required_variables_when_loaded_then_defaults_apply() -> None:
    settings = load_settings(env())
    assert settings.subnet_ids == (SUBNET_A, SUBNET_B)
    assert settings.security_groups == {SUBNET_A: (SG_1,), SUBNET_B: (SG_1,)}
    assert settings.failure_result is LifecycleResult.ABANDON
    assert settings.network_card_index == 0
    assert not settings.disable_source_dest_check
    assert settings.orphan_min_age_seconds == 600


def test_given_one_security_group_per_subnet_when_loaded_then_they_pair_in_order() -> None:
    settings = load_settings(env(MULTUS_SECURITY_GROUP_IDS=f"{SG_1}, {SG_2}"))
    assert settings.security_groups == {SUBNET_A: (SG_1,), SUBNET_B: (SG_2,)}


def test_given_every_option_when_loaded_then_each_is_parsed() -> None:
    settings = load_settings(
        env(
            ENI_TAGS='{"team": "ims"}',
            WORKER_IP_UPPER_BOUNDS=f"{SUBNET_A}=10.0.4.63",
            DEVICE_INDEXES=f"{SUBNET_A}=2,{SUBNET_B}=3",
            NETWORK_CARD_INDEX="1",
            FAILURE_RESULT="continue",
            DISABLE_SOURCE_DEST_CHECK="true",
            POD_CIDR_RESERVATIONS=f"{SUBNET_A}=10.0.4.192/26,{SUBNET_A}=10.0.4.128/27",
            OWNER_ID="stack-a",
            ORPHAN_MIN_AGE_SECONDS="900",
        )
    )
    assert settings.orphan_min_age_seconds == 900
    assert settings.extra_tags == {"team": "ims"}
    assert settings.worker_upper_bounds == {SUBNET_A: IPv4Address("10.0.4.63")}
    assert settings.device_indexes == {SUBNET_A: 2, SUBNET_B: 3}
    assert settings.network_card_index == 1
    assert settings.failure_result is LifecycleResult.CONTINUE
    assert settings.disable_source_dest_check
    assert settings.pod_reservations == {SUBNET_A: (IPv4Network("10.0.4.192/26"), IPv4Network("10.0.4.128/27"))}
    tags = settings.tags_for("i-0123456789abcdef0", SUBNET_A, created_at=datetime(2026, 11, 24, 10, tzinfo=UTC))
    assert tags[NO_MANAGE_TAG[0]] == "true"
    assert tags[OWNER_TAG] == "stack-a"
    assert tags[INSTANCE_TAG] == "i-0123456789abcdef0"
    assert tags["team"] == "ims"


@pytest.mark.parametrize(
    ("overrides", "variable", "problem"),
    [
        ({"MULTUS_SUBNET_IDS": "<unset>"}, "MULTUS_SUBNET_IDS", "is required"),
        ({"MULTUS_SECURITY_GROUP_IDS": ""}, "MULTUS_SECURITY_GROUP_IDS", "is required"),
        ({"AUTOSCALING_GROUP_NAME": "<unset>"}, "AUTOSCALING_GROUP_NAME", "is required"),
        # Every EKS managed node group's group holds EKS's own hooks: without our names we could complete theirs.
        ({"LIFECYCLE_HOOK_NAMES": "<unset>"}, "LIFECYCLE_HOOK_NAMES", "required: the names of the hooks"),
        ({"LIFECYCLE_HOOK_NAMES": " , "}, "LIFECYCLE_HOOK_NAMES", "required: the names of the hooks"),
        ({"MULTUS_SUBNET_IDS": "subnet-xyz"}, "MULTUS_SUBNET_IDS", "not a valid id"),
        ({"MULTUS_SUBNET_IDS": f"{SUBNET_A},{SUBNET_A}"}, "MULTUS_SUBNET_IDS", "same id twice"),
        ({"MULTUS_SECURITY_GROUP_IDS": "sg-nope"}, "MULTUS_SECURITY_GROUP_IDS", "not a valid id"),
        (
            {"MULTUS_SECURITY_GROUP_IDS": f"{SG_1},{SG_2},sg-03333333333333333"},
            "MULTUS_SECURITY_GROUP_IDS",
            "3 ids for 2 subnets",
        ),
        ({"ENI_TAGS": "{not json"}, "ENI_TAGS", "not valid JSON"),
        ({"ENI_TAGS": '{"a": 1}'}, "ENI_TAGS", "string values"),
        ({"ENI_TAGS": '{"aws:x": "y"}'}, "ENI_TAGS", "reserved aws: prefix"),
        ({"ENI_TAGS": '{"node.k8s.amazonaws.com/no_manage": "false"}'}, "ENI_TAGS", "cannot be overridden"),
        ({"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}=banana"}, "WORKER_IP_UPPER_BOUNDS", "not an IP address"),
        ({"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}=2001:db8::1"}, "WORKER_IP_UPPER_BOUNDS", "not an IPv4"),
        ({"WORKER_IP_UPPER_BOUNDS": "subnet-0ccccccccccccccccc=10.0.0.9"}, "WORKER_IP_UPPER_BOUNDS", "not one of"),
        ({"WORKER_IP_UPPER_BOUNDS": "10.0.0.9"}, "WORKER_IP_UPPER_BOUNDS", "not subnet-id=value"),
        ({"DEVICE_INDEXES": f"{SUBNET_A}=0"}, "DEVICE_INDEXES", "device index of 1 or more"),
        ({"DEVICE_INDEXES": f"{SUBNET_A}=1,{SUBNET_A}=2"}, "DEVICE_INDEXES", "listed twice"),
        ({"NETWORK_CARD_INDEX": "x"}, "NETWORK_CARD_INDEX", "not an integer"),
        ({"NETWORK_CARD_INDEX": "99"}, "NETWORK_CARD_INDEX", "out of range"),
        ({"FAILURE_RESULT": "RETRY"}, "FAILURE_RESULT", "not a lifecycle result"),
        ({"DISABLE_SOURCE_DEST_CHECK": "maybe"}, "DISABLE_SOURCE_DEST_CHECK", "not a boolean"),
        ({"POD_CIDR_RESERVATIONS": f"{SUBNET_B}=10.0.0.0/33"}, "POD_CIDR_RESERVATIONS", "not a CIDR block"),
        ({"ORPHAN_MIN_AGE_SECONDS": "59"}, "ORPHAN_MIN_AGE_SECONDS", "out of range"),
        ({"ORPHAN_MIN_AGE_SECONDS": "86401"}, "ORPHAN_MIN_AGE_SECONDS", "out of range"),
        ({"ORPHAN_MIN_AGE_SECONDS": "ten minutes"}, "ORPHAN_MIN_AGE_SECONDS", "not an integer"),
        ({"ENI_TAGS": '{"multus-ipam:created-at": "x"}'}, "ENI_TAGS", "cannot be overridden"),
    ],
)
def test_given_a_bad_value_when_loaded_then_the_error_names_the_variable(
    overrides: dict[str, str], variable: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match=problem) as caught:
        load_settings(env(**overrides))
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_given_a_creation_time_when_tagging_then_it_is_iso_8601_utc_to_the_second() -> None:
    settings = load_settings(env())
    moment = datetime(2026, 11, 24, 11, 0, 0, 999_999, tzinfo=UTC)
    tags = settings.tags_for("i-0123456789abcdef0", SUBNET_A, created_at=moment)
    assert tags[CREATED_AT_TAG] == "2026-11-24T11:00:00Z"
    assert parse_created_at(tags[CREATED_AT_TAG]) == moment.replace(microsecond=0)


def test_given_a_naive_creation_time_when_tagging_then_it_is_refused() -> None:
    settings = load_settings(env())
    with pytest.raises(ValueError, match="timezone-aware"):
        settings.tags_for("i-0123456789abcdef0", SUBNET_A, created_at=datetime(2026, 11, 24))


def test_given_the_most_tags_allowed_when_loaded_then_ours_still_fit_within_50() -> None:
    ok = {f"k{i}": "v" for i in range(45)}
    assert len(load_settings(env(ENI_TAGS=json.dumps(ok))).extra_tags) == 45
    with pytest.raises(ConfigurationError, match="5 are ours"):
        load_settings(env(ENI_TAGS=json.dumps({**ok, "one-more": "v"})))


def test_given_no_creation_time_when_tagging_then_there_is_no_created_at_tag() -> None:
    # An event without a time: any value would differ between deliveries of one launch (same client token).
    tags = load_settings(env()).tags_for("i-0123456789abcdef0", SUBNET_A, created_at=None)
    assert CREATED_AT_TAG not in tags
    assert tags[OWNER_TAG] == "multus-ipam"
