"""Benchmark TLS distribution against TCP distribution, for BEAM <-> BEAM and Python, in one run.

    python bench/tls.py                  # median of 3 runs per figure
    python bench/tls.py --quick          # a tenth of the message counts
    python bench/tls.py --runtime otp28  # BEAM nodes of OTP 28 (+ OTP 25's ssl; see docs/tls.md)

Two "worlds" are set up side by side, each with its own private EPMD: in the TCP
world two BEAM nodes A and B and a ``bridge.Node`` run ``-proto_dist inet_tcp``; in
the TLS world the same three run ``-proto_dist inet_tls`` with one option file
(mutual TLS, TLS 1.2 as OTP's default, P-256 certificates that ``openssl`` makes for
the run). Every workload is the one of bench/dist.py (the same compiled
bench_dist.erl on the BEAM side, the same Python senders and receivers): B on one
end, A (the BEAM reference) or the Python node on the other.

Columns: each peer's figure over TCP and over TLS and the TLS/TCP ratio (the cost
of TLS: below 1 for throughput means slower, above 1 for latency means slower),
and the Python-over-TLS figure against BEAM-over-TLS. Every figure is the median of
``--runs`` runs. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge import Node  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, runtime  # noqa: E402
from tests.tls_certs import make_pki, ssl_code_path, write_optfile  # noqa: E402


def _load_dist_bench() -> Any:
    """bench/dist.py as a module (bench/ is not a package): its workloads are reused."""
    spec = importlib.util.spec_from_file_location("bench_dist_workloads", REPO / "bench" / "dist.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dist = _load_dist_bench()

WORKLOADS = [("small", 1), ("kb1", 1), ("kb64", 1), ("kb1", 8)]


@contextlib.contextmanager
def beam_world(rt: Runtime, ebin: Path, tls_args: list[str]) -> Iterator[tuple[Epmd, BeamNode, BeamNode]]:
    extra = ["-pa", str(ebin), "+sbwt", "none", *tls_args]
    with Epmd(rt) as epmd, \
            BeamNode(rt, epmd_port=epmd.port, prefix="benchA", extra_args=extra) as a, \
            BeamNode(rt, epmd_port=epmd.port, prefix="benchB", extra_args=extra) as b:
        b.eval("bench_dist:start_server(bench_srv)")
        a.check(f"net_adm:ping({dist.q(b.name)}) =:= pong")
        yield epmd, a, b


@contextlib.asynccontextmanager
async def python_node(epmd: Epmd, b: BeamNode, **tls: Any) -> AsyncIterator[Node]:
    async with Node(dist.PY_NODE, cookie=TEST_COOKIE, epmd_port=epmd.port, **tls) as node:
        if not await node.ping(b.name):
            raise SystemExit(f"the Python node cannot reach {b.name} ({tls or 'tcp'})")
        yield node


async def median(fn: Callable[..., Awaitable[Any]], runs: int, *args: Any) -> Any:
    values = [await fn(*args) for _ in range(runs)]
    if isinstance(values[0], tuple):
        return tuple(statistics.median(v[i] for v in values) for i in range(len(values[0])))
    return statistics.median(values)


def _ratio(x: float, ref: float) -> str:
    return f"{x / ref:.2f}x" if ref else "-"


async def run(args: argparse.Namespace) -> None:
    rt = runtime(args.runtime)
    scale = 0.1 if args.quick else 1.0
    calls = int(dist.CALLS * scale) if args.quick else dist.CALLS // 2
    with tempfile.TemporaryDirectory(prefix="bench_tls_") as tmpdir:
        tmp = Path(tmpdir)
        ebin = dist.compile_erlang(tmp)
        pki = make_pki(tmp / "pki", names=("node",))
        me = pki.nodes["node"]
        common: dict[str, object] = {"certfile": me.certfile, "keyfile": me.keyfile,
                                     "cacertfile": pki.cacertfile, "verify": ":verify_peer"}
        optfile = write_optfile(tmp / "ssl_dist.conf", {**common, "fail_if_no_peer_cert": True}, common)
        tls_args = [*ssl_code_path(rt.bin_dir), "-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)]
        with beam_world(rt, ebin, []) as (epmd_tcp, a_tcp, b_tcp), \
                beam_world(rt, ebin, tls_args) as (epmd_tls, a_tls, b_tls):
            tls_ctrl = b_tls.eval_term(
                f"is_pid(element(2, lists:keyfind({dist.q(a_tls.name)}, 1, erlang:system_info(dist_ctrl))))")
            if tls_ctrl is not True:
                raise SystemExit("the TLS world's BEAM nodes are not connected over TLS")
            async with python_node(epmd_tcp, b_tcp) as py_tcp, \
                    python_node(epmd_tls, b_tls, proto_dist="inet_tls", ssl_dist_optfile=optfile) as py_tls:
                tcp = dist.Bench(a_tcp, b_tcp, py_tcp, None, scale, None)
                tls = dist.Bench(a_tls, b_tls, py_tls, None, scale, None)
                print(f"runtime {rt.label}; TLS 1.2 mutual, P-256 certificates; counts "
                      + ", ".join(f"{k} {tcp.count(k)}" for k in dist.COUNTS)
                      + f"; {calls} calls; median of {args.runs} runs", flush=True)
                await table(tcp, tls, args.runs, calls)


async def table(tcp: Any, tls: Any, runs: int, calls: int) -> None:
    header = (f"{'workload':32} {'BEAM tcp':>9} {'BEAM tls':>9} {'tls/tcp':>8} "
              f"{'Py tcp':>9} {'Py tls':>9} {'tls/tcp':>8} {'Py/BEAM tls':>12}")
    print(header)
    print("-" * len(header))
    rate = dist._fmt_rate
    for kind, senders in WORKLOADS:
        for direction in ("->B", "<-B"):
            who = "X" if direction == "->B" else "B"
            label = f"{dist.KINDS[kind]}, {senders} sender{'s' if senders > 1 else ''} ({who} sends)"
            py_fn = "py_send" if direction == "->B" else "py_recv"
            beam_tcp = await median(tcp.beam_oneway, runs, kind, senders)
            beam_tls = await median(tls.beam_oneway, runs, kind, senders)
            py_tcp = await median(getattr(tcp, py_fn), runs, kind, senders)
            py_tls = await median(getattr(tls, py_fn), runs, kind, senders)
            print(f"{label:32} {rate(beam_tcp):>9} {rate(beam_tls):>9} {_ratio(beam_tls, beam_tcp):>8} "
                  f"{rate(py_tcp):>9} {rate(py_tls):>9} {_ratio(py_tls, py_tcp):>8} "
                  f"{_ratio(py_tls, beam_tls):>12}", flush=True)
    lat = [await median(fn, runs, calls) for fn in (tcp.beam_call, tls.beam_call, tcp.py_call, tls.py_call)]
    for i, what in enumerate(("gen:call p50 (X calls B)", "gen:call p99 (X calls B)")):
        bt, bs, pt, ps = (v[i] for v in lat)
        us = dist._fmt_us
        print(f"{what:32} {us(bt):>9} {us(bs):>9} {_ratio(bs, bt):>8} "
              f"{us(pt):>9} {us(ps):>9} {_ratio(ps, pt):>8} {_ratio(ps, bs):>12}")
    print("\nthroughput: messages/s at the receiver; tls/tcp below 1.00 = TLS is slower")
    print("latency: microseconds per round trip; tls/tcp above 1.00 = TLS is slower; "
          "Py/BEAM tls above 1.00 = Python slower")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the message counts")
    ap.add_argument("--runtime", default="otp25", choices=["otp25", "otp28"])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    args = ap.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
