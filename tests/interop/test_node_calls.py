"""rpc and gen:call across the wire, both directions, on every required OTP major.

Python -> BEAM: ``Node.rpc`` through the peer's ``rex`` (value, exception, timeout,
nodedown) and ``Node.call`` speaking ``gen:call`` to a hand-written gen-protocol
loop (reply, ``noproc``, timeout, server crash, ``{nodedown, N}``).
BEAM -> Python: ``rpc:call`` and ``erpc:call`` of allow-listed functions (sync and
``async def``), exceptions, functions that were not allow-listed (``undef``), an
``rpc:call`` timeout, and ``gen_server:call``/``cast`` to a Python GenServer.
Elixir (OTP 25 only, where Elixir runs here): ``Agent`` and a ``GenServer`` module
defined with ``Code.eval_string``, called from Python. And :class:`BlockingNode`
from a plain thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bridge import BlockingNode, Node, RpcError, UnknownNode
from dist_proto import Mapping
from dist_proto.terms import Atom, Pid
from python_actors import CallError, Exit, GenServer, NoReply, Ok, Reply
from python_actors import stop as gen_stop
from tests.beam import TEST_COOKIE, BeamNode, Epmd, runtime, unique_name
from tests.interop.node_support import check, ev, eventually, py_name, py_node, q, scoped

pytestmark = pytest.mark.interop

# A gen-protocol server written with erl_eval (which cannot define modules):
# answers {'$gen_call', From, Req} with gen:reply/2, as gen_server does.
_GEN_LOOP = """
begin
  catch exit(whereis({name}), kill),
  Loop = fun L(N) ->
    receive
      {{'$gen_call', From, get}} -> gen:reply(From, N), L(N);
      {{'$gen_call', From, {{add, K}}}} -> gen:reply(From, N + K), L(N + K);
      {{'$gen_call', From, whoami}} -> gen:reply(From, From), L(N);
      {{'$gen_call', _From, silent}} -> L(N);
      {{'$gen_call', _From, crash}} -> exit(crashed);
      {{'$gen_cast', {{add, K}}}} -> L(N + K)
    end
  end,
  P = spawn(fun() -> Loop(0) end),
  register({name}, P),
  P
