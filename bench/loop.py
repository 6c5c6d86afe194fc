"""gen:call round trip from Python to a BEAM gen_server on the standard loop and on uvloop.

    pip install -e '.[fast]'          # uvloop
    python bench/loop.py              # median of 5 runs of 3000 calls per loop
    python bench/loop.py --quick

Nodes A and B (BEAM, the given runtime) and one Python node per run; each run
starts a fresh event loop of one kind (alternating asyncio and uvloop) through
bridge.event_loop, so the loops are measured in the same run on the same BEAM
node. BEAM <-> BEAM (A calls B) is the reference. Reuses bench/dist.py's set-up.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import dist as bench_dist  # noqa: E402  (bench/dist.py)

from bridge import Node, event_loop  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402


def py_call_p50(b: BeamNode, epmd_port: int, calls: int, loop_kind: str) -> tuple[str, float]:
    """Start a Python node on a new loop of `loop_kind`; p50 of `calls` gen:calls, in µs."""
    os.environ[event_loop.LOOP_ENV] = loop_kind

    async def run() -> tuple[str, float]:
        node = Node(bench_dist.PY_NODE, cookie=TEST_COOKIE, epmd_port=epmd_port)
        await node.start()
        try:
            if not await node.ping(b.name):
                raise SystemExit("the Python node cannot reach B")
            bench = bench_dist.Bench(b, b, node, None, 1.0, None)
            p50, _ = await bench.py_call(calls)
            return event_loop.loop_name(asyncio.get_running_loop()), p50
        finally:
            await node.stop()

    return event_loop.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runtime", default="otp25")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    calls = 500 if args.quick else 3000
    rt = runtime(args.runtime)
    with tempfile.TemporaryDirectory(prefix="bench_loop_") as tmpdir:
        ebin = bench_dist.compile_erlang(Path(tmpdir))
        extra = ["-pa", str(ebin), "+sbwt", "none"]
        with Epmd(rt) as epmd, \
                BeamNode(rt, epmd_port=epmd.port, prefix="loopA", extra_args=extra) as a, \
                BeamNode(rt, epmd_port=epmd.port, prefix="loopB", extra_args=extra) as b:
            b.eval("bench_dist:start_server(bench_srv)")
            a.check(f"net_adm:ping('{b.name}') =:= pong")
            samples: dict[str, list[float]] = {"beam": [], "asyncio": [], "uvloop": []}
            for _ in range(args.runs):
                p50, _ = a.eval_term(
                    f"bench_dist:call_latency({{bench_srv, '{b.name}'}}, ping, {calls})", 300)
                samples["beam"].append(p50 / 1000)
                for kind in ("asyncio", "uvloop"):
                    got, us = py_call_p50(b, epmd.port, calls, kind)
                    samples[got].append(us)
    beam = statistics.median(samples["beam"])
    print(f"runtime {rt.label}; {calls} calls per run; medians of {args.runs} runs")
    print(f"{'caller':<22} {'p50 µs':>8} {'BEAM/ours':>10}")
    print(f"{'BEAM -> BEAM':<22} {beam:8.1f} {1.0:10.2f}")
    for kind in ("asyncio", "uvloop"):
        if samples[kind]:
            us = statistics.median(samples[kind])
            print(f"{'Python (' + kind + ')':<22} {us:8.1f} {beam / us:10.2f}")
        else:
            print(f"{'Python (' + kind + ')':<22} {'-':>8}  (not installed)")


if __name__ == "__main__":
    main()
