"""Our EPMD client against our embedded EPMD server, over loopback (no BEAM)."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import pytest

from bridge.epmd_client import (
    EpmdProtocolError,
    EpmdTimeout,
    EpmdUnavailable,
    NameTaken,
    NodeInfo,
    epmd_port_from_env,
    names,
    port_please,
    register,
)
from bridge.epmd_server import EpmdServer, ensure_epmd, is_local_peer, run_epmd
from dist_proto.epmd import (
    Alive2Request,
    DumpRequest,
    KillRequest,
    NodeEntry,
    PortPlease2Request,
    StopRequest,
)
from tests.beam import free_port, unique_name


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server() -> AsyncIterator[EpmdServer]:
    async with EpmdServer("127.0.0.1", 0) as srv:
        yield srv


async def raw(port: int, data: bytes, *, timeout: float = 5.0, eof: bool = False) -> bytes:
    """Send raw bytes to EPMD (then end of stream if ``eof``) and read until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if eof:
            writer.write_eof()
        await writer.drain()
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


async def wait_until(cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- basics


async def test_register_lookup_names_unregister(server: EpmdServer) -> None:
    name = unique_name("py")
    reg = await register(name, 45001, epmd_port=server.port)
    assert reg.creation >= 4 and reg.extended and not reg.closed
    assert server.registered()[name].port == 45001

    info = await port_please(name, "127.0.0.1", epmd_port=server.port)
    assert info == NodeInfo(name, "127.0.0.1", 45001, 72, 0, 6, 6, b"")
    assert info.hidden
    assert await names(epmd_port=server.port) == [(name, 45001)]

    await reg.close()
    assert reg.closed and not reg.lost
    await wait_until(lambda: name not in server.registered())
    assert await port_please(name, "127.0.0.1", epmd_port=server.port) is None
    assert await names(epmd_port=server.port) == []


async def test_visible_registration_and_extra(server: EpmdServer) -> None:
    name = unique_name("py")
    async with await register(
        name, 45002, epmd_port=server.port, hidden=False, lowest=5, extra=b"xy"
    ):
        info = await port_please(name, "127.0.0.1", epmd_port=server.port)
        assert info is not None
        assert (info.node_type, info.lowest_version, info.extra) == (77, 5, b"xy")
        assert not info.hidden


async def test_names_lists_newest_first(server: EpmdServer) -> None:
    a, b = unique_name("a"), unique_name("b")
    async with await register(a, 1001, epmd_port=server.port):
        async with await register(b, 1002, epmd_port=server.port):
            assert await names(epmd_port=server.port) == [(b, 1002), (a, 1001)]


async def test_duplicate_name_is_name_taken(server: EpmdServer) -> None:
    name = unique_name("dup")
    async with await register(name, 45003, epmd_port=server.port):
        with pytest.raises(NameTaken):
            await register(name, 45004, epmd_port=server.port)
        # the first registration is untouched
        info = await port_please(name, "127.0.0.1", epmd_port=server.port)
        assert info is not None and info.port == 45003


async def test_refused_registration_socket_stays_open(server: EpmdServer) -> None:
    name = unique_name("dup")
    async with await register(name, 45005, epmd_port=server.port):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(Alive2Request(NodeEntry(name, 45006)).to_bytes())
            assert await reader.readexactly(6) == bytes.fromhex("76 01 00 00 00 63")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await reader.read(1)
        finally:
            writer.close()


async def test_old_client_gets_alive2_resp(server: EpmdServer) -> None:
    name = unique_name("old")
    reg = await register(name, 45007, epmd_port=server.port, highest=5, lowest=5)
    try:
        assert not reg.extended
        assert 1 <= reg.creation <= 3
    finally:
        await reg.close()


# --------------------------------------------------------------------------- creation


async def test_creation_rules() -> None:
    clock = FakeClock(1_700_000_000)
    async with EpmdServer("127.0.0.1", 0, clock=clock) as srv:
        name = unique_name("cr")
        reg = await register(name, 1, epmd_port=srv.port)
        assert reg.creation == 1_700_000_001  # Unix time + 1
        await reg.close()
        await wait_until(lambda: name not in srv.registered())
        clock.now += 100
        reg = await register(name, 1, epmd_port=srv.port)
        assert reg.creation == 1_700_000_002  # previous + 1, not the clock
        await reg.close()
        await wait_until(lambda: name not in srv.registered())
        # another fresh name in the same second gets the same creation as the clock says
        other = await register(unique_name("cr"), 1, epmd_port=srv.port)
        assert other.creation == 1_700_000_101
        await other.close()


async def test_creation_lifted_to_four_and_wraps() -> None:
    clock = FakeClock(0)
    async with EpmdServer("127.0.0.1", 0, clock=clock) as srv:
        async with await register(unique_name("z"), 1, epmd_port=srv.port) as reg:
            assert reg.creation == 4
        clock.now = 0xFFFFFFFF
        async with await register(unique_name("w"), 1, epmd_port=srv.port) as reg:
            assert reg.creation == 4


async def test_unregistered_names_are_forgotten_beyond_the_limit() -> None:
    clock = FakeClock(1_000_000)
    async with EpmdServer("127.0.0.1", 0, clock=clock, max_unreg=2) as srv:
        first = unique_name("f")
        for name in (first, unique_name("g"), unique_name("h")):
            reg = await register(name, 1, epmd_port=srv.port)
            await reg.close()
            await wait_until(lambda n=name: n not in srv.registered())
        clock.now = 2_000_000
        async with await register(first, 1, epmd_port=srv.port) as reg:
            assert reg.creation == 2_000_001  # treated as a fresh name again


# --------------------------------------------------------------------------- the registration socket


async def test_stray_byte_on_registration_unregisters(server: EpmdServer) -> None:
    name = unique_name("stray")
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(Alive2Request(NodeEntry(name, 45010, highest_version=6)).to_bytes())
        resp = await reader.readexactly(6)
        assert resp[:2] == b"\x76\x00"
        assert name in server.registered()
        writer.write(b"\x00")
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # EPMD closes it
        assert name not in server.registered()
    finally:
        writer.close()


async def test_pipelined_byte_after_alive2_unregisters(server: EpmdServer) -> None:
    name = unique_name("pipe")
    data = Alive2Request(NodeEntry(name, 45011)).to_bytes() + b"!"
    reply = await raw(server.port, data)
    assert reply[:2] == b"\x76\x00"
    await wait_until(lambda: name not in server.registered())


async def test_registration_detects_epmd_going_away() -> None:
    srv = EpmdServer("127.0.0.1", 0)
    await srv.start()
    try:
        reg = await register(unique_name("gone"), 1, epmd_port=srv.port)
    finally:
        await srv.stop()
    async with asyncio.timeout(5):
        await reg.wait_closed()
    assert reg.closed and reg.lost
    await reg.close()  # harmless afterwards


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x00\x00", id="empty-request"),
        pytest.param(b"\x00\x01\x01", id="unknown-opcode"),
        pytest.param(b"\x00\x04\x7aa\x00b", id="port-please-nul"),
        pytest.param(b"\x00\x03\x7a\xff\xfe", id="port-please-bad-utf8"),
        pytest.param(b"\x00\x01\x7a", id="port-please-empty"),
        pytest.param(b"\x00\x05\x78\x00\x01\x48\x00", id="alive2-short"),
        pytest.param(
            b"\x00\x0f\x78\x00\x01\x48\x00\x00\x06\x00\x06\x00\x09ab\x00\x00", id="alive2-lying-nlen"
        ),
        pytest.param(b"\x00\x10" + b"\x7a" + b"a" * 4, id="truncated-then-eof"),
    ],
)
async def test_malformed_request_closed_without_reply(server: EpmdServer, data: bytes) -> None:
    assert await raw(server.port, data, eof=data.endswith(b"aaaa")) == b""
    assert server.registered() == {}


