"""One recommended split of a /24 everywhere (workers .4-.63, pods .64-.254): every plan command the docs show
runs and prints what they show, both modes of the split give one whereabouts block, the example
NetworkAttachmentDefinition is that block, and the demo, the manifests and the docs name no other split."""

from __future__ import annotations

import io
import json
import re
import shlex
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.__main__ import pod_ranges, worker_bound
from multus_ipam import __main__ as cli
from multus_ipam.__main__ import EXIT_OK, main

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "pod-ip-manager" / "deploy"
NAD = DEPLOY / "apps" / "multus0-us-east-1a.yaml"
SIDECAR = DEPLOY / "overlays" / "sidecar" / "multus-vip-a.yaml"

SUBNET = IPv4Network("10.0.4.0/24")
BOUND = IPv4Address("10.0.4.63")
POD_RANGES = (IPv4Network("10.0.4.64/26"), IPv4Network("10.0.4.128/25"))
STATIC = ("--cidr", str(SUBNET), "--worker-bound", str(BOUND))
RESERVATIONS = ("--cidr", str(SUBNET), *(arg for cidr in POD_RANGES for arg in ("--pod-range", str(cidr))))
FLOATING_IP = "10.0.4.250/32"
#: Kept from whereabouts for the sidecar example: its two keepalived pods (.248, .249) and their floating IP.
KEEPALIVED = "10.0.4.248/30"
#: Every 10.0.4.x CIDR a doc or manifest may name: the subnet, the pod ranges, the keepalived block, the floating
#: IP (an address with the subnet's prefix, such as a pod's 10.0.4.248/24, names the subnet).
KNOWN_CIDRS = {SUBNET, *POD_RANGES, IPv4Network(KEEPALIVED), IPv4Network(FLOATING_IP)}

#: A plan command with its arguments (a bare ``python -m multus_ipam plan`` is a mention, not a command).
PLAN = re.compile(r"(?:\S*/)?python -m multus_ipam plan (?P<args>--[^#`\n]*)")
FENCED = re.compile(r"^```[^\n]*\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(?P<command>(?:\S*/)?python -m multus_ipam plan --[^`]*)`")


@dataclass(frozen=True)
class Shown:
    """A plan command a document shows, and what it shows the command print (a ``$`` line's output)."""

    where: str
    argv: tuple[str, ...]
    output: str | None = None


def _docs() -> list[Path]:
    docs = [ROOT / "README.md", ROOT / "pod-ip-manager" / "README.md"]
    return docs + sorted((ROOT / "docs").rglob("*.md")) if (ROOT / "docs").is_dir() else docs


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def shown_commands(path: Path) -> list[Shown]:
    text = path.read_text()
    name = path.relative_to(ROOT)
    shown: list[Shown] = []
    for block in FENCED.finditer(text):
        lines = block["body"].splitlines()
        first_line = _line(text, block.start("body"))
        for index, line in enumerate(lines):
            if not (found := PLAN.search(line)):
                continue
            output = None
            if line.startswith("$ "):
                following = []
                for after in lines[index + 1 :]:
                    if after.startswith("$ "):
                        break
                    following.append(after)
                output = "\n".join(following) + "\n" if following else None
            shown.append(Shown(f"{name}:{first_line + index}", tuple(shlex.split(found["args"])), output))
    prose = FENCED.sub(lambda block: "\n" * block[0].count("\n"), text)
    for found in INLINE.finditer(prose):  # a code span may wrap: its line breaks are spaces
        command = PLAN.search(" ".join(found["command"].split()))
        assert command is not None
        shown.append(Shown(f"{name}:{_line(prose, found.start())}", tuple(shlex.split(command["args"]))))
    return shown


