"""`make mutation`'s report (mutation.report): a mutant is shown where it is in the original file, and an entry of
mutation/equivalent.toml keeps matching it when the file around it changes."""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

from mutation.faults import FAULTS
from mutation.report import Equivalent, load_equivalents, read_results, score, status_of, unused_equivalents

ORIGINAL = '''"""A module."""


class Space:
    def first(self, values: list[int]) -> int:
        """The first positive value."""
        for value in values:
            if value > 0:
                return value
        return 0


def double(x: int) -> int:
    return x * 2
'''

# What mutmut 3 writes: each function's original beside its mutants (trampolines left out).
MUTATED = '''"""A module."""


class Space:
    def xǁSpaceǁfirst__mutmut_orig(self, values: list[int]) -> int:
        """The first positive value."""
        for value in values:
            if value > 0:
                return value
        return 0

    def xǁSpaceǁfirst__mutmut_1(self, values: list[int]) -> int:
        """The first positive value."""
        for value in values:
            if value >= 0:
                return value
        return 0

    def xǁSpaceǁfirst__mutmut_2(self, values: list[int]) -> int:
        """The first positive value."""
        for value in values:
            if value > 0:
                return value
        return 1


def x_double__mutmut_orig(x: int) -> int:
    return x * 2


def x_double__mutmut_1(x: int) -> int:
    return x / 2
'''


def stage_with(tmp_path: Path, exit_codes: dict[str, int | None], original: str = ORIGINAL) -> Path:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "mutants" / "pkg").mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text(original)
    (tmp_path / "mutants" / "pkg" / "mod.py").write_text(MUTATED)
    meta = {"exit_code_by_key": exit_codes, "durations_by_key": {}, "estimated_durations_by_key": {}}
    (tmp_path / "mutants" / "pkg" / "mod.py.meta").write_text(json.dumps(meta))
    return tmp_path


CODES: dict[str, int | None] = {
    "pkg.mod.xǁSpaceǁfirst__mutmut_1": 0,
    "pkg.mod.xǁSpaceǁfirst__mutmut_2": 1,
    "pkg.mod.x_double__mutmut_1": 33,
}


def test_given_mutmuts_results_when_read_then_each_mutant_has_its_line_function_change_and_status(
    tmp_path: Path,
) -> None:
    mutants = read_results(stage_with(tmp_path, CODES), [("src/pkg/mod.py", Path("pkg/mod.py"))])
    shown = [(m.path, m.line, m.function, m.change(), m.status) for m in mutants]
    assert shown == [
        ("src/pkg/mod.py", 8, "Space.first", "if value > 0:  ->  if value >= 0:", "survived"),
        ("src/pkg/mod.py", 10, "Space.first", "return 0  ->  return 1", "killed"),
        ("src/pkg/mod.py", 14, "double", "return x * 2  ->  return x / 2", "no tests"),
    ]


def test_given_the_file_shifted_by_new_lines_when_read_then_the_lines_follow_and_the_keys_still_match(
    tmp_path: Path,
) -> None:
    shifted = ORIGINAL.replace('"""A module."""\n', '"""A module."""\n\nLIMIT = 3\n\n')
    mutants = read_results(stage_with(tmp_path, CODES, shifted), [("src/pkg/mod.py", Path("pkg/mod.py"))])
    assert [m.line for m in mutants] == [11, 13, 17]
    entry = Equivalent("pkg.mod", "Space.first", "if value >  0:", "if value >= 0:", "zero never occurs")
    assert [m.name for m in mutants if entry.matches(m)] == ["pkg.mod.xǁSpaceǁfirst__mutmut_1"]


def test_given_an_equivalent_survivor_when_scored_then_it_does_not_count_and_no_tests_is_a_survivor(
    tmp_path: Path,
) -> None:
    mutants = read_results(stage_with(tmp_path, CODES), [("src/pkg/mod.py", Path("pkg/mod.py"))])
    entry = Equivalent("pkg.mod", "Space.first", "if value > 0:", "if value >= 0:", "zero never occurs")
    result = score(mutants, [entry])
    assert (result.total, result.killed, result.counted, len(result.equivalent)) == (3, 1, 2, 1)
    assert [m.function for m in result.survivors] == ["double"]
    assert result.ratio == 0.5


def test_given_an_entry_for_a_killed_mutant_or_for_nothing_then_it_is_reported_to_be_removed(tmp_path: Path) -> None:
    mutants = read_results(stage_with(tmp_path, CODES), [("src/pkg/mod.py", Path("pkg/mod.py"))])
    killed = Equivalent("pkg.mod", "Space.first", "return 0", "return 1", "wrong")
    stale = Equivalent("pkg.mod", "Space.first", "return 7", "return 8", "the code moved on")
    assert [entry for _, entry in score(mutants, [killed]).killed_but_listed] == [killed]
    assert unused_equivalents([killed, stale], {"pkg.mod"}, mutants) == [stale]
    assert unused_equivalents([stale], {"other.mod"}, mutants) == [], "a module not run says nothing"


def test_given_mutmuts_exit_codes_then_timeouts_and_type_errors_count_as_killed() -> None:
    assert [status_of(code) for code in (1, 3, 0, 33, 36, -24, 37, None, 99)] == [
        "killed",
        "killed",
        "survived",
        "no tests",
        "timeout",
        "timeout",
        "caught by type check",
        "not checked",
        "suspicious",
    ]


def test_given_the_equivalents_file_then_every_entry_has_a_reason() -> None:
    entries = load_equivalents()
    assert entries
    assert all(entry.reason.strip() and entry.module and entry.function for entry in entries)


def test_given_the_engines_hand_applied_faults_then_each_still_finds_the_line_it_changes() -> None:
    # A fault whose line the code no longer has would test nothing: `python -m mutation.faults` refuses it.
    for name, fault in FAULTS.items():
        module = importlib.import_module(fault.module)
        target: Any = module
        for part in fault.function.split("."):
            target = getattr(target, part)
        assert inspect.getsource(target).count(fault.before) == 1, f"{name}: update mutation/faults.py"
