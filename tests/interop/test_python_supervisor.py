"""A Python Supervisor with BEAM children (bridge.beam_child), OTP 25 and 28."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge import Node, SpawnError, beam_child, spawn_request
from dist_proto import Atom, Pid
from python_actors import ChildSpec, Supervisor, current_process
from python_actors import stop as stop_server
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, unique_name
from tests.interop.test_erl_app import erl_ebin  # noqa: F401  (session fixture)

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd, erl_ebin: Path) -> Iterator[BeamNode]:  # noqa: F811
    with BeamNode(runtime, epmd_port=epmd.port, prefix="sup", extra_args=["-pa", str(erl_ebin)]) as node:
        yield node


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as n:
        yield n


async def ev(beam: BeamNode, expr: str) -> object:
    return await asyncio.to_thread(beam.eval_term, expr)


async def wait_for(pred, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not await pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_spawn_request_links_python_process(node: Node, beam: BeamNode) -> None:
    async def body(proc):  # type: ignore[no-untyped-def]
        proc.trap_exit = True
        pid = await spawn_request(node, beam.name, "timer", "sleep", [50], link=True)
        msg = await proc.receive(timeout=5)
        return pid, msg

    pid, msg = await node.runtime.run(body)
    assert isinstance(pid, Pid) and pid.node == Atom(beam.name)
    assert msg == (Atom("EXIT"), pid, Atom("normal"))


async def test_spawn_request_of_unknown_function_spawns_and_exits_undef(node: Node, beam: BeamNode) -> None:
    """BEAM spawns M:F:A lazily: the new process exists and then exits with undef."""

    async def body(proc):  # type: ignore[no-untyped-def]
        proc.trap_exit = True
        pid = await spawn_request(node, beam.name, "erlang", "no_such", [], link=True)
        return pid, await proc.receive(timeout=5)

    pid, msg = await node.runtime.run(body)
    assert isinstance(pid, Pid)
    assert msg[0] == Atom("EXIT") and msg[1] == pid and msg[2][0] == Atom("undef")


async def test_spawn_request_to_unreachable_node_is_noconnection(node: Node) -> None:
    async def bad(proc):  # type: ignore[no-untyped-def]
        # A long timeout: the answer must come from the failed connection, not the clock.
        return await spawn_request(node, "nowhere@127.0.0.1", "erlang", "node", [], timeout=60)

    with pytest.raises(SpawnError) as err:
        await node.runtime.run(bad)
    assert err.value.reason == Atom("noconnection")


async def test_python_supervisor_restarts_beam_child(node: Node, beam: BeamNode) -> None:
    name_a, name_b = unique_name("eva"), unique_name("evb")
    children = [
        ChildSpec(id="a", start=beam_child(node, beam.name, "gen_event", "start_link", [(Atom("local"), Atom(name_a))])),
        ChildSpec(id="b", start=beam_child(node, beam.name, "gen_event", "start_link", [(Atom("local"), Atom(name_b))])),
    ]
    sup = await Supervisor.start_link(children, strategy="one_for_one", intensity=3, period=5, runtime=node.runtime)
    first = await ev(beam, f"whereis({name_a})")
    assert isinstance(first, Pid)
    await ev(beam, f"exit(whereis({name_a}), kill)")

    async def restarted() -> bool:
        now = await ev(beam, f"whereis({name_a})")
        return isinstance(now, Pid) and now != first

    await wait_for(restarted)
    kids = await Supervisor.which_children(sup, runtime=node.runtime)
    assert sorted(k.id for k in kids) == ["a", "b"]
    # Stopping the Python supervisor stops the BEAM children, last started first.
    await ev(beam, f"W = spawn(fun() -> Ma = monitor(process, {name_a}), Mb = monitor(process, {name_b}), "
                   "R = [receive {'DOWN', M, _, _, _} -> M end || _ <- [1, 2]], "
                   "receive {get, F} -> F ! [case X of Ma -> a; Mb -> b end || X <- R] end end)")
    await stop_server(sup, runtime=node.runtime)
    order = await ev(beam, "W ! {get, self()}, receive L -> L after 5000 -> timeout end")
    assert order == [Atom("b"), Atom("a")]
    assert await ev(beam, f"{{whereis({name_a}), whereis({name_b})}}") == (None, None)


async def test_one_for_all_across_languages(node: Node, beam: BeamNode) -> None:
    from python_actors import GenServer, Ok, Reply

    class Worker(GenServer):
        def init(self, _: object) -> Ok:
            return Ok(0)

        def handle_call(self, req: object, from_: object, s: int) -> Reply:
            raise RuntimeError("crash")

    name = unique_name("evc")
    children = [
        ChildSpec(id="beam", start=beam_child(node, beam.name, "gen_event", "start_link", [(Atom("local"), Atom(name))])),
        ChildSpec(id="py", start=(Worker.start_link, (None,))),
    ]
    sup = await Supervisor.start_link(children, strategy="one_for_all", intensity=3, period=5, runtime=node.runtime)
    before = await ev(beam, f"whereis({name})")
    kids = await Supervisor.which_children(sup, runtime=node.runtime)
    py_pid = next(k.pid for k in kids if k.id == "py")
    with pytest.raises(Exception):
        await node.call(py_pid, Atom("boom"))

    async def restarted() -> bool:
        now = await ev(beam, f"whereis({name})")
        return isinstance(now, Pid) and now != before

    await wait_for(restarted)
    await stop_server(sup, runtime=node.runtime)
