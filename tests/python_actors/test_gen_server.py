"""GenServer callbacks, return shapes, wire shapes and the client API (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dist_proto.terms import Atom, ImproperList, Pid
from python_actors import (
    IGNORE,
    CallError,
    Continue,
    Exit,
    GenServer,
    NoReply,
    Ok,
    Process,
    Reply,
    Runtime,
    StartError,
    Stop,
    call,
    cast,
    reply,
    stop,
)
from python_actors.testing import ActorTest

EXIT, DOWN = Atom("EXIT"), Atom("DOWN")
NORMAL, SHUTDOWN, TIMEOUT = Atom("normal"), Atom("shutdown"), Atom("timeout")


class Counter(GenServer):
    def init(self, n: Any) -> Any:
        if n == "ignore":
            return IGNORE
        if n == "stop":
            return Stop(Atom("no_way"))
        if n == "crash":
            raise ValueError("bad init")
        if n == "continue":
            return Ok(0, Continue("boot"))
        return Ok(n)

    def handle_call(self, request: Any, from_: Any, n: Any) -> Any:
        if request == "get":
            return Reply(n, n)
        if request == "later":
            self.process.send_after(0.01, self.pid, ("reply_later", from_))
            return NoReply(n)
        if request == "stop":
            return Stop(NORMAL, n, reply="bye")
        if request == "crash":
            raise RuntimeError("crash in call")
        if request == "sleep":
            return NoReply(n)  # never replies
        if request == "bad":
            return "not a shape"
        return super().handle_call(request, from_, n)

    def handle_cast(self, by: Any, n: Any) -> Any:
        if by == "continue":
            return NoReply(n, Continue("more"))
        return NoReply(n + by)

    def handle_info(self, msg: Any, n: Any) -> Any:
        if type(msg) is tuple and msg[0] == "reply_later":
            self.reply(msg[1], "deferred")
            return NoReply(n)
        if msg == TIMEOUT:
            return NoReply(("timed out", n))
        if msg == "arm":
            return NoReply(n, 0.01)
        return NoReply(n + 100)

    def handle_continue(self, arg: Any, n: Any) -> Any:
        return NoReply(n + (1000 if arg == "more" else 1))


class AsyncServer(GenServer):
    async def init(self, args: Any) -> Any:
        await asyncio.sleep(0)
        self.process.trap_exit = True
        return Ok([])

    async def handle_call(self, request: Any, from_: Any, log: Any) -> Any:
        await asyncio.sleep(0.001)
        if request == "ask":
            # a call made from inside a busy handler (selective receive)
            other = await Counter.start(5)
            value = await call(other, "get")
            return Reply(value, log)
        if request == "log":
            return Reply(log, log)
        return Reply(request, [*log, request])

    async def terminate(self, reason: Any, log: Any) -> None:
        await asyncio.sleep(0)
        self.process.send("watcher", ("terminated", reason, log))


async def test_call_cast_info() -> None:
    async with Runtime() as rt:
        pid = await Counter.start(1, runtime=rt, name="c")
        assert isinstance(pid, Pid)
        cast(pid, 10, runtime=rt)
        rt.send("c", "info")
        assert await call("c", "get", runtime=rt) == 111
        assert await rt.call(pid, "get") == 111


async def test_deferred_reply_and_timeout() -> None:
    async with Runtime() as rt:
        pid = await Counter.start(0, runtime=rt)
        assert await call(pid, "later", runtime=rt) == "deferred"
        with pytest.raises(CallError) as ei:
            await call(pid, "sleep", 0.02, runtime=rt)
        assert ei.value.why == TIMEOUT
        assert ei.value.reason == (TIMEOUT, (Atom("gen_server"), Atom("call"), [pid, "sleep", 20]))
        assert rt.is_alive(pid)


async def test_call_noproc_and_server_death() -> None:
    async with Runtime() as rt:
        with pytest.raises(CallError) as ei:
            await call("nobody", "get", runtime=rt)
        assert ei.value.why == Atom("noproc")
        pid = await Counter.start(0, runtime=rt)
        with pytest.raises(CallError) as ei:
            await call(pid, "crash", runtime=rt)
        why = ei.value.why
        assert why[:3] == (Atom("python_exception"), b"RuntimeError", b"crash in call")
        with pytest.raises(CallError) as ei:
            await call(pid, "get", runtime=rt)
        assert ei.value.why == Atom("noproc")


async def test_stop_with_reply_and_bad_return() -> None:
    async with Runtime() as rt:
        pid = await Counter.start(0, runtime=rt)
        assert await call(pid, "stop", runtime=rt) == "bye"
        assert await rt.join(pid, 5) in (NORMAL, Atom("noproc"))
        pid = await Counter.start(0, runtime=rt)
        with pytest.raises(CallError) as ei:
            await call(pid, "bad", runtime=rt)
        assert ei.value.why == (Atom("bad_return_value"), "not a shape")
        pid = await Counter.start(0, runtime=rt)
        with pytest.raises(CallError) as ei:
            await call(pid, "unknown", runtime=rt)
        assert ei.value.why == (Atom("bad_call"), "unknown")


async def test_init_ignore_stop_crash() -> None:
    async with Runtime() as rt:
        assert await Counter.start("ignore", runtime=rt) is None
        with pytest.raises(StartError) as ei:
            await Counter.start("stop", runtime=rt)
        assert ei.value.reason == Atom("no_way")
        with pytest.raises(StartError) as ei:
            await Counter.start("crash", runtime=rt, name="x")
        assert ei.value.reason[1] == b"ValueError"
        assert rt.whereis("x") is None
        await Counter.start(0, runtime=rt, name="x")
        with pytest.raises(StartError) as ei:
            await Counter.start(0, runtime=rt, name="x")
        assert ei.value.reason == (Atom("already_started"), rt.whereis("x"))
        assert len(rt.processes()) == 1


async def test_start_link_failure_does_not_kill_caller() -> None:
    async with Runtime() as rt:

        async def body(proc: Process) -> object:
            with pytest.raises(StartError):
                await Counter.start_link("stop")
            await asyncio.sleep(0.01)
            return proc.messages()

        assert await rt.run(body) == []


async def test_handle_continue_and_timeout() -> None:
    async with ActorTest(Counter, "continue") as t:
        assert await t.call("get") == 1
        t.cast("continue")
        assert await t.call("get") == 1001
        t.send("arm")
        await asyncio.sleep(0.05)
        assert await t.call("get") == ("timed out", 1001)


async def test_async_callbacks_terminate_and_nested_call() -> None:
    async with Runtime() as rt:

        async def watcher(proc: Process) -> None:
            proc.register("watcher")
            await proc.receive(lambda m: False)

        w = rt.spawn(watcher)
        pid = await AsyncServer.start(runtime=rt)
        results = await asyncio.gather(*(call(pid, i, runtime=rt) for i in range(5)))
        assert results == list(range(5))
        assert await call(pid, "log", runtime=rt) == [0, 1, 2, 3, 4]
        assert await call(pid, "ask", runtime=rt) == 5
        await stop(pid, SHUTDOWN, runtime=rt)
        await asyncio.sleep(0)
        assert rt.process(w).messages() == [("terminated", SHUTDOWN, [0, 1, 2, 3, 4])]  # type: ignore[union-attr]


async def test_parent_exit_runs_terminate_when_trapping() -> None:
    async with ActorTest(AsyncServer) as t:

        async def watcher(proc: Process) -> None:
            proc.register("watcher")
            await proc.receive(lambda m: False)

        w = t.runtime.spawn(watcher)
        t.exit(Atom("bye"))
        assert await t.exit_reason() == Atom("bye")
        assert t.runtime.process(w).messages() == [("terminated", Atom("bye"), [])]  # type: ignore[union-attr]


async def test_stop_api() -> None:
    async with Runtime() as rt:
        pid = await Counter.start(0, runtime=rt)
        await stop(pid, runtime=rt)
        assert not rt.is_alive(pid)
        with pytest.raises(Exit) as ei:
            await stop(pid, runtime=rt)
        assert ei.value.reason == Atom("noproc")


async def test_wire_shapes() -> None:
    """A raw '$gen_call' with a plain ref tag and with an alias tag, as BEAM sends them."""
    async with Runtime() as rt:
        pid = await Counter.start(7, runtime=rt)

        async def body(proc: Process) -> object:
            ref = rt.make_ref()
            proc.send(pid, (Atom("$gen_call"), (proc.pid, ref), "get"))
            plain = await proc.receive(timeout=5)
            alias = proc.alias()
            tag = ImproperList((Atom("alias"),), alias)
            proc.send(pid, (Atom("$gen_call"), (proc.pid, tag), "get"))
            via_alias = await proc.receive(timeout=5)
            proc.send(pid, (Atom("$gen_cast"), 1))
            proc.send(pid, (Atom("system"), (proc.pid, ref), Atom("get_state")))
            state = await proc.receive(timeout=5)
            return plain, ref, via_alias, tag, state

        plain, ref, via_alias, tag, state = await rt.run(body)
        assert plain == (ref, 7)
        assert via_alias == (tag, 7)
        assert state == (ref, (Atom("ok"), 8))  # sys's modern shape for a Python caller


async def test_reply_helper_and_call_from_process() -> None:
    class Deferred(GenServer):
        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            reply(from_, request * 2)
            return NoReply(state)

    async with Runtime() as rt:
        pid = await Deferred.start(runtime=rt)

        async def body(proc: Process) -> object:
            return await call(pid, 21)

        assert await rt.run(body) == 42


async def test_calling_self() -> None:
    class Selfish(GenServer):
        async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            try:
                await call(self.pid, "x")
            except CallError as err:
                return Reply(err.why, state)
            return Reply(None, state)

    async with Runtime() as rt:
        pid = await Selfish.start(runtime=rt)
        assert await call(pid, "go", runtime=rt) == Atom("calling_self")


async def test_testing_helper_captures_sends_and_exit() -> None:
    class Notifier(GenServer):
        def handle_cast(self, msg: Any, state: Any) -> Any:
            self.process.send(self.process.parent, ("note", msg))
            if msg == "quit":
                return Stop(Atom("done"), state)
            return NoReply(state)

    async with ActorTest(Notifier, {"k": 1}) as t:
        assert t.state == {"k": 1}
        t.cast("a")
        assert await t.sent_to(t.tester.pid) == [("note", "a")]
        t.cast("quit")
        assert await t.exit_reason() == Atom("done")
        assert (EXIT, t.pid, Atom("done")) in t.messages()
        assert not t.alive


async def test_runtime_stop_runs_terminate() -> None:
    terminated: list[Any] = []

    class T(GenServer):
        def terminate(self, reason: Any, state: Any) -> None:
            terminated.append((state, reason))

    rt = Runtime()
    for i in range(3):
        await T.start(i, runtime=rt)
    await rt.stop()
    assert terminated == [(2, SHUTDOWN), (1, SHUTDOWN), (0, SHUTDOWN)]
