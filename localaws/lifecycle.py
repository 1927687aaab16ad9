"""Auto Scaling lifecycle actions (placeholder; filled in by the lifecycle commit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from localaws._session import Session


@dataclass(frozen=True)
class LifecycleAction:
    group: str
    hook: str
    instance_id: str
    token: str
    transition: str
    origin: str
    destination: str
    deadline: datetime


@dataclass(frozen=True)
class LifecycleResult:
    group: str
    hook: str
    instance_id: str
    token: str
    result: str
    by: str


@dataclass(frozen=True)
class RejectedCompletion:
    group: str
    hook: str
    instance_id: str | None
    token: str | None
    result: str
    reason: str


class Lifecycle:
    def __init__(self, session: Session) -> None:
        self._session = session
