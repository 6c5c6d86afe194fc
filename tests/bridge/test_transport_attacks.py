"""Attacks on a node's transport, played by a hostile peer built from the sans-I/O pieces.

Each test names the attack of issue 10 it replays against a real :class:`bridge.Node`
on loopback (EPMD-less, so no daemon is involved): an impostor claiming a connected
node's name, a trickler holding a name, a flood of idle sockets, accept errors, a
forged spawn request, a peer that stops reading, a wrong cookie, mixed short and
long names, bad destinations.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bridge import (
    BridgeError,
    CallError,
    CookieRejected,
    NameMismatch,
    Node,
    RpcError,
)
from bridge import connections as connections_module
from dist_proto.handshake import HandshakeComplete
from dist_proto.terms import Atom, Pid, Reference
from python_actors import CallError as ActorCallError
from tests.beam import free_port, unique_name
from tests.bridge.hostile_peer import HostilePeer

COOKIE = "transport_cookie"


def _name(prefix: str) -> str:
    return f"{unique_name(prefix)}@127.0.0.1"


class _LoopErrors:
    """Collects what reaches the event loop's exception handler."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.contexts.append(context)


@pytest.fixture
async def loop_errors() -> AsyncIterator[_LoopErrors]:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    errors = _LoopErrors()
    loop.set_exception_handler(errors)
    try:
        yield errors
    finally:
        loop.set_exception_handler(previous)


