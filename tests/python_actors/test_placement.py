"""Placements: where callbacks run, and what blocking code and ``kill`` do there.

These tests use events, not clocks: an actor blocks on a ``threading.Event`` that
the test sets only after checking what must happen *while* it is blocked. If the
blocked actor held the event loop, the check would never complete and the test
would fail on its timeout.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from dist_proto.terms import Atom
from python_actors import (
    CallError,
    GenServer,
    NoReply,
    Ok,
    Reply,
    Runtime,
    call,
    call_blocking,
    run_blocking,
)
from python_actors.threads import Killed

DOWN, EXIT = Atom("DOWN"), Atom("EXIT")
KILL, KILLED = Atom("kill"), Atom("killed")


class Blocker(GenServer):
    """``block`` waits on the event passed to init (a blocking call, as a C library would)."""

    def init(self, args: Any) -> Any:
        return Ok(args)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "block":
            state["entered"].set()
            try:
                state["release"].wait(30)  # in C: a kill is seen when this returns
            except Killed:
                state["interrupted"].set()
                raise
            state["finished"].set()
            return Reply("late", state)
        if request == "where":
            return Reply(threading.get_ident(), state)
        return Reply(request, state)


class Fast(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(("fast", request), state)


def _events() -> dict[str, threading.Event]:
    names = ("entered", "release", "finished", "interrupted")
    return {name: threading.Event() for name in names}


async def _wait(event: threading.Event, timeout: float = 10) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "event not set in time"


async def test_blocking_sync_handler_does_not_stall_other_actors() -> None:
    ev = _events()
    async with Runtime() as rt:
        blocker = await Blocker.start(ev, runtime=rt)
        fast = await Fast.start(runtime=rt)
        pending = asyncio.ensure_future(call(blocker, "block", None, runtime=rt))
        await _wait(ev["entered"])
        for i in range(20):  # answered while the blocker is still inside its callback
            assert await call(fast, i, 5, runtime=rt) == ("fast", i)
        assert not ev["finished"].is_set()
        ev["release"].set()
        assert await pending == "late"


async def test_auto_runs_def_callbacks_on_threads_and_async_on_the_loop() -> None:
    class Mixed(GenServer):
        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            return Reply(threading.get_ident(), state)

        async def handle_cast(self, request: Any, state: Any) -> Any:
            request.append(threading.get_ident())
            return NoReply(state)

    async with Runtime() as rt:
        loop_thread = threading.get_ident()
        pid = await Mixed.start(runtime=rt)
        assert await call(pid, "x", runtime=rt) != loop_thread
        seen: list[int] = []
        rt.cast(pid, seen)
        await call(pid, "sync", runtime=rt)  # the cast was handled before this call
        assert seen == [loop_thread]


async def test_loop_placement_runs_on_the_loop_and_thread_placement_on_one_thread() -> None:
    class OnLoop(Blocker):
        placement = "loop"

    class OwnThread(Blocker):
        placement = "thread"

    async with Runtime() as rt:
        loop_thread = threading.get_ident()
        on_loop = await OnLoop.start(_events(), runtime=rt)
        assert await call(on_loop, "where", runtime=rt) == loop_thread
        own = await OwnThread.start(_events(), runtime=rt)
        threads = {await call(own, "where", runtime=rt) for _ in range(10)}
        assert len(threads) == 1 and loop_thread not in threads


async def test_unknown_placement_is_refused() -> None:
    class Odd(GenServer):
        placement = "gpu"

    async with Runtime() as rt:
        with pytest.raises(ValueError, match="placement"):
            await Odd.start(runtime=rt)


async def test_kill_takes_effect_at_once_while_the_callback_is_blocked() -> None:
    ev = _events()
    async with Runtime() as rt:
        pid = await Blocker.start(ev, runtime=rt, name="stuck")

        async def watcher(proc: Any) -> Any:
            ref = proc.monitor(pid)
            caller = proc.spawn(_caller, pid)
            caller_ref = proc.monitor(caller)
            await _wait(ev["entered"])
            proc.exit(pid, KILL)
            down = await proc.receive(lambda m: m[0] == DOWN and m[1] == ref, timeout=5)
            # the name is free at once, while the callback is still blocked
            assert rt.whereis("stuck") is None
            assert not ev["finished"].is_set()
            caller_down = await proc.receive(lambda m: m[0] == DOWN and m[1] == caller_ref, timeout=5)
            return down[4], caller_down[4]

        reason, caller_reason = await rt.run(watcher)
        assert reason == KILLED
        # the caller's gen_server:call exited with killed: it never got the late reply
        assert caller_reason[0] == KILLED
        replacement = await Blocker.start(_events(), runtime=rt, name="stuck")
        assert await call("stuck", "hello", runtime=rt) == "hello"
        ev["release"].set()
        await _wait(ev["interrupted"])  # the killed callback went no further
        assert not ev["finished"].is_set()
        assert rt.is_alive(replacement)


async def _caller(proc: Any, pid: Any) -> None:
    await call(pid, "block", None)


async def test_kill_interrupts_pure_python_code() -> None:
    entered, interrupted = threading.Event(), threading.Event()

    class Spinner(GenServer):
        def handle_cast(self, request: Any, state: Any) -> Any:
            entered.set()
            try:
                while True:
                    pass
            except Killed:
                interrupted.set()
                raise

    async with Runtime() as rt:
        pid = await Spinner.start(runtime=rt)
        rt.cast(pid, "spin")
        await _wait(entered)
        rt.exit(pid, KILL)
        assert not rt.is_alive(pid)
        await _wait(interrupted)


async def test_sends_from_a_thread_keep_their_order_and_stop_at_kill() -> None:
    release = threading.Event()

    class Chatty(GenServer):
        def handle_call(self, dest: Any, from_: Any, state: Any) -> Any:
            for i in range(100):
                self.process.send(dest, i)
            self.reply(from_, "done")
            release.wait(30)
            self.process.send(dest, "after kill")  # dropped: the process is dead by then
            return NoReply(state)

    async with Runtime() as rt:
        pid = await Chatty.start(runtime=rt)

        async def client(proc: Any) -> list[Any]:
            assert await call(pid, proc.pid, None) == "done"
            got = [await proc.receive(timeout=5) for _ in range(100)]
            proc.exit(pid, KILL)
            release.set()
            await asyncio.sleep(0.2)
            assert proc.messages() == []
            return got

        assert await rt.run(client) == list(range(100))


async def test_links_and_trap_exit_with_thread_callbacks() -> None:
    terminated = threading.Event()

    class Trapper(GenServer):
        def init(self, args: Any) -> Any:
            self.process.trap_exit = True
            return Ok(None)

        def handle_info(self, msg: Any, state: Any) -> Any:
            if msg[0] == EXIT:
                return NoReply(msg[2])
            return NoReply(state)

        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            return Reply(state, state)

        def terminate(self, reason: Any, state: Any) -> None:
            assert threading.current_thread() is not threading.main_thread()
            terminated.set()

    ev = _events()
    async with Runtime() as rt:
        trapper = await Trapper.start(runtime=rt)
        blocker = await Blocker.start(ev, runtime=rt)

        async def link_both(proc: Any) -> None:
            rt._link(rt.process(trapper), blocker)  # noqa: SLF001 - link the two actors

        await rt.run(link_both)
        rt.cast(blocker, "ignored")  # a cast Blocker does not handle: it stops with bad_cast
        await asyncio.sleep(0)
        deadline = time.monotonic() + 5
        while await call(trapper, "state", runtime=rt) is None:
            assert time.monotonic() < deadline, "no EXIT reached the trapping actor"
            await asyncio.sleep(0.01)
        reason = await call(trapper, "state", runtime=rt)
        assert reason[0] == Atom("bad_cast")
    assert terminated.is_set()


async def test_run_blocking_in_an_async_actor_and_kill_interrupts_it() -> None:
    entered, interrupted = threading.Event(), threading.Event()

    def spin() -> None:
        entered.set()
        try:
            while True:
                pass
        except Killed:
            interrupted.set()
            raise

    async with Runtime() as rt:
        loop_thread = threading.get_ident()

        async def body(proc: Any) -> None:
            assert await run_blocking(threading.get_ident) != loop_thread
            await run_blocking(spin)

        pid = rt.spawn(body)
        await _wait(entered)
        rt.exit(pid, KILL)
        await _wait(interrupted)
        assert not rt.is_alive(pid)


async def test_call_blocking_from_a_thread_callback() -> None:
    class Front(GenServer):
        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            return Reply(call_blocking(state, request, 5), state)

    async with Runtime() as rt:
        fast = await Fast.start(runtime=rt)
        front = await Front.start(fast, runtime=rt)
        assert await call(front, "q", runtime=rt) == ("fast", "q")


async def test_blocking_init_does_not_hold_the_loop_and_times_out() -> None:
    release = threading.Event()

    class SlowInit(GenServer):
        def init(self, args: Any) -> Any:
            release.wait(30)
            return Ok(args)

    async with Runtime() as rt:
        fast = await Fast.start(runtime=rt)
        starting = asyncio.ensure_future(SlowInit.start(1, runtime=rt))
        assert await call(fast, 1, runtime=rt) == ("fast", 1)
        release.set()
        assert rt.is_alive(await starting)
        release.clear()
        from python_actors import StartError

        with pytest.raises(StartError) as err:
            await SlowInit.start(2, runtime=rt, timeout=0.2)
        assert err.value.reason == Atom("timeout")
        release.set()


async def test_watchdog_names_the_actor_that_holds_the_loop(caplog: pytest.LogCaptureFixture) -> None:
    class Hog(GenServer):
        placement = "loop"

        def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
            time.sleep(0.5)  # blocks the loop: what the watchdog exists for
            return Reply("ok", state)

    caplog.set_level(logging.WARNING, "python_actors.watchdog")
    async with Runtime(watchdog=0.1) as rt:
        pid = await Hog.start(runtime=rt, name="hog")
        assert await call(pid, "x", runtime=rt) == "ok"
        await asyncio.sleep(0.2)
        dog = rt.service("watchdog", lambda: None)
        stalls = [s for s in dog.stalls if s.pid == pid]
        assert stalls, dog.stalls
        assert stalls[0].name == Atom("hog")
        assert stalls[0].behaviour.endswith("Hog")
        assert "time.sleep" in stalls[0].stack
    assert any("hog" in r.getMessage() for r in caplog.records)


async def test_call_to_a_killed_blocked_server_fails_with_killed() -> None:
    ev = _events()
    async with Runtime() as rt:
        pid = await Blocker.start(ev, runtime=rt)
        pending = asyncio.ensure_future(call(pid, "block", None, runtime=rt))
        await _wait(ev["entered"])
        rt.exit(pid, KILL)
        with pytest.raises(CallError) as err:
            await asyncio.wait_for(pending, 5)
        assert err.value.why == KILLED
        ev["release"].set()


async def test_actor_threads_run_settles_the_waiter_from_the_thread() -> None:
    """ActorThreads.run (what a thread callback's hop uses): result, exception, and a
    waiter cancelled before its job starts cancels the job."""
    from python_actors.threads import ActorThreads

    pool = ActorThreads(name="run-test", max_threads=1)
    try:
        loop_thread = threading.get_ident()
        job = pool.run(threading.get_ident)
        assert await job.waiter != loop_thread  # ran on the pool's thread
        failing = pool.run(int, "not a number")
        with pytest.raises(ValueError):
            await failing.waiter
        gate = threading.Event()
        blocker = pool.run(gate.wait, 5)  # holds the only thread
        queued = pool.run(lambda: "ran")
        queued.waiter.cancel()
        await asyncio.sleep(0)  # the waiter's done-callbacks run in the next loop pass
        gate.set()
        assert await blocker.waiter is True
        await asyncio.sleep(0.05)
        assert queued.future.cancelled()  # never ran
    finally:
        pool.close()
