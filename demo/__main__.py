"""`make demo`: a Multus node group scaling out and in against the local AWS, through the real Lambda handlers.

Two node groups side by side, one per IP mode, on the realistic local AWS (strict parameters, latency, EC2's
token buckets, eventual consistency, asynchronous attachments, each node's VPC CNI; simulated time). Each
scales out by six workers (three per AZ) in one burst, the lifecycle events are delivered to the function
concurrently (as EventBridge does, each to its own execution environment), one event is delivered a second
time (EventBridge is at-least-once), then two workers are scaled in. The output shows each worker's
Multus interfaces, the lifecycle results, a map of a Multus subnet (workers at the bottom or outside the
reservations, the pod range untouched) and a leak check.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from localaws import LocalAWS
from localaws.clock import Clock
from localaws.scenario import Scenario, Spec, build
from multus_ipam.runtime import LambdaEntry
from multus_ipam.runtime import Mode as FunctionMode
from multus_ipam.settings import OWNER_TAG

AZS = ("us-east-1a", "us-east-1b")
LAMBDA_TIMEOUT_SECONDS = 180
SEED = 2026


class Context:
    """What a Lambda context gives the handler: the function's 180 s (template.yaml), counted on the local AWS
    clock from the invocation's start."""

    aws_request_id = "demo"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._started = clock.now()

    def get_remaining_time_in_millis(self) -> int:
        elapsed = (self._clock.now() - self._started).total_seconds()
        return max(int((LAMBDA_TIMEOUT_SECONDS - elapsed) * 1000), 0)


@dataclass(frozen=True)
class Mode:
    title: str
    function: FunctionMode
    spec: Spec
    env: Callable[[Scenario, dict[str, IPv4Network]], dict[str, str]]
    pod_range: Callable[[IPv4Network], IPv4Network]
    show_failure: bool = False


def _subnets(scenario: Scenario) -> list[str]:
    return [s for az in scenario.azs for s in scenario.multus_subnets[az]]


def _static_env(scenario: Scenario, cidrs: dict[str, IPv4Network]) -> dict[str, str]:
    bounds = ",".join(f"{s}={cidrs[s][191]}" for s in _subnets(scenario))  # workers up to .191, pods .192/26
    return _common_env(scenario) | {"WORKER_IP_UPPER_BOUNDS": bounds}


def _cidr_env(scenario: Scenario, _cidrs: dict[str, IPv4Network]) -> dict[str, str]:
    return _common_env(scenario)  # the function checks that each subnet has an explicit reservation


def _common_env(scenario: Scenario) -> dict[str, str]:
    return {
        "AUTOSCALING_GROUP_NAME": scenario.group_name,
        "MULTUS_SUBNET_IDS": ",".join(_subnets(scenario)),
        "MULTUS_SECURITY_GROUP_IDS": scenario.security_group_id,
        "OWNER_ID": f"demo-{scenario.group_name}",
    }


def _pods_top_quarter(network: IPv4Network) -> IPv4Network:
    return list(network.subnets(new_prefix=network.prefixlen + 2))[-1]


MODES = (
    Mode(
        title="static: workers take the lowest free addresses, capped below the pod range",
        function=FunctionMode.STATIC,
        spec=Spec(group_name="multus-static", max_size=12),
        env=_static_env,
        pod_range=_pods_top_quarter,
        show_failure=True,
    ),
    Mode(
        title="cidr-reservation: EC2 picks worker addresses outside the pods' explicit reservations",
        function=FunctionMode.CIDR_RESERVATION,
        spec=Spec(
            group_name="multus-cidr",
            max_size=12,
            vpc_cidr="10.1.0.0/16",
            primary_cidrs=("10.1.0.0/20", "10.1.16.0/20"),
            multus_cidrs=(("10.1.64.0/24", "10.1.65.0/24"), ("10.1.66.0/24", "10.1.67.0/24")),
            explicit_reservations=("10.1.64.192/26", "10.1.65.192/26", "10.1.66.192/26", "10.1.67.192/26"),
        ),
        env=_cidr_env,
        pod_range=_pods_top_quarter,
    ),
)


