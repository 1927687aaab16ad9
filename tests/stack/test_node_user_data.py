"""The node's user data: node/* embedded verbatim (they cannot drift from the files tests/node runs), a shell
part that bash accepts, paths that agree with each other, a kubelet drop-in consistent with its wait, and a
size EC2 accepts."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.embed_node_files import EMBEDDED, shipped
from tests.stack.template import resolve, resource, template

ROOT = Path(__file__).resolve().parents[2]
#: Where the user data installs each file of node/.
INSTALLED = {
    "/usr/local/sbin/multus-link-up": "node/multus-link-up",
    "/usr/local/sbin/multus-links-wait": "node/multus-links-wait",
    "/etc/systemd/system/multus-link-up@.service": "node/multus-link-up@.service",
    "/etc/udev/rules.d/90-multus-link-up.rules": "node/90-multus-link-up.rules",
    "/etc/systemd/system/kubelet.service.d/10-multus-links.conf": "node/10-multus-links.conf",
}
PLAN_PATH = "/etc/eks-multus-ipam/links.plan"
#: EC2 takes at most 16 KB of user data before base64 encoding.
USER_DATA_LIMIT = 16 * 1024
A_PLAN = "subnet-0aaaaaaaaaaaaaaaa=eu-west-1a=multus0 subnet-0bbbbbbbbbbbbbbbb=eu-west-1b=multus0"


def _user_data() -> tuple[str, dict[str, Any]]:
    user_data = resource("NodeLaunchTemplate")["Properties"]["LaunchTemplateData"]["UserData"]["Fn::Base64"]
    text, variables = user_data["Fn::Sub"]
    return text, variables


def rendered(*, max_pods: bool = False) -> str:
    """The user data as CloudFormation renders it, with a plan and the cluster's parameters."""
    text, variables = _user_data()
    values = {
        name: A_PLAN
        if name == "LinkPlan"
        else resolve(value, {"HasMaxPods": max_pods, "IsContinueOnFailure": False}, {"KubeletMaxPods": "58"})
        for name, value in variables.items()
    }
    values |= {
        "ClusterName": "multus-cluster",
        "ClusterEndpoint": "https://0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
        "ClusterCertificateAuthority": "LS0tLS1CRUdJTi" * 100,  # a real one is ~1.5 KB
        "ClusterServiceCidr": "172.20.0.0/16",
    }
    return re.sub(r"\$\{([^}!]+)\}", lambda match: str(values[match.group(1)]), text)


def shell_part(user_data: str) -> str:
    (part,) = [p for p in user_data.split("--//") if "Content-Type: text/x-shellscript" in p]
    return part.split("\n\n", 1)[1]


def heredocs(script: str) -> dict[str, str]:
    return dict(re.findall(r"^cat > (\S+) <<'MULTUS_EOF'\n(.*?)^MULTUS_EOF$", script, re.MULTILINE | re.DOTALL))


def test_given_the_template_when_reading_the_embedded_node_files_then_each_equals_its_file() -> None:
    _, variables = _user_data()
    for variable, path in EMBEDDED.items():
        assert variables[variable] == shipped(path), (
            f"template.yaml's {variable} differs from {path}: run .venv/bin/python scripts/embed_node_files.py"
        )


def test_given_the_rendered_user_data_when_reading_its_heredocs_then_each_file_is_installed_verbatim() -> None:
    files = heredocs(shell_part(rendered()))
    assert set(files) == set(INSTALLED)
    for installed, path in INSTALLED.items():
        assert files[installed] == shipped(path), installed
        assert "\nMULTUS_EOF\n" not in (ROOT / path).read_text()


def test_given_the_shell_part_when_bash_reads_it_then_its_syntax_is_valid() -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    for max_pods in (False, True):
        script = shell_part(rendered(max_pods=max_pods))
        assert script.startswith("#!/bin/bash\n")
        checked = subprocess.run([bash, "-n"], input=script, capture_output=True, text=True, check=False)  # noqa: S603
        assert checked.returncode == 0, checked.stderr
    for path in ("node/multus-link-up", "node/multus-links-wait"):
        checked = subprocess.run([bash, "-n", str(ROOT / path)], capture_output=True, text=True, check=False)  # noqa: S603
        assert checked.returncode == 0, checked.stderr


