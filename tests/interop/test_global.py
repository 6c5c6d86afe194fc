"""``global`` and ``pg`` with a visible Python node in a real cluster (OTP 25 and 28).

Two BEAM nodes, ``a`` and ``b``, run with ``prevent_overlapping_partitions`` at its
default (on since OTP 25) and are connected to each other; a visible Python node
meets ``a``. ``global:sync()`` must return on both (it hangs when the Python node
does not speak ``global``; each sync here is bounded so a hang fails the test),
the mesh must be full, global names registered by Python processes are seen and
called from every node and vanish with their process or node, and the BEAM's
names are seen from Python. Python processes join ``pg`` groups and receive what
an Erlang process broadcasts to the members.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom, Pid
from python_actors import GenServer, Ok, Reply
from tests.beam import BeamNode, Epmd, Runtime, pid_expr
from tests.interop.node_support import ev, eventually, py_node, q

pytestmark = pytest.mark.interop

#: a bounded global:sync(): ok, or timeout instead of a hang
SYNC = (
    "{P, R} = spawn_monitor(fun() -> exit(global:sync()) end), "
    "receive {'DOWN', R, process, P, Res} -> Res after 20000 -> exit(P, kill), sync_timeout end"
)


class Echo(GenServer):
    """Answers ``{echo, Request}``."""

    placement = "loop"

    def init(self, arg: Any) -> Ok:
        return Ok(arg)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply((Atom("echo"), request), state)


@pytest.fixture(scope="module")
def pair(runtime: Runtime, epmd: Epmd) -> Iterator[tuple[BeamNode, BeamNode]]:
    """``a`` and ``b``, connected and in sync, with ``pg`` and the scope ``my_scope``."""
    args = ["-kernel", "start_pg", "true"]
    with BeamNode(runtime, epmd_port=epmd.port, prefix="ga", extra_args=args) as a, \
            BeamNode(runtime, epmd_port=epmd.port, prefix="gb", extra_args=args) as b:
        for n in (a, b):
            n.eval("{ok, _} = pg:start_link(my_scope), ok")
        assert a.eval_term(f"net_kernel:connect_node({q(b.name)})") is True
        assert a.eval_term("global:sync()") == Atom("ok")
        assert a.eval_term("application:get_env(kernel, prevent_overlapping_partitions)") in (
            None, (Atom("ok"), True))  # undefined: the default (true)
        yield a, b


@pytest.fixture
async def py(pair: tuple[BeamNode, BeamNode], epmd: Epmd) -> AsyncIterator[Node]:
    """A visible Python node (a name greater than the BEAM nodes') connected to ``a``."""
    a, _ = pair
    async with py_node(epmd.port, prefix="py", hidden=False) as node:
        assert await node.ping(a.name)
        yield node


async def _synced(a: BeamNode, b: BeamNode, py: Node) -> None:
    """The mesh is full (``b`` learns of the Python node through ``a``'s ``new_nodes``
    and connects), then ``global:sync()`` returns on every node."""
    await _mesh_full(a, b, py)
    for n in (a, b):
        assert await ev(n, SYNC) == Atom("ok"), f"global:sync() on {n.name}"
    await py.global_sync(timeout=20)


async def _mesh_full(a: BeamNode, b: BeamNode, py: Node) -> None:
    for n, other in ((a, b), (b, a)):
        want = {Atom(other.name), py.atom}

        async def has_all(n: BeamNode = n, want: set[Atom] = want) -> bool:
            return want <= set(await ev(n, "nodes()"))

        try:
            await _eventually_async(has_all, f"nodes() on {n.name} to list {want}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; state: {await _state(a, b, py)}") from None
    assert {a.name, b.name} <= set(py.visible_nodes()), await _state(a, b, py)


async def _state(a: BeamNode, b: BeamNode, py: Node) -> str:
    """nodes(), and global's known and synced nodes, on each node (for failures)."""
    expr = "{nodes(), gen_server:call(global_name_server, get_known), gen_server:call(global_name_server, get_synced)}"
    service = py.global_service
    mine = (py.visible_nodes(), service.known(), service.synced()) if service is not None else None
    return f"a: {await ev(a, expr)}; b: {await ev(b, expr)}; python: {mine}"


async def _eventually_async(cond: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.1)


async def test_sync_returns_and_the_mesh_stays_full(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    a, b = pair
    await _synced(a, b, py)
    # the BEAM's global knows the Python node as one of its own
    for n in (a, b):
        assert py.atom in await ev(n, "gen_server:call(global_name_server, get_synced)")
        assert await ev(n, f"gen_server:call({{global_name_server, {q(py.name)}}}, get_protocol_version)") == 8
    await _synced(a, b, py)


async def test_python_global_name_seen_called_and_removed(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    a, b = pair
    await _synced(a, b, py)
    pid = await Echo.start(None, runtime=py.runtime)
    assert pid is not None
    assert await py.global_register("py_echo", pid)
    assert not await py.global_register("py_echo", pid), "a taken name answers no"
    for n in (a, b):
        assert await ev(n, "global:whereis_name(py_echo)") == pid
    assert await ev(b, "gen_server:call({global, py_echo}, hello)") == (Atom("echo"), Atom("hello"))
    assert await ev(a, "global:send(py_echo, ignored_info) =:= global:whereis_name(py_echo)") is True
    assert await py.global_whereis("py_echo") == pid
    assert Atom("py_echo") in await py.global_names()
    assert await py.call(("global", Atom("py_echo")), 1) == (Atom("echo"), 1)
    py.runtime.exit(pid, Atom("kill"))
    for n in (a, b):
        async def gone(n: BeamNode = n) -> bool:
            return await ev(n, "global:whereis_name(py_echo)") is None  # undefined

        await _eventually_async(gone, f"py_echo to be gone on {n.name}")
    assert await py.global_whereis("py_echo") is None


async def test_unregister_and_beam_names_seen_from_python(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    a, b = pair
    await _synced(a, b, py)
    async with py.process() as proc:
        assert await py.global_register(Atom("py_inbox"), proc.pid)
        await ev(b, "global:send(py_inbox, {hi, node()}), ok")
        assert await proc.receive(timeout=5) == (Atom("hi"), Atom(b.name))
        await py.global_unregister("py_inbox")
        assert await ev(a, "global:whereis_name(py_inbox)") is None  # undefined
    beam_pid = await ev(a, "P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(beam_svc, P), P")
    assert isinstance(beam_pid, Pid)
    assert await py.global_whereis("beam_svc") == beam_pid
    await ev(a, f"{pid_expr(beam_pid)} ! stop, ok")
    await eventually(lambda: py.global_service is not None and py.global_service.where(Atom("beam_svc")) is None,
                     what="the dead BEAM process's name to be dropped on the Python node")


@pytest.mark.parametrize("prefix", ["aa", "zz"], ids=["python-resolves", "beam-resolves"])
async def test_a_name_clash_is_resolved_as_global_does(
    pair: tuple[BeamNode, BeamNode], epmd: Epmd, prefix: str
) -> None:
    """Both sides hold ``clash`` when the partitions meet. The node with the smaller name
    resolves with the method of its registration, ``random_exit_name``: the pid of the
    greater node is killed, the other keeps the name everywhere. With prefix ``aa`` the
    Python node resolves (and kills the BEAM process); with ``zz`` the BEAM does."""
    a, b = pair
    beam_pid = await ev(a, "P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(clash, P), P")
    async with py_node(epmd.port, prefix=prefix, hidden=False) as node:
        python_wins = node.name < a.name
        assert python_wins == (prefix == "aa")
        py_pid = await Echo.start(None, runtime=node.runtime)
        assert py_pid is not None
        assert await node.global_register("clash", py_pid)  # alone: no one else knows the name yet
        assert await node.ping(a.name)
        await _synced(a, b, node)
        winner, loser_alive = (py_pid, f"is_process_alive({pid_expr(beam_pid)})") if python_wins else (beam_pid, None)
        for n in (a, b):
            assert await ev(n, "global:whereis_name(clash)") == winner
        assert await node.global_whereis("clash") == winner
        if loser_alive is not None:
            assert await ev(a, loser_alive) is False
        else:
            await eventually(lambda: not node.runtime.is_alive(py_pid), what="the Python loser to be killed")
            await ev(a, f"{pid_expr(beam_pid)} ! stop, ok")


async def test_python_node_stop_removes_its_names_and_keeps_beam_mesh(
    pair: tuple[BeamNode, BeamNode], epmd: Epmd
) -> None:
    a, b = pair
    async with py_node(epmd.port, prefix="py", hidden=False) as node:
        assert await node.ping(a.name)
        await _synced(a, b, node)
        pid = await Echo.start(None, runtime=node.runtime)
        assert pid is not None
        assert await node.global_register("py_leaving", pid)
        assert await ev(b, "global:whereis_name(py_leaving)") == pid
        name = node.name
    for n in (a, b):
        async def forgotten(n: BeamNode = n) -> bool:
            return await ev(n, f"global:whereis_name(py_leaving) =:= undefined andalso not lists:member({q(name)}, nodes())") is True

        await _eventually_async(forgotten, f"{n.name} to forget the stopped Python node")
    assert Atom(b.name) in await ev(a, "nodes()"), "a and b stay connected"
    assert await ev(a, SYNC) == Atom("ok")


async def test_pg_broadcast_reaches_python_members_in_both_scopes(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    a, b = pair
    await _synced(a, b, py)
    default, named = await py.pg(), await py.pg("my_scope")
    async with py.process() as member:
        await default.join(Atom("news"), member.pid)
        await named.join(Atom("news"), member.pid)
        for scope in ("pg", "my_scope"):
            async def member_seen(scope: str = scope) -> bool:
                return member.pid in await ev(b, f"pg:get_members({scope}, news)")

            await _eventually_async(member_seen, f"b to see the Python member in {scope}")
            await ev(b, f"[P ! {{{scope}, from_b}} || P <- pg:get_members({scope}, news)], ok")
            assert await member.receive(timeout=5) == (Atom(scope), Atom("from_b"))


async def test_junk_to_global_name_server_then_ping(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    a, b = pair
    await _synced(a, b, py)
    gns = f"{{global_name_server, {q(py.name)}}}"
    await ev(a, f"{gns} ! junk, {gns} ! {{init_connect, bad, x, y}}, {gns} ! {{lost_connection, 1, 2, 3, 4}}, "
                f"gen_server:cast({gns}, {{exchange, x, y, z, w}}), gen_server:cast({gns}, [1,2]), ok")
    assert await ev(a, f"catch gen_server:call({gns}, {{set_lock, not_a_lock_id}}, 300)") == (
        Atom("EXIT"), (Atom("timeout"), (Atom("gen_server"), Atom("call"),
                                         [(Atom("global_name_server"), py.atom), (Atom("set_lock"), Atom("not_a_lock_id")), 300])))
    assert await ev(a, f"net_adm:ping({q(py.name)})") == Atom("pong")
    assert await ev(a, f"gen_server:call({gns}, get_protocol_version)") == 8
    await _synced(a, b, py)


async def test_a_killed_global_name_server_is_restarted_and_rejoins(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    a, b = pair
    await _synced(a, b, py)
    beam_pid = await ev(a, "P = spawn(fun() -> receive stop -> ok end end), yes = global:register_name(beam_kept, P), P")
    old = py.whereis("global_name_server")
    assert old is not None
    py.runtime.exit(old, Atom("kill"))
    await eventually(lambda: py.whereis("global_name_server") not in (None, old), what="kernel_sup to restart it")
    assert py.global_service is not None
    await eventually(lambda: py.global_service.where(Atom("beam_kept")) == beam_pid,  # type: ignore[union-attr]
                     what="the restarted server to refill the names")
    async with py.process() as proc:
        assert await py.global_register("py_after_restart", proc.pid)
        for n in (a, b):
            assert await ev(n, "global:whereis_name(py_after_restart)") == proc.pid
    await _synced(a, b, py)
    await ev(a, f"{pid_expr(beam_pid)} ! stop, ok")


async def test_hidden_node_uses_the_same_calls_through_a_beam_node(
    pair: tuple[BeamNode, BeamNode], epmd: Epmd
) -> None:
    a, b = pair
    async with py_node(epmd.port, prefix="hid") as node, node.process() as proc:
        assert node.global_service is None
        assert await node.ping(a.name)
        # b will connect too (its global monitors the pid), so name the node to ask
        via = a.name
        assert await node.global_register("hidden_inbox", proc.pid, via=via)
        assert await ev(b, "global:whereis_name(hidden_inbox)") == proc.pid
        assert await node.global_whereis("hidden_inbox", via=via) == proc.pid
        assert Atom("hidden_inbox") in await node.global_names(via=via)
        assert await node.global_send("hidden_inbox", Atom("ping"), via=via) == proc.pid
        assert await proc.receive(timeout=5) == Atom("ping")
        await node.global_unregister("hidden_inbox", via=via)
        assert await node.global_whereis("hidden_inbox", via=via) is None
        with pytest.raises(ValueError):
            await node.global_send("hidden_inbox", Atom("ping"), via=via)
        await node.global_sync()  # nothing to sync for a hidden node
        assert node.atom not in await ev(a, "nodes()") and node.atom in await ev(a, "nodes(hidden)")


async def _apart(a: BeamNode, b: BeamNode, node: Node) -> None:
    """The Python node and ``b`` are apart; prevent_overlapping_partitions must leave no
    node (``a``) connected to both sides. Which connections go depends on which report
    ``a`` reads first, as between BEAM nodes."""

    async def apart() -> bool:
        a_nodes = await ev(a, "nodes()")
        return not (node.atom in a_nodes and Atom(b.name) in a_nodes) and not node.is_connected(b.name)

    await _eventually_async(apart, "no overlapping partitions")


async def _pair_again(a: BeamNode, b: BeamNode) -> None:
    """Connect ``a`` and ``b`` again once the reports still in flight have been acted on
    (a ``remove_connection`` read late would part them again): retried until the pair
    holds for half a second."""
    for _ in range(20):
        assert await ev(a, f"net_kernel:connect_node({q(b.name)})") is True
        assert await ev(a, SYNC) == Atom("ok")
        await asyncio.sleep(0.5)
        if Atom(b.name) in await ev(a, "nodes()") and Atom(a.name) in await ev(b, "nodes()"):
            break
    for n in (a, b):
        assert await ev(n, SYNC) == Atom("ok")
    assert Atom(b.name) in await ev(a, "nodes()")


async def test_prevent_overlapping_partitions_both_ways(pair: tuple[BeamNode, BeamNode], epmd: Epmd) -> None:
    """``b`` drops the Python node; then another Python node drops ``b``: each time the
    lost connection is reported (``lost_connection``) and ``a`` parts from one side
    (``remove_connection``, which the Python node obeys too)."""
    a, b = pair
    async with py_node(epmd.port, prefix="py", hidden=False) as node:
        assert await node.ping(a.name)
        await _synced(a, b, node)
        assert await ev(b, f"erlang:disconnect_node({q(node.name)})") is True
        await _apart(a, b, node)
    await _pair_again(a, b)
    async with py_node(epmd.port, prefix="py", hidden=False) as node:
        assert await node.ping(a.name)
        await _synced(a, b, node)
        assert node.disconnect(b.name)
        await _apart(a, b, node)
    await _pair_again(a, b)


async def test_beam_locks_include_the_python_node(pair: tuple[BeamNode, BeamNode], py: Node) -> None:
    """``global:trans/4`` and ``global:set_lock/3`` from BEAM take locks on the Python
    node too: granted when free or held under the same requester, refused otherwise,
    and released when the holder dies."""
    a, b = pair
    await _synced(a, b, py)
    nodes = f"[{q(a.name)}, {q(b.name)}, {q(py.name)}]"
    assert await ev(a, f"global:trans({{py_res, self()}}, fun() -> in_trans end, {nodes}, 1)") == Atom("in_trans")
    holder = await ev(b, f"spawn(fun() -> true = global:set_lock({{py_res, req_b}}, [{q(py.name)}], 0), "
                         "receive stop -> ok end end)")
    assert isinstance(holder, Pid)
    service = py.global_service
    assert service is not None
    await eventually(lambda: not service.can_set_lock((Atom("py_res"), Atom("req_a"))), what="b's lock on py")
    assert await ev(a, f"global:set_lock({{py_res, req_a}}, [{q(py.name)}], 0)") is False
    assert await ev(a, f"global:trans({{py_res, req_a}}, fun() -> in_trans end, [{q(py.name)}], 0)") == Atom("aborted")
    await ev(b, f"{pid_expr(holder)} ! stop, ok")
    await eventually(lambda: service.can_set_lock((Atom("py_res"), Atom("req_a"))), what="the dead holder's lock to go")
    assert await ev(a, f"global:trans({{py_res, req_a}}, fun() -> in_trans end, [{q(py.name)}], 0)") == Atom("in_trans")
