"""The IMDSv2 adapter against the local IMDS: token dance, per-MAC ENI data, live after an assignment."""

from __future__ import annotations

import random
import urllib.error
import urllib.request
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


def test_given_nothing_listening_when_reading_then_metadata_error_mentions_the_hop_limit() -> None:
    with pytest.raises(MetadataError, match="HttpPutResponseHopLimit"):
        Imds("http://127.0.0.1:9", timeout_seconds=0.2, attempts=1).enis()


def test_given_401_even_with_a_fresh_token_when_reading_then_it_is_a_metadata_error(imds: LocalImds) -> None:
    imds.fail(401, times=2)
    with pytest.raises(MetadataError, match="HTTP 401 even with a fresh token") as caught:
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
