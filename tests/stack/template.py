"""template.yaml as plain data (cfn-lint's loader turns !Ref, !Sub, !GetAtt... into their long forms)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str  # type: ignore[import-untyped]  # cfn-lint ships no type information

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

Statement = dict[str, Any]


@cache
def _load() -> dict[str, Any]:
    template, problems = decode_str(TEMPLATE.read_text())
    assert not problems, problems
    assert isinstance(template, dict)
    return template


def template() -> dict[str, Any]:
    return _load()


def resource(name: str) -> dict[str, Any]:
    found: dict[str, Any] = template()["Resources"][name]
    return found


def as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def function_role_statements() -> list[Statement]:
    role = resource("FunctionRole")
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]
