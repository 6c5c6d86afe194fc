"""The inline local call (python_actors/inline_call.py): a call to a ready server on
the loop runs its handler at once, in the caller's task, with the semantics of an
ordinary call. Every test first shows which path a call took (the handler records
the asyncio task it ran in: the caller's task when inline, none when the scheduler
ran it), so none of them passes by falling back to the ordinary path."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from dist_proto.terms import Atom
from python_actors import (
    CallError,
    Continue,
    GenServer,
    NoReply,
    Ok,
    Process,
    Reply,
    Runtime,
    Stop,
    call,
    cast,
    current_process,
    reply,
)
from python_actors import sys_protocol as sysp

DOWN, EXIT = Atom("DOWN"), Atom("EXIT")
KILL, KILLED, NORMAL, TIMEOUT = Atom("kill"), Atom("killed"), Atom("normal"), Atom("timeout")


class Ready(GenServer):
    """A loop-placement server that records, per call, where its handler ran."""

    placement = "loop"

    def init(self, args: Any) -> Any:
        self.runs: list[tuple[Any, Any, Any]] = []
        return Ok([])

    def handle_call(self, request: Any, from_: Any, log: list[Any]) -> Any:
        self.runs.append((request, current_process().pid, asyncio.current_task()))
        if request == "log":
            return Reply(list(log), log)
        if request == "crash":
            raise RuntimeError("crash in an inline call")
        if request == "kill_self":
            self.process.exit(self.process.pid, KILL)
            return Reply("too late", log)
        if request == "stop":
            return Stop(NORMAL, log, reply="bye")
        if request == "later":
            self.process.send_after(0.01, self.process.pid, ("answer", from_))
            return NoReply(log)
        if request == "never":
            return NoReply(log)
        if type(request) is tuple and request[0] == "monitors_of":
            info = self.process.runtime.process(request[1])
            assert info is not None
            return Reply(dict(info.monitors or {}), log)
        if request == "reply_then_crash":
            reply(from_, "first")
            raise RuntimeError("after the reply")
        if type(request) is tuple and request[0] == "kill_caller":
            self.process.exit(request[1], KILL)
            return Reply("unreachable", log)
        if request == "continue":
            return Reply("continued", log, Continue("more"))
        return Reply(request, log)

    def handle_cast(self, msg: Any, log: list[Any]) -> Any:
        return NoReply([*log, msg])

    def handle_info(self, msg: Any, log: list[Any]) -> Any:
        if type(msg) is tuple and msg[0] == "answer":
            reply(msg[1], "answered")
        return NoReply(log)

    def handle_continue(self, arg: Any, log: list[Any]) -> Any:
        return NoReply([*log, ("continued", arg)])

    def terminate(self, reason: Any, log: list[Any]) -> Any:
        if self.process.runtime.whereis("observer") is not None:
            self.process.send(Atom("observer"), ("terminated", reason))


def _server(rt: Runtime, pid: Any) -> Ready:
    proc = rt.process(pid)
    assert proc is not None
    beh: Ready = proc.behaviour
    return beh


def _ran_inline(server: Ready, caller_task: Any) -> bool:
    return bool(server.runs) and server.runs[-1][2] is caller_task


async def _observer(proc: Process, out: list[Any]) -> None:
    proc.register("observer")
    while True:
        out.append(await proc.receive())


async def test_a_ready_server_runs_the_call_in_the_callers_task_as_itself() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            value = await call(pid, "hello")
            return value, asyncio.current_task()

        value, task = await rt.run(client)
        assert value == "hello"
        request, self_pid, ran_in = server.runs[-1]
        assert ran_in is task  # inline: no trip through the scheduler
        assert self_pid == pid  # current_process() inside the handler is the server
        assert rt.process(pid).reductions >= 1  # type: ignore[union-attr]
        # the monitor and the alias of the call are gone, nothing is left queued
        assert not rt.process(pid).watchers  # type: ignore[union-attr]


async def test_a_message_sent_before_the_call_is_handled_first() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            cast(pid, "first")
            cast(pid, "second")
            queued_call = await call(pid, "log")  # mailbox not empty: the ordinary path
            assert not _ran_inline(server, asyncio.current_task())
            ready_call = await call(pid, "log")  # idle and empty again: inline
            assert _ran_inline(server, asyncio.current_task())
            return queued_call, ready_call

        assert await rt.run(client) == (["first", "second"], ["first", "second"])


async def test_a_crash_in_an_inline_call_ends_the_server_not_the_caller() -> None:
    async with Runtime() as rt:
        seen: list[Any] = []
        rt.spawn(_observer, seen)
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def watcher(proc: Process) -> Any:
            proc.trap_exit = True
            proc.link(pid)
            ref = proc.monitor(pid)
            down = await proc.receive(lambda m: m[0] == DOWN)
            exit_ = await proc.receive(lambda m: m[0] == EXIT)
            return ref, down, exit_

        watching = asyncio.ensure_future(rt.run(watcher))
        await asyncio.sleep(0.01)

        async def client(proc: Process) -> Any:
            with pytest.raises(CallError) as ei:
                await call(pid, "crash")
            assert _ran_inline(server, asyncio.current_task())
            return ei.value.why, proc.is_alive()

        why, caller_alive = await rt.run(client)
        assert why[:3] == (Atom("python_exception"), b"RuntimeError", b"crash in an inline call")
        assert caller_alive
        ref, down, exit_ = await asyncio.wait_for(watching, 5)
        assert down[1] == ref and down[4] == why  # monitors fire with the server's reason
        assert exit_ == (EXIT, pid, why)  # and links
        assert not rt.is_alive(pid)
        await asyncio.sleep(0.01)
        assert ("terminated", why) in seen  # terminate ran first, as for any crash


async def test_a_reply_sent_before_the_crash_wins() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            value = await call(pid, "reply_then_crash")
            assert _ran_inline(server, asyncio.current_task())
            return value

        assert await rt.run(client) == "first"
        assert not rt.is_alive(pid)


async def test_a_server_killed_during_an_inline_call_gives_the_caller_killed() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            with pytest.raises(CallError) as ei:
                await call(pid, "kill_self")
            assert _ran_inline(server, asyncio.current_task())
            return ei.value.why

        assert await rt.run(client) == KILLED  # the DOWN came before the dead server's reply
        assert not rt.is_alive(pid)


async def test_a_caller_killed_by_the_handler_dies_at_once() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)
        after: list[Any] = []

        async def client(proc: Process) -> None:
            await call(pid, ("kill_caller", proc.pid))
            after.append("the caller went on")

        victim = rt.spawn(client)
        assert await rt.join(victim, 5) == KILLED
        assert after == []
        assert server.runs[-1][0][0] == "kill_caller"
        assert server.runs[-1][2] is not None  # it ran inline, in the victim's task
        assert rt.is_alive(pid)  # the server is fine and still serves
        assert await rt.call(pid, "ping") == "ping"


async def test_a_suspended_server_is_not_run_inline() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)
        await sysp.suspend(pid, runtime=rt)
        before = len(server.runs)

        async def client(proc: Process) -> Any:
            return await call(pid, "while suspended", None)

        pending = asyncio.ensure_future(rt.run(client))
        await asyncio.sleep(0.05)
        assert not pending.done() and len(server.runs) == before
        await sysp.resume(pid, runtime=rt)
        assert await asyncio.wait_for(pending, 5) == "while suspended"
        assert server.runs[-1][2] is None  # handled by the scheduler after resume


async def test_a_deferred_reply_is_waited_for_and_a_timeout_is_a_timeout() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            answered = await call(pid, "later", 5.0)
            assert _ran_inline(server, asyncio.current_task())
            with pytest.raises(CallError) as ei:
                await call(pid, "never", 0.05)
            assert _ran_inline(server, asyncio.current_task())
            return answered, ei.value.why, proc.messages()

        answered, why, left = await rt.run(client)
        assert answered == "answered"
        assert why == TIMEOUT
        assert left == []
        assert rt.is_alive(pid)


async def test_an_inline_call_answered_at_once_makes_no_monitor() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            during = await call(pid, ("monitors_of", proc.pid))
            assert _ran_inline(server, asyncio.current_task())
            return during, dict(proc.monitors or {}), dict(rt.process(pid).watchers or {})  # type: ignore[union-attr]

        during, after, watchers = await rt.run(client)
        assert during == {}  # the handler ran while the caller waited: no monitor was needed
        assert after == {} and watchers == {}


async def test_a_deferred_inline_call_is_monitored_and_sees_the_server_die() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def killer(proc: Process) -> None:
            await asyncio.sleep(0.02)
            proc.exit(pid, KILL)

        async def client(proc: Process) -> Any:
            rt.spawn(killer)
            with pytest.raises(CallError) as ei:
                await call(pid, "never", 5.0)
            assert _ran_inline(server, asyncio.current_task())
            return ei.value.why, dict(proc.monitors or {}), proc.messages()

        why, monitors, left = await rt.run(client)
        assert why == KILLED  # the monitor made after the handler returned saw the kill
        assert monitors == {} and left == []


async def test_a_zero_timeout_never_runs_inline() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        server = _server(rt, pid)

        async def client(proc: Process) -> Any:
            with pytest.raises(CallError) as ei:
                await call(pid, "now?", 0)
            return ei.value.why

        assert await rt.run(client) == TIMEOUT  # as OTP: after 0 sees no reply
        await asyncio.sleep(0.01)
        assert server.runs[-1][0] == "now?" and server.runs[-1][2] is None


async def test_stop_with_reply_and_continue_actions_keep_their_order() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)

        async def client(proc: Process) -> Any:
            ref = proc.monitor(pid)
            first = await call(pid, "continue")
            log = await call(pid, "log")  # handle_continue ran before this call
            bye = await call(pid, "stop")
            down = await proc.receive(lambda m: m[0] == DOWN, 5)
            return first, log, bye, down == (DOWN, ref, Atom("process"), pid, NORMAL)

        assert await rt.run(client) == ("continued", [("continued", "more")], "bye", True)


async def test_a_caller_looping_over_inline_calls_still_lets_the_loop_run() -> None:
    async with Runtime() as rt:
        pid = await Ready.start(runtime=rt)
        ticks: list[int] = []

        async def ticker() -> None:
            while True:
                ticks.append(1)
                await asyncio.sleep(0)

        tick_task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)

        async def client(proc: Process) -> int:
            before = len(ticks)
            for i in range(1000):
                await call(pid, i)
            return len(ticks) - before

        try:
            assert await rt.run(client) > 0  # other tasks ran between the calls
        finally:
            tick_task.cancel()


class Threaded(GenServer):
    """Default placement with plain callbacks: handle_call runs on a pool thread."""

    def init(self, args: Any) -> Any:
        return Ok(None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(threading.get_ident(), state)


async def test_a_server_whose_handler_runs_on_a_thread_is_never_run_on_the_loop() -> None:
    async with Runtime() as rt:
        pid = await Threaded.start(runtime=rt)

        async def client(proc: Process) -> Any:
            return [await call(pid, "where") for _ in range(5)]

        idents = await rt.run(client)
        assert threading.get_ident() not in idents
