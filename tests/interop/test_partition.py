"""A network partition between a BEAM host and a Python host, on every required OTP major.

Two "hosts" are Linux network namespaces joined by a veth pair (``tests/netns.py``):
the BEAM runs in one (``b…@10.213.X.1``, its own ``epmd`` there), the Python node in
the other (``py…@10.213.X.2``, embedded EPMD), both with ``net_ticktime`` 2 s. The
Python node runs on an asyncio loop in a thread that has ``setns``-ed into its host's
namespace, so its sockets can only reach the BEAM across the veth.

With the nodes connected, a BEAM process links to a Python actor and monitors a
Python process, a Python process monitors that BEAM process, and a Python
``Supervisor`` has a BEAM child. Then one end of the veth goes down: no FIN, no RST,
only silence. Both tick timers must see it (nodedown ``net_tick_timeout`` on both sides
within 2 × ``net_ticktime``), links fire ``noconnection`` both ways, monitors send
``DOWN … noconnection`` both ways, the supervisor counts its BEAM child as exited and,
unable to restart it across the partition, gives up with ``shutdown``. Then the link
comes back up and the next use from Python reconnects and messages flow again.

Needs root and ``ip``: elsewhere the test is skipped with the exact error (set
``BEAM_BRIDGE_REQUIRE_NETNS=1`` to make that a failure).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bridge import Node, spawn_request
from dist_proto.terms import Atom, Pid
from python_actors import ChildSpec, Process, Supervisor
from tests.beam import TEST_COOKIE, BeamNode, Runtime, unique_name
from tests.interop.node_support import check, ev, q
from tests.netns import Host, HostPair, NetnsEpmd, NetnsUnavailable, run_in_netns

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TICK = 2  # net_ticktime on both sides, seconds
DETECT = 2 * TICK  # nodedown must be seen within this long after the cut

DOWN, EXIT, NOCONNECTION = Atom("DOWN"), Atom("EXIT"), Atom("noconnection")
NET_TICK_TIMEOUT = Atom("net_tick_timeout")

# A process that collects nodeup/nodedown of hidden nodes, stamped with BEAM's clock.
_WATCHER = """
Self = self(),
W = spawn(fun() ->
      ok = net_kernel:monitor_nodes(true, [{node_type, hidden}, nodedown_reason]),
      Self ! {watching, self()},
      (fun L(Acc) ->
         receive
           {get, From} -> From ! {node_events, lists:reverse(Acc)}, L(Acc);
           {nodeup, N, _} -> L([{up, N, erlang:monotonic_time(millisecond)} | Acc]);
           {nodedown, N, I} ->
             L([{down, N, proplists:get_value(nodedown_reason, I), erlang:monotonic_time(millisecond)} | Acc])
         end
       end)([])
    end),
receive {watching, W} -> ok end,
register(pw_watch, W)
"""

# A process that links to one Python process, monitors another, and keeps what it gets.
_KEEPER = """
K = spawn(fun() ->
      process_flag(trap_exit, true),
      (fun L(Acc) ->
         receive
           {watch, LinkTo, MonitorThis, ReplyTo} ->
             link(LinkTo), erlang:monitor(process, MonitorThis), ReplyTo ! {watching, self()}, L(Acc);
           {ping, From} -> From ! {pong, self()}, L(Acc);
           {get, From} -> From ! {got, lists:reverse(Acc)}, L(Acc);
           Other -> L([Other | Acc])
         end
       end)([])
    end),
register(pw_keeper, K)
"""


@pytest.fixture
def hosts() -> Iterator[HostPair]:
    pair = HostPair()
    try:
        pair.create()
    except NetnsUnavailable as exc:
        if os.environ.get("BEAM_BRIDGE_REQUIRE_NETNS"):
            pytest.fail(f"network namespaces unavailable: {exc}")
        pytest.skip(f"network namespaces unavailable: {exc}")
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def epmd_port() -> int:
    """The EPMD port of both hosts; it exists only inside the test's namespaces."""
    return 20000 + secrets.randbelow(40000)


@pytest.fixture
def beam_host(runtime: Runtime, hosts: HostPair, epmd_port: int) -> Iterator[BeamNode]:
    """A BEAM node on host A, registered with host A's own epmd."""
    with NetnsEpmd(hosts.a, epmd_port, runtime.epmd, env=runtime.environ()), BeamNode(
        runtime,
        epmd_port=epmd_port,
        prefix="b",
        host=hosts.a.address,
        interface=hosts.a.address,
        netns=hosts.a.netns,
        extra_args=["-kernel", "net_ticktime", str(TICK)],
    ) as beam:
        yield beam


