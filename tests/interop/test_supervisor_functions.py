"""Every ``supervisor`` function on trees that mix BEAM and Python, OTP 25 and 28.

- A BEAM supervisor with Python children (``beam_bridge:child_spec/1``): each child is
  a local proxy, so ``count_children`` (which calls ``is_process_alive/1`` on each
  child), ``which_children``, ``terminate_child``, ``restart_child``, ``delete_child``
  and ``get_childspec`` work, and calls through the proxy reach the actor.
- Elixir's ``Supervisor.count_children`` with ``PyChild`` children (Elixir 1.14, OTP 25).
- A Python ``Supervisor`` driven from Erlang with the ids ``which_children`` reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge import Node
from dist_proto import Atom, Pid
from python_actors import DynamicSupervisor, Supervisor
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, unique_name
from tests.beam import runtime as find_runtime
from tests.interop.fixtures.py_actors import TERMINATED, Counter
from tests.interop.node_support import ev
from tests.interop.test_erl_app import erl_ebin  # noqa: F401  (session fixture)

pytestmark = pytest.mark.interop
OK, ERROR = Atom("ok"), Atom("error")


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd, erl_ebin: Path) -> Iterator[BeamNode]:  # noqa: F811
    with BeamNode(runtime, epmd_port=epmd.port, prefix="sf", extra_args=["-pa", str(erl_ebin)]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


@pytest.fixture
async def py(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
        node.allow_spawn("counter", Counter)
        TERMINATED.clear()
        yield node


def tree(py: Node) -> str:
    """A BEAM supervisor with two Python children, bound to Sup (scoped evals rebind it)."""
    return (f"{{ok, Sup}} = beam_bridge_sup:start_link(#{{intensity => 10, period => 5}}, "
            f"[beam_bridge:child_spec(#{{id => a, node => '{py.name}', actor => counter, args => 1, shutdown => 2000}}), "
            f"beam_bridge:child_spec(#{{id => b, node => '{py.name}', actor => counter, args => 2}})]), "
            "unlink(Sup), register(sf_sup, Sup)")


async def stop_tree(beam: BeamNode) -> None:
    await ev(beam, "Sup = whereis(sf_sup), M = monitor(process, Sup), exit(Sup, shutdown), "
                   "receive {'DOWN', M, _, _, _} -> ok end")


async def test_count_and_which_children_see_local_proxies(beam: BeamNode, py: Node) -> None:
    await ev(beam, tree(py))
    try:
        counts = await ev(beam, "supervisor:count_children(sf_sup)")
        assert dict((k.name, v) for k, v in counts) == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
        kids = await ev(beam, "[{Id, node(P), node(beam_bridge:actor(P)), is_process_alive(P), T, M} "
                              "|| {Id, P, T, M} <- lists:sort(supervisor:which_children(sf_sup))]")
        me = Atom(beam.name)
        assert kids == [(Atom(i), me, py.atom, True, Atom("worker"), [Atom("beam_bridge")]) for i in ("a", "b")]
        # Calls, casts and sends to the proxy reach the actor; it replies to the caller.
        res = await ev(beam, "{_, A, _, _} = lists:keyfind(a, 1, supervisor:which_children(sf_sup)), "
                             "ok = gen_server:cast(A, {report_to, self()}), "
                             "{gen_server:call(A, get), gen_server:call(A, {add, 4}), gen_server:call(A, get), "
                             "gen_server:call(A, pid_info) =:= beam_bridge:actor(A)}")
        assert res == (1, 5, 5, True)
    finally:
        await stop_tree(beam)


async def test_terminate_restart_delete_and_get_childspec(beam: BeamNode, py: Node) -> None:
    await ev(beam, tree(py))
    try:
        spec = await ev(beam, "supervisor:get_childspec(sf_sup, a)")
        assert spec[0] == OK
        assert spec[1][Atom("id")] == Atom("a") and spec[1][Atom("shutdown")] == 2000
        assert spec[1][Atom("start")][:2] == (Atom("beam_bridge"), Atom("start_link"))
        assert await ev(beam, "supervisor:get_childspec(sf_sup, nope)") == (ERROR, Atom("not_found"))

        old = await ev(beam, "{_, A, _, _} = lists:keyfind(a, 1, supervisor:which_children(sf_sup)), A")
        assert await ev(beam, "supervisor:terminate_child(sf_sup, a)") == OK
        assert TERMINATED == [Atom("shutdown")]  # the actor's terminate ran before the reply
        assert await ev(beam, "lists:keyfind(a, 1, supervisor:which_children(sf_sup))") == (
            Atom("a"), None, Atom("worker"), [Atom("beam_bridge")])  # undefined is None in Python
        counts = await ev(beam, "supervisor:count_children(sf_sup)")
        assert dict((k.name, v) for k, v in counts)["active"] == 1
        assert await ev(beam, "supervisor:delete_child(sf_sup, b)") == (ERROR, Atom("running"))

        restarted = await ev(beam, "supervisor:restart_child(sf_sup, a)")
        assert restarted[0] == OK and isinstance(restarted[1], Pid) and restarted[1] != old
        assert await ev(beam, "{_, A, _, _} = lists:keyfind(a, 1, supervisor:which_children(sf_sup)), "
                              "gen_server:call(A, get)") == 1
        assert await ev(beam, "supervisor:restart_child(sf_sup, a)") == (ERROR, Atom("running"))
        assert await ev(beam, "supervisor:terminate_child(sf_sup, a)") == OK
        assert await ev(beam, "supervisor:delete_child(sf_sup, a)") == OK
        assert await ev(beam, "[Id || {Id, _, _, _} <- supervisor:which_children(sf_sup)]") == [Atom("b")]
        # start_child with a new Python child works as for any child.
        res = await ev(beam, f"{{ok, C}} = supervisor:start_child(sf_sup, beam_bridge:child_spec("
                             f"#{{id => c, node => '{py.name}', actor => counter, args => 9}})), "
                             "{node(C) =:= node(), gen_server:call(C, get)}")
        assert res == (True, 9)
    finally:
        await stop_tree(beam)


async def test_actor_crash_reason_is_the_proxys(beam: BeamNode, py: Node) -> None:
    await ev(beam, tree(py))
    try:
        res = await ev(beam, "{_, B, _, _} = lists:keyfind(b, 1, supervisor:which_children(sf_sup)), "
                             "Actor = beam_bridge:actor(B), Ma = monitor(process, Actor), Mb = monitor(process, B), "
                             "catch gen_server:call(B, crash), "
                             "Ra = receive {'DOWN', Ma, _, _, R1} -> R1 after 5000 -> timeout end, "
                             "Rb = receive {'DOWN', Mb, _, _, R2} -> R2 after 5000 -> timeout end, "
                             "{Ra =:= Rb, element(1, Rb)}")
        assert res == (True, Atom("python_exception"))
    finally:
        await stop_tree(beam)


async def test_brutal_kill_of_the_proxy_kills_the_actor(beam: BeamNode, py: Node) -> None:
    res = await ev(beam, f"{{ok, P}} = beam_bridge:start('{py.name}', counter, 0), A = beam_bridge:actor(P), "
                         "M = monitor(process, A), exit(P, kill), "
                         "receive {'DOWN', M, _, _, R} -> R after 5000 -> timeout end")
    assert res == Atom("killed")
    assert TERMINATED == []


async def test_python_supervisor_children_named_from_erlang(beam: BeamNode, py: Node) -> None:
    from tests.interop.fixtures.py_actors import Counter as C

    name = unique_name("pysup")
    await Supervisor.start_link(
        [{"id": "w1", "start": (C.start_link, (1,))}, {"id": Atom("w2"), "start": (C.start_link, (2,))}],
        name=name, intensity=5, runtime=py.runtime)
    ref = f"{{{name}, '{py.name}'}}"
    ids = await ev(beam, f"[Id || {{Id, _, _, _}} <- supervisor:which_children({ref})]")
    assert ids == [b"w1", Atom("w2")]
    assert await ev(beam, f"supervisor:terminate_child({ref}, <<\"w1\">>)") == OK
    spec = await ev(beam, f"supervisor:get_childspec({ref}, <<\"w1\">>)")
    assert spec[0] == OK and spec[1][Atom("id")] == b"w1" and spec[1][Atom("restart")] == Atom("permanent")
    res = await ev(beam, f"{{ok, P}} = supervisor:restart_child({ref}, w1), gen_server:call(P, get)")
    assert res == 1
    assert await ev(beam, f"supervisor:terminate_child({ref}, \"w1\")") == OK
    assert await ev(beam, f"supervisor:delete_child({ref}, w1)") == OK
    assert await ev(beam, f"supervisor:get_childspec({ref}, w1)") == (ERROR, Atom("not_found"))
    assert await ev(beam, f"supervisor:terminate_child({ref}, <<\"w2\">>)") == OK
    counts = await ev(beam, f"supervisor:count_children({ref})")
    assert dict((k.name, v) for k, v in counts) == {"specs": 1, "active": 0, "supervisors": 0, "workers": 1}


async def test_python_dynamic_supervisor_from_erlang(beam: BeamNode, py: Node) -> None:
    name = unique_name("pydyn")
    sup = await DynamicSupervisor.start_link(name=name, runtime=py.runtime)
    pid = await DynamicSupervisor.start_child(sup, {"id": "x", "start": (Counter.start_link, (3,))}, runtime=py.runtime)
    ref = f"{{{name}, '{py.name}'}}"
    spec = await ev(beam, f"[{{_, P, _, _}}] = supervisor:which_children({ref}), supervisor:get_childspec({ref}, P)")
    assert spec[0] == OK and spec[1][Atom("id")] == b"x"
    assert await ev(beam, f"[{{_, P, _, _}}] = supervisor:which_children({ref}), supervisor:terminate_child({ref}, P)") == OK
    assert await ev(beam, f"supervisor:which_children({ref})") == []
    assert pid is not None


def test_elixir_supervisor_count_children_with_pychild(epmd: Epmd, erl_ebin: Path) -> None:  # noqa: F811
    """What crashed a mix application: `Supervisor.count_children/1` on PyChild children."""

    async def scenario() -> None:
        with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, elixir=True, extra_args=["-pa", str(erl_ebin)]) as ex:
            async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
                node.allow_spawn("counter", Counter)
                code = (
                    "children = [{PyChild, node: :\"%s\", actor: :counter, args: 7}, "
                    "{PyChild, id: :other, node: :\"%s\", actor: :counter, args: 8}];"
                    "{:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one);"
                    "counts = Supervisor.count_children(sup);"
                    "[{:other, pid, :worker, _}, _] = Supervisor.which_children(sup);"
                    ":ok = Supervisor.terminate_child(sup, :counter);"
                    "{:ok, _} = Supervisor.restart_child(sup, :counter);"
                    "{counts, GenServer.call(pid, :get), node(PyChild.actor(pid)), Supervisor.stop(sup)}"
                ) % (node.name, node.name)
                expr = "element(1, 'Elixir.Code':eval_string(<<\"%s\">>))" % code.replace('"', '\\"')
                counts, value, actor_node, stopped = await asyncio.to_thread(ex.eval_term, expr)
                assert counts == {Atom("specs"): 2, Atom("active"): 2, Atom("supervisors"): 0, Atom("workers"): 2}
                assert (value, actor_node, stopped) == (8, node.atom, OK)

    asyncio.run(scenario())
