"""The documentation stays true: every link resolves, and every command it shows is run by a test or by the demo, or,
where it needs a real AWS account, has what it consumes checked here or by the test named.

A new command in a doc fails ``test_every_command_the_docs_show_is_accounted_for`` until it matches one of the
entries of ``ACCOUNTED`` (the test that runs it, or why none can and what is checked instead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "pod-ip-manager" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCED = re.compile(r"^```(?P<lang>sh|bash|shell|console)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[(?P<label>[^\]]*)\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (?P<title>.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Shown:
    where: str
    line: str


def commands(path: Path) -> list[Shown]:
    """The command lines of a doc's shell blocks: continuation lines joined, comments dropped; in a block that
    shows a prompt (``$ ``), only the prompted lines (the rest is output)."""
    text = path.read_text()
    shown: list[Shown] = []
    for block in FENCED.finditer(text):
        first = text.count("\n", 0, block.start("body")) + 1
        lines = block["body"].splitlines()
        prompted = any(line.startswith("$ ") for line in lines)
        pending, start = "", 0
        for offset, raw in enumerate(lines):
            if prompted and not raw.startswith("$ ") and not pending:
                continue
            line = raw.removeprefix("$ ") if not pending else raw.strip()
            if not pending:
                start = offset
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            command = re.sub(r"\s+#.*$", "", pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                shown.append(Shown(f"{path.relative_to(ROOT)}:{first + start}", command))
    return shown


#: Docs whose every command a test of their own runs or checks (heredocs, pipes, kubectl against the rendered
#: package): this file leaves them to it.
CHECKED_ELSEWHERE = {
    "docs/pod-side.md": "tests/pod/test_docs_pod_side.py",
}
SHOWN = [shown for path in DOCS if str(path.relative_to(ROOT)) not in CHECKED_ELSEWHERE for shown in commands(path)]


@pytest.mark.parametrize("doc", sorted(CHECKED_ELSEWHERE))
def test_the_docs_left_to_their_own_test_have_one(doc: str) -> None:
    test = ROOT / CHECKED_ELSEWHERE[doc]
    assert test.exists()
    assert doc in test.read_text(), f"{test.name} does not read {doc}"


#: (pattern, who runs it or what is checked instead). Checked in order; the first match counts.
ACCOUNTED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^make demo$"), "tests/test_demo.py runs the demo end to end"),
    (re.compile(r"^make test$"), ".ci/run: CI runs it on every change"),
    (re.compile(r"^make (sam-venv|validate|build)$"), "make test runs it"),
    (re.compile(r"^sam (validate --lint|build)$"), "make test runs it (make validate, make build)"),
    (
        re.compile(r"^(\.venv/bin/)?python -m multus_ipam plan "),
        "tests/plan/test_recommended_split.py runs every plan command of the docs and compares its output",
    ),
    (
        re.compile(r"^(\.venv/bin/)?python -m multus_ipam adopt "),
        "tests/handlers/test_adopt.py (the migration runbook, line by line), test_managed_node_group.py",
    ),
    (re.compile(r"^export [A-Z_]+="), "the runbook's variables: tests/handlers/test_adopt.py sets each"),
    (re.compile(r"^cp examples/two-az\.yaml "), "tests/stack/test_example_parameters.py"),
    (
        re.compile(
            r"^(sam build && )?sam deploy( --guided)?( --config-env prod)?( --parameter-overrides file://\S+)?$"
        ),
        "needs an AWS account: the template passes sam validate and sam build (make test), the parameter file "
        "and samconfig.toml are held to it by tests/stack",
    ),
    (re.compile(r"^sam delete$"), "needs an AWS account: what it leaves behind is docs/deploy.md's Cleanup"),
    (
        re.compile(r"^sam local invoke "),
        "needs Docker: the event files it reads are the ones tests/handlers/test_sample_events.py delivers",
    ),
    (re.compile(r"^aws "), "needs an AWS account: operation and options checked against botocore's model below"),
    (
        re.compile(r"^make mutation( MUTATION(_JOBS)?=\S+)*$|^\.venv/bin/python -m mutation(\.faults)?( \S+)?$"),
        "not part of make test (it runs for an hour or more): tests/test_mutation_report.py checks its report and "
        "that every hand-applied fault still finds its line",
    ),
]


@pytest.mark.parametrize("shown", SHOWN, ids=[s.where for s in SHOWN])
def test_every_command_the_docs_show_is_accounted_for(shown: Shown) -> None:
    assert any(pattern.search(shown.line) for pattern, _ in ACCOUNTED), (
        f"{shown.where}: `{shown.line}` is run by no test; run it in one and add it to ACCOUNTED"
    )


AWS_CLI_GLOBAL_OPTIONS = {"--query", "--output", "--region", "--profile", "--no-paginate"}
AWS_COMMANDS = [s for s in SHOWN if s.line.startswith("aws ")]


@pytest.mark.parametrize("shown", AWS_COMMANDS, ids=[s.where for s in AWS_COMMANDS])
def test_every_aws_cli_command_the_docs_show_names_a_real_operation_and_its_options(shown: Shown) -> None:
    """What AWS would refuse before doing anything: an operation or an option its API does not have (botocore's
    service models are the AWS CLI's own)."""
    _, service, operation, *rest = shown.line.split()
    model = botocore.session.get_session().get_service_model(service)
    operations = {xform_name(name, "-"): name for name in model.operation_names}
    assert operation in operations, f"{shown.where}: aws {service} has no {operation}"
    shape = model.operation_model(operations[operation]).input_shape
    members = {f"--{xform_name(name, '-')}" for name in (shape.members if shape is not None else {})}
    options = {word for word in rest if word.startswith("--")}
    unknown = options - members - AWS_CLI_GLOBAL_OPTIONS
    assert not unknown, f"{shown.where}: aws {service} {operation} has no {sorted(unknown)}"
    required = {f"--{xform_name(name, '-')}" for name in (shape.required_members if shape is not None else [])}
    assert required <= options, f"{shown.where}: aws {service} {operation} needs {sorted(required - options)}"


def _slug(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    plain = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return plain.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(found["title"]) for found in HEADING.finditer(FENCED.sub("", path.read_text()))}


LINKS = [
    (path, found["target"])
    for path in DOCS
    for found in LINK.finditer(re.sub(r"^```.*?^```", "", path.read_text(), flags=re.MULTILINE | re.DOTALL))
    if not found["target"].startswith(("http://", "https://", "mailto:"))
]


@pytest.mark.parametrize(("path", "target"), LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS])
def test_every_link_between_the_docs_resolves_to_a_file_and_a_heading(path: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    linked = (path.parent / file_part).resolve() if file_part else path
    assert linked.exists(), f"{path.relative_to(ROOT)}: {target} does not exist"
    if anchor:
        assert anchor in _anchors(linked), f"{path.relative_to(ROOT)}: no heading for #{anchor} in {linked.name}"


def test_the_front_page_links_every_doc() -> None:
    front = (ROOT / "README.md").read_text()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in front, f"README.md does not link docs/{doc.name}"
