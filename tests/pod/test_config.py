"""Settings come from environment variables, validated at start; each error names the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Address, IPv6Address

import pytest

from pod_ip_manager.config import EniLookup, Mode, load_settings
from pod_ip_manager.ec2 import ec2_client
from pod_ip_manager.errors import ConfigurationError


def test_given_only_a_mode_when_loading_then_the_documented_defaults_apply() -> None:
    settings = load_settings({}, "init")
    assert settings.mode is Mode.INIT
    assert settings.primary_interface == "eth0"
    assert settings.expected_count == 1
    assert settings.wait_seconds == 60
    assert settings.release_on_exit is True
    assert settings.imds_endpoint == "http://169.254.169.254"


def test_given_interface_names_when_loading_then_they_are_split_and_counted() -> None:
    settings = load_settings({"PIM_MODE": "sidecar", "PIM_INTERFACES": " net1, net2 ,"})
    assert settings.interfaces == ("net1", "net2")
    assert settings.expected_count == 2


def test_given_floating_ips_when_loading_then_both_families_are_parsed() -> None:
    settings = load_settings({"PIM_FLOATING_IPS": " 10.0.4.250, 2600:1f14::250 "}, "sidecar")
    assert settings.floating_ips == (IPv4Address("10.0.4.250"), IPv6Address("2600:1f14::250"))


def test_given_no_pim_region_when_aws_region_is_set_then_it_is_used() -> None:
    assert load_settings({"AWS_REGION": "eu-west-1"}, "init").region == "eu-west-1"


@pytest.mark.parametrize(
    ("env", "argument", "variable", "fragment"),
    [
        ({}, None, "PIM_MODE", "is required"),
        ({"PIM_MODE": "daemon"}, None, "PIM_MODE", "'daemon'"),
        ({"PIM_MODE": "init"}, "sidecar", "PIM_MODE", "command line says 'sidecar'"),
        ({"PIM_WAIT_SECONDS": "-1"}, "init", "PIM_WAIT_SECONDS", "greater than or equal to 0"),
        ({"PIM_WAIT_SECONDS": "soon"}, "init", "PIM_WAIT_SECONDS", "'soon'"),
        ({"PIM_RELEASE_ON_EXIT": "maybe"}, "sidecar", "PIM_RELEASE_ON_EXIT", "'maybe'"),
        ({"PIM_INTERFACES": "net1,net1"}, "init", "PIM_INTERFACES", "same interface twice"),
        ({"PIM_INTERFACES": "eth0"}, "init", "PIM_INTERFACES", "primary interface eth0"),
        ({"PIM_INTERFACES": "a/b"}, "init", "PIM_INTERFACES", "not a Linux interface name"),
        ({"PIM_INTERFACES": "net1", "PIM_EXPECTED_INTERFACE_COUNT": "2"}, "init", "PIM_EXPECTED_INTERFACE_COUNT", ""),
        ({"PIM_IMDS_ENDPOINT": "https://169.254.169.254"}, "init", "PIM_IMDS_ENDPOINT", "http://host[:port]"),
        ({"PIM_RETRY_MAX_SECONDS": "0.01"}, "init", "PIM_RETRY_MAX_SECONDS", "below PIM_RETRY_BASE_SECONDS"),
        ({"PIM_MAX_ATTEMPTS": "0"}, "init", "PIM_MAX_ATTEMPTS", "greater than or equal to 1"),
        ({"PIM_LOG_LEVEL": "chatty"}, "init", "PIM_LOG_LEVEL", "'chatty'"),
        ({"PIM_READY_FILE": "run/ready"}, "sidecar", "PIM_READY_FILE", "'run/ready'"),
        ({"PIM_FLOATING_IPS": "10.0.4.250,vip"}, "sidecar", "PIM_FLOATING_IPS", "'10.0.4.250,vip'"),
        ({"AWS_REGION": "moon-base"}, "init", "AWS_REGION", "'moon-base'"),
    ],
)
def test_given_a_bad_variable_when_loading_then_the_error_names_it(
    env: dict[str, str], argument: str | None, variable: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env, argument)
    assert caught.value.variable == variable
    assert fragment in str(caught.value)
    assert caught.value.exit_code == 2


def test_given_a_bad_variable_when_the_module_runs_as_a_program_then_exit_2_with_one_json_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pod_ip_manager", "init"],
        env={"PATH": os.environ.get("PATH", ""), "PIM_WAIT_SECONDS": "later"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["message"].startswith("PIM_WAIT_SECONDS: 'later'")


def test_given_no_eni_lookup_when_loading_then_imds_and_no_ec2_endpoint_are_the_defaults() -> None:
    settings = load_settings({}, "init")
    assert settings.eni_lookup is EniLookup.IMDS
    assert settings.ec2_endpoint is None


def test_given_ec2_lookup_with_aws_region_when_loading_then_ec2_is_chosen() -> None:
    settings = load_settings({"PIM_ENI_LOOKUP": "EC2", "AWS_REGION": "us-east-1"}, "sidecar")
    assert (settings.eni_lookup, settings.region) == (EniLookup.EC2, "us-east-1")


def test_given_an_unknown_eni_lookup_when_loading_then_the_error_names_the_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"PIM_ENI_LOOKUP": "dns", "AWS_REGION": "us-east-1"}, "init")
    assert caught.value.variable == "PIM_ENI_LOOKUP"


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({"PIM_EC2_ENDPOINT": "https://ec2.us-east-1.amazonaws.com/"}, "https://ec2.us-east-1.amazonaws.com"),
        ({"AWS_ENDPOINT_URL_EC2": "https://vpce-0a1b.ec2.us-east-1.vpce.amazonaws.com"}, None),
        (
            {"PIM_EC2_ENDPOINT": "https://ec2-fips.us-east-1.amazonaws.com", "AWS_ENDPOINT_URL_EC2": "http://x:1"},
            "https://ec2-fips.us-east-1.amazonaws.com",
        ),
    ],
    ids=["pim", "aws-endpoint-url-ec2", "pim-wins"],
)
def test_given_an_ec2_endpoint_when_loading_then_pim_ec2_endpoint_then_aws_endpoint_url_ec2_is_used(
    env: dict[str, str], endpoint: str | None
) -> None:
    settings = load_settings(env, "init")
    assert settings.ec2_endpoint == (endpoint or env["AWS_ENDPOINT_URL_EC2"])


@pytest.mark.parametrize("variable", ["PIM_EC2_ENDPOINT", "AWS_ENDPOINT_URL_EC2"])
def test_given_a_malformed_ec2_endpoint_when_loading_then_the_error_names_the_variable_it_came_from(
    variable: str,
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({variable: "ec2.us-east-1.amazonaws.com"}, "init")
    assert caught.value.variable == variable
    assert "https://host[:port]" in str(caught.value)


def test_given_an_ec2_endpoint_when_the_client_is_built_then_it_calls_that_endpoint() -> None:
    client = ec2_client("us-east-1", "https://vpce-0a1b.ec2.us-east-1.vpce.amazonaws.com")
    assert client.meta.endpoint_url == "https://vpce-0a1b.ec2.us-east-1.vpce.amazonaws.com"
    assert ec2_client("us-east-1").meta.endpoint_url.startswith("https://ec2.us-east-1.")
