"""The shipped kustomize package renders, is valid Kubernetes for every version EKS runs, and agrees with the code:
IAM policy and trust policies, settings, security contexts, resources, networks, image references."""

from __future__ import annotations

import copy
import io
import json
import os
import pkgutil
import re
import shlex
import tomllib
from importlib import import_module
from ipaddress import IPv4Network, ip_interface
from pathlib import Path

import pytest
from kubernetes_validate import utils as kubernetes_schemas  # type: ignore[import-untyped]  # no py.typed

import multus_ipam
import pod_ip_manager
from multus_ipam.__main__ import EXIT_OK
from multus_ipam.__main__ import main as multus_ipam_main
from pod_ip_manager.config import VARIABLES, load_settings
from tests.pod.deploy import (
    DEPLOY,
    FOLDER,
    IMAGE,
    KUSTOMIZATIONS,
    OVERLAYS,
    ROOT,
    Object,
    annotation_networks,
    containers,
    environment,
    load_yaml,
    managers,
    nad_config,
    pod_spec,
    render,
    render_path,
    workloads,
)
from tests.stack.template import resource

#: The Kubernetes versions the manifests must be valid for: from the oldest EKS still supports (extended support)
#: to the newest whose schemas kubernetes-validate bundles. EKS: docs/pod-side.md, "Kubernetes versions".
KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37")
#: Custom resources without a bundled schema, checked by the tests below instead.
CUSTOM_KINDS = {"NetworkAttachmentDefinition"}
#: Peak RSS of the init and sidecar processes, measured (docs/pod-side.md, "Resources").
MEASURED_PEAK_RSS_MIB = 94
MULTUS_NODE_LABEL = ("eks-multus-ipam/multus", "true")
DOCS = ROOT / "docs" / "pod-side.md"
PLAN = re.compile(r"python -m multus_ipam plan (?P<args>--[^\n#`]*)")


def _mib(quantity: str) -> float:
    match = re.fullmatch(r"(\d+)(Mi|Gi)", quantity)
    assert match, quantity
    return int(match[1]) * (1024 if match[2] == "Gi" else 1)


# --- rendering and schemas --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_kustomization_renders_into_its_namespace(kustomization: str) -> None:
    objects = render(kustomization)
    expected = "multus-ipam" if kustomization == "overlays/node-agent" else "multus-apps"
    namespaces = [o for o in objects if o["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == [expected]
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {expected}
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "eks-multus-ipam" for o in objects)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_is_valid_for_each_kubernetes_version_eks_runs(overlay: str, version: str) -> None:
    checked = 0
    for document in render(f"overlays/{overlay}"):
        if document["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_schemas.validate(document, version, strict=True)  # strict: no unknown field either
        except kubernetes_schemas.ValidationError as error:
            pytest.fail(f"{document['kind']}/{document['metadata']['name']} on {version}: {error.message}")
        checked += 1
    assert checked >= 3


def test_the_schema_check_catches_a_misspelt_field() -> None:
    (daemonset,) = workloads(render("overlays/node-agent"))
    broken = copy.deepcopy(daemonset)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_schemas.ValidationError):
        kubernetes_schemas.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)
    kubernetes_schemas.validate(daemonset, KUBERNETES_VERSIONS[-1], strict=True)


def test_the_versions_checked_are_bundled_and_the_docs_name_them() -> None:
    bundled = {kubernetes_schemas.major_minor(v) for v in kubernetes_schemas.all_versions()}
    assert set(KUBERNETES_VERSIONS) <= bundled
    assert f"{KUBERNETES_VERSIONS[0]} to {KUBERNETES_VERSIONS[-1]}" in DOCS.read_text()


@pytest.mark.parametrize("kustomization", [k for k in KUSTOMIZATIONS if k != "overlays/node-agent"])
def test_every_network_attachment_definition_is_ipvlan_on_multus0_with_a_json_config(kustomization: str) -> None:
    nads = [o for o in render(kustomization) if o["kind"] == "NetworkAttachmentDefinition"]
    assert nads
    for nad in nads:
        assert (nad["apiVersion"], set(nad["spec"])) == ("k8s.cni.cncf.io/v1", {"config"})
        config = nad_config(nad)
        assert (config["type"], config["master"], config["mode"]) == ("ipvlan", "multus0", "l2")
        assert config["ipam"]["type"] in ("whereabouts", "static")
        assert "ipRanges" not in config["ipam"]  # whereabouts gives a pod one address from each entry


