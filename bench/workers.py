"""Benchmark of placement "process" (GenServer callbacks in worker OS processes).

    python bench/workers.py [--runs 5] [--n 300000] [--k 16]

Every core: the throughput of CPU-bound calls (a pure-Python loop of ``--n``
steps per call, ``--k`` calls) served by 1 and by 2 process-placed actors, with
one client per actor, and the same workload on placement "loop" (one thread: 2
actors cannot beat 1). In the same run, the same loop in Erlang served by 1 and
by 2 processes of an ``erl +S 2`` node (bench_workers.erl), and in 1 and 2 plain
forked Python processes with no actors (the machine's ceiling at that moment: on
a shared machine other load takes cores too). Prints medians of ``--runs`` runs
and the 2-vs-1 ratios (target on 2 idle cores: >= 1.8).

Cost: start latency of a process-placed actor with a warm spare ready and with
none (cold: a new interpreter), ``gen_server:call`` p50 of a small request, and
the memory of one idle worker (RSS and unique set size from /proc), each beside
the same figure for placement "loop". Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from python_actors import GenServer, Ok, Reply, Runtime, call  # noqa: E402
from python_actors.worker_placement import (  # noqa: E402
    WorkerPool,
    WorkerProxy,
    configure_worker_pool,
)

HERE = Path(__file__).resolve().parent


def burn(n: int) -> int:
    """The CPU-bound unit: the same loop as bench_workers.erl's burn/1."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


class LoopBurner(GenServer):
    placement = "loop"

    def init(self, args: Any) -> Any:
        return Ok(0)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if type(request) is int:
            return Reply(burn(request), state)
        return Reply(request, state)


class ProcessBurner(LoopBurner):
    placement = "process"


