"""The Elixir-facing BEAM API: docs that IEx shows, and ``BeamBridge`` against a live
Python node (OTP 25 and 28)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge import Node
from dist_proto import Atom
from tests.beam import REPO_ROOT, BeamNode, Epmd, Runtime
from tests.interop.erl_build import rebar3_ebin
from tests.interop.fixtures.py_actors import Counter
from tests.interop.node_support import ev, py_node, q

pytestmark = pytest.mark.interop

DOCUMENTED = ["Elixir.PyChild", "Elixir.BeamBridge", "beam_bridge"]


@pytest.fixture(scope="module")
def app_beam(runtime: Runtime, epmd: Epmd) -> Iterator[BeamNode]:
    with BeamNode(runtime, epmd_port=epmd.port, prefix="ex_api",
                  extra_args=["-pa", str(rebar3_ebin())]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


@pytest.fixture
async def python(epmd: Epmd) -> AsyncIterator[Node]:
    async with py_node(epmd.port) as node:
        node.allow_spawn("counter", Counter)
        node.allow_rpc("pymath", "add", lambda a, b: a + b)
        node.allow_rpc("pymath", "divide", lambda a, b: a / b)
        await Counter.start(7, runtime=node.runtime, name="py_counter")
        yield node


def test_iex_h_shows_the_docs() -> None:
    elixir = shutil.which("elixir")
    assert elixir, "Elixir is part of the test set-up (make deps)"
    out = subprocess.run(
        [elixir, "-pa", str(rebar3_ebin()), "-e",
         "import IEx.Helpers; h PyChild; h BeamBridge; h BeamBridge.call/3; h :beam_bridge; "
         "{:docs_v1, _, :erlang, _, %{\"en\" => _}, _, docs} = Code.fetch_docs(BeamBridge); "
         "IO.puts(\"fetch_docs: #{length(docs)} entries\")"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for text in ("A Python actor as a child of an Elixir supervisor",
                 "{PyChild, node: :\"py@127.0.0.1\", actor: :counter, args: 0}",
                 "Talk to Python nodes (beam-bridge) from Elixir",
                 "@spec call(server(), term(), timeout()) :: term()",
                 "Python actors as children of Erlang and Elixir supervisors",
                 "fetch_docs: "):
        assert text in out.stdout, f"{text!r} not in:\n{out.stdout}"
    assert "No documentation" not in out.stdout + out.stderr


async def test_every_exported_function_is_documented(app_beam: BeamNode) -> None:
    for module in DOCUMENTED:
        undocumented = await ev(app_beam, f"""
            {{ok, {{docs_v1, _, erlang, _, #{{<<"en">> := _}}, _, Docs}}}} = code:get_doc({q(module)}),
            Exported = {q(module)}:module_info(exports) -- [{{module_info, 0}}, {{module_info, 1}}],
            [FA || FA <- Exported,
                   not lists:any(fun({{{{function, F, A}}, _, _, #{{<<"en">> := _}}, _}}) -> {{F, A}} =:= FA;
                                    (_) -> false end, Docs)]""")
        assert undocumented == [], (module, undocumented)


async def test_call_cast_ping(app_beam: BeamNode, python: Node) -> None:
    server = f"{{py_counter, {q(python.name)}}}"
    assert await ev(app_beam, f"'Elixir.BeamBridge':ping({q(python.name)})") == Atom("pong")
    assert await ev(app_beam, f"'Elixir.BeamBridge':call({server}, get)") == 7
    assert await ev(app_beam, f"'Elixir.BeamBridge':call({server}, {{add, 3}}, 1000)") == 10
    assert await ev(app_beam, f"'Elixir.BeamBridge':cast({server}, anything)") == Atom("ok")
    missing = await ev(app_beam, f"catch 'Elixir.BeamBridge':call({{nobody, {q(python.name)}}}, get)")
    assert missing == (Atom("EXIT"), (Atom("noproc"), (Atom("gen_server"), Atom("call"),
                                                        [(Atom("nobody"), python.atom), Atom("get"), 5000])))


async def test_rpc_results_and_errors(app_beam: BeamNode, python: Node) -> None:
    node = q(python.name)
    assert await ev(app_beam, f"'Elixir.BeamBridge':rpc({node}, pymath, add, [1, 2])") == 3
    assert await ev(app_beam, f"'Elixir.BeamBridge':rpc({node}, pymath, add, [1, 2], 2000)") == 3
    undef = await ev(app_beam, f"try 'Elixir.BeamBridge':rpc({node}, pymath, nope, []) "
                               f"catch error:{{exception, R, _}} -> R end")
    assert undef == Atom("undef")
    raised = await ev(app_beam, f"try 'Elixir.BeamBridge':rpc({node}, pymath, divide, [1, 0]) "
                                f"catch error:{{exception, R, _}} -> element(1, R) end")
    assert raised == Atom("python_exception")


async def test_child_spec_under_a_supervisor(app_beam: BeamNode, python: Node) -> None:
    spec = f"'Elixir.BeamBridge':child_spec([{{node, {q(python.name)}}}, {{actor, counter}}, {{args, 3}}])"
    assert await ev(app_beam, f"maps:get(id, {spec})") == Atom("counter")
    result = await ev(app_beam, f"""
        {{ok, Sup}} = beam_bridge_sup:start_link(#{{strategy => one_for_one, intensity => 5, period => 5}}, [{spec}]),
        [{{counter, Pid, worker, _}}] = supervisor:which_children(Sup),
        Value = gen_server:call(Pid, get),
        unlink(Sup), exit(Sup, shutdown),
        {{node(Pid), Value}}""")
    assert result == (python.atom, 3)
    started = await ev(app_beam, f"""
        {{ok, P}} = 'Elixir.BeamBridge':start_link(#{{node => {q(python.name)}, actor => counter, args => 4}}),
        V = gen_server:call(P, get), unlink(P), exit(P, kill), V""")
    assert started == 4


def test_a_rebar3_project_with_beam_bridge_in_checkouts_gets_the_docs(tmp_path: Path) -> None:
    """The rebar3 recipe of docs/elixir.md: ``_checkouts/beam_bridge`` -> the checkout's erl/."""
    project = tmp_path / "user_app"
    (project / "src").mkdir(parents=True)
    (project / "src" / "user_app.app.src").write_text(
        '{application, user_app, [{description, "uses beam_bridge"}, {vsn, "1"}, '
        "{applications, [kernel, stdlib, beam_bridge]}]}.\n")
    (project / "rebar.config").write_text("{deps, [beam_bridge]}.\n")
    (project / "_checkouts").mkdir()
    (project / "_checkouts" / "beam_bridge").symlink_to(REPO_ROOT / "erl")
    build = subprocess.run(["rebar3", "compile"], cwd=project, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    ebins = [str(p) for p in project.glob("_build/default/*/beam_bridge/ebin")]
    assert ebins, build.stdout
    pa = [arg for ebin in ebins for arg in ("-pa", ebin)]
    out = subprocess.run(["erl", "-noshell", *pa, "-eval",
                          "{ok, {docs_v1, _, erlang, _, #{<<\"en\">> := _}, _, _}} = "
                          "code:get_doc('Elixir.PyChild'), io:format(\"docs found~n\"), halt()."],
                         capture_output=True, text=True, timeout=60)
    assert "docs found" in out.stdout, out.stdout + out.stderr
