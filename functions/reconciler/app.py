"""Lambda entry point: the scheduled reconciler (orphaned ENIs, lost lifecycle events).

Thin by design: everything else is in the layer (multus_ipam.reconciler).
"""

from typing import Any

from multus_ipam.runtime import LambdaContext, ReconcilerEntry

ENTRY = ReconcilerEntry()


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ENTRY(event, context)
