"""Lambda entry point: Multus ENIs with EC2-assigned addresses outside the pod CIDR reservations.

Thin by design: everything else is the shared lifecycle engine in the layer (multus_ipam).
"""

from typing import Any

from multus_ipam.runtime import LambdaContext, LambdaEntry, Mode

ENTRY = LambdaEntry(Mode.CIDR_RESERVATION)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ENTRY(event, context)
