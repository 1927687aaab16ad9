"""Time on the realistic local AWS, for handler tests: the engine's clock on the local AWS clock, and waiting
until what was just created is visible to describes."""

from __future__ import annotations

from tests.handlers.world import FakeClock, World


def engine_clock(world: World) -> FakeClock:
    """The engine's clock, following the local AWS clock: its waits let visibility lag and attachments move on."""
    return FakeClock(follow=world.aws.clock)


def settle(world: World) -> None:
    """Let the visibility lag of everything created so far pass (the test's own describes see it then)."""
    world.aws.clock.advance(world.aws.realism.visibility_lag)
