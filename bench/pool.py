"""Benchmark beam_bridge_pool: its overhead per call, and CPU-bound throughput as it grows over nodes.

    python bench/pool.py                     # 3 runs, OTP 25
    python bench/pool.py --quick             # fewer calls per run
    python bench/pool.py --runtime otp28

Two BEAM nodes on a private EPMD (``+sbwt none``, ``logger_level none``): A runs the
callers and the pools, B an Erlang echo ``gen_server`` (the BEAM's own figure for a
worker on another node). Two Python nodes, P1 and P2, each its own OS process
(``python -m bridge serve tests/interop/fixtures/pool_actors.py``). The timed loops
are compiled (bench/bench_pool.erl) and timed on node A with ``erlang:monotonic_time``.

Workloads:
  L1  ``gen_server:call`` A -> Erlang echo server on B (BEAM reference)
  L2  ``gen_server:call`` A -> one Python worker on P1 (no pool)
  L3  ``beam_bridge_pool:call`` A -> pool of 4 Python workers on P1
  T1  8 callers x N calls, round-robin straight to those 4 workers (no pool)
  T2  8 callers x N calls through the pool
  T3  8 callers x N calls, round-robin to 4 Erlang echo servers on B (BEAM reference)
  C1  4 callers x M CPU-bound calls (``{spin, 300000}``, pure Python) on a pool of 2
      workers, both on P1 (one OS process: one core)
  C2  the same with the 2 workers spread over P1 and P2 (two OS processes)
Latencies are the p50 of a run; throughputs calls/s of a run; each figure is the
median of the runs. Ratios: L3/L2 (the pool's cost per call), L3/L1, T2/T1, T2/T3,
C2/C1 (what a second node adds for CPU-bound work; at most 2 on 2 cores).
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime, unique_name  # noqa: E402

FIXTURE = REPO / "tests" / "interop" / "fixtures" / "pool_actors.py"
SPIN = 300_000


def compile_erlang(tmp: Path) -> Path:
    erlc = shutil.which("erlc")
    if erlc is None:
        raise SystemExit("erlc (OTP 25) is needed to compile erl/src and bench/bench_pool.erl")
    out = tmp / "ebin"
    out.mkdir()
    sources = sorted(str(p) for p in (REPO / "erl" / "src").glob("*.erl"))
    subprocess.run([erlc, "-o", str(out), *sources, str(REPO / "bench" / "bench_pool.erl")], check=True)
    return out


class PythonNode:
    """``python -m bridge serve`` of the pool fixtures, stopped by its pid."""

    def __init__(self, epmd_port: int) -> None:
        self.name = f"{unique_name('benchP')}@127.0.0.1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "--name", self.name, "--cookie", TEST_COOKIE,
             "--epmd-port", str(epmd_port), "serve", str(FIXTURE), "--stdin-watch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "up" not in line:
            self.stop()
            raise SystemExit(f"python node {self.name} did not start: {line!r}")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # --stdin-watch: EOF stops the node
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def q(name: str) -> str:
    return "'" + name + "'"


def p50_us(samples: list[int]) -> float:
    return statistics.median(samples) / 1000


def run(args: argparse.Namespace) -> None:
    rt = runtime(args.runtime)
    n, per_caller, cpu_calls = (300, 100, 8) if args.quick else (2000, 500, 20)
    with tempfile.TemporaryDirectory() as tmp:
        ebin = compile_erlang(Path(tmp))
        extra = ["-pa", str(ebin), "+sbwt", "none", "-kernel", "logger_level", "none"]
        with Epmd() as epmd, \
                BeamNode(rt, epmd_port=epmd.port, prefix="benchA", extra_args=extra) as a, \
                BeamNode(rt, epmd_port=epmd.port, prefix="benchB", extra_args=extra) as b:
            p1, p2 = PythonNode(epmd.port), PythonNode(epmd.port)
            try:
                results = measure(a, b, p1.name, p2.name, args.runs, n, per_caller, cpu_calls)
            finally:
                p1.stop()
                p2.stop()
    report(results, rt.label, n, per_caller, cpu_calls)


def measure(a: BeamNode, b: BeamNode, p1: str, p2: str, runs: int, n: int,
            per_caller: int, cpu_calls: int) -> dict[str, list[float]]:
    def ev(expr: str) -> Any:
        return a.eval_term(expr, 600)

    ev("process_flag(trap_exit, true)")
    echoes = ", ".join(f"rpc:call({q(b.name)}, bench_pool, start_echo, [])" for _ in range(4))
    ev(f"Echoes = [{echoes}], [Echo | _] = Echoes, ok")
    ev(f"{{ok, Direct}} = beam_bridge:start({q(p1)}, pool_worker, []), ok")
    ev(f"{{ok, _}} = beam_bridge_pool:start_link(#{{name => bp, node => {q(p1)}, actor => pool_worker, size => 4}}), "
       "PoolWorkers = beam_bridge_pool:workers(bp), ok")
    ev(f"{{ok, _}} = beam_bridge_pool:start_link(#{{name => cpu1, node => {q(p1)}, actor => pool_worker, size => 2}}), ok")
    ev(f"{{ok, _}} = beam_bridge_pool:start_link(#{{name => cpu2, nodes => [{q(p1)}, {q(p2)}], "
       "actor => pool_worker, size => 2}), ok")
    assert len({w.node for w in ev("beam_bridge_pool:workers(cpu2)")}) == 2

    lat = "bench_pool:latency(fun(R) -> bench_pool:{f}({t}, R) end, {{echo, 1}}, {n})"
    thr = "bench_pool:throughput(fun(R) -> bench_pool:{f}({t}, R) end, {req}, {c}, {k})"
    out: dict[str, list[float]] = {k: [] for k in ("L1", "L2", "L3", "T1", "T2", "T3", "C1", "C2")}
    ev(lat.format(f="call_pool", t="bp", n=200))  # warm-up
    for _ in range(runs):
        out["L1"].append(p50_us(ev(lat.format(f="call_direct", t="Echo", n=n))))
        out["L2"].append(p50_us(ev(lat.format(f="call_direct", t="Direct", n=n))))
        out["L3"].append(p50_us(ev(lat.format(f="call_pool", t="bp", n=n))))
        calls = 8 * per_caller
        for key, f, t in (("T1", "call_any", "PoolWorkers"), ("T2", "call_pool", "bp"), ("T3", "call_any", "Echoes")):
            ns = ev(thr.format(f=f, t=t, req="{echo, 1}", c=8, k=per_caller))
            out[key].append(calls / (ns / 1e9))
        for key, pool in (("C1", "cpu1"), ("C2", "cpu2")):
            ns = ev(thr.format(f="call_pool", t=pool, req=f"{{spin, {SPIN}}}", c=4, k=cpu_calls // 4))
            out[key].append(cpu_calls / (ns / 1e9))
    ev("beam_bridge_pool:stop(bp), beam_bridge_pool:stop(cpu1), beam_bridge_pool:stop(cpu2), exit(Direct, kill)")
    return out


def report(results: dict[str, list[float]], label: str, n: int, per_caller: int, cpu_calls: int) -> None:
    m = {k: statistics.median(v) for k, v in results.items()}
    runs = len(results["L1"])
    print(f"beam_bridge_pool on {label}: median of {runs} runs "
          f"({n} sequential calls, 8 x {per_caller} concurrent, {cpu_calls} CPU-bound calls per run)")
    rows = [
        ("L1 gen_server:call -> Erlang server on node B (BEAM)", f"{m['L1']:8.1f} us p50", ""),
        ("L2 gen_server:call -> Python worker", f"{m['L2']:8.1f} us p50", ""),
        ("L3 beam_bridge_pool:call -> 4 Python workers", f"{m['L3']:8.1f} us p50",
         f"L3/L2 {m['L3'] / m['L2']:.2f}  L3/L1 {m['L3'] / m['L1']:.2f}"),
        ("T1 8 callers -> 4 Python workers, no pool", f"{m['T1']:8.0f} calls/s", ""),
        ("T2 8 callers -> pool of 4 Python workers", f"{m['T2']:8.0f} calls/s",
         f"T2/T1 {m['T2'] / m['T1']:.2f}  T2/T3 {m['T2'] / m['T3']:.2f}"),
        ("T3 8 callers -> 4 Erlang servers on node B (BEAM)", f"{m['T3']:8.0f} calls/s", ""),
        (f"C1 CPU-bound {{spin, {SPIN}}}, 2 workers on 1 node", f"{m['C1']:8.1f} calls/s", ""),
        ("C2 the same, 2 workers over 2 nodes", f"{m['C2']:8.1f} calls/s", f"C2/C1 {m['C2'] / m['C1']:.2f}"),
    ]
    for name, value, ratio in rows:
        print(f"  {name:<54} {value:>18}   {ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls per run")
    ap.add_argument("--runtime", default="otp25", choices=["otp25", "otp28"])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
