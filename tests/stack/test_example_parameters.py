"""examples/two-az.yaml, the parameters of a typical deployment, is one `sam deploy --parameter-overrides file://...`
takes and template.yaml accepts: every key a parameter, every parameter without a default given, every value one
its parameter allows, the template's Rules satisfied; the functions start with the environment it gives them and
the link plan names two links per AZ. The README's and docs/deploy.md's commands use it as the file's own header says.

The file is read as SAM CLI reads it (``samcli.cli.types.CfnParameterOverridesType``: a YAML mapping, a list
joined with commas, any other value ``str()``); where SAM CLI's own virtualenv exists (``make test`` builds it
first), one test has it read the file too.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from demo.__main__ import worker_bound
from multus_ipam.link_plan import Status, decide
from multus_ipam.links import parse_plan
from multus_ipam.settings import load_settings
from tests.stack.template import STACK_NAME, resolve, resource, template

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "two-az.yaml"
README = ROOT / "README.md"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SAM_PYTHON = ROOT / ".sam-venv" / "bin" / "python"

#: What CloudFormation checks an AWS-specific parameter type's values against (before it looks them up).
AWS_ID_PATTERNS = {
    "List<AWS::EC2::Subnet::Id>": re.compile(r"subnet-[0-9a-f]{8,17}"),
    "List<AWS::EC2::SecurityGroup::Id>": re.compile(r"sg-[0-9a-f]{8,17}"),
}

Value = str | list[str]


def read_as_sam_does(path: Path) -> dict[str, str]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path.name}: not a mapping of parameter names to values"
    overrides: dict[str, str] = {}
    for key, value in loaded.items():
        # str(True) is 'True', which no AllowedValues of ours holds; and YAML 1.1 (PyYAML) and 1.2 (SAM CLI's
        # ruamel) disagree on what yes/no/on/off are: quote them.
        assert not isinstance(value, bool), f"{key}: a YAML boolean reaches CloudFormation as {value!s}: quote it"
        assert isinstance(value, str | int | list), f"{key}: {value!r} is not a string, a number or a list"
        if isinstance(value, list):
            assert all(isinstance(item, str) for item in value), f"{key}: a list of strings, please"
            overrides[str(key)] = ",".join(item.strip() for item in value if item)
        else:
            overrides[str(key)] = str(value)
    return overrides


def parameters() -> dict[str, Any]:
    found: dict[str, Any] = template()["Parameters"]
    return found


def is_list(kind: str) -> bool:
    return kind == "CommaDelimitedList" or kind.startswith("List<")


def stack_values(overrides: Mapping[str, str]) -> dict[str, Value]:
    """Every parameter's value as CloudFormation has it: the example's, else the default; lists split."""
    values: dict[str, Value] = {}
    for name, spec in parameters().items():
        raw = overrides.get(name, str(spec.get("Default", "")))
        values[name] = raw.split(",") if is_list(spec["Type"]) else raw
    return values


def example() -> dict[str, str]:
    return read_as_sam_does(EXAMPLE)


def evaluate(node: Any, values: Mapping[str, Value], conditions: Mapping[str, bool]) -> Any:
    """The condition and rule functions the template uses, as CloudFormation evaluates them. Any other fails
    loudly: a new function needs its meaning here first."""
    if not isinstance(node, dict):
        return node
    ((function, argument),) = node.items()

    def each(items: list[Any]) -> list[Any]:
        return [evaluate(item, values, conditions) for item in items]

    functions: dict[str, Callable[[Any], Any]] = {
        "Ref": lambda name: values[name],
        "Condition": lambda name: conditions[name],
        "Fn::Equals": lambda pair: str(each(pair)[0]) == str(each(pair)[1]),
        "Fn::Not": lambda operand: not each(operand)[0],
        "Fn::And": lambda operands: all(each(operands)),
        "Fn::Or": lambda operands: any(each(operands)),
        "Fn::Contains": lambda pair: each(pair)[1] in each(pair)[0],
        "Fn::EachMemberEquals": lambda pair: all(member == each(pair)[1] for member in each(pair)[0]),
    }
    assert function in functions, f"{function}: not evaluated here yet"
    return functions[function](argument)


def all_conditions(values: Mapping[str, Value]) -> dict[str, bool]:
    conditions: dict[str, bool] = {}
    for name, expression in template()["Conditions"].items():  # each refers only to those before it
        conditions[name] = bool(evaluate(expression, values, conditions))
    return conditions


def function_environment(function: str, overrides: Mapping[str, str]) -> dict[str, str]:
    """The variables the stack gives ``function`` with the example's parameters (Globals and its own)."""
    values = stack_values(overrides)
    variables = {
        **template()["Globals"]["Function"]["Environment"]["Variables"],
        **resource(function)["Properties"].get("Environment", {}).get("Variables", {}),
    }
    # Refs to the stack's resources stand in as the values CloudFormation would give.
    known = {**values, "IntakeQueue": "https://sqs.us-east-1.amazonaws.com/111122223333/intake"}
    conditions = all_conditions(values)
    return {name: str(resolve(value, conditions, known)) for name, value in variables.items()}


