"""The sender's peak memory while the receiving node is frozen, Python and BEAM, in one run.

    python bench/backpressure.py                   # 3 runs of 3 s, OTP 25 nodes
    python bench/backpressure.py --runtime otp28 --runs 5 --seconds 2

A BEAM node R with a registered sink is started on a private EPMD and connected
to two senders: a ``bridge.Node`` in this process and a BEAM node S. R is then
frozen with SIGSTOP, and each sender in turn sends 64 KiB binaries to R's sink as
fast as it may for ``--seconds``:

* Python: ``await node.send(...)`` in a loop (the public async API, which waits
  while the connection is busy). Measured: the growth of this process's resident
  memory (sampled every 20 ms) and the peak of unsent output on the connection.
* BEAM: a process on S doing ``{sink, R} ! Bin`` in a loop (BEAM suspends it on a
  busy distribution port). Measured: the growth of ``erlang:memory(total)`` on S
  (sampled every 20 ms).

Both use a 1 MiB busy limit (``busy_limit`` and ``dist_buf_busy_limit`` defaults).
R is resumed (SIGCONT) between measurements and the senders stopped. Each figure
is the median of ``--runs`` runs. Kernel socket buffers are outside both figures.
Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge import Node  # noqa: E402
from dist_proto import Atom  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402

MESSAGE = bytes(64 * 1024)
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class PeakSampler:
    """Samples this process's RSS in a thread; ``peak - base`` is the growth."""

    def __init__(self) -> None:
        self.base = rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def python_run(node: Node, r: BeamNode, seconds: float) -> tuple[float, float, int]:
    """(RSS growth MiB, peak unsent KiB, messages accepted) while R is frozen."""
    peer = node._peers[Atom(r.name)]
    dest = ("sink", r.name)
    sent = 0
    peak_unsent = 0

    async def flood() -> None:
        nonlocal sent, peak_unsent
        while True:
            await node.send(dest, MESSAGE)
            sent += 1
            peak_unsent = max(peak_unsent, peer.write_buffer_size())

    os.kill(r.pid, signal.SIGSTOP)
    try:
        with PeakSampler() as sampler:
            task = asyncio.create_task(flood())
            await asyncio.sleep(seconds)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        os.kill(r.pid, signal.SIGCONT)
    await drained(node, r)
    return (sampler.peak - sampler.base) / 2**20, peak_unsent / 1024, sent


async def drained(node: Node, r: BeamNode) -> None:
    peer = node._peers[Atom(r.name)]
    while peer.write_buffer_size():
        await asyncio.sleep(0.05)
    await asyncio.to_thread(r.eval, "ok")


_BEAM_FLOOD = """(fun() ->
Dest = {{sink, '{r}'}},
C = counters:new(1, []),
Base = erlang:memory(total),
Sender = spawn(fun() -> (fun L() -> Dest ! binary:copy(<<0>>, 65536), counters:add(C, 1, 1), L() end)() end),
Peak = (fun S(P, 0) -> P; S(P, K) -> timer:sleep(20), S(max(P, erlang:memory(total)), K - 1) end)(Base, {ticks}),
exit(Sender, kill),
{{Peak - Base, counters:get(C, 1)}}
end)()
"""


async def beam_run(s: BeamNode, r: BeamNode, seconds: float) -> tuple[float, int]:
    """(erlang:memory(total) growth on S in MiB, sends returned) while R is frozen."""
    expr = _BEAM_FLOOD.format(r=r.name, ticks=int(seconds / 0.02))
    os.kill(r.pid, signal.SIGSTOP)
    try:
        grown, sent = await asyncio.to_thread(s.eval_term, expr, seconds + 60)
    finally:
        os.kill(r.pid, signal.SIGCONT)
    await asyncio.to_thread(s.eval, f"net_adm:ping('{r.name}')")
    return int(grown) / 2**20, int(sent)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runtime", default="otp25")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rt = runtime(args.runtime)
    with Epmd(rt) as epmd:
        r = await asyncio.to_thread(BeamNode, rt, epmd_port=epmd.port, prefix="bpr")
        s = await asyncio.to_thread(BeamNode, rt, epmd_port=epmd.port, prefix="bps")
        try:
            sink = "register(sink, spawn(fun() -> (fun L() -> receive _ -> L() end end)() end)), ok"
            await asyncio.to_thread(r.eval, sink)
            await asyncio.to_thread(s.eval, f"pong = net_adm:ping('{r.name}')")
            async with Node("bpbench@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
                assert await node.ping(r.name)
                py: list[tuple[float, float, int]] = []
                beam: list[tuple[float, int]] = []
                for i in range(args.runs):
                    py.append(await python_run(node, r, args.seconds))
                    beam.append(await beam_run(s, r, args.seconds))
                    print(f"run {i + 1}: python +{py[-1][0]:.1f} MiB RSS (unsent peak {py[-1][1]:.0f} KiB,"
                          f" {py[-1][2]} sends returned); beam +{beam[-1][0]:.1f} MiB ({beam[-1][1]} sends returned)",
                          flush=True)
        finally:
            await asyncio.to_thread(s.stop)
            await asyncio.to_thread(r.stop)
    py_rss = statistics.median(p[0] for p in py)
    py_unsent = statistics.median(p[1] for p in py)
    py_sent = statistics.median(p[2] for p in py)
    beam_mem = statistics.median(b[0] for b in beam)
    beam_sent = statistics.median(b[1] for b in beam)
    print(f"\nreceiver frozen {args.seconds:g} s, 64 KiB messages, {rt.label}, median of {args.runs} runs")
    print(f"  python sender (Node.send):   +{py_rss:6.1f} MiB RSS, peak unsent output {py_unsent:.0f} KiB,"
          f" {py_sent:.0f} sends returned")
    print(f"  beam sender (erlang:send):   +{beam_mem:6.1f} MiB erlang:memory(total), {beam_sent:.0f} sends returned")
    if beam_mem > 0:
        print(f"  ratio python/beam: {py_rss / beam_mem:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