end
"""


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with py_node(epmd.port) as n:
        yield n


@pytest.fixture
async def gen_loop(beam: BeamNode) -> AsyncIterator[str]:
    name = unique_name("genloop")
    await ev(beam, _GEN_LOOP.format(name=name))
    yield name
    await ev(beam, f"catch exit(whereis({name}), kill)")


# -- rpc Python -> BEAM ----------------------------------------------------------------


async def test_rpc_to_beam_returns_value(beam: BeamNode, node: Node) -> None:
    assert await node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)
    assert await node.rpc(beam.name, "lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
    assert await node.rpc(beam.name, "erlang", "list_to_binary", [[104, 105]]) == b"hi"


async def test_rpc_to_beam_error_is_badrpc_exit(beam: BeamNode, node: Node) -> None:
    with pytest.raises(RpcError) as info:
        await node.rpc(beam.name, "erlang", "error", [Atom("boom")])
    reason = info.value.reason
    assert type(reason) is tuple and reason[0] == Atom("EXIT")
    assert reason[1][0] == Atom("boom")
    with pytest.raises(RpcError) as info:
        await node.rpc(beam.name, "no_such_module", "f", [])
    assert info.value.reason[0] == Atom("EXIT")
    assert info.value.reason[1][0] == Atom("undef")


async def test_rpc_to_beam_timeout(beam: BeamNode, node: Node) -> None:
    with pytest.raises(RpcError) as info:
        await node.rpc(beam.name, "timer", "sleep", [2000], timeout=0.5)
    assert info.value.reason == Atom("timeout")
    # The late answer is dropped; the connection keeps working.
    assert await node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)


async def test_rpc_to_missing_node_is_nodedown(node: Node) -> None:
    with pytest.raises(RpcError) as info:
        await node.rpc("nobody_here@127.0.0.1", "erlang", "node", [])
    assert info.value.reason == Atom("nodedown")
    assert isinstance(info.value.__cause__, UnknownNode)


# -- gen:call Python -> BEAM -----------------------------------------------------------


async def test_call_beam_gen_server(beam: BeamNode, node: Node, gen_loop: str) -> None:
    assert await node.call((gen_loop, beam.name), Atom("get")) == 0
    assert await node.call((gen_loop, beam.name), (Atom("add"), 5)) == 5
    await node.cast((gen_loop, beam.name), (Atom("add"), 10))
    assert await node.call((gen_loop, beam.name), Atom("get")) == 15
    # By pid too.
    pid = await ev(beam, f"whereis({gen_loop})")
    assert await node.call(pid, (Atom("add"), 1)) == 16
    # The From the server sees is {PythonPid, Tag} with a pid of our node.
    from_ = await node.call((gen_loop, beam.name), Atom("whoami"))
    assert type(from_[0]) is Pid and from_[0].node == node.atom


async def test_call_stdlib_gen_server(beam: BeamNode, node: Node) -> None:
    """A real gen_server: ``supervisor:count_children(kernel_sup)`` is a gen_server call."""
    got = await node.call(("kernel_sup", beam.name), Atom("count_children"))
    assert [k for k, _ in got] == [Atom("specs"), Atom("active"), Atom("supervisors"), Atom("workers")]
    assert got == await ev(beam, "supervisor:count_children(kernel_sup)")


async def test_call_noproc(beam: BeamNode, node: Node) -> None:
    with pytest.raises(CallError) as info:
        await node.call(("no_such_server", beam.name), Atom("get"), timeout=5)
    assert info.value.why == Atom("noproc")
    dead = await ev(beam, "spawn(fun() -> ok end)")
    with pytest.raises(CallError) as info:
        await node.call(dead, Atom("get"), timeout=5)
    assert info.value.why == Atom("noproc")


async def test_call_timeout(beam: BeamNode, node: Node, gen_loop: str) -> None:
    with pytest.raises(CallError) as info:
        await node.call((gen_loop, beam.name), Atom("silent"), timeout=0.3)
    assert info.value.why == Atom("timeout")
    assert await node.call((gen_loop, beam.name), Atom("get")) == 0


async def test_call_server_crash(beam: BeamNode, node: Node, gen_loop: str) -> None:
    with pytest.raises(CallError) as info:
        await node.call((gen_loop, beam.name), Atom("crash"), timeout=5)
    assert info.value.why == Atom("crashed")


async def test_call_nodedown(node: Node) -> None:
    with pytest.raises(CallError) as info:
        await node.call(("any", "nobody_here@127.0.0.1"), Atom("get"), timeout=2)
    assert info.value.why == (Atom("nodedown"), Atom("nobody_here@127.0.0.1"))


# -- BEAM -> Python ----------------------------------------------------------------------


def _allow(node: Node) -> dict[str, Any]:
    state: dict[str, Any] = {"slow_started": 0, "slow_finished": 0}

    def add(a: int, b: int) -> int:
        return a + b

    async def aadd(a: int, b: int) -> int:
        await asyncio.sleep(0.01)
        return a + b

    def boom(msg: bytes) -> None:
        raise ValueError(msg.decode())

    def leave(reason: Any) -> None:
        raise Exit(reason)

    async def slow(ms: int) -> int:
        state["slow_started"] += 1
        await asyncio.sleep(ms / 1000)
        state["slow_finished"] += 1
        return ms

    node.allow_rpc("pymath", "add", add)
    node.allow_rpc("pymath", "aadd", aadd)
    node.allow_rpc("pymath", "boom", boom)
    node.allow_rpc("pymath", "leave", leave)
    node.allow_rpc("pymath", "slow", slow)
    return state


async def test_beam_rpc_call_into_python(beam: BeamNode, node: Node) -> None:
    _allow(node)
    py = q(node.name)
    assert await ev(beam, f"rpc:call({py}, pymath, add, [1, 2])") == 3
    assert await ev(beam, f"rpc:call({py}, pymath, aadd, [40, 2])") == 42
    assert await ev(beam, f"erpc:call({py}, pymath, add, [1, 2])") == 3
    assert await ev(beam, f"erpc:call({py}, pymath, aadd, [3, 4], 5000)") == 7
    # Several in parallel from several BEAM processes.
    got = await ev(beam, f"erpc:multicall([{py}, {py}, {py}], pymath, aadd, [1, 1])")
    assert got == [(Atom("ok"), 2)] * 3


async def test_beam_rpc_exception_from_python(beam: BeamNode, node: Node) -> None:
    _allow(node)
    py = q(node.name)
    got = await ev(beam, f"rpc:call({py}, pymath, boom, [<<\"kaput\">>])")
    assert got[0] == Atom("badrpc")
    assert got[1][0] == Atom("EXIT")
    py_reason = got[1][1][0]
    assert py_reason[:3] == (Atom("python_exception"), b"ValueError", b"kaput")
    got = await ev(
        beam, f"try erpc:call({py}, pymath, boom, [<<\"kaput\">>]) catch C:R -> {{C, R}} end"
    )
    assert got[0] == Atom("error")
    assert got[1][0] == Atom("exception")
    assert got[1][1][:3] == (Atom("python_exception"), b"ValueError", b"kaput")
    # A return value with no Erlang form is reported as a TypeError of the function.
    node.allow_rpc("pymath", "opaque", lambda: object())
    got = await ev(beam, f"rpc:call({py}, pymath, opaque, [], 5000)")
    assert got[0] == Atom("badrpc")
    assert got[1][1][0][:2] == (Atom("python_exception"), b"TypeError")
    got = await ev(beam, f"try erpc:call({py}, pymath, opaque, [], 5000) catch C:R -> {{C, R}} end")
    assert got[1][1][:2] == (Atom("python_exception"), b"TypeError")
    # raise Exit(R) is exit(R): erpc exits with {exception, R}.
    got = await ev(beam, f"try erpc:call({py}, pymath, leave, [bye]) catch C:R -> {{C, R}} end")
    assert got == (Atom("exit"), (Atom("exception"), Atom("bye")))


async def test_beam_rpc_not_allow_listed_is_undef(beam: BeamNode, node: Node) -> None:
    _allow(node)
    py = q(node.name)
    got = await ev(beam, f"rpc:call({py}, os, cmd, [\"true\"])")
    assert got[0] == Atom("badrpc")
    assert got[1][0] == Atom("EXIT")
    assert got[1][1][0] == Atom("undef")
    got = await ev(beam, f"try erpc:call({py}, os, cmd, [\"true\"]) catch C:R -> {{C, R}} end")
    assert got[0] == Atom("error")
    assert got[1][0] == Atom("exception")
    assert got[1][1] == Atom("undef")
    # The old rex protocol is allow-listed the same way.
    got = await ev(beam, f"gen_server:call({{rex, {py}}}, {{call, os, cmd, [\"true\"], user}})")
    assert got[0] == Atom("badrpc")
    assert got[1][1][0] == Atom("undef")
    assert await ev(beam, f"gen_server:call({{rex, {py}}}, {{call, pymath, add, [2, 2], user}})") == 4


async def test_beam_rpc_timeout_into_slow_python(beam: BeamNode, node: Node) -> None:
    state = _allow(node)
    py = q(node.name)
    got = await ev(beam, f"rpc:call({py}, pymath, slow, [1000], 300)")
    assert got == (Atom("badrpc"), Atom("timeout"))
    assert state["slow_started"] == 1
    # erpc abandons (demonitors) the call; the late end of the Python process is
    # dropped and the connection and the rpc service keep working.
    await eventually(lambda: state["slow_finished"] == 1, 5, "slow function finished")
    assert await ev(beam, f"rpc:call({py}, pymath, add, [5, 5], 2000)") == 10
    await check(beam, "receive _ -> false after 200 -> true end")
    assert node.is_connected(beam.name)


class PyCounter(GenServer):
    def init(self, n: int) -> Ok:
        return Ok(n)

    def handle_call(self, request: Any, from_: Any, n: int) -> Any:
        if request == Atom("get"):
            return Reply(n, n)
        if request == Atom("never"):
            return NoReply(n)
        return Reply((Atom("error"), Atom("unknown")), n)

    def handle_cast(self, request: Any, n: int) -> Any:
        if type(request) is tuple and request[0] == Atom("add"):
            return NoReply(n + request[1])
        return NoReply(n)


async def test_beam_gen_server_call_to_python(beam: BeamNode, node: Node) -> None:
    pid = await PyCounter.start(7, name="py_counter", runtime=node.runtime)
    py = q(node.name)
    try:
        assert await ev(beam, f"gen_server:call({{py_counter, {py}}}, get)") == 7
        await check(beam, f"ok =:= gen_server:cast({{py_counter, {py}}}, {{add, 3}})")
        assert await ev(beam, f"gen_server:call({{py_counter, {py}}}, get, 2000)") == 10
        got = await ev(beam, f"catch gen_server:call({{py_counter, {py}}}, never, 300)")
        assert got[0] == Atom("EXIT") and got[1][0] == Atom("timeout")
        got = await ev(beam, f"catch gen_server:call({{no_such_py_server, {py}}}, get, 2000)")
        assert got[0] == Atom("EXIT") and got[1][0] == Atom("noproc")
        # By pid: a Python pid the BEAM got in a message.
        async with node.process() as me:
            await node.send(await ev(beam, "self()"), (Atom("counter_pid"), pid))
            got = await ev(beam, "receive {counter_pid, P} -> gen_server:call(P, get) after 5000 -> timeout end")
            assert got == 10
            assert me.pid.node == node.atom
    finally:
        await gen_stop(pid, runtime=node.runtime)


# -- Elixir (OTP 25) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def elixir(epmd: Epmd) -> Iterator[BeamNode]:
    with BeamNode(runtime("otp25"), epmd_port=epmd.port, prefix="ex", elixir=True) as ex:
        yield ex


_COUNTER = (
    "defmodule Counter do; use GenServer;"
    " def init(n), do: {:ok, n};"
    " def handle_call(:get, _from, n), do: {:reply, n, n};"
    " def handle_call({:add, k}, _from, n), do: {:reply, n + k, n + k};"
    " def handle_cast({:add, k}, n), do: {:noreply, n + k};"
    " end;"
    " GenServer.start(Counter, 0, name: Counter)"
)


async def test_elixir_genserver_call(elixir: BeamNode, node: Node) -> None:
    got = await ev(elixir, f"'Elixir.Code':eval_string(<<\"{_COUNTER}\">>)")
    assert got[0][0] == Atom("ok")
    try:
        target = ("Elixir.Counter", elixir.name)
        assert await node.call(target, Atom("get")) == 0
        assert await node.call(target, (Atom("add"), 2)) == 2
        await node.cast(target, (Atom("add"), 40))
        assert await node.call(target, Atom("get")) == 42
        with pytest.raises(CallError) as info:
            await node.call(("Elixir.NoSuchServer", elixir.name), Atom("get"))
        assert info.value.why == Atom("noproc")
    finally:
        await ev(elixir, "catch 'Elixir.GenServer':stop('Elixir.Counter')")


async def test_elixir_agent(elixir: BeamNode, node: Node) -> None:
    name = unique_name("agent")
    got = await ev(elixir, f"'Elixir.Agent':start(fun() -> 10 end, [{{name, {name}}}])")
    assert got[0] == Atom("ok")
    try:
        # Agent.update(agent, :erlang, :+, [5]) and Agent.get(agent, :erlang, :abs, []).
        update = (Atom("update"), (Atom("erlang"), Atom("+"), [5]))
        assert await node.call((name, elixir.name), update) == Atom("ok")
        get = (Atom("get"), (Atom("erlang"), Atom("abs"), []))
        assert await node.call((name, elixir.name), get) == 15
        assert await ev(elixir, f"'Elixir.Agent':get({name}, fun(X) -> X end)") == 15
    finally:
        await ev(elixir, f"catch 'Elixir.Agent':stop({name})")


async def test_elixir_calls_python_genserver(elixir: BeamNode, node: Node) -> None:
    pid = await PyCounter.start(1, name="py_counter_ex", runtime=node.runtime)
    try:
        got = await ev(elixir, f"'Elixir.GenServer':call({{py_counter_ex, {q(node.name)}}}, get)")
        assert got == 1
        assert await ev(elixir, f"'Elixir.Node':ping({q(node.name)})") == Atom("pong")
    finally:
        await gen_stop(pid, runtime=node.runtime)


# -- BlockingNode --------------------------------------------------------------------


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_blocking_node_from_plain_thread(
    beam: BeamNode, epmd: Epmd, loop_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On both loops: ``make venv`` installs the ``[fast]`` extra, so uvloop runs here."""
    monkeypatch.setenv("BEAM_BRIDGE_LOOP", loop_kind)
    name = unique_name("genloop")
    beam.eval(scoped(_GEN_LOOP.format(name=name)))
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with BlockingNode(py_name("blk"), cookie=TEST_COOKIE, epmd_port=epmd.port) as bn:
                results["ping"] = bn.ping(beam.name)
                results["pang"] = bn.ping("nobody_here@127.0.0.1")
                results["rpc"] = bn.rpc(beam.name, "erlang", "node", [])
                results["call"] = bn.call((name, beam.name), (Atom("add"), 3))
                bn.cast((name, beam.name), (Atom("add"), 1))
                results["call2"] = bn.call((name, beam.name), Atom("get"))
                results["str"] = bn.rpc(beam.name, "erlang", "atom_to_binary", [Atom("abc")],
                                        mapping=Mapping(strings=True))
                results["kw"] = bn.rpc(beam.name, "lists", "append", [[1]], kwargs={"a": 2})
                try:
                    bn.rpc(beam.name, "erlang", "error", [Atom("x")])
                except RpcError as exc:
                    results["rpc_error"] = exc.reason[0]
                results["name"] = bn.name
                results["loop"] = bn.loop_kind
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    try:
        t = threading.Thread(target=work)
        t.start()
        t.join(60)
        assert not t.is_alive()
        assert not errors, errors
        assert results == {
            "ping": True,
            "pang": False,
            "rpc": Atom(beam.name),
            "call": 3,
            "call2": 4,
            "str": "abc",
            "kw": [1, (Atom("a"), 2)],
            "rpc_error": Atom("EXIT"),
            "name": results["name"],
            "loop": loop_kind,
        }
        # Once closed, the node is gone from the BEAM's view.
        beam.check(
            f"(fun W(0) -> false; W(N) -> case lists:member({q(results['name'])}, nodes(hidden)) of"
            " false -> true; true -> timer:sleep(20), W(N - 1) end end)(250)"
        )
    finally:
        beam.eval(f"catch exit(whereis({name}), kill)")


