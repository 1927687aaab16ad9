"""Load the sample events in events/ (the same files users give to `sam local invoke -e`)."""

import copy
import json
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str, **detail: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    event = copy.deepcopy(event)
    if detail:
        event["detail"].update(detail)
    return event
