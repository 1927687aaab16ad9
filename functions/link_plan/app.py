"""Lambda entry point: the link plan custom resource (Custom::MultusLinkPlan in template.yaml).

Thin by design: the custom resource protocol is multus_ipam.link_plan, the naming multus_ipam.links (the layer).
"""

from collections.abc import Mapping
from typing import Any

from multus_ipam.link_plan import LinkPlanEntry, RemainingTime

ENTRY = LinkPlanEntry()


def lambda_handler(event: Mapping[str, Any], context: RemainingTime) -> dict[str, str]:
    return ENTRY(event, context)
