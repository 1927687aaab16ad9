"""`make demo` is the README's first command: it must keep working end to end."""

import os
from collections.abc import Iterator

import pytest

from demo.__main__ import main
from functions.cidr_reservation import app as cidr_app
from functions.static_ip import app as static_app


@pytest.fixture
def isolated_functions() -> Iterator[None]:
    """The demo configures the functions through the environment, as Lambda does; undo that afterwards."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    static_app.ENTRY.reset()
    cidr_app.ENTRY.reset()


@pytest.mark.usefixtures("isolated_functions")
def test_given_the_demo_when_run_then_both_modes_scale_without_leaks_or_pod_range_workers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main() == 0
    out = capsys.readouterr().out
    assert out.count("6 x completed CONTINUE") == 2
    assert out.count("0 leaked, 0 in a pod range") == 2
    assert "already-completed" in out
    assert "ABANDON after rollback" in out
    assert "all good" in out