def deliver(aws: LocalAWS, function: FunctionMode, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deliver events at once, as EventBridge does: each to a fresh execution environment of the function (the
    functions' own entry point, on the local AWS clock), as concurrent callers of the local AWS."""

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return LambdaEntry(function, os.environ, clock=aws.clock)(event, Context(aws.clock))

    with contextlib.redirect_stdout(io.StringIO()):
        # (the functions' JSON logs and EMF metrics go to stdout, as in Lambda; not wanted on the demo's screen)
        outcomes = aws.run_concurrently([lambda e=e: invoke(e) for e in events])  # type: ignore[misc]
    aws.clock.advance(15)  # a moment later: attachments have finished, new ENIs show in every describe
    return [outcome.get() for outcome in outcomes]


def show_workers(aws: LocalAWS, scenario: Scenario, owner: str) -> None:
    ec2 = aws.client("ec2")
    autoscaling = aws.client("autoscaling")
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[scenario.group_name])
    instances = sorted(
        group["AutoScalingGroups"][0]["Instances"], key=lambda i: (i["AvailabilityZone"], i["InstanceId"])
    )
    print("    (each interface: address, last 6 characters of the ENI id, DoT = DeleteOnTermination set)")
    print(f"    {'instance':<21} {'AZ':<11} {'state':<12} {'eth1 (device 1)':<28} {'eth2 (device 2)':<28}")
    for item in instances:
        enis = ec2.describe_network_interfaces(
            Filters=[
                {"Name": "attachment.instance-id", "Values": [item["InstanceId"]]},
                {"Name": f"tag:{OWNER_TAG}", "Values": [owner]},
            ]
        )["NetworkInterfaces"]
        by_index = {e["Attachment"]["DeviceIndex"]: e for e in enis}
        cells = []
        for index in (1, 2):
            eni = by_index.get(index)
            dot = " DoT" if eni and eni["Attachment"]["DeleteOnTermination"] else ""
            cells.append(f"{eni['PrivateIpAddress']} {eni['NetworkInterfaceId'][-6:]}{dot}" if eni else "-")
        print(
            f"    {item['InstanceId']:<21} {item['AvailabilityZone']:<11} {item['LifecycleState']:<12} "
            f"{cells[0]:<28} {cells[1]:<28}"
        )


def subnet_map(aws: LocalAWS, subnet_id: str, network: IPv4Network, pod_range: IPv4Network) -> None:
    """One character per address: r AWS-reserved, W worker ENI, p pod range, . free (rows of 64)."""
    ec2 = aws.client("ec2")
    enis = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])["NetworkInterfaces"]
    used = {IPv4Address(a["PrivateIpAddress"]) for e in enis for a in e["PrivateIpAddresses"]}
    first, last = int(network.network_address), int(network.broadcast_address)
    cells = []
    for value in range(first, last + 1):
        address = IPv4Address(value)
        if value - first < 4 or value == last:
            cells.append("r")
        elif address in used:
            cells.append("W" if address not in pod_range else "!")
        elif address in pod_range:
            cells.append("p")
        else:
            cells.append(".")
    print(f"    {subnet_id} {network}  (r AWS-reserved, W worker, p pod range {pod_range}, . free, ! conflict)")
    for row in range(0, len(cells), 64):
        print(f"      .{row:<3} {''.join(cells[row : row + 64])}")


