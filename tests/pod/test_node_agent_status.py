"""The node agent's settings, health (on an injected clock) and metrics."""

from __future__ import annotations

import io
import json
import socket

import pytest

from pod_ip_manager.app import main
from pod_ip_manager.config import Mode, load_settings
from pod_ip_manager.errors import ConfigurationError
from pod_ip_manager.status import LIVENESS_STALE_SECONDS, Status


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_given_only_the_mode_then_the_node_agents_documented_defaults_apply() -> None:
    settings = load_settings({}, "node-agent")
    assert settings.mode is Mode.NODE_AGENT
    assert settings.netns_dir == "/var/run/netns"
    assert settings.resync_seconds == 120
    assert settings.status_bind == ("0.0.0.0", 9580)  # noqa: S104 - hostNetwork: the kubelet probes the node IP


def test_given_an_ipv6_status_address_then_it_is_split_without_brackets() -> None:
    assert load_settings({"PIM_STATUS_ADDRESS": "[::]:9580"}, "node-agent").status_bind == ("::", 9580)


@pytest.mark.parametrize(
    ("env", "variable", "fragment"),
    [
        ({"PIM_RESYNC_SECONDS": "0"}, "PIM_RESYNC_SECONDS", "greater than or equal to 1"),
        ({"PIM_RESYNC_SECONDS": "often"}, "PIM_RESYNC_SECONDS", "'often'"),
        ({"PIM_STATUS_ADDRESS": "9580"}, "PIM_STATUS_ADDRESS", "is not host:port"),
        ({"PIM_STATUS_ADDRESS": "::1:9580"}, "PIM_STATUS_ADDRESS", "is not host:port"),
        ({"PIM_STATUS_ADDRESS": "0.0.0.0:99999"}, "PIM_STATUS_ADDRESS", "is not host:port"),
        ({"PIM_NETNS_DIR": "var/run/netns"}, "PIM_NETNS_DIR", "'var/run/netns'"),
        ({"PIM_ENI_LOOKUP": "ec2", "AWS_REGION": "eu-west-1"}, "PIM_ENI_LOOKUP", "reads IMDS on the host network"),
    ],
)
def test_given_a_bad_node_agent_variable_then_the_error_names_it(
    env: dict[str, str], variable: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env, "node-agent")
    assert caught.value.variable == variable
    assert fragment in str(caught.value)
    assert caught.value.exit_code == 2


def test_given_a_status_address_already_taken_when_the_agent_starts_then_exit_2_naming_the_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = io.StringIO()
        env = {"PIM_REGION": "eu-west-1", "PIM_STATUS_ADDRESS": f"127.0.0.1:{port}"}
        assert main(["node-agent"], env, out=out) == 2
    record = json.loads(out.getvalue().splitlines()[-1])
    assert record["message"].startswith(f"PIM_STATUS_ADDRESS: cannot listen on 127.0.0.1:{port}")


def test_given_the_loop_beats_then_it_is_alive_until_it_has_been_silent_for_the_bound() -> None:
    clock = FakeClock()
    status = Status(clock=clock)
    status.beat()
    clock.now += LIVENESS_STALE_SECONDS
    assert status.alive()
    clock.now += 1
    assert not status.alive()
    status.beat()
    assert status.alive()


def test_given_resyncs_then_ready_only_after_one_succeeded() -> None:
    status = Status(clock=FakeClock(), wall=lambda: 1_700_000_000.0)
    status.resynced(ok=False)
    assert not status.ready()
    status.resynced(ok=True)
    assert status.ready()
    status.resynced(ok=False)
    assert status.ready()  # once ready, a later failure is counted, not a reason to take the node out


def test_given_counts_then_the_metrics_are_prometheus_text() -> None:
    status = Status(clock=FakeClock(), wall=lambda: 1_700_000_000.0)
    status.assigned(3)
    status.unassigned()
    status.error("RequestLimitExceeded")
    status.error("RequestLimitExceeded")
    status.skipped("outside_subnet")
    status.set_skipped_now({"outside_subnet": 1})
    status.set_namespaces(4)
    status.resynced(ok=True)
    lines = status.render().splitlines()
    for sample in (
        "pim_assignments_total 3",
        "pim_unassignments_total 1",
        'pim_errors_total{kind="RequestLimitExceeded"} 2',
        'pim_skips_total{reason="outside_subnet"} 1',
        'pim_skipped_addresses{reason="outside_subnet"} 1',
        "pim_namespaces_watched 4",
        'pim_resyncs_total{result="ok"} 1',
        "pim_last_resync_timestamp_seconds 1.7e+09",
        "pim_ready 1",
        "# TYPE pim_assignments_total counter",
        "# TYPE pim_namespaces_watched gauge",
    ):
        assert sample in lines, sample