async def test_oversized_packet_closed_without_reply(server: EpmdServer) -> None:
    body = b"\x7a" + b"a" * 4000
    assert await raw(server.port, struct.pack(">H", len(body)) + body) == b""


async def test_too_long_name_closed_without_reply(server: EpmdServer) -> None:
    assert await raw(server.port, PortPlease2Request("a" * 255).to_bytes()) == b"\x77\x01"
    body = b"\x7a" + b"a" * 256
    assert await raw(server.port, struct.pack(">H", len(body)) + body) == b""


async def test_idle_connection_closed() -> None:
    async with EpmdServer("127.0.0.1", 0, packet_timeout=0.1) as srv:
        assert await raw(srv.port, b"\x00") == b""


async def test_port_please_unknown_is_none(server: EpmdServer) -> None:
    assert await raw(server.port, PortPlease2Request("nobody").to_bytes()) == b"\x77\x01"
    assert await port_please("nobody", "127.0.0.1", epmd_port=server.port) is None


async def test_names_wire_format(server: EpmdServer) -> None:
    name = unique_name("w")
    async with await register(name, 4242, epmd_port=server.port):
        reply = await raw(server.port, b"\x00\x01\x6e")
    assert reply == struct.pack(">I", server.port) + f"name {name} at port 4242\n".encode()


