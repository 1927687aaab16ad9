from collections.abc import Iterator

import pytest

from localaws import LocalAWS, Realism
from tests.handlers.world import World, build_world


@pytest.fixture
def aws() -> Iterator[LocalAWS]:
    # TEMPORARY: the ideal local AWS until the engine copes with the realistic one (issue 8, part B).
    with LocalAWS(region="us-east-1", realism=Realism.ideal()) as local:
        yield local


@pytest.fixture
def world(aws: LocalAWS) -> World:
    return build_world(aws)
