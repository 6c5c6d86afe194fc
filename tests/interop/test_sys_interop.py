"""OTP's ``sys`` from real BEAM nodes (OTP 25 and 28) on Python GenServers and Supervisors,
compared with a real gen_server on the same node; hot upgrade from Erlang while calls
flow; ``gen:call`` from Python with alias tags (a late reply never reaches handle_info);
``python -m bridge upgrade``."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom, ImproperList, Pid
from python_actors import (
    CallError,
    GenServer,
    NoReply,
    Ok,
    Reply,
    Supervisor,
    call,
)
from python_actors import sys_protocol as sys_api
from python_actors.hot_upgrade import rpc_upgrade_module
from tests.beam import TEST_COOKIE, BeamNode, Epmd, Runtime, pid_expr, unique_name
from tests.beam import runtime as find_runtime
from tests.bridge.test_cli import run_cli
from tests.interop.node_support import ev, eventually, q

pytestmark = pytest.mark.interop

FIXTURE = Path(__file__).parent / "fixtures" / "sys_ref.erl"


@pytest.fixture(scope="session")
def sys_ref_ebin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sys_ref.erl compiled with OTP 25's erlc (loads on 25 and 28)."""
    out = tmp_path_factory.mktemp("sys_ref_ebin")
    subprocess.run(["erlc", "-o", str(out), str(FIXTURE)], check=True)
    return out


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd, sys_ref_ebin: Path) -> Iterator[BeamNode]:
    with BeamNode(runtime, epmd_port=epmd.port, prefix="sys", extra_args=["-pa", str(sys_ref_ebin)]) as node:
        yield node


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as n:
        yield n