def test_beam_host_dials_python_host_by_name(hosts: HostPair, beam_host: BeamNode, epmd_port: int) -> None:
    """BEAM on host A reaches ``py@10.213.X.2`` by name: EPMD on host B must answer on B's address."""

    async def scenario() -> None:
        name = f"{unique_name('py')}@{hosts.b.address}"
        async with Node(name, cookie=TEST_COOKIE, epmd_port=epmd_port, embedded_epmd=True, net_ticktime=TICK):
            assert await ev(beam_host, f"net_adm:ping({q(name)})") == Atom("pong")

    run_in_netns(hosts.b.netns, asyncio.run, scenario(), timeout=30)


def _net_ns_inode(pid: int | str) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def test_beam_runs_in_its_namespace(hosts: HostPair, beam_host: BeamNode) -> None:
    """``ip netns exec`` execs: the pid we hold (and stop) is the BEAM's, in host A."""
    assert os.path.basename(os.readlink(f"/proc/{beam_host.pid}/exe")).startswith("beam")
    ns_inode = os.stat(f"/run/netns/{hosts.a.netns}").st_ino
    assert _net_ns_inode(beam_host.pid) == f"net:[{ns_inode}]"
    assert _net_ns_inode(beam_host.pid) != _net_ns_inode("self")


@pytest.mark.parametrize("side", ["beam_side", "python_side"])
def test_partition_and_heal(hosts: HostPair, beam_host: BeamNode, epmd_port: int, side: str) -> None:
    """Cut the veth end of the BEAM's host or of the Python host, then heal it."""
    cut = hosts.a if side == "beam_side" else hosts.b
    report = run_in_netns(hosts.b.netns, asyncio.run, _partition(hosts, cut, beam_host, epmd_port), timeout=50)
    # Shown with ``pytest -s``/``-rP``: how long each side took to notice.
    print(f"partition timings (s): {report}")


