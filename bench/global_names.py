"""``global`` with a visible Python node beside a BEAM node doing the same, in one run.

    python bench/global_names.py [--runs 3] [--n 50] [--otp otp25|otp28]

A cluster of BEAM nodes ``a`` and ``b`` is joined by a visible Python node, which then
leaves, and by a BEAM node ``c``: each joiner measures a three-node cluster. Measured:

- join: from the connect to ``a`` until ``global:sync()`` on ``a`` returns and ``b``
  lists the joiner in ``nodes()`` (global's locker waits 0.2-3 s before it tries, so
  this is dominated by that wait, on both);
- register: ``global:register_name`` + ``global:unregister_name`` of a process of the
  joiner, per second (each takes ``global``'s lock on all three nodes);
- whereis: ``global:whereis_name`` of a name, per second (a table lookup on the node).

Prints the medians of ``--runs`` runs and the Python/BEAM ratios. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import Node  # noqa: E402
from dist_proto import Atom  # noqa: E402
from tests.beam import BeamNode, Epmd, runtime  # noqa: E402
from tests.interop.node_support import ev, py_name, q  # noqa: E402

SYNC = ("{P, R} = spawn_monitor(fun() -> exit(global:sync()) end), "
        "receive {'DOWN', R, process, P, Res} -> Res after 30000 -> exit(P, kill), sync_timeout end")


async def _joined(a: BeamNode, b: BeamNode, joiner: str) -> None:
    assert await ev(a, SYNC) == Atom("ok")
    while Atom(joiner) not in await ev(b, "nodes()"):
        await asyncio.sleep(0.01)


async def beam_run(a: BeamNode, b: BeamNode, c: BeamNode, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    assert await ev(c, f"net_kernel:connect_node({q(a.name)})") is True
    await _joined(a, b, c.name)
    out["join_s"] = time.perf_counter() - t0
    us = await ev(c, f"""P = spawn(fun() -> receive stop -> ok end end),
        {{T, _}} = timer:tc(fun() -> [begin yes = global:register_name(bench_c, P),
                                            _ = global:unregister_name(bench_c) end || _ <- lists:seq(1, {n})] end),
        P ! stop, T""")
    out["register_per_s"] = n / (us / 1e6)
    us = await ev(c, """P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(bench_w, P),
        {T, _} = timer:tc(fun() -> [global:whereis_name(bench_w) || _ <- lists:seq(1, 20000)] end),
        global:unregister_name(bench_w), P ! stop, T""")
    out["whereis_per_s"] = 20000 / (us / 1e6)
    return out


async def py_run(a: BeamNode, b: BeamNode, epmd_port: int, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with Node(py_name("pyb"), cookie=a.cookie, epmd_port=epmd_port, hidden=False) as node:
        t0 = time.perf_counter()
        assert await node.connect(a.name)
        await _joined(a, b, node.name)
        out["join_s"] = time.perf_counter() - t0
        async with node.process() as proc:
            t0 = time.perf_counter()
            for _ in range(n):
                assert await node.global_register("bench_py", proc.pid)
                await node.global_unregister("bench_py")
            out["register_per_s"] = n / (time.perf_counter() - t0)
            assert await node.global_register("bench_pw", proc.pid)
            t0 = time.perf_counter()
            for _ in range(20000):
                await node.global_whereis("bench_pw")
            out["whereis_per_s"] = 20000 / (time.perf_counter() - t0)
            await node.global_unregister("bench_pw")
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--otp", default="otp25")
    args = parser.parse_args()
    rt = runtime(args.otp)
    beam: list[dict[str, float]] = []
    py: list[dict[str, float]] = []
    with Epmd() as epmd:
        for _ in range(args.runs):
            with BeamNode(rt, epmd_port=epmd.port, prefix="ba") as a, \
                    BeamNode(rt, epmd_port=epmd.port, prefix="bb") as b, \
                    BeamNode(rt, epmd_port=epmd.port, prefix="bc") as c:
                assert await ev(a, f"net_kernel:connect_node({q(b.name)})") is True
                assert await ev(a, "global:sync()") == Atom("ok")
                py.append(await py_run(a, b, epmd.port, args.n))
                beam.append(await beam_run(a, b, c, args.n))
    print(f"global with a visible Python node vs a BEAM node ({rt.label}), median of {args.runs} runs")
    print(f"{'':16}{'Python':>14}{'BEAM':>14}{'Python/BEAM':>14}")
    for key in ("join_s", "register_per_s", "whereis_per_s"):
        p = statistics.median(r[key] for r in py)
        e = statistics.median(r[key] for r in beam)
        print(f"{key:16}{p:14.3f}{e:14.3f}{p / e:14.2f}")


if __name__ == "__main__":
    asyncio.run(main())