def run(argv: tuple[str, ...]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["plan", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def block_of(argv: tuple[str, ...]) -> dict[str, Any]:
    code, out, err = run(argv)
    assert (code, err) == (EXIT_OK, ""), out + err
    block: dict[str, Any] = json.loads(out[out.index("{") :])
    return block


DOC_COMMANDS = [shown for path in _docs() for shown in shown_commands(path)]


def test_the_docs_show_both_forms_of_the_recommended_split() -> None:
    plan_doc = [shown.argv for shown in DOC_COMMANDS if shown.where.startswith("docs/subnet-plan.md")]
    assert STATIC in plan_doc
    assert RESERVATIONS in plan_doc
    front_page = [shown.argv for shown in DOC_COMMANDS if shown.where.startswith("README.md")]
    assert STATIC in front_page


@pytest.mark.parametrize("shown", DOC_COMMANDS, ids=[shown.where for shown in DOC_COMMANDS])
def test_every_plan_command_the_docs_show_runs_clean_and_prints_what_they_show(shown: Shown) -> None:
    assert "--subnet-id" not in shown.argv, f"{shown.where}: a live-subnet command no test can run offline"
    code, out, err = run(shown.argv)
    assert (code, err) == (EXIT_OK, ""), f"{shown.where}: {out}{err}"
    if shown.output is not None:
        assert out == shown.output, f"{shown.where} shows another output than the command prints"


def test_every_offline_plan_command_of_the_module_docstring_runs_clean() -> None:
    assert cli.__doc__ is not None
    commands = [tuple(shlex.split(found["args"])) for found in PLAN.finditer(cli.__doc__)]
    offline = [argv for argv in commands if "--subnet-id" not in argv]
    assert STATIC in offline
    assert RESERVATIONS in offline
    for argv in offline:
        assert run(argv)[0] == EXIT_OK, argv


def test_both_modes_of_the_recommended_split_give_one_and_the_same_whereabouts_block() -> None:
    assert (
        block_of(STATIC)
        == block_of(RESERVATIONS)
        == {
            "type": "whereabouts",
            "range": "10.0.4.0/24",
            "range_start": "10.0.4.64",
            "range_end": "10.0.4.254",
            "exclude": [],
        }
    )


def test_the_network_attachment_definition_is_the_block_its_comment_s_plan_command_prints() -> None:
    text = NAD.read_text()
    (command,) = list(PLAN.finditer(text))
    argv = tuple(shlex.split(command["args"]))
    assert argv == (*STATIC, "--exclude", KEEPALIVED)
    config = json.loads(yaml.safe_load(text)["spec"]["config"])
    assert config["ipam"] == block_of(argv)


def test_the_excluded_block_holds_the_floating_ip_the_sidecar_deployment_floats() -> None:
    deployment = yaml.safe_load(SIDECAR.read_text())
    containers = deployment["spec"]["template"]["spec"].get("initContainers", [])
    manager = next(c for c in containers if c["name"] == "pod-ip-manager")
    floating = {item["name"]: item.get("value") for item in manager["env"]}["PIM_FLOATING_IPS"]
    assert f"{floating}/32" == FLOATING_IP
    assert IPv4Network(FLOATING_IP).subnet_of(IPv4Network(KEEPALIVED))


def test_the_demo_splits_its_subnets_the_recommended_way() -> None:
    assert worker_bound(SUBNET) == BOUND
    assert pod_ranges(SUBNET) == POD_RANGES


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        "pod-ip-manager/README.md",
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "docs").glob("*.md"))),
        *(str(p.relative_to(ROOT)) for p in sorted(DEPLOY.rglob("*")) if p.suffix in (".yaml", ".conf", ".json")),
        "template.yaml",
        "layers/multus_ipam/multus_ipam/__main__.py",
        "layers/multus_ipam/multus_ipam/settings.py",
        "demo/__main__.py",
    ],
)
def test_no_doc_or_manifest_names_another_split_of_the_example_subnet(path: str) -> None:
    text = (ROOT / path).read_text()
    cidrs = {IPv4Interface(found).network for found in re.findall(r"\b10\.0\.4\.\d+/\d+", text)}
    assert cidrs <= KNOWN_CIDRS, f"{path} names {sorted(map(str, cidrs - KNOWN_CIDRS))}"
    bounds = set(re.findall(r"(?:--worker-bound |subnet-[0-9a-z.]*=)(10\.0\.4\.\d+)\b(?!/)", text))
    assert bounds <= {str(BOUND)}, f"{path} bounds workers at {sorted(bounds)}"
