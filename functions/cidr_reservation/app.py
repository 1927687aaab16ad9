"""Lambda entry point: Multus ENIs with EC2-assigned addresses outside the pod CIDR reservations.

Thin by design: the configuration is validated and the clients are built once per execution environment;
each event goes to the shared lifecycle engine (multus_ipam, in the layer).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from multus_ipam.errors import ConfigurationError
from multus_ipam.runtime import (
    LambdaContext,
    Mode,
    Runtime,
    build_runtime,
    complete_despite_configuration_error,
    handle_event,
)

MODE = Mode.CIDR_RESERVATION


@cache
def _runtime() -> Runtime:
    return build_runtime(MODE, os.environ)


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        runtime = _runtime()
    except ConfigurationError as error:
        complete_despite_configuration_error(error, event, os.environ)
        raise
    return handle_event(runtime, event, context)
