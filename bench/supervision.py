"""Benchmark restart latency across languages beside BEAM-only restart latency, in one run.

    python bench/supervision.py                    # 30 restarts per run, 3 runs
    python bench/supervision.py --quick            # 10 restarts per run
    python bench/supervision.py --runtime otp28    # BEAM nodes of OTP 28 (default otp25)
    python bench/supervision.py --pauses 0         # only the back-to-back table
    python bench/supervision.py --profile out.prof # cProfile this process during workloads 2, 2b and 3

Two BEAM nodes, A and B, on a private EPMD (``+sbwt none`` as in bench/dist.py,
and ``logger_level none``: otherwise every restart formats a supervisor report
and writes it to the pipe this process reads), and a ``bridge.Node`` in this
process. The BEAM side is one compiled module, bench/bench_sup.erl (built with
OTP 25's ``erlc`` together with the erl/ application, so erl_eval is never on
the timed path). Each restart is: kill the child with ``exit(Pid, kill)``, then
time until the restarted child has answered a ``gen_server:call(New, get)``.
Workloads (supervisors on node A unless said otherwise):

1a BEAM child, Erlang supervisor (``beam_bridge_sup``), same node -- the
   reference; the new pid is found with ``supervisor:which_children``;
1b the same, the new pid announced by the child's ``init`` (the method of 3);
1c BEAM child on node B, Erlang supervisor on A: the BEAM-only figure for a
   child across a distribution connection, as every cross-language child is;
2  Python ``Counter`` child (``beam_bridge:child_spec``), Erlang supervisor,
   found with ``supervisor:which_children``; its plain ``def`` callbacks run on a
   pool thread (placement ``auto``, the default);
2b the same with placement ``loop`` (callbacks on the event loop: no thread hop
   for ``init`` nor for the call), to separate that hop from the rest of the path;
3  BEAM child (``bridge.beam_child``), Python ``Supervisor``, announced by init;
4  Python ``Counter`` child, Python ``Supervisor`` (for reference), found with
   ``Supervisor.which_children``.

1-3 (and 2b) are killed and timed on node A (``erlang:monotonic_time``); 4 in Python
(``time.perf_counter_ns``). Each run does every workload in turn; a run gives
the p50 and p90 of its restarts, and every figure is the median of the runs.
There is one table per ``--pauses`` value: restarts back to back (0), and after
the system has idled 10 ms (cold caches and sleeping threads, as a crash in a
quiet system meets them). Each restart is also split in marks from the kill:
*down* (the killer's monitor fired) and *found* (the new pid is known); *py cpu*
is this process's CPU time per restart (all its threads, including the little
the BEAM evaluation loop takes). Ratios are to 1a and to 1c; the target is
<= 5x. Not collected by pytest.
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


class CounterOnLoop(Counter):
    """Counter with its callbacks on the event loop (no thread hop)."""

    placement = "loop"


RESTARTS = 30
WARMUP = 3
GET = Atom("get")
CHILD = Atom("c")
BEAM_NAME_ERL = "bench_child_e"  # the BEAM child under the Erlang supervisor
BEAM_NAME_PY = "bench_child_p"  # the BEAM child under the Python supervisor
BEAM_NAME_REMOTE = "bench_child_r"  # the child on the other BEAM node
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
    def __init__(self, beam: BeamNode, other: BeamNode, node: Node, restarts: int,
                 profile: cProfile.Profile | None) -> None:
        self.beam, self.other, self.node, self.restarts = beam, other, node, restarts
        self.profile = profile
        self.sup_erl_beam: Any = None  # Erlang supervisor with the BEAM child
        self.sup_erl_py: Any = None  # Erlang supervisor with the Python child
        self.sup_erl_py_loop: Any = None  # the same, placement loop
        self.sup_py_beam: Pid | None = None  # Python supervisor with the BEAM child
        self.sup_py_py: Pid | None = None  # Python supervisor with the Python child

    async def ev(self, expr: str, timeout: float = 300) -> Any:
        return await asyncio.to_thread(self.beam.eval_term, expr, timeout)

    async def samples(self, expr: str) -> list[Sample]:
        return [(int(d), int(f), int(a)) for d, f, a in await self.ev(expr)]

    async def setup(self) -> None:
        b, node, rt = self.beam, self.node, self.node.runtime
        # Supervisors are started once and reused by every run (intensity is unbounded);
        # the evaluation loop keeps each one in a variable.
        await self.ev(f"ErlBeamSup = bench_sup:start_sup([bench_sup:beam_child_spec(c, {BEAM_NAME_ERL})])")
        await self.ev(f"ErlRemoteSup = bench_sup:start_sup([bench_sup:remote_child_spec("
                      f"c, {q(self.other.name)}, {BEAM_NAME_REMOTE})])")
        await self.ev("ErlPySup = bench_sup:start_sup([beam_bridge:child_spec("
                      f"#{{id => c, node => {q(node.name)}, actor => counter, args => 0}})])")
        await self.ev("ErlPyLoopSup = bench_sup:start_sup([beam_bridge:child_spec("
                      f"#{{id => c, node => {q(node.name)}, actor => counter_loop, args => 0}})])")
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
        await self.ev("bench_sup:stop_sup(ErlBeamSup), bench_sup:stop_sup(ErlRemoteSup), "
                      "bench_sup:stop_sup(ErlPySup), bench_sup:stop_sup(ErlPyLoopSup)")

    # -- the workloads: each returns [(down, found, answer)] in ns ------------------------

    async def beam_erl_sup(self, n: int, pause_ms: int) -> list[Sample]:
        return await self.samples(f"bench_sup:measure_sup(ErlBeamSup, c, {n}, {pause_ms})")

    async def beam_erl_sup_named(self, n: int, pause_ms: int) -> list[Sample]:
        return await self.samples(f"bench_sup:measure_named({BEAM_NAME_ERL}, {n}, {pause_ms})")

    async def remote_erl_sup(self, n: int, pause_ms: int) -> list[Sample]:
        return await self.samples(f"bench_sup:measure_sup(ErlRemoteSup, c, {n}, {pause_ms})")

    async def py_erl_sup(self, n: int, pause_ms: int) -> list[Sample]:
        self._prof(True)
        try:
            return await self.samples(f"bench_sup:measure_sup(ErlPySup, c, {n}, {pause_ms})")
        finally:
            self._prof(False)

    async def py_loop_erl_sup(self, n: int, pause_ms: int) -> list[Sample]:
        self._prof(True)
        try:
            return await self.samples(f"bench_sup:measure_sup(ErlPyLoopSup, c, {n}, {pause_ms})")
        finally:
            self._prof(False)

    async def beam_py_sup(self, n: int, pause_ms: int) -> list[Sample]:
        self._prof(True)
        try:
            return await self.samples(f"bench_sup:measure_named({BEAM_NAME_PY}, {n}, {pause_ms})")
        finally:
            self._prof(False)

    async def py_py_sup(self, n: int, pause_ms: int) -> list[Sample]:
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
                await asyncio.sleep(pause_ms / 1000)
                old = await child(proc, None)
                ref = proc.monitor(old)
                t0 = clock()
                proc.exit(old, KILL)
                await proc.receive(lambda m, ref=ref: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref)
                t1 = clock()
                new = await child(proc, old)
                t2 = clock()
                await gen_call(new, GET)
                t3 = clock()
                out.append((t1 - t0, t2 - t0, t3 - t0))
            return out

        samples: list[Sample] = await self.node.runtime.run(body)
        return samples

    def _prof(self, on: bool) -> None:
        if self.profile is not None:
            self.profile.enable() if on else self.profile.disable()


WORKLOADS = [
    # key, label, method
    ("beam", "1a BEAM child, Erlang sup", "beam_erl_sup"),
    ("beam_named", "1b  same, pid announced", "beam_erl_sup_named"),
    ("remote", "1c BEAM child on node B, Erlang sup", "remote_erl_sup"),
    ("py_erl", "2  Python child, Erlang sup", "py_erl_sup"),
    ("py_loop_erl", "2b  same, placement loop", "py_loop_erl_sup"),
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
    pauses = [int(x) for x in args.pauses.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_sup_") as tmpdir:
        ebin = compile_erlang(Path(tmpdir))
        # No supervisor/crash reports: with the default handler every restart would
        # format a report in the supervisor and write it to the pipe this process reads.
        extra = ["-pa", str(ebin), "+sbwt", "none", "-kernel", "logger_level", "none"]
        with Epmd(rt) as epmd, \
                BeamNode(rt, epmd_port=epmd.port, prefix="benchS", extra_args=extra) as beam, \
                BeamNode(rt, epmd_port=epmd.port, prefix="benchB", extra_args=extra) as other:
            beam.check(f"net_adm:ping({q(other.name)}) =:= pong")
            node = Node(PY_NODE, cookie=TEST_COOKIE, epmd_port=epmd.port)
            node.allow_spawn("counter", Counter)
            node.allow_spawn("counter_loop", CounterOnLoop)
            await node.start()
            if not await node.ping(beam.name):
                raise SystemExit("the Python node cannot reach the BEAM node")
            print(f"runtime {rt.label} ({beam.name}); {restarts} restarts per run after "
                  f"{WARMUP} warm-up restarts; median of {args.runs} runs", flush=True)
            profile = cProfile.Profile() if args.profile else None
            bench = Bench(beam, other, node, restarts, profile)
            try:
                await bench.setup()
                for _, _, meth in WORKLOADS:  # warm-up: code loading, first connections
                    await getattr(bench, meth)(WARMUP, 0)
                for pause in pauses:
                    results: dict[str, list[list[Sample]]] = {k: [] for k, _, _ in WORKLOADS}
                    cpu: dict[str, list[float]] = {k: [] for k, _, _ in WORKLOADS}
                    for _ in range(args.runs):
                        for k, _, meth in WORKLOADS:
                            c0 = time.process_time_ns()
                            results[k].append(await getattr(bench, meth)(restarts, pause))
                            cpu[k].append((time.process_time_ns() - c0) / restarts)
                    what = "back to back" if pause == 0 else f"{pause} ms idle before each kill"
                    print(f"\n-- restarts {what}")
                    figs = {k: summarize(v) for k, v in results.items()}
                    for k, v in cpu.items():
                        figs[k]["pycpu"] = statistics.median(v)
                    _table(figs)
            finally:
                await bench.teardown()
                await node.stop()
            print("\np50/p90: kill -> restarted child answered gen_server:call; /1a, /1c: ratio to "
                  "BEAM-only (target <= 5.0x /1a at p50)")
            print("down: kill -> killer's monitor fired; found: kill -> new pid known (both from the kill); "
                  "py cpu: CPU time of this process per restart (mean)")
            if profile is not None:
                profile.dump_stats(args.profile)
                print(f"profile of the Python node (workloads 2, 2b and 3) written to {args.profile}")


def _table(figs: dict[str, dict[str, float]]) -> None:
    ref, remote = figs["beam"], figs["remote"]
    header = (f"{'workload':33} {'p50':>10} {'/1a':>6} {'/1c':>6} {'p90':>10} {'/1a':>6} {'/1c':>6}  "
              f"{'down p50':>9} {'found p50':>10} {'py cpu':>9}")
    print(header)
    print("-" * len(header))
    for key, label, _ in WORKLOADS:
        f = figs[key]
        print(f"{label:33} {_fmt_us(f['answer50']):>10} {_fmt_ratio(f['answer50'], ref['answer50']):>6} "
              f"{_fmt_ratio(f['answer50'], remote['answer50']):>6} "
              f"{_fmt_us(f['answer90']):>10} {_fmt_ratio(f['answer90'], ref['answer90']):>6} "
              f"{_fmt_ratio(f['answer90'], remote['answer90']):>6}  "
              f"{_fmt_us(f['down50']):>9} {_fmt_us(f['found50']):>10} {_fmt_us(f['pycpu']):>9}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 restarts per run instead of 30")
    ap.add_argument("--runtime", default="otp25", choices=["otp25", "otp28"])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--restarts", type=int, default=0, help="restarts per run (overrides --quick)")
    ap.add_argument("--pauses", default="0,10",
                    help="comma-separated idle milliseconds before each kill, one table each")
    ap.add_argument("--profile", metavar="FILE",
                    help="cProfile this process during workloads 2, 2b and 3 into FILE")
    args = ap.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