async def _eventually(cond: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


async def _pair(**a_options: Any) -> tuple[Node, Node]:
    """Two started nodes, ``c`` connected to ``a``."""
    a = Node(_name("a"), cookie=COOKIE, use_epmd=False, **a_options)
    await a.start()
    a.allow_rpc("t", "name", lambda: Atom(a.name))
    c = Node(_name("c"), cookie=COOKIE, use_epmd=False, ports={a.name: a.port})
    await c.start()
    assert await c.ping(a.name)
    await _eventually(lambda: a.is_connected(c.name))
    return a, c


# -- an impostor cannot drop an existing connection ------------------------------------


@pytest.mark.parametrize("answer_alive", [True, False])
async def test_impostor_claiming_a_connected_name_leaves_the_connection_up(answer_alive: bool) -> None:
    a, c = await _pair()
    try:
        downs: list[Any] = []
        a.monitor_nodes(lambda n, up, why: downs.append((n, up, why)))
        before = a._peers[Atom(c.name)]
        impostor = await HostilePeer.open(a.port, c.name, "not_the_cookie")
        try:
            result = await impostor.handshake(answer_alive=answer_alive)
            assert not isinstance(result, HandshakeComplete)
            assert await impostor.closed_by_peer()
        finally:
            await impostor.close()
        # The real connection is the same object, open, and still carries calls.
        assert a._peers[Atom(c.name)] is before and before.open
        assert downs == []
        assert await c.rpc(a.name, "t", "name", []) == Atom(a.name)
        assert await a.ping(c.name)
        assert a.counters()["failed_handshakes"] >= (1 if answer_alive else 0)
    finally:
        await c.stop()
        await a.stop()


async def test_a_restarted_node_with_the_cookie_replaces_its_stale_connection() -> None:
    """The same claim with the right cookie is a restart: the old connection goes."""
    a, c = await _pair()
    try:
        downs: list[Any] = []
        a.monitor_nodes(lambda n, up, why: downs.append((n, up)))
        before = a._peers[Atom(c.name)]
        restarted = await HostilePeer.open(a.port, c.name, COOKIE)
        try:
            assert isinstance(await restarted.handshake(answer_alive=True), HandshakeComplete)
            await _eventually(lambda: not before.open)
            assert a._peers[Atom(c.name)] is not before
            assert (Atom(c.name), False) in downs and (Atom(c.name), True) in downs
        finally:
            await restarted.close()
    finally:
        await c.stop()
        await a.stop()


# -- a trickler cannot hold a name -------------------------------------------------------


async def test_trickling_handshake_is_cut_at_the_setup_deadline() -> None:
    """The attacker claims C's name, then sends its challenge reply one byte at a time,
    each byte inside any per-read timeout. One deadline for the whole handshake cuts
    it off, and C's own connection then gets in."""
    a = Node(_name("a"), cookie=COOKIE, use_epmd=False, net_setuptime=1.0)
    await a.start()
    c_name = _name("c")
    trickler = await HostilePeer.open(a.port, c_name, "not_the_cookie")
    try:
        trickler.send_handshake_bytes()  # send_name claiming C
        status = await asyncio.wait_for(trickler.reader.readexactly(5), 5)
        assert status == b"\x00\x03sok"
        (length,) = struct.unpack(">H", await trickler.reader.readexactly(2))
        await trickler.reader.readexactly(length)  # the challenge
        reply = b"\x00\x15r" + b"\x00" * 20
        cut = False
        for byte in reply[:-1]:  # 22 bytes, 0.25 s apart: 5.5 s > net_setuptime
            try:
                trickler.writer.write(bytes([byte]))
                await trickler.writer.drain()
            except ConnectionError:
                cut = True
                break
            if trickler.reader.at_eof() or await _eof_within(trickler, 0.25):
                cut = True
                break
        assert cut, "the trickling handshake outlived net_setuptime"
        # C itself can now connect: the name is not locked.
        async with Node(c_name, cookie=COOKIE, use_epmd=False, ports={a.name: a.port}) as c:
            assert await c.ping(a.name)
    finally:
        await trickler.close()
        await a.stop()


async def test_an_impostor_holding_a_name_does_not_lock_the_real_node_out() -> None:
    """The impostor claims C's name and then sits in the handshake (long setup time).
    C's own attempt meanwhile goes on, proves the cookie and connects."""
    a = Node(_name("a"), cookie=COOKIE, use_epmd=False, net_setuptime=30.0)
    await a.start()
    c_name = _name("c")
    holder = await HostilePeer.open(a.port, c_name, "not_the_cookie")
    try:
        holder.send_handshake_bytes()
        assert await asyncio.wait_for(holder.reader.readexactly(5), 5) == b"\x00\x03sok"
        async with Node(c_name, cookie=COOKIE, use_epmd=False, ports={a.name: a.port}) as c:
            assert await c.ping(a.name)
            assert a.is_connected(c_name)
            # The impostor's late challenge reply is refused; C stays connected.
            holder.writer.write(b"\x00\x15r" + b"\x00" * 20)
            assert await holder.closed_by_peer()
            assert a.is_connected(c_name) and await c.ping(a.name)
    finally:
        await holder.close()
        await a.stop()


async def _eof_within(peer: HostilePeer, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(peer.reader.read(1), seconds)
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return data == b""


async def test_call_and_rpc_honour_their_timeout_while_a_connection_is_pending() -> None:
    """An unauthenticated handshake holds C's name; calls towards C do not wait past
    their own timeout for it."""
    a = Node(_name("a"), cookie=COOKIE, use_epmd=False, net_setuptime=30.0)
    await a.start()
    c_name = _name("c")
    holder = await HostilePeer.open(a.port, c_name, "not_the_cookie")
    try:
        holder.send_handshake_bytes()
        assert await asyncio.wait_for(holder.reader.readexactly(5), 5) == b"\x00\x03sok"
        with pytest.raises(CallError) as call_info:
            await a.call(("someone", c_name), Atom("hello"), timeout=0.3)
        assert call_info.value.why == Atom("timeout")
        assert isinstance(call_info.value, ActorCallError) and isinstance(call_info.value, BridgeError)
        with pytest.raises(RpcError) as rpc_info:
            await a.rpc(c_name, "erlang", "node", [], timeout=0.3)
        assert rpc_info.value.reason == Atom("timeout")
        # A send does not fail, nor wait for the set-up: it is queued behind it.
        await asyncio.wait_for(a.send(("someone", c_name), Atom("queued")), 5)
    finally:
        await holder.close()
        await a.stop()


# -- slowloris and accept errors -----------------------------------------------------------


async def test_handshakes_beyond_the_cap_are_refused_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.node")
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False, max_handshakes=3, net_setuptime=30.0) as a:
        idle = [await asyncio.open_connection("127.0.0.1", a.port) for _ in range(3)]
        try:
            await _eventually(lambda: a.counters()["handshakes_in_progress"] == 3)
            extra = []
            for _ in range(5):
                reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
                extra.append(writer)
                try:
                    assert await asyncio.wait_for(reader.read(), 5) == b""
                except ConnectionResetError:
                    pass
            assert a.counters()["refused_handshakes"] == 5
            cap_logs = [r for r in caplog.records if "refusing further connections" in r.getMessage()]
            assert len(cap_logs) == 1
            for w in extra:
                w.close()
        finally:
            for _, w in idle:
                w.close()
        await _eventually(lambda: a.counters()["handshakes_in_progress"] == 0)
        async with Node(_name("c"), cookie=COOKIE, use_epmd=False, ports={a.name: a.port}) as c:
            assert await c.ping(a.name)


async def test_accept_errors_are_logged_once_and_accepting_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, loop_errors: _LoopErrors
) -> None:
    """Out of file descriptors (EMFILE): one log line for the episode, no traceback
    per attempt, and the node accepts again once descriptors are back."""
    caplog.set_level(logging.WARNING, logger="bridge.node")
    monkeypatch.setattr(connections_module, "_ACCEPT_RETRY_DELAY", 0.01)
    loop = asyncio.get_running_loop()
    real_accept = loop.sock_accept
    failures = {"left": 50}
    port = free_port()

    async def sock_accept(sock: Any) -> Any:
        if sock.getsockname()[1] == port and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return await real_accept(sock)

    monkeypatch.setattr(loop, "sock_accept", sock_accept)
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False, listen_port=port) as a:
        async with Node(_name("c"), cookie=COOKIE, use_epmd=False, ports={a.name: a.port}) as c:
            assert await c.ping(a.name)
        assert a.counters()["accept_errors"] == 50
    errors = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
    assert len(errors) == 1
    assert not [ctx for ctx in loop_errors.contexts if "exception" in ctx]


