"""Python object handles held by BEAM processes (OTP 25 and 28): a handle from a
Python GenServer's reply is used in later calls; the object is freed when the
holder exits, when it is released (``beam_bridge:release/1``), or when the
holder's node goes down; a stale handle gives ``{error, {stale_handle, H}}``."""

from __future__ import annotations

import gc
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bridge import Node
from dist_proto.terms import Atom, Reference
from python_actors import GenServer, Ok, Reply
from python_actors.handles import catch_stale_handles, handle_table
from tests.beam import BeamNode, Epmd, Runtime
from tests.interop.erl_build import rebar3_ebin
from tests.interop.node_support import ev, eventually, py_node, q

pytestmark = pytest.mark.interop

OK, ERROR = Atom("ok"), Atom("error")


class Line:
    """A 'model' that cannot be serialised (a plain object)."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict(self, x: float) -> float:
        return self.slope * x


class Models(GenServer):
    def init(self, args: Any) -> Any:
        self.made: list[weakref.ref[Line]] = []
        return Ok(None)

    @catch_stale_handles
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        table = handle_table(self.runtime)
        if request[0] == Atom("load"):
            model = Line(request[1])
            self.made.append(weakref.ref(model))
            return Reply((OK, table.new(model, holder=from_)), state)
        _, handle, x = request
        return Reply(table.resolve(handle).predict(x), state)


@pytest.fixture(scope="module")
def app(runtime: Runtime, epmd: Epmd) -> Iterator[BeamNode]:
    with BeamNode(runtime, epmd_port=epmd.port, prefix="handles",
                  extra_args=["-pa", str(rebar3_ebin())]) as node:
        yield node


@pytest.fixture
async def python(epmd: Epmd) -> AsyncIterator[tuple[Node, Models]]:
    async with py_node(epmd.port) as node:
        pid = await Models.start(runtime=node.runtime, name="py_models")
        proc = node.runtime.process(pid)
        assert proc is not None and isinstance(proc.behaviour, Models)
        yield node, proc.behaviour


def holder(name: str, py: str, slope: float) -> str:
    """A BEAM process registered as ``name`` that loads a model and keeps its handle,
    running the funs it is sent on it; the expression returns the handle."""
    return f"""
      Self = self(),
      P = spawn(fun() ->
            {{ok, H}} = gen_server:call({{py_models, {q(py)}}}, {{load, {slope}}}),
            Self ! {{self(), H}},
            Loop = fun L() -> receive {{run, From, F}} -> From ! {{self(), F(H)}}, L(); stop -> ok end end,
            Loop()
          end),
      register({name}, P),
      receive {{P, H}} -> H after 10000 -> no_handle end"""


def run_in(name: str, fun: str) -> str:
    """Run ``fun(H)`` inside the holder ``name`` and return its result."""
    p, r = f"P_{name}", f"R_{name}"  # nested run_in's must not share variables
    return (f"(fun() -> {p} = whereis({name}), {p} ! {{run, self(), {fun}}}, "
            f"receive {{{p}, {r}}} -> {r} after 10000 -> no_answer end end)()")


def predict(py: str, x: float) -> str:
    return f"fun(H) -> gen_server:call({{py_models, {q(py)}}}, {{predict, H, {x}}}) end"


def models_made(models: Models) -> list[Line | None]:
    gc.collect()
    return [ref() for ref in models.made]


async def test_a_handle_is_used_in_later_calls_and_freed_when_its_holder_exits(
        app: BeamNode, python: tuple[Node, Models]) -> None:
    node, models = python
    table = handle_table(node.runtime)
    h = await ev(app, holder("h_exit", node.name, 2.0))
    assert type(h) is tuple and h[0] == Atom("$py_handle") and type(h[1]) is Reference
    assert h[1].node == node.atom and h[2] == b"tests.interop.test_handles.Line"
    assert await ev(app, "beam_bridge:is_handle(" + run_in("h_exit", "fun(H) -> H end") + ")") is True
    for x in (1.0, 2.5, 10.0):
        assert await ev(app, run_in("h_exit", predict(node.name, x))) == 2.0 * x
    assert len(table) == 1 and await ev(app, f"beam_bridge:handle_count({q(node.name)})") == 1
    await ev(app, "h_exit ! stop")
    await eventually(lambda: len(table) == 0, what="the handle freed after its holder exited")
    assert models_made(models) == [None], "the Python object was collected"
    assert await ev(app, f"beam_bridge:handle_count({q(node.name)})") == 0


async def test_release_acquire_and_stale_handles(app: BeamNode, python: tuple[Node, Models]) -> None:
    node, models = python
    table = handle_table(node.runtime)
    h = await ev(app, holder("h_rel", node.name, 3.0))
    # A second BEAM process acquires it; the first releases: the object stays.
    await ev(app, holder("h_other", node.name, 5.0))
    assert await ev(app, run_in("h_other", "fun(_) -> 'Elixir.BeamBridge':acquire("
                                + run_in("h_rel", "fun(H) -> H end") + ") end")) == OK
    assert len(table) == 2
    assert await ev(app, run_in("h_rel", "fun(H) -> beam_bridge:release(H) end")) == OK
    assert await ev(app, run_in("h_rel", "fun(H) -> beam_bridge:release(H) end")) == (ERROR, Atom("not_holder"))
    assert await ev(app, run_in("h_rel", predict(node.name, 2.0))) == 6.0
    # The last holder releases: freed, and every later use is a clear error term.
    release_from_other = run_in("h_other", "fun(_) -> 'Elixir.BeamBridge':release("
                                + run_in("h_rel", "fun(H) -> H end") + ") end")
    assert await ev(app, release_from_other) == OK
    assert len(table) == 1
    stale = (ERROR, (Atom("stale_handle"), h))
    assert await ev(app, run_in("h_rel", predict(node.name, 2.0))) == stale
    assert await ev(app, run_in("h_rel", "fun(H) -> beam_bridge:release(H) end")) == stale
    assert await ev(app, run_in("h_rel", "fun(H) -> beam_bridge:acquire(H) end")) == stale
    # A handle-shaped term whose node has no handle table: stale, not a crash.
    assert await ev(app, "H = {'$py_handle', make_ref(), <<\"x\">>}, "
                         "beam_bridge:release(H) =:= {error, {stale_handle, H}}") is True
    assert (await ev(app, "beam_bridge:release(not_a_handle)")) == (ERROR, (Atom("not_a_handle"), Atom("not_a_handle")))
    assert models_made(models)[0] is None
    await ev(app, "h_rel ! stop, h_other ! stop")
    await eventually(lambda: len(table) == 0, what="the other model freed")


async def test_nodedown_of_the_holders_node_frees_its_handles(app: BeamNode, python: tuple[Node, Models]) -> None:
    node, models = python
    table = handle_table(node.runtime)
    await ev(app, holder("h_down", node.name, 7.0))
    assert len(table) == 1
    assert await ev(app, f"erlang:disconnect_node({q(node.name)})") is True
    await eventually(lambda: len(table) == 0, what="the handle freed on nodedown")
    assert models_made(models) == [None]
    # The holder is still alive on its node, with a stale handle: a clear error.
    h = await ev(app, run_in("h_down", "fun(H) -> H end"))
    assert await ev(app, run_in("h_down", predict(node.name, 1.0))) == (ERROR, (Atom("stale_handle"), h))
    await ev(app, "h_down ! stop")


def test_the_elixir_helpers_have_docs_in_iex() -> None:
    import shutil
    import subprocess

    elixir = shutil.which("elixir")
    assert elixir, "Elixir is part of the test set-up (make deps)"
    out = subprocess.run([elixir, "-pa", str(rebar3_ebin()), "-e",
                          "import IEx.Helpers; h BeamBridge.release/1; h BeamBridge.acquire/1; h :beam_bridge.release/1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for text in ("Release a Python object handle held by the calling process",
                 "Keep a Python object handle alive from the calling process",
                 "Drop the calling process's hold on a handle"):
        assert text in out.stdout, f"{text!r} not in:\n{out.stdout}"
