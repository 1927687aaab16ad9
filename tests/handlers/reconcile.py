"""The scheduled reconciler wired to the test world, with the intake queue it puts lost events back into."""

from __future__ import annotations

from localaws import LocalAWS
from multus_ipam.aws.clients import Clients, retry_config
from multus_ipam.reconciler import Reconciler, ReconcileReport
from multus_ipam.runtime import build_reconciler
from tests.handlers.world import LAUNCH_HOOK, TERMINATE_HOOK, FakeClock, World

INTAKE_QUEUE = "multus-ipam-intake"


def intake_queue_url(aws: LocalAWS) -> str:
    """The intake queue (created on first use: CreateQueue with the same name and attributes is idempotent)."""
    return str(aws.client("sqs").create_queue(QueueName=INTAKE_QUEUE)["QueueUrl"])


def make_reconciler(world: World, clock: FakeClock | None = None, **env: str) -> Reconciler:
    clients = Clients(
        ec2=world.aws.client("ec2", config=retry_config(10)),
        autoscaling=world.aws.client("autoscaling", config=retry_config(10)),
        sqs=world.aws.client("sqs", config=retry_config(10)),
    )
    settings = world.env(
        LIFECYCLE_HOOK_NAMES=f"{LAUNCH_HOOK},{TERMINATE_HOOK}", INTAKE_QUEUE_URL=intake_queue_url(world.aws), **env
    )
    reconciler, _ = build_reconciler(
        settings, clients=clients, clock=clock or FakeClock(follow=world.aws.clock), page_size=5
    )
    return reconciler


def reconcile(reconciler: Reconciler, remaining_ms: int = 60_000) -> ReconcileReport:
    """One scheduled run with ``remaining_ms`` of the function's time (counted from now)."""
    return reconciler.run(lambda: remaining_ms)


def reconciler_for(world: World, queue_url: str, clock: FakeClock | None = None, **env: str) -> Reconciler:
    """The reconciler putting lost events back into ``queue_url`` (an intake queue a test made itself)."""
    clients = Clients(
        ec2=world.aws.client("ec2", config=retry_config(10)),
        autoscaling=world.aws.client("autoscaling", config=retry_config(10)),
        sqs=world.aws.client("sqs", config=retry_config(10)),
    )
    settings = world.env(**{"LIFECYCLE_HOOK_NAMES": f"{LAUNCH_HOOK},{TERMINATE_HOOK}", **env})
    settings["INTAKE_QUEUE_URL"] = queue_url
    reconciler, _ = build_reconciler(
        settings, clients=clients, clock=clock or FakeClock(follow=world.aws.clock), page_size=5
    )
    return reconciler
