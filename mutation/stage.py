"""A stage per target: the repository laid out the way mutmut 3 expects, with its configuration.

mutmut 3 copies the code to mutate into ``mutants/``, puts ``mutants/`` first on ``sys.path`` and names each mutant
by its file's path (``multus_ipam/addressing.py`` -> ``multus_ipam.addressing``). Our packages live elsewhere
(``layers/multus_ipam/multus_ipam``, ``pod-ip-manager/pod_ip_manager``: pyproject's ``package-dir``), so a stage is
a copy of the repository with every package also placed at its import name, plus a ``[tool.mutmut]`` section that
mutates only the target's files and runs only its tests, and a root conftest that makes the property tests
deterministic (one hypothesis run per mutant: no deadline, derandomized, no example database) so that a mutant is
killed or survives the same way every run.
"""

from __future__ import annotations

import ast
import json
import shutil
import tomllib
from pathlib import Path

from mutation.targets import Target

ROOT = Path(__file__).resolve().parents[1]
#: Where the stages (and, inside each, mutmut's own ``mutants/``) live; ignored by git.
STAGES = ROOT / "mutants"
#: Fixed for the engine's tests: the local AWS draws latency, lag and ids from it (tests/handlers/conftest.py).
LOCALAWS_SEED = "1234"

_NOT_COPIED = (
    ".git",
    ".venv",
    ".sam-venv",
    ".aws-sam",
    "mutants",
    "mutation",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "*.egg-info",
    "build",
    ".coverage",
)

CONFTEST = '''"""Written by mutation.stage: property tests run the same examples for every mutant."""

from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None, print_blob=False)
settings.load_profile("mutation")
'''


def package_dirs(root: Path = ROOT) -> dict[str, Path]:
    """Import name -> directory, from pyproject's ``[tool.setuptools] package-dir``."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name: root / path for name, path in mapping.items()}


def staged_path(source: str, root: Path = ROOT) -> Path:
    """A repository path of a module as the stage (and mutmut) names it: relative to its package's parent."""
    path = (root / source).resolve()
    for name, directory in package_dirs(root).items():
        if path.is_relative_to(directory.resolve()):
            return Path(name) / path.relative_to(directory.resolve())
    raise ValueError(f"{source} is in none of pyproject's package-dir packages")


def exclude_functions(path: Path, keep: tuple[str, ...]) -> list[str]:
    """Mark every function of the file but those in ``keep`` (``name`` or ``Class.name``) with mutmut's
    ``# pragma: no mutate block`` on its header line: mutmut then leaves it as it is. Only comments are added, so
    every line keeps its number. Returns the names of ``keep`` the file does not have."""
    lines = path.read_text().splitlines(keepends=True)
    tree = ast.parse("".join(lines))
    found: set[str] = set()
    nodes: list[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nodes.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            nodes.extend(
                (f"{node.name}.{child.name}", child)
                for child in node.body
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            )
    for name, node in nodes:
        if name in keep:
            found.add(name)
            continue
        header = node.body[0].lineno - 2  # the line ending in the colon, right above the body (0-based)
        text = lines[header].rstrip("\n")
        if not text.rstrip().endswith(":") or "#" in text:
            raise ValueError(f"{path}: cannot mark {name}: its header line is not `...:` ({text!r})")
        lines[header] = f"{text}  # pragma: no mutate block\n"
    path.write_text("".join(lines))
    return [name for name in keep if name not in found]


def _toml(value: object) -> str:
    return json.dumps(value)  # strings and lists of strings: JSON's spelling is TOML's


def mutmut_config(target: Target, also_copy: list[str]) -> str:
    staged = [staged_path(source).as_posix() for source in target.sources]
    packages = sorted({path.split("/", 1)[0] for path in staged})
    lines = [
        "",
        "# Written by mutation.stage for the target " + _toml(target.name) + ".",
        "[tool.mutmut]",
        f"source_paths = {_toml(packages)}",
        f"only_mutate = {_toml(staged)}",
        f"also_copy = {_toml(also_copy)}",
        f"pytest_add_cli_args_test_selection = {_toml(list(target.tests))}",
        f"pytest_add_cli_args = {_toml(['-p', 'no:cacheprovider', '-p', 'no:xdist'])}",
        "use_git_change_detection = false",
        f"do_not_mutate_patterns = {_toml(list(target.skip_lines))}",
        "",
    ]
    return "\n".join(lines)


def _clear(stage: Path, *, keep_results: bool) -> None:
    if stage.exists():
        for entry in stage.iterdir():
            if entry.name == "mutants" and keep_results:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    stage.mkdir(parents=True, exist_ok=True)


def build(target: Target, *, fresh: bool = True) -> Path:
    """Lay out the stage of ``target`` and return its directory. ``fresh``: forget earlier results."""
    stage = STAGES / target.name
    _clear(stage, keep_results=not fresh)
    ignore = shutil.ignore_patterns(*_NOT_COPIED)
    for entry in sorted(ROOT.iterdir()):
        if ignore(str(ROOT), [entry.name]):
            continue
        if entry.is_dir():
            shutil.copytree(entry, stage / entry.name, ignore=ignore)
        else:
            shutil.copy2(entry, stage / entry.name)
    for name, directory in package_dirs().items():
        if not (stage / name).exists():
            shutil.copytree(directory, stage / name, ignore=ignore)
    if target.functions:
        missing = set(target.functions)
        for source in target.sources:
            missing &= set(exclude_functions(stage / staged_path(source), target.functions))
        if missing:
            raise ValueError(f"{target.name}: no function {', '.join(sorted(missing))} in {target.sources}")
    (stage / "conftest.py").write_text(CONFTEST)
    mutated_packages = {staged_path(source).parts[0] for source in target.sources}
    also_copy = sorted(
        entry.name for entry in stage.iterdir() if entry.name not in mutated_packages and entry.name != "mutants"
    )
    with (stage / "pyproject.toml").open("a") as pyproject:
        pyproject.write(mutmut_config(target, also_copy))
    return stage
