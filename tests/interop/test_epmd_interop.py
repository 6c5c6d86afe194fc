"""EPMD interop with real BEAM nodes and real epmd daemons, on every required OTP major.

* our client against the runtime's own epmd (OTP 25's and OTP 28's binaries);
* our embedded EPMD serving BEAM nodes: they register with it and find each other
  through it.

BeamNode blocks while it starts and evaluates, so it runs in a worker thread: the
event loop must keep serving our EPMD meanwhile.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.epmd_client import EpmdUnavailable, NameTaken, names, port_please, register
from bridge.epmd_server import EpmdServer
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, free_port, unique_name

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def otp_epmd(runtime: Runtime) -> Iterator[Epmd]:
    """The runtime's own epmd binary on a free loopback port."""
    with Epmd(runtime) as server:
        yield server


@pytest.fixture
async def embedded() -> AsyncIterator[EpmdServer]:
    async with EpmdServer("127.0.0.1", 0) as server:
        yield server


async def start_node(runtime: Runtime, epmd_port: int, dist_port: int | None = None) -> BeamNode:
    args: list[str] = []
    if dist_port is not None:
        args = ["-kernel", "inet_dist_listen_min", str(dist_port),
                "inet_dist_listen_max", str(dist_port)]
    return await asyncio.to_thread(BeamNode, runtime, epmd_port=epmd_port, extra_args=args)


async def check(node: BeamNode, expr: str) -> None:
    await asyncio.to_thread(node.check, expr)


async def stop(*nodes: BeamNode) -> None:
    for node in nodes:
        await asyncio.to_thread(node.stop)


