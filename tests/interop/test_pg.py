"""Python processes in OTP ``pg`` groups, against real OTP 25 and 28 nodes.

The BEAM sees Python members through ``pg:get_members/2`` and reaches them by
sending to each member (a broadcast); the Python scope sees BEAM members; a member
that dies, leaves or loses its node is dropped on the other side. Default and named
scopes, with the Python node hidden (the default) and visible.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom, Pid
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, pid_expr, unique_name
from tests.interop.node_support import ev, eventually

pytestmark = pytest.mark.interop

WORKERS = Atom("workers")


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd) -> Iterator[BeamNode]:
    with BeamNode(runtime, epmd_port=epmd.port, prefix="pg", extra_args=["-kernel", "start_pg", "true"]) as node:
        node.eval("{ok, _} = pg:start_link(my_scope), ok")
        yield node


@pytest.fixture(params=[True, False], ids=["hidden", "visible"])
async def node(request: pytest.FixtureRequest, epmd: Epmd) -> AsyncIterator[Node]:
    name = f"{unique_name('pypg')}@127.0.0.1"
    async with Node(name, cookie=TEST_COOKIE, epmd_port=epmd.port, hidden=request.param) as n:
        yield n


async def _members(beam: BeamNode, scope: str, group: str) -> list[Any]:
    return await ev(beam, f"lists:sort(pg:get_members({scope}, {group}))")  # type: ignore[no-any-return]


async def test_python_members_are_seen_and_reached_by_the_beam(node: Node, beam: BeamNode) -> None:
    assert await node.ping(beam.name)
    scope = await node.pg()
    async with node.process() as member:
        await scope.join(WORKERS, member.pid)
        assert scope.get_members(WORKERS) == [member.pid]

        async def beam_sees() -> bool:
            return member.pid in await _members(beam, "pg", "workers")

        await _eventually_async(beam_sees, "the BEAM to see the Python member")
        # a broadcast as a BEAM user writes it
        await ev(beam, "[P ! {hello, node()} || P <- pg:get_members(workers)], ok")
        assert await member.receive(timeout=5) == (Atom("hello"), Atom(beam.name))
        assert await scope.leave(WORKERS, member.pid)
        assert not await scope.leave(WORKERS, member.pid)

        async def beam_forgets() -> bool:
            return member.pid not in await _members(beam, "pg", "workers")

        await _eventually_async(beam_forgets, "the BEAM to drop the member that left")


async def test_beam_members_are_seen_by_python_and_dropped_when_they_die(node: Node, beam: BeamNode) -> None:
    assert await node.ping(beam.name)
    scope = await node.pg()
    pid = await ev(beam, "spawn(fun() -> pg:join(workers, self()), receive stop -> ok end end)")
    assert isinstance(pid, Pid)
    await eventually(lambda: pid in scope.get_members(WORKERS), what="Python to see the BEAM member")
    assert WORKERS in scope.which_groups()
    assert scope.get_local_members(WORKERS) == []
    await ev(beam, f"{pid_expr(pid)} ! stop, ok")
    await eventually(lambda: pid not in scope.get_members(WORKERS), what="the dead member to be dropped")


async def test_a_python_member_that_dies_is_dropped_on_the_beam(node: Node, beam: BeamNode) -> None:
    assert await node.ping(beam.name)
    scope = await node.pg("my_scope")
    group = [Atom("room"), 1]  # any term is a group, lists included
    async with node.process() as member:
        await scope.join(group, [member.pid, member.pid])  # twice: a member twice, as pg
        assert scope.get_local_members(group) == [member.pid, member.pid]

        async def seen_twice() -> bool:
            return await _members(beam, "my_scope", "[room, 1]") == [member.pid, member.pid]

        await _eventually_async(seen_twice, "the BEAM to see both memberships")
        gone = member.pid

    async def dropped() -> bool:
        return gone not in await _members(beam, "my_scope", "[room, 1]")

    await _eventually_async(dropped, "the BEAM to drop the dead member")


async def test_nodedown_drops_the_remote_members(epmd: Epmd, runtime: Runtime) -> None:
    other = await asyncio.to_thread(
        BeamNode, runtime, epmd_port=epmd.port, prefix="pgd", extra_args=["-kernel", "start_pg", "true"]
    )
    try:
        async with Node(f"{unique_name('pypg')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
            assert await node.ping(other.name)
            scope = await node.pg()
            pid = await ev(other, "spawn(fun() -> pg:join(workers, self()), receive stop -> ok end end)")
            await eventually(lambda: pid in scope.get_members(WORKERS), what="the BEAM member")
            await asyncio.to_thread(other.stop)
            await eventually(lambda: scope.get_members(WORKERS) == [], what="nodedown to drop it")
    finally:
        await asyncio.to_thread(other.stop)


async def test_join_refuses_pids_of_other_nodes(node: Node, beam: BeamNode) -> None:
    assert await node.ping(beam.name)
    scope = await node.pg()
    remote = await ev(beam, "self()")
    with pytest.raises(ValueError, match="not a process of this node"):
        await scope.join(WORKERS, remote)


async def _eventually_async(cond: Any, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.05)
