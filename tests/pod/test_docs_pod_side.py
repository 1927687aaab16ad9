"""Every command docs/pod-side.md shows is run here, or is an external command whose inputs are checked here.

- shell variables and heredocs: the site overlays are written as shown (with the variables' values) beside the
  repository's ``pod-ip-manager`` and rendered by ``kubectl kustomize``;
- ``kubectl apply -k``: rendered; ``kubectl apply -f``: pinned release URLs whose tags the ``set image`` commands
  repeat; ``rollout status``, ``logs``, ``exec``: the objects and containers they name exist where they say;
- ``aws``: each operation and parameter exists in botocore's model of the service (every required one given),
  ``file://`` paths exist, the associations name exactly the package's service accounts;
- ``docker``: the build contexts hold a Dockerfile, the tags are the images the package names, at its versions.

The plan commands are run by tests/plan/test_recommended_split.py (every docs/*.md).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

import multus_ipam
from tests.pod.deploy import DEPLOY, IMAGE, KUSTOMIZATIONS, ROOT, containers, load_yaml, pod_spec, render
from tests.pod.deploy import render_path as render_directory

DOCS = ROOT / "docs" / "pod-side.md"
FENCED_SH = re.compile(r"^```sh\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`(?P<command>(?:aws|kubectl|kustomize) [^`]+)`")
#: What the shell variables stand for in the test (ACCOUNT comes from STS in the docs).
VALUES = {"ACCOUNT": "123456789012"}
#: The upstream objects the docs' kubectl commands touch, with their containers.
UPSTREAM = {
    ("kube-system", "daemonset", "kube-multus-ds"): {"kube-multus", "install-multus-binary"},
    ("kube-system", "daemonset", "whereabouts"): {"whereabouts"},
}
RELEASE_URL = re.compile(
    r"https://raw\.githubusercontent\.com/k8snetworkplumbingwg/(?P<project>multus-cni|whereabouts)/"
    r"(?P<tag>v\d+\.\d+\.\d+)/(?P<path>\S+\.ya?ml)"
)
#: AWS CLI options that are not the operation's parameters.
GLOBAL_OPTIONS = {"--query", "--output", "--region"}
#: CLI commands that are customizations, not API operations, with the options they take.
CUSTOMIZATIONS = {("ecr", "get-login-password"): {"--region"}}


@dataclass
class Shown:
    """What the docs show, in order."""

    commands: list[list[str]] = field(default_factory=list)
    heredocs: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)


def _substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{?([A-Z_]+)\}?", lambda m: variables[m.group(1)], text)


def shown() -> Shown:
    text = DOCS.read_text()
    result = Shown()
    for block in FENCED_SH.finditer(text):
        lines = block["body"].replace("\\\n", " ").splitlines()
        index = 0
        while index < len(lines):
            line = lines[index].strip()
            index += 1
            if not line or line.startswith("#"):
                continue
            heredoc = re.fullmatch(r"cat > (\S+) <<EOF", line)
            if heredoc:
                end = lines.index("EOF", index)
                result.heredocs[heredoc[1]] = _substitute("\n".join(lines[index:end]) + "\n", result.variables)
                index = end + 1
                continue
            assignment = re.fullmatch(r"([A-Z_]+)=(.*)", line)
            if assignment:
                name, value = assignment.groups()
                inner = re.fullmatch(r"\$\((.*)\)", value)
                if inner:
                    result.commands.append(shlex.split(_substitute(inner[1], result.variables)))
                    value = VALUES[name]
                result.variables[name] = _substitute(value, result.variables)
                continue
            for part in line.split(" | "):
                result.commands.append(shlex.split(_substitute(part, result.variables)))
    prose = FENCED_SH.sub("", text).replace("```console", "```")
    prose = re.sub(r"^```.*?^```", "", prose, flags=re.MULTILINE | re.DOTALL)
    for found in INLINE.finditer(" ".join(prose.split())):
        command = shlex.split(_substitute(found["command"], result.variables))
        if len(command) > 3:  # shorter: a mention (`kubectl apply -k`), not a command
            result.commands.append(command)
    return result


SHOWN = shown()


def _commands(tool: str, *words: str) -> list[list[str]]:
    return [c for c in SHOWN.commands if c[0] == tool and c[1 : 1 + len(words)] == list(words)]


def _options(command: list[str]) -> dict[str, list[str]]:
    """``--name value`` pairs (repeatable) of a command; a flag without value maps to ``[""]``."""
    options: dict[str, list[str]] = {}
    index = 0
    while index < len(command):
        word = command[index]
        if word.startswith("-") and word != "--":
            value = command[index + 1] if index + 1 < len(command) and not command[index + 1].startswith("-") else ""
            options.setdefault(word, []).append(value)
            index += 2 if value else 1
        else:
            index += 1
    return options


def test_every_command_the_docs_show_is_one_this_file_checks() -> None:
    tools = {command[0] for command in SHOWN.commands}
    assert tools <= {"aws", "kubectl", "docker", "mkdir", "kustomize"}, tools
    assert len(SHOWN.commands) >= 25


def test_the_variables_are_the_projects_version_and_a_region() -> None:
    assert SHOWN.variables["VERSION"] == multus_ipam.__version__
    assert re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", SHOWN.variables["REGION"])
    assert SHOWN.variables["REGISTRY"] == f"{VALUES['ACCOUNT']}.dkr.ecr.{SHOWN.variables['REGION']}.amazonaws.com"


# --- kubectl ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's working directory: the repository's pod-ip-manager beside the site overlays the docs write."""
    root = tmp_path_factory.mktemp("operator")
    (root / "pod-ip-manager").symlink_to(ROOT / "pod-ip-manager")
    for command in _commands("mkdir", "-p"):
        (root / command[2]).mkdir(parents=True, exist_ok=True)
    for path, body in SHOWN.heredocs.items():
        (root / path).write_text(body)
    return root