async def throughput(cls: type[GenServer], actors: int, n: int, k: int) -> float:
    """Calls per second of ``k`` burn(n) calls over ``actors`` actors, one client each."""
    async with Runtime() as rt:
        configure_worker_pool(rt, spares=0)
        pids = [await cls.start(runtime=rt) for _ in range(actors)]
        for pid in pids:  # warm up (imports done, first call paid)
            await call(pid, 10, None, runtime=rt)

        async def client(pid: Any) -> None:
            for _ in range(k // actors):
                await call(pid, n, None, runtime=rt)

        t0 = time.perf_counter()
        await asyncio.gather(*(client(pid) for pid in pids))
        return k / (time.perf_counter() - t0)


def _burn_many(n: int, calls: int) -> None:
    for _ in range(calls):
        burn(n)


def plain_processes(processes: int, n: int, k: int) -> float:
    """Calls per second of the same work in forked processes without any actor."""
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_burn_many, args=(n, k // processes)) for _ in range(processes)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return k / (time.perf_counter() - t0)


async def wait_spare(pool: WorkerPool) -> None:
    while pool.ready_spares() < 1:
        await asyncio.sleep(0.01)


async def start_latency(cls: type[GenServer], warm: bool, repeat: int) -> float:
    """Median seconds of ``cls.start``; warm: a spare is ready before each start."""
    times: list[float] = []
    async with Runtime() as rt:
        pool = configure_worker_pool(rt, spares=1 if warm else 0)
        if warm:  # spares made from now on preload cls's module, as after a first start
            pool.preload(cls)
        for _ in range(repeat):
            if warm and cls.placement == "process":
                await wait_spare(pool)
            t0 = time.perf_counter()
            await cls.start(runtime=rt)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def call_p50(cls: type[GenServer], calls: int) -> float:
    async with Runtime() as rt:
        configure_worker_pool(rt, spares=0)
        pid = await cls.start(runtime=rt)
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            await call(pid, "ping", runtime=rt)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _smaps_kib(os_pid: int) -> tuple[int, int]:
    """(RSS, USS) in KiB of an OS process."""
    fields: dict[str, int] = {}
    with open(f"/proc/{os_pid}/smaps_rollup") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields["Rss"], fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)


async def worker_memory() -> tuple[int, int]:
    async with Runtime() as rt:
        configure_worker_pool(rt, spares=0)
        pid = await ProcessBurner.start(runtime=rt)
        await call(pid, 10, runtime=rt)
        proc = rt.process(pid)
        assert proc is not None and isinstance(proc.behaviour, WorkerProxy)
        assert proc.behaviour.os_pid is not None
        return _smaps_kib(proc.behaviour.os_pid)


def beam_throughput(n: int, k: int, runs: int) -> dict[str, list[float]] | None:
    erl, erlc = shutil.which("erl"), shutil.which("erlc")
    if not erl or not erlc:
        print("erl/erlc not found: BEAM figures skipped", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([erlc, "-o", tmp, str(HERE / "bench_workers.erl")], check=True)
        res = subprocess.run(
            [erl, "+S", "2:2", "-noshell", "-pa", tmp, "-run", "bench_workers", "main",
             str(n), str(k), str(runs)],
            check=True, capture_output=True, text=True, timeout=600,
        )
    out: dict[str, list[float]] = {"one": [], "two": []}
    for line in res.stdout.split("\n"):
        parts = line.split()
        if len(parts) == 2 and parts[0] in out:
            out[parts[0]].append(k / (int(parts[1]) / 1e6))
    return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", type=int, default=300_000, help="loop steps per CPU-bound call")
    ap.add_argument("--k", type=int, default=16, help="CPU-bound calls per measurement")
    ap.add_argument("--calls", type=int, default=2000, help="small calls for the p50")
    args = ap.parse_args()
    med = statistics.median

    print(f"CPU-bound calls: burn({args.n}) x {args.k}, median of {args.runs} runs (calls/s)")
    rows: dict[str, list[float]] = {k: [] for k in ("p1", "p2", "l1", "l2", "m1", "m2")}
    for _ in range(args.runs):
        rows["m1"].append(plain_processes(1, args.n, args.k))
        rows["m2"].append(plain_processes(2, args.n, args.k))
        rows["p1"].append(await throughput(ProcessBurner, 1, args.n, args.k))
        rows["p2"].append(await throughput(ProcessBurner, 2, args.n, args.k))
        rows["l1"].append(await throughput(LoopBurner, 1, args.n, args.k))
        rows["l2"].append(await throughput(LoopBurner, 2, args.n, args.k))
    beam = beam_throughput(args.n, args.k, args.runs)
    table = [
        ("python placement=process", med(rows["p1"]), med(rows["p2"])),
        ("python placement=loop", med(rows["l1"]), med(rows["l2"])),
        ("python plain processes", med(rows["m1"]), med(rows["m2"])),
    ]
    if beam is not None:
        table.append(("BEAM erl +S 2", med(beam["one"]), med(beam["two"])))
    print(f"  {'':28} {'1 actor':>10} {'2 actors':>10} {'2 vs 1':>8}")
    for label, one, two in table:
        print(f"  {label:28} {one:10.1f} {two:10.1f} {two / one:7.2f}x")
    for label, one, two in (("process", "p1", "p2"), ("plain processes", "m1", "m2")):
        ratios = [b / a for a, b in zip(rows[one], rows[two], strict=True)]
        print(f"  {label} 2-vs-1 per run: {', '.join(f'{r:.2f}' for r in ratios)}")
    if beam is not None:
        print(f"  per-call time, python process / BEAM: {med(beam['one']) / med(rows['p1']):.1f}x")

    print("\nCost of a placement (medians)")
    warm = med([await start_latency(ProcessBurner, True, 5) for _ in range(args.runs)])
    cold = med([await start_latency(ProcessBurner, False, 3) for _ in range(args.runs)])
    loop_start = med([await start_latency(LoopBurner, False, 50) for _ in range(args.runs)])
    p50_proc = med([await call_p50(ProcessBurner, args.calls) for _ in range(args.runs)])
    p50_loop = med([await call_p50(LoopBurner, args.calls) for _ in range(args.runs)])
    rss, uss = await worker_memory()
    print(f"  start, process, warm spare   {warm * 1e3:9.2f} ms")
    print(f"  start, process, cold         {cold * 1e3:9.2f} ms")
    print(f"  start, loop                  {loop_start * 1e3:9.3f} ms")
    print(f"  call p50, process            {p50_proc * 1e6:9.1f} us  ({p50_proc / p50_loop:.1f}x loop)")
    print(f"  call p50, loop               {p50_loop * 1e6:9.1f} us")
    print(f"  memory of one idle worker    RSS {rss / 1024:.1f} MiB, unique {uss / 1024:.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
