"""Lambda entry point: Multus ENIs with static lowest-free addresses.

Thin by design: everything else is the shared lifecycle engine in the layer (multus_ipam).
"""

from typing import Any

from multus_ipam.runtime import LambdaContext, LambdaEntry, Mode

ENTRY = LambdaEntry(Mode.STATIC)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return ENTRY(event, context)
