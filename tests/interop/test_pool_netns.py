"""A BEAM pool whose workers live on two Python nodes on two "hosts", OTP 25 and 28.

Two network namespaces joined by a veth pair (``tests/netns.py``). Host A runs its
``epmd``, the BEAM (``b…@10.213.X.1``) and Python node A (registered with that
``epmd``); host B runs Python node B (``pyb…@10.213.X.2``, embedded EPMD). Each
Python node runs its own asyncio loop in a thread that has ``setns``-ed into its
host's namespace. Everything uses ``net_ticktime`` 2 s.

The BEAM starts ``beam_bridge_pool`` with ``nodes => [A, B]`` and four workers: two
on each node, and calls spread over all four. Then host B's veth goes down (a silent
partition): B's workers are lost (on the BEAM, whose supervisor keeps their places
empty, and on B, where the link to the supervisor fires ``noconnection``), A's
workers keep answering every call. The veth comes back: the pool reconnects B and
starts two new workers there, and calls spread over four workers again.

Needs root and ``ip``: elsewhere the test is skipped with the exact error (set
``BEAM_BRIDGE_REQUIRE_NETNS=1`` to make that a failure).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom, Pid
from tests.beam import REPO_ROOT, TEST_COOKIE, BeamNode, Runtime, unique_name
from tests.interop.fixtures.pool_actors import allow_pool_workers
from tests.interop.node_support import q, scoped
from tests.netns import Host, HostPair, NetnsEpmd, NetnsUnavailable, run_in_netns

pytestmark = [pytest.mark.interop, pytest.mark.slow]

TICK = 2  # net_ticktime everywhere, seconds


class PythonHost:
    """A Python node serving pool workers on ``host``, in a thread inside its namespace."""

    def __init__(self, host: Host, prefix: str, epmd_port: int, *, embedded_epmd: bool) -> None:
        self.name = f"{unique_name(prefix)}@{host.address}"
        self._host = host
        self._epmd_port = epmd_port
        self._embedded = embedded_epmd
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._node: Node | None = None
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name=f"py host {self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or self._error:
            self.stop()
            raise RuntimeError(f"Python node {self.name} did not start: {self._error}")

    def _run(self) -> None:
        try:
            run_in_netns(self._host.netns, asyncio.run, self._serve(), timeout=600)
        except BaseException as exc:  # reported by __init__ or stop
            self._error.append(exc)
            self._ready.set()

    async def _serve(self) -> None:
        async with Node(self.name, cookie=TEST_COOKIE, epmd_port=self._epmd_port,
                        embedded_epmd=self._embedded, net_ticktime=TICK) as node:
            allow_pool_workers(node)
            self._loop, self._node = asyncio.get_running_loop(), node
            self._ready.set()
            await asyncio.to_thread(self._stop.wait)

    def alive(self, pids: list[Pid]) -> list[bool]:
        """Which of ``pids`` are alive on this node (asked on the node's own loop)."""
        assert self._loop is not None and self._node is not None
        node = self._node

        async def ask() -> list[bool]:
            return [node.runtime.is_alive(p) for p in pids]

        future: concurrent.futures.Future[list[bool]] = asyncio.run_coroutine_threadsafe(ask(), self._loop)
        return future.result(10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture
def hosts() -> Iterator[HostPair]:
    pair = HostPair(prefix="bpl")
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


@pytest.fixture(scope="session")
def netns_pool_ebin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("beam_bridge_pool_netns_ebin")
    sources = sorted(str(p) for p in (REPO_ROOT / "erl" / "src").glob("*.erl"))
    subprocess.run(["erlc", "-o", str(out), *sources], check=True)
    return out


def _poll(what: str, fn: Callable[[], Any], ok: Callable[[Any], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if ok(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {got!r}")
        time.sleep(0.1)


def test_pool_over_two_hosts_survives_a_partition(runtime: Runtime, hosts: HostPair, netns_pool_ebin: Path) -> None:
    epmd_port = 20000 + secrets.randbelow(40000)
    with NetnsEpmd(hosts.a, epmd_port, runtime.epmd, env=runtime.environ()), BeamNode(
        runtime, epmd_port=epmd_port, prefix="b", host=hosts.a.address, interface=hosts.a.address,
        netns=hosts.a.netns, extra_args=["-kernel", "net_ticktime", str(TICK), "-pa", str(netns_pool_ebin)],
    ) as beam:
        beam.eval("process_flag(trap_exit, true)")
        host_a = PythonHost(hosts.a, "pya", epmd_port, embedded_epmd=False)
        host_b = PythonHost(hosts.b, "pyb", epmd_port, embedded_epmd=True)
        try:
            _scenario(beam, hosts, host_a, host_b)
        finally:
            beam.eval("case whereis(pool_netns_sup) of undefined -> ok; S -> unlink(S), exit(S, shutdown) end")
            host_a.stop()
            host_b.stop()


def _scenario(beam: BeamNode, hosts: HostPair, host_a: PythonHost, host_b: PythonHost) -> None:
    def ev(expr: str) -> Any:
        return beam.eval_term(scoped(expr), 60)

    def workers() -> list[Pid]:
        # The Python pids (``beam_bridge:start_link`` may hand the pool local proxies).
        return list(ev("[case erlang:function_exported(beam_bridge, actor, 1) of true -> beam_bridge:actor(W); "
                       "false -> W end || W <- beam_bridge_pool:workers(pool_netns)]"))

    def calls(n: int) -> set[Pid]:
        return set(ev(f"[beam_bridge_pool:call(pool_netns, whoami, 3000) || _ <- lists:seq(1, {n})]"))

    def on(pids: list[Pid], host: PythonHost) -> list[Pid]:
        return [p for p in pids if p.node == Atom(host.name)]

    ev("{ok, _} = beam_bridge_sup:start_link({local, pool_netns_sup}, #{}, [beam_bridge_pool:child_spec("
       f"#{{name => pool_netns, nodes => [{q(host_a.name)}, {q(host_b.name)}], actor => pool_worker, "
       "size => 4, retry_interval => 300})]), ok")

    # -- both hosts up: two workers each, calls spread over all four -------------------
    first = workers()
    assert len(on(first, host_a)) == 2 and len(on(first, host_b)) == 2, first
    assert calls(12) == set(first)
    # B's workers really talk to the BEAM across the veth.
    peer = ev(f"{{_, C}} = lists:keyfind({q(host_b.name)}, 1, erlang:system_info(dist_ctrl)), "
              "{ok, {Addr, _}} = inet:peername(C), Addr")
    assert peer == tuple(int(x) for x in hosts.b.address.split("."))

    # -- host B cut off: only its workers are lost, the pool keeps answering ------------
    lost = on(first, host_b)
    hosts.cut(hosts.b)
    _poll("only host A's workers in the pool", workers, lambda w: sorted(w, key=str) == sorted(on(first, host_a), key=str),
          timeout=4 * TICK + 5)
    assert calls(8) == set(on(first, host_a))
    status = {str(k): v for k, v in ev("beam_bridge_pool:status(pool_netns)").items()}
    assert status["size"] == 4 and status["workers"] == 2
    # On host B the workers died with their link to the pool's supervisor: no orphans.
    _poll("host B's workers gone on host B", lambda: host_b.alive(lost), lambda alive: not any(alive), timeout=4 * TICK + 5)

    # -- host B back: the pool reconnects and starts two new workers there --------------
    hosts.heal(hosts.b)
    back = _poll("four workers again", workers, lambda w: len(w) == 4, timeout=30)
    assert set(on(first, host_a)) <= set(back)
    new_b = on(back, host_b)
    assert len(new_b) == 2 and not set(new_b) & set(lost)
    assert all(host_b.alive(new_b))
    assert calls(12) == set(back)
