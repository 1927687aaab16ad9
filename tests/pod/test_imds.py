"""The IMDSv2 adapter against the local IMDS: token dance, per-MAC ENI data, live after an assignment."""

from __future__ import annotations

import random
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address

import pytest

from localaws.imds import LocalImds
from pod_ip_manager.errors import MetadataError
from pod_ip_manager.imds import Imds
from tests.pod.conftest import REGION, World


def test_given_the_local_imds_when_reading_enis_then_each_mac_maps_to_its_eni_device_and_subnet(
    world: World, imds: LocalImds
) -> None:
    enis = {eni.eni_id: eni for eni in Imds(imds.endpoint, timeout_seconds=2).enis()}
    assert enis[world.primary_eni].device_number == 0
    assert (enis[world.eni_a].device_number, enis[world.eni_a].mac) == (1, world.mac_a)
    assert enis[world.eni_a].subnet_ipv4 == IPv4Network("10.0.4.0/24")
    assert [str(n) for n in enis[world.eni_a].subnet_ipv6] == [world.ipv6_a]
    assert enis[world.eni_b].subnet_ipv6 == ()
    assert imds.requests[0].path == "/latest/api/token"


def test_given_an_assignment_in_ec2_when_reading_imds_then_local_ipv4s_and_ipv6s_show_it(
    world: World, imds: LocalImds
) -> None:
    world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.eni_a, PrivateIpAddresses=["10.0.4.200"])
    world.ec2.assign_ipv6_addresses(NetworkInterfaceId=world.eni_a, Ipv6Addresses=[world.v6(0x200)])
    eni = next(e for e in Imds(imds.endpoint, timeout_seconds=2).enis() if e.eni_id == world.eni_a)
    assert IPv4Address("10.0.4.200") in eni.ipv4s
    assert eni.ipv6s == {IPv6Address(world.v6(0x200))}


def test_given_a_stale_imds_when_ec2_assigns_then_imds_keeps_the_old_list_until_released(
    world: World, imds: LocalImds
) -> None:
    client = Imds(imds.endpoint, timeout_seconds=2)
    with imds.stale():
        world.ec2.assign_private_ip_addresses(NetworkInterfaceId=world.eni_a, PrivateIpAddresses=["10.0.4.201"])
        assert IPv4Address("10.0.4.201") not in next(e for e in client.enis() if e.eni_id == world.eni_a).ipv4s
    assert IPv4Address("10.0.4.201") in next(e for e in client.enis() if e.eni_id == world.eni_a).ipv4s


def test_given_no_token_when_getting_metadata_then_imds_answers_401(imds: LocalImds) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(imds.endpoint + "/latest/meta-data/instance-id", timeout=2)  # noqa: S310
    assert caught.value.code == 401


def test_given_a_token_request_without_ttl_then_imds_answers_400(imds: LocalImds) -> None:
    request = urllib.request.Request(imds.endpoint + "/latest/api/token", method="PUT")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=2)  # noqa: S310
    assert caught.value.code == 400


def test_given_the_region_path_then_the_adapter_reads_the_region(imds: LocalImds) -> None:
    assert Imds(imds.endpoint, timeout_seconds=2).region() == REGION


def test_given_nothing_listening_when_reading_then_the_error_says_the_connection_was_refused_not_the_hop_limit() -> (
    None
):
    with pytest.raises(MetadataError, match=re.escape("connection to http://127.0.0.1:9 refused")) as caught:
        Imds("http://127.0.0.1:9", timeout_seconds=0.2, attempts=1).enis()
    assert "HopLimit" not in str(caught.value)


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never answers: what a pod sees when the
    instance's hop limit drops IMDS's answers one hop short."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_given_no_answer_to_the_token_request_then_the_error_says_timeout_and_names_the_hop_limit_and_ec2_lookup(
    silent_endpoint: str,
) -> None:
    with pytest.raises(MetadataError) as caught:
        Imds(silent_endpoint, timeout_seconds=0.2, attempts=2, sleep=lambda _s: None).region()
    message = str(caught.value)
    assert message.startswith("IMDSv2 token request (PUT api/token): no answer from IMDS")
    assert "(timeout)" in message
    assert "HttpPutResponseHopLimit of 1" in message
    assert "PIM_ENI_LOOKUP=ec2" in message
    assert caught.value.exit_code == 6


def test_given_5xx_on_every_attempt_then_the_error_says_imds_is_failing_not_the_hop_limit(imds: LocalImds) -> None:
    imds.fail(500, times=3)
    with pytest.raises(MetadataError) as caught:
        Imds(imds.endpoint, timeout_seconds=2, attempts=3, sleep=lambda _s: None).region()
    message = str(caught.value)
    assert "HTTP 500 Internal Server Error to each of 3 attempt(s)" in message
    assert "the metadata service itself is failing" in message
    assert "HopLimit" not in message


@pytest.mark.parametrize(
    ("status", "meaning"),
    [(403, "turned off for this instance"), (400, "malformed"), (404, "no such path")],
    ids=["403", "400", "404"],
)
def test_given_the_token_request_refused_then_the_error_names_the_status_and_what_it_means(
    imds: LocalImds, status: int, meaning: str
) -> None:
    imds.fail_tokens(status)
    with pytest.raises(MetadataError) as caught:
        Imds(imds.endpoint, timeout_seconds=2).region()
    message = str(caught.value)
    assert message.startswith(f"IMDSv2 token request (PUT api/token): HTTP {status} ")
    assert meaning in message
    assert "HopLimit" not in message


def test_given_a_required_path_missing_then_it_is_a_metadata_error_naming_it_not_a_crash(imds: LocalImds) -> None:
    imds.fail(404)
    with pytest.raises(MetadataError, match="GET meta-data/placement/region: HTTP 404 Not Found") as caught:
        Imds(imds.endpoint, timeout_seconds=2).region()
    assert caught.value.exit_code == 6


def test_given_403_on_a_metadata_read_then_the_error_says_imds_refuses_it(imds: LocalImds) -> None:
    imds.fail(403)
    with pytest.raises(MetadataError, match=r"GET meta-data/placement/region: HTTP 403 Forbidden: IMDS refuses"):
        Imds(imds.endpoint, timeout_seconds=2).region()


def test_given_401_even_with_a_fresh_token_when_reading_then_it_is_a_metadata_error(imds: LocalImds) -> None:
    imds.fail(401, times=2)
    with pytest.raises(MetadataError, match="HTTP 401 Unauthorized even with a fresh token") as caught:
        Imds(imds.endpoint, timeout_seconds=2).region()
    assert caught.value.exit_code == 6
    assert [r.path for r in imds.requests].count("/latest/api/token") == 2


def test_given_one_401_when_reading_then_a_fresh_token_is_fetched_and_the_read_succeeds(imds: LocalImds) -> None:
    imds.fail(401)
    assert Imds(imds.endpoint, timeout_seconds=2).region() == REGION


def test_given_5xx_answers_when_reading_then_it_backs_off_with_jitter_before_each_retry(imds: LocalImds) -> None:
    imds.fail(503, times=2)
    slept: list[float] = []
    metadata = Imds(imds.endpoint, timeout_seconds=2, attempts=3, sleep=slept.append, rng=random.Random(3))

    assert metadata.region() == REGION
    assert len(slept) == 2
    assert 0 < slept[0] <= 0.1
    assert 0 < slept[1] <= 0.2
