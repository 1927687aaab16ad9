"""Configuration: validated once, every problem names the variable."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
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


def test_given_only_the_required_variables_when_loaded_then_every_tuning_has_its_documented_default() -> None:
    settings = load_settings(env())
    assert settings.group_name == "multus-workers"
    assert settings.hook_names == {"multus-launch", "multus-terminate"}
    assert (settings.aws_max_attempts, settings.max_address_attempts) == (10, 8)
    assert (settings.safety_margin_seconds, settings.detach_timeout_seconds) == (30, 60)
    assert (settings.hook_heartbeat_timeout_seconds, settings.retry_delay_seconds) == (600, 210)
    assert (settings.max_receive_count, settings.lost_event_grace_seconds) == (5, 120)
    assert settings.disable_source_dest_check is False
    assert settings.owner == "multus-ipam"


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


SUBNET_IDS_FORM = "comma-separated subnet ids, in attachment order"
GROUPS_FORM = "one security group id for all subnets, or one per subnet in MULTUS_SUBNET_IDS order"
TAGS_FORM = 'a JSON object of string tags, e.g. {"team": "ims"}'
BOUNDS_FORM = "comma-separated subnet-id=IPv4 address, e.g. subnet-0abc...=10.0.4.63"
INDEXES_FORM = "comma-separated subnet-id=index with index 1 or more, e.g. subnet-0abc...=1"
RESERVATIONS_FORM = "comma-separated subnet-id=CIDR (a subnet may appear more than once)"
SUBNET_C = "subnet-0ccccccccccccccccc"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MULTUS_SUBNET_IDS": "<unset>"}, f"MULTUS_SUBNET_IDS: is required (expected {SUBNET_IDS_FORM})"),
        ({"MULTUS_SECURITY_GROUP_IDS": ""}, f"MULTUS_SECURITY_GROUP_IDS: is required (expected {GROUPS_FORM})"),
        (
            {"AUTOSCALING_GROUP_NAME": "<unset>"},
            "AUTOSCALING_GROUP_NAME: is required (expected the name of the Auto Scaling group this function serves)",
        ),
        ({"AUTOSCALING_GROUP_NAME": "bad*name"}, "AUTOSCALING_GROUP_NAME: 'bad*name' is not a valid group name"),
        # Every EKS managed node group's group holds EKS's own hooks: without our names we could complete theirs.
        (
            {"LIFECYCLE_HOOK_NAMES": "<unset>"},
            "LIFECYCLE_HOOK_NAMES: required: the names of the hooks this function completes (expected hook-a,hook-b)",
        ),
        (
            {"LIFECYCLE_HOOK_NAMES": " , "},
            "LIFECYCLE_HOOK_NAMES: required: the names of the hooks this function completes (expected hook-a,hook-b)",
        ),
        ({"LIFECYCLE_HOOK_NAMES": "ours,bad*hook"}, "LIFECYCLE_HOOK_NAMES: 'bad*hook' is not a valid hook name"),
        (
            {"MULTUS_SUBNET_IDS": "subnet-xyz"},
            f"MULTUS_SUBNET_IDS: 'subnet-xyz' is not a valid id (expected {SUBNET_IDS_FORM})",
        ),
        (
            {"MULTUS_SUBNET_IDS": f"{SUBNET_A},{SUBNET_A}"},
            f"MULTUS_SUBNET_IDS: lists the same id twice (expected {SUBNET_IDS_FORM})",
        ),
        (
            {"MULTUS_SECURITY_GROUP_IDS": "sg-nope"},
            f"MULTUS_SECURITY_GROUP_IDS: 'sg-nope' is not a valid id (expected {GROUPS_FORM})",
        ),
        (
            {"MULTUS_SECURITY_GROUP_IDS": f"{SG_1},{SG_2},sg-03333333333333333"},
            f"MULTUS_SECURITY_GROUP_IDS: has 3 ids for 2 subnets (expected {GROUPS_FORM})",
        ),
        (
            {"ENI_TAGS": "{not json"},
            f"ENI_TAGS: is not valid JSON (Expecting property name enclosed in double quotes) (expected {TAGS_FORM})",
        ),
        ({"ENI_TAGS": '{"a": 1}'}, f"ENI_TAGS: must map tag keys to string values (expected {TAGS_FORM})"),
        ({"ENI_TAGS": '["a"]'}, f"ENI_TAGS: must map tag keys to string values (expected {TAGS_FORM})"),
        ({"ENI_TAGS": '{"aws:x": "y"}'}, f"ENI_TAGS: tag 'aws:x' uses the reserved aws: prefix (expected {TAGS_FORM})"),
        (
            {"ENI_TAGS": '{"node.k8s.amazonaws.com/no_manage": "false"}'},
            "ENI_TAGS: tag 'node.k8s.amazonaws.com/no_manage' is set by this function and cannot be overridden"
            f" (expected {TAGS_FORM})",
        ),
        (
            {"ENI_TAGS": '{"multus-ipam:created-at": "x"}'},
            "ENI_TAGS: tag 'multus-ipam:created-at' is set by this function and cannot be overridden"
            f" (expected {TAGS_FORM})",
        ),
        (
            {"ENI_TAGS": '{"": "v"}'},
            f"ENI_TAGS: tag '' exceeds EC2's limits (key 128, value 256) (expected {TAGS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}=banana"},
            f"WORKER_IP_UPPER_BOUNDS: 'banana' is not an IP address (expected {BOUNDS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}=2001:db8::1"},
            f"WORKER_IP_UPPER_BOUNDS: 2001:db8::1 is not an IPv4 address (expected {BOUNDS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_C}=10.0.0.9"},
            f"WORKER_IP_UPPER_BOUNDS: '{SUBNET_C}' is not one of MULTUS_SUBNET_IDS (expected {BOUNDS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": "10.0.0.9"},
            f"WORKER_IP_UPPER_BOUNDS: entry '10.0.0.9' is not subnet-id=value (expected {BOUNDS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}="},
            f"WORKER_IP_UPPER_BOUNDS: entry '{SUBNET_A}=' is not subnet-id=value (expected {BOUNDS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}=10.0.4.9=x"},
            f"WORKER_IP_UPPER_BOUNDS: '10.0.4.9=x' is not an IP address (expected {BOUNDS_FORM})",
        ),
        (
            {"WORKER_IP_UPPER_BOUNDS": f"{SUBNET_A}=10.0.4.9,{SUBNET_A}=10.0.4.10"},
            f"WORKER_IP_UPPER_BOUNDS: {SUBNET_A} is listed twice (expected {BOUNDS_FORM})",
        ),
        (
            {"DEVICE_INDEXES": f"{SUBNET_A}=0"},
            f"DEVICE_INDEXES: '0' is not a device index of 1 or more (expected {INDEXES_FORM})",
        ),
        (
            {"DEVICE_INDEXES": f"{SUBNET_A}=one"},
            f"DEVICE_INDEXES: 'one' is not a device index of 1 or more (expected {INDEXES_FORM})",
        ),
        (
            {"DEVICE_INDEXES": f"{SUBNET_A}=1,{SUBNET_A}=2"},
            f"DEVICE_INDEXES: {SUBNET_A} is listed twice (expected {INDEXES_FORM})",
        ),
        ({"NETWORK_CARD_INDEX": "x"}, "NETWORK_CARD_INDEX: 'x' is not an integer (expected an integer from 0 to 15)"),
        ({"NETWORK_CARD_INDEX": "16"}, "NETWORK_CARD_INDEX: 16 is out of range (expected an integer from 0 to 15)"),
        ({"NETWORK_CARD_INDEX": "-1"}, "NETWORK_CARD_INDEX: -1 is out of range (expected an integer from 0 to 15)"),
        (
            {"FAILURE_RESULT": "RETRY"},
            "FAILURE_RESULT: 'RETRY' is not a lifecycle result (expected ABANDON or CONTINUE)",
        ),
        (
            {"DISABLE_SOURCE_DEST_CHECK": "maybe"},
            "DISABLE_SOURCE_DEST_CHECK: 'maybe' is not a boolean (expected true or false)",
        ),
        (
            {"POD_CIDR_RESERVATIONS": f"{SUBNET_B}=10.0.0.0/33"},
            f"POD_CIDR_RESERVATIONS: '10.0.0.0/33' is not a CIDR block (expected {RESERVATIONS_FORM})",
        ),
        (
            {"POD_CIDR_RESERVATIONS": f"{SUBNET_C}=10.0.0.0/24"},
            f"POD_CIDR_RESERVATIONS: '{SUBNET_C}' is not one of MULTUS_SUBNET_IDS (expected {RESERVATIONS_FORM})",
        ),
        (
            {"ORPHAN_MIN_AGE_SECONDS": "59"},
            "ORPHAN_MIN_AGE_SECONDS: 59 is out of range (expected an integer from 60 to 86400)",
        ),
        (
            {"ORPHAN_MIN_AGE_SECONDS": "86401"},
            "ORPHAN_MIN_AGE_SECONDS: 86401 is out of range (expected an integer from 60 to 86400)",
        ),
        (
            {"ORPHAN_MIN_AGE_SECONDS": "ten minutes"},
            "ORPHAN_MIN_AGE_SECONDS: 'ten minutes' is not an integer (expected an integer from 60 to 86400)",
        ),
        ({"OWNER_ID": "o" * 257}, "OWNER_ID: must be 1 to 256 characters (it becomes a tag value)"),
        (
            {"DEVICE_INDEXES": "1"},
            f"DEVICE_INDEXES: entry '1' is not subnet-id=value (expected {INDEXES_FORM})",
        ),
        (
            {"ENI_TAGS": json.dumps({f"k{i}": "v" for i in range(46)})},
            f"ENI_TAGS: too many tags: EC2 allows 50 per resource, 5 are ours (expected {TAGS_FORM})",
        ),
    ],
)
def test_given_a_bad_value_when_loaded_then_the_error_names_the_variable_and_the_accepted_form(
    overrides: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env(**overrides))
    assert str(caught.value) == message
    assert caught.value.variable == message.partition(":")[0]


@pytest.mark.parametrize(
    ("variable", "lowest", "highest"),
    [
        ("NETWORK_CARD_INDEX", 0, 15),
        ("AWS_MAX_ATTEMPTS", 1, 30),
        ("MAX_ADDRESS_ATTEMPTS", 1, 100),
        ("SAFETY_MARGIN_SECONDS", 5, 600),
        ("DETACH_TIMEOUT_SECONDS", 5, 600),
        ("ORPHAN_MIN_AGE_SECONDS", 60, 86400),
        ("HOOK_HEARTBEAT_TIMEOUT_SECONDS", 30, 7200),
        ("RETRY_DELAY_SECONDS", 0, 43_200),
        ("MAX_RECEIVE_COUNT", 1, 1000),
        ("LOST_EVENT_GRACE_SECONDS", 30, 3600),
    ],
)
def test_given_an_integer_at_either_end_of_its_range_when_loaded_then_it_is_accepted(
    variable: str, lowest: int, highest: int
) -> None:
    attribute = variable.lower()
    for value in (lowest, highest):
        assert getattr(load_settings(env(**{variable: f" {value} "})), attribute) == value
    for value in (lowest - 1, highest + 1):
        with pytest.raises(ConfigurationError, match=f"^{variable}: {value} is out of range"):
            load_settings(env(**{variable: str(value)}))


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("1", True), (" Yes ", True), ("TRUE", True)])
def test_given_a_true_spelling_when_loaded_then_the_flag_is_on(raw: str, expected: bool) -> None:
    assert load_settings(env(DISABLE_SOURCE_DEST_CHECK=raw)).disable_source_dest_check is expected


@pytest.mark.parametrize("raw", ["false", "0", "no", "FALSE", " No "])
def test_given_a_false_spelling_when_loaded_then_the_flag_is_off(raw: str) -> None:
    assert load_settings(env(DISABLE_SOURCE_DEST_CHECK=raw)).disable_source_dest_check is False


def test_given_tags_at_ec2s_limits_when_loaded_then_they_are_accepted_and_one_more_character_is_not() -> None:
    at_limits = {"k": "v" * 256, "k" * 128: ""}
    assert load_settings(env(ENI_TAGS=json.dumps(at_limits))).extra_tags == at_limits
    for too_long in ({"k" * 129: "v"}, {"k": "v" * 257}):
        with pytest.raises(ConfigurationError, match="exceeds EC2's limits"):
            load_settings(env(ENI_TAGS=json.dumps(too_long)))


def test_given_an_owner_id_of_one_or_256_characters_when_loaded_then_it_is_the_owner_tag() -> None:
    for owner in ("o", "o" * 256):
        assert load_settings(env(OWNER_ID=owner)).owner == owner
    assert load_settings(env(OWNER_ID="  ")).owner == "multus-ipam"


def test_given_device_index_1_when_loaded_then_it_is_accepted() -> None:
    assert load_settings(env(DEVICE_INDEXES=f"{SUBNET_A}=1")).device_indexes == {SUBNET_A: 1}


def test_given_a_creation_time_when_tagging_then_it_is_iso_8601_utc_to_the_second() -> None:
    settings = load_settings(env())
    moment = datetime(2026, 11, 24, 11, 0, 0, 999_999, tzinfo=UTC)
    tags = settings.tags_for("i-0123456789abcdef0", SUBNET_A, created_at=moment)
    assert tags[CREATED_AT_TAG] == "2026-11-24T11:00:00Z"
    assert parse_created_at(tags[CREATED_AT_TAG]) == moment.replace(microsecond=0)


def test_given_a_naive_creation_time_when_tagging_then_it_is_refused() -> None:
    settings = load_settings(env())
    with pytest.raises(ValueError, match=r"^created-at must be timezone-aware$"):
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


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine's local time zone is not UTC (a developer's laptop; Lambda's is UTC)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_not_utc")
def test_given_a_local_time_zone_when_tagging_and_reading_back_then_the_created_at_is_utc() -> None:
    settings = load_settings(env())
    moment = datetime(2026, 11, 24, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert settings.tags_for("i-0123456789abcdef0", SUBNET_A, created_at=moment)[CREATED_AT_TAG] == (
        "2026-11-24T10:00:00Z"
    )
    read = parse_created_at("2026-11-24T12:00:00+02:00")
    assert read == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert read is not None
    assert read.utcoffset() == timedelta(0)
    assert read.tzname() == "UTC"


@pytest.mark.usefixtures("local_time_not_utc")
def test_given_a_created_at_without_a_zone_when_read_then_it_is_taken_as_utc() -> None:
    read = parse_created_at("2026-11-24T10:00:00")
    assert read == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    assert read is not None
    assert read.tzinfo is UTC


@pytest.mark.parametrize("value", [None, "", "yesterday"])
def test_given_a_missing_or_unreadable_created_at_when_read_then_none(value: str | None) -> None:
    assert parse_created_at(value) is None
