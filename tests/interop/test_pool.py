"""Pools of Python workers for BEAM callers (``beam_bridge_pool``, ``PyPool``), OTP 25 and 28.

A BEAM node (with the erl/ application on its code path) starts a pool under a
supervisor; the workers are Python actors of the test's own Python node(s)
(``tests/interop/fixtures/pool_actors.py``). Each worker answers ``whoami`` with
its own pid, so the tests see which worker ran each call.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom, Pid
from tests.beam import REPO_ROOT, TEST_COOKIE, BeamNode, Epmd, Runtime, unique_name
from tests.beam import runtime as find_runtime
from tests.interop.fixtures.pool_actors import allow_pool_workers
from tests.interop.node_support import ev, eventually, q

pytestmark = pytest.mark.interop

EXIT, TIMEOUT, KILLED = Atom("EXIT"), Atom("timeout"), Atom("killed")


@pytest.fixture(scope="session")
def pool_ebin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The beam_bridge application compiled with OTP 25's erlc (loads on 25 and 28)."""
    out = tmp_path_factory.mktemp("beam_bridge_pool_ebin")
    sources = sorted(str(p) for p in (REPO_ROOT / "erl" / "src").glob("*.erl"))
    subprocess.run(["erlc", "-o", str(out), *sources], check=True)
    return out


