"""`make demo` is the README's first command: it must keep working end to end, and what it prints must hold."""

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

from demo.__main__ import HOOK_HEARTBEAT_TIMEOUT_SECONDS, LOST_EVENT_GRACE_SECONDS, RECONCILER_EVERY_SECONDS, main


@pytest.fixture(scope="module")
def demo() -> tuple[int, str]:
    """One run of the demo (about ten seconds of wall time) for every check below: its exit status and output."""
    saved = dict(os.environ)  # the demo quiets the functions' logger through the environment, as Lambda would
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            status = main()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return status, out.getvalue()


def test_given_the_demo_when_run_then_it_exits_0_and_says_all_good(demo: tuple[int, str]) -> None:
    status, out = demo
    assert status == 0, out
    assert "all good" in out
    assert "SOMETHING IS WRONG" not in out


def test_given_the_demo_then_each_group_s_burst_of_six_completes_through_the_intake(demo: tuple[int, str]) -> None:
    _, out = demo
    bursts = re.findall(r"results: 6 x CONTINUE; last completion \d\d:\d\d:\d\d, ([\d.]+) s after the launch", out)
    assert len(bursts) == 2
    assert all(0 < float(seconds) < 60 for seconds in bursts)


def test_given_the_demo_then_a_redelivered_launch_event_is_refused_and_changes_nothing(demo: tuple[int, str]) -> None:
    _, out = demo
    assert out.count("refused before any change, the instance is InService") == 2
    assert out.count("created none, the node keeps its 2 ENIs, no lifecycle call") == 2


def test_given_the_demo_then_the_failed_launch_is_rolled_back_abandoned_and_replaced(demo: tuple[int, str]) -> None:
    _, out = demo
    assert re.search(r"ABANDON after rollback at \d\d:\d\d:\d\d \((\d) ENIs created, \1 deleted, 0 left\)", out)
    assert "answered UnauthorizedOperation" in out
    assert re.search(r"permission restored:\n   results: 1 x CONTINUE", out)


def test_given_the_demo_then_a_lost_event_completes_about_two_minutes_later(demo: tuple[int, str]) -> None:
    _, out = demo
    assert "the reconciler queues an event for it, without a token" in out
    found = re.search(r"CONTINUE by instance id: (\d+) s after the launch, (\d+) s before the hook's timeout", out)
    assert found, out
    after, before = int(found[1]), int(found[2])
    # queued at the first reconciler run past the grace period (or the next one), then handled within seconds
    assert LOST_EVENT_GRACE_SECONDS <= after <= LOST_EVENT_GRACE_SECONDS + RECONCILER_EVERY_SECONDS + 30
    assert before > HOOK_HEARTBEAT_TIMEOUT_SECONDS / 2


def test_given_the_demo_then_no_group_leaks_an_eni_or_puts_a_worker_in_a_pod_range(demo: tuple[int, str]) -> None:
    _, out = demo
    assert out.count("ENIs: 8 attached (4 workers x 2 subnets), 0 leaked, 0 in a pod range") == 2
    assert out.count("dead-letter queue: 0 messages") == 2
    assert "!" not in "".join(line for line in out.splitlines() if line.startswith("      ."))


def test_given_the_demo_then_it_ends_with_each_group_s_final_state_and_a_summary_line_per_mode(
    demo: tuple[int, str],
) -> None:
    _, out = demo
    finals = re.findall(
        r"the group (multus-\w+) at the end, after the scale-in and the scenes above:\n(.*?)\n\n", out, re.S
    )
    assert [group for group, _ in finals] == ["multus-static", "multus-cidr"]
    for _, table in finals:
        assert len(re.findall(r"^    i-[0-9a-f]+ .* InService ", table, re.M)) == 4, table
    summary = out.split("summary, one line per mode:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [line.split(":")[0].strip() for line in summary] == ["static", "cidr-reservation"]
    for line in summary:
        assert re.search(
            r"\d+ CONTINUE, \d ABANDON; 8 ENIs on 4 workers, 0 leaked, 0 in a pod range; dead-letter queue 0$", line
        )


def test_given_a_fresh_machine_when_make_installs_then_it_says_it_is_the_first_run_and_how_long() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert "first run: installing the pinned dependencies" in makefile
    assert "about a minute on 2 cores, once" in makefile