# -- a forged message is contained ------------------------------------------------------


async def test_forged_spawn_request_with_the_wrong_arity_is_refused_not_raised(
    loop_errors: _LoopErrors,
) -> None:
    """``beam_bridge:start_actor/2`` asked with three arguments: the spawner refuses it
    (a ``badarg`` spawn reply, as BEAM answers a spawn it cannot read), nothing escapes
    into the event loop, and the connection carries on."""
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False) as a:
        forger_name = _name("forger")
        forger = await HostilePeer.open(a.port, forger_name, COOKIE)
        try:
            assert isinstance(await forger.handshake(), HandshakeComplete)
            me = Pid(Atom(forger_name), 1, 0, 7)
            ref = Reference(Atom(forger_name), 7, (1, 2, 3))
            mfa = (Atom("beam_bridge"), Atom("start_actor"), 2)
            forger.send_control((29, ref, me, me, mfa, []), [1, 2, 3])
            # Then an ordinary message on the same connection.
            async with a.process("inbox") as inbox:
                forger.send_control((6, me, Atom(""), Atom("inbox")), Atom("after"))
                assert await inbox.receive(timeout=5) == Atom("after")
            assert a.counters()["dispatch_errors"] == 0
        finally:
            await forger.close()
    assert not [ctx for ctx in loop_errors.contexts if "exception" in ctx]


async def test_malformed_spawn_request_closes_that_connection_only(
    loop_errors: _LoopErrors, caplog: pytest.LogCaptureFixture
) -> None:
    """``{M, F}`` where ``{M, F, Arity}`` belongs: a protocol error, so the connection
    goes (as BEAM kills it), and nothing else does."""
    caplog.set_level(logging.WARNING, logger="bridge.peer")
    a, c = await _pair()
    try:
        forger_name = _name("forger")
        forger = await HostilePeer.open(a.port, forger_name, COOKIE)
        try:
            assert isinstance(await forger.handshake(), HandshakeComplete)
            me = Pid(Atom(forger_name), 1, 0, 7)
            ref = Reference(Atom(forger_name), 7, (1, 2, 3))
            forger.send_control((29, ref, me, me, (Atom("m"), Atom("f")), []), [1, 2])
            assert await forger.closed_by_peer()
        finally:
            await forger.close()
        assert a.nodes() == [c.name]
        assert await c.rpc(a.name, "t", "name", []) == Atom(a.name)
    finally:
        await c.stop()
        await a.stop()
    assert not [ctx for ctx in loop_errors.contexts if "exception" in ctx]
    assert any("SPAWN_REQUEST" in r.getMessage() for r in caplog.records)


# -- backpressure against a peer that stops reading ----------------------------------------