def _apply_k_paths() -> list[str]:
    return [c[3] for c in _commands("kubectl", "apply", "-k")]


@pytest.mark.parametrize("path", _apply_k_paths())
def test_every_kustomization_the_docs_apply_renders(path: str, workspace: Path) -> None:
    objects = render_directory(workspace / path)
    assert objects
    if path.startswith("my-site/"):
        registry, version = SHOWN.variables["REGISTRY"], SHOWN.variables["VERSION"]
        images = {c["image"] for w in objects if "template" in w.get("spec", {}) for c in containers(pod_spec(w))}
        assert f"{registry}/{IMAGE}:{version}" in images
        assert not any(image.startswith(f"{IMAGE}:") for image in images)  # every reference pointed at ECR
        for config in (o for o in objects if o["kind"] == "ConfigMap" and "AWS_REGION" in o.get("data", {})):
            assert config["data"]["AWS_REGION"] == SHOWN.variables["REGION"]
    else:
        assert path.removeprefix("pod-ip-manager/deploy/") in KUSTOMIZATIONS


def test_the_site_overlays_the_docs_write_are_applied_and_cover_the_node_agent_and_an_example() -> None:
    assert set(SHOWN.heredocs) == {f"{path}/kustomization.yaml" for path in _apply_k_paths() if path.startswith("my-")}
    assert {"my-site/node-agent", "my-site/init"} <= set(_apply_k_paths())


def _release_tags() -> dict[str, str]:
    tags: dict[str, str] = {}
    urls = [word for c in _commands("kubectl", "apply", "-f") for word in c if word.startswith("https://")]
    assert urls
    for url in urls:
        match = RELEASE_URL.fullmatch(url)
        assert match, url
        assert tags.setdefault(match["project"], match["tag"]) == match["tag"], "one release per project"
    return tags


def test_multus_and_whereabouts_are_applied_from_release_tags_and_their_images_pinned_to_the_same() -> None:
    tags = _release_tags()
    assert set(tags) == {"multus-cni", "whereabouts"}
    pinned = {}
    for command in _commands("kubectl", "-n", "kube-system", "set", "image"):
        kind, name = command[5].split("/")
        expected = UPSTREAM[("kube-system", kind, name)]
        images = dict(pair.split("=", 1) for pair in command[6:])
        assert set(images) == expected
        for image in images.values():
            repository, tag = image.rsplit(":", 1)
            project = repository.rsplit("/", 1)[1]
            assert repository == f"ghcr.io/k8snetworkplumbingwg/{project}"
            assert tag in (tags[project], f"{tags[project]}-thick")
            pinned[project] = tag
    assert set(pinned) == set(tags)
    assert "multus-daemonset-thick.yml" in " ".join(" ".join(c) for c in _commands("kubectl", "apply", "-f"))
    assert pinned["multus-cni"].endswith("-thick")  # the thick manifest's image


def _object(namespace: str, reference: str) -> tuple[str, set[str]] | None:
    """(kind, its containers) of ``kind/name`` in ``namespace``: the package's or the upstream ones."""
    kind, name = reference.split("/")
    if (namespace, kind, name) in UPSTREAM:
        return kind, UPSTREAM[(namespace, kind, name)]
    for kustomization in KUSTOMIZATIONS:
        for found in render(kustomization):
            metadata = found["metadata"]
            if (found["kind"].lower(), metadata["name"], metadata.get("namespace")) == (kind, name, namespace):
                return kind, {c["name"] for c in containers(pod_spec(found))}
    return None


