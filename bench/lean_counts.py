"""Count what one call costs on each call path: loop iterations, syscalls, thread
hops, encodes, decodes, copies (docs/figures/lean-path.md).

    python bench/lean_counts.py [--n 2000] [--root PATH]

cProfile is used as a counter (call counts, not times) on the loop thread over N
calls of: Python -> BEAM ``gen:call``, BEAM -> Python ``gen:call`` to a Python
GenServer (placements ``auto`` and ``loop``), and a local call between two Python
actors (both placements). ``--root`` runs another checkout's code (an export of an
older commit, for a before/after table). Prints a Markdown table of per-call counts.
BEAM -> Python counts include bench_dist's N/10 warm-up calls (divide by 1.1).
Not collected by pytest.
"""

import argparse
import asyncio
import cProfile
import pstats
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

_ap = argparse.ArgumentParser()
_ap.add_argument("--n", type=int, default=2000)
_ap.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
_args = _ap.parse_args()
ROOT = Path(_args.root).resolve()
sys.path.insert(0, str(ROOT))
from bridge import Node  # noqa: E402
from dist_proto import Atom  # noqa: E402
from python_actors import GenServer, Ok, Reply, Runtime  # noqa: E402
from python_actors import call as gen_call  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402

N = _args.n
KEYS = {
    "loop iterations": [("base_events", "_run_once")],
    "epoll waits": [("~", "'poll' of 'select.epoll'")],
    "socket writes (send)": [("~", "'send' of '_socket.socket'")],
    "socket reads (recv)": [
        ("~", "'recv' of '_socket.socket'"),
        ("~", "'recv_into' of '_socket.socket'"),
    ],
    "call_soon": [("base_events", "_call_soon")],
    "thread hops (pool submit + outbox flush on the loop)": [
        ("threads.py", "submit"),
        ("runtime.py", "_flush_outbox"),
    ],
    "tasks created": [("~", "'create_task'"), ("base_events", "create_task")],
    "ETF encodes": [("~", "_etf_core.encode")],
    "ETF decodes": [("~", "_etf_core.decode")],
    "compiled frame scans (each decodes a run of frames)": [("~", "_etf_core.scan_frames")],
    "bytes joins (frame copies)": [("~", "'join' of 'bytes'")],
    "references made": [("runtime.py", "make_ref")],
    "monitors made": [("runtime.py", "_monitor")],
}


def counts(prof):
    st = pstats.Stats(prof).stats
    out = {}
    for label, pats in KEYS.items():
        tot = 0
        for (fn, _line, name), v in st.items():
            for f, n in pats:
                if f in fn and n in name and (f != "~" or fn == "~"):
                    if f == "runtime.py" and name != n:
                        continue
                    if f == "threads.py" and name != n:
                        continue
                    if f == "base_events" and name != n:
                        continue
                    tot += v[0]
        out[label] = tot / N
    return out


class PySrv(GenServer):
    def init(self, a):
        return Ok(0)

    def handle_call(self, r, f, s):
        return Reply(r, s)


class PySrvLoop(PySrv):
    placement = "loop"


def main():
    rt = runtime("otp25")
    with tempfile.TemporaryDirectory() as d:
        ebin = Path(d) / "ebin"
        ebin.mkdir()
        subprocess.run(
            [shutil.which("erlc"), "-o", str(ebin), str(ROOT / "bench" / "bench_dist.erl")],
            check=True,
        )
        with (
            Epmd(rt) as epmd,
            BeamNode(
                rt,
                epmd_port=epmd.port,
                prefix="cntB",
                extra_args=["-pa", str(ebin), "+sbwt", "none"],
            ) as b,
        ):
            b.eval("bench_dist:start_server(bench_srv)")
            res = {}

            async def go():
                node = Node("cnt@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port)
                await node.start()
                await node.ping(b.name)
                server = (Atom("bench_srv"), Atom(b.name))
                done = asyncio.get_running_loop().create_future()

                async def caller(proc):
                    for _ in range(200):
                        await gen_call(server, Atom("ping"))
                    pr = cProfile.Profile()
                    pr.enable()
                    for _ in range(N):
                        await gen_call(server, Atom("ping"))
                    pr.disable()
                    res["Python -> BEAM gen:call"] = counts(pr)
                    done.set_result(None)

                node.spawn(caller)
                await done
                for cls, label in ((PySrv, "auto"), (PySrvLoop, "loop")):
                    name = f"py_srv_{label}"
                    await cls.start(runtime=node.runtime, name=name)
                    expr = f"bench_dist:call_latency({{{name}, 'cnt@127.0.0.1'}}, ping, 200)"
                    await asyncio.to_thread(b.eval_term, expr)
                    pr = cProfile.Profile()
                    pr.enable()
                    await asyncio.to_thread(
                        b.eval_term,
                        f"bench_dist:call_latency({{{name}, 'cnt@127.0.0.1'}}, ping, {N})",
                        300,
                    )
                    pr.disable()
                    res[f"BEAM -> Python gen:call ({label} placement)"] = counts(pr)
                await node.stop()

            asyncio.run(go())

    async def local():
        async with Runtime() as rt:
            for cls, label in ((PySrv, "auto"), (PySrvLoop, "loop")):
                srv = await cls.start(runtime=rt)

                async def caller(proc, srv=srv, label=label):
                    for _ in range(200):
                        await gen_call(srv, 1)
                    pr = cProfile.Profile()
                    pr.enable()
                    for _ in range(N):
                        await gen_call(srv, 1)
                    pr.disable()
                    res[f"local Python call ({label} placement)"] = counts(pr)

                await rt.run(caller)

    asyncio.run(local())
    labels = list(KEYS)
    cols = list(res)
    print("| per call | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for key in labels:
        print(f"| {key} | " + " | ".join(f"{res[c][key]:.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
