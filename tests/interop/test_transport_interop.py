"""The transport against real BEAM nodes (OTP 25 and 28): backpressure on a frozen
(SIGSTOPped) BEAM for the async and the blocking API, a wrong cookie reported as
such, and short/long names refused as BEAM refuses them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from typing import Any

import pytest

from bridge import BlockingNode, CallError, CookieRejected, NameMismatch, Node, RpcError
from bridge.cli import EXIT_PANG, EXIT_UNAVAILABLE
from dist_proto.terms import Atom
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, unique_name
from tests.bridge.test_cli import run_cli
from tests.interop.node_support import ev, eventually, py_node, start_beam, stop_beam

pytestmark = pytest.mark.interop

LIMIT = 256 * 1024
MESSAGE = bytes(64 * 1024)
COUNT = 500  # 31 MiB in all: far more than the socket buffers hold

_SINK = (
    "Pid = spawn(fun() -> (fun Loop(N) -> receive {count, From} -> From ! {count, N}, Loop(N);"
    " _ -> Loop(N + 1) end end)(0) end), register(bp_sink, Pid), ok"
)
_COUNT = "bp_sink ! {count, self()}, receive {count, N} -> N after 5000 -> timeout end"


async def _sink_count(beam: BeamNode) -> Any:
    return await ev(beam, _COUNT)


async def _frozen_beam(runtime: Runtime, epmd: Epmd) -> BeamNode:
    beam = await start_beam(runtime, epmd.port, prefix="bp")
    assert await ev(beam, _SINK) == Atom("ok")
    return beam


async def test_async_send_is_suspended_while_a_stopped_beam_cannot_read(runtime: Runtime, epmd: Epmd) -> None:
    beam = await _frozen_beam(runtime, epmd)
    stopped = False
    try:
        async with py_node(epmd.port, busy_limit=LIMIT) as node:
            assert await node.ping(beam.name)
            peer = node._peers[Atom(beam.name)]
            dest = ("bp_sink", beam.name)
            state = {"sent": 0, "peak": 0}

            async def flood() -> None:
                for _ in range(COUNT):
                    await node.send(dest, MESSAGE)
                    state["sent"] += 1
                    state["peak"] = max(state["peak"], peer.write_buffer_size())

            os.kill(beam.pid, signal.SIGSTOP)
            stopped = True
            sender = asyncio.create_task(flood())
            try:
                await eventually(lambda: peer.busy, what="busy connection")
                held = state["sent"]
                await asyncio.sleep(0.5)
                assert state["sent"] == held < COUNT  # suspended, not buffering
                assert state["peak"] <= LIMIT + 2 * len(MESSAGE) + 4096
                os.kill(beam.pid, signal.SIGCONT)
                stopped = False
                await asyncio.wait_for(sender, 60)
            finally:
                sender.cancel()
            assert state["peak"] <= LIMIT + 2 * len(MESSAGE) + 4096
            for _ in range(50):
                if await _sink_count(beam) == COUNT:
                    break
                await asyncio.sleep(0.1)
            assert await _sink_count(beam) == COUNT  # nothing lost
            assert node.counters()["unsent_frames"] == 0
    finally:
        if stopped:
            os.kill(beam.pid, signal.SIGCONT)
        await stop_beam(beam)


async def test_blocking_send_blocks_while_a_stopped_beam_cannot_read(runtime: Runtime, epmd: Epmd) -> None:
    beam = await _frozen_beam(runtime, epmd)
    stopped = False
    bnode = await asyncio.to_thread(
        BlockingNode, f"{unique_name('bb')}@127.0.0.1", TEST_COOKIE, epmd_port=epmd.port, busy_limit=LIMIT
    )
    sent = [0]
    finished = threading.Event()
    errors: list[BaseException] = []

    def flood() -> None:
        try:
            for _ in range(COUNT):
                bnode.send(("bp_sink", beam.name), MESSAGE)
                sent[0] += 1
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            finished.set()

    thread = threading.Thread(target=flood, name="blocking-flood")
    try:
        assert await asyncio.to_thread(bnode.ping, beam.name)
        os.kill(beam.pid, signal.SIGSTOP)
        stopped = True
        thread.start()
        await eventually(lambda: sent[0] > 0, what="first sends")
        # The sender stops advancing while the BEAM is frozen.
        previous = -1
        while previous != sent[0]:
            previous = sent[0]
            await asyncio.sleep(0.5)
        assert sent[0] < COUNT and not finished.is_set()
        assert await asyncio.to_thread(bnode.run, _buffered(bnode.node, beam.name), 10) <= LIMIT + 2 * len(MESSAGE) + 4096
        os.kill(beam.pid, signal.SIGCONT)
        stopped = False
        assert await asyncio.to_thread(finished.wait, 60)
        assert errors == [] and sent[0] == COUNT
        for _ in range(50):
            if await _sink_count(beam) == COUNT:
                break
            await asyncio.sleep(0.1)
        assert await _sink_count(beam) == COUNT
    finally:
        if stopped:
            os.kill(beam.pid, signal.SIGCONT)
        await asyncio.to_thread(finished.wait, 60)
        if thread.is_alive():
            await asyncio.to_thread(thread.join, 60)
        await asyncio.to_thread(bnode.close)
        await stop_beam(beam)


async def _buffered(node: Node, peer_name: str) -> int:
    return node._peers[Atom(peer_name)].write_buffer_size()


# -- a wrong cookie, in words ---------------------------------------------------------------


async def test_wrong_cookie_against_beam_is_reported_as_a_rejected_cookie(
    beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    async with py_node(epmd.port, cookie="not_the_cookie") as node:
        assert await node.ping(beam.name) is False
        assert any("different cookies" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
        with pytest.raises(RpcError) as rpc_info:
            await node.rpc(beam.name, "erlang", "node", [])
        assert rpc_info.value.reason == Atom("nodedown")
        assert isinstance(rpc_info.value.__cause__, CookieRejected)
        assert "rejected the handshake" in str(rpc_info.value)
        with pytest.raises(CallError) as call_info:
            await node.call(("rex", beam.name), Atom("x"))
        assert isinstance(call_info.value.__cause__, CookieRejected)
    done = await asyncio.to_thread(run_cli, ["--cookie", "not_the_cookie", "ping", beam.name], epmd.port)
    assert (done.returncode, done.stdout) == (EXIT_PANG, "pang\n")
    assert "different cookies" in done.stderr
    done = await asyncio.to_thread(
        run_cli, ["--cookie", "not_the_cookie", "rpc", beam.name, "erlang", "node"], epmd.port
    )
    assert done.returncode == EXIT_UNAVAILABLE and "different cookies" in done.stderr


async def test_beam_with_a_wrong_cookie_is_logged_as_such(
    beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    async with py_node(epmd.port, cookie="not_the_cookie") as node:
        assert await ev(beam, f"net_adm:ping('{node.name}')") == Atom("pang")
        await eventually(
            lambda: any("cookie" in r.getMessage() and beam.name in r.getMessage() for r in caplog.records),
            what="a warning naming the cookie",
        )
        assert node.nodes() == []


# -- short and long names ------------------------------------------------------------------------


async def test_short_named_python_and_long_named_beam_do_not_connect(
    beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    async with Node(f"{unique_name('short')}@localhost", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
        assert await node.ping(beam.name) is False
        with pytest.raises(RpcError) as info:
            await node.rpc(beam.name, "erlang", "node", [])
        assert isinstance(info.value.__cause__, NameMismatch)
        assert "short name" in str(info.value.__cause__)
        # BEAM refuses the other way round too, and nothing reaches us.
        assert await ev(beam, f"net_adm:ping('{node.name}')") == Atom("pang")
        assert node.nodes() == []


# -- IPv6 (-proto_dist inet6_tcp) ----------------------------------------------------------------


async def test_ipv6_python_and_inet6_tcp_beam_connect_both_ways(runtime: Runtime, epmd: Epmd) -> None:
    beam = await start_beam(runtime, epmd.port, prefix="v6", host="::1", interface="0,0,0,0,0,0,0,1",
                            extra_args=["-proto_dist", "inet6_tcp"])
    try:
        async with Node(f"{unique_name('py6')}@::1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
            assert await node.ping(beam.name)
            assert await node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)
            assert node.disconnect(beam.name)
            await eventually(lambda: not node.is_connected(beam.name), what="disconnected")
            assert await ev(beam, f"net_adm:ping('{node.name}')") == Atom("pong")
            assert node.is_connected(beam.name)
    finally:
        await stop_beam(beam)