async def eventually(cond: Any, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- (1) real epmd


async def test_beam_sees_python_registration(runtime: Runtime, otp_epmd: Epmd) -> None:
    alive = unique_name("py")
    py_port = free_port()
    async with await register(alive, py_port, epmd_port=otp_epmd.port) as reg:
        assert reg.creation >= 4 and reg.extended
        node = await start_node(runtime, otp_epmd.port)
        try:
            await check(node, f'{{port, {py_port}, 6}} =:= '
                              f'erl_epmd:port_please("{alive}", {{127,0,0,1}})')
            await check(node, f'lists:member({{"{alive}", {py_port}}}, '
                              f'element(2, net_adm:names({{127,0,0,1}})))')
        finally:
            await stop(node)
        info = await port_please(alive, "127.0.0.1", epmd_port=otp_epmd.port)
        assert info is not None
        assert (info.port, info.node_type, info.highest_version, info.lowest_version) == (
            py_port, 72, 6, 6)
    # Closing the socket unregisters; epmd handles the close asynchronously.
    async with asyncio.timeout(10):
        while await port_please(alive, "127.0.0.1", epmd_port=otp_epmd.port) is not None:
            await asyncio.sleep(0.02)


async def test_python_finds_beam_node(runtime: Runtime, otp_epmd: Epmd) -> None:
    dist_port = free_port()
    node = await start_node(runtime, otp_epmd.port, dist_port)
    try:
        info = await port_please(node.alive, "127.0.0.1", epmd_port=otp_epmd.port)
        assert info is not None
        assert info.port == dist_port
        # what the node itself learns from its epmd
        await check(node, f'element(2, erl_epmd:port_please("{node.alive}", {{127,0,0,1}}))'
                          f' =:= {info.port}')
        # BEAM registers 'M', highest 6, lowest 5, even when hidden
        assert (info.node_type, info.protocol, info.highest_version, info.lowest_version) == (
            77, 0, 6, 5)
        assert (node.alive, dist_port) in await names(epmd_port=otp_epmd.port)
    finally:
        await stop(node)
    async with asyncio.timeout(10):
        while await port_please(node.alive, "127.0.0.1", epmd_port=otp_epmd.port):
            await asyncio.sleep(0.02)


# --------------------------------------------------------------------------- (2) embedded EPMD


async def test_beam_nodes_use_embedded_epmd(runtime: Runtime, embedded: EpmdServer) -> None:
    a_port = free_port()
    a = await start_node(runtime, embedded.port, a_port)
    b = None
    try:
        reg = embedded.registered()[a.alive]
        assert reg.port == a_port
        assert reg.entry.node_type == 77 and reg.entry.highest_version == 6
        await check(a, f"erlang:system_info(creation) =:= {reg.creation}")

        b = await start_node(runtime, embedded.port)
        assert set(embedded.registered()) == {a.alive, b.alive}
        # b can only find a through our EPMD
        await check(b, f"net_adm:ping('{a.name}') =:= pong")
        await check(b, f"lists:member('{a.name}', nodes())")
        await check(b, f'{{ok, Ns}} = net_adm:names({{127,0,0,1}}), '
                       f'lists:sort(Ns) =:= lists:sort([{{"{a.alive}", {a_port}}}, '
                       f'{{"{b.alive}", {embedded.registered()[b.alive].port}}}])')

        # a Python name registered with us is visible to BEAM
        alive, py_port = unique_name("py"), free_port()
        async with await register(alive, py_port, epmd_port=embedded.port):
            await check(a, f'{{port, {py_port}, 6}} =:= '
                           f'erl_epmd:port_please("{alive}", {{127,0,0,1}})')
        await check(a, f'noport =:= erl_epmd:port_please("{alive}", {{127,0,0,1}})')
    finally:
        await stop(a, *([b] if b else []))
    # a stopped node's registration socket closes: unregistered
    await eventually(lambda: not embedded.registered())


async def test_beam_restart_gets_new_creation(runtime: Runtime, embedded: EpmdServer) -> None:
    node = await start_node(runtime, embedded.port)
    try:
        first = embedded.registered()[node.alive].creation
    finally:
        await stop(node)
    await eventually(lambda: node.alive not in embedded.registered())
    # the same name again (from Python here): creation goes up by one
    async with await register(node.alive, free_port(), epmd_port=embedded.port) as reg:
        assert reg.creation == first + 1


# --------------------------------------------------------------------------- (3) name taken


async def test_name_taken(runtime: Runtime, otp_epmd: Epmd) -> None:
    alive = unique_name("dup")
    async with await register(alive, free_port(), epmd_port=otp_epmd.port):
        with pytest.raises(NameTaken):
            await register(alive, free_port(), epmd_port=otp_epmd.port)
    node = await start_node(runtime, otp_epmd.port)
    try:
        with pytest.raises(NameTaken):
            await register(node.alive, free_port(), epmd_port=otp_epmd.port)
        await check(node, "is_integer(element(2, erl_epmd:port_please("
                          f'"{node.alive}", {{127,0,0,1}})))')
    finally:
        await stop(node)


async def test_name_taken_by_beam_on_embedded(runtime: Runtime, embedded: EpmdServer) -> None:
    node = await start_node(runtime, embedded.port)
    try:
        with pytest.raises(NameTaken):
            await register(node.alive, free_port(), epmd_port=embedded.port)
        assert embedded.registered()[node.alive].entry.node_type == 77
    finally:
        await stop(node)


# --------------------------------------------------------------------------- (4) epmd gone


async def test_epmd_death_and_unavailable(runtime: Runtime) -> None:
    daemon = Epmd(runtime)
    try:
        reg = await register(unique_name("py"), free_port(), epmd_port=daemon.port)
    finally:
        await asyncio.to_thread(daemon.stop)
    async with asyncio.timeout(10):
        await reg.wait_closed()
    assert reg.lost
    with pytest.raises(EpmdUnavailable):
        await register(unique_name("py"), free_port(), epmd_port=daemon.port)
    with pytest.raises(EpmdUnavailable):
        await port_please("anything", "127.0.0.1", epmd_port=daemon.port)


# --------------------------------------------------------------------------- erl_interface client


def erl_call_path(runtime: Runtime) -> Path:
    for path in [runtime.bin_dir / "erl_call",
                 *sorted(runtime.erl.resolve().parent.parent.glob("lib/erl_interface-*/bin/erl_call"))]:
        if path.exists():
            return path
    pytest.fail(f"no erl_call in {runtime.label}")


async def test_erl_call_looks_up_through_embedded_epmd(
    runtime: Runtime, embedded: EpmdServer
) -> None:
    """erl_interface's EPMD client (not erl_epmd) finds a node through our EPMD."""
    node = await start_node(runtime, embedded.port)
    try:
        proc = await asyncio.create_subprocess_exec(
            str(erl_call_path(runtime)), "-name", node.name, "-c", TEST_COOKIE,
            "-a", "erlang node", "-timeout", "20",
            env=runtime.environ({"ERL_EPMD_PORT": str(embedded.port)}),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(30):
                out, _ = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, out
        assert out.strip() == f"'{node.name}'".encode()
    finally:
        await stop(node)


# --------------------------------------------------------------------------- differential


def _frame(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def _alive2(name: bytes, extra: bytes = b"") -> bytes:
    fixed = struct.pack(">HBBHHH", 5000, 77, 0, 6, 5, len(name))
    return _frame(b"\x78" + fixed + name + struct.pack(">H", len(extra)) + extra)



DIFFERENTIAL = [
    pytest.param(lambda n: _frame(b"znobody"), id="port-please-unknown"),
    pytest.param(lambda n: _frame(b"z" + n), id="port-please-known"),
    pytest.param(lambda n: _frame(b"za\x00b"), id="port-please-nul-inside"),
    pytest.param(lambda n: _frame(b"z"), id="port-please-empty"),
    pytest.param(lambda n: _frame(b"z\xff\xfe"), id="port-please-bad-utf8"),
    pytest.param(lambda n: _frame(b"z" + b"a" * 256), id="port-please-256"),
    pytest.param(lambda n: _frame(b"\x01"), id="unknown-opcode"),
    pytest.param(lambda n: b"\x00\x00", id="empty-packet"),
    pytest.param(lambda n: _frame(b"s" + n), id="stop-not-relaxed"),
    pytest.param(lambda n: _frame(b"k"), id="kill-with-names"),
    pytest.param(lambda n: _alive2(n), id="alive2-duplicate"),
    pytest.param(lambda n: _alive2(b"big" + n, b"e" * 1021), id="alive2-extra-too-long"),
    pytest.param(lambda n: _frame(b"\x78\x00\x01"), id="alive2-short"),
    pytest.param(lambda n: _frame(b"z" + b"a" * 3100), id="packet-too-long"),
    pytest.param(lambda n: _frame(b"z" + n + b"\x00"), id="port-please-trailing-nul"),
    pytest.param(lambda n: _frame(b"k!"), id="kill-trailing-byte"),
    pytest.param(lambda n: _alive2(b"\xff\xfe"), id="alive2-bad-utf8"),
    pytest.param(lambda n: _alive2(b"a" * 256), id="alive2-256"),
]


async def _probe(port: int, data: bytes) -> tuple[bytes, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = b""
        try:
            async with asyncio.timeout(0.5):
                while chunk := await reader.read(65536):
                    out += chunk
            return out, "closed"
        except TimeoutError:
            return out, "open"
        except ConnectionResetError:
            return out, "closed"
    finally:
        writer.close()


@pytest.mark.parametrize("make", DIFFERENTIAL)
async def test_embedded_answers_like_epmd(
    runtime: Runtime, otp_epmd: Epmd, embedded: EpmdServer, make: Any
) -> None:
    """The same bytes get the same answer (and close or not) from epmd and from us."""
    alive = unique_name("diff")
    data = make(alive.encode())
    answers = []
    for port in (otp_epmd.port, embedded.port):
        async with await register(alive, 4242, epmd_port=port, hidden=True):
            answers.append(await _probe(port, data))
    assert answers[1] == answers[0]
