"""OTP's introspection tools on a Python node (bridge.introspection), OTP 25 and 28.

``etop`` (text output, ``{tracing, off}``) lists the Python processes with their
registered names, reductions analogue, memory, queue length and current function;
``rpc`` of ``erlang:process_info/2`` and friends answers as BEAM does; ``dbg:n/1``
returns at once, prints why on the tracing node's console and dbg drops the node,
instead of hanging.
etop and dbg come with Debian's OTP 25 (the OTP 28 runtime used here ships only
kernel, stdlib and crypto), so those two run against OTP 25 only; the rpc test runs
on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bridge import Node
from dist_proto import Atom
from python_actors import GenServer, NoReply, Reply
from tests.beam import TEST_COOKIE, BeamNode, Epmd, pid_expr, unique_name
from tests.beam import runtime as find_runtime
from tests.interop.node_support import ev, eventually

pytestmark = pytest.mark.interop


class Probe(GenServer):
    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(request, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        return NoReply(state)


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with Node(f"{unique_name('pyin')}@127.0.0.1", cookie=TEST_COOKIE, epmd_port=epmd.port) as n:
        yield n


@pytest.fixture(scope="module")
def beam25(epmd: Epmd) -> Iterator[BeamNode]:
    """etop and dbg ship with Debian's OTP 25 only: the OTP 28 runtime used here has no
    observer or runtime_tools, so these tests run on OTP 25 alone (not skipped on 28)."""
    with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, prefix="tools") as b:
        yield b


async def test_etop_lists_python_processes(node: Node, beam25: BeamNode, tmp_path: Any) -> None:
    beam = beam25
    pid = await Probe.start(runtime=node.runtime, name="etop_probe")
    for i in range(5):
        node.runtime.cast(pid, i)
    out = tmp_path / "etop.txt"
    text = await ev(beam, f"""
        {{ok, F}} = file:open("{out}", [write]),
        spawn(fun() -> group_leader(F, self()),
                       etop:start([{{node, '{node.name}'}}, {{output, text}}, {{interval, 1}},
                                   {{lines, 30}}, {{tracing, off}}]) end),
        timer:sleep(2500), etop:stop(), timer:sleep(300), file:close(F),
        {{ok, B}} = file:read_file("{out}"), B
    """)
    report = text.decode()
    assert node.name in report
    for name in ("etop_probe", "net_kernel", "rex"):
        assert name in report, report
    probe_line = next(line for line in report.splitlines() if "etop_probe" in line)
    assert "tests.interop.test_" in probe_line  # the current function's module
    assert int(probe_line.split()[3]) >= 5  # reductions: at least the five casts it handled


async def test_process_info_over_rpc(node: Node, beam: BeamNode) -> None:
    pid = await Probe.start(runtime=node.runtime, name="info_probe")
    py = node.name
    result = await ev(beam, f"""
        P = {pid_expr(pid)},
        {{rpc:call('{py}', erlang, process_info, [P, [registered_name, message_queue_len, status]]),
          rpc:call('{py}', erlang, process_info, [P, registered_name]),
          lists:member(P, rpc:call('{py}', erlang, processes, [])),
          lists:member(info_probe, rpc:call('{py}', erlang, registered, [])),
          rpc:call('{py}', erlang, whereis, [info_probe]) =:= P,
          rpc:call('{py}', erlang, is_process_alive, [P]),
          rpc:call('{py}', erlang, process_info, [P, no_such_item]),
          rpc:call('{py}', erlang, process_info, [P, current_function])}}
    """)
    items, single, in_processes, in_registered, whereis_ok, alive, bad, current = result
    assert items == [
        (Atom("registered_name"), Atom("info_probe")),
        (Atom("message_queue_len"), 0),
        (Atom("status"), Atom("waiting")),
    ]
    assert single == (Atom("registered_name"), Atom("info_probe"))
    assert in_processes and in_registered and whereis_ok and alive
    assert bad[0] == Atom("badrpc")
    module, function, _arity = current[1]
    assert module == Atom(__name__) and function == Atom("Probe.idle")


async def test_dbg_fails_fast_with_a_reason(node: Node, beam25: BeamNode) -> None:
    """dbg:n/1 returns at once (it used to hang for ever), the reason is printed on the
    tracing node's console, dbg drops the Python node from its list, and dbg:p/2 then
    traces the BEAM node alone."""
    beam = beam25
    py = node.name
    added = await ev(beam, f"""
        {{ok, _}} = dbg:tracer(),
        dbg:n('{py}')
    """, timeout=30)
    assert added == (Atom("ok"), Atom(py))

    nodes: list[Atom] = []
    for _ in range(250):  # dbg:ln/0 only prints; ask the dbg server as dbg:ln does
        nodes = await ev(beam, "dbg ! {self(), get_nodes}, receive {dbg, Ns} -> Ns end")
        if Atom(py) not in nodes:
            break
        await asyncio.sleep(0.02)
    assert Atom(py) not in nodes and Atom(beam.name) in nodes
    await eventually(lambda: f"dbg: node {py} dropped" in beam.output(), what="dbg's reason on the console")
    assert "cannot be traced" in beam.output().split(f"dbg: node {py} dropped", 1)[1]
    matched = await ev(beam, "R = dbg:p(all, [call]), dbg:stop(), R", timeout=30)
    assert matched[0] == Atom("ok")
    assert [entry[1] for entry in matched[1]] == [Atom(beam.name)]


async def test_observer_backend_answers(node: Node, beam: BeamNode) -> None:
    """What observer's Processes and System tabs ask a node (observer_pro_wx,
    observer_sys_wx): procs_info streamed to a collector, sys_info as a proplist."""
    pid = await Probe.start(runtime=node.runtime, name="observer_probe")
    py = node.name
    result = await ev(beam, f"""
        true = rpc:call('{py}', erlang, function_exported, [observer_backend, procs_info, 1]),
        {{module, observer_backend}} = rpc:call('{py}', code, ensure_loaded, [observer_backend]),
        Collector = self(),
        Backend = spawn_link('{py}', observer_backend, procs_info, [Collector]),
        Procs = receive {{procs_info, Backend, Ps}} -> Ps after 5000 -> timeout end,
        Sys = rpc:call('{py}', observer_backend, sys_info, []),
        {{[element(2, P) || P <- Procs], [element(5, P) || P <- Procs],
          proplists:get_value(process_count, Sys), proplists:get_value(total, Sys),
          is_list(proplists:get_value(otp_release, Sys))}}
    """)
    pids, names, count, total, release_is_text = result
    assert pid in pids
    assert Atom("observer_probe") in names and Atom("net_kernel") in names
    assert count >= len(pids) and total > 0 and release_is_text