@pytest.fixture(scope="module")
def app_beam(runtime: Runtime, epmd: Epmd, pool_ebin: Path) -> Iterator[BeamNode]:
    with BeamNode(runtime, epmd_port=epmd.port, prefix="pool", extra_args=["-pa", str(pool_ebin)]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


@pytest.fixture
async def py_node(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
        allow_pool_workers(node)
        yield node


@asynccontextmanager
async def pool(beam: BeamNode, spec: str) -> AsyncIterator[str]:
    """A pool (``beam_bridge_pool:child_spec(#{name => Name, <spec>})``) under a
    supervisor of the BEAM's evaluation process; yields the pool's name and shuts
    the supervisor down afterwards, waiting for it."""
    name = unique_name("pool")
    sup = f"{name}_sup"
    await ev(beam, f"{{ok, _}} = beam_bridge_sup:start_link({{local, {sup}}}, #{{}}, "
                   f"[beam_bridge_pool:child_spec(#{{name => {name}, {spec}}})]), ok")
    try:
        yield name
    finally:
        await ev(beam, f"S = whereis({sup}), unlink(S), M = monitor(process, S), exit(S, shutdown), "
                       "receive {'DOWN', M, _, _, _} -> ok after 15000 -> timeout end")


# The Python actor behind a worker pid: ``beam_bridge:start_link`` may hand the pool a
# local proxy of the actor (``beam_bridge:actor/1`` then gives the Python pid).
ACTOR = ("(fun(W) -> case erlang:function_exported(beam_bridge, actor, 1) of "
         "true -> beam_bridge:actor(W); false -> W end end)")


async def workers(beam: BeamNode, name: str) -> list[Pid]:
    """The Python pids of the pool's running workers."""
    return list(await ev(beam, f"[{ACTOR}(W) || W <- beam_bridge_pool:workers({name})]"))


async def status(beam: BeamNode, name: str) -> dict[Any, Any]:
    got = await ev(beam, f"beam_bridge_pool:status({name})")
    return {str(k): v for k, v in got.items()}


async def full_pool(beam: BeamNode, name: str, size: int, old: list[Pid], timeout: float = 10.0) -> list[Pid]:
    """Wait until the pool has ``size`` workers and they are not exactly ``old``
    (a replacement has joined); return them."""
    found: list[Pid] = []

    async def check() -> bool:
        found[:] = await workers(beam, name)
        return len(found) == size and found != old

    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"pool {name} has {found}, expected {size} workers other than {old}")
        await asyncio.sleep(0.05)
    return found


async def test_calls_spread_over_workers(app_beam: BeamNode, py_node: Node) -> None:
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => pool_worker, size => 3") as name:
        answered = await ev(app_beam, f"[beam_bridge_pool:call({name}, whoami, 2000) || _ <- lists:seq(1, 9)]")
        running = await workers(app_beam, name)
        assert len(set(running)) == 3
        assert set(answered) == set(running)  # every worker took calls
        assert all(p.node == py_node.atom and py_node.runtime.is_alive(p) for p in running)
        assert await status(app_beam, name) == {"size": 3, "workers": 3, "idle": 3, "busy": 0, "waiting": 0}
        assert await ev(app_beam, f"beam_bridge_pool:call({name}, {{echo, <<\"hi\">>}})") == b"hi"


async def test_callers_queue_when_all_workers_are_busy(app_beam: BeamNode, py_node: Node) -> None:
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => pool_worker, size => 2") as name:
        res = await ev(app_beam, f"""
            W1 = beam_bridge_pool:checkout({name}, 1000), W2 = beam_bridge_pool:checkout({name}, 1000),
            Self = self(),
            C = spawn(fun() -> Self ! {{got, self(), beam_bridge_pool:call({name}, whoami, 5000)}} end),
            Queued = (fun L(N) -> case beam_bridge_pool:status({name}) of
                                    #{{waiting := 1}} = S -> S;
                                    _ when N > 0 -> timer:sleep(10), L(N - 1);
                                    S -> S
                                  end end)(500),
            ok = beam_bridge_pool:checkin({name}, W1),
            Got = receive {{got, C, X}} -> X after 5000 -> no_reply end,
            ok = beam_bridge_pool:checkin({name}, W2),
            {{Queued, Got, {ACTOR}(W1), {ACTOR}(W2)}}""")
        queued, got, w1, w2 = res
        assert queued[Atom("waiting")] == 1 and queued[Atom("idle")] == 0 and queued[Atom("busy")] == 2
        assert got == w1 != w2  # the queued caller got the worker that came back
        assert (await status(app_beam, name))["idle"] == 2


async def test_waiting_past_the_timeout_exits_like_gen_server_call(app_beam: BeamNode, py_node: Node) -> None:
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => pool_worker, size => 1") as name:
        before = await workers(app_beam, name)
        res = await ev(app_beam, f"""
            W = beam_bridge_pool:checkout({name}, 1000),
            R = (catch beam_bridge_pool:call({name}, {{echo, 1}}, 200)),
            S = beam_bridge_pool:status({name}),
            ok = beam_bridge_pool:checkin({name}, W),
            {{R, S}}""")
        exit_, st = res
        assert exit_ == (EXIT, (TIMEOUT, (Atom("beam_bridge_pool"), Atom("call"), [Atom(name), (Atom("echo"), 1), 200])))
        assert st[Atom("waiting")] == 0
        assert await workers(app_beam, name) == before  # a worker that was never asked is not killed
        assert await ev(app_beam, f"beam_bridge_pool:call({name}, {{echo, 2}}, 2000)") == 2


async def test_a_dead_caller_gives_its_worker_back(app_beam: BeamNode, py_node: Node) -> None:
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => pool_worker, size => 1") as name:
        res = await ev(app_beam, f"""
            {{C, M}} = spawn_monitor(fun() -> beam_bridge_pool:checkout({name}, 1000), exit(gone) end),
            receive {{'DOWN', M, process, C, _}} -> ok end,
            beam_bridge_pool:call({name}, whoami, 2000)""")
        assert res in await workers(app_beam, name)


async def test_stuck_worker_is_killed_and_replaced(app_beam: BeamNode, py_node: Node) -> None:
    """A worker busy past the caller's timeout (here in ``await asyncio.sleep``) is killed:
    ``DOWN ... killed`` at once, the caller exits ``timeout``, a new worker takes its place."""
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => async_pool_worker, size => 2") as name:
        await _stuck_worker_scenario(app_beam, py_node, name)


async def test_worker_stuck_in_time_sleep_is_killed_and_replaced(app_beam: BeamNode, py_node: Node) -> None:
    """The same with a plain synchronous ``handle_call`` blocked in ``time.sleep(30)``."""
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => pool_worker, size => 2") as name:
        await _stuck_worker_scenario(app_beam, py_node, name)


async def _stuck_worker_scenario(beam: BeamNode, py_node: Node, name: str) -> None:
    before = await workers(beam, name)
    # Everything time-bound happens on the BEAM, in one evaluation: the stuck call,
    # the kill seen through monitors, and a call answered by the other worker meanwhile.
    res = await ev(beam, f"""
        Before = beam_bridge_pool:workers({name}),
        Refs = [{{erlang:monitor(process, W), {ACTOR}(W)}} || W <- Before],
        Stuck = (catch beam_bridge_pool:call({name}, {{sleep, 30}}, 500)),
        Down = (fun Wait() -> receive {{'DOWN', R, process, _, Why}} ->
                                  case lists:keyfind(R, 1, Refs) of {{R, A}} -> {{true, A, Why}}; false -> Wait() end
                              after 2000 -> no_down end end)(),
        Other = (catch beam_bridge_pool:call({name}, whoami, 1000)),
        {{Stuck, Down, Other}}""", timeout=90)
    stuck, down, other = res
    assert stuck == (EXIT, (TIMEOUT, (Atom("beam_bridge_pool"), Atom("call"), [Atom(name), (Atom("sleep"), 30), 500])))
    assert down != Atom("no_down"), "the stuck worker was not killed"
    ours, killed_pid, why = down
    assert ours and why == KILLED and killed_pid in before
    assert other in before and other != killed_pid
    await eventually(lambda: not py_node.runtime.is_alive(killed_pid), what="the stuck actor is gone")
    after = await full_pool(beam, name, 2, before)
    assert killed_pid not in after and other in after
    replacement = next(p for p in after if p != other)
    answered = await ev(beam, f"[beam_bridge_pool:call({name}, whoami, 1000) || _ <- lists:seq(1, 4)]")
    assert set(answered) == {other, replacement}


async def test_crashed_worker_is_replaced(app_beam: BeamNode, py_node: Node) -> None:
    async with pool(app_beam, f"node => {q(py_node.name)}, actor => pool_worker, size => 2") as name:
        before = await workers(app_beam, name)
        res = await ev(app_beam, f"catch beam_bridge_pool:call({name}, crash, 2000)")
        assert res[0] == EXIT and res[1][1] == (Atom("beam_bridge_pool"), Atom("call"), [Atom(name), Atom("crash"), 2000])
        after = await full_pool(app_beam, name, 2, before)
        assert len(set(after) & set(before)) == 1
        answered = await ev(app_beam, f"[beam_bridge_pool:call({name}, whoami, 1000) || _ <- lists:seq(1, 4)]")
        assert set(answered) == set(after)


async def test_unknown_pool_and_refused_actor(app_beam: BeamNode, py_node: Node) -> None:
    res = await ev(app_beam, "catch beam_bridge_pool:call(no_such_pool, whoami, 100)")
    assert res == (EXIT, (Atom("noproc"), (Atom("beam_bridge_pool"), Atom("call"), [Atom("no_such_pool"), Atom("whoami"), 100])))
    res = await ev(app_beam, f"beam_bridge_pool:start_link(#{{node => {q(py_node.name)}, actor => secret, size => 1}})")
    assert res[0] == Atom("error")
    assert (Atom("not_allowed"), py_node.atom, Atom("secret")) in _flatten(res[1])


def _flatten(term: Any) -> list[Any]:
    out = [term]
    if isinstance(term, (tuple, list)):
        for t in term:
            out.extend(_flatten(t))
    return out


async def test_pool_over_two_nodes_loses_and_regains_one(app_beam: BeamNode, epmd: Epmd) -> None:
    """Workers spread over two Python nodes; one node stops: only its workers go, the
    pool keeps answering; a node of that name comes back: its workers return."""
    name_a, name_b = f"{unique_name('pya')}@127.0.0.1", f"{unique_name('pyb')}@127.0.0.1"
    async with Node(name_a, cookie=TEST_COOKIE, epmd_port=epmd.port) as node_a:
        allow_pool_workers(node_a)
        node_b = await _start_node(name_b, epmd.port)
        try:
            spec = f"nodes => [{q(name_a)}, {q(name_b)}], actor => pool_worker, size => 4, retry_interval => 200"
            async with pool(app_beam, spec) as name:
                running = await workers(app_beam, name)
                assert sorted(str(p.node) for p in running) == sorted([name_a, name_a, name_b, name_b])
                answered = await ev(app_beam, f"[beam_bridge_pool:call({name}, whoami, 2000) || _ <- lists:seq(1, 8)]")
                assert set(answered) == set(running)

                await node_b.stop()
                on_a = [p for p in running if str(p.node) == name_a]
                await eventually_async(lambda: _same(workers(app_beam, name), on_a), what="only node A's workers")
                answered = await ev(app_beam, f"[beam_bridge_pool:call({name}, whoami, 2000) || _ <- lists:seq(1, 6)]")
                assert set(answered) == set(on_a)
                assert (await status(app_beam, name))["workers"] == 2

                node_b = await _start_node(name_b, epmd.port)
                back = await full_pool(app_beam, name, 4, on_a, timeout=15)
                assert set(on_a) <= set(back)
                assert sum(1 for p in back if str(p.node) == name_b) == 2
                answered = await ev(app_beam, f"[beam_bridge_pool:call({name}, whoami, 2000) || _ <- lists:seq(1, 8)]")
                assert set(answered) == set(back)
        finally:
            await node_b.stop()


async def _same(got: Any, expected: list[Pid]) -> bool:
    return sorted(await got, key=str) == sorted(expected, key=str)


async def eventually_async(cond: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.05)


async def _start_node(name: str, epmd_port: int) -> Node:
    """Start a Python node named ``name``, retrying while EPMD still holds the name
    of the node that had it before."""
    for _ in range(100):
        node = Node(name, cookie=TEST_COOKIE, epmd_port=epmd_port)
        try:
            await node.start()
        except Exception:  # the name is not free yet
            await asyncio.sleep(0.1)
            continue
        allow_pool_workers(node)
        return node
    raise AssertionError(f"could not start node {name}")


def test_elixir_supervisor_with_pypool(epmd: Epmd, pool_ebin: Path) -> None:
    """``{PyPool, name: ..., node: ..., actor: ..., size: ...}`` under Elixir's Supervisor (OTP 25)."""

    async def scenario() -> None:
        with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, elixir=True, extra_args=["-pa", str(pool_ebin)]) as ex:
            async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
                allow_pool_workers(node)
                code = (
                    f'children = [{{PyPool, name: :ex_pool, node: :"{node.name}", actor: :pool_worker, size: 2}}];'
                    "{:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one);"
                    "[{:ex_pool, _, :supervisor, _}] = Supervisor.which_children(sup);"
                    "pids = for _ <- 1..4, do: PyPool.call(:ex_pool, :whoami, 2_000);"
                    "Supervisor.stop(sup);"
                    "pids"
                )
                quoted = code.replace('"', '\\"')
                expr = f"process_flag(trap_exit, true), element(1, 'Elixir.Code':eval_string(<<\"{quoted}\">>))"
                pids = await asyncio.to_thread(ex.eval_term, expr)
                assert len(set(pids)) == 2 and all(p.node == node.atom for p in pids)

    asyncio.run(scenario())