# -- BEAM spawns Python processes ----------------------------------------------------


async def test_beam_spawns_allow_listed_python_process(beam: BeamNode, node: Node) -> None:
    async def greeter(proc: Any, parent: Pid, greeting: bytes) -> None:
        proc.send(parent, (Atom("hello_from"), proc.pid, greeting))
        msg = await proc.receive(timeout=5)
        if msg == Atom("crash"):
            raise Exit(Atom("asked_to"))

    node.allow_spawn("pyactors", "greeter", greeter)
    py = q(node.name)
    got = await ev(
        beam,
        f"begin P = spawn({py}, pyactors, greeter, [self(), <<\"hej\">>]),"
        " receive {hello_from, P, G} -> P ! bye, {node(P), G} after 5000 -> timeout end end",
    )
    assert got == (node.atom, b"hej")
    got = await ev(
        beam,
        f"begin {{P, Ref}} = spawn_monitor({py}, pyactors, greeter, [self(), <<>>]),"
        " receive {hello_from, P, _} -> P ! crash end,"
        " receive {'DOWN', Ref, process, P, R} -> R after 5000 -> timeout end end",
    )
    assert got == Atom("asked_to")
    got = await ev(
        beam,
        f"begin Ref = spawn_request({py}, os, cmd, [\"true\"], [monitor]),"
        " receive {spawn_reply, Ref, Res, Why} -> {Res, Why} after 5000 -> timeout end end",
    )
    assert got == (Atom("error"), Atom("notsup"))


async def test_call_global_and_via_names(runtime: Any, epmd: Epmd) -> None:
    """GenServer.call({:global, name}) and {:via, :global, name} shapes from Python."""
    with BeamNode(runtime, epmd_port=epmd.port, prefix="glob") as beam:
        gname = unique_name("g")
        await asyncio.to_thread(
            beam.eval,
            "Srv = spawn(fun L() -> receive {'$gen_call', {F, T}, R} -> F ! {T, {echo, R}}, L() end end), "
            f"yes = global:register_name({gname}, Srv)",
        )
        async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as py:
            assert await py.ping(beam.name)
            assert await py.call(("global", Atom(gname)), 1) == (Atom("echo"), 1)
            assert await py.call(("via", "global", Atom(gname)), 2, via=beam.name) == (Atom("echo"), 2)
            with pytest.raises(CallError) as err:
                await py.call(("global", Atom("nobody_here")), 3)
            assert err.value.why == Atom("noproc")
