"""checkov, a Kubernetes security scanner, on every rendered overlay: each finding is one that
``pod-ip-manager/deploy/checkov-accepted.yaml`` accepts with a reason, and each accepted one is still found.

checkov lives in its own virtualenv (``make checkov-venv``, which ``make test`` runs first): outside ``make``, the
test is skipped when it is missing, except on CI (``CI=true``), where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.pod.deploy import DEPLOY, OVERLAYS, ROOT, render

CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".checkov-venv" / "bin" / "checkov"))
ACCEPTED = DEPLOY / "checkov-accepted.yaml"
Finding = tuple[str, str]


def _checkov() -> Path:
    if not CHECKOV.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHECKOV} is missing: `make test` installs it (make checkov-venv)")
        pytest.skip(f"checkov is not installed at {CHECKOV}: make checkov-venv")
    return CHECKOV


@dataclass(frozen=True)
class Scan:
    findings: frozenset[Finding]
    version: str


def _scan(folder: Path) -> Scan:
    for overlay in OVERLAYS:
        (folder / f"{overlay}.yaml").write_text(yaml.safe_dump_all(render(f"overlays/{overlay}")))
    result = subprocess.run(  # noqa: S603 - the pinned scanner on files this test wrote
        [
            str(_checkov()),
            "-d",
            str(folder),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode in (0, 1), result.stderr  # 1: findings
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    findings = set()
    versions = {report["summary"]["checkov_version"] for report in reports}
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0
        for failed in report["results"]["failed_checks"]:
            kind, namespace, name = failed["resource"].split(".")[:3]  # Pod ids go on with the pod's labels
            findings.add((failed["check_id"], f"{kind}.{namespace}.{name}"))
    (version,) = versions
    return Scan(frozenset(findings), version)


def _accepted() -> dict[Finding, str]:
    entries = yaml.safe_load(ACCEPTED.read_text())["accepted"]
    return {(entry["check"], resource): entry["reason"] for entry in entries for resource in entry["resources"]}


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Scan:
    return _scan(tmp_path_factory.mktemp("rendered"))


@pytest.fixture
def findings(scan: Scan) -> frozenset[Finding]:
    return scan.findings


def test_every_checkov_finding_on_the_rendered_overlays_is_accepted_with_a_reason(findings: frozenset[Finding]) -> None:
    unaccepted = findings - set(_accepted())
    assert not unaccepted, f"fix them, or accept them in {ACCEPTED.name} with the reason: {sorted(unaccepted)}"


def test_every_accepted_finding_is_still_reported(findings: frozenset[Finding]) -> None:
    stale = set(_accepted()) - findings
    assert not stale, f"no longer reported: remove them from {ACCEPTED.name}: {sorted(stale)}"


def test_every_accepted_finding_has_a_reason_and_the_docs_name_the_scanner_and_its_version() -> None:
    assert all(len(reason.split()) >= 8 for reason in _accepted().values())
    (pin,) = re.findall(r"^checkov==(\S+)$", (ROOT / "requirements" / "checkov.txt").read_text(), re.MULTILINE)
    docs = (ROOT / "docs" / "pod-side.md").read_text()
    assert f"checkov {pin}" in docs
    for check in {check for check, _ in _accepted()}:
        assert check in docs, check


def test_the_scanner_is_the_pinned_version(scan: Scan) -> None:
    (pin,) = re.findall(r"^checkov==(\S+)$", (ROOT / "requirements" / "checkov.txt").read_text(), re.MULTILINE)
    assert scan.version == pin
