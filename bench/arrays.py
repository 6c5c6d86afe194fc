"""An 8 MiB numpy array sent to BEAM without copies, against bytes and against BEAM.

    python bench/arrays.py                  # median of 5 runs of 5 sends each
    python bench/arrays.py --runs 9 --runtime otp28

In one run, on a private EPMD, with two BEAM nodes A and B and a ``bridge.Node``:

* Python -> A: an 8 MiB float64 array in a message (``{Pid, Array}``), sent zero-copy as
  ``{'$nd', {f, 64}, {1048576}, Data}`` (bridge/arrays.py), until A's sink acknowledges it;
* Python -> A: the same 8 MiB as ``bytes`` (the codec copies it into the frame);
* B -> A: the same 8 MiB binary between two BEAM nodes (the reference);
* on A: ``term_to_binary`` of the 8 MiB binary (BEAM's own encoder).

Also the Python heap allocated while one send is encoded and written (tracemalloc
peak): the copies the array path avoids. Every time is the median of ``--runs`` runs,
each the median of ``--sends`` sends. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from bridge import Node  # noqa: E402
from dist_proto import Atom  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402

SIZE = 8 * 1024 * 1024
ACK = Atom("ack")

SINK = """
begin
  catch exit(whereis(arr_sink), kill),
  Loop = fun L() -> receive {From, Msg} -> From ! {ack, erlang:external_size(Msg)}, L() end end,
  P = spawn(fun() -> Loop() end),
  register(arr_sink, P),
  ok
end
"""


async def python_sends(node: Node, sink: tuple[str, str], payload: Any, sends: int) -> float:
    """Median seconds from send to the sink's ack."""

    async def body(proc: Any) -> list[float]:
        times = []
        for _ in range(sends + 1):
            t0 = time.perf_counter()
            proc.send(sink, (proc.self(), payload))
            await proc.receive(lambda m: type(m) is tuple and m[0] == ACK)
            times.append(time.perf_counter() - t0)
        return times[1:]  # the first send warms the connection up

    return statistics.median(await node.runtime.run(body))


def allocated_by_one_send(node: Node, sink: tuple[str, str], payload: Any) -> int:
    """Peak Python heap while one message is encoded and handed to the transport."""
    proc_pid = node.runtime.system_pid
    tracemalloc.start()
    try:
        node.runtime.send(sink, (proc_pid, payload))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def beam_median_us(node: BeamNode, expr: str) -> float:
    values = node.eval_term(expr, timeout=300)
    return float(statistics.median(values))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sends", type=int, default=5)
    parser.add_argument("--runtime", default="otp25")
    args = parser.parse_args()
    rt = runtime(args.runtime)
    arr = np.arange(SIZE // 8, dtype=np.float64)
    raw = arr.tobytes()
    with Epmd() as epmd, \
            BeamNode(rt, epmd_port=epmd.port, prefix="arrA", extra_args=["+sbwt", "none"]) as a, \
            BeamNode(rt, epmd_port=epmd.port, prefix="arrB", extra_args=["+sbwt", "none"]) as b:
        a.eval(SINK)
        sink = ("arr_sink", a.name)
        async with Node(f"pyarr{int(time.time()) % 100000}@127.0.0.1", cookie=TEST_COOKIE,
                        epmd_port=epmd.port) as node:
            results: dict[str, list[float]] = {"array": [], "bytes": [], "beam": [], "t2b": []}
            beam_send = (f"Bin = binary:copy(<<7>>, {SIZE}), Sink = {{arr_sink, '{a.name}'}}, "
                         "T = fun() -> Sink ! {self(), Bin}, receive {ack, _} -> ok end end, T(), "
                         f"[element(1, timer:tc(T)) || _ <- lists:seq(1, {args.sends})]")
            t2b = (f"Bin = binary:copy(<<7>>, {SIZE}), "
                   f"[element(1, timer:tc(fun() -> term_to_binary(Bin) end)) || _ <- lists:seq(1, {args.sends})]")
            for _ in range(args.runs):
                results["array"].append(await python_sends(node, sink, arr, args.sends) * 1e6)
                results["bytes"].append(await python_sends(node, sink, raw, args.sends) * 1e6)
                results["beam"].append(await asyncio.to_thread(beam_median_us, b, beam_send))
                results["t2b"].append(await asyncio.to_thread(beam_median_us, a, t2b))
            await python_sends(node, sink, b"warm", 1)
            alloc_array = allocated_by_one_send(node, sink, arr)
            await asyncio.sleep(0.5)
            alloc_bytes = allocated_by_one_send(node, sink, raw)
            await asyncio.sleep(0.5)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"8 MiB to a BEAM sink (until acked), {rt.label}, median of {args.runs} runs x {args.sends} sends")
    print(f"  numpy array, zero-copy ('$nd' term)  {med['array'] / 1000:8.2f} ms")
    print(f"  bytes (encoder copies)               {med['bytes'] / 1000:8.2f} ms"
          f"   array is {med['bytes'] / med['array']:.2f}x as fast")
    print(f"  BEAM -> BEAM, same binary            {med['beam'] / 1000:8.2f} ms"
          f"   array takes {med['array'] / med['beam']:.2f}x BEAM's time")
    print(f"  BEAM term_to_binary(8 MiB binary)    {med['t2b'] / 1000:8.2f} ms")
    print("Python heap allocated while one send is encoded and written (tracemalloc peak):")
    print(f"  numpy array {alloc_array / 1024:10.1f} KiB")
    print(f"  bytes       {alloc_bytes / 1024:10.1f} KiB   ({alloc_bytes / SIZE:.2f}x the payload at the peak)")


if __name__ == "__main__":
    asyncio.run(main())
