"""Connecting a Python node to real BEAM nodes, both ways, on every required OTP major.

Python dials BEAM (``Node.ping``/``connect``), BEAM dials Python (``net_adm:ping``),
the Python node is hidden (``nodes(hidden)`` lists it, ``nodes()`` does not), pings
of missing nodes fail fast, a connection dropped by BEAM is re-made on the next use,
and both sides dialling each other at once end with one connection.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bridge import Node
from dist_proto.terms import Atom
from tests.beam import BeamNode, Epmd
from tests.interop.node_support import check, ev, eventually, py_node, q

pytestmark = pytest.mark.interop


async def test_python_dials_beam(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node:
        assert await node.ping(beam.name)
        assert beam.name in node.nodes()
        assert node.is_connected(beam.name)
        await check(beam, f"lists:member({q(node.name)}, nodes(hidden))")
        await check(beam, f"not lists:member({q(node.name)}, nodes())")
        await check(beam, f"lists:member({q(node.name)}, nodes(connected))")


async def test_beam_dials_python(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node:
        assert not node.is_connected(beam.name)
        assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pong")
        assert beam.name in node.nodes()
        await check(beam, f"lists:member({q(node.name)}, nodes(hidden))")
        await check(beam, f"not lists:member({q(node.name)}, nodes())")
        # Same connection serves a ping the other way.
        assert await node.ping(beam.name)
        assert node.nodes().count(beam.name) == 1


async def test_elixir_style_node_ping(beam: BeamNode, epmd: Epmd) -> None:
    """``net_kernel:connect_node/1`` (what ``Node.connect/1`` calls) reaches Python."""
    async with py_node(epmd.port) as node:
        assert await ev(beam, f"net_kernel:connect_node({q(node.name)})") is True
        await eventually(lambda: node.is_connected(beam.name), what="connection seen by Python")


async def test_ping_missing_node_is_pang_quickly(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node:
        started = time.monotonic()
        assert await node.ping("nobody_here@127.0.0.1") is False
        assert time.monotonic() - started < 5.0
        assert await node.connect("nobody_here@127.0.0.1") is False
        assert "nobody_here@127.0.0.1" not in node.nodes()
        # And BEAM pinging a missing Python-looking name is pang too (sanity of the setup).
        assert await ev(beam, "net_adm:ping('nobody_here@127.0.0.1')") == Atom("pang")


async def test_ping_self(epmd: Epmd) -> None:
    async with py_node(epmd.port) as node:
        assert await node.ping(node.name)
        assert node.nodes() == []


async def test_beam_disconnect_then_python_reconnects(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node, node.process("reco_inbox") as inbox:
        assert await node.ping(beam.name)
        downs: list[tuple[Atom, bool]] = []
        node.monitor_nodes(lambda n, up, _r: downs.append((n, up)))
        waiter = asyncio.ensure_future(node.wait_nodedown(beam.name, timeout=10))
        await check(beam, f"erlang:disconnect_node({q(node.name)})")
        await waiter
        assert (Atom(beam.name), False) in downs
        assert not node.is_connected(beam.name)
        # The next use dials again: a send to a BEAM registered name gets through.
        await check(beam, "begin catch unregister(reco_box), register(reco_box, self()) end")
        try:
            await node.send(("reco_box", beam.name), (Atom("hello_again"), inbox.pid))
            got = await ev(beam, "receive {hello_again, P} -> P ! back, ok after 5000 -> timeout end")
            assert got == Atom("ok")
            assert await inbox.receive(timeout=5) == Atom("back")
        finally:
            await check(beam, "begin unregister(reco_box), true end")
        assert node.is_connected(beam.name)
        assert (Atom(beam.name), True) in downs


async def test_python_disconnect_is_nodedown_on_beam(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node:
        assert await node.ping(beam.name)
        await check(beam, f"lists:member({q(node.name)}, nodes(hidden))")
        assert node.disconnect(beam.name)
        assert not node.disconnect(beam.name)
        await check(
            beam,
            f"(fun W(0) -> false; W(N) -> case lists:member({q(node.name)}, nodes(hidden)) of"
            " false -> true; true -> timer:sleep(20), W(N - 1) end end)(250)",
        )
        # And the BEAM can dial back in.
        assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pong")


@pytest.mark.parametrize("delay_ms", [0.0, 0.5, 1.0, 1.5, 2.0])
async def test_simultaneous_connect_with_beam(beam: BeamNode, epmd: Epmd, delay_ms: float) -> None:
    """Both sides dial at (nearly) the same instant: both succeed, one connection
    remains on each side, and Python sees exactly one nodeup and no nodedown."""

    async def python_side(node: Node) -> bool:
        await asyncio.sleep(delay_ms / 1000)
        return await node.connect(beam.name)

    for _ in range(6):
        async with py_node(epmd.port) as node:
            events: list[bool] = []
            node.monitor_nodes(lambda _n, up, _r, sink=events: sink.append(up))
            beam_side = ev(beam, f"net_kernel:connect_node({q(node.name)})")
            assert await asyncio.gather(beam_side, python_side(node)) == [True, True]
            await asyncio.sleep(0.05)
            assert node.nodes() == [beam.name]
            assert events == [True]
            await check(beam, f"length([N || N <- nodes(hidden), N =:= {q(node.name)}]) =:= 1")
            assert await node.ping(beam.name)


async def test_python_node_names_are_unique_per_test(epmd: Epmd) -> None:
    """Two Python nodes on one EPMD coexist and see each other through it."""
    async with py_node(epmd.port) as a, py_node(epmd.port) as b:
        assert a.name != b.name
        assert await a.ping(b.name)
        assert a.nodes() == [b.name]
        await eventually(lambda: b.nodes() == [a.name], what="b sees a")