async def test_send_waits_while_the_connection_is_busy_and_memory_stays_bounded() -> None:
    limit = 256 * 1024
    message = bytes(64 * 1024)
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False, busy_limit=limit) as a:
        stalled_name = _name("stalled")
        stalled = await HostilePeer.open(a.port, stalled_name, COOKIE, rcvbuf=4096)
        try:
            assert isinstance(await stalled.handshake(), HandshakeComplete)
            stalled.stop_reading()
            await _eventually(lambda: a.is_connected(stalled_name))
            peer = a._peers[Atom(stalled_name)]
            dest = (Atom("sink"), Atom(stalled_name))
            peak = 0
            sent = 0

            async def flood() -> None:
                nonlocal peak, sent
                for _ in range(400):  # 25 MiB in all
                    await a.send(dest, message)
                    sent += 1
                    peak = max(peak, peer.write_buffer_size())

            sender = asyncio.create_task(flood())
            await _eventually(lambda: peer.busy)
            stuck_at = sent
            await asyncio.sleep(0.3)
            assert not sender.done()
            assert sent == stuck_at  # suspended, not buffering
            assert peak <= limit + 2 * len(message) + 1024
            # The peer reads again: the sender resumes and finishes.
            stalled.resume_reading()
            await asyncio.wait_for(sender, 60)
            assert sent == 400
            assert peak <= limit + 2 * len(message) + 1024
            assert peer.busy_count >= 1
        finally:
            await stalled.close()


async def test_dropped_frames_are_counted_when_a_busy_connection_dies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.node")
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False, busy_limit=128 * 1024) as a:
        stalled_name = _name("stalled")
        stalled = await HostilePeer.open(a.port, stalled_name, COOKIE, rcvbuf=4096)
        try:
            assert isinstance(await stalled.handshake(), HandshakeComplete)
            stalled.stop_reading()
            await _eventually(lambda: a.is_connected(stalled_name))
            peer = a._peers[Atom(stalled_name)]
            async with a.process() as proc:
                for _ in range(2000):  # the synchronous actor path never blocks
                    proc.send((Atom("sink"), Atom(stalled_name)), bytes(16 * 1024))
                await _eventually(lambda: peer.busy)
                peer.abort(Atom("test_abort"))
            counts = a.counters()
            assert counts["unsent_frames"] > 0 and counts["unsent_bytes"] > 0
            assert any("still unsent" in r.getMessage() for r in caplog.records)
        finally:
            await stalled.close()


# -- errors users can act on -------------------------------------------------------------------


async def test_wrong_cookie_is_reported_as_such(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.node")
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False) as a:
        async with Node(_name("c"), cookie="other", use_epmd=False, ports={a.name: a.port}) as c:
            assert await c.ping(a.name) is False
            assert any("cookie" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
            with pytest.raises(RpcError) as rpc_info:
                await c.rpc(a.name, "erlang", "node", [])
            assert rpc_info.value.reason == Atom("nodedown")
            assert isinstance(rpc_info.value.__cause__, CookieRejected)
            assert "cookie" in str(rpc_info.value)
            with pytest.raises(CallError) as call_info:
                await c.call(("net_kernel", a.name), Atom("x"))
            assert call_info.value.why == (Atom("nodedown"), Atom(a.name))
            assert isinstance(call_info.value.__cause__, CookieRejected)


async def test_short_and_long_names_do_not_mix(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.node")
    async with Node(_name("long"), cookie=COOKIE, use_epmd=False) as long_node:
        short = Node(f"{unique_name('short')}@localhost", cookie=COOKIE, use_epmd=False,
                     ports={long_node.name: long_node.port})
        async with short:
            with pytest.raises(RpcError) as info:
                await short.rpc(long_node.name, "erlang", "node", [])
            assert isinstance(info.value.__cause__, NameMismatch)
            assert "short name" in str(info.value.__cause__) and "long name" in str(info.value.__cause__)
            assert await short.ping(long_node.name) is False
        # Inbound: a short-named peer is closed before any status.
        impostor = await HostilePeer.open(long_node.port, f"{unique_name('s')}@localhost", COOKIE)
        try:
            assert await impostor.handshake() is None
        finally:
            await impostor.close()
        assert long_node.nodes() == []


@pytest.mark.parametrize(
    "dest",
    [("inbox",), ("inbox", "no_host"), ("", "a@b"), 42, ("inbox", "a@b", "c"), b"inbox", ""],
)
async def test_bad_destinations_raise_value_error_with_the_shapes(dest: Any) -> None:
    async with Node(_name("a"), cookie=COOKIE, use_epmd=False) as a:
        for verb in (a.send, a.cast):
            with pytest.raises(ValueError, match="a destination is a Pid"):
                await verb(dest, Atom("m"))
        with pytest.raises(ValueError, match="a destination is a Pid"):
            await a.call(dest, Atom("m"), timeout=1)