def run_mode(aws: LocalAWS, number: int, mode: Mode, previous_env: dict[str, str]) -> tuple[bool, dict[str, str]]:
    print(f"\n{number}. {mode.title}")
    scenario = build(aws, mode.spec)
    ec2 = aws.client("ec2")
    found = ec2.describe_subnets(SubnetIds=_subnets(scenario))["Subnets"]
    cidrs = {s["SubnetId"]: IPv4Network(s["CidrBlock"]) for s in found}
    env = mode.env(scenario, cidrs)
    for key in previous_env:  # each function reads its configuration once, from the environment
        os.environ.pop(key, None)
    os.environ.update(env)
    owner = env["OWNER_ID"]
    print(f"   group {scenario.group_name}: launch and terminate hooks declared at creation; Multus subnets:")
    for az in scenario.azs:
        print(f"     {az}: " + ", ".join(f"{s} {cidrs[s]}" for s in scenario.multus_subnets[az]))
    if "WORKER_IP_UPPER_BOUNDS" in env:
        print("   workers may take .4 to .191 of each subnet (WORKER_IP_UPPER_BOUNDS); pods get .192/26 (whereabouts)")
    else:
        print("   each subnet has an explicit CIDR reservation .192/26 for the pods; EC2 never assigns from it")

    autoscaling = aws.client("autoscaling")
    autoscaling.set_desired_capacity(AutoScalingGroupName=scenario.group_name, DesiredCapacity=6)
    launches = [aws.lifecycle.event(a) for a in aws.lifecycle.active() if a.group == scenario.group_name]
    print(f"\n   scale out 0 -> 6: {len(launches)} instances wait in Pending:Wait; delivering their events at once")
    outcomes = deliver(aws, mode.function, launches)
    print(f"   results: {_tally(outcomes)}")
    show_workers(aws, scenario, owner)

    again = deliver(aws, mode.function, launches[:1])[0]
    print(f"\n   the first launch event delivered again (EventBridge is at-least-once): {again['status']}, ", end="")
    print(f"adopted {sum(e['adopted'] for e in again['enis'])} ENIs, created none")

    autoscaling.set_desired_capacity(AutoScalingGroupName=scenario.group_name, DesiredCapacity=4)
    terminations = [aws.lifecycle.event(a) for a in aws.lifecycle.active() if a.group == scenario.group_name]
    leaving = ", ".join(e["detail"]["EC2InstanceId"] for e in terminations)
    print(f"\n   scale in 6 -> 4: {leaving} wait in Terminating:Wait; delivering their events")
    print(f"   results: {_tally(deliver(aws, mode.function, terminations))}; their ENIs went with them (DoT)")
    show_workers(aws, scenario, owner)

    if mode.show_failure:
        show_failed_launch(aws, scenario, mode.function)

    first_subnet = scenario.multus_subnets[scenario.azs[0]][0]
    print()
    subnet_map(aws, first_subnet, cidrs[first_subnet], mode.pod_range(cidrs[first_subnet]))

    ours = ec2.describe_network_interfaces(Filters=[{"Name": f"tag:{OWNER_TAG}", "Values": [owner]}])
    leaked = [e["NetworkInterfaceId"] for e in ours["NetworkInterfaces"] if e["Status"] != "in-use"]
    attached = len(ours["NetworkInterfaces"]) - len(leaked)
    in_pod_range = [
        e["PrivateIpAddress"]
        for e in ours["NetworkInterfaces"]
        if IPv4Address(e["PrivateIpAddress"]) in mode.pod_range(cidrs[e["SubnetId"]])
    ]
    results = [r.result for r in aws.lifecycle.results if r.group == scenario.group_name]
    workers = 4
    print(
        f"\n   lifecycle results accepted by Auto Scaling: {results.count('CONTINUE')} CONTINUE, "
        f"{results.count('ABANDON')} ABANDON (launches and terminations; the redelivery completed nothing)"
    )
    print(
        f"   ENIs: {attached} attached ({workers} workers x 2 subnets), {len(leaked)} leaked, "
        f"{len(in_pod_range)} in a pod range"
    )
    return (not leaked and not in_pod_range and attached == 2 * workers), env


def show_failed_launch(aws: LocalAWS, scenario: Scenario, function: FunctionMode) -> None:
    """A launch that cannot finish: it rolls back what it made and abandons; Auto Scaling replaces the node."""
    autoscaling = aws.client("autoscaling")
    print("\n   a failure: the function may not attach ENIs (say an IAM policy lost ec2:AttachNetworkInterface)")
    aws.faults.fail("ec2", "AttachNetworkInterface", code="UnauthorizedOperation", status=403)
    autoscaling.set_desired_capacity(AutoScalingGroupName=scenario.group_name, DesiredCapacity=5)
    (event,) = [aws.lifecycle.event(a) for a in aws.lifecycle.active() if a.group == scenario.group_name]
    outcome = deliver(aws, function, [event])[0]
    print(f"   {event['detail']['EC2InstanceId']}: {outcome['result']} after rollback; reason: {outcome['reason']}")
    aws.faults.clear()
    (replacement,) = [aws.lifecycle.event(a) for a in aws.lifecycle.active() if a.group == scenario.group_name]
    print(f"   Auto Scaling terminated it and launched {replacement['detail']['EC2InstanceId']}; permission restored:")
    print(f"   results: {_tally(deliver(aws, function, [replacement]))}")
    autoscaling.set_desired_capacity(AutoScalingGroupName=scenario.group_name, DesiredCapacity=4)
    terminations = [aws.lifecycle.event(a) for a in aws.lifecycle.active() if a.group == scenario.group_name]
    deliver(aws, function, terminations)
    print(f"   scaled back to 4 workers ({len(terminations)} more termination handled)")


def _tally(outcomes: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        key = f"{outcome['status']} {outcome.get('result') or ''}".strip()
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{n} x {key}" for key, n in sorted(counts.items()))


def main() -> int:
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    print("eks-multus-ipam demo: Multus node groups scaling on the local AWS (moto + what moto lacks)")
    print("Each worker gets one ENI per Multus subnet of its AZ, tagged node.k8s.amazonaws.com/no_manage=true.")
    ok, env = True, dict[str, str]()
    print(f"The local AWS is the realistic one (localaws.realism: throttled, eventually consistent), seed {SEED}.")
    with LocalAWS(region="us-east-1", seed=SEED) as aws:
        for number, mode in enumerate(MODES, start=1):
            passed, env = run_mode(aws, number, mode, env)
            ok &= passed
    print("\nall good: no leaked ENI, no worker in a pod range" if ok else "\nSOMETHING IS WRONG (see above)")
    print('next: `python -m multus_ipam plan --help` to plan your subnets, then README "Deploy".')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
