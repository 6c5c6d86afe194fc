"""Codec options against real BEAM nodes (OTP 25 and 28, and Elixir on OTP 25): a Python
node decoding strings and structs sees ``str`` and dataclasses, its replies are the same
terms again on the BEAM (checked with ``==`` there), keyword lists become keyword
arguments, and a per-call mapping overrides the node's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom
from dist_proto.mapping import Mapping
from dist_proto.terms import Charlist
from python_actors import GenServer, Ok, Reply
from tests.beam import BeamNode, Epmd
from tests.beam import runtime as find_runtime
from tests.interop.erl_build import rebar3_ebin
from tests.interop.node_support import check, ev, py_node, q

pytestmark = pytest.mark.interop


@dataclass
class User:
    name: str
    age: int = 0


MAPPING = Mapping(strings=True, charlists=True, structs={"Elixir.MyApp.User": User})


class Echo(GenServer):
    """Replies ``{Request, TypeNames}``: the request as it came, and the Python type of
    each element (the request is a tuple)."""

    def init(self, arg: Any) -> Any:
        return Ok(None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply((request, [type(x).__name__ for x in request]), state)


def scale(x: int, *, factor: int = 1, offset: int = 0) -> int:
    return x * factor + offset


def options(x: int, **opts: Any) -> Any:
    return (x, sorted(opts))


def pairs(x: int, items: list[Any]) -> Any:
    return (x, items)


async def report(proc: Any, parent: Any, *, tag: Any = None) -> None:
    """Spawned from BEAM with ``[Parent, [{tag, T}]]``: sends ``{tag, T}`` to ``Parent``."""
    proc.send(parent, (Atom("tag"), tag))


@pytest.fixture
async def python(epmd: Epmd) -> AsyncIterator[Node]:
    async with py_node(epmd.port, prefix="pymap", mapping=MAPPING) as node:
        await Echo.start(None, runtime=node.runtime, name="mapper")
        node.allow_rpc("pykw", "scale", scale)
        node.allow_rpc("pykw", "options", options)
        node.allow_rpc("pykw", "pairs", pairs)
        node.allow_spawn("pykw", "report", report)
        yield node


_USER = "#{'__struct__' => 'Elixir.MyApp.User', name => <<\"José\"/utf8>>, age => 3}"


async def test_strings_charlists_and_structs_arrive_mapped_and_go_back_unchanged(
    beam: BeamNode, python: Node
) -> None:
    request = f"{{#{{name => <<\"José\"/utf8>>}}, {_USER}, <<255, 0>>, \"abc\", [1, 2000]}}"
    await check(beam, (
        f"Req = {request}, "
        f"{{Echo, Types}} = gen_server:call({{mapper, {q(python.name)}}}, Req), "
        "Echo == Req andalso Types == [<<\"dict\">>, <<\"User\">>, <<\"bytes\">>, "
        "<<\"Charlist\">>, <<\"list\">>]"
    ))


async def test_python_sends_a_dataclass_as_the_struct(beam: BeamNode, python: Node) -> None:
    await ev(beam, "register(mapping_inbox, self()), ok")
    try:
        await python.send(("mapping_inbox", beam.name), (Atom("mapped"), User("José", 3), "text", Charlist("ab")))
        await check(beam, (
            f"receive {{mapped, U, T, C}} -> {{U, T, C}} == {{{_USER}, <<\"text\">>, \"ab\"}} "
            "after 5000 -> timeout end"
        ))
    finally:
        await ev(beam, "unregister(mapping_inbox)")


async def test_keyword_list_becomes_keyword_arguments(beam: BeamNode, python: Node) -> None:
    py = q(python.name)
    await check(beam, f"rpc:call({py}, pykw, scale, [2, [{{factor, 5}}, {{offset, 1}}]]) =:= 11")
    await check(beam, f"erpc:call({py}, pykw, scale, [2, [{{factor, 5}}]]) =:= 10")
    await check(beam, f"rpc:call({py}, pykw, options, [1, [{{a, 1}}, {{b, 2}}]]) =:= {{1, [<<\"a\">>, <<\"b\">>]}}")
    # a genuine list of tuples for a function without keyword parameters stays a list
    await check(beam, f"rpc:call({py}, pykw, pairs, [1, [{{a, 1}}]]) =:= {{1, [{{a, 1}}]}}")
    # a key the function does not take: the list is an argument, and scale/2 has no room
    await check(beam, (
        f"{{badrpc, {{'EXIT', _}}}} = rpc:call({py}, pykw, scale, [2, [{{nope, 1}}]]), true"
    ))


async def test_spawn_arguments_take_a_keyword_list(beam: BeamNode, python: Node) -> None:
    py = q(python.name)
    await check(beam, (
        f"Self = self(), spawn({py}, pykw, report, [Self, [{{tag, hello}}]]), "
        "receive {tag, T} -> T =:= hello after 5000 -> timeout end"
    ))


async def test_beam_bridge_start_args_take_a_keyword_list(beam: BeamNode, python: Node) -> None:
    inbox = (Atom("mapping_started"), Atom(beam.name))

    async def started(proc: Any, *, tag: Any = None) -> None:
        proc.send(inbox, (Atom("started"), tag))

    python.allow_spawn("kw_actor", started)
    ebin = rebar3_ebin()
    await ev(beam, f"code:add_patha(\"{ebin}\"), register(mapping_started, self()), ok")
    try:
        await check(beam, (
            f"{{ok, _}} = beam_bridge:start({q(python.name)}, kw_actor, [{{tag, hi}}]), "
            "receive {started, T} -> T =:= hi after 5000 -> timeout end"
        ))
    finally:
        await ev(beam, "unregister(mapping_started)")


async def test_per_call_mapping_overrides_the_node(beam: BeamNode, python: Node) -> None:
    assert await python.rpc(beam.name, "erlang", "list_to_binary", [[104, 105]]) == "hi"
    raw = await python.rpc(beam.name, "erlang", "list_to_binary", [[104, 105]], mapping=Mapping())
    assert raw == b"hi" and type(raw) is bytes
    user = await python.rpc(beam.name, "erlang", "binary_to_term", [await ev(beam, f"term_to_binary({_USER})")])
    assert user == User("José", 3)
    plain = await python.rpc(beam.name, "erlang", "binary_to_term",
                             [await ev(beam, f"term_to_binary({_USER})")], mapping=Mapping(strings=True))
    assert plain == {Atom("__struct__"): Atom("Elixir.MyApp.User"), Atom("name"): "José", Atom("age"): 3}
    # kwargs from Python: a keyword list as the last argument
    assert await python.rpc(beam.name, "proplists", "get_value", [Atom("b")], kwargs={"a": 1, "b": 2}) == 2
    echo = await python.call("mapper", (b"x",), mapping=Mapping())
    assert echo == ((b"x",), [b"bytes"])  # a local actor's reply, remapped as if it had crossed


# -- Elixir (OTP 25) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def elixir(epmd: Epmd) -> Iterator[BeamNode]:
    with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, prefix="exmap", elixir=True) as ex:
        got = ex.eval_term(
            "'Elixir.Code':eval_string(<<\"defmodule MyApp.User do defstruct name: nil, age: 0 end\">>)"
        )
        assert got[0][0] == Atom("module")
        yield ex


def _elixir(code: str) -> str:
    """Erlang text that evaluates Elixir ``code`` and returns its value."""
    escaped = code.replace("\\", "\\\\").replace('"', '\\"')
    return f"element(1, 'Elixir.Code':eval_string(<<\"{escaped}\"/utf8>>))"


async def test_elixir_struct_and_string_round_trip(elixir: BeamNode, python: Node) -> None:
    py = python.name
    got = await ev(elixir, _elixir(
        f"req = {{%{{name: \"José\"}}, %MyApp.User{{name: \"José\", age: 3}}, 'abc'}}; "
        f"{{echo, types}} = GenServer.call({{:mapper, :\"{py}\"}}, req); "
        "{echo == req, types}"
    ))
    assert got == (True, [b"dict", b"User", b"Charlist"])


async def test_elixir_keyword_rpc(elixir: BeamNode, python: Node) -> None:
    py = python.name
    got = await ev(elixir, _elixir(
        f"{{:rpc.call(:\"{py}\", :pykw, :scale, [2, [factor: 5, offset: 1]]), "
        f":erpc.call(:\"{py}\", :pykw, :options, [1, [b: 2, a: 1]])}}"
    ))
    assert got == (11, (1, [b"a", b"b"]))


async def test_elixir_receives_the_dataclass_as_its_struct(elixir: BeamNode, python: Node) -> None:
    await ev(elixir, "register(mapping_inbox, self()), ok")
    try:
        await python.send(("mapping_inbox", elixir.name), (Atom("mapped"), User("Zoë", 7)))
        got = await ev(elixir, _elixir(
            "receive do {:mapped, m} -> {m == %MyApp.User{name: \"Zoë\", age: 7}, is_struct(m, MyApp.User)} "
            "after 5000 -> :timeout end"
        ))
        assert got == (True, True)
    finally:
        await ev(elixir, "unregister(mapping_inbox)")
