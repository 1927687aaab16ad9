"""boto3 clients, built once per execution environment with one retry configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:  # type stubs are a development dependency, not in the layer
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sqs import SQSClient


@dataclass(frozen=True, slots=True)
class Clients:
    ec2: EC2Client
    autoscaling: AutoScalingClient
    sqs: SQSClient | None = None
    """Only the reconciler's (the intake queue)."""


def retry_config(max_attempts: int) -> Config:
    """Standard retry mode (boto3's default is still legacy): throttling and 5xx are retried with backoff."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=20,
        user_agent_extra="eks-multus-ipam/0.1",
    )


def make_clients(max_attempts: int, session: boto3.session.Session | None = None, *, sqs: bool = False) -> Clients:
    session = session or boto3.session.Session()
    config = retry_config(max_attempts)
    return Clients(
        ec2=session.client("ec2", config=config),
        autoscaling=session.client("autoscaling", config=config),
        sqs=session.client("sqs", config=config) if sqs else None,
    )
