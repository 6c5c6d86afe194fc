"""Processes, messages, links, monitors, exit signals and the registry (no network)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from dist_proto.terms import Atom, Pid, Reference
from python_actors import (
    ANY,
    BadArg,
    Exit,
    NotInProcess,
    Process,
    ReceiveTimeout,
    Runtime,
    current_process,
    pattern,
)

EXIT, DOWN, PROCESS = Atom("EXIT"), Atom("DOWN"), Atom("process")
NORMAL, KILL, KILLED = Atom("normal"), Atom("kill"), Atom("killed")
NOPROC, NOCONNECTION, SHUTDOWN = Atom("noproc"), Atom("noconnection"), Atom("shutdown")


async def forever(proc: Process) -> None:
    await proc.receive(lambda m: False)


async def trapper(proc: Process) -> None:
    proc.trap_exit = True
    await proc.receive(lambda m: False)


async def crasher(proc: Process, reason: object) -> None:
    await proc.receive()
    raise Exit(reason)


def is_down(ref: Reference):  # noqa: ANN201
    return lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref


async def test_pids_and_refs_are_of_this_node() -> None:
    async with Runtime("py@127.0.0.1", creation=5) as rt:
        pid = rt.spawn(forever)
        ref = rt.make_ref()
        assert pid.node == Atom("py@127.0.0.1") and pid.creation == 5
        assert ref.node == Atom("py@127.0.0.1") and len(ref.ids) == 3 and ref.ids[0] < 2**18
        assert rt.make_ref() != ref
        assert rt.is_alive(pid)
    assert not rt.is_alive(pid)


async def test_selective_receive_keeps_order_of_others() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> list[object]:
            for m in [1, ("b", 2), 3, ("b", 4), 5]:
                proc.send(proc.pid, m)
            first = await proc.receive(pattern(("b", ANY)))
            rest = [await proc.receive(timeout=0) for _ in range(4)]
            return [first, *rest]

        assert await rt.run(body) == [("b", 2), 1, 3, ("b", 4), 5]


async def test_receive_waits_and_times_out() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            with pytest.raises(ReceiveTimeout):
                await proc.receive(timeout=0.01)
            assert await proc.receive(timeout=0, default="none") == "none"
            me = proc.pid

            async def later(p: Process) -> None:
                await asyncio.sleep(0.01)
                p.send(me, "skip")
                p.send(me, "hit")

            proc.spawn(later)
            got = await proc.receive(lambda m: m == "hit", timeout=5)
            return got, proc.messages()

        assert await rt.run(body) == ("hit", ["skip"])


async def test_pattern_helper() -> None:
    p = pattern((Atom("EXIT"), Pid, int))
    assert p((Atom("EXIT"), Pid(Atom("a@b"), 1), 3))
    assert not p((Atom("EXIT"), Pid(Atom("a@b"), 1), 3.0))
    assert not pattern(1)(1.0)
    assert pattern([ANY, lambda x: x > 2])([0, 3])


async def test_current_process() -> None:
    with pytest.raises(NotInProcess):
        current_process()
    async with Runtime() as rt:

        async def body(proc: Process) -> bool:
            return current_process() is proc and proc.self() == proc.pid

        assert await rt.run(body)


async def test_registry_and_send_by_name() -> None:
    async with Runtime() as rt:
        pid = rt.spawn(forever)
        rt.register("srv", pid)
        assert rt.whereis("srv") == pid and rt.whereis(Atom("srv")) == pid
        assert Atom("srv") in rt.registered()
        with pytest.raises(BadArg):
            rt.register("srv", rt.spawn(forever))
        with pytest.raises(BadArg):
            rt.register("other", pid)  # one name per process
        with pytest.raises(BadArg):
            rt.send("nobody", "x")
        rt.send("srv", "hello")
        rt.send(("srv", rt.node), "again")
        assert rt.process(pid).messages() == ["hello", "again"]  # type: ignore[union-attr]
        rt.exit(pid, KILL)
        assert rt.whereis("srv") is None
        rt.register("srv", rt.spawn(forever))
        rt.unregister("srv")
        with pytest.raises(BadArg):
            rt.unregister("srv")


async def test_send_to_dead_pid_is_dropped() -> None:
    async with Runtime() as rt:
        pid = rt.spawn(forever)
        rt.exit(pid, KILL)
        rt.send(pid, "lost")  # no error
        rt.send(Pid(rt.node, 999, 0, rt.creation + 1), "old incarnation")


async def test_normal_exit_does_not_kill_linked() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            proc.spawn_link(crasher, NORMAL)
            peer = proc.spawn_link(crasher, Atom("boom"))
            proc.trap_exit = True
            proc.send(peer, "go")
            return await proc.receive(timeout=5)

        async def outer(proc: Process) -> object:
            return await body(proc)

        msg = await rt.run(outer)
        assert msg[0] == EXIT and msg[2] == Atom("boom")


async def test_abnormal_exit_propagates_through_links() -> None:
    async with Runtime() as rt:

        async def middle(proc: Process, parent: Pid) -> None:
            child = proc.spawn_link(crasher, Atom("boom"))
            proc.send(parent, ("child", child))
            await proc.receive(lambda m: False)

        async def body(proc: Process) -> object:
            proc.trap_exit = True
            mid = proc.spawn_link(middle, proc.pid)
            _, child = await proc.receive(pattern(("child", ANY)))
            proc.send(child, "go")
            msg = await proc.receive(pattern((EXIT, ANY, ANY)), timeout=5)
            return msg, mid

        msg, mid = await rt.run(body)
        assert msg == (EXIT, mid, Atom("boom"))


async def test_kill_is_untrappable_and_becomes_killed() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            proc.trap_exit = True
            victim = proc.spawn_link(trapper)
            await asyncio.sleep(0)
            proc.exit(victim, KILL)
            return await proc.receive(timeout=5), victim

        msg, victim = await rt.run(body)
        assert msg == (EXIT, victim, KILLED)


async def test_exit_kill_from_link_is_an_ordinary_reason() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            proc.trap_exit = True
            a = proc.spawn_link(crasher, KILL)  # exits itself with reason kill
            proc.send(a, "go")
            return await proc.receive(timeout=5), a

        msg, a = await rt.run(body)
        assert msg == (EXIT, a, KILL)


async def test_exit2_semantics() -> None:
    async with Runtime() as rt:
        p = rt.spawn(forever)
        await asyncio.sleep(0)
        rt.exit(p, NORMAL)  # ignored by a non-trapping process
        assert rt.is_alive(p)
        rt.exit(p, Atom("bye"))
        assert not rt.is_alive(p)
        assert rt.process(p) is None

        t = rt.spawn(trapper)
        await asyncio.sleep(0)
        rt.exit(t, Atom("bye"))
        assert rt.is_alive(t)
        assert rt.process(t).messages() == [(EXIT, rt.system_pid, Atom("bye"))]  # type: ignore[union-attr]
        rt.exit(t, KILL)

        async def suicide(proc: Process) -> None:
            proc.exit(proc.pid, NORMAL)  # exit(self(), normal) kills a non-trapping caller
            await proc.receive()

        s = rt.spawn(suicide)
        assert await rt.join(s, 5) == NORMAL


async def test_link_to_dead_pid_gives_noproc() -> None:
    async with Runtime() as rt:
        dead = rt.spawn(forever)
        rt.exit(dead, KILL)

        async def trapping(proc: Process) -> object:
            proc.trap_exit = True
            proc.link(dead)
            return await proc.receive(timeout=5)

        assert await rt.run(trapping) == (EXIT, dead, NOPROC)

        async def plain(proc: Process) -> None:
            proc.link(dead)
            await proc.receive()

        assert await rt.join(rt.spawn(plain), 5) == NOPROC


async def test_unlink_stops_propagation() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            c = proc.spawn_link(crasher, Atom("boom"))
            proc.unlink(c)
            proc.send(c, "go")
            await asyncio.sleep(0.01)
            return proc.messages()

        assert await rt.run(body) == []


async def test_monitor_down_and_noproc() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            c = proc.spawn(crasher, Atom("boom"))
            ref = proc.monitor(c)
            proc.send(c, "go")
            down = await proc.receive(is_down(ref), timeout=5)
            ref2 = proc.monitor(c)  # dead now
            down2 = await proc.receive(is_down(ref2), timeout=0)
            ref3 = proc.monitor("nobody")
            down3 = await proc.receive(is_down(ref3), timeout=0)
            return down, down2, down3, c, ref, ref2, ref3

        down, down2, down3, c, ref, ref2, ref3 = await rt.run(body)
        assert down == (DOWN, ref, PROCESS, c, Atom("boom"))
        assert down2 == (DOWN, ref2, PROCESS, c, NOPROC)
        assert down3 == (DOWN, ref3, PROCESS, (Atom("nobody"), rt.node), NOPROC)


async def test_monitor_by_name_names_the_target() -> None:
    async with Runtime() as rt:
        c = rt.spawn(crasher, NORMAL)
        rt.register("svc", c)

        async def body(proc: Process) -> object:
            ref = proc.monitor("svc")
            proc.send(c, "go")
            return await proc.receive(is_down(ref), timeout=5), ref

        down, ref = await rt.run(body)
        assert down == (DOWN, ref, PROCESS, (Atom("svc"), rt.node), NORMAL)


async def test_demonitor_and_flush() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            c = proc.spawn(crasher, NORMAL)
            ref = proc.monitor(c)
            assert proc.demonitor(ref) is True
            proc.send(c, "go")
            await asyncio.sleep(0.01)
            assert proc.messages() == []
            c2 = proc.spawn(crasher, NORMAL)
            ref2 = proc.monitor(c2)
            proc.send(c2, "go")
            await asyncio.sleep(0.01)
            assert len(proc.messages()) == 1
            assert proc.demonitor(ref2, flush=True) is False
            return proc.messages()

        assert await rt.run(body) == []


async def test_spawn_monitor_and_python_exception_reason() -> None:
    async with Runtime() as rt:

        async def bad(proc: Process) -> None:
            raise ValueError("nope")

        async def body(proc: Process) -> object:
            pid, ref = proc.spawn_monitor(bad)
            return await proc.receive(is_down(ref), timeout=5)

        down = await rt.run(body)
        reason = down[4]
        assert reason[:3] == (Atom("python_exception"), b"ValueError", b"nope")
        assert b"Traceback" in reason[3]


async def test_aliases() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            a = proc.alias()
            rt.send(a, "via alias")
            got = await proc.receive(timeout=1)
            assert proc.unalias(a)
            rt.send(a, "dropped")
            return got, proc.messages()

        assert await rt.run(body) == ("via alias", [])


async def test_long_link_chain_dies_without_recursion() -> None:
    async with Runtime() as rt:

        async def link_to(proc: Process, prev: Pid) -> None:
            proc.link(prev)
            await proc.receive(lambda m: False)

        first = prev = rt.spawn(forever)
        pids = []
        for _ in range(5000):
            prev = rt.spawn(link_to, prev)
            pids.append(prev)
        await asyncio.sleep(0)
        rt.exit(first, Atom("boom"))
        assert not any(rt.is_alive(p) for p in pids)


async def test_remote_pids_without_distribution() -> None:
    async with Runtime() as rt:
        remote = Pid(Atom("other@host"), 1, 0, 1)

        async def body(proc: Process) -> object:
            proc.send(remote, "dropped")
            ref = proc.monitor(remote)
            down = await proc.receive(is_down(ref), timeout=5)
            proc.trap_exit = True
            proc.link(remote)
            exit_msg = await proc.receive(timeout=5)
            return down, ref, exit_msg

        down, ref, exit_msg = await rt.run(body)
        assert down == (DOWN, ref, PROCESS, remote, NOCONNECTION)
        assert exit_msg == (EXIT, remote, NOCONNECTION)


async def test_stop_leaves_no_task() -> None:
    rt = Runtime()
    for _ in range(10):
        rt.spawn(forever)
        rt.spawn(trapper)
    await asyncio.sleep(0)
    await rt.stop(timeout=0.05)
    assert rt.processes() == []
    assert all(t.done() for t in rt._tasks)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    gc.collect()
