"""Messages between BEAM processes and Python processes, on every required OTP major.

Sends to registered names (``{Name, Node}``) and to pids in both directions, and
per-pair ordering under load: a BEAM process sends 100 000 messages to a Python
registered name, Python echoes each to the sender pid, and the BEAM receives them
back in order.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from bridge import Node
from dist_proto.terms import Atom, Pid
from python_actors import Exit, Process
from tests.beam import BeamNode, Epmd
from tests.interop.node_support import check, ev, py_node, q

pytestmark = pytest.mark.interop


@pytest.fixture
async def node(epmd: Epmd) -> Any:
    async with py_node(epmd.port) as n:
        yield n


async def _register_eval_process(beam: BeamNode, name: str) -> None:
    """Register the BEAM's evaluation process (it outlives each eval) under ``name``."""
    await check(beam, f"begin catch unregister({name}), register({name}, self()) end")


async def _flush(beam: BeamNode) -> None:
    """Drop anything a failed test left in the evaluation process's mailbox."""
    await ev(beam, "(fun F() -> receive _ -> F() after 0 -> ok end end)()")


async def _unregister(beam: BeamNode, name: str) -> None:
    await ev(beam, f"catch unregister({name})")
    await _flush(beam)


async def test_python_sends_to_beam_registered_name(beam: BeamNode, node: Node) -> None:
    await _register_eval_process(beam, "msg_box1")
    try:
        await node.send(("msg_box1", beam.name), (Atom("hello"), b"bin", "text", [1, 2.5]))
        got = await ev(beam, "receive M -> M after 5000 -> timeout end")
        assert got == (Atom("hello"), b"bin", b"text", [1, 2.5])
    finally:
        await _unregister(beam, "msg_box1")


async def test_beam_sends_to_python_registered_name(beam: BeamNode, node: Node) -> None:
    async with node.process("py_box1") as box:
        await check(beam, f"begin {{py_box1, {q(node.name)}}} ! {{from_beam, self(), <<\"x\">>}}, true end")
        msg = await box.receive(timeout=5)
        assert msg[0] == Atom("from_beam")
        assert type(msg[1]) is Pid and msg[1].node == Atom(beam.name)
        assert msg[2] == b"x"


async def test_pids_both_ways(beam: BeamNode, node: Node) -> None:
    """Python sends its pid to a BEAM pid; the BEAM answers to the Python pid."""
    beam_pid = await ev(beam, "self()")
    assert type(beam_pid) is Pid and beam_pid.node == Atom(beam.name)
    async with node.process() as me:
        await node.send(beam_pid, (Atom("ping"), me.pid, 42))
        got = await ev(beam, "receive {ping, From, N} -> From ! {pong, self(), N + 1}, From after 5000 -> timeout end")
        assert got == me.pid
        reply = await me.receive(timeout=5)
        assert reply == (Atom("pong"), beam_pid, 43)
    await _flush(beam)


async def test_send_from_inside_a_python_process(beam: BeamNode, node: Node) -> None:
    """A spawned Python process uses ``proc.send`` to a ``(name, node)`` and receives the answer."""
    await _register_eval_process(beam, "msg_box2")
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def body(proc: Process) -> None:
        proc.send((Atom("msg_box2"), Atom(beam.name)), (Atom("q"), proc.pid))
        done.set_result(await proc.receive(timeout=5))

    try:
        node.spawn(body)
        assert await ev(beam, "receive {q, P} -> P ! {a, node()}, ok after 5000 -> timeout end") == Atom("ok")
        assert await asyncio.wait_for(done, 5) == (Atom("a"), Atom(beam.name))
    finally:
        await _unregister(beam, "msg_box2")


