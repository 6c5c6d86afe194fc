"""Benchmark of the local actor runtime beside BEAM's own figures, from the same run.

    python bench/actors.py [--runs 3] [--n 100000] [--placement auto|loop|thread]

Measures, for python_actors and for an ``erl`` node (``+S 1``: one scheduler, as
asyncio uses one thread): the rate of starting 100 000 idle gen_servers, the memory
of one idle gen_server (tracemalloc over 100 000 / ``process_info(P, memory)``),
cast throughput (N casts then one call), raw send/receive throughput between two
processes, and ``gen_server:call`` latency p50/p99 from a process. Prints the
median of ``--runs`` runs and the Python/BEAM ratios. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from python_actors import GenServer, NoReply, Ok, Process, Reply, Runtime, call  # noqa: E402


class _Idle(GenServer):
    def init(self, args: Any) -> Any:
        return Ok(0)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(state, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return NoReply(state + 1)


async def py_run(n: int, m: int, calls: int, placement: str = "auto") -> dict[str, float]:
    out: dict[str, float] = {}
    Idle = type(f"Idle_{placement}", (_Idle,), {"placement": placement})  # noqa: N806
    rt = Runtime()
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    for _ in range(n):
        await Idle.start(runtime=rt)
    out["spawn_per_s"] = n / (time.perf_counter() - t0)
    gc.enable()
    await rt.stop()

    rt = Runtime()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        await Idle.start(runtime=rt)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    out["idle_bytes"] = (after - before) / n
    await rt.stop()

    async with Runtime() as rt:
        srv = await Idle.start(runtime=rt)
        assert srv is not None

        async def caster(proc: Process) -> float:
            t = time.perf_counter()
            send = proc.send
            from python_actors.gen_server import GEN_CAST

            msg = (GEN_CAST, 1)
            for _ in range(m):
                send(srv, msg)
            await call(srv, "get", None)
            return m / (time.perf_counter() - t)

        out["cast_per_s"] = await rt.run(caster)

        async def receiver(proc: Process, parent: Any, count: int) -> None:
            receive = proc.receive
            for _ in range(count):
                await receive()
            proc.send(parent, "done")

        async def sender(proc: Process) -> float:
            r = proc.spawn(receiver, proc.pid, m)
            t = time.perf_counter()
            send = proc.send
            for i in range(m):
                send(r, i)
                if i % 1000 == 0:
                    await asyncio.sleep(0)
            await proc.receive(lambda x: x == "done")
            return m / (time.perf_counter() - t)

        out["send_per_s"] = await rt.run(sender)

        async def caller(proc: Process) -> list[float]:
            lat = []
            for _ in range(calls):
                t = time.perf_counter()
                await call(srv, "get")
                lat.append((time.perf_counter() - t) * 1e6)
            return lat

        lat = sorted(await rt.run(caller))
        out["call_p50_us"] = lat[len(lat) // 2]
        out["call_p99_us"] = lat[int(len(lat) * 0.99)]
    return out


ERL_SRC = r"""
-module(bench_gs).
-behaviour(gen_server).
-export([main/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).
init(N) -> {ok, N}.
handle_call(get, _F, S) -> {reply, S, S}.
handle_cast(_, S) -> {noreply, S + 1}.
handle_info(_, S) -> {noreply, S}.
main([NA, MA, CA]) ->
    N = list_to_integer(NA),
    M = list_to_integer(MA),
    C = list_to_integer(CA),
    {T1, Pids} = timer:tc(fun() ->
        [begin {ok, P} = gen_server:start(?MODULE, 0, []), P end || _ <- lists:seq(1, N)] end),
    erlang:garbage_collect(hd(Pids)),
    {memory, Mem} = erlang:process_info(lists:nth(N div 2, Pids), memory),
    [exit(P, kill) || P <- Pids],
    {ok, S} = gen_server:start(?MODULE, 0, []),
    {T2, _} = timer:tc(fun() ->
        [gen_server:cast(S, x) || _ <- lists:seq(1, M)], gen_server:call(S, get, infinity) end),
    Self = self(),
    R = spawn(fun() -> L = fun Loop(0) -> Self ! done; Loop(K) -> receive _ -> Loop(K - 1) end end,
                       L(M) end),
    {T3, _} = timer:tc(fun() -> [R ! X || X <- lists:seq(1, M)], receive done -> ok end end),
    Lat = lists:sort([element(1, timer:tc(gen_server, call, [S, get])) || _ <- lists:seq(1, C)]),
    io:format("spawn_per_s ~p~nidle_bytes ~p~ncast_per_s ~p~nsend_per_s ~p~n"
              "call_p50_us ~p~ncall_p99_us ~p~n",
              [N * 1000000 / T1, Mem, M * 1000000 / T2, M * 1000000 / T3,
               lists:nth(C div 2, Lat), lists:nth(trunc(C * 0.99), Lat)]),
    halt().
"""


def beam_run(n: int, m: int, calls: int, erl: str, tmp: Path) -> dict[str, float]:
    res = subprocess.run(
        [erl, "+S", "1:1", "-noshell", "-pa", str(tmp), "-run", "bench_gs", "main",
         str(n), str(m), str(calls)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    out = {}
    for line in res.stdout.splitlines():
        k, _, v = line.partition(" ")
        out[k] = float(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--m", type=int, default=200_000, help="messages per throughput run")
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--placement", default="auto", help="placement of the Python actors")
    ap.add_argument("--no-beam", action="store_true", help="skip the BEAM figures")
    args = ap.parse_args()

    py = [asyncio.run(py_run(args.n, args.m, args.calls, args.placement)) for _ in range(args.runs)]
    keys = list(py[0])
    py_med = {k: statistics.median(r[k] for r in py) for k in keys}

    erl = None if args.no_beam else shutil.which("erl")
    beam_med: dict[str, float] = {}
    if erl:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            (tmp / "bench_gs.erl").write_text(ERL_SRC)
            subprocess.run(["erlc", "-o", str(tmp), str(tmp / "bench_gs.erl")], check=True)
            beam = [beam_run(args.n, args.m, args.calls, erl, tmp) for _ in range(args.runs)]
        beam_med = {k: statistics.median(r[k] for r in beam) for k in keys}

    print(f"median of {args.runs} runs; n={args.n} actors, m={args.m} messages, {args.calls} calls, "
          f"placement {args.placement}")
    print(f"{'metric':<14}{'python':>14}{'beam (+S 1)':>14}{'py/beam':>10}")
    for k in keys:
        b = beam_med.get(k)
        ratio = f"{py_med[k] / b:>10.3f}" if b else f"{'-':>10}"
        bs = f"{b:>14.1f}" if b is not None else f"{'-':>14}"
        print(f"{k:<14}{py_med[k]:>14.1f}{bs}{ratio}")


if __name__ == "__main__":
    main()
