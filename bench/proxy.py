"""What the local proxy of a Python child costs a ``gen_server:call``, beside BEAM peers.

    python bench/proxy.py                  # 2000 calls per workload and run, 5 runs
    python bench/proxy.py --runtime otp28  # BEAM nodes of OTP 28 (default otp25)

Two BEAM nodes, A and B, on a private EPMD, and a ``bridge.Node`` in this process.
The calls are made and timed on node A by a compiled loop (bench/bench_proxy.erl):

1 a BEAM gen_server on A (local call: the floor);
2 a BEAM gen_server on B (the BEAM-only figure across a distribution connection);
3 the Python ``Counter`` by its own pid (``beam_bridge:start_link(..., #{proxy => false})``);
4 the same actor through its proxy (``beam_bridge:start_link/3``, what a supervisor holds).

Each run gives the p50 and p99 of its calls; every figure is the median of the runs.
Ratios: 4 to 3 (the proxy's cost) and 4 to 2 (against a BEAM node). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge import Node  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402
from tests.interop.fixtures.py_actors import Counter  # noqa: E402

WORKLOADS = [
    ("local", "1 BEAM gen_server, same node", "LocalSrv"),
    ("remote", "2 BEAM gen_server, other node", "RemoteSrv"),
    ("direct", "3 Python actor, own pid", "Direct"),
    ("proxy", "4 Python actor, via proxy", "Proxied"),
]


def compile_erlang(tmp: Path) -> Path:
    erlc = shutil.which("erlc")
    if erlc is None:
        raise SystemExit("erlc is needed to compile erl/src and the bench modules")
    out = tmp / "ebin"
    out.mkdir()
    sources = sorted(str(p) for p in (REPO / "erl" / "src").glob("*.erl"))
    extra = [str(REPO / "bench" / "bench_sup.erl"), str(REPO / "bench" / "bench_proxy.erl")]
    subprocess.run([erlc, "-o", str(out), *sources, *extra], check=True)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--runtime", default="otp25")
    args = ap.parse_args()
    rt = runtime(args.runtime)
    with tempfile.TemporaryDirectory() as tmp, Epmd() as epmd:
        ebin = compile_erlang(Path(tmp))
        opts: dict[str, Any] = {"epmd_port": epmd.port, "extra_args": ["-pa", str(ebin)]}
        with BeamNode(rt, prefix="benchA", **opts) as a, BeamNode(rt, prefix="benchB", **opts) as b:
            async with Node("pyproxy@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
                node.allow_spawn("counter", Counter)

                async def ev(expr: str) -> Any:
                    return await asyncio.to_thread(a.eval_term, expr, 600)

                await ev("process_flag(trap_exit, true), {ok, LocalSrv} = bench_sup:start_link(bench_local)")
                await ev(f"{{ok, RemoteSrv}} = bench_sup:start_remote('{b.name}', bench_remote)")
                await ev(f"{{ok, Direct}} = beam_bridge:start_link('{node.name}', counter, 0, #{{proxy => false}})")
                await ev(f"{{ok, Proxied}} = beam_bridge:start_link('{node.name}', counter, 0)")
                results: dict[str, list[tuple[int, int]]] = {k: [] for k, _, _ in WORKLOADS}
                for _ in range(args.runs):
                    for key, _label, var in WORKLOADS:
                        p50, p99 = await ev(f"bench_proxy:calls({var}, {args.calls})")
                        results[key].append((p50, p99))
                med = {k: (statistics.median(p for p, _ in v), statistics.median(p for _, p in v))
                       for k, v in results.items()}
                print(f"OTP {rt.major}, {args.calls} calls x {args.runs} runs, medians of runs (microseconds)")
                print(f"{'workload':34} {'p50':>8} {'p99':>8}")
                for key, label, _ in WORKLOADS:
                    p50, p99 = med[key]
                    print(f"{label:34} {p50 / 1000:8.1f} {p99 / 1000:8.1f}")
                print(f"proxy / own pid (p50): {med['proxy'][0] / med['direct'][0]:.2f}x")
                print(f"proxy / BEAM other node (p50): {med['proxy'][0] / med['remote'][0]:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
