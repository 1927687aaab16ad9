"""The shipped artefacts agree with the code: IAM policy, manifests, image pins."""

from __future__ import annotations

import json
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from pod_ip_manager.config import VARIABLES, load_settings
from pod_ip_manager.ec2 import IAM_ACTIONS

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "pod-ip-manager"
DEPLOY = FOLDER / "deploy"
DEPLOYMENTS = ("deployment-init.yaml", "deployment-sidecar.yaml")


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text())
    return loaded


def _manager(name: str) -> dict[str, Any]:
    spec = _load(name)["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = spec.get("initContainers", []) + spec["containers"]
    return next(c for c in containers if c["name"] == "pod-ip-manager")


def test_the_iam_policy_grants_exactly_the_actions_the_ec2_adapter_calls() -> None:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    granted: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        granted |= {actions} if isinstance(actions, str) else set(actions)
    assert granted == IAM_ACTIONS


def test_the_iam_policy_scopes_every_mutating_action_to_tagged_enis_in_the_multus_subnets() -> None:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if actions == ["ec2:DescribeNetworkInterfaces"]:
            continue  # describes support no resource-level permissions
        assert statement["Resource"] != "*"
        assert ":network-interface/" in statement["Resource"]
        assert statement["Condition"]["StringEquals"] == {"aws:ResourceTag/node.k8s.amazonaws.com/no_manage": "true"}
        assert statement["Condition"]["ArnEquals"]["ec2:Subnet"]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_deployment_configures_the_manager_with_valid_settings(name: str) -> None:
    manager = _manager(name)
    env = {item["name"]: item["value"] for item in manager.get("env", [])}
    assert set(env) <= set(VARIABLES)
    settings = load_settings({**env, "AWS_REGION": "eu-west-1"}, manager["args"][0])
    assert settings.mode.value == manager["args"][0]


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_each_deployment_runs_the_manager_unprivileged_with_requests_and_limits(name: str) -> None:
    manager = _manager(name)
    security = manager["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert set(manager["resources"]) == {"requests", "limits"}
    assert _load(name)["spec"]["template"]["spec"]["serviceAccountName"] == "pod-ip-manager"


def test_the_sidecar_is_a_native_sidecar_and_releases_on_exit() -> None:
    manager = _manager("deployment-sidecar.yaml")
    assert manager["restartPolicy"] == "Always"
    assert {"name": "PIM_RELEASE_ON_EXIT", "value": "true"} in manager["env"]


def test_the_sidecar_deployment_keeps_replicas_on_separate_nodes_and_never_unassigns_its_vip() -> None:
    spec = _load("deployment-sidecar.yaml")["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == _load("deployment-sidecar.yaml")["spec"]["selector"]["matchLabels"]
    env = {item["name"]: item["value"] for item in _manager("deployment-sidecar.yaml")["env"]}
    keepalived = next(c for c in spec["containers"] if c["name"] == "keepalived")
    vip = next(item["value"] for item in keepalived["env"] if item["name"] == "VIRTUAL_IP")
    assert env["PIM_FLOATING_IPS"] == vip.split("/")[0]


def test_the_sidecar_has_a_startup_probe_on_its_ready_file_in_an_emptydir_and_memory_for_its_measured_rss() -> None:
    spec = _load("deployment-sidecar.yaml")["spec"]["template"]["spec"]
    manager = _manager("deployment-sidecar.yaml")
    ready = {item["name"]: item["value"] for item in manager["env"]}["PIM_READY_FILE"]
    assert manager["startupProbe"]["exec"]["command"] == ["test", "-f", ready]
    (mount,) = [m for m in manager["volumeMounts"] if ready.startswith(m["mountPath"] + "/")]
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert "emptyDir" in volume
    assert manager["resources"]["requests"]["memory"] == "96Mi"
    assert manager["resources"]["limits"]["memory"] == "160Mi"


def test_the_network_attachment_is_ipvlan_on_multus0_with_the_pods_above_the_workers() -> None:
    # multus0: the stable name the node's user data gives the first Multus subnet's link of its AZ (node/).
    # The block itself is the plan command's for the recommended split: tests/plan/test_recommended_split.py.
    config = json.loads(_load("network-attachment-definition.yaml")["spec"]["config"])
    assert (config["type"], config["master"]) == ("ipvlan", "multus0")
    subnet = IPv4Network(config["ipam"]["range"])
    start, end = IPv4Address(config["ipam"]["range_start"]), IPv4Address(config["ipam"]["range_end"])
    assert subnet == IPv4Network("10.0.4.0/24")
    assert start == IPv4Address("10.0.4.64")  # workers below, up to .63
    assert end < subnet.broadcast_address  # the last address is AWS-reserved
    assert "ipRanges" not in config["ipam"]


def test_the_image_is_pinned_slim_non_root_and_its_requirements_match_the_repository_lock() -> None:
    dockerfile = (FOLDER / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert base is not None
    assert re.fullmatch(r"python:3\.13\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base.group(1))
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.MULTILINE)
    lock = dict(
        line.split("==", 1) for line in (ROOT / "requirements" / "dev.lock").read_text().splitlines() if "==" in line
    )
    pins = dict(
        line.split("==", 1)
        for line in (FOLDER / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert {"boto3", "botocore", "pydantic", "pyroute2"} <= set(pins)
    assert all(lock.get(name) == version for name, version in pins.items()), pins


def test_the_readme_documents_every_variable_and_exit_code() -> None:
    readme = (FOLDER / "README.md").read_text()
    table = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `PIM_")}
    documented = {name for row in table for name in row.replace("`", "").split(" / ")}
    assert set(VARIABLES) <= documented
    for code in range(9):
        assert f"\n| {code} |" in readme, code
