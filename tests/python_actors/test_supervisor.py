"""Supervisor strategies, intensity, shutdown order, brutal_kill, DynamicSupervisor."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dist_proto.terms import Atom, Pid
from python_actors import (
    ChildSpec,
    DynamicSupervisor,
    GenServer,
    NoReply,
    Ok,
    Process,
    Reply,
    Runtime,
    StartError,
    Supervisor,
    SupervisorError,
    SupervisorSpec,
    call,
)

SHUTDOWN, KILLED, NORMAL = Atom("shutdown"), Atom("killed"), Atom("normal")


class Worker(GenServer):
    """Records its lifecycle in ``events`` (passed in args)."""

    def init(self, args: Any) -> Any:
        events, tag, trap = args
        self.process.trap_exit = trap
        events.append(("start", tag))
        return Ok((events, tag))

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(self.pid, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        if request == "crash":
            raise RuntimeError("crash")
        if request == "quit":
            from python_actors import Stop

            return Stop(NORMAL, state)
        return NoReply(state)

    def terminate(self, reason: Any, state: Any) -> None:
        events, tag = state
        events.append(("stop", tag, reason))


class Stubborn(GenServer):
    """Traps exits and takes forever to terminate: must be killed."""

    def init(self, args: Any) -> Any:
        self.process.trap_exit = True
        return Ok(args)

    async def terminate(self, reason: Any, state: Any) -> None:
        await asyncio.sleep(60)


def spec(events: list[Any], tag: str, trap: bool = True, **kw: Any) -> dict[str, Any]:
    return {"id": tag, "start": (Worker.start_link, ((events, tag, trap),)), **kw}


async def children(sup: Any, rt: Runtime) -> dict[Any, Pid | None]:
    return {c.id: c.pid for c in await Supervisor.which_children(sup, runtime=rt)}


async def wait_until(pred: Any, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.005)):
        if await pred():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


async def test_start_order_and_reverse_shutdown() -> None:
    events: list[Any] = []
    rt = Runtime()
    sup = await Supervisor.start_link([spec(events, t) for t in "abc"], runtime=rt)
    assert events == [("start", "a"), ("start", "b"), ("start", "c")]
    assert list(await children(sup, rt)) == ["a", "b", "c"]
    assert await Supervisor.count_children(sup, runtime=rt) == {
        "specs": 3,
        "active": 3,
        "supervisors": 0,
        "workers": 3,
    }
    await rt.stop()
    assert events[3:] == [("stop", "c", SHUTDOWN), ("stop", "b", SHUTDOWN), ("stop", "a", SHUTDOWN)]


@pytest.mark.parametrize(
    "strategy,restarted",
    [("one_for_one", ["b"]), ("one_for_all", ["a", "b", "c"]), ("rest_for_one", ["b", "c"])],
)
async def test_strategies(strategy: str, restarted: list[str]) -> None:
    events: list[Any] = []
    async with Runtime() as rt:
        sup = await Supervisor.start_link(
            [spec(events, t) for t in "abc"], strategy=strategy, intensity=5, runtime=rt
        )
        before = await children(sup, rt)
        events.clear()
        rt.cast(before["b"], "crash")

        async def changed() -> bool:
            now = await children(sup, rt)
            return all(now[k] is not None and now[k] != before[k] for k in restarted)

        await wait_until(changed)
        after = await children(sup, rt)
        for k in "abc":
            assert (after[k] != before[k]) == (k in restarted)
        stopped = [e[1] for e in events if e[0] == "stop" and e[2] == SHUTDOWN]
        assert stopped == [k for k in reversed(restarted) if k != "b"]


async def test_restart_types() -> None:
    events: list[Any] = []
    async with Runtime() as rt:
        sup = await Supervisor.start_link(
            [
                spec(events, "perm"),
                spec(events, "trans", restart="transient"),
                spec(events, "temp", restart="temporary"),
            ],
            intensity=10,
            runtime=rt,
        )
        first = await children(sup, rt)
        for k in first:
            rt.cast(first[k], "quit")  # normal exits

        async def settled() -> bool:
            now = await children(sup, rt)
            return "temp" not in now and now["perm"] not in (None, first["perm"])

        await wait_until(settled)
        now = await children(sup, rt)
        assert now["trans"] is None  # transient: not restarted after normal
        rt.cast(first["perm"], "x")
        old = now["perm"]
        assert old is not None
        rt.cast(old, "crash")

        async def again() -> bool:
            return (await children(sup, rt))["perm"] not in (None, old)

        await wait_until(again)


async def test_intensity_exceeded_shuts_down() -> None:
    events: list[Any] = []
    async with Runtime() as rt:
        outer_reason: list[Any] = []

        async def owner(proc: Process) -> None:
            proc.trap_exit = True
            sup = await Supervisor.start_link([spec(events, "a"), spec(events, "b")])
            assert sup is not None
            for _ in range(2):  # intensity 1: the second restart in 5 s is too many
                pid = (await Supervisor.which_children(sup))[0].pid
                assert pid is not None
                proc.runtime.cast(pid, "crash")
                await asyncio.sleep(0.02)
            msg = await proc.receive(lambda m: type(m) is tuple and m[0] == Atom("EXIT"), 5)
            outer_reason.append(msg[2])

        await rt.run(owner)
        assert outer_reason == [SHUTDOWN]
        assert ("stop", "b", SHUTDOWN) in events


async def test_brutal_kill_and_shutdown_timeout() -> None:
    async with Runtime() as rt:
        sup = await Supervisor.start_link(
            [
                {"id": "slow", "start": (Stubborn.start_link, (None,)), "shutdown": 0.05},
                ChildSpec("brutal", (Stubborn.start_link, (None,)), shutdown="brutal_kill"),
            ],
            runtime=rt,
        )
        kids = await children(sup, rt)
        mons: dict[str, Any] = {}

        async def watch(proc: Process) -> None:
            for k, p in kids.items():
                mons[k] = proc.monitor(p)
            await Supervisor.terminate_child(sup, "brutal")
            await Supervisor.terminate_child(sup, "slow")
            for k, ref in mons.items():
                msg = await proc.receive(lambda m, r=ref: m[1] == r, 5)
                mons[k] = msg[4]

        await rt.run(watch)
        assert mons == {"slow": KILLED, "brutal": KILLED}
        assert await children(sup, rt) == {"slow": None, "brutal": None}


async def test_child_management_api() -> None:
    events: list[Any] = []
    async with Runtime() as rt:
        sup = await Supervisor.start_link([], runtime=rt)
        pid = await Supervisor.start_child(sup, spec(events, "a"), runtime=rt)
        assert isinstance(pid, Pid)
        with pytest.raises(StartError) as ei:
            await Supervisor.start_child(sup, spec(events, "a"), runtime=rt)
        assert ei.value.reason == (Atom("already_started"), pid)
        with pytest.raises(SupervisorError) as ei2:
            await Supervisor.delete_child(sup, "a", runtime=rt)
        assert ei2.value.reason == Atom("running")
        await Supervisor.terminate_child(sup, "a", runtime=rt)
        assert (await children(sup, rt))["a"] is None
        new = await Supervisor.restart_child(sup, "a", runtime=rt)
        assert isinstance(new, Pid) and new != pid
        await Supervisor.terminate_child(sup, "a", runtime=rt)
        await Supervisor.delete_child(sup, "a", runtime=rt)
        assert await children(sup, rt) == {}
        with pytest.raises(SupervisorError):
            await Supervisor.terminate_child(sup, "a", runtime=rt)


async def test_failed_child_start_fails_supervisor() -> None:
    class Failing(GenServer):
        def init(self, args: Any) -> Any:
            raise ValueError("no")

    events: list[Any] = []
    async with Runtime() as rt:
        with pytest.raises(StartError) as ei:
            await Supervisor.start_link(
                [spec(events, "a"), {"id": "bad", "start": (Failing.start_link, ())}], runtime=rt
            )
        shutdown, (what, cid, _reason) = ei.value.reason
        assert (shutdown, what, cid) == (SHUTDOWN, Atom("failed_to_start_child"), "bad")
        assert events == [("start", "a"), ("stop", "a", SHUTDOWN)]


async def test_module_supervisor_and_nested_tree() -> None:
    events: list[Any] = []

    class Inner(Supervisor):
        def init(self, args: Any) -> Any:
            return SupervisorSpec([spec(events, "leaf")], strategy="one_for_all")

    async with Runtime() as rt:
        top = await Supervisor.start_link([(Inner, None), spec(events, "sibling")], runtime=rt)
        info = await Supervisor.which_children(top, runtime=rt)
        assert [(c.id, c.type) for c in info] == [("Inner", "supervisor"), ("sibling", "worker")]
        await rt.stop()
    assert events[-2:] == [("stop", "sibling", SHUTDOWN), ("stop", "leaf", SHUTDOWN)]


async def test_dynamic_supervisor() -> None:
    events: list[Any] = []
    async with Runtime() as rt:
        sup = await DynamicSupervisor.start_link(max_children=2, runtime=rt)
        a = await DynamicSupervisor.start_child(sup, spec(events, "a"), runtime=rt)
        b = await DynamicSupervisor.start_child(
            sup, spec(events, "b", restart="temporary"), runtime=rt
        )
        with pytest.raises(StartError) as ei:
            await DynamicSupervisor.start_child(sup, spec(events, "c"), runtime=rt)
        assert ei.value.reason == Atom("max_children")
        assert await DynamicSupervisor.count_children(sup, runtime=rt) == {
            "specs": 2,
            "active": 2,
            "supervisors": 0,
            "workers": 2,
        }
        assert a is not None and b is not None
        rt.cast(a, "crash")
        rt.cast(b, "crash")

        async def restarted() -> bool:
            pids = [c.pid for c in await DynamicSupervisor.which_children(sup, runtime=rt)]
            return len(pids) == 1 and pids[0] not in (a, b)

        await wait_until(restarted)
        (child,) = await DynamicSupervisor.which_children(sup, runtime=rt)
        assert child.pid is not None
        await DynamicSupervisor.terminate_child(sup, child.pid, runtime=rt)
        assert await DynamicSupervisor.which_children(sup, runtime=rt) == []
        with pytest.raises(SupervisorError):
            await DynamicSupervisor.terminate_child(sup, child.pid, runtime=rt)


async def test_dynamic_supervisor_extra_arguments_and_intensity() -> None:
    class Echo(GenServer):
        def init(self, args: Any) -> Any:
            return Ok(args)

        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            return Reply(state, state)

        def handle_cast(self, request: Any, state: Any) -> Any:
            raise RuntimeError("die")

    async def start_echo(prefix: str, arg: str) -> Pid | None:
        return await Echo.start_link((prefix, arg))

    async with Runtime() as rt:

        async def owner(proc: Process) -> Any:
            proc.trap_exit = True
            sup = await DynamicSupervisor.start_link(extra_arguments=["pre"], max_restarts=1)
            pid = await DynamicSupervisor.start_child(
                sup, {"id": "e", "start": (start_echo, ("x",))}
            )
            assert await call(pid, "get") == ("pre", "x")
            for _ in range(2):
                (c,) = await DynamicSupervisor.which_children(sup)
                proc.runtime.cast(c.pid, "die")
                await asyncio.sleep(0.02)
            return await proc.receive(lambda m: m[0] == Atom("EXIT"), 5)

        msg = await rt.run(owner)
        assert msg[2] == SHUTDOWN