@pytest.mark.parametrize(
    "command",
    [c for c in SHOWN.commands if c[0] == "kubectl" and c[1] == "-n" and c[3] in ("rollout", "logs", "exec")],
    ids=lambda c: " ".join(c[1:6]),
)
def test_every_object_the_docs_point_kubectl_at_exists_with_its_container(command: list[str]) -> None:
    namespace, verb = command[2], command[3]
    reference = command[5] if verb == "rollout" else command[4]
    found = _object(namespace, reference)
    assert found, f"{namespace}/{reference} is in neither the package nor the upstream manifests"
    container = _options(command).get("-c", [None])[0]
    if container is not None:
        assert container in found[1]
    if verb == "exec":
        url = next(word for word in command if word.startswith("http://"))
        port = int(re.search(r":(\d+)/", url)[1])  # type: ignore[index]
        (workload,) = [
            o for k in KUSTOMIZATIONS for o in render(k) if o["metadata"]["name"] == reference.split("/")[1]
        ][:1]
        app = next(c for c in containers(pod_spec(workload)) if c["name"] == container)
        assert port in {p["containerPort"] for p in app["ports"]}


# --- aws -------------------------------------------------------------------------------------------------------------


def _operation(service: str, name: str) -> Any:
    model = botocore.session.get_session().get_service_model(service)
    matches = [op for op in model.operation_names if xform_name(op, "-") == name]
    assert matches, f"aws {service} {name}: no such operation"
    return model.operation_model(matches[0])


@pytest.mark.parametrize("command", _commands("aws"), ids=lambda c: " ".join(c[1:3]))
def test_every_aws_command_is_an_operation_with_its_parameters_and_every_required_one(command: list[str]) -> None:
    service, name = command[1], command[2]
    options = _options(command[3:])
    if (service, name) in CUSTOMIZATIONS:
        assert set(options) <= CUSTOMIZATIONS[(service, name)]
        return
    shape = _operation(service, name).input_shape
    members = {xform_name(member, "-"): member for member in (shape.members if shape else {})}
    given = {option.removeprefix("--") for option in options} - {g.removeprefix("--") for g in GLOBAL_OPTIONS}
    assert given <= set(members), given - set(members)
    required = {xform_name(member, "-") for member in (shape.required_members if shape else [])}
    assert required <= given, required - given
    for values in options.values():
        for value in values:
            if value.startswith("file://"):
                assert (ROOT / value.removeprefix("file://")).is_file(), value


def test_the_pod_identity_associations_name_exactly_the_packages_service_accounts_and_the_created_role() -> None:
    accounts = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for k in KUSTOMIZATIONS
        for o in render(k)
        if o["kind"] == "ServiceAccount"
    }
    associations = [_options(c) for c in _commands("aws", "eks", "create-pod-identity-association")]
    assert {(a["--namespace"][0], a["--service-account"][0]) for a in associations} == accounts
    roles = {c[c.index("--role-name") + 1] for c in _commands("aws", "iam", "create-role")}
    assert {a["--role-arn"][0].rsplit("/", 1)[1] for a in associations} == roles
    irsa = load_yaml(DEPLOY / "components" / "irsa" / "kustomization.yaml")["patches"][0]["patch"]
    assert any(f":role/{role}" in irsa for role in roles)
    trusts = {c[c.index("--assume-role-policy-document") + 1] for c in _commands("aws", "iam", "create-role")}
    assert trusts == {
        "file://pod-ip-manager/deploy/iam/trust-pod-identity.json",
        "file://pod-ip-manager/deploy/iam/trust-irsa.json",
    }


# --- docker ----------------------------------------------------------------------------------------------------------


def _image_tags() -> dict[str, str]:
    """The package's image names and the tags it gives them."""
    tags = {IMAGE: load_yaml(DEPLOY / "components" / "common" / "kustomization.yaml")["images"][0]["newTag"]}
    for image in load_yaml(DEPLOY / "overlays" / "sidecar" / "kustomization.yaml")["images"]:
        tags[image["name"]] = image["newTag"]
    return tags


def test_every_image_the_docs_build_and_push_is_one_the_package_names_at_its_tag_in_a_created_repository() -> None:
    registry = SHOWN.variables["REGISTRY"]
    repositories = {c[c.index("--repository-name") + 1] for c in _commands("aws", "ecr", "create-repository")}
    built = {}
    for command in _commands("docker", "build"):
        options = _options(command)
        (tag,) = options["-t"]
        context = ROOT / command[-1]
        assert (context / "Dockerfile").is_file(), context
        assert options["--platform"][0] in ("linux/amd64", "linux/arm64")
        built[tag] = context
    pushed = {c[2] for c in _commands("docker", "push")}
    assert pushed == set(built)
    expected = {f"{registry}/{name}:{tag}" for name, tag in _image_tags().items()}
    assert set(built) == expected
    assert repositories == set(_image_tags())
    login = _commands("docker", "login")
    assert login
    assert login[0][-1] == registry


def test_the_kustomize_edit_the_docs_mention_targets_the_image_name() -> None:
    (command,) = _commands("kustomize", "edit", "set", "image")
    name, reference = command[4].split("=", 1)
    assert name == IMAGE
    assert reference == f"{SHOWN.variables['REGISTRY']}/{IMAGE}:{SHOWN.variables['VERSION']}"
