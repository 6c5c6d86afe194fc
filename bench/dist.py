"""Benchmark the distribution hot path against BEAM <-> BEAM and JInterface, in one run.

    python bench/dist.py                      # full run, median of 3 runs per figure
    python bench/dist.py --quick              # a tenth of the message counts
    python bench/dist.py --runtime otp28      # BEAM nodes of OTP 28 (default otp25)
    python bench/dist.py --peers python       # only some peers (beam,python,java)
    python bench/dist.py --profile out.prof   # cProfile the Python node's event loop

Two BEAM nodes A and B are started on a private EPMD. Every workload has B on one
end; on the other end is, in turn, node A (the BEAM <-> BEAM reference), a
``bridge.Node`` in this process, and a JInterface node (bench/JNode.java,
compiled with javac into a temporary folder). The BEAM side of every workload is
the same compiled module, bench/bench_dist.erl, built with OTP 25's ``erlc`` (OTP
28 loads OTP 25 beams, and erl_eval funs would slow the BEAM side down). The BEAM
nodes run with ``+sbwt none``: on a small machine, schedulers spinning for work
would otherwise take the CPU the peer under test needs.

Workloads:

* one-way throughput, X -> B and B -> X: ``{seq, N}``, 1 KiB and 64 KiB binaries,
  sent by one and by eight processes (threads for JInterface) to one registered
  receiver, which counts messages per second from its first message to its last;
* ``gen:call`` round trip from X to an echo server on B (``gen:reply``), p50/p99;
* floors (``--section floors``, also part of the default ``all``): the raw TCP round
  trip of a 100-byte packet to an echo server on B (``gen_tcp``, ``nodelay``) from
  a blocking socket, an asyncio protocol and a uvloop protocol, beside the
  ``gen:call`` p50 of the Python node on asyncio and on uvloop (a fresh node per
  loop and run), BEAM <-> BEAM and JInterface, and one-way B -> X with 1 and 8
  senders on both loops. uvloop is ``pip install beam-bridge[fast]``; without it
  its columns are ``-``.

Every figure is the median of ``--runs`` runs; ratios are to BEAM <-> BEAM (for
latency, BEAM's time divided by the peer's, so above 1 is faster). Not collected
by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import glob
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bridge import Node  # noqa: E402
from dist_proto import Atom  # noqa: E402
from python_actors import GenServer, Reply  # noqa: E402
from python_actors import call as gen_call  # noqa: E402
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime  # noqa: E402

PY_NODE = "pybench@127.0.0.1"
JAVA_NODE = "jbench@127.0.0.1"
KINDS = {"small": "{seq, N}", "kb1": "1 KiB binary", "kb64": "64 KiB binary"}
COUNTS = {"small": 200_000, "kb1": 20_000, "kb64": 2_000}
CALLS = 5_000
SINK = Atom("bench_sink")
SERVER = Atom("bench_srv")
PING = Atom("ping")
_WRITE_HIGH = 4 * 1024 * 1024  # Python senders pause while more than this is unsent


def compile_erlang(tmp: Path) -> Path:
    erlc = shutil.which("erlc")
    if erlc is None:
        raise SystemExit("erlc (OTP 25) is needed to compile bench/bench_dist.erl")
    out = tmp / "ebin"
    out.mkdir()
    subprocess.run([erlc, "-o", str(out), str(REPO / "bench" / "bench_dist.erl")], check=True)
    return out


def compile_java(tmp: Path) -> tuple[list[str] | None, str]:
    """The java command line prefix, or None and the reason it cannot run."""
    jars = sorted(glob.glob("/usr/lib/erlang/lib/jinterface-*/priv/OtpErlang.jar"))
    if not jars:
        return None, "OtpErlang.jar not found (Debian package erlang-jinterface)"
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        return None, "javac/java not on PATH"
    out = tmp / "java"
    out.mkdir()
    res = subprocess.run(
        [javac, "-cp", jars[-1], "-d", str(out), str(REPO / "bench" / "JNode.java")],
        capture_output=True, text=True,
    )
    if res.returncode != 0:
        return None, f"javac failed: {res.stderr.strip()[:300]}"
    return [java, "-Xss1m", "-cp", f"{jars[-1]}:{out}", "JNode"], ""


class Java:
    """The JInterface node, driven line by line over stdin/stdout."""

    def __init__(self, argv: list[str], epmd_port: int, beam: str) -> None:
        self.proc = subprocess.Popen(
            [*argv, JAVA_NODE, TEST_COOKIE, str(epmd_port), beam],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        hello = self.line()
        if not hello.startswith("HELLO"):
            self.stop()
            raise RuntimeError(f"JInterface node did not start: {hello}")

    def line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def cmd(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def q(name: str) -> str:
    return "'" + name + "'"


class Bench:
    def __init__(self, a: BeamNode, b: BeamNode, node: Node | None, java: Java | None,
                 scale: float, profile: cProfile.Profile | None) -> None:
        self.a, self.b, self.node, self.java = a, b, node, java
        self.scale = scale
        self.profile = profile

    def count(self, kind: str) -> int:
        return max(int(COUNTS[kind] * self.scale) // 8 * 8, 16)

    # -- BEAM <-> BEAM ------------------------------------------------------------------

    async def beam_oneway(self, kind: str, senders: int) -> float:
        n = self.count(kind)
        await asyncio.to_thread(self.b.eval, f"bench_dist:start_sink(bench_sink, {n})")
        await asyncio.to_thread(
            self.a.eval, f"bench_dist:blast({{bench_sink, {q(self.b.name)}}}, {kind}, {n}, {senders})"
        )
        us = await asyncio.to_thread(self.b.eval_term, "bench_dist:wait_sink(bench_sink)")
        return (n - 1) / us * 1e6

    async def beam_call(self, n: int) -> tuple[float, float]:
        p50, p99 = await asyncio.to_thread(
            self.a.eval_term, f"bench_dist:call_latency({{bench_srv, {q(self.b.name)}}}, ping, {n})", 300
        )
        return p50 / 1000, p99 / 1000

    # -- Python -------------------------------------------------------------------------

    async def py_send(self, kind: str, senders: int) -> float:
        assert self.node is not None
        n = self.count(kind)
        node = self.node
        await asyncio.to_thread(self.b.eval, f"bench_dist:start_sink(bench_sink, {n})")
        dest = (SINK, Atom(self.b.name))
        peer = node._peers[Atom(self.b.name)]  # for back-pressure only
        blob = b"x" * (1024 if kind == "kb1" else 65536)
        seq = Atom("seq")
        done: list[asyncio.Future[None]] = []

        async def sender(proc: Any, count: int, fut: asyncio.Future[None]) -> None:
            send = proc.send
            try:
                for i in range(count, 0, -1):
                    send(dest, (seq, i) if kind == "small" else blob)
                    if i & 63 == 0:
                        await asyncio.sleep(0)
                        while peer.write_buffer_size() > _WRITE_HIGH:
                            await asyncio.sleep(0.0005)
            finally:
                fut.set_result(None)

        loop = asyncio.get_running_loop()
        self._prof(True)
        for _ in range(senders):
            fut = loop.create_future()
            done.append(fut)
            node.spawn(sender, n // senders, fut)
        await asyncio.gather(*done)
        self._prof(False)
        us = await asyncio.to_thread(self.b.eval_term, "bench_dist:wait_sink(bench_sink)")
        return (n - 1) / us * 1e6

    async def py_recv(self, kind: str, senders: int) -> float:
        assert self.node is not None
        n = self.count(kind)
        async with self.node.process("py_sink") as p:
            receive = p.receive
            self._prof(True)
            blast = asyncio.create_task(asyncio.to_thread(
                self.b.eval,
                f"bench_dist:blast({{py_sink, {q(self.node.name)}}}, {kind}, {n}, {senders})", 300,
            ))
            await receive()
            t0 = time.perf_counter()
            for _ in range(n - 1):
                await receive()
            t1 = time.perf_counter()
            self._prof(False)
            await blast
        return (n - 1) / (t1 - t0)

    async def py_call(self, n: int) -> tuple[float, float]:
        assert self.node is not None
        server = (SERVER, Atom(self.b.name))
        result: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()

        async def caller(proc: Any) -> None:
            for _ in range(n // 10 + 1):
                await gen_call(server, PING)
            ts = []
            clock = time.perf_counter_ns
            for _ in range(n):
                t0 = clock()
                await gen_call(server, PING)
                ts.append(clock() - t0)
            result.set_result(ts)

        self._prof(True)
        self.node.spawn(caller)
        ts = sorted(await result)
        self._prof(False)
        return _pct(ts, 50) / 1000, _pct(ts, 99) / 1000

    def _prof(self, on: bool) -> None:
        if self.profile is not None:
            self.profile.enable() if on else self.profile.disable()

    # -- JInterface -----------------------------------------------------------------------

    async def java_send(self, kind: str, senders: int) -> float:
        assert self.java is not None
        n = self.count(kind)
        await asyncio.to_thread(self.b.eval, f"bench_dist:start_sink(bench_sink, {n})")
        self.java.cmd(f"send {kind} {n} {senders}")
        line = await asyncio.to_thread(self.java.line)
        if line != "DONE":
            raise RuntimeError(f"JInterface: {line}")
        us = await asyncio.to_thread(self.b.eval_term, "bench_dist:wait_sink(bench_sink)")
        return (n - 1) / us * 1e6

    async def java_recv(self, kind: str, senders: int) -> float:
        assert self.java is not None
        n = self.count(kind)
        self.java.cmd(f"sink {n}")
        if (line := await asyncio.to_thread(self.java.line)) != "READY":
            raise RuntimeError(f"JInterface: {line}")
        await asyncio.to_thread(
            self.b.eval, f"bench_dist:blast({{jsink, {q(JAVA_NODE)}}}, {kind}, {n}, {senders})", 300
        )
        line = await asyncio.to_thread(self.java.line)
        return (n - 1) / int(line.split()[1]) * 1e6

    async def java_call(self, n: int) -> tuple[float, float]:
        assert self.java is not None
        self.java.cmd(f"call {n}")
        line = await asyncio.to_thread(self.java.line)
        _, p50, p99 = line.split()
        return int(p50) / 1000, int(p99) / 1000


def _pct(sorted_values: list[int], p: int) -> int:
    return sorted_values[max(0, (len(sorted_values) * p + 99) // 100 - 1)]


def _fmt_rate(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:,.1f}k" if x < 1e6 else f"{x / 1e6:,.2f}M"


def _fmt_ratio(x: float | None, ref: float | None) -> str:
    if x is None or not ref:
        return "-"
    return f"{x / ref:.2f}x"


def run(args: argparse.Namespace) -> None:
    rt = runtime(args.runtime)
    peers = set(args.peers.split(","))
    scale = 0.1 if args.quick else 1.0
    calls = int(CALLS * scale) if args.quick else CALLS
    with tempfile.TemporaryDirectory(prefix="bench_dist_") as tmpdir:
        tmp = Path(tmpdir)
        ebin = compile_erlang(tmp)
        java_argv, java_why = (None, "not asked for")
        if "java" in peers:
            java_argv, java_why = compile_java(tmp)
        extra = ["-pa", str(ebin), "+sbwt", "none"]
        with Epmd(rt) as epmd, \
                BeamNode(rt, epmd_port=epmd.port, prefix="benchA", extra_args=extra) as a, \
                BeamNode(rt, epmd_port=epmd.port, prefix="benchB", extra_args=extra) as b:
            print(f"runtime {rt.label}; B = {b.name}; message counts "
                  + ", ".join(f"{k} {max(int(COUNTS[k] * scale) // 8 * 8, 16)}" for k in COUNTS)
                  + f"; {calls} calls; median of {args.runs} runs", flush=True)
            b.eval("bench_dist:start_server(bench_srv)")
            a.check(f"net_adm:ping({q(b.name)}) =:= pong")
            java = None
            if java_argv is not None:
                try:
                    java = Java(java_argv, epmd.port, b.name)
                except RuntimeError as exc:
                    java_why = str(exc)
            if java is None:
                print(f"JInterface skipped: {java_why}")
            try:
                if args.section in ("all", "table"):
                    asyncio.run(_table_section(args, a, b, java, epmd.port, scale, peers, calls))
                if args.section in ("all", "floors"):
                    echo_port = int(b.eval_term(_load_echo(b, tmp)))
                    floors(args, a, b, java, epmd.port, scale, calls, echo_port)
            finally:
                if java is not None:
                    java.stop()


async def _table_section(args: argparse.Namespace, a: BeamNode, b: BeamNode, java: Java | None,
                         epmd_port: int, scale: float, peers: set[str], calls: int) -> None:
    node = None
    if "python" in peers:
        node = Node(PY_NODE, cookie=TEST_COOKIE, epmd_port=epmd_port)
        await node.start()
        if not await node.ping(b.name):
            raise SystemExit("the Python node cannot reach B")
    profile = cProfile.Profile() if args.profile else None
    bench = Bench(a, b, node, java, scale, profile)
    try:
        await _table(bench, peers, args.runs, calls)
    finally:
        if node is not None:
            await node.stop()
    if profile is not None:
        profile.dump_stats(args.profile)
        print(f"profile of the Python node written to {args.profile}")


async def _table(bench: Bench, peers: set[str], runs: int, calls: int) -> None:
    use_beam = "beam" in peers
    use_py = "python" in peers and bench.node is not None
    use_java = "java" in peers and bench.java is not None
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    header = f"{'workload':34} {'BEAM<->BEAM':>12} {'Python':>10} {'ratio':>7} {'JInterface':>11} {'ratio':>7}"
    print(header)
    print("-" * len(header))

    async def median(fn: Any, *a: Any) -> float:
        vals = [await fn(*a) for _ in range(runs)]
        return statistics.median(vals)

    for kind in KINDS:
        for senders in (1, 8):
            for direction in ("->B", "<-B"):
                who = "X" if direction == "->B" else "B"
                label = f"{KINDS[kind]}, {senders} sender{'s' if senders > 1 else ''} ({who} sends)"
                ref = await median(bench.beam_oneway, kind, senders) if use_beam else None
                py = jv = None
                if use_py:
                    py = await median(bench.py_send if direction == "->B" else bench.py_recv, kind, senders)
                if use_java:
                    jv = await median(bench.java_send if direction == "->B" else bench.java_recv, kind, senders)
                rows.append((label, ref, py, jv))
                print(f"{label:34} {_fmt_rate(ref):>12} {_fmt_rate(py):>10} {_fmt_ratio(py, ref):>7} "
                      f"{_fmt_rate(jv):>11} {_fmt_ratio(jv, ref):>7}", flush=True)

    async def lat(fn: Any) -> tuple[float, float]:
        vals = [await fn(calls) for _ in range(runs)]
        return statistics.median(v[0] for v in vals), statistics.median(v[1] for v in vals)

    ref_l = await lat(bench.beam_call) if use_beam else None
    py_l = await lat(bench.py_call) if use_py else None
    jv_l = await lat(bench.java_call) if use_java else None
    for i, what in enumerate(("gen:call p50 (X calls B)", "gen:call p99 (X calls B)")):
        r = ref_l[i] if ref_l else None
        p = py_l[i] if py_l else None
        j = jv_l[i] if jv_l else None
        print(f"{what:34} {_fmt_us(r):>12} {_fmt_us(p):>10} {_fmt_ratio(r, p):>7} "
              f"{_fmt_us(j):>11} {_fmt_ratio(r, j):>7}")
    print("\nthroughput: messages/s at the receiver; ratio = peer / BEAM<->BEAM (target >= 0.30)")
    print("latency: microseconds per round trip; ratio = BEAM<->BEAM / peer (target >= 1.00 at p50)")


# -- floors: the raw socket round trip beside the call path --------------------------------

ECHO_SRC = r"""
-module(bench_echo).
-export([start/0]).
%% A TCP echo on 127.0.0.1 (any port): one process per connection, nodelay.
start() ->
    Parent = self(),
    spawn(fun() ->
        {ok, L} = gen_tcp:listen(0, [binary, {packet, 0}, {active, false}, {reuseaddr, true},
                                     {nodelay, true}, {ip, {127, 0, 0, 1}}]),
        {ok, Port} = inet:port(L),
        Parent ! {echo_port, Port},
        accept(L)
    end),
    receive {echo_port, P} -> P end.
