"""The handler tests run on the realistic local AWS: strict parameters, latency, throttling, visibility lag,
asynchronous attachments and each node's VPC CNI, on the local AWS clock.

The draws (latency, lag, attach times, backoff jitter, the addresses EC2 picks, moto's ids) come from one seed
per run, printed with every failure: rerun with ``LOCALAWS_SEED=<seed>`` to get the same run back.
"""

from __future__ import annotations

import os
import random
from collections.abc import Generator, Iterator

import pytest

from localaws import LocalAWS
from tests.handlers.world import World, build_world

SEED = int(os.environ.get("LOCALAWS_SEED") or random.SystemRandom().randrange(2**31))
_SEED_KEY = pytest.StashKey[int]()


@pytest.fixture
def aws(request: pytest.FixtureRequest) -> Iterator[LocalAWS]:
    request.node.stash[_SEED_KEY] = SEED
    with LocalAWS(region="us-east-1", seed=SEED) as local:
        yield local


@pytest.fixture
def world(aws: LocalAWS) -> World:
    return build_world(aws)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _SEED_KEY in item.stash:
        seed = item.stash[_SEED_KEY]
        report.sections.append(("local AWS seed", f"{seed} (rerun with LOCALAWS_SEED={seed})"))
    return report
