from collections.abc import Iterator

import pytest

from localaws import LocalAWS
from tests.handlers.world import World, build_world


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    with LocalAWS(region="us-east-1") as local:
        yield local


@pytest.fixture
def world(aws: LocalAWS) -> World:
    return build_world(aws)