# --- the file against the template's parameters -----------------------------------------------------------------


def test_given_the_example_when_reading_its_keys_then_each_is_a_parameter_of_the_template() -> None:
    unknown = sorted(set(example()) - set(parameters()))
    assert not unknown, f"not parameters of template.yaml: {unknown}"


def test_given_the_example_when_reading_its_keys_then_every_parameter_without_a_default_is_given() -> None:
    required = {name for name, spec in parameters().items() if "Default" not in spec}
    assert required, "template.yaml has parameters without a default"
    assert required <= set(example()), sorted(required - set(example()))


def test_given_the_example_then_it_is_a_new_node_group_in_two_azs_with_two_multus_subnets_in_static_mode() -> None:
    values = example()
    assert values["CreateNodeGroup"] == "true"
    assert values["IpMode"] == "static"
    assert len(values["MultusSubnetIds"].split(",")) == 4
    assert len(values["NodeSubnetIds"].split(",")) == 2


@pytest.mark.parametrize("name", sorted(yaml.safe_load(EXAMPLE.read_text())))
def test_given_a_value_of_the_example_then_its_parameter_accepts_it(name: str) -> None:
    spec = parameters()[name]
    raw = example()[name]
    items = raw.split(",") if is_list(spec["Type"]) else [raw]
    if pattern := AWS_ID_PATTERNS.get(spec["Type"]):
        assert all(pattern.fullmatch(item) for item in items), f"{name}: {items} are not all {spec['Type']}"
    if "AllowedValues" in spec:
        assert raw in [str(allowed) for allowed in spec["AllowedValues"]], f"{name}: {raw!r}"
    if "AllowedPattern" in spec:  # CloudFormation matches the whole value
        assert re.fullmatch(spec["AllowedPattern"], raw), f"{name}: {raw!r} !~ {spec['AllowedPattern']}"
    if "MinLength" in spec:
        assert len(raw) >= int(spec["MinLength"]), name
    if "MaxLength" in spec:
        assert len(raw) <= int(spec["MaxLength"]), name
    if spec["Type"] == "Number":
        number = float(raw)
        assert number >= float(spec.get("MinValue", number)), f"{name}: {raw} < MinValue {spec['MinValue']}"
        assert number <= float(spec.get("MaxValue", number)), f"{name}: {raw} > MaxValue {spec['MaxValue']}"


@pytest.mark.parametrize("rule", sorted(template()["Rules"]))
def test_given_the_example_when_checking_the_templates_rules_then_each_holds(rule: str) -> None:
    values = stack_values(example())
    spec = template()["Rules"][rule]
    if "RuleCondition" in spec and not evaluate(spec["RuleCondition"], values, {}):
        return
    for assertion in spec["Assertions"]:
        assert evaluate(assertion["Assert"], values, {}), f"{rule}: {assertion['AssertDescription']}"


def test_given_the_examples_worker_bounds_then_each_is_the_recommended_split_of_its_24() -> None:
    # docs/subnet-plan.md: workers .4-.63, pods .64-.254 (demo.worker_bound computes it, tests/plan holds it).
    bounds = dict(pair.split("=") for pair in example()["WorkerIpUpperBounds"].split(","))
    networks = {subnet: IPv4Network(f"{bound}/24", strict=False) for subnet, bound in bounds.items()}

    assert {subnet: str(worker_bound(network)) for subnet, network in networks.items()} == bounds
    assert len(set(networks.values())) == len(networks), "one /24 per Multus subnet"


