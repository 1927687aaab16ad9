"""The pod IP manager's kustomize package as data: every kustomization rendered by ``kubectl kustomize`` (what
``kubectl apply -k`` applies), and the containers, pod specs and settings in it."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "pod-ip-manager"
DEPLOY = FOLDER / "deploy"
OVERLAYS = ("node-agent", "init", "sidecar")
#: Every kustomization an operator applies: the overlays, and apps/ (the namespace and networks alone, for the
#: node agent's workloads).
KUSTOMIZATIONS = (*(f"overlays/{name}" for name in OVERLAYS), "apps")
#: The image name the manifests use for the pod IP manager (components/common sets its tag).
IMAGE = "pod-ip-manager"

Object = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed: the manifests cannot be rendered")
    return found


def render_path(path: Path) -> list[Object]:
    result = subprocess.run(  # noqa: S603 - a fixed command on the repository's own files
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {path}: {result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@cache
def _rendered(relative: str) -> tuple[Object, ...]:
    return tuple(render_path(DEPLOY / relative))


def render(relative: str) -> list[Object]:
    """``kubectl kustomize pod-ip-manager/deploy/<relative>``, parsed (a fresh copy each time)."""
    return yaml.safe_load(yaml.safe_dump(list(_rendered(relative))))  # type: ignore[no-any-return]


def workloads(objects: list[Object]) -> list[Object]:
    return [o for o in objects if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet")]


def pod_spec(workload: Object) -> Object:
    spec: Object = workload["spec"]["template"]["spec"]
    return spec


def containers(spec: Object) -> Iterator[Object]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def managers(objects: list[Object]) -> Iterator[tuple[Object, Object]]:
    """(workload, container) of every pod IP manager container."""
    for workload in workloads(objects):
        for container in containers(pod_spec(workload)):
            if container["image"].split(":")[0].rsplit("/", 1)[-1] == IMAGE:
                yield workload, container


def environment(container: Object, objects: list[Object]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom ConfigMaps first, then env."""
    maps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(maps[source["configMapRef"]["name"]])
    env.update({item["name"]: item["value"] for item in container.get("env", [])})
    return env


def nad_config(nad: Object) -> Object:
    config: Object = json.loads(nad["spec"]["config"])
    return config


def annotation_networks(workload: Object) -> list[Object]:
    raw = workload["spec"]["template"]["metadata"].get("annotations", {}).get("k8s.v1.cni.cncf.io/networks", "[]")
    networks: list[Object] = json.loads(raw)
    return networks


def load_yaml(path: Path) -> Object:
    loaded: Object = yaml.safe_load(path.read_text())
    return loaded
