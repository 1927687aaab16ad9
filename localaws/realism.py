"""How strict, slow, throttled and eventually consistent the local AWS is: one frozen settings object.

``Realism()`` is the default: as strict and as slow as AWS documents, on the local AWS clock. Each behaviour
can be switched off on its own (``dataclasses.replace(Realism(), throttling=None)``), and ``Realism.ideal()``
switches every one off: the instant, consistent, unthrottled, trusting AWS the project was first tested on,
kept for comparisons (``make bench`` reports both) and for tests of behaviours that timing would only blur.

The figures and the AWS documentation each one follows:

* **validation** (``localaws.validation``): every request checked against botocore's service model, limits
  stated only in documentation text included (EC2 API reference, Auto Scaling API reference).
* **latency**: every request takes ``latency`` seconds (uniform draw), half before AWS applies it and half
  after. AWS publishes no figures; 50 to 250 ms is what the EC2 and Auto Scaling control planes typically answer in.
* **throttling** (``localaws.throttling``): EC2's per-action token buckets (EC2 developer guide, "Request
  throttling"), an Auto Scaling bucket whose size is an assumption (Auto Scaling publishes none), a share of
  every refill taken by other callers in the account.
* **visibility lag** (``localaws.consistency``): a new ENI or instance is invisible to describes and ID lookups
  for a uniform 0 to ``visibility_lag`` seconds (EC2 developer guide, "Eventual consistency": "this does not mean
  the resource does not exist").
* **attach / detach time** (``localaws.consistency``): an attachment is 'attaching' for ``attach_seconds``,
  then 'attached'; a detach is 'detaching' for ``detach_seconds`` before the ENI is 'available' (EC2 API
  reference, NetworkInterfaceAttachment Status; DetachNetworkInterface is asynchronous).
* **VPC CNI** (``localaws.vpc_cni``): each new node's ipamd, ``vpc_cni_delay`` seconds after launch, creates,
  attaches (lowest free device index on card 0) and modifies one ENI of its own through the same buckets
  (amazon-vpc-cni-k8s ipamd; DOMAIN.md §6b).
* **retry delays**: botocore's standard-mode backoff waits on the local AWS clock (instead of being skipped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True)
class Bucket:
    """A token bucket: ``size`` tokens at most, ``refill`` tokens added per second."""

    size: float
    refill: float

    def __post_init__(self) -> None:
        if self.size <= 0 or self.refill <= 0:
            raise ValueError("a bucket needs a positive size and refill rate")


#: EC2 developer guide, "Request throttling", request token bucket sizes and refill rates per action category.
EC2_NON_MUTATING = Bucket(100, 20)
EC2_UNFILTERED_UNPAGINATED = Bucket(50, 10)
EC2_MUTATING = Bucket(50, 5)
EC2_ACTIONS: Mapping[str, Bucket] = MappingProxyType(
    {
        "CreateNetworkInterface": Bucket(100, 5),
        "ModifyNetworkInterfaceAttribute": Bucket(100, 5),
        "DeleteNetworkInterface": Bucket(100, 5),
        "AttachNetworkInterface": Bucket(50, 5),
        "DetachNetworkInterface": Bucket(50, 5),
        "AssignPrivateIpAddresses": Bucket(100, 5),
        "UnassignPrivateIpAddresses": Bucket(100, 5),
        "AssignIpv6Addresses": Bucket(100, 5),
        "UnassignIpv6Addresses": Bucket(100, 5),
        "CreateSubnetCidrReservation": Bucket(5, 1),
        "DeleteSubnetCidrReservation": Bucket(5, 1),
    }
)
#: Auto Scaling publishes no rate limits. An assumption, per action: small enough that a burst of a few hundred
#: launches that each read the group meets it, as cluster-autoscaler users report for DescribeAutoScalingGroups.
AUTOSCALING_ASSUMED = Bucket(40, 10)


@dataclass(frozen=True)
class Throttling:
    """Token buckets per API action, per account and region, refilled on the local AWS clock."""

    ec2_actions: Mapping[str, Bucket] = field(default_factory=lambda: EC2_ACTIONS)
    ec2_non_mutating: Bucket = EC2_NON_MUTATING
    ec2_unfiltered_unpaginated: Bucket = EC2_UNFILTERED_UNPAGINATED
    ec2_mutating: Bucket = EC2_MUTATING
    autoscaling: Bucket = AUTOSCALING_ASSUMED
    others_share: float = 0.0
    """The fraction of every refill that other callers in the account (other tools, other node groups' CNI)
    take before us: 0.0 leaves the whole rate to the local AWS's callers."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.others_share < 1.0:
            raise ValueError("others_share is a fraction in [0, 1)")


@dataclass(frozen=True)
class Realism:
    """See the module docstring. Seconds are local AWS clock seconds; ranges are uniform draws."""

    validation: bool = True
    latency: tuple[float, float] | None = (0.05, 0.25)
    throttling: Throttling | None = field(default_factory=Throttling)
    visibility_lag: float = 2.0
    attach_seconds: tuple[float, float] | None = (1.0, 4.0)
    detach_seconds: tuple[float, float] | None = (2.0, 10.0)
    vpc_cni_delay: tuple[float, float] | None = (40.0, 90.0)
    retry_delays: bool = True

    def __post_init__(self) -> None:
        for name in ("latency", "attach_seconds", "detach_seconds", "vpc_cni_delay"):
            span = getattr(self, name)
            if span is not None and not 0 <= span[0] <= span[1]:
                raise ValueError(f"{name}: expected (low, high) with 0 <= low <= high")
        if self.visibility_lag < 0:
            raise ValueError("visibility_lag cannot be negative")

    @classmethod
    def ideal(cls) -> Realism:
        """Instant, consistent, unthrottled and trusting: every realistic behaviour off."""
        return cls(
            validation=False,
            latency=None,
            throttling=None,
            visibility_lag=0.0,
            attach_seconds=None,
            detach_seconds=None,
            vpc_cni_delay=None,
            retry_delays=False,
        )

    @classmethod
    def strict(cls) -> Realism:
        """Strict parameters, nothing else: instant, consistent and unthrottled. For tests of one rule of the
        local AWS's own, where timing would only blur what is checked (each timing behaviour has its own tests)."""
        return replace(cls.ideal(), validation=True)

    @property
    def is_ideal(self) -> bool:
        return self == Realism.ideal()
