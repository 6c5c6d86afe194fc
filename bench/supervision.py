"""Benchmark restart latency across languages beside BEAM-only restart latency, in one run.

    python bench/supervision.py                    # 30 restarts per run, 3 runs
    python bench/supervision.py --quick            # 10 restarts per run
    python bench/supervision.py --runtime otp28    # the BEAM node is OTP 28 (default otp25)
    python bench/supervision.py --profile out.prof # cProfile the Python node's cross-language restarts

One BEAM node (on a private EPMD, ``+sbwt none`` as in bench/dist.py) and a
``bridge.Node`` in this process. The BEAM side is one compiled module,
bench/bench_sup.erl (built with OTP 25's ``erlc`` together with the erl/
application, so erl_eval is never on the timed path). Each restart is: kill the
child with ``exit(Pid, kill)``, then time until the restarted child has answered
a ``gen_server:call(New, get)``. Workloads:

1. BEAM child, Erlang supervisor (``beam_bridge_sup``) -- the reference; the new
   pid found with ``supervisor:which_children`` (1a) and, as a check of the
   method, announced by the child's ``init`` (1b);
2. Python ``Counter`` child (``beam_bridge:child_spec``), Erlang supervisor,
   found with ``supervisor:which_children``;
3. BEAM child (``bridge.beam_child``), Python ``Supervisor``, announced by the
   child's ``init``;
4. Python ``Counter`` child, Python ``Supervisor`` (for reference), found with
   ``Supervisor.which_children``.

1-3 are killed and timed on the BEAM (``erlang:monotonic_time``); 4 in Python
(``time.perf_counter_ns``). Each run does every workload in turn; a run gives
the p50 and p90 of its restarts, and every figure is the median of the runs.
Every restart is split in three marks from the kill: *down* (the killer's
monitor fires), *found* (the new pid is known), *answer* (the call returned).
Ratio = workload / BEAM-only (1a); target <= 5x at p50. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge import Node, beam_child  # noqa: E402
from dist_proto import Atom, Pid  # noqa: E402
from python_actors import ChildSpec, Supervisor  # noqa: E402
from python_actors import call as gen_call  # noqa: E402
from python_actors import stop as stop_server  # noqa: E402
from python_actors.errors import DOWN, KILL  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402
from tests.interop.fixtures.py_actors import Counter  # noqa: E402

PY_NODE = "pysup@127.0.0.1"
RESTARTS = 30
WARMUP = 3
PAUSE_MS = 10
GET = Atom("get")
CHILD = Atom("c")
BEAM_NAME_ERL = "bench_child_e"  # the BEAM child under the Erlang supervisor
BEAM_NAME_PY = "bench_child_p"  # the BEAM child under the Python supervisor
Sample = tuple[int, int, int]  # (down, found, answer) in ns from the kill


def compile_erlang(tmp: Path) -> Path:
    """erl/src (the beam_bridge application) and bench/bench_sup.erl into one ebin."""
    erlc = shutil.which("erlc")
    if erlc is None:
        raise SystemExit("erlc (OTP 25) is needed to compile bench/bench_sup.erl and erl/src")
    out = tmp / "ebin"
    out.mkdir()
    sources = sorted(str(p) for p in (REPO / "erl" / "src").glob("*.erl"))
    subprocess.run([erlc, "-o", str(out), *sources, str(REPO / "bench" / "bench_sup.erl")], check=True)
    (out / "beam_bridge.app").write_text((REPO / "erl" / "src" / "beam_bridge.app.src").read_text())
    return out


def q(name: str) -> str:
    return "'" + name + "'"


class Bench:
    def __init__(self, beam: BeamNode, node: Node, restarts: int,
                 profile: cProfile.Profile | None) -> None:
        self.beam, self.node, self.restarts = beam, node, restarts
        self.profile = profile
        self.sup_erl_beam: Any = None  # Erlang supervisor with the BEAM child
        self.sup_erl_py: Any = None  # Erlang supervisor with the Python child
        self.sup_py_beam: Pid | None = None  # Python supervisor with the BEAM child
        self.sup_py_py: Pid | None = None  # Python supervisor with the Python child

    async def ev(self, expr: str, timeout: float = 300) -> Any:
        return await asyncio.to_thread(self.beam.eval_term, expr, timeout)

    async def setup(self) -> None:
        b, node, rt = self.beam, self.node, self.node.runtime
        # Supervisors are started once and reused by every run (intensity is unbounded);
        # the evaluation loop keeps each one in a variable.
        await self.ev(f"ErlBeamSup = bench_sup:start_sup([bench_sup:beam_child_spec(c, {BEAM_NAME_ERL})])")
        await self.ev("ErlPySup = bench_sup:start_sup([beam_bridge:child_spec("
                      f"#{{id => c, node => {q(node.name)}, actor => counter, args => 0}})])")
        self.sup_py_beam = await Supervisor.start_link(
            [ChildSpec(id="c", start=beam_child(node, b.name, "bench_sup", "start_link", [Atom(BEAM_NAME_PY)]))],
            strategy="one_for_one", intensity=1_000_000, period=1, runtime=rt)
        self.sup_py_py = await Supervisor.start_link(
            [ChildSpec(id="c", start=(Counter.start_link, (0,)))],
            strategy="one_for_one", intensity=1_000_000, period=1, runtime=rt)

    async def teardown(self) -> None:
        rt = self.node.runtime
        for sup in (self.sup_py_beam, self.sup_py_py):
            if sup is not None:
                await stop_server(sup, runtime=rt)
        await self.ev("bench_sup:stop_sup(ErlBeamSup), bench_sup:stop_sup(ErlPySup)")

    # -- the workloads: each returns [(down, found, answer)] in ns ------------------------

    async def beam_erl_sup(self, n: int) -> list[Sample]:
        return await self.ev(f"bench_sup:measure_sup(ErlBeamSup, c, {n}, {PAUSE_MS})")

    async def beam_erl_sup_named(self, n: int) -> list[Sample]:
        return await self.ev(f"bench_sup:measure_named({BEAM_NAME_ERL}, {n}, {PAUSE_MS})")

    async def py_erl_sup(self, n: int) -> list[Sample]:
        self._prof(True)
        try:
            return await self.ev(f"bench_sup:measure_sup(ErlPySup, c, {n}, {PAUSE_MS})")
        finally:
            self._prof(False)

    async def beam_py_sup(self, n: int) -> list[Sample]:
        self._prof(True)
        try:
            return await self.ev(f"bench_sup:measure_named({BEAM_NAME_PY}, {n}, {PAUSE_MS})")
        finally:
            self._prof(False)

    async def py_py_sup(self, n: int) -> list[Sample]:
        sup = self.sup_py_py
        clock = time.perf_counter_ns

        async def child(proc: Any, old: Pid | None) -> Pid:
            while True:
                kids = await Supervisor.which_children(sup)
                pid = next((k.pid for k in kids if k.id == "c"), None)
                if pid is not None and pid != old:
                    return pid
                await asyncio.sleep(0)

        async def body(proc: Any) -> list[Sample]:
            out: list[Sample] = []
            for _ in range(n):
                await asyncio.sleep(PAUSE_MS / 1000)
                old = await child(proc, None)
                ref = proc.monitor(old)
                t0 = clock()
                proc.exit(old, KILL)
                await proc.receive(lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref)
                t1 = clock()
                new = await child(proc, old)
                t2 = clock()
                await gen_call(new, GET)
                t3 = clock()
                out.append((t1 - t0, t2 - t0, t3 - t0))
            return out

        return await self.node.runtime.run(body)

    def _prof(self, on: bool) -> None:
        if self.profile is not None:
            self.profile.enable() if on else self.profile.disable()


WORKLOADS = [
    # key, label, method
    ("beam", "1a BEAM child, Erlang sup", "beam_erl_sup"),
    ("beam_named", "1b  same, pid announced", "beam_erl_sup_named"),
    ("py_erl", "2  Python child, Erlang sup", "py_erl_sup"),
    ("beam_py", "3  BEAM child, Python sup", "beam_py_sup"),
    ("py_py", "4  Python child, Python sup", "py_py_sup"),
]


def _pct(sorted_values: list[int], p: int) -> int:
    return sorted_values[max(0, (len(sorted_values) * p + 99) // 100 - 1)]


def _fmt_us(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1000:,.1f}us"


def _fmt_ratio(x: float | None, ref: float | None) -> str:
    return "-" if x is None or not ref else f"{x / ref:.1f}x"


def summarize(runs: list[list[Sample]]) -> dict[str, float]:
    """Per run p50/p90 of each mark; the median of the runs."""
    out: dict[str, float] = {}
    for i, mark in enumerate(("down", "found", "answer")):
        for p in (50, 90):
            out[f"{mark}{p}"] = statistics.median(_pct(sorted(s[i] for s in run), p) for run in runs)
    return out


async def run(args: argparse.Namespace) -> None:
    rt = runtime(args.runtime)
    restarts = args.restarts or (10 if args.quick else RESTARTS)
    with tempfile.TemporaryDirectory(prefix="bench_sup_") as tmpdir:
        ebin = compile_erlang(Path(tmpdir))
        extra = ["-pa", str(ebin), "+sbwt", "none"]
        with Epmd(rt) as epmd, BeamNode(rt, epmd_port=epmd.port, prefix="benchS", extra_args=extra) as beam:
            node = Node(PY_NODE, cookie=TEST_COOKIE, epmd_port=epmd.port)
            node.allow_spawn("counter", Counter)
            await node.start()
            if not await node.ping(beam.name):
                raise SystemExit("the Python node cannot reach the BEAM node")
            print(f"runtime {rt.label} ({beam.name}); {restarts} restarts per run, {PAUSE_MS} ms apart, "
                  f"{WARMUP} warm-up restarts; median of {args.runs} runs", flush=True)
            profile = cProfile.Profile() if args.profile else None
            bench = Bench(beam, node, restarts, profile)
            try:
                await bench.setup()
                results: dict[str, list[list[Sample]]] = {k: [] for k, _, _ in WORKLOADS}
                for k, _, meth in WORKLOADS:  # warm-up: code loading, first connections
                    await getattr(bench, meth)(WARMUP)
                for _ in range(args.runs):
                    for k, _, meth in WORKLOADS:
                        results[k].append(await getattr(bench, meth)(restarts))
                _table({k: summarize(v) for k, v in results.items()})
            finally:
                await bench.teardown()
                await node.stop()
            if profile is not None:
                profile.dump_stats(args.profile)
                print(f"profile of the Python node (workloads 2 and 3) written to {args.profile}")


def _table(figs: dict[str, dict[str, float]]) -> None:
    ref = figs["beam"]
    header = (f"{'workload':30} {'p50':>10} {'ratio':>7} {'p90':>10} {'ratio':>7}   "
              f"{'down p50':>9} {'found p50':>10}")
    print(header)
    print("-" * len(header))
    for key, label, _ in WORKLOADS:
        f = figs[key]
        print(f"{label:30} {_fmt_us(f['answer50']):>10} {_fmt_ratio(f['answer50'], ref['answer50']):>7} "
              f"{_fmt_us(f['answer90']):>10} {_fmt_ratio(f['answer90'], ref['answer90']):>7}   "
              f"{_fmt_us(f['down50']):>9} {_fmt_us(f['found50']):>10}")
    print("\nkill -> restarted child answered gen_server:call, microseconds; ratio = workload / 1a "
          "(target <= 5.0x at p50)")
    print("down: kill -> killer's monitor fired; found: kill -> new pid known (both from the kill)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 restarts per run instead of 30")
    ap.add_argument("--runtime", default="otp25", choices=["otp25", "otp28"])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--restarts", type=int, default=0, help="restarts per run (overrides --quick)")
    ap.add_argument("--profile", metavar="FILE",
                    help="cProfile this process during workloads 2 and 3 into FILE")
    args = ap.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