# --- what the stack makes of it ---------------------------------------------------------------------------------


@pytest.mark.parametrize("function", ["StaticIpFunction", "CidrReservationFunction", "ReconcilerFunction"])
def test_given_the_example_when_a_function_starts_then_it_accepts_its_environment(function: str) -> None:
    env = function_environment(function, example())

    settings = load_settings(env)  # raises ConfigurationError naming the variable

    assert settings.group_name == f"{STACK_NAME}-multus-nodes"
    assert len(settings.subnet_ids) == 4
    if function == "StaticIpFunction":
        assert set(settings.worker_upper_bounds) == set(settings.subnet_ids), "a bound for every Multus subnet"


def test_given_the_example_in_two_azs_when_planning_links_then_every_node_gets_multus0_and_multus1() -> None:
    # The file's layout: the 1st and 3rd Multus subnets in one AZ, the 2nd and 4th in the other.
    values = stack_values(example())
    conditions = all_conditions(values)
    properties = {
        name: resolve(value, conditions, values) for name, value in resource("LinkPlan")["Properties"].items()
    }
    subnets = values["MultusSubnetIds"]
    zones = dict(zip(subnets, ["az-a", "az-b", "az-a", "az-b"], strict=True))

    answer = decide({"RequestType": "Create", "ResourceProperties": properties}, lambda ids: zones)

    assert answer.status is Status.SUCCESS, answer.reason
    plan = parse_plan(answer.data["Plan"])
    for zone in ("az-a", "az-b"):
        assert [link.name for link in plan if link.availability_zone == zone] == ["multus0", "multus1"]


@pytest.mark.skipif(not SAM_PYTHON.exists(), reason="SAM CLI's virtualenv (.sam-venv) is not installed: make sam-venv")
def test_given_the_example_when_sam_cli_reads_it_then_it_reads_what_these_tests_check() -> None:
    script = (
        "import json, sys\n"
        "from samcli.cli.types import CfnParameterOverridesType\n"
        "print(json.dumps(CfnParameterOverridesType().convert('file://' + sys.argv[1], None, None)))\n"
    )
    read = subprocess.run(  # noqa: S603  # our own virtualenv's python, our own script and file
        [str(SAM_PYTHON), "-c", script, str(EXAMPLE)], capture_output=True, text=True, check=True, timeout=120
    )

    assert json.loads(read.stdout) == example()


# --- the README and the file's header ---------------------------------------------------------------------------


def commands(path: Path) -> list[str]:
    """The command lines of the README's sh blocks, or of the example's header (comment lines indented by 3)."""
    text = path.read_text()
    if path.suffix == ".md":
        lines = [line for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL) for line in block.splitlines()]
    else:
        lines = [line.removeprefix("#   ") for line in text.splitlines() if line.startswith("#   ")]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in lines]


@pytest.mark.parametrize("where", [README, DEPLOY_DOC, EXAMPLE], ids=lambda path: path.name)
def test_given_the_deploy_commands_when_reading_them_then_they_deploy_a_copy_of_the_example(where: Path) -> None:
    lines = commands(where)
    copies = [line.split() for line in lines if line.startswith(f"cp {EXAMPLE.relative_to(ROOT)} ")]
    assert len(copies) == 1, f"{where.name}: one `cp {EXAMPLE.relative_to(ROOT)} ...` line, found {copies}"
    ((_, _, copy),) = copies
    deploys = [line for line in lines if "sam deploy" in line and "--parameter-overrides" in line]
    assert deploys, f"{where.name}: no sam deploy --parameter-overrides"
    assert all(f"--parameter-overrides file://{copy}" in line for line in deploys), deploys


def test_given_the_example_when_reading_its_lines_then_every_placeholder_is_marked_replace() -> None:
    for number, line in enumerate(EXAMPLE.read_text().splitlines(), start=1):
        value = line.split(" #")[0]
        if re.search(r"\b(subnet|sg)-0{8,}", value) or value.startswith("Cluster"):
            assert "# REPLACE" in line, f"two-az.yaml:{number}: a placeholder not marked REPLACE: {line}"