# --- networks: the plan command's blocks, one per AZ -------------------------------------------------------------


def _plan_block(argv: list[str]) -> Object:
    out, err = io.StringIO(), io.StringIO()
    code = multus_ipam_main(["plan", *argv], out=out, err=err)
    assert (code, err.getvalue()) == (EXIT_OK, ""), out.getvalue()
    text = out.getvalue()
    block: Object = json.loads(text[text.index("{") :])
    return block


@pytest.mark.parametrize("path", sorted((DEPLOY / "apps").glob("multus0-*.yaml")), ids=lambda p: p.name)
def test_each_whereabouts_network_is_exactly_the_block_its_plan_command_prints(path: Path) -> None:
    (command,) = PLAN.findall(path.read_text())
    config = nad_config(load_yaml(path))
    assert config["ipam"] == _plan_block(shlex.split(command))
    zone = path.stem.removeprefix("multus0-")
    assert load_yaml(path)["metadata"]["name"] == f"multus0-{zone}"


@pytest.mark.parametrize("overlay", ["init", "sidecar"])
def test_each_example_workload_stays_in_the_zone_of_its_network(overlay: str) -> None:
    objects = render(f"overlays/{overlay}")
    for workload in workloads(objects):
        (network,) = annotation_networks(workload)
        zone = re.fullmatch(r"multus0-(?P<zone>[a-z]+-[a-z]+-\d[a-z])(-static)?", network["name"])
        assert zone, network
        terms = pod_spec(workload)["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        (term,) = terms["nodeSelectorTerms"]
        expressions = {e["key"]: (e["operator"], e["values"]) for e in term["matchExpressions"]}
        assert expressions["topology.kubernetes.io/zone"] == ("In", [zone["zone"]])
        assert expressions[MULTUS_NODE_LABEL[0]] == ("In", [MULTUS_NODE_LABEL[1]])
        assert network["interface"] == "net1"


def test_the_keepalived_pair_has_fixed_addresses_outside_whereabouts_and_each_names_the_other_as_its_peer() -> None:
    objects = render("overlays/sidecar")
    whereabouts = nad_config(next(o for o in objects if o["metadata"]["name"] == "multus0-us-east-1a"))["ipam"]
    excluded = [IPv4Network(cidr) for cidr in whereabouts["exclude"]]
    configs = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("keepalived"))
    pairs = {}
    for workload in workloads(objects):
        (network,) = annotation_networks(workload)
        (address,) = [ip_interface(a) for a in network["ips"]]
        assert address.network == IPv4Network(whereabouts["range"])  # the subnet's mask: on-link
        assert any(address.ip in cidr for cidr in excluded)
        (volume,) = [v for v in pod_spec(workload)["volumes"] if "configMap" in v]
        (item,) = volume["configMap"]["items"]
        pairs[str(address.ip)] = configs["data"][item["key"]]
    assert len(pairs) == 2
    (a, b) = sorted(pairs)
    for me, peer in ((a, b), (b, a)):
        assert f"unicast_src_ip {me}\n" in pairs[me]
        assert re.search(rf"unicast_peer {{\s*{re.escape(peer)}\s*}}", pairs[me])
    vips = {re.search(r"virtual_ipaddress {\s*(\S+) dev net1", text)[1] for text in pairs.values()}  # type: ignore[index]
    (vip,) = vips
    assert any(ip_interface(vip).ip in cidr for cidr in excluded)
    for _workload, manager in managers(objects):
        assert environment(manager, objects)["PIM_FLOATING_IPS"] == str(ip_interface(vip).ip)


# --- IAM: the policy is what the code calls; the trust policies name the right principals -------------------------


def _iam_actions() -> frozenset[str]:
    """The union of every adapter's declared ``IAM_ACTIONS`` (ec2, eni_lookup, and any the node agent adds)."""
    actions: set[str] = set()
    for module in pkgutil.iter_modules(pod_ip_manager.__path__):
        if module.name == "__main__":
            continue  # the command line: importing it runs it
        declared = getattr(import_module(f"pod_ip_manager.{module.name}"), "IAM_ACTIONS", None)
        if declared is not None:
            actions |= set(declared)
    return frozenset(actions)


