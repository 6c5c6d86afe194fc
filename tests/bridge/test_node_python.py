"""Two Python nodes talking to each other (no BEAM): connect, ping, send, call, links,
nodedown, EPMD-less mode, simultaneous connects, restarts and errors.

Every node registers with an embedded EPMD on a free port (or none: EPMD-less).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge import EpmdUnavailable, HandshakeFailed, NameTaken, Node, NodeNotRunning, RpcError
from bridge.epmd_client import port_please
from bridge.epmd_server import EpmdServer
from dist_proto.terms import Atom
from python_actors import CallError, GenServer, NoReply, Ok, Process, Reply
from tests.beam import free_port, unique_name

COOKIE = "python_only_cookie"


@pytest.fixture
async def epmd_server() -> AsyncIterator[EpmdServer]:
    async with EpmdServer("127.0.0.1", 0) as server:
        yield server


def _name(prefix: str = "pp") -> str:
    return f"{unique_name(prefix)}@127.0.0.1"


def _node(epmd_server: EpmdServer, prefix: str = "pp", **kw: Any) -> Node:
    kw.setdefault("cookie", COOKIE)
    return Node(_name(prefix), epmd_port=epmd_server.port, **kw)


async def _eventually(cond: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


class Counter(GenServer):
    def init(self, n: int) -> Ok:
        return Ok(n)

    def handle_call(self, request: Any, from_: Any, n: int) -> Any:
        if request == Atom("get"):
            return Reply(n, n)
        if request == Atom("stop_now"):
            raise RuntimeError("asked to crash")
        if request == Atom("never"):
            return NoReply(n)
        return Reply(Atom("unknown"), n)

    def handle_cast(self, request: Any, n: int) -> Any:
        return NoReply(n + request)


async def test_ping_send_call_between_python_nodes(epmd_server: EpmdServer) -> None:
    async with _node(epmd_server) as a, _node(epmd_server) as b:
        assert await a.ping(b.name)
        assert a.nodes() == [b.name]
        await _eventually(lambda: b.nodes() == [a.name])
        assert await b.ping(a.name)
        # GenServer on b, called from a by name and by pid.
        pid = await Counter.start(5, name="counter", runtime=b.runtime)
        assert await a.call(("counter", b.name), Atom("get")) == 5
        await a.cast(("counter", b.name), 10)
        assert await a.call(pid, Atom("get")) == 15
        with pytest.raises(CallError) as info:
            await a.call(("nobody", b.name), Atom("get"))
        assert info.value.why == Atom("noproc")
        with pytest.raises(CallError) as info:
            await a.call(("counter", b.name), Atom("never"), timeout=0.2)
        assert info.value.why == Atom("timeout")
        with pytest.raises(CallError) as info:
            await a.call(("counter", b.name), Atom("stop_now"))
        assert info.value.why[0] == Atom("python_exception")
        # send/receive: names and pids both ways.
        async with a.process("inbox_a") as pa, b.process("inbox_b") as pb:
            await a.send(("inbox_b", b.name), (Atom("hi"), pa.pid))
            msg = await pb.receive(timeout=5)
            assert msg == (Atom("hi"), pa.pid)
            pb.send(msg[1], (Atom("back"), pb.pid, b"bytes", 1.5, [1, [2]], {Atom("k"): 1}))
            assert await pa.receive(timeout=5) == (Atom("back"), pb.pid, b"bytes", 1.5, [1, [2]], {Atom("k"): 1})
            for i in range(2000):
                pa.send(pb.pid, i)
            got = [await pb.receive(timeout=5) for _ in range(2000)]
            assert got == list(range(2000))


async def test_rpc_between_python_nodes(epmd_server: EpmdServer) -> None:
    async with _node(epmd_server) as a, _node(epmd_server) as b:
        b.allow_rpc("m", "add", lambda x, y: x + y)
        assert await a.rpc(b.name, "m", "add", [2, 3]) == 5
        with pytest.raises(RpcError) as info:
            await a.rpc(b.name, "m", "sub", [2, 3])
        assert info.value.reason[0] == Atom("EXIT")
        assert info.value.reason[1][0] == Atom("undef")


async def test_links_and_monitors_fire_on_nodedown(epmd_server: EpmdServer) -> None:
    async with _node(epmd_server) as a, a.process() as me:
        b = _node(epmd_server)
        await b.start()
        try:
            async with b.process("target") as target:
                ref = me.monitor(target.pid)
                name_ref = me.monitor((Atom("target"), Atom(b.name)))
                me.trap_exit = True
                me.link(target.pid)
                await asyncio.sleep(0.05)
                assert b.disconnect(a.name)  # the connection drops under live processes
                downs = [await me.receive(lambda m: m[0] == Atom("DOWN"), timeout=5) for _ in range(2)]
                by_ref = {d[1]: d for d in downs}
                assert by_ref[ref][3:] == (target.pid, Atom("noconnection"))
                assert by_ref[name_ref][3:] == ((Atom("target"), Atom(b.name)), Atom("noconnection"))
                exit_msg = await me.receive(lambda m: m[0] == Atom("EXIT"), timeout=5)
                assert exit_msg[1:] == (target.pid, Atom("noconnection"))
                assert a.nodes() == []
        finally:
            await b.stop()


async def test_process_exit_reaches_remote_monitor(epmd_server: EpmdServer) -> None:
    async with _node(epmd_server) as a, _node(epmd_server) as b, a.process() as me:
        done = asyncio.Event()

        async def short(proc: Process) -> None:
            await done.wait()
            raise ValueError("bye")

        pid = b.spawn(short)
        ref = me.monitor(pid)
        await asyncio.sleep(0.05)
        done.set()
        down = await me.receive(timeout=5)
        assert down[:4] == (Atom("DOWN"), ref, Atom("process"), pid)
        assert down[4][:3] == (Atom("python_exception"), b"ValueError", b"bye")
        assert a.nodes() == [b.name]  # a process exit is not a nodedown


async def test_epmdless_python_nodes() -> None:
    pa, pb = free_port(), free_port()
    na, nb = _name("nea"), _name("neb")
    async with (
        Node(na, cookie=COOKIE, use_epmd=False, listen_port=pa, ports={nb: pb}) as a,
        Node(nb, cookie=COOKIE, use_epmd=False, listen_port=pb, ports={na: pa}) as b,
    ):
        assert a.port == pa and b.port == pb
        assert a.creation >= 4 and b.creation >= 4
        assert await a.ping(nb)
        assert a.disconnect(nb)
        await _eventually(lambda: b.nodes() == [])
        assert await b.ping(na)
        assert await a.ping("elsewhere@127.0.0.1") is False


@pytest.mark.parametrize("delay_ms", [0, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0])
async def test_simultaneous_connect_python_nodes(epmd_server: EpmdServer, delay_ms: float) -> None:
    """Both dial at (nearly) the same instant, the smaller or the greater name first:
    both succeed, one connection remains and no nodedown is seen (no flapping)."""

    async def later(x: Node, y: Node) -> bool:
        await asyncio.sleep(delay_ms / 1000)
        return await x.connect(y.name)

    for i in range(4):
        async with _node(epmd_server) as a, _node(epmd_server) as b:
            events: list[tuple[str, Atom, bool]] = []
            a.monitor_nodes(lambda n, up, _r, sink=events: sink.append(("a", n, up)))
            b.monitor_nodes(lambda n, up, _r, sink=events: sink.append(("b", n, up)))
            first, second = (a, b) if i % 2 else (b, a)
            assert await asyncio.gather(first.connect(second.name), later(second, first)) == [True, True]
            await asyncio.sleep(0.1)
            assert a.nodes() == [b.name]
            assert b.nodes() == [a.name]
            pa, pb = a._peers[Atom(b.name)], b._peers[Atom(a.name)]
            # The two ends of the same socket.
            assert pa.transport.get_extra_info("sockname") == pb.transport.get_extra_info("peername")
            assert [e for e in events if not e[2]] == [], events
            assert await a.ping(b.name) and await b.ping(a.name)
            async with a.process() as me:
                b.allow_rpc("m", "f", lambda: 1)
                assert await a.rpc(b.name, "m", "f", []) == 1
                assert me.pid.node == a.atom


async def test_restarted_python_node_replaces_stale_connection(epmd_server: EpmdServer) -> None:
    """A peer comes back under the same name while we hold its old connection: the
    acceptor answers ``alive``, the new incarnation answers true, the old one goes."""
    async with _node(epmd_server) as a:
        name = _name("rs")
        old = Node(name, cookie=COOKIE, use_epmd=False, ports={a.name: a.port})
        await old.start()
        try:
            assert await old.ping(a.name)
            downs: list[Any] = []
            a.monitor_nodes(lambda n, up, _r: downs.append(up))
            async with Node(name, cookie=COOKIE, use_epmd=False, ports={a.name: a.port}) as new:
                assert await new.ping(a.name)
                await old.wait_nodedown(a.name, timeout=5)
                assert a.nodes() == [name]
                assert a._peers[Atom(name)].creation == new.creation
                assert downs[:2] == [False, True]
        finally:
            await old.stop()


async def test_wrong_cookie_between_python_nodes(epmd_server: EpmdServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    async with _node(epmd_server) as a, _node(epmd_server, cookie="other") as b:
        assert await a.ping(b.name) is False
        assert await b.ping(a.name) is False
        assert a.nodes() == [] and b.nodes() == []
        with pytest.raises(RpcError) as info:
            await a.rpc(b.name, "m", "f", [])
        assert isinstance(info.value.__cause__, HandshakeFailed)
        assert info.value.__cause__.node == b.name
        refused = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any(a.name in m for m in refused) and any(b.name in m for m in refused)


async def test_name_taken_python(epmd_server: EpmdServer) -> None:
    name = _name("dup")
    async with Node(name, cookie=COOKIE, epmd_port=epmd_server.port) as first:
        second = Node(name, cookie=COOKIE, epmd_port=epmd_server.port)
        with pytest.raises(NameTaken):
            await second.start()
        assert not second.running
        assert first.running
        async with _node(epmd_server) as other:
            assert await other.ping(name)


async def test_not_running_errors() -> None:
    node = Node(_name("nr"), cookie=COOKIE, use_epmd=False)
    with pytest.raises(NodeNotRunning):
        _ = node.runtime
    with pytest.raises(NodeNotRunning):
        await node.serve_forever()
    await node.start()
    await node.stop()
    assert not node.running


async def test_idle_connection_survives_ticks(epmd_server: EpmdServer) -> None:
    async with _node(epmd_server, net_ticktime=0.4) as a, _node(epmd_server, net_ticktime=0.4) as b:
        assert await a.ping(b.name)
        await asyncio.sleep(1.5)  # > 3 tick times with nothing but ticks
        assert a.nodes() == [b.name] and b.nodes() == [a.name]


async def test_stop_ends_everything(epmd_server: EpmdServer) -> None:
    terminated: list[Any] = []

    class T(GenServer):
        def init(self, _: Any) -> Ok:
            self.process.trap_exit = True
            return Ok(None)

        def terminate(self, reason: Any, state: Any) -> None:
            terminated.append(reason)

    a = _node(epmd_server)
    async with _node(epmd_server) as b:
        await a.start()
        await T.start(None, runtime=a.runtime)
        assert await a.ping(b.name)
        await a.stop()
        assert terminated == [Atom("shutdown")]
        await _eventually(lambda: b.nodes() == [])
        assert [t for t in a._tasks if not t.done()] == []
        assert await b.ping(a.name) is False


async def test_no_epmd_running() -> None:
    """No EPMD and no embedded one: start fails cleanly; with ``embedded_epmd`` the
    node serves EPMD to others and stops it with itself."""
    port = free_port()
    node = Node(_name("noepmd"), cookie=COOKIE, epmd_port=port)
    with pytest.raises(EpmdUnavailable):
        await node.start()
    assert not node.running
    async with Node(_name("noepmd"), cookie=COOKIE, epmd_port=port, embedded_epmd=True) as a:
        async with Node(_name("noepmd"), cookie=COOKIE, epmd_port=port) as b:
            assert await b.ping(a.name)
    # The embedded EPMD stopped with its node.
    with pytest.raises(EpmdUnavailable):
        await port_please("anyone", "127.0.0.1", epmd_port=port)
