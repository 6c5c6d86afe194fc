"""Failures around a Python node and real BEAM nodes, on every required OTP major.

A BEAM killed with SIGKILL (nodedown at once, links and monitors fire
``noconnection``) or frozen with SIGSTOP (nodedown from the tick timer within a few
``net_ticktime``); wrong cookies both ways (nothing accepted, the failure names the
peer); our embedded EPMD serving a BEAM when no other EPMD runs; EPMD-less
distribution with a BEAM started ``-erl_epmd_port``; a taken name; an unknown node;
junk, half handshakes and stalled sockets on the listen port (the node and its other
connections stay healthy); a Python node restarted under the same name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge import HandshakeFailed, NameTaken, Node, RpcError, UnknownNode
from bridge.epmd_client import port_please
from dist_proto.terms import Atom, Pid
from python_actors import Process
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, free_port
from tests.interop.node_support import (
    check,
    ev,
    eventually,
    py_name,
    py_node,
    q,
    start_beam,
    stop_beam,
)

pytestmark = pytest.mark.interop


@pytest.fixture
async def own_beam(runtime: Runtime, epmd: Epmd) -> AsyncIterator[BeamNode]:
    """A BEAM node for one test (it may be killed)."""
    beam = await start_beam(runtime, epmd.port, prefix="f")
    try:
        yield beam
    finally:
        await stop_beam(beam)


def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


# -- a peer that dies ----------------------------------------------------------------


async def test_kill_9_is_nodedown_with_noconnection(own_beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node, node.process() as me:
        beam_pid = await ev(own_beam, "spawn(fun() -> receive stop -> ok end end)")
        assert type(beam_pid) is Pid
        assert await node.ping(own_beam.name)
        ref = me.monitor(beam_pid)

        async def linked(proc: Process) -> None:
            proc.trap_exit = True
            proc.link(beam_pid)
            msg = await proc.receive(timeout=10)
            await node.send(me.pid, ("linked", msg))

        node.spawn(linked)
        await asyncio.sleep(0.1)  # let the LINK go out
        downs: list[Any] = []
        node.monitor_nodes(lambda n, up, why: downs.append((n, up)))
        own_beam.kill()
        await node.wait_nodedown(own_beam.name, timeout=5)
        down = await me.receive(lambda m: m[0] == Atom("DOWN"), timeout=5)
        assert down == (Atom("DOWN"), ref, Atom("process"), beam_pid, Atom("noconnection"))
        linked_msg = await me.receive(lambda m: m[0] == "linked", timeout=5)
        assert linked_msg[1] == (Atom("EXIT"), beam_pid, Atom("noconnection"))
        assert (Atom(own_beam.name), False) in downs
        assert own_beam.name not in node.nodes()
        assert await node.ping(own_beam.name) is False


async def test_silent_peer_dropped_by_tick_timer(runtime: Runtime, epmd: Epmd) -> None:
    ticktime = 2.0
    beam = await start_beam(runtime, epmd.port, prefix="stop",
                            extra_args=["-kernel", "net_ticktime", str(int(ticktime))])
    stopped = False
    try:
        async with py_node(epmd.port, net_ticktime=ticktime) as node:
            assert await node.ping(beam.name)
            # A healthy but idle link survives well past the tick time (ticks both ways).
            await asyncio.sleep(ticktime * 1.75)
            assert node.is_connected(beam.name)
            await check(beam, f"lists:member({q(node.name)}, nodes(hidden))")
            beam_pid = await ev(beam, "self()")
            peer = node._peers[Atom(beam.name)]
            os.kill(beam.pid, signal.SIGSTOP)
            stopped = True
            started = time.monotonic()

            async def flood() -> None:
                # Fill the socket buffers towards the frozen peer: the sender is
                # suspended on the busy connection until the tick timer drops it.
                for _ in range(16):
                    await node.send(beam_pid, bytes(1024 * 1024))

            sender = asyncio.create_task(flood())
            try:
                reason = await node.wait_nodedown(beam.name, timeout=3 * ticktime)
                elapsed = time.monotonic() - started
                assert reason == Atom("net_tick_timeout")
                assert elapsed < 3 * ticktime
                assert not node.is_connected(beam.name)
                await asyncio.wait_for(sender, 30)  # resumed: its messages were dropped
            finally:
                sender.cancel()
            # The socket is released at once, not after the frozen peer drains it.
            await asyncio.wait_for(peer.protocol.lost, 2)
    finally:
        if stopped:
            os.kill(beam.pid, signal.SIGCONT)
        await stop_beam(beam)


async def test_python_answers_ticks_of_a_short_ticktime_beam(runtime: Runtime, epmd: Epmd) -> None:
    """A BEAM with net_ticktime 2 talking to a Python node with the default 60 s: the
    BEAM ticks every 0.5 s and drops a silent peer after ~2 s; Python answering each
    tick keeps the idle link up."""
    beam = await start_beam(runtime, epmd.port, prefix="tick",
                            extra_args=["-kernel", "net_ticktime", "2"])
    try:
        async with py_node(epmd.port) as node:
            assert node.net_ticktime == 60
            assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pong")
            await asyncio.sleep(3.5)
            assert node.is_connected(beam.name)
            await check(beam, f"lists:member({q(node.name)}, nodes(hidden))")
    finally:
        await stop_beam(beam)


# -- cookies ---------------------------------------------------------------------------


async def test_python_dials_with_wrong_cookie(beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    async with py_node(epmd.port, cookie="not_the_cookie") as node:
        assert await node.ping(beam.name) is False
        assert await node.connect(beam.name) is False
        assert node.nodes() == []
        with pytest.raises(RpcError) as info:
            await node.rpc(beam.name, "erlang", "node", [])
        assert info.value.reason == Atom("nodedown")
        cause = info.value.__cause__
        assert isinstance(cause, HandshakeFailed)
        assert cause.node == beam.name
        assert beam.name in str(cause)
        assert any(beam.name in r.getMessage() for r in caplog.records)
    await check(beam, f"not lists:member({q(node.name)}, nodes(connected))")


async def test_beam_dials_with_wrong_cookie(beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge")
    async with py_node(epmd.port, cookie="not_the_cookie") as node:
        assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pang")
        assert node.nodes() == []
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and beam.name in r.getMessage()]
        assert warnings, [r.getMessage() for r in caplog.records]
        await check(beam, f"not lists:member({q(node.name)}, nodes(connected))")
    _no_errors_logged(caplog)


# -- EPMD ----------------------------------------------------------------------------


async def test_embedded_epmd_serves_beam(runtime: Runtime) -> None:
    port = free_port()
    async with Node(py_name("emb"), cookie=TEST_COOKIE, epmd_port=port, embedded_epmd=True) as node:
        assert node._epmd_server is not None  # nothing listened there: we serve EPMD
        beam = await start_beam(runtime, port, prefix="emb")
        try:
            assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pong")
            assert await ev(beam, "erl_epmd:names()") != []
            assert await node.ping(beam.name)
            assert await node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)
        finally:
            await stop_beam(beam)


async def test_name_taken(beam: BeamNode, epmd: Epmd) -> None:
    taken = Node(beam.name, cookie=TEST_COOKIE, epmd_port=epmd.port)
    with pytest.raises(NameTaken):
        await taken.start()
    assert not taken.running
    # The refused node left nothing behind: the BEAM is still registered and reachable.
    async with py_node(epmd.port) as node:
        assert await node.ping(beam.name)


async def test_unknown_node(epmd: Epmd) -> None:
    async with py_node(epmd.port) as node, node.process() as me:
        missing = "nobody_here@127.0.0.1"
        assert await node.ping(missing) is False
        assert await node.connect(missing) is False
        with pytest.raises(RpcError) as info:
            await node.rpc(missing, "erlang", "node", [])
        assert isinstance(info.value.__cause__, UnknownNode)
        # A monitor on a process of a node that cannot be reached fires noconnection.
        ref = me.monitor((Atom("someone"), Atom(missing)))
        down = await me.receive(timeout=10)
        assert down[:2] == (Atom("DOWN"), ref)
        assert down[4] == Atom("noconnection")
        # A send to it is dropped silently.
        await node.send(("someone", missing), Atom("lost"))
        assert node.nodes() == []


async def test_epmdless_beam_with_erl_epmd_port(runtime: Runtime, epmd: Epmd) -> None:
    """docs/protocol.md §1.3: a BEAM started ``-erl_epmd_port P`` listens on P and dials
    every node on P. The Python node listens on P too, on another loopback address."""
    port = free_port()
    beam = await start_beam(runtime, epmd.port, prefix="nep",
                            extra_args=["-erl_epmd_port", str(port)])
    try:
        async with Node(
            py_name("nep", host="127.0.0.2"),
            cookie=TEST_COOKIE,
            use_epmd=False,
            listen_port=port,
            ports={beam.name: port},
        ) as node:
            assert node.port == port
            # BEAM dials us: it asks nobody, it uses its own port P.
            assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pong")
            assert await node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)
            assert node.disconnect(beam.name)
            await eventually(lambda: not node.is_connected(beam.name))
            # We dial it: EPMD-less, the port comes from ``ports``.
            assert await node.ping(beam.name)
            assert await node.connect("other@127.0.0.1") is False  # no port known
    finally:
        await stop_beam(beam)


# -- junk on the listen port -----------------------------------------------------------


async def _raw(port: int, data: bytes, *, half_close: bool = False, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` on a fresh connection, then read what comes back until EOF (2 s max)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        if half_close:
            writer.write_eof()
        try:
            return await asyncio.wait_for(reader.read(), 2.0)
        except (TimeoutError, ConnectionError):
            return b"<open>"
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


def _send_name(name: str, flags: int = 0x4_0707_0FBC, creation: int = 5) -> bytes:
    body = b"N" + struct.pack(">QIH", flags, creation, len(name)) + name.encode()
    return struct.pack(">H", len(body)) + body


async def test_junk_and_half_handshakes_leave_node_healthy(
    beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with py_node(epmd.port, net_setuptime=1.0) as node:
        assert await node.ping(beam.name)
        beam_pid = await ev(beam, "self()")
        full = _send_name("junk@127.0.0.1")
        cases = [
            b"",  # connect and close at once
            os.urandom(2048),  # noise
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # the wrong protocol
            full[: len(full) // 2],  # half a send_name
            b"\xff\xff" + b"N" * 100,  # a length that lies
            b"\x00\x00",  # an empty handshake packet
            _send_name("no_at_sign"),  # an invalid node name
            full + os.urandom(64),  # a send_name then junk instead of a challenge reply
            full + b"\x00\x15r" + b"\x00" * 20,  # a challenge reply with a wrong digest
            _send_name("junk@127.0.0.1", flags=0x4),  # missing mandatory flags
        ]
        for data in cases:
            answer = await _raw(node.port, data, half_close=True)
            assert answer != b"<open>", f"socket left open after {data[:20]!r}"
            assert b"sok" not in answer or data.startswith(full)
            # The established BEAM connection is undisturbed.
            assert await node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)
        # A stalled peer (connects, sends nothing) is dropped after net_setuptime.
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        try:
            got = await asyncio.wait_for(reader.read(), 5.0)
            assert got == b""
        finally:
            writer.close()
        assert node.nodes() == [beam.name]
        assert "junk@127.0.0.1" not in node.nodes()
        # Messages still flow both ways on the old connection, and new peers get in.
        await node.send(beam_pid, Atom("still_here"))
        assert await ev(beam, "receive still_here -> ok after 5000 -> timeout end") == Atom("ok")
        async with py_node(epmd.port) as other:
            assert await other.ping(node.name)
    _no_errors_logged(caplog)


async def test_challenge_reply_with_wrong_digest_is_refused(epmd: Epmd) -> None:
    """A peer that answers the challenge with a wrong digest gets no challenge_ack."""
    async with py_node(epmd.port) as node:
        reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
        try:
            writer.write(_send_name("digest@127.0.0.1"))
            status = await asyncio.wait_for(reader.readexactly(5), 5)
            assert status == b"\x00\x03sok"
            (length,) = struct.unpack(">H", await reader.readexactly(2))
            challenge = await reader.readexactly(length)
            assert challenge[:1] == b"N"
            writer.write(b"\x00\x15r" + b"\x00\x00\x00\x01" + b"\x00" * 16)
            rest = await asyncio.wait_for(reader.read(), 5)
            assert rest == b""  # closed, no ack
        finally:
            writer.close()
        assert node.nodes() == []


# -- restarts ---------------------------------------------------------------------------


async def test_python_node_restarted_under_same_name(beam: BeamNode, epmd: Epmd) -> None:
    """A new incarnation dials the BEAM while the BEAM still holds the old connection:
    the BEAM answers ``alive``, we answer true, the stale connection is dropped."""
    name = py_name("again")
    async with Node(name, cookie=TEST_COOKIE, epmd_port=epmd.port) as old:
        assert await old.ping(beam.name)
        info = await port_please(beam.alive, "127.0.0.1", epmd_port=epmd.port)
        assert info is not None
        async with Node(name, cookie=TEST_COOKIE, use_epmd=False, ports={beam.name: info.port}) as new:
            assert new.creation != old.creation
            assert await new.ping(beam.name)
            await old.wait_nodedown(beam.name, timeout=10)
            assert not old.is_connected(beam.name)
            assert new.is_connected(beam.name)
            got = await ev(beam, f"rpc:call({q(name)}, erlang, node, [])")
            assert got[0] == Atom("badrpc")  # nothing allow-listed: undef, but from the new node
            pid = await new.rpc(beam.name, "erlang", "list_to_pid", [list(b"<0.1.0>")])
            assert type(pid) is Pid


async def test_beam_restarted_under_same_name(
    runtime: Runtime, epmd: Epmd, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kill -9, then a new BEAM incarnation with the same name: the next use dials it,
    and pids of the old incarnation stay dead."""
    first = await start_beam(runtime, epmd.port, prefix="rst")
    try:
        async with py_node(epmd.port) as node, node.process() as me:
            old_pid = await ev(first, "begin P = spawn(fun() -> receive _ -> ok end end), register(rst_box, P), P end")
            assert await node.ping(first.name)
            first.kill()
            await node.wait_nodedown(first.name, timeout=5)
            monkeypatch.setattr("tests.beam.unique_name", lambda prefix="t": first.alive)
            second = await start_beam(runtime, epmd.port, prefix="rst")
            try:
                assert second.name == first.name
                await check(second, "begin register(rst_box, self()), true end")
                await node.send(("rst_box", second.name), (Atom("again"), me.pid))
                got = await ev(second, "receive {again, P} -> P ! {hi, self()}, ok after 5000 -> timeout end")
                assert got == Atom("ok")
                hi = await me.receive(timeout=5)
                assert hi[0] == Atom("hi") and hi[1].creation != old_pid.creation
                # The old incarnation's pid is gone: a monitor on it reports noproc.
                ref = me.monitor(old_pid)
                down = await me.receive(lambda m: m[0] == Atom("DOWN"), timeout=5)
                assert down[1] == ref and down[4] in (Atom("noproc"), Atom("noconnection"))
                assert node.nodes() == [second.name]
            finally:
                await stop_beam(second)
    finally:
        await stop_beam(first)
