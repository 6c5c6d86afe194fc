"""Benchmark ``sys`` on Python GenServers beside BEAM gen_servers, in one run.

    python bench/sys_upgrade.py                  # 5 runs (default otp25)
    python bench/sys_upgrade.py --runtime otp28  # BEAM nodes of OTP 28
    python bench/sys_upgrade.py --runs 3 --actors 50 --calls 200

Two BEAM nodes, A and B, on a private EPMD, and a ``bridge.Node`` in this process.
The gen_server is tests/interop/fixtures/sys_ref.erl (compiled with OTP 25's erlc).

1. ``sys:get_state`` round trip, timed on node A (``timer:tc`` around ``--calls``
   calls in a row): a gen_server on node B (BEAM to BEAM) and a Python GenServer on
   the Python node (BEAM to Python). Both are one distribution hop from A.
2. Hot upgrade of ``--actors`` actors of one module, run where they live: on node B
   ``sys:suspend`` all, ``code:soft_purge``/``code:load_file(sys_ref)``,
   ``sys:change_code`` all, ``sys:resume`` all (release_handler's order); in Python,
   ``python_actors.upgrade_module`` on a module whose file is rewritten before each
   run (suspend all, reload from disk, change_code all, resume all).

Each figure is the median over the runs; ratios are Python / BEAM. Not collected by
pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge import Node  # noqa: E402
from python_actors import GenServer, upgrade_module  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, pid_expr, runtime  # noqa: E402

MODULE = """
from python_actors import GenServer, Ok, Reply

GENERATION = {generation}

class Counter(GenServer):
    def handle_call(self, request, from_, n):
        return Reply((GENERATION, n), n + 1)

    def code_change(self, old_vsn, n, extra):
        return Ok(n)
"""


def compile_fixture(out: Path) -> None:
    erlc = shutil.which("erlc")
    if erlc is None:
        raise SystemExit("erlc (OTP 25) is needed to build the gen_server")
    subprocess.run([erlc, "-o", str(out), str(REPO / "tests/interop/fixtures/sys_ref.erl")], check=True)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


async def main(args: argparse.Namespace) -> None:
    rt = runtime(args.runtime)
    with tempfile.TemporaryDirectory() as tmp_dir, Epmd() as epmd:
        tmp = Path(tmp_dir)
        compile_fixture(tmp)
        mod_name = "bench_hot_counter"
        (tmp / f"{mod_name}.py").write_text(MODULE.format(generation=0))
        sys.path.insert(0, str(tmp))
        module = importlib.import_module(mod_name)
        extra = ["-pa", str(tmp), "+sbwt", "none"]
        a = await asyncio.to_thread(BeamNode, rt, epmd_port=epmd.port, prefix="benchA", extra_args=extra)
        b = await asyncio.to_thread(BeamNode, rt, epmd_port=epmd.port, prefix="benchB", extra_args=extra)
        try:
            async with Node("pysys@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
                await run(args, a, b, node, module, tmp / f"{mod_name}.py")
        finally:
            await asyncio.to_thread(a.stop)
            await asyncio.to_thread(b.stop)


async def run(args: argparse.Namespace, a: BeamNode, b: BeamNode, node: Node, module: object,
              path: Path) -> None:
    def ev(beam: BeamNode, expr: str) -> object:
        return beam.eval_term(f"(fun() -> {expr} end)()", 300)

    await asyncio.to_thread(ev, b, "{ok, P} = sys_ref:start(0), register(bench_ref, P), ok")
    py_one = await GenServer.start(0, runtime=node.runtime)
    await asyncio.to_thread(ev, b, f"persistent_term:put(bench_ps, "
                                   f"[element(2, sys_ref:start(I)) || I <- lists:seq(1, {args.actors})])")
    py_actors = [await module.Counter.start(i, runtime=node.runtime) for i in range(args.actors)]  # type: ignore[attr-defined]
    targets = {"BEAM": f"{{bench_ref, '{b.name}'}}", "Python": pid_expr(py_one)}
    loop = (f"element(1, timer:tc(fun() -> [sys:get_state(T) || _ <- lists:seq(1, {args.calls})] end))"
            f" * 1000 div {args.calls}")
    get_state: dict[str, list[float]] = {"BEAM": [], "Python": []}
    upgrade: dict[str, list[float]] = {"BEAM": [], "Python": []}
    beam_seq = (
        "Qs = persistent_term:get(bench_ps),"
        "{length(Qs), element(1, timer:tc(fun() -> [sys:suspend(P) || P <- Qs], code:soft_purge(sys_ref),"
        " {module, sys_ref} = code:load_file(sys_ref), [ok = sys:change_code(P, sys_ref, \"1\", x) || P <- Qs],"
        " [sys:resume(P) || P <- Qs] end))}"
    )
    for i in range(args.runs):
        for who, target in targets.items():
            ns = await asyncio.to_thread(ev, a, f"T = {target}, sys:get_state(T), {loop}")
            get_state[who].append(float(ns))  # type: ignore[arg-type]
        n, us = await asyncio.to_thread(ev, b, beam_seq)  # type: ignore[misc]
        upgrade["BEAM"].append(float(us) / 1000)
        path.write_text(MODULE.format(generation=i + 1))
        t0 = time.perf_counter()
        done = await upgrade_module(node.runtime, path.stem)
        upgrade["Python"].append((time.perf_counter() - t0) * 1000)
        assert len(done) == len(py_actors), done
    print(f"BEAM {a.runtime.label}; {args.runs} runs; medians")
    g_b, g_p = statistics.median(get_state["BEAM"]), statistics.median(get_state["Python"])
    print(f"sys:get_state from node A, {args.calls} in a row: "
          f"gen_server on B {g_b / 1000:.1f} us, Python GenServer {g_p / 1000:.1f} us, ratio {ratio(g_p, g_b)}")
    u_b, u_p = statistics.median(upgrade["BEAM"]), statistics.median(upgrade["Python"])
    print(f"upgrade of {n} gen_servers on B {u_b:.2f} ms; of {len(py_actors)} Python actors {u_p:.2f} ms; "
          f"ratio {ratio(u_p, u_b)}")
    await asyncio.to_thread(ev, b, "[gen_server:stop(P) || P <- [whereis(bench_ref) | persistent_term:get(bench_ps)]], ok")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", default="otp25")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--actors", type=int, default=100)
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