# --------------------------------------------------------------------------- local-only requests


def test_is_local_peer() -> None:
    assert is_local_peer(("127.0.0.1", 5), ("127.0.0.1", 4369))
    assert is_local_peer(("127.3.4.5", 5), ("10.0.0.1", 4369))
    assert is_local_peer(("::1", 5, 0, 0), ("::1", 4369, 0, 0))
    assert is_local_peer(("::ffff:127.0.0.1", 5, 0, 0), ("::", 4369, 0, 0))
    assert is_local_peer(("10.0.0.7", 5), ("10.0.0.7", 4369))  # the host's own address
    assert not is_local_peer(("10.0.0.8", 5), ("10.0.0.7", 4369))
    assert not is_local_peer(("fe80::1%eth0", 5, 0, 2), ("fe80::2%eth0", 4369, 0, 2))
    assert not is_local_peer(None, None)
    assert not is_local_peer("/tmp/sock", "/tmp/sock")


async def test_non_local_requests_refused(server: EpmdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import bridge.epmd_server as mod

    monkeypatch.setattr(mod, "is_local_peer", lambda peer, local: False)
    name = unique_name("far")
    assert await raw(server.port, Alive2Request(NodeEntry(name, 1)).to_bytes()) == b""
    assert server.registered() == {}
    with pytest.raises(EpmdProtocolError):
        await register(name, 1, epmd_port=server.port)
    for req in (DumpRequest(), KillRequest()):
        assert await raw(server.port, req.to_bytes()) == b""
    # lookups are for everyone
    assert await raw(server.port, PortPlease2Request(name).to_bytes()) == b"\x77\x01"
    assert await names(epmd_port=server.port) == []


async def test_dump(server: EpmdServer) -> None:
    name, old = unique_name("d"), unique_name("o")
    async with await register(old, 7, epmd_port=server.port):
        pass
    await wait_until(lambda: old not in server.registered())
    async with await register(name, 8, epmd_port=server.port):
        reply = await raw(server.port, DumpRequest().to_bytes())
    assert reply[:4] == struct.pack(">I", server.port)
    text = reply[4:].decode()
    assert f"active name     <{name}> at port 8, fd = " in text
    assert f"old/unused name <{old}>, port = 7" in text


async def test_kill_refused_while_names_registered(server: EpmdServer) -> None:
    async with await register(unique_name("k"), 1, epmd_port=server.port):
        assert await raw(server.port, KillRequest().to_bytes()) == b"NO"
    assert server.serving


async def test_kill_when_empty_stops_the_server(server: EpmdServer) -> None:
    assert await raw(server.port, KillRequest().to_bytes()) == b"OK"
    async with asyncio.timeout(5):
        await server.wait_stopped()
    assert not server.serving
    with pytest.raises(EpmdUnavailable):
        await names(epmd_port=server.port)


async def test_stop_refused_unless_relaxed(server: EpmdServer) -> None:
    name = unique_name("s")
    async with await register(name, 1, epmd_port=server.port):
        assert await raw(server.port, StopRequest(name).to_bytes()) == b""
        assert name in server.registered()


async def test_relaxed_stop_and_kill() -> None:
    async with EpmdServer("127.0.0.1", 0, relaxed=True) as srv:
        name = unique_name("s")
        reg = await register(name, 1, epmd_port=srv.port)
        assert await raw(srv.port, StopRequest("nobody").to_bytes()) == b"NOEXIST"
        assert await raw(srv.port, StopRequest(name).to_bytes()) == b"STOPPED"
        async with asyncio.timeout(5):
            await reg.wait_closed()
        assert reg.lost and name not in srv.registered()
        await register(name, 1, epmd_port=srv.port)  # kept open: KILL is still allowed
        assert await raw(srv.port, KillRequest().to_bytes()) == b"OK"
        async with asyncio.timeout(5):
            await srv.wait_stopped()


# --------------------------------------------------------------------------- client errors


async def test_unavailable_when_nothing_listens() -> None:
    port = free_port()
    with pytest.raises(EpmdUnavailable):
        await register(unique_name("u"), 1, epmd_port=port)
    with pytest.raises(EpmdUnavailable):
        await port_please("x", "127.0.0.1", epmd_port=port)
    with pytest.raises(EpmdUnavailable):
        await names(epmd_port=port)


@contextlib.asynccontextmanager
async def fake_epmd(reply: bytes, *, close: bool = True) -> AsyncIterator[int]:
    """A fake EPMD that answers any request with ``reply`` (then closes if ``close``)."""
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            head = await reader.readexactly(2)
            await reader.readexactly(int.from_bytes(head, "big"))
            writer.write(reply)
            await writer.drain()
            if not close:
                await reader.read()
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await srv.wait_closed()


@pytest.mark.parametrize(
    "reply", [b"\x99\x00\x00\x00\x00\x00", b"\x76\x00\x00", b"", b"\x79\x00"], ids=repr
)
async def test_register_garbage_is_protocol_error(reply: bytes) -> None:
    async with fake_epmd(reply) as port:
        with pytest.raises(EpmdProtocolError):
            await register("g", 1, epmd_port=port)


async def test_port_please_garbage_is_protocol_error() -> None:
    async with fake_epmd(b"\x77\x00\x00\x01") as port:
        with pytest.raises(EpmdProtocolError):
            await port_please("g", "127.0.0.1", epmd_port=port)


async def test_names_garbage_is_protocol_error() -> None:
    async with fake_epmd(b"\x00\x00\x11\x11hello\n") as port:
        with pytest.raises(EpmdProtocolError):
            await names(epmd_port=port)


async def test_timeout() -> None:
    async with fake_epmd(b"", close=False) as port:
        with pytest.raises(EpmdTimeout):
            await port_please("g", "127.0.0.1", epmd_port=port, timeout=0.2)


async def test_invalid_names_are_value_errors(server: EpmdServer) -> None:
    for bad in ("", "a\0b", "x" * 256):
        with pytest.raises(ValueError):
            await register(bad, 1, epmd_port=server.port)
        with pytest.raises(ValueError):
            await port_please(bad, "127.0.0.1", epmd_port=server.port)


def test_epmd_port_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    assert epmd_port_from_env() == 4369
    monkeypatch.setenv("ERL_EPMD_PORT", "4370")
    assert epmd_port_from_env() == 4370
    for bad in ("x", "0", "70000"):
        monkeypatch.setenv("ERL_EPMD_PORT", bad)
        with pytest.raises(ValueError):
            epmd_port_from_env()


async def test_client_uses_env_port(server: EpmdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", str(server.port))
    assert await names() == []


# --------------------------------------------------------------------------- life cycle


async def test_ensure_epmd() -> None:
    port = free_port()
    srv = await ensure_epmd("127.0.0.1", port)
    assert srv is not None
    try:
        assert srv.port == port
        assert await ensure_epmd("127.0.0.1", port) is None
    finally:
        await srv.stop()


async def test_run_epmd_serves_until_cancelled() -> None:
    port = free_port()
    task = asyncio.create_task(run_epmd("127.0.0.1", port))
    try:
        async with asyncio.timeout(5):
            while True:
                try:
                    assert await names(epmd_port=port) == []
                    break
                except EpmdUnavailable:
                    await asyncio.sleep(0.02)
        async with await register(unique_name("r"), 1, epmd_port=port) as reg:
            assert reg.creation >= 4
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with pytest.raises(EpmdUnavailable):
        await names(epmd_port=port)


async def test_stop_closes_every_connection() -> None:
    srv = EpmdServer("127.0.0.1", 0)
    await srv.start()
    regs = [await register(unique_name("c"), i + 1, epmd_port=srv.port) for i in range(3)]
    _, idle = await asyncio.open_connection("127.0.0.1", srv.port)
    await srv.stop()
    async with asyncio.timeout(5):
        for reg in regs:
            await reg.wait_closed()
    assert all(r.lost for r in regs)
    assert srv.registered() == {}
    idle.close()