def _policy(name: str) -> Object:
    loaded: Object = json.loads((DEPLOY / "iam" / name).read_text())
    return loaded


def _actions(statement: Object) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_the_iam_policy_grants_exactly_the_actions_the_adapters_call() -> None:
    granted = {action for statement in _policy("policy.json")["Statement"] for action in _actions(statement)}
    assert granted == _iam_actions()
    assert "ec2:DescribeSubnets" in granted  # PIM_ENI_LOOKUP=ec2 reads the ENIs' subnets


def test_the_iam_policy_scopes_every_mutating_action_to_tagged_enis_in_the_multus_subnets() -> None:
    for statement in _policy("policy.json")["Statement"]:
        if all(action.startswith("ec2:Describe") for action in _actions(statement)):
            assert statement["Resource"] == "*"  # describes support no resource-level permissions
            continue
        assert ":network-interface/" in statement["Resource"]
        assert statement["Condition"]["StringEquals"] == {"aws:ResourceTag/node.k8s.amazonaws.com/no_manage": "true"}
        assert statement["Condition"]["ArnEquals"]["ec2:Subnet"]


def test_the_pod_identity_trust_policy_trusts_the_eks_pods_service_with_assume_role_and_tag_session() -> None:
    (statement,) = _policy("trust-pod-identity.json")["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(_actions(statement)) == ["sts:AssumeRole", "sts:TagSession"]


def test_the_irsa_trust_policy_names_the_oidc_provider_and_exactly_the_packages_service_accounts() -> None:
    (statement,) = _policy("trust-irsa.json")["Statement"]
    provider = statement["Principal"]["Federated"]
    match = re.fullmatch(
        r"arn:aws:iam::\d{12}:oidc-provider/(?P<issuer>oidc\.eks\.[a-z0-9-]+\.amazonaws\.com/id/\w+)", provider
    )
    assert match, provider
    assert _actions(statement) == ["sts:AssumeRoleWithWebIdentity"]
    issuer = match["issuer"]
    conditions = statement["Condition"]["StringEquals"]
    assert conditions[f"{issuer}:aud"] == "sts.amazonaws.com"
    accounts = {
        f"system:serviceaccount:{o['metadata']['namespace']}:{o['metadata']['name']}"
        for kustomization in KUSTOMIZATIONS
        for o in render(kustomization)
        if o["kind"] == "ServiceAccount"
    }
    assert set(conditions[f"{issuer}:sub"]) == accounts


def test_every_pod_runs_as_the_package_service_account_without_a_kubernetes_token() -> None:
    for kustomization in KUSTOMIZATIONS:
        objects = render(kustomization)
        for account in (o for o in objects if o["kind"] == "ServiceAccount"):
            assert account["automountServiceAccountToken"] is False
        for workload in workloads(objects):
            assert pod_spec(workload)["serviceAccountName"] == "pod-ip-manager"
            assert pod_spec(workload)["automountServiceAccountToken"] is False


def test_the_irsa_component_annotates_the_service_account_with_a_role_arn(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    deploy = os.path.relpath(DEPLOY, site)
    (site / "kustomization.yaml").write_text(
        f"resources: [{deploy}/overlays/init]\ncomponents: [{deploy}/components/irsa]\n"
    )
    objects = render_path(site)
    (account,) = [o for o in objects if o["kind"] == "ServiceAccount"]
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws:iam::\d{12}:role/multus-pod-ip-manager", role)


# --- the pod IP manager's containers -----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_ip_manager_container_is_configured_with_valid_settings(overlay: str) -> None:
    objects = render(f"overlays/{overlay}")
    found = list(managers(objects))
    assert found
    for _workload, container in found:
        env = environment(container, objects)
        assert set(env) <= set(VARIABLES) | {"AWS_REGION"}, set(env) - set(VARIABLES)
        (mode,) = container["args"]
        settings = load_settings(env, mode)
        assert settings.mode.value == mode
        if mode != "node-agent":
            assert settings.eni_lookup.value == "ec2"  # no IMDS from pods: the stack's hop limit is 1
            assert settings.region


def test_the_node_agent_runs_on_the_host_network_of_multus_nodes_only_with_the_netns_directory_read_only() -> None:
    objects = render("overlays/node-agent")
    ((daemonset, container),) = managers(objects)
    spec = pod_spec(daemonset)
    assert daemonset["kind"] == "DaemonSet"
    assert container["args"] == ["node-agent"]
    assert spec["hostNetwork"] is True
    assert spec["nodeSelector"][MULTUS_NODE_LABEL[0]] == MULTUS_NODE_LABEL[1]
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    env = environment(container, objects)
    assert volume["hostPath"]["path"] == mount["mountPath"] == env["PIM_NETNS_DIR"] == "/var/run/netns"
    assert (mount["readOnly"], mount["mountPropagation"]) == (True, "HostToContainer")
    port = int(env["PIM_STATUS_ADDRESS"].rsplit(":", 1)[1])
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_node_agents_label_is_the_one_the_stacks_node_group_gives_its_nodes() -> None:
    user_data = json.dumps(resource("NodeLaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"])
    assert f"--node-labels={MULTUS_NODE_LABEL[0]}={MULTUS_NODE_LABEL[1]}" in user_data


def test_the_sidecar_is_a_native_sidecar_releasing_on_exit_with_a_startup_probe_on_its_ready_file() -> None:
    objects = render("overlays/sidecar")
    for workload, manager in managers(objects):
        spec = pod_spec(workload)
        assert manager in spec["initContainers"]
        assert manager["restartPolicy"] == "Always"
        env = environment(manager, objects)
        assert env["PIM_RELEASE_ON_EXIT"] == "true"
        ready = env["PIM_READY_FILE"]
        assert manager["startupProbe"]["exec"]["command"] == ["test", "-f", ready]
        (mount,) = [m for m in manager["volumeMounts"] if ready.startswith(m["mountPath"] + "/")]
        assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == mount["name"])
        (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["topologyKey"] == "kubernetes.io/hostname"


# --- least privilege -----------------------------------------------------------------------------------------------

#: The capabilities a container may add, and why (docs/pod-side.md, "Security").
ADDED_CAPABILITIES = {
    "node-agent": {"SYS_ADMIN"},  # setns(2) into the pods' network namespaces
    "keepalived": {"NET_ADMIN", "NET_RAW"},  # the VIP by netlink; VRRP's raw socket and gratuitous ARP
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_drops_all_capabilities_adds_only_its_own_and_has_a_read_only_root(overlay: str) -> None:
    for workload in workloads(render(f"overlays/{overlay}")):
        spec = pod_spec(workload)
        pod_security = spec.get("securityContext", {})
        for container in containers(spec):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            assert set(security["capabilities"].get("add", [])) == ADDED_CAPABILITIES.get(container["name"], set())
            seccomp = security.get("seccompProfile") or pod_security.get("seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}
            assert security["allowPrivilegeEscalation"] is False
            # The API refuses allowPrivilegeEscalation: false beside the spelling CAP_SYS_ADMIN (not SYS_ADMIN).
            assert not any(c.startswith("CAP_") for c in security["capabilities"].get("add", []))
            if container["name"] == "node-agent":
                # root only because added capabilities are effective only for root (no ambient capabilities)
                assert (security["runAsUser"], security["runAsNonRoot"]) == (0, False)
                assert spec["hostNetwork"] is True
            else:
                assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True
                assert security.get("runAsUser", pod_security.get("runAsUser")) == 65532
                assert not spec.get("hostNetwork")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_cpu_and_memory_requests_and_limits(overlay: str) -> None:
    for workload in workloads(render(f"overlays/{overlay}")):
        for container in containers(pod_spec(workload)):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert set(resources[kind]) == {"cpu", "memory"}, (container["name"], kind)
            assert _mib(resources["requests"]["memory"]) <= _mib(resources["limits"]["memory"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_ip_manager_has_honest_headroom_over_its_measured_peak(overlay: str) -> None:
    for _workload, container in managers(render(f"overlays/{overlay}")):
        resources = container["resources"]
        assert _mib(resources["requests"]["memory"]) >= 1.25 * MEASURED_PEAK_RSS_MIB
        assert _mib(resources["limits"]["memory"]) >= 2 * MEASURED_PEAK_RSS_MIB
    assert f"{MEASURED_PEAK_RSS_MIB} MiB" in DOCS.read_text()


# --- image references -----------------------------------------------------------------------------------------------


def test_every_image_is_a_pinned_reference_and_ours_carry_the_project_version() -> None:
    dockerfile = (DEPLOY / "overlays" / "sidecar" / "keepalived" / "Dockerfile").read_text()
    keepalived = re.search(r"keepalived=1:(?P<version>[\d.]+)-", dockerfile)
    assert keepalived
    images = {
        container["image"]
        for overlay in OVERLAYS
        for workload in workloads(render(f"overlays/{overlay}"))
        for container in containers(pod_spec(workload))
    }
    assert images == {
        f"{IMAGE}:{multus_ipam.__version__}",
        f"keepalived:{keepalived['version']}",
        "public.ecr.aws/docker/library/busybox:1.37.0",
    }


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_placeholder_remains_in_what_is_applied(kustomization: str) -> None:
    text = json.dumps(render(kustomization)).lower()
    for word in ("example", "placeholder", "changeme", "replace", "todo", ":latest"):
        assert word not in text, word
    assert not re.search(r"<[\w -]+>", text)  # <account>, <your region>


#: The example site's values (examples/two-az.yaml's cluster), each listed in docs/pod-side.md's table of what to
#: replace; no other account, subnet or OIDC provider id may appear in the package.
SITE_VALUES = ("111122223333", "us-east-1", "subnet-000000000000000", "0123456789ABCDEF0123456789ABCDEF")


def test_every_example_site_value_in_the_package_is_one_the_docs_tell_to_replace() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.is_file()]
    text = "\n".join(p.read_text() for p in files)
    docs = DOCS.read_text()
    for value in SITE_VALUES:
        assert value in docs, value
    assert set(re.findall(r"\b\d{12}\b", text)) == {"111122223333"}
    assert {s[:22] for s in re.findall(r"subnet-[0-9a-f]{17}", text)} == {"subnet-000000000000000"}
    assert set(re.findall(r"/id/(\w+)", text)) == {"0123456789ABCDEF0123456789ABCDEF"}


def test_the_images_are_pinned_slim_non_root_and_the_managers_requirements_match_the_repository_lock() -> None:
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


def test_the_keepalived_image_is_pinned_non_root_with_two_file_capabilities_and_keepalived_as_entry_point() -> None:
    dockerfile = (DEPLOY / "overlays" / "sidecar" / "keepalived" / "Dockerfile").read_text()
    assert re.search(r"^ARG DEBIAN_IMAGE=debian:\d+\.\d+-slim(@sha256:[0-9a-f]{64})?$", dockerfile, re.MULTILINE)
    assert re.search(r"keepalived=1:\d+\.\d+\.\d+-\S+ ", dockerfile)  # an exact Debian package version
    assert "setcap cap_net_admin,cap_net_raw+ep /usr/sbin/keepalived" in dockerfile
    assert re.search(r"^USER 65532:65532$", dockerfile, re.MULTILINE)
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.*)$", dockerfile, re.MULTILINE)
    assert json.loads(entrypoint)[0] == "/usr/sbin/keepalived"  # no shell between: see the Dockerfile's comment


# --- docs -------------------------------------------------------------------------------------------------------------


def test_the_readme_documents_every_variable_and_exit_code() -> None:
    readme = (FOLDER / "README.md").read_text()
    table = {line.split("|")[1].strip().strip("`") for line in readme.splitlines() if line.startswith("| `PIM_")}
    documented = {name for row in table for name in row.replace("`", "").split(" / ")}
    assert set(VARIABLES) <= documented, set(VARIABLES) - documented
    for code in range(9):
        assert f"\n| {code} |" in readme, code


def test_the_project_version_is_the_tag_the_common_component_gives_the_image() -> None:
    common = load_yaml(DEPLOY / "components" / "common" / "kustomization.yaml")
    (image,) = common["images"]
    assert (image["name"], image["newTag"]) == (IMAGE, multus_ipam.__version__)
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dynamic"] == ["version"]