async def _partition(hosts: HostPair, cut: Host, beam: BeamNode, epmd_port: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    name = f"{unique_name('py')}@{hosts.b.address}"
    beam_atom = Atom(beam.name)
    async with Node(name, cookie=TEST_COOKIE, epmd_port=epmd_port, embedded_epmd=True,
                    net_ticktime=TICK) as node, node.process() as me:
        node_events: list[tuple[Atom, bool, Any]] = []
        node.monitor_nodes(lambda n, up, why: node_events.append((n, up, why)))
        await check(beam, _WATCHER)
        await check(beam, _KEEPER)

        # -- connected, across the veth ----------------------------------------------
        assert await node.ping(beam.name)
        assert node.nodes() == [beam.name]
        await check(beam, f"lists:member({q(name)}, nodes(hidden))")
        peer_addr = await ev(beam, f"{{_, C}} = lists:keyfind({q(name)}, 1, erlang:system_info(dist_ctrl)), "
                                   "{ok, {A, _}} = inet:peername(C), A")
        assert peer_addr == tuple(int(x) for x in hosts.b.address.split("."))

        # -- links and monitors both ways, a supervisor with a BEAM child -------------
        async def linked(proc: Process) -> None:
            proc.trap_exit = True
            msg = await proc.receive(lambda m: type(m) is tuple and m[0] == EXIT, timeout=40)
            proc.send(me.pid, ("linked", msg))

        actor = node.spawn(linked)
        await node.send(("pw_keeper", beam.name), (Atom("watch"), actor, me.pid, me.pid))
        watching = await me.receive(lambda m: type(m) is tuple and m[0] == Atom("watching"), timeout=5)
        keeper = watching[1]
        assert type(keeper) is Pid and keeper.node == beam_atom
        keeper_ref = me.monitor(keeper)

        async def beam_sleeper() -> Pid:
            return await spawn_request(node, beam.name, "timer", "sleep", [Atom("infinity")],
                                       link=True, timeout=2.0)

        sup = await Supervisor.start_link([ChildSpec(id="sleeper", start=beam_sleeper)],
                                          intensity=1, period=30, runtime=node.runtime)
        sup_ref = me.monitor(sup)
        [child] = await Supervisor.which_children(sup, runtime=node.runtime)
        assert type(child.pid) is Pid and child.pid.node == beam_atom

        # A round trip after the monitor: the MONITOR signal has reached the BEAM.
        await node.send(keeper, (Atom("ping"), me.pid))
        await me.receive(lambda m: m == (Atom("pong"), keeper), timeout=5)
        await check(beam, "{links, L} = process_info(whereis(pw_keeper), links), length(L) =:= 1")
        await check(beam, "{monitored_by, [_]} = process_info(whereis(pw_keeper), monitored_by), true")

        # -- the partition ---------------------------------------------------------------
        beam_t0 = await ev(beam, "erlang:monotonic_time(millisecond)")
        t0 = time.monotonic()
        await asyncio.to_thread(hosts.cut, cut)

        reason = await node.wait_nodedown(beam.name, timeout=DETECT + 2)
        timings["python_nodedown"] = time.monotonic() - t0
        assert reason == NET_TICK_TIMEOUT
        assert timings["python_nodedown"] <= DETECT, timings
        assert node.nodes() == []

        down = await me.receive(lambda m: type(m) is tuple and m[0] == DOWN and m[1] == keeper_ref, timeout=2)
        assert down == (DOWN, keeper_ref, Atom("process"), keeper, NOCONNECTION)
        link_exit = await me.receive(lambda m: type(m) is tuple and m[0] == "linked", timeout=2)
        assert link_exit[1] == (EXIT, keeper, NOCONNECTION)

        # The BEAM sees it too, by its own tick timer (its clock, from just before the cut).
        async def beam_downs() -> list[Any]:
            events = await ev(beam, "pw_watch ! {get, self()}, receive {node_events, L} -> L after 5000 -> timeout end")
            return [e for e in events if e[0] == Atom("down")]

        deadline = time.monotonic() + DETECT + 2
        while not (downs := await beam_downs()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert len(downs) == 1, downs
        _, who, beam_reason, beam_t = downs[0]
        assert who == Atom(name) and beam_reason == NET_TICK_TIMEOUT
        timings["beam_nodedown"] = (beam_t - beam_t0) / 1000
        assert timings["beam_nodedown"] <= DETECT, timings
        await check(beam, f"not lists:member({q(name)}, nodes(connected))")

        got = await ev(beam, "pw_keeper ! {get, self()}, receive {got, L} -> L after 5000 -> timeout end")
        assert (EXIT, actor, NOCONNECTION) in got, got
        beam_down = [m for m in got if m[0] == DOWN]
        assert len(beam_down) == 1 and beam_down[0][2:] == (Atom("process"), me.pid, NOCONNECTION), got

        # The supervisor counts its BEAM child as exited; the restart cannot reach the
        # BEAM, so it runs out of restart intensity and stops with ``shutdown``.
        sup_down = await me.receive(lambda m: type(m) is tuple and m[0] == DOWN and m[1] == sup_ref, timeout=10)
        assert sup_down[4] == Atom("shutdown")
        timings["supervisor_gave_up"] = time.monotonic() - t0

        # While cut, a new connection attempt fails. ``connect`` waits for the attempt to
        # end (unreachable host or EPMD timeout), so no stale dial races the heal below.
        assert await node.ping(beam.name, timeout=1.0) is False
        assert await asyncio.wait_for(node.connect(beam.name), 10) is False
        timings["dial_failed"] = time.monotonic() - t0

        # -- heal: the next use reconnects ---------------------------------------------
        await asyncio.to_thread(hosts.heal, cut)
        t1 = time.monotonic()
        assert await node.ping(beam.name, timeout=10.0)
        timings["reconnect"] = time.monotonic() - t1
        assert node.nodes() == [beam.name]
        await check(beam, f"lists:member({q(name)}, nodes(hidden))")
        await node.send(keeper, (Atom("ping"), me.pid))
        assert await me.receive(lambda m: m == (Atom("pong"), keeper), timeout=5)
        assert await node.rpc(beam.name, "erlang", "node", []) == beam_atom

        events = await ev(beam, "pw_watch ! {get, self()}, receive {node_events, L} -> L after 5000 -> timeout end")
        assert [e[0] for e in events] == [Atom("up"), Atom("down"), Atom("up")], events
        assert [(up, why) for n, up, why in node_events if n == beam_atom] == [
            (True, None), (False, NET_TICK_TIMEOUT), (True, None)
        ]
    return {k: round(v, 2) for k, v in timings.items()}
