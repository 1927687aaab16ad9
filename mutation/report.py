"""Reading a target's results: each mutant's status, where it is, what it changes, and the score.

mutmut 3 writes, next to each mutated file in ``mutants/``, a ``.meta`` file with every mutant's exit code; the
mutated file holds the original function (``x_name__mutmut_orig``, ``xǁClassǁname__mutmut_orig``) beside each
mutant of it (``...__mutmut_7``). A mutant is shown as the lines it changes and the line of the original file where
that change is.

Equivalent mutants (they change nothing observable) are listed in ``mutation/equivalent.toml`` by module, function
and the changed line before and after (whitespace-insensitive): a key that survives unrelated edits, line shifts and
mutmut's renumbering of the function's mutants.
"""

from __future__ import annotations

import ast
import difflib
import json
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

EQUIVALENT_FILE = Path(__file__).resolve().parent / "equivalent.toml"

#: mutmut's exit-code statuses that count as killed; every other one (survived, no tests, suspicious, skipped, not
#: checked) is a survivor.
KILLED = frozenset({"killed", "timeout", "caught by type check", "segfault"})
_STATUS_BY_EXIT_CODE = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped"}
_STATUS_BY_EXIT_CODE |= {36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout"}
_STATUS_BY_EXIT_CODE |= {37: "caught by type check", -11: "segfault", -9: "segfault", 2: "interrupted"}
CLASS_SEPARATOR = "ǁ"


def status_of(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    return _STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


def _normal(line: str) -> str:
    return " ".join(line.split())


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    """mutmut's name, e.g. ``multus_ipam.addressing.xǁAddressSpaceǁfree__mutmut_7`` (numbered per function)."""
    status: str
    path: str
    """The repository path of the mutated file."""
    line: int
    """The line of the original file the mutation changes (its first changed line)."""
    function: str
    """``name`` or ``Class.name``."""
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def module(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def killed(self) -> bool:
        return self.status in KILLED

    def change(self) -> str:
        before = " / ".join(line.strip() for line in self.before) or "(nothing)"
        after = " / ".join(line.strip() for line in self.after) or "(removed)"
        return f"{before}  ->  {after}"


@dataclass(frozen=True, slots=True)
class Equivalent:
    module: str
    function: str
    before: str
    after: str
    reason: str

    def matches(self, mutant: Mutant) -> bool:
        return (
            mutant.module == self.module
            and mutant.function == self.function
            and _normal("\n".join(mutant.before)) == _normal(self.before)
            and _normal("\n".join(mutant.after)) == _normal(self.after)
        )


def load_equivalents(path: Path = EQUIVALENT_FILE) -> list[Equivalent]:
    entries = tomllib.loads(path.read_text()).get("equivalent", [])
    return [
        Equivalent(e["module"], e["function"], e.get("before", ""), e.get("after", ""), e["reason"]) for e in entries
    ]


def _function_name(generated: str) -> str:
    """``x_name`` -> ``name``; ``xǁClassǁname`` -> ``Class.name`` (the generated name without its suffix)."""
    if generated.startswith("x" + CLASS_SEPARATOR):
        _, cls, name = generated.split(CLASS_SEPARATOR, 2)
        return f"{cls}.{name}"
    return generated.removeprefix("x_")


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """Module-level functions and methods, by name (methods also by ``Class.name``)."""
    found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            for child in node.body:
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    found.setdefault(child.name, child)
                    found[f"{node.name}.{child.name}"] = child
    return found


def _body_lines(lines: Sequence[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The function's lines from its ``def`` on, without the ``def`` line (its name differs per mutant)."""
    end = node.end_lineno or node.lineno
    return list(lines[node.lineno : end])


@dataclass
class _MutatedFile:
    repo_path: str
    original: list[str]
    original_functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    mutated: list[str]
    mutated_functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef]
    cache: dict[str, list[str]] = field(default_factory=dict)

    def body(self, generated: str) -> list[str]:
        if generated not in self.cache:
            self.cache[generated] = _body_lines(self.mutated, self.mutated_functions[generated])
        return self.cache[generated]

    def mutant(self, name: str, status: str) -> Mutant:
        generated = name.rpartition(".")[2]
        stem = generated.partition("__mutmut_")[0]
        function = _function_name(stem)
        orig, changed = self.body(stem + "__mutmut_orig"), self.body(generated)
        before: list[str] = []
        after: list[str] = []
        first: int | None = None
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=orig, b=changed, autojunk=False).get_opcodes():
            if tag == "equal":
                continue
            first = i1 if first is None else first
            before.extend(orig[i1:i2])
            after.extend(changed[j1:j2])
        return Mutant(
            name=name,
            status=status,
            path=self.repo_path,
            line=self._line(function, orig, first or 0, before),
            function=function,
            before=tuple(before),
            after=tuple(after),
        )

    def _line(self, function: str, orig: list[str], offset: int, before: list[str]) -> int:
        """The original file's line of the change: the function's ``def`` line plus the offset, checked against the
        text (mutmut keeps the function's text, so they agree unless the ``def`` spans several lines)."""
        node = self.original_functions.get(function) or self.original_functions.get(function.rpartition(".")[2])
        if node is None:
            return 0
        start = node.lineno + 1 + offset
        if not before:
            return start
        wanted = _normal(before[0])
        end = node.end_lineno or node.lineno
        candidates: list[int] = [start, *range(node.lineno, end + 1)]
        for number in candidates:
            if 1 <= number <= len(self.original) and _normal(self.original[number - 1]) == wanted:
                return number
        return start


def read_results(stage: Path, files: Iterable[tuple[str, Path]]) -> list[Mutant]:
    """Every mutant of the given files (repository path, staged path) as mutmut left them in ``stage``."""
    mutants: list[Mutant] = []
    for repo_path, staged in files:
        meta_path = stage / "mutants" / (str(staged) + ".meta")
        if not meta_path.exists():
            continue
        meta: dict[str, dict[str, int | None]] = json.loads(meta_path.read_text())
        original = (stage / staged).read_text().splitlines()
        mutated = (stage / "mutants" / staged).read_text().splitlines()
        source = _MutatedFile(
            repo_path=repo_path,
            original=original,
            original_functions=_functions(ast.parse("\n".join(original))),
            mutated=mutated,
            mutated_functions=_functions(ast.parse("\n".join(mutated))),
        )
        for name, exit_code in sorted(meta["exit_code_by_key"].items()):
            mutants.append(source.mutant(name, status_of(exit_code)))
    mutants.sort(key=lambda m: (m.path, m.line, m.name))
    return mutants


@dataclass(frozen=True, slots=True)
class Score:
    total: int
    killed: int
    equivalent: tuple[tuple[Mutant, Equivalent], ...]
    survivors: tuple[Mutant, ...]
    killed_but_listed: tuple[tuple[Mutant, Equivalent], ...]
    """Listed as equivalent, yet killed: the entry is wrong (or the code changed), remove it."""

    @property
    def counted(self) -> int:
        return self.total - len(self.equivalent)

    @property
    def ratio(self) -> float:
        return self.killed / self.counted if self.counted else 1.0


def score(mutants: Sequence[Mutant], equivalents: Sequence[Equivalent]) -> Score:
    equivalent: list[tuple[Mutant, Equivalent]] = []
    killed_but_listed: list[tuple[Mutant, Equivalent]] = []
    survivors: list[Mutant] = []
    for mutant in mutants:
        entry = next((e for e in equivalents if e.matches(mutant)), None)
        if mutant.killed:
            if entry is not None:
                killed_but_listed.append((mutant, entry))
            continue
        if entry is not None:
            equivalent.append((mutant, entry))
        else:
            survivors.append(mutant)
    killed = sum(1 for m in mutants if m.killed)
    return Score(len(mutants), killed, tuple(equivalent), tuple(survivors), tuple(killed_but_listed))


def unused_equivalents(
    equivalents: Sequence[Equivalent], modules: set[str], mutants: Sequence[Mutant]
) -> list[Equivalent]:
    """Entries for the modules that were run which match no mutant: the code moved on, the entry is stale."""
    return [e for e in equivalents if e.module in modules and not any(e.matches(m) for m in mutants)]