accept(L) ->
    {ok, S} = gen_tcp:accept(L),
    Pid = spawn(fun() -> receive go -> echo(S) end end),
    ok = gen_tcp:controlling_process(S, Pid),
    Pid ! go,
    accept(L).
echo(S) ->
    case gen_tcp:recv(S, 0) of
        {ok, Data} -> ok = gen_tcp:send(S, Data), echo(S);
        {error, _} -> gen_tcp:close(S)
    end.
"""


def _load_echo(b: BeamNode, tmp: Path) -> str:
    """Compile bench_echo into the ebin on B's code path; the expression that starts it."""
    src = tmp / "bench_echo.erl"
    src.write_text(ECHO_SRC)
    subprocess.run([shutil.which("erlc") or "erlc", "-o", str(tmp / "ebin"), str(src)], check=True)
    return "bench_echo:start()"


def tcp_blocking(port: int, n: int, size: int) -> float:
    """p50 µs of a ``size``-byte round trip to the echo, from a blocking socket."""
    data = b"x" * size
    clock = time.perf_counter_ns
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ts = []
        for i in range(n + n // 10):
            t0 = clock()
            s.sendall(data)
            got = 0
            while got < size:
                got += len(s.recv(65536))
            if i >= n // 10:
                ts.append(clock() - t0)
    ts.sort()
    return _pct(ts, 50) / 1000


class _EchoClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.want = 0
        self.waiter: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        self.want -= len(data)
        if self.want <= 0 and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


async def tcp_loop(port: int, n: int, size: int) -> float:
    """p50 µs of the round trip from a protocol on the running loop (the floor of
    anything built on that loop: one write, one wake-up per reply)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_EchoClient, "127.0.0.1", port)
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    data = b"x" * size
    clock = time.perf_counter_ns
    ts = []
    try:
        for i in range(n + n // 10):
            proto.want = size
            proto.waiter = loop.create_future()
            t0 = clock()
            transport.write(data)
            await proto.waiter
            if i >= n // 10:
                ts.append(clock() - t0)
    finally:
        transport.close()
    ts.sort()
    return _pct(ts, 50) / 1000


def _loops() -> dict[str, Any]:
    factories: dict[str, Any] = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


async def _python_on_loop(a: BeamNode, b: BeamNode, epmd_port: int, scale: float, calls: int,
                          echo_port: int, size: int, loop_name: str) -> dict[str, float]:
    """One run of the Python figures on the running loop, with a fresh node."""
    out = {"tcp": await tcp_loop(echo_port, calls, size)}
    node = Node(f"pybench_{loop_name}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd_port)
    await node.start()
    try:
        if not await node.ping(b.name):
            raise SystemExit("the Python node cannot reach B")
        bench = Bench(a, b, node, None, scale, None)
        out["call"] = (await bench.py_call(calls))[0]
        for placement in ("auto", "loop"):  # B calls a Python GenServer
            name = f"py_echo_{placement}"
            await _echo_class(placement).start(runtime=node.runtime, name=name)
            expr = f"bench_dist:call_latency({{{name}, {q(node.name)}}}, ping, {calls})"
            out[f"served_{placement}"] = (await asyncio.to_thread(b.eval_term, expr, 300))[0] / 1000
        out["recv1"] = await bench.py_recv("small", 1)
        out["recv8"] = await bench.py_recv("small", 8)
    finally:
        await node.stop()
    return out


def _echo_class(placement: str) -> type:
    """A Python gen_server answering every call with its request (bench_dist's server)."""

    class Echo(GenServer):
        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            return Reply(request, state)

    Echo.placement = placement
    return Echo


def floors(args: argparse.Namespace, a: BeamNode, b: BeamNode, java: Java | None, epmd_port: int,
           scale: float, calls: int, echo_port: int) -> None:
    """The call path beside its floors, every figure from this run, medians of runs."""
    size = args.echo_size
    loops = _loops()
    ref = Bench(a, b, None, java, scale, None)
    a.eval("bench_dist:start_server(bench_srv_a)")
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    for _ in range(args.runs):  # interleaved, so drift in the machine's load hits all alike
        add("tcp_blocking", tcp_blocking(echo_port, calls, size))
        for name, factory in loops.items():
            with asyncio.Runner(loop_factory=factory) as runner:
                res = runner.run(_python_on_loop(a, b, epmd_port, scale, calls, echo_port, size, name))
            for k, v in res.items():
                add(f"{k}_{name}", v)
        with asyncio.Runner() as runner:
            add("call_beam", runner.run(ref.beam_call(calls))[0])
            add("served_beam", b.eval_term(
                f"bench_dist:call_latency({{bench_srv_a, {q(a.name)}}}, ping, {calls})", 300)[0] / 1000)
            add("recv1_beam", runner.run(ref.beam_oneway("small", 1)))
            add("recv8_beam", runner.run(ref.beam_oneway("small", 8)))
            if java is not None:
                add("call_java", runner.run(ref.java_call(calls))[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    m = med.get
    print(f"\nfloors (p50 µs per round trip, medians of {args.runs} runs, {calls} round trips each; "
          f"loops: {', '.join(loops)})")
    print(f"raw TCP, {size} B to a BEAM echo:  blocking {_fmt_us(m('tcp_blocking'))}  "
          f"asyncio {_fmt_us(m('tcp_asyncio'))}  uvloop {_fmt_us(m('tcp_uvloop'))}")
    beam = m("call_beam")
    print(f"{'gen:call p50, X calls B':34} {'p50':>10} {'BEAM/X':>8} {'X/raw TCP same loop':>20}")
    for label, key, floor in (
        ("BEAM <-> BEAM", "call_beam", None),
        ("Python, asyncio", "call_asyncio", "tcp_asyncio"),
        ("Python, uvloop", "call_uvloop", "tcp_uvloop"),
        ("JInterface", "call_java", "tcp_blocking"),
    ):
        v = m(key)
        fl = m(floor) if floor else None
        print(f"{label:34} {_fmt_us(v):>10} {_fmt_ratio(beam, v):>8} {_fmt_ratio(v, fl):>20}")
    served = m("served_beam")
    print(f"{'gen:call p50, B calls X':34} {'p50':>10} {'BEAM/X':>8}")
    for label, key in (("BEAM <-> BEAM", "served_beam"),
                       ("Python GenServer auto, asyncio", "served_auto_asyncio"),
                       ("Python GenServer loop, asyncio", "served_loop_asyncio"),
                       ("Python GenServer auto, uvloop", "served_auto_uvloop"),
                       ("Python GenServer loop, uvloop", "served_loop_uvloop")):
        v = m(key)
        print(f"{label:34} {_fmt_us(v):>10} {_fmt_ratio(served, v):>8}")
    print(f"{'one-way B -> X, {seq, N}':34} {'1 sender':>10} {'ratio':>8} {'8 senders':>10} {'ratio':>8}")
    r1, r8 = m("recv1_beam"), m("recv8_beam")
    for label, suffix in (("BEAM <-> BEAM", "beam"), ("Python, asyncio", "asyncio"),
                          ("Python, uvloop", "uvloop")):
        v1, v8 = m(f"recv1_{suffix}"), m(f"recv8_{suffix}")
        print(f"{label:34} {_fmt_rate(v1):>10} {_fmt_ratio(v1, r1):>8} {_fmt_rate(v8):>10} "
              f"{_fmt_ratio(v8, r8):>8}")
    print("ratios: latency BEAM/X (1.00 = as fast as BEAM <-> BEAM; targets: asyncio >= 0.75, "
          "uvloop >= 1.00); one-way X/BEAM (target >= 0.70); X/raw TCP = times the wire's cost")


def _fmt_us(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}us"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tenth of the message counts")
    ap.add_argument("--runtime", default="otp25", choices=["otp25", "otp28"])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--peers", default="beam,python,java", help="comma-separated: beam,python,java")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the Python workloads into FILE")
    ap.add_argument("--section", default="all", choices=["all", "table", "floors"],
                    help="the throughput/latency table, the floors beside the call path, or both")
    ap.add_argument("--echo-size", type=int, default=100, help="bytes per raw TCP round trip")
    args = ap.parse_args()
    run(args)


if __name__ == "__main__":
    main()