def test_given_the_scripts_when_shellcheck_reads_them_then_it_finds_nothing(tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    user_data = tmp_path / "user-data.sh"
    user_data.write_text(shell_part(rendered()))
    scripts = [str(ROOT / "node/multus-link-up"), str(ROOT / "node/multus-links-wait"), str(user_data)]
    checked = subprocess.run([shellcheck, *scripts], capture_output=True, text=True, check=False)  # noqa: S603
    assert checked.returncode == 0, checked.stdout


#: The label kubelet gives every node of the stack's group (the node agent's DaemonSet selects it).
MULTUS_NODE_LABEL = "eks-multus-ipam/multus=true"


def node_config(user_data: str) -> dict[str, Any]:
    (part,) = [p for p in user_data.split("--//") if "Content-Type: application/node.eks.aws" in p]
    loaded: dict[str, Any] = yaml.safe_load(part.split("\n\n", 1)[1])
    return loaded


@pytest.mark.parametrize("max_pods", [False, True], ids=["default-max-pods", "max-pods"])
def test_given_the_node_config_when_rendered_then_kubelet_labels_the_node_a_multus_node(max_pods: bool) -> None:
    config = node_config(rendered(max_pods=max_pods))
    assert config["kind"] == "NodeConfig"
    assert config["spec"]["kubelet"]["flags"] == [f"--node-labels={MULTUS_NODE_LABEL}"]
    assert config["spec"]["kubelet"].get("config") == ({"maxPods": 58} if max_pods else None)
    assert config["spec"]["cluster"]["name"] == "multus-cluster"


def test_given_the_user_data_when_rendered_then_it_fits_ec2_s_limit_and_is_ascii() -> None:
    user_data = rendered(max_pods=True)
    assert len(user_data.encode()) < USER_DATA_LIMIT - 2048, "keep room for larger plans and certificates"
    assert user_data.isascii()  # the shell part is declared charset="us-ascii"


def test_given_the_user_data_when_reading_its_substitutions_then_each_is_a_variable_or_a_parameter() -> None:
    text, variables = _user_data()
    known = set(variables) | set(template()["Parameters"])
    assert set(re.findall(r"\$\{([^}!]+)\}", text)) <= known


def test_given_the_plan_when_written_by_the_user_data_then_where_both_scripts_read_it() -> None:
    script = shell_part(rendered())
    assert f'echo "{A_PLAN}" > {PLAN_PATH}' in script
    for path in ("node/multus-link-up", "node/multus-links-wait"):
        assert f"plan_file=${{MULTUS_LINK_PLAN:-{PLAN_PATH}}}" in (ROOT / path).read_text()


@pytest.mark.parametrize(("failure_result", "on_timeout"), [("ABANDON", "fail"), ("CONTINUE", "start-kubelet")])
def test_given_the_failure_result_when_the_wait_gives_up_then_kubelet_starts_only_with_continue(
    failure_result: str, on_timeout: str
) -> None:
    # CONTINUE lets a node in without its Multus ENIs: it must then start kubelet after the wait.
    _, variables = _user_data()
    condition = template()["Conditions"]["IsContinueOnFailure"]
    assert condition == {"Fn::Equals": [{"Ref": "FailureResult"}, "CONTINUE"]}
    chosen = resolve(variables["LinksOnTimeout"], {"IsContinueOnFailure": failure_result == "CONTINUE"})
    assert chosen == on_timeout
    script = shell_part(rendered())
    env_file = "/etc/eks-multus-ipam/links-wait.env"
    assert f'echo "MULTUS_LINKS_ON_TIMEOUT=${{LinksOnTimeout}}" > {env_file}' in _user_data()[0]
    assert env_file in script
    assert f"EnvironmentFile=-{env_file}\n" in (ROOT / "node/10-multus-links.conf").read_text()
    assert "on_timeout=${MULTUS_LINKS_ON_TIMEOUT:-fail}" in (ROOT / "node/multus-links-wait").read_text()


def test_given_the_unit_the_rule_and_the_drop_in_when_read_then_they_run_the_installed_scripts() -> None:
    unit = (ROOT / "node/multus-link-up@.service").read_text()
    rule = (ROOT / "node/90-multus-link-up.rules").read_text()
    drop_in = (ROOT / "node/10-multus-links.conf").read_text()
    assert "ExecStart=/usr/local/sbin/multus-link-up %i\n" in unit
    assert 'ENV{SYSTEMD_WANTS}+="multus-link-up@$name.service"' in rule
    assert 'ACTION=="add", SUBSYSTEM=="net", ENV{ID_NET_DRIVER}=="ena|ixgbevf|vif"' in rule
    assert "ExecStartPre=/usr/local/sbin/multus-links-wait\n" in drop_in


def _setting(text: str, key: str) -> str:
    (value,) = re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)
    return str(value)


def test_given_the_kubelet_drop_in_when_compared_with_its_wait_then_the_start_timeout_outlasts_the_wait() -> None:
    drop_in = (ROOT / "node/10-multus-links.conf").read_text()
    wait = int(_setting(drop_in, "Environment").removeprefix("MULTUS_LINKS_WAIT_SECONDS="))
    assert wait == 600
    assert "wait_seconds=${MULTUS_LINKS_WAIT_SECONDS:-600}" in (ROOT / "node/multus-links-wait").read_text()
    # systemd's default TimeoutStartSec (90 s) would kill the wait; the timeout covers it and kubelet's start.
    assert int(_setting(drop_in, "TimeoutStartSec")) >= wait + 30
    assert "[Service]\n" in drop_in


def test_given_the_user_data_when_reading_its_order_then_the_drop_in_is_loaded_before_the_links_are_started() -> None:
    script = shell_part(rendered())
    drop_in = script.index("/etc/systemd/system/kubelet.service.d/10-multus-links.conf")
    reload = script.index("systemctl daemon-reload")
    existing = script.index('systemctl start --no-block "multus-link-up@$(basename "$dev").service"')
    assert drop_in < reload < existing
    assert "systemctl restart --no-block kubelet.service" in script  # if kubelet was started before us


def test_given_a_refusal_for_good_when_the_unit_reads_its_exit_status_then_it_does_not_restart() -> None:
    # multus-link-up exits 2 when restarting changes nothing (tests/node: a name taken, a second ENI in one subnet,
    # an invalid name), 1 when a later run may succeed (IMDS): only the latter is restarted.
    unit = (ROOT / "node/multus-link-up@.service").read_text()
    assert "Restart=on-failure" in unit
    assert "RestartPreventExitStatus=2" in unit.splitlines()
    script = (ROOT / "node/multus-link-up").read_text()
    assert "exit 2" in script
    assert "2: refused for good (the unit does not restart)" in script
