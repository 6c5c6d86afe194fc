"""python_actors.Pool: checkout/checkin, queued callers, timeouts, stuck and crashed workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dist_proto.terms import Atom, Pid
from python_actors import GenServer, NotInProcess, Ok, Pool, PoolCallError, Reply, Runtime, stop

TIMEOUT, KILLED, DOWN = Atom("timeout"), Atom("killed"), Atom("DOWN")
POOL_CALL = (Atom("beam_bridge_pool"), Atom("call"))


class Worker(GenServer):
    """``whoami`` -> own pid; ``("sleep", s)`` awaits; ``"crash"`` raises; else echoes."""

    def init(self, args: Any) -> Any:
        return Ok(args)

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == "whoami":
            return Reply(self.pid, state)
        if request == "crash":
            raise RuntimeError("asked to crash")
        if type(request) is tuple and request[0] == "sleep":
            await asyncio.sleep(request[1])
            return Reply("slept", state)
        return Reply(request, state)


@pytest.fixture
async def rt() -> AsyncIterator[Runtime]:
    async with Runtime() as runtime:
        yield runtime


async def start_pool(rt: Runtime, size: int, **kw: Any) -> Pid:
    pid = await Pool.start_link(Worker, size=size, runtime=rt, **kw)
    assert pid is not None
    return pid


async def wait_for(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_calls_spread_over_workers(rt: Runtime) -> None:
    pool = await start_pool(rt, 3, name="spread")
    answered = [await Pool.call("spread", "whoami", runtime=rt) for _ in range(9)]
    workers = await Pool.workers(pool, runtime=rt)
    assert len(set(workers)) == 3 and set(answered) == set(workers)
    assert await Pool.status(pool, runtime=rt) == {"size": 3, "workers": 3, "idle": 3, "busy": 0, "waiting": 0}
    assert await Pool.call(pool, ("echo", 1), runtime=rt) == ("echo", 1)


async def test_lifo_reuses_the_last_worker(rt: Runtime) -> None:
    pool = await start_pool(rt, 3, strategy="lifo")
    answered = {await Pool.call(pool, "whoami", runtime=rt) for _ in range(5)}
    assert len(answered) == 1


class Holder:
    """A process that checks out ``n`` workers and gives them back one by one on request."""

    def __init__(self, rt: Runtime, pool: Pid, n: int) -> None:
        self.held: list[Pid] = []
        self.ready = asyncio.Event()
        self.release = asyncio.Queue[Pid]()

        async def body(proc: Any) -> None:
            for _ in range(n):
                self.held.append(await Pool.checkout(pool))
            self.ready.set()
            while True:
                Pool.checkin(pool, await self.release.get())

        self.pid = rt.spawn(body)


async def test_callers_queue_when_all_workers_are_busy(rt: Runtime) -> None:
    pool = await start_pool(rt, 2)
    holder = Holder(rt, pool, 2)
    await holder.ready.wait()
    w1, w2 = holder.held
    queued = asyncio.create_task(Pool.call(pool, "whoami", 5.0, runtime=rt))
    await wait_for(lambda: _waiting(pool, rt, 1))
    assert (await Pool.status(pool, runtime=rt))["busy"] == 2
    holder.release.put_nowait(w2)
    assert await queued == w2 != w1
    holder.release.put_nowait(w1)
    await wait_for(lambda: _idle(pool, rt, 2))


async def _waiting(pool: Pid, rt: Runtime, n: int) -> bool:
    return (await Pool.status(pool, runtime=rt))["waiting"] == n


async def test_waiting_past_the_timeout(rt: Runtime) -> None:
    pool = await start_pool(rt, 1)
    before = await Pool.workers(pool, runtime=rt)
    holder = Holder(rt, pool, 1)
    await holder.ready.wait()
    with pytest.raises(PoolCallError) as err:
        await Pool.call(pool, "whoami", 0.1, runtime=rt)
    assert err.value.reason == (TIMEOUT, (*POOL_CALL, [pool, "whoami", 100]))
    assert err.value.why == TIMEOUT
    assert (await Pool.status(pool, runtime=rt))["waiting"] == 0
    holder.release.put_nowait(holder.held[0])
    await wait_for(lambda: _idle(pool, rt, 1))
    assert await Pool.workers(pool, runtime=rt) == before  # never asked, never killed
    assert await Pool.call(pool, "whoami", runtime=rt) == holder.held[0]


async def test_checkout_needs_a_process(rt: Runtime) -> None:
    pool = await start_pool(rt, 1)
    with pytest.raises(NotInProcess):
        await Pool.checkout(pool)


async def test_stuck_worker_is_killed_and_replaced(rt: Runtime) -> None:
    pool = await start_pool(rt, 2)
    before = await Pool.workers(pool, runtime=rt)

    async def body(proc: Any) -> Any:
        refs = {proc.monitor(w): w for w in before}
        with pytest.raises(PoolCallError) as err:
            await Pool.call(pool, ("sleep", 30), 0.2)
        down = await proc.receive(lambda m: type(m) is tuple and m[0] == DOWN and m[1] in refs, timeout=2)
        return err.value, refs[down[1]], down[4]

    err, stuck, reason = await rt.run(body)
    assert err.reason == (TIMEOUT, (*POOL_CALL, [pool, ("sleep", 30), 200]))
    assert reason == KILLED and not rt.is_alive(stuck)
    await wait_for(lambda: _replaced(pool, rt, before))
    after = await Pool.workers(pool, runtime=rt)
    assert stuck not in after and len(after) == 2
    assert {await Pool.call(pool, "whoami", runtime=rt) for _ in range(4)} == set(after)


async def _replaced(pool: Pid, rt: Runtime, before: list[Pid]) -> bool:
    now = await Pool.workers(pool, runtime=rt)
    return len(now) == len(before) and set(now) != set(before)


async def test_crashed_worker_is_replaced(rt: Runtime) -> None:
    pool = await start_pool(rt, 2)
    before = await Pool.workers(pool, runtime=rt)
    with pytest.raises(PoolCallError) as err:
        await Pool.call(pool, "crash", runtime=rt)
    assert err.value.reason[1] == (*POOL_CALL, [pool, "crash", 5000])
    await wait_for(lambda: _replaced(pool, rt, before))
    assert len(set(await Pool.workers(pool, runtime=rt)) & set(before)) == 1


async def test_a_dead_caller_gives_its_worker_back(rt: Runtime) -> None:
    pool = await start_pool(rt, 1)

    async def take_and_die(proc: Any) -> None:
        await Pool.checkout(pool)
        raise RuntimeError("gone")

    rt.spawn(take_and_die)
    await wait_for(lambda: _idle(pool, rt, 1))
    assert await Pool.call(pool, "whoami", runtime=rt) in await Pool.workers(pool, runtime=rt)


async def _idle(pool: Pid, rt: Runtime, n: int) -> bool:
    status = await Pool.status(pool, runtime=rt)
    return status["idle"] == n and status["workers"] == n


async def test_stopping_the_pool_stops_its_workers(rt: Runtime) -> None:
    pool = await start_pool(rt, 3)
    workers = await Pool.workers(pool, runtime=rt)
    await stop(pool, runtime=rt)
    assert not any(rt.is_alive(w) for w in workers)
    with pytest.raises(PoolCallError) as err:
        await Pool.call(pool, "whoami", runtime=rt)
    assert err.value.why == Atom("noproc") or err.value.why == Atom("normal")


async def test_bad_options() -> None:
    with pytest.raises(ValueError):
        await Pool.start_link(Worker, size=0, runtime=Runtime())
    with pytest.raises(ValueError):
        await Pool.start_link(Worker, strategy="random", runtime=Runtime())
