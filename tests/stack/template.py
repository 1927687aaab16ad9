"""template.yaml as plain data (cfn-lint's loader turns !Ref, !Sub, !GetAtt... into their long forms)."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
    return role_statements("FunctionRole")


def role_statements(name: str) -> list[Statement]:
    role = resource(name)
    return [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in as_list(policy["PolicyDocument"]["Statement"])
    ]


STACK_NAME = "test-stack"


def resolve(value: Any, conditions: Mapping[str, bool], parameters: Mapping[str, object] | None = None) -> Any:
    """Evaluate the intrinsic functions the names are built with (Ref, Fn::If, Fn::Sub, Fn::FindInMap, Fn::Join).

    The stack is named STACK_NAME; conditions and parameters are the caller's (a missing one fails loudly).
    Any other function is left as it is.
    """
    known = {"AWS::StackName": STACK_NAME, **(parameters or {})}

    def sub(argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {**known, **{name: walk(v) for name, v in variables.items()}}
        return re.sub(r"\$\{([^}!]+)\}", lambda match: str(values[match.group(1)]), text)

    def find_in_map(argument: Any) -> Any:
        mapping, key, attribute = (walk(part) for part in argument)
        return template()["Mappings"][mapping][key][attribute]

    functions = {
        "Ref": lambda name: known[name],
        "Fn::If": lambda arg: walk(arg[1] if conditions[arg[0]] else arg[2]),
        "Fn::FindInMap": find_in_map,
        "Fn::Join": lambda arg: arg[0].join(walk(arg[1])),
        "Fn::Sub": sub,
    }

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            return functions[function](argument) if function in functions else {function: walk(argument)}
        return node

    return walk(value)
