"""Benchmark the ETF codec against erlang-py and BEAM's own term_to_binary/binary_to_term.

    python bench/etf.py            # full run (median of 5 runs per figure)
    python bench/etf.py --quick    # shorter runs
    python bench/etf.py --no-beam  # Python peers only

Both implementations of dist_proto's codec are measured in the same run: the
compiled core (``core``, when built) and the pure-Python codec (``pure``); a
``zero-copy`` row decodes binaries as memoryviews (``decode(data, zero_copy=True)``);
the ``core+str`` / ``pure+str`` rows decode with ``Mapping(strings=True)`` (UTF-8
binaries as ``str``, see docs/mapping.md).
Every implementation works on the same Erlang term: the bytes are made once by
dist_proto, each Python library decodes them into its own representation, and
that representation is what it encodes. BEAM times ``timer:tc`` over N
iterations of a list comprehension and subtracts the same loop without the
call, so the figure is per operation. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import erlang  # noqa: E402  (PyPI erlang-py)

from dist_proto import Atom, Pid, Reference, decode, encode  # noqa: E402
from dist_proto.etf import available  # noqa: E402
from dist_proto.mapping import Mapping  # noqa: E402

STRINGS = Mapping(strings=True)


def workloads() -> dict[str, Any]:
    node = Atom("app@127.0.0.1")
    pid = Pid(node, 117, 0, 1700000000)
    ref = Reference(node, 1700000000, (123456, 789012, 345678))
    control = (Atom("$gen_call"), (pid, ref), (Atom("get"), Atom("key")))
    doc = {
        f"field_{i}".encode(): {
            Atom("id"): i,
            Atom("name"): f"name {i}".encode(),
            Atom("score"): i * 1.5,
            Atom("tags"): [Atom("a"), Atom("b")],
        }
        if i % 10 == 0
        else (i * 7919 if i % 3 else f"value {i}".encode())
        for i in range(1000)
    }
    deep: Any = []
    for i in range(300):  # erlang-py recurses (2 frames a level): deeper fails there
        deep = [Atom("node"), i, deep] if i % 2 else (Atom("t"), deep)
    return {
        "control tuple": control,
        "1000-key map": doc,
        "1 MiB binary": bytes(range(256)) * 4096,
        "1 MiB text": "Olá, José! ".encode() * 80_000,
        "1000 strings": [f"user {i} · José".encode() for i in range(1000)],
        "100k int list": list(range(100_000)),
        "deep 300": deep,
    }


def measure(fn: Callable[[], object], runs: int, min_time: float) -> float:
    """Median seconds per call over ``runs`` runs of at least ``min_time`` each."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= min_time / 4:
            break
        n *= 4
    n = max(1, int(n * min_time / max(dt, 1e-9)))
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def beam_times(data: dict[str, bytes], runs: int, quick: bool) -> dict[tuple[str, str], float]:
    """Per-op seconds of BEAM's term_to_binary / binary_to_term (timer:tc, baseline subtracted)."""
    from tests.beam import BeamNode, Epmd, available_runtimes

    rts = [rt for rt in available_runtimes() if rt.label == "otp28"] or available_runtimes()
    out: dict[tuple[str, str], float] = {}
    if not rts:
        return out
    rt = rts[0]
    with tempfile.TemporaryDirectory() as tmp, Epmd() as epmd, \
            BeamNode(rt, epmd_port=epmd.port, prefix="bench") as node:
        for i, (name, blob) in enumerate(data.items()):
            path = Path(tmp) / f"w{i}.bin"
            path.write_bytes(blob)
            node.eval(f'{{ok, B{i}}} = file:read_file("{path}"), T{i} = binary_to_term(B{i}), ok')
            # size N so that one loop takes ~0.1-0.3 s on the BEAM
            t_one = decode(node.eval(f"element(1, timer:tc(fun() -> term_to_binary(T{i}) end))"))
            n = max(10, min(200_000, int((0.05 if quick else 0.2) * 1e6 / max(t_one, 0.05))))
            for direction, call in (("encode", f"term_to_binary(T{i})"),
                                    ("decode", f"binary_to_term(B{i})")):
                samples = []
                for r in range(runs):
                    v = f"{i}{direction[0]}{r}"  # the node keeps bindings: fresh names
                    us = decode(node.eval(
                        f"S{v} = lists:seq(1, {n}), "
                        f"{{Tb{v}, _}} = timer:tc(fun() -> [ok || _ <- S{v}] end), "
                        f"{{Tc{v}, _}} = timer:tc(fun() -> [{call} || _ <- S{v}] end), "
                        f"max(Tc{v} - Tb{v}, 0) / {n}", timeout=300))
                    samples.append(us / 1e6)
                out[(name, direction)] = statistics.median(samples)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (3 x 0.05 s)")
    ap.add_argument("--no-beam", action="store_true", help="skip the BEAM peer")
    args = ap.parse_args()
    runs, min_time = (3, 0.05) if args.quick else (5, 0.3)

    codecs = available()[::-1]  # the core first when built
    terms = workloads()
    blobs = {name: encode(t) for name, t in terms.items()}
    rows = []
    for name, term in terms.items():
        blob = blobs[name]
        assert name.startswith("deep") or decode(blob) == term
        native = erlang.binary_to_term(blob)
        results: dict[tuple[str, str], float] = {}
        for codec in codecs:
            assert codec.encode(term) == blob
            results[(codec.name, "encode")] = measure(lambda c=codec, t=term: c.encode(t), runs,
                                                      min_time)
            results[(codec.name, "decode")] = measure(lambda c=codec, b=blob: c.decode(b), runs,
                                                      min_time)
            results[(codec.name + "+str", "decode")] = measure(
                lambda c=codec, b=blob: c.decode(b, mapping=STRINGS), runs, min_time)
        if "binary" in name:
            results[("zero-copy", "decode")] = measure(
                lambda c=codecs[0], b=blob: c.decode(b, zero_copy=True), runs, min_time)
        results[("erlang-py", "encode")] = measure(lambda t=native: erlang.term_to_binary(t),
                                                   runs, min_time)
        results[("erlang-py", "decode")] = measure(lambda b=blob: erlang.binary_to_term(b), runs,
                                                   min_time)
        rows.append((name, len(blob), results))
    beam: dict[tuple[str, str], float] = {}
    if not args.no_beam:
        try:
            beam = beam_times(blobs, runs, args.quick)
        except Exception as e:  # the table is still useful without the BEAM
            print(f"(BEAM peer unavailable: {e})", file=sys.stderr)

    head = (f"{'workload':<15} {'dir':<6} {'impl':<9} {'bytes':>8} | {'µs':>10} {'MB/s':>8} "
            f"{'terms/s':>9} | {'erlang-py µs':>12} | {'BEAM µs':>9} {'MB/s':>8} | "
            f"{'x erlang-py':>11} {'vs BEAM':>8}")
    print(head)
    print("-" * len(head))
    for name, size, results in rows:
        for direction in ("encode", "decode"):
            theirs = results[("erlang-py", direction)]
            b = beam.get((name, direction))
            beam_cols = (f"{b * 1e6:9.2f} {size / b / 1e6:8.1f}" if b else f"{'-':>9} {'-':>8}")
            impls = [c.name for c in codecs] + [c.name + "+str" for c in codecs] + ["zero-copy"]
            for impl in impls:
                ours = results.get((impl, direction))
                if ours is None:
                    continue
                vs_beam = f"{ours / b:7.2f}x" if b else f"{'-':>8}"
                print(
                    f"{name:<15} {direction:<6} {impl:<9} {size:>8} | {ours * 1e6:10.2f} "
                    f"{size / ours / 1e6:8.1f} {1 / ours:9.0f} | {theirs * 1e6:12.2f} | "
                    f"{beam_cols} | {theirs / ours:10.1f}x {vs_beam}"
                )
    print("impl: core = compiled C core, pure = pure Python, zero-copy = core with "
          "decode(zero_copy=True), +str = decode(mapping=Mapping(strings=True)).")
    print("x erlang-py: how many times faster than erlang-py; vs BEAM: how many times slower "
          "than BEAM (medians).")


if __name__ == "__main__":
    main()