async def test_python_to_beam_ordering(beam: BeamNode, node: Node) -> None:
    n = 5000
    await _register_eval_process(beam, "msg_order")
    try:
        for i in range(n):
            await node.send(("msg_order", beam.name), i)
        got = await ev(
            beam,
            f"(fun L(I) when I =:= {n} -> ok; L(I) -> receive I -> L(I + 1); X -> {{out_of_order, I, X}}"
            " after 5000 -> {timeout, I} end end)(0)",
        )
        assert got == Atom("ok")
    finally:
        await _unregister(beam, "msg_order")


async def test_echo_100k_in_order(beam: BeamNode, node: Node) -> None:
    """100 000 messages BEAM -> Python name -> back to the BEAM pid, in order both ways."""
    n = 100_000
    seen_in_order = True

    async def echo(proc: Process) -> None:
        nonlocal seen_in_order
        proc.register("echo100k")
        expected = 1
        while True:
            msg = await proc.receive()
            if msg == Atom("stop"):
                return
            sender, i = msg
            if i != expected:
                seen_in_order = False
            expected = i + 1
            proc.send(sender, (Atom("echo"), i))

    pid = node.spawn(echo)
    try:
        result = await ev(
            beam,
            f"begin Self = self(), Py = {{echo100k, {q(node.name)}}},"
            f" Sender = spawn_link(fun() -> [Py ! {{Self, I}} || I <- lists:seq(1, {n})] end),"
            " Recv = fun R(I) when I > " + str(n) + " -> ok;"
            "           R(I) -> receive {echo, I} -> R(I + 1);"
            "                           {echo, X} -> {out_of_order, I, X}"
            "                   after 20000 -> {timeout, I} end end,"
            " Res = Recv(1), unlink(Sender), Res end",
            timeout=120,
        )
        assert result == Atom("ok")
        assert seen_in_order
    finally:
        await node.send(pid, Atom("stop"))
        await node.runtime.join(pid, 5)


async def test_atom_cache_rewritten_under_load(beam: BeamNode, node: Node) -> None:
    """BEAM's distribution atom cache, steady and rewritten: 3 000 distinct atoms (more
    than its 2 048 slots, so entries are replaced while frames that only refer to cached
    atoms keep coming), one of them 400 bytes of UTF-8 (the long-atoms header form), to
    two registered Python names; every message arrives, in order, with its atom. Most
    frames are taken by the compiled framing, the cache writes by the Python framing."""
    async with node.process("py_atoms_a") as box_a, node.process("py_atoms_b") as box_b:
        await check(beam, (
            "begin Long = list_to_atom(lists:duplicate(200, 233)), "
            f"[{{case I rem 2 of 0 -> py_atoms_a; 1 -> py_atoms_b end, {q(node.name)}}} ! "
            "{case I rem 500 of 0 -> Long; _ -> list_to_atom(\"a\" ++ integer_to_list(I rem 3000)) end, I}"
            " || I <- lists:seq(1, 6000)], true end"
        ))
        for i in range(1, 6001):
            box = box_a if i % 2 == 0 else box_b
            want = Atom("\u00e9" * 200) if i % 500 == 0 else Atom(f"a{i % 3000}")
            assert await box.receive(timeout=10) == (want, i)
        assert box_a.messages() == [] and box_b.messages() == []


async def test_large_messages_both_ways(beam: BeamNode, node: Node) -> None:
    """Messages over 64 KiB travel as fragments (FRAGMENTS is negotiated)."""
    async with node.process("big_box") as box:
        await check(
            beam,
            f"begin {{big_box, {q(node.name)}}} ! {{big, binary:copy(<<7>>, 1000000),"
            " lists:seq(1, 50000), [list_to_atom(\"a\" ++ integer_to_list(I)) || I <- lists:seq(1, 300)]},"
            " true end",
        )
        msg = await box.receive(timeout=10)
        assert msg[0] == Atom("big")
        assert msg[1] == b"\x07" * 1_000_000
        assert msg[2] == list(range(1, 50_001))
        assert msg[3] == [Atom(f"a{i}") for i in range(1, 301)]
        await _register_eval_process(beam, "big_back")
        try:
            payload = (Atom("back"), bytes(range(256)) * 4000, [Atom(f"b{i}") for i in range(300)])
            await node.send(("big_back", beam.name), payload)
            got = await ev(
                beam,
                "receive {back, B, L} -> {byte_size(B), erlang:md5(B), length(L), lists:last(L)}"
                " after 10000 -> timeout end",
            )
            assert got == (1_024_000, hashlib.md5(payload[1]).digest(), 300, Atom("b299"))
        finally:
            await _unregister(beam, "big_back")


