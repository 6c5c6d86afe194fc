"""System processes survive junk and are restarted like kernel's, OTP 25 and 28.

Each case sends malformed messages or requests from a BEAM node to one system
process of the Python node (``net_kernel``, ``rex``, the spawner, ``kernel_sup``),
then checks that ``net_adm:ping/1`` answers ``pong`` and ``rpc:call/4`` still works.
Killing ``net_kernel`` or ``rex`` outright shows the supervision: they come back
under their names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bridge import Node
from dist_proto import Atom, Pid
from tests.beam import BeamNode, Epmd
from tests.interop.node_support import ev, eventually, py_node, q

pytestmark = pytest.mark.interop

JUNK = {
    "net_kernel": [
        "{{net_kernel, {py}}} ! {{'$gen_call', not_a_from, x}}",
        "{{net_kernel, {py}}} ! {{'$gen_call', {{self()}}, {{is_auth, node()}}}}",
        "{{net_kernel, {py}}} ! {{'$gen_call', {{self(), make_ref()}}, {{no_such_request, 1}}}}",
        "{{net_kernel, {py}}} ! {{'$gen_cast', junk}}",
        "{{net_kernel, {py}}} ! {{'EXIT', self(), junk}}",
        "{{net_kernel, {py}}} ! <<0:1000>>",
    ],
    "rex": [
        "{{rex, {py}}} ! {{'$gen_call', not_a_from, {{call, erlang, node, [], group_leader()}}}}",
        "{{rex, {py}}} ! {{'$gen_call', {{self(), make_ref()}}, {{call, 1, 2, not_a_list, x}}}}",
        "{{rex, {py}}} ! {{'$gen_call', {{self(), make_ref()}}, unknown}}",
        "{{rex, {py}}} ! {{'$gen_cast', {{cast, 1, 2, 3, 4}}}}",
        "{{rex, {py}}} ! {{self(), {{call, m, f, a}}}}",
        "{{rex, {py}}} ! {{self(), features_request, extra}}",
        "{{rex, {py}}} ! []",
    ],
    "spawner": [
        "spawn_request({py}, beam_bridge, start_actor, [not_allowed, x], [])",
        "spawn_request({py}, beam_bridge, start_actor, [{{}}, x], [link])",
        "spawn_request({py}, erpc, execute_call, [a, b, c, d], [monitor])",
        "spawn_request({py}, erpc, execute_cast, [1, 2, 3], [])",
        "spawn_request({py}, no_such, function, [1, 2, 3], [])",
    ],
    "kernel_sup": [
        "{{kernel_sup, {py}}} ! {{'$gen_call', not_a_from, which_children}}",
        "{{kernel_sup, {py}}} ! {{'$gen_call', {{self(), make_ref()}}, {{terminate_child, <<255>>}}}}",
        "{{kernel_sup, {py}}} ! junk",
    ],
}


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with py_node(epmd.port, prefix="junk") as n:
        n.allow_rpc("lists", "reverse", lambda xs: list(reversed(xs)))
        yield n


async def alive_and_well(beam: BeamNode, node: Node) -> None:
    assert await ev(beam, f"net_adm:ping({q(node.name)})") == Atom("pong")
    assert await ev(beam, f"rpc:call({q(node.name)}, lists, reverse, [[1, 2, 3]])") == [3, 2, 1]
    assert await ev(beam, f"gen_server:call({{rex, {q(node.name)}}}, {{call, lists, reverse, [[a]], group_leader()}})") == [
        Atom("a")]


@pytest.mark.parametrize("target", sorted(JUNK))
async def test_junk_then_ping_and_rpc(beam: BeamNode, node: Node, target: str) -> None:
    await alive_and_well(beam, node)
    before = {name: node.whereis(name) for name in ("net_kernel", "rex", "kernel_sup")}
    for junk in JUNK[target]:
        await ev(beam, junk.format(py=q(node.name)) + ", ok")
    await ev(beam, "timer:sleep(100)")
    await alive_and_well(beam, node)
    # Junk is answered or ignored: it does not even cost a restart.
    assert {name: node.whereis(name) for name in before} == before


async def test_unknown_call_gets_no_reply_as_on_otp(beam: BeamNode, node: Node) -> None:
    res = await ev(beam, f"catch gen_server:call({{net_kernel, {q(node.name)}}}, no_such_request, 300)")
    assert res[0] == Atom("EXIT") and res[1][0] == Atom("timeout")
    # The spawner refuses what it cannot serve with an error reply, never silence.
    res = await ev(beam, f"R = spawn_request({q(node.name)}, beam_bridge, start_actor, [{{}}, x], []), "
                         "receive {spawn_reply, R, error, E} -> E after 5000 -> timeout end")
    assert res == Atom("notsup")


async def test_crashing_junk_costs_a_restart_and_ping_still_works(beam: BeamNode, node: Node) -> None:
    """A system message with a malformed ``From`` crashes a gen_server on BEAM too
    (``sys`` replies to ``From``); ``net_kernel`` is restarted under its name."""
    old = node.whereis("net_kernel")
    await ev(beam, f"{{net_kernel, {q(node.name)}}} ! {{system, not_a_from, get_state}}, ok")
    await eventually(lambda: isinstance(node.whereis("net_kernel"), Pid) and node.whereis("net_kernel") != old,
                     what="net_kernel restarted")
    await alive_and_well(beam, node)


@pytest.mark.parametrize("name", ["net_kernel", "rex"])
async def test_killed_system_process_is_restarted(beam: BeamNode, node: Node, name: str) -> None:
    old = node.whereis(name)
    assert isinstance(old, Pid)
    node.runtime.exit(old, Atom("kill"))
    await eventually(lambda: isinstance(node.whereis(name), Pid) and node.whereis(name) != old,
                     what=f"{name} restarted")
    await alive_and_well(beam, node)
    kids = await ev(beam, f"supervisor:which_children({{kernel_sup, {q(node.name)}}})")
    assert sorted(k[0] for k in kids) == [b"net_kernel", b"rex"]
    assert all(isinstance(k[1], Pid) for k in kids)
