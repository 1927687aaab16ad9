"""Cold-start cost of a function: module import time and the first invocation (settings, clients, adapters).

Each figure is measured in a fresh interpreter, so nothing is cached from an earlier run. The first
invocation runs against the ideal local AWS (instant, consistent: ``Realism.ideal()``), so it measures our own
set-up work in wall time, not AWS latency (the realistic local AWS's waits are simulated time, which the
function's real clock would spend asleep, and its request validation is the emulator's own cost).
Run: `make bench` (or `python -m benchmarks.cold_start`).
"""

from __future__ import annotations

import statistics
import subprocess
import sys

IMPORT = "import time; t = time.perf_counter(); import functions.{fn}.app; print((time.perf_counter() - t) * 1000)"

FIRST_INVOKE = """
import os, time
os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
from localaws import LocalAWS, Realism
with LocalAWS(region="us-east-1", realism=Realism.ideal()) as aws:
    from tests.handlers.world import build_world, FakeContext
    world = build_world(aws)
    (event,) = world.scale_out(1)
    os.environ.update(world.env())
    t0 = time.perf_counter()
    import functions.{fn}.app as app
    t1 = time.perf_counter()
    app.lambda_handler(event, FakeContext())
    t2 = time.perf_counter()
    print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""


def _run(code: str) -> list[float]:
    out = subprocess.run(  # noqa: S603 - our own fixed snippets, run with this interpreter
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return [float(x) for x in out.split()[-2:]] if " " in out.strip() else [float(out.strip())]


def main() -> int:
    print("| function | import (median of 5) | first invocation incl. settings and clients (median of 3) |")
    print("|---|---|---|")
    for fn in ("static_ip", "cidr_reservation"):
        imports = [_run(IMPORT.format(fn=fn))[0] for _ in range(5)]
        firsts = [_run(FIRST_INVOKE.format(fn=fn))[1] for _ in range(3)] if fn == "static_ip" else []
        first = f"{statistics.median(firsts):.0f} ms" if firsts else "(same engine; see static_ip)"
        print(f"| {fn} | {statistics.median(imports):.0f} ms | {first} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
