"""The handle table's lifetime rules, on a runtime with no node: holders are
monitored, the last holder's death or release frees the object, stale handles give
``{error, {stale_handle, H}}``."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from dist_proto.terms import Atom, Pid, Reference
from python_actors import BadArg, GenServer, Reply, Runtime
from python_actors.handles import (
    HANDLE_TAG,
    KEEPER_NAME,
    StaleHandle,
    catch_stale_handles,
    handle_table,
    is_handle,
)


class Model:
    def __init__(self, slope: float) -> None:
        self.slope = slope


async def eventually(cond: Any, what: str, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached in {timeout}s")
        await asyncio.sleep(0.005)


def holder(rt: Runtime) -> tuple[Pid, asyncio.Event]:
    """A process that lives until its event is set."""
    stop = asyncio.Event()

    async def body(proc: Any) -> None:
        await stop.wait()

    return rt.spawn(body), stop


async def test_the_term_and_resolve() -> None:
    async with Runtime("py@127.0.0.1") as rt:
        table = handle_table(rt)
        pid, stop = holder(rt)
        model = Model(2.0)
        h = table.new(model, holder=pid)
        assert is_handle(h)
        assert h[0] == HANDLE_TAG and type(h[1]) is Reference and h[1].node == rt.node
        assert h[2] == b"tests.python_actors.test_handles.Model"
        assert table.new({}, holder=pid)[2] == b"dict"
        assert table.resolve(h) is model
        assert table.holders(h) == [pid]
        assert rt.whereis(KEEPER_NAME) == table.keeper
        stop.set()


async def test_the_last_holder_dying_frees_the_object() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        pid, stop = holder(rt)
        freed: list[Any] = []
        model = Model(1.0)
        ref = weakref.ref(model)
        h = table.new(model, holder=(pid, Atom("tag")), on_free=freed.append)  # a call's from_
        del model
        assert len(table) == 1
        stop.set()
        await eventually(lambda: len(table) == 0, "freed after the holder's DOWN")
        assert len(freed) == 1 and freed[0].slope == 1.0
        freed.clear()
        gc.collect()
        assert ref() is None, "the table dropped its reference"
        with pytest.raises(StaleHandle) as info:
            table.resolve(h)
        assert info.value.error_term == (Atom("error"), (Atom("stale_handle"), h))


async def test_a_dead_holder_frees_at_once() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        pid, stop = holder(rt)
        stop.set()
        await eventually(lambda: not rt.is_alive(pid), "holder gone")
        table.new(Model(1.0), holder=pid)
        await eventually(lambda: len(table) == 0, "DOWN noproc frees it")


async def test_two_holders_and_explicit_release() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        first, stop_first = holder(rt)
        second, stop_second = holder(rt)
        h = table.new(Model(3.0), holder=first)
        table.acquire(h, second)
        table.acquire(h, second)  # idempotent, as a set
        assert set(table.holders(h)) == {first, second}
        stop_first.set()
        await eventually(lambda: table.holders(h) == [second], "first holder's DOWN")
        assert table.resolve(h).slope == 3.0
        assert table.release(h, first) is False  # not a holder any more
        assert table.release(h, second) is True
        assert len(table) == 0
        assert table.release(h, second) is False  # stale
        with pytest.raises(StaleHandle):
            table.acquire(h, second)
        stop_second.set()


async def test_a_released_holder_is_no_longer_monitored() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        pid, stop = holder(rt)
        other, stop_other = holder(rt)
        a = table.new(Model(1.0), holder=pid)
        b = table.new(Model(2.0), holder=pid)
        table.acquire(b, other)
        assert table.release(a, pid)
        assert table.release(b, pid)
        stop.set()
        await asyncio.sleep(0.05)
        assert table.resolve(b).slope == 2.0 and table.holders(b) == [other]
        stop_other.set()
        await eventually(lambda: len(table) == 0, "freed with the other holder")


async def test_free_from_python_whoever_holds_it() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        pid, stop = holder(rt)
        h = table.new(Model(1.0), holder=pid)
        assert table.free(h) is True
        assert table.free(h) is False
        with pytest.raises(StaleHandle):
            table.resolve(h)
        stop.set()


async def test_not_a_handle() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        for bad in [("x", 1, b""), (HANDLE_TAG, 1, b"Model"),
                    (HANDLE_TAG, Reference(Atom("other@host"), 1, (1, 2, 3)), b"Model")]:
            with pytest.raises(BadArg):
                table.resolve(bad)
        with pytest.raises(BadArg):
            table.new(Model(1.0), holder="nobody")


class Models(GenServer):
    """What a user writes: load returns a handle, predict resolves it."""

    @catch_stale_handles
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        table = handle_table(self.runtime)
        if request[0] == "load":
            return Reply(table.new(Model(request[1]), holder=from_), state + 1)
        _, h, x = request
        return Reply(table.resolve(h).slope * x, state)


class AsyncModels(Models):
    @catch_stale_handles
    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        await asyncio.sleep(0)
        return Models.handle_call.__wrapped__(self, request, from_, state)  # type: ignore[attr-defined]


@pytest.mark.parametrize("server", [Models, AsyncModels])
async def test_a_genserver_replies_stale_handle_instead_of_crashing(server: type[GenServer]) -> None:
    async with Runtime() as rt:
        pid = await server.start(0, runtime=rt)
        table = handle_table(rt)

        async def client(proc: Any) -> Any:
            h = await rt.call(pid, ("load", 4.0))
            assert await rt.call(pid, ("predict", h, 2.5)) == 10.0
            assert table.holders(h) == [proc.pid]
            table.free(h)
            return h, await rt.call(pid, ("predict", h, 2.5))

        h, reply = await rt.run(client)
        assert reply == (Atom("error"), (Atom("stale_handle"), h))
        assert rt.is_alive(pid)


async def test_the_keeper_answers_gen_server_calls() -> None:
    async with Runtime() as rt:
        table = handle_table(rt)
        owner, stop = holder(rt)
        h = table.new(Model(1.0), holder=owner)

        async def client(proc: Any) -> list[Any]:
            replies = [await rt.call(KEEPER_NAME, (Atom("acquire"), h)),
                       await rt.call(KEEPER_NAME, Atom("count")),
                       await rt.call(KEEPER_NAME, (Atom("release"), h)),
                       await rt.call(KEEPER_NAME, (Atom("release"), h)),
                       await rt.call(KEEPER_NAME, (Atom("acquire"), "junk")),
                       await rt.call(KEEPER_NAME, "what")]
            return replies

        ok, err = Atom("ok"), Atom("error")
        assert await rt.run(client) == [ok, 1, ok, (err, Atom("not_holder")),
                                        (err, (Atom("not_a_handle"), "junk")),
                                        (err, (Atom("bad_request"), "what"))]
        stop.set()
        await eventually(lambda: len(table) == 0, "freed")
        assert await rt.call(KEEPER_NAME, (Atom("acquire"), h)) == (err, (Atom("stale_handle"), h))


async def test_runtime_stop_frees_everything_and_a_killed_keeper_too() -> None:
    rt = Runtime()
    async with rt:
        table = handle_table(rt)
        pid, stop = holder(rt)
        freed: list[Any] = []
        table.new(Model(1.0), holder=pid, on_free=freed.append)
        keeper = table.keeper
        assert keeper is not None
        rt.exit(keeper, Atom("kill"))
        await eventually(lambda: len(table) == 0, "a dead keeper's monitors are gone: objects freed")
        assert len(freed) == 1
        table.new(Model(2.0), holder=pid, on_free=freed.append)
        assert table.keeper not in (None, keeper)
        stop.set()
        pid2, _ = holder(rt)
        table.new(Model(3.0), holder=pid2, on_free=freed.append)
    assert len(table) == 0 and len(freed) == 3


async def test_handles_from_a_thread_placed_actor() -> None:
    class Threaded(Models):
        placement = "thread"

    async with Runtime() as rt:
        pid = await Threaded.start(0, runtime=rt)

        async def client(proc: Any) -> Any:
            h = await rt.call(pid, ("load", 2.0))
            return await rt.call(pid, ("predict", h, 3.0)), handle_table(rt).holders(h) == [proc.pid]

        assert await rt.run(client) == (6.0, True)
