"""Erlang and Elixir supervisors with Python children (the erl/ application), OTP 25 and 28."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge import Node
from dist_proto import Atom
from tests.beam import REPO_ROOT, TEST_COOKIE, BeamNode, Epmd, Runtime, runtime as find_runtime, unique_name
from tests.interop.fixtures.py_actors import TERMINATED, Counter

pytestmark = pytest.mark.interop


@pytest.fixture(scope="session")
def erl_ebin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The beam_bridge application compiled with OTP 25's erlc (loads on 25 and 28)."""
    out = tmp_path_factory.mktemp("beam_bridge_ebin")
    sources = sorted(str(p) for p in (REPO_ROOT / "erl" / "src").glob("*.erl"))
    subprocess.run(["erlc", "-o", str(out), *sources], check=True)
    app_src = (REPO_ROOT / "erl" / "src" / "beam_bridge.app.src").read_text()
    (out / "beam_bridge.app").write_text(app_src)
    return out


@pytest.fixture(scope="module")
def app_beam(runtime: Runtime, epmd: Epmd, erl_ebin: Path) -> Iterator[BeamNode]:
    with BeamNode(runtime, epmd_port=epmd.port, prefix="app", extra_args=["-pa", str(erl_ebin)]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


@pytest.fixture
async def py_node(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
        node.allow_spawn("counter", Counter)
        TERMINATED.clear()
        yield node


async def ev(beam: BeamNode, expr: str) -> object:
    return await asyncio.to_thread(beam.eval_term, expr)


def app_beam_atom(beam: BeamNode) -> Atom:
    """Children of BEAM supervisors are local proxies: pids of the BEAM node itself."""
    return Atom(beam.name)


async def test_start_link_returns_after_init(app_beam: BeamNode, py_node: Node) -> None:
    res = await ev(app_beam, f"{{ok, P}} = beam_bridge:start_link('{py_node.name}', counter, 5), "
                             "{node(P) =:= node(), node(beam_bridge:actor(P)), gen_server:call(P, get), "
                             "lists:member(P, element(2, process_info(self(), links)))}")
    assert res == (True, py_node.atom, 5, True)
    await ev(app_beam, "unlink(P), exit(P, kill)")


async def test_init_ignore_and_error(app_beam: BeamNode, py_node: Node) -> None:
    assert await ev(app_beam, f"beam_bridge:start_link('{py_node.name}', counter, ignore)") == Atom("ignore")
    res = await ev(app_beam, f"beam_bridge:start_link('{py_node.name}', counter, {{fail, because}})")
    assert res == (Atom("error"), Atom("because"))


async def test_not_allow_listed_is_refused(app_beam: BeamNode, py_node: Node) -> None:
    res = await ev(app_beam, f"beam_bridge:start_link('{py_node.name}', secret_actor, [])")
    assert res == (Atom("error"), (Atom("not_allowed"), py_node.atom, Atom("secret_actor")))


async def test_supervisor_restarts_crashed_python_child(app_beam: BeamNode, py_node: Node) -> None:
    await ev(app_beam, f"{{ok, Sup}} = beam_bridge_sup:start_link(#{{strategy => one_for_one, intensity => 5, period => 5}}, "
                       f"[beam_bridge:child_spec(#{{id => c, node => '{py_node.name}', actor => counter, args => 1}})])")
    first = await ev(app_beam, "[{c, P1, worker, _}] = supervisor:which_children(Sup), P1")
    await ev(app_beam, "catch gen_server:call(P1, crash)")
    for _ in range(100):
        second = await ev(app_beam, "[{c, P2, worker, _}] = supervisor:which_children(Sup), P2")
        if second != first and second != Atom("restarting") and second is not None:
            break
        await asyncio.sleep(0.05)
    assert second != first and getattr(second, "node", None) == app_beam_atom(app_beam)
    assert await ev(app_beam, "node(beam_bridge:actor(P2))") == py_node.atom
    assert await ev(app_beam, "gen_server:call(P2, get)") == 1
    await ev(app_beam, "exit(Sup, shutdown)")


async def test_intensity_exceeded_takes_supervisor_down(app_beam: BeamNode, py_node: Node) -> None:
    await ev(app_beam, f"{{ok, Sup2}} = beam_bridge_sup:start_link(#{{intensity => 1, period => 10}}, "
                       f"[beam_bridge:child_spec(#{{id => c, node => '{py_node.name}', actor => counter, args => 0}})]), "
                       "MRef2 = monitor(process, Sup2)")
    for i in range(2):
        await ev(app_beam, f"[{{c, Px{i}, _, _}}] = supervisor:which_children(Sup2), catch gen_server:call(Px{i}, crash)")
        await asyncio.sleep(0.3)
    down = await ev(app_beam, "receive {'DOWN', MRef2, process, Sup2, R} -> R after 5000 -> timeout end")
    assert down == Atom("shutdown")


async def test_shutdown_runs_terminate_and_brutal_kill_does_not(app_beam: BeamNode, py_node: Node) -> None:
    await ev(app_beam, f"{{ok, Sup3}} = beam_bridge_sup:start_link(#{{}}, "
                       f"[beam_bridge:child_spec(#{{id => soft, node => '{py_node.name}', actor => counter, args => 0, shutdown => 2000}}), "
                       f"beam_bridge:child_spec(#{{id => hard, node => '{py_node.name}', actor => counter, args => 0, shutdown => brutal_kill}})])")
    await ev(app_beam, "ok = supervisor:terminate_child(Sup3, soft)")
    assert TERMINATED == [Atom("shutdown")]
    await ev(app_beam, "ok = supervisor:terminate_child(Sup3, hard)")
    await asyncio.sleep(0.2)
    assert TERMINATED == [Atom("shutdown")]
    await ev(app_beam, "exit(Sup3, shutdown)")


async def test_shutdown_timeout_then_kill(app_beam: BeamNode, py_node: Node) -> None:
    await ev(app_beam, f"{{ok, Sup4}} = beam_bridge_sup:start_link(#{{}}, "
                       f"[beam_bridge:child_spec(#{{id => slow, node => '{py_node.name}', actor => counter, args => 0, shutdown => 300}})]), "
                       "[{slow, Ps, _, _}] = supervisor:which_children(Sup4), ok = gen_server:call(Ps, {sleep_terminate, 5})")
    took = await ev(app_beam, "{T, ok} = timer:tc(supervisor, terminate_child, [Sup4, slow]), T div 1000")
    assert isinstance(took, int) and took < 3000
    assert TERMINATED == []
    await ev(app_beam, "exit(Sup4, shutdown)")


async def test_lost_python_node_fails_children_with_noconnection(app_beam: BeamNode, py_node: Node) -> None:
    await ev(app_beam, f"{{ok, Pn}} = beam_bridge:start('{py_node.name}', counter, 0), MRefN = monitor(process, Pn), link(Pn)")
    assert py_node.disconnect(app_beam.name)  # the connection dies as it would with the node
    got = await ev(app_beam, "receive {'DOWN', MRefN, process, Pn, R1} -> R1 after 5000 -> timeout end")
    exit_ = await ev(app_beam, "receive {'EXIT', Pn, R2} -> R2 after 5000 -> timeout end")
    assert got == Atom("noconnection")
    assert exit_ == Atom("noconnection")


def test_elixir_supervisor_with_pychild(epmd: Epmd, erl_ebin: Path) -> None:
    """Elixir's Supervisor with `{PyChild, node: ..., actor: ..., args: ...}` children (OTP 25)."""

    async def scenario() -> None:
        with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, elixir=True, extra_args=["-pa", str(erl_ebin)]) as ex:
            async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
                node.allow_spawn("counter", Counter)
                code = (
                    "children = [{PyChild, node: :\"%s\", actor: :counter, args: 7}];"
                    "{:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one, max_restarts: 3);"
                    "[{:counter, pid, :worker, _}] = Supervisor.which_children(sup);"
                    "GenServer.call(pid, :get)"
                ) % node.name
                expr = "process_flag(trap_exit, true), element(1, 'Elixir.Code':eval_string(<<\"%s\">>))" % code.replace('"', '\\"')
                assert await asyncio.to_thread(ex.eval_term, expr) == 7

    asyncio.run(scenario())