async def test_links_and_monitors_across(beam: BeamNode, node: Node) -> None:
    """Exit signals and DOWN messages cross the wire both ways."""
    async with node.process() as me:
        me.trap_exit = True
        beam_pid = await ev(beam, "spawn(fun() -> receive {die, R} -> exit(R) end end)")
        ref = me.monitor(beam_pid)
        me.link(beam_pid)
        await asyncio.sleep(0.05)
        await node.send(beam_pid, (Atom("die"), Atom("custom_reason")))
        down = await me.receive(lambda m: m[0] == Atom("DOWN"), timeout=5)
        assert down == (Atom("DOWN"), ref, Atom("process"), beam_pid, Atom("custom_reason"))
        exit_msg = await me.receive(lambda m: m[0] == Atom("EXIT"), timeout=5)
        assert exit_msg == (Atom("EXIT"), beam_pid, Atom("custom_reason"))
        # A monitor on a BEAM process that does not exist: DOWN noproc at once.
        dead = await ev(beam, "spawn(fun() -> ok end)")
        ref2 = me.monitor(dead)
        down2 = await me.receive(lambda m: m[0] == Atom("DOWN"), timeout=5)
        assert down2 == (Atom("DOWN"), ref2, Atom("process"), dead, Atom("noproc"))

    # BEAM monitors and links a Python process that crashes.
    release = asyncio.Event()

    async def crasher(proc: Process) -> None:
        proc.register("py_crasher")
        await release.wait()
        raise RuntimeError("crash for the BEAM")

    node.spawn(crasher)
    await asyncio.sleep(0.05)
    watcher = asyncio.ensure_future(ev(
        beam,
        f"begin Ref = monitor(process, {{py_crasher, {q(node.name)}}}),"
        " receive {'DOWN', Ref, process, _, R} -> R after 10000 -> timeout end end",
    ))
    await asyncio.sleep(0.3)
    release.set()
    reason = await watcher
    assert reason[:3] == (Atom("python_exception"), b"RuntimeError", b"crash for the BEAM")


async def test_unencodable_terms_do_not_wedge_the_connection(beam: BeamNode, node: Node) -> None:
    """A Python object has no Erlang form: a send of it queued while connecting is
    dropped (the connection still comes up), one on a live connection raises, and an
    exit reason made of it reaches the BEAM's monitor as a description."""
    await _register_eval_process(beam, "enc_box")
    try:
        assert not node.is_connected(beam.name)
        await node.send(("enc_box", beam.name), object())  # queued: the dial starts now
        await node.send(("enc_box", beam.name), Atom("after"))
        assert await ev(beam, "receive M -> M after 5000 -> timeout end") == Atom("after")
        with pytest.raises(TypeError):
            await node.send(("enc_box", beam.name), object())
        assert await node.ping(beam.name)

        release = asyncio.Event()

        async def odd_exit(proc: Process) -> None:
            proc.register("py_odd_exit")
            await release.wait()
            raise Exit(object())

        node.spawn(odd_exit)
        watcher = asyncio.ensure_future(ev(
            beam,
            f"begin Ref = monitor(process, {{py_odd_exit, {q(node.name)}}}),"
            " receive {'DOWN', Ref, process, _, R} -> R after 10000 -> timeout end end",
        ))
        await asyncio.sleep(0.3)
        release.set()
        reason = await watcher
        assert reason[:2] == (Atom("python_exception"), b"TypeError")
        assert node.is_connected(beam.name)
    finally:
        await _unregister(beam, "enc_box")