class Mirror(GenServer):
    """The Python twin of sys_ref.erl."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == Atom("get"):
            return Reply(state, state)
        return Reply((Atom("echo"), request), state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return NoReply(state)

    def handle_info(self, message: Any, state: Any) -> Any:
        return NoReply(state)

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> Any:
        return Ok((state, extra))


#: Each sys call, as an Erlang expression on server P; run on a gen_server and on a
#: Python GenServer holding the same state, in this order; the answers must be equal.
SYS_SEQUENCE = [
    "sys_ref:shape(sys:get_state(P))",
    "sys_ref:shape(sys:replace_state(P, fun({counter, N}) -> {counter, N + 1} end))",
    "sys_ref:shape(sys_ref:raw(P, get_state))",
    "sys_ref:shape(catch sys:replace_state(P, fun(_) -> error(boom) end))",
    "sys_ref:status_shape(sys:get_status(P))",
    "sys:suspend(P)",
    "sys_ref:status_shape(sys:get_status(P))",
    "sys_ref:shape(sys:get_state(P))",
    "sys:resume(P)",
    "sys:statistics(P, true)",
    "gen_server:call(P, hello), gen_server:cast(P, c), P ! i, sys_ref:shape(sys:statistics(P, get))",
    "sys:log(P, true)",
    "gen_server:call(P, hello), gen_server:cast(P, c), P ! i, sys_ref:shape(sys:log(P, get))",
    "sys:log(P, print)",
    "sys:trace(P, true)",
    "sys:trace(P, false)",
    "sys_ref:status_shape(sys:get_status(P))",
    "sys:no_debug(P)",
    "sys:statistics(P, get)",
    "sys:log(P, get)",
    "sys_ref:raw(P, bogus)",
    "sys_ref:raw(P, {debug, bogus})",
    "sys:change_code(P, sys_ref, \"1\", x)",
    "T = sys:terminate(P, normal), M = erlang:monitor(process, P), "
    "receive {'DOWN', M, _, _, W} when W =:= normal; W =:= noproc -> {T, down} after 5000 -> {T, alive} end",
]


async def test_each_sys_call_answers_as_a_gen_server_does(node: Node, beam: BeamNode) -> None:
    state = (Atom("counter"), 42)
    pid = await Mirror.start(state, runtime=node.runtime)
    ref_name = unique_name("sys_ref")
    await ev(beam, f"{{ok, R}} = sys_ref:start({{counter, 42}}), register({ref_name}, R), ok")
    reference, python = [], []
    for expr in SYS_SEQUENCE:
        reference.append(await ev(beam, f"P = whereis({ref_name}), {expr}"))
        python.append(await ev(beam, f"P = {pid_expr(pid)}, {expr}"))
        assert python[-1] == reference[-1], f"{expr}: Python {python[-1]!r} != gen_server {reference[-1]!r}"
    # the answers are not trivial: the release's own shapes
    assert reference[2] == ((Atom("ok"), (Atom("counter"), 43)) if beam.runtime.major >= 26 else (Atom("counter"), 43))
    assert reference[5] == Atom("ok") and reference[6][3][1] == Atom("suspended")
    assert reference[20] == (Atom("error"), (Atom("unknown_system_msg"), Atom("bogus")))
    assert reference[-1] == (Atom("ok"), Atom("down"))
    await eventually(lambda: not node.runtime.is_alive(pid), what="terminated")


async def test_sys_on_a_python_supervisor_and_a_state_without_erlang_form(node: Node, beam: BeamNode) -> None:
    class Handle:
        def __init__(self) -> None:
            self.socket = object()
            self.name = "model"

    holder = await GenServer.start(Handle(), runtime=node.runtime)
    state = await ev(beam, f"sys:get_state({pid_expr(holder)})")
    assert state[Atom("__class__")] == Atom(f"{Handle.__module__}.{Handle.__qualname__}")
    assert state[Atom("name")] == b"model" and state[Atom("socket")][0] == Atom("$python")
    assert node.runtime.is_alive(holder)
    failed = await ev(beam, f"catch sys:replace_state({pid_expr(holder)}, fun(S) -> S end)")
    assert failed[0] == Atom("EXIT") and failed[1][0][0] == Atom("callback_failed")
    # another node may not make the Python node write files
    refused = await ev(beam, f"sys:log_to_file({pid_expr(holder)}, \"/tmp/{unique_name('no')}.log\")")
    assert refused == (Atom("error"), (Atom("not_allowed"), Atom("log_to_file")))
    assert node.runtime.is_alive(holder)

    sup = await Supervisor.start_link(
        [{"id": "w1", "start": (Mirror.start_link, ((Atom("counter"), 1),))}], runtime=node.runtime
    )
    sup_state = await ev(beam, f"sys:get_state({pid_expr(sup)})")
    assert isinstance(sup_state, dict) and Atom("children") in sup_state
    status = await ev(beam, f"sys_ref:status_shape(sys:get_status({pid_expr(sup)}))")
    assert status[0] == Atom("status") and status[3][1] == Atom("running")
    children = await ev(beam, f"supervisor:which_children({pid_expr(sup)})")
    assert [c[0] for c in children] == [b"w1"]  # the supervisor and its child survived


COUNTER_V1 = '''
from python_actors import GenServer, Ok, Reply

VSN = "1"

class Counter(GenServer):
    def handle_call(self, request, from_, n):
        return Reply((VSN, n), n + 1)
'''

COUNTER_V2 = '''
from python_actors import GenServer, Ok, Reply

VSN = "2"

class Counter(GenServer):
    def handle_call(self, request, from_, n):
        return Reply((VSN, n), n + 1)

    def code_change(self, old_vsn, n, extra):
        return Ok(n + extra)
'''


@pytest.fixture
def counter_module(tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    name = f"hot_counter_{unique_name('m')}"
    path = tmp_path / f"{name}.py"
    path.write_text(COUNTER_V1)
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name), path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


async def test_hot_upgrade_from_erlang_while_calls_flow(
    node: Node, beam: BeamNode, counter_module: tuple[Any, Path]
) -> None:
    module, path = counter_module
    name = unique_name("hot")
    await module.Counter.start(0, runtime=node.runtime, name=name)
    server = f"{{{name}, {q(node.name)}}}"
    client = unique_name("client")
    # an Erlang process calls the actor 300 times, 1 ms apart (so the calls outlast the
    # upgrade's start however fast they are); it keeps the replies
    await ev(beam, f"register({client}, spawn(fun() -> "
                   f"R = [begin timer:sleep(1), gen_server:call({server}, next) end || _ <- lists:seq(1, 300)], "
                   f"receive {{get, From}} -> From ! {{replies, R}} end end)), ok")
    deadline = asyncio.get_running_loop().time() + 10
    while await sys_api.get_state(name, runtime=node.runtime) < 10:  # calls are flowing
        assert asyncio.get_running_loop().time() < deadline, "the Erlang client is not calling"
        await asyncio.sleep(0.01)
    path.write_text(COUNTER_V2)
    importlib.invalidate_caches()
    # the release handler's sequence; calls arrive while the actor is suspended
    answers = await ev(beam, f"A = sys:suspend({server}), timer:sleep(300), "
                             f"B = sys:change_code({server}, {module.__name__}, \"1\", 1000000), "
                             f"C = sys:resume({server}), [A, B, C]")
    assert answers == [Atom("ok")] * 3
    replies = await ev(beam, f"{client} ! {{get, self()}}, receive {{replies, R}} -> R after 30000 -> timeout end")
    assert isinstance(replies, list) and len(replies) == 300  # none lost
    vsns = [v for v, _ in replies]
    first_new = vsns.index(b"2")
    assert 10 <= first_new < 300 and vsns == [b"1"] * first_new + [b"2"] * (300 - first_new)
    counts = [n for _, n in replies]
    assert counts[:first_new] == list(range(first_new))
    assert counts[first_new:] == [1000000 + first_new + i for i in range(300 - first_new)]


class LateCaller(GenServer):
    """Calls the BEAM server with a short timeout; keeps every info message it gets."""

    def init(self, args: Any) -> Any:
        return Ok([])

    async def handle_call(self, request: Any, from_: Any, infos: list[Any]) -> Any:
        if request == "infos":
            return Reply(list(infos), infos)
        try:
            await call(request, (Atom("slow"), 500, Atom("late"), self.pid), timeout=0.1)
        except CallError as exc:
            proc = self.process
            return Reply((exc.why, dict(proc.monitors or {}), len(proc.aliases or ())), infos)
        return Reply("answered", infos)

    def handle_info(self, message: Any, infos: list[Any]) -> Any:
        return NoReply([*infos, message])


@pytest.mark.parametrize("connected", [True, False], ids=["alias_tag", "first_call_dials"])
async def test_late_reply_after_timeout_never_reaches_handle_info(
    node: Node, beam: BeamNode, connected: bool
) -> None:
    """Connected: the peer offered ALIAS, the call is tagged [alias | Mref] and the alias is
    gone when the reply comes. Not connected yet: the tag is a plain reference (the peer's
    flags are unknown) and the server drops the reply that comes for it after the call."""
    ref_name = unique_name("slow")
    await ev(beam, f"{{ok, R}} = sys_ref:start(0), register({ref_name}, R), ok")
    caller = await LateCaller.start(runtime=node.runtime)
    if connected:
        assert await node.ping(beam.name)
        tag = await call((Atom(ref_name), Atom(beam.name)), Atom("from_tag"), runtime=node.runtime)
        assert isinstance(tag, ImproperList) and tag.items == (Atom("alias"),)  # OTP 24+'s tag
    else:
        assert beam.name not in node.nodes()
    why, monitors, aliases = await call(caller, (Atom(ref_name), Atom(beam.name)), runtime=node.runtime)
    assert (why, monitors, aliases) == (Atom("timeout"), {}, 0)
    # the monitor is gone on the BEAM side too (DEMONITOR)
    monitored_by = f"element(2, process_info(whereis({ref_name}), monitored_by))"
    deadline = asyncio.get_running_loop().time() + 10
    while await ev(beam, monitored_by) != []:
        assert asyncio.get_running_loop().time() < deadline, "the server is still monitored"
        await asyncio.sleep(0.05)

    async def late_sent() -> bool:
        return Atom("late_reply_sent") in await call(caller, "infos", runtime=node.runtime)

    deadline = asyncio.get_running_loop().time() + 10
    while not await late_sent():
        assert asyncio.get_running_loop().time() < deadline, "the BEAM server never replied"
        await asyncio.sleep(0.05)
    # the reply went out before late_reply_sent, on the same connection: it was dropped
    assert await call(caller, "infos", runtime=node.runtime) == [Atom("late_reply_sent")]


async def test_cli_upgrade(epmd: Epmd, counter_module: tuple[Any, Path], beam: BeamNode) -> None:
    module, path = counter_module
    async with Node(f"{unique_name('py')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as node:
        pids: list[Pid] = [await module.Counter.start(i, runtime=node.runtime) for i in (10, 20)]
        refused = await asyncio.to_thread(
            run_cli, ["--cookie", TEST_COOKIE, "upgrade", node.name, module.__name__], epmd.port
        )
        assert refused.returncode == 2 and "allow-list python_actors:upgrade_module" in refused.stderr
        node.allow_rpc("python_actors", "upgrade_module", rpc_upgrade_module)
        path.write_text(COUNTER_V2)
        importlib.invalidate_caches()
        done = await asyncio.to_thread(
            run_cli, ["--cookie", TEST_COOKIE, "upgrade", node.name, module.__name__, "5"], epmd.port
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("<") == 2
        assert await call(pids[0], "x", runtime=node.runtime) == ("2", 15)
        assert await call(pids[1], "x", runtime=node.runtime) == ("2", 25)


class Counter(GenServer):
    def handle_call(self, request: Any, from_: Any, n: Any) -> Any:
        return Reply(n, n)


async def test_elixir_sys_on_a_python_genserver(epmd: Epmd, node: Node) -> None:
    """What an Elixir user types (Elixir 1.14 runs on OTP 25)."""
    name = unique_name("py_counter")
    await Counter.start(41, runtime=node.runtime, name=name)
    server = f"{{:{name}, :\\\"{node.name}\\\"}}"
    code = (
        f"s = {server}; :ok = :sys.suspend(s); st = :sys.get_state(s); "
        f"{{:status, _, {{:module, :gen_server}}, [_, :suspended | _]}} = :sys.get_status(s); "
        f":ok = :sys.resume(s); n = :sys.replace_state(s, fn n -> n + 1 end); "
        f"{{st, n, GenServer.call(s, :get)}}"
    )
    ex = await asyncio.to_thread(BeamNode, find_runtime("otp25"), epmd_port=epmd.port, prefix="exs", elixir=True)
    try:
        got = await ev(ex, f"element(1, 'Elixir.Code':eval_string(<<\"{code}\">>))")
    finally:
        await asyncio.to_thread(ex.stop)
    assert got == (41, 42, 42)
