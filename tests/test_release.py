"""The release basics agree with one another: the LICENSE is the license pyproject.toml declares, and the one
version (``multus_ipam.__version__``) is pyproject.toml's, CHANGELOG.md's latest and the stack's ``Version``
output. Offline: reads files only."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from packaging.licenses import canonicalize_license_expression
from packaging.version import Version
from setuptools.config.pyprojecttoml import read_configuration  # type: ignore[import-untyped]  # no py.typed

import multus_ipam
from tests.stack.template import template

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LICENSE = ROOT / "LICENSE"
CHANGELOG = ROOT / "CHANGELOG.md"

#: SPDX identifiers and the title each license's text opens with (https://spdx.org/licenses/).
SPDX_TITLES = {"MIT-0": "MIT No Attribution", "MIT": "MIT License"}

#: Keep a Changelog's headings: "## [Unreleased]", "## [1.2.3] - 2026-11-24".
RELEASE = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?$", re.MULTILINE)
CHANGE_TYPES = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def project() -> dict[str, Any]:
    found: dict[str, Any] = tomllib.loads(PYPROJECT.read_text())["project"]
    return found


def releases() -> list[tuple[str, str | None]]:
    return [(match["version"], match["date"]) for match in RELEASE.finditer(CHANGELOG.read_text())]


# --- the license ------------------------------------------------------------------------------------------------


def test_given_pyproject_when_reading_its_license_then_it_is_an_spdx_expression_shipped_with_the_license_file() -> None:
    license_ = project()["license"]
    assert isinstance(license_, str), "an SPDX expression (PEP 639), not a table"
    assert canonicalize_license_expression(license_) == license_
    assert project()["license-files"] == [LICENSE.name]


def test_given_the_license_file_when_reading_its_heading_then_it_is_the_license_pyproject_declares() -> None:
    heading, blank, copyright_line, *_ = LICENSE.read_text().splitlines()

    assert heading == SPDX_TITLES[project()["license"]]
    assert blank == ""
    assert re.fullmatch(r"Copyright \d{4}(-\d{4})? \S.*", copyright_line), copyright_line


def test_given_mit_0_when_reading_the_license_then_it_grants_without_the_attribution_condition() -> None:
    # What sets MIT No Attribution apart from MIT: the grant ends at "so", with no notice to keep in copies.
    text = " ".join(LICENSE.read_text().split())

    assert "to permit persons to whom the Software is furnished to do so." in text
    assert "above copyright notice" not in text
    assert text.endswith("OTHER DEALINGS IN THE SOFTWARE.")


# --- the version ------------------------------------------------------------------------------------------------


def test_given_the_code_when_reading_its_version_then_it_is_a_release_version() -> None:
    version = Version(multus_ipam.__version__)
    assert str(version) == multus_ipam.__version__, "written in its normal form"
    assert not version.is_devrelease
    assert not version.is_prerelease


def test_given_pyproject_when_setuptools_reads_its_version_then_it_is_the_codes() -> None:
    # One source: pyproject.toml declares the version dynamic, read from the layer's package.
    assert "version" not in project()
    assert "version" in project()["dynamic"]

    built = read_configuration(PYPROJECT, expand=True)

    assert built["project"]["version"] == multus_ipam.__version__


def test_given_the_template_when_reading_its_version_output_then_it_is_the_codes() -> None:
    assert template()["Outputs"]["Version"]["Value"] == multus_ipam.__version__


def test_given_the_changelog_when_reading_its_latest_release_then_it_is_the_codes_version() -> None:
    released = [(version, day) for version, day in releases() if version != "Unreleased"]
    assert released, "CHANGELOG.md has no release"

    latest, _ = released[0]

    assert latest == multus_ipam.__version__


# --- the changelog's form ---------------------------------------------------------------------------------------


def test_given_the_changelog_when_reading_its_headings_then_unreleased_first_then_dated_releases_newest_first() -> None:
    found = releases()
    assert found[0] == ("Unreleased", None)
    released = found[1:]
    assert all(day is not None for _, day in released), "every release has its date"
    versions = [Version(version) for version, _ in released]
    days = [date.fromisoformat(str(day)) for _, day in released]
    assert versions == sorted(versions, reverse=True)
    assert len(set(versions)) == len(versions)
    assert days == sorted(days, reverse=True)


def test_given_the_changelog_when_reading_its_sections_then_only_keep_a_changelogs_types() -> None:
    types = set(re.findall(r"^### (.+)$", CHANGELOG.read_text(), flags=re.MULTILINE))
    assert types <= CHANGE_TYPES, sorted(types - CHANGE_TYPES)
