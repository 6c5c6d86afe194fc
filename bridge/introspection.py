"""What OTP's introspection tools ask a node, answered for a Python node.

``etop`` (``etop:start([{node, PyNode}, {output, text}])``) checks the node with
``rpc:call(Node, observer_backend, vsn, [])`` and then, every interval, spawns
``observer_backend:etop_collect(Collector)`` on it; the spawned process sends the
collector ``{self(), #etop_info{}}``, one ``#etop_proc_info{}`` per process. The
Python node answers both, so ``etop`` lists Python processes with their pid,
registered name (or initial call), memory, reductions analogue, current function
and message queue length (see :mod:`python_actors.introspection` for what each
means here).

Plain BIFs that tools and people call through ``rpc`` are answered too:
``erlang:processes/0``, ``erlang:registered/0``, ``erlang:process_info/1,2``,
``erlang:is_process_alive/1``, ``erlang:whereis/1``, ``erlang:node/0``,
``erlang:memory/0,1`` and ``erlang:system_info(otp_release | process_count)``.
Everything else stays ``undef``, so a tool the node cannot serve gets an error at
once instead of hanging. Tracing (``dbg``) is one: ``dbg:n/1`` and ``dbg:tracer/3``
get their relay process, which prints the reason on the tracing node's console
(``user``, where dbg prints its own errors) and exits at once with
``{not_supported, Why}``, so dbg drops the node; and
``dbg:p/2`` reports ``{matched, Node, 0, {error, {not_supported, Why}}}`` for the
Python node. So ``etop`` on a Python node runs with ``{tracing, off}`` (its runtime
column is then reductions, as etop documents).

All of it is read-only and runs on the node's loop; ``Node(introspection=False)``
leaves it out.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid
from python_actors import Exit, Process
from python_actors.introspection import process_info, process_items

if TYPE_CHECKING:
    from .node import Node

__all__ = ["install"]

log = logging.getLogger("bridge.introspection")

_OK = Atom("ok")
_UNDEFINED = Atom("undefined")
_BADARG = Atom("badarg")
#: the runtime_tools version we answer etop's check with (any version passes it)
RUNTIME_TOOLS_VSN = "1.19"
NO_TRACING = b"Python processes cannot be traced (erlang:trace/3); use etop with {tracing, off}"


def install(node: Node) -> None:
    """Allow-list the introspection functions on ``node``."""
    rt = node.runtime
    started = time.monotonic()

    async def vsn() -> Any:
        return (_OK, list(RUNTIME_TOOLS_VSN.encode()))

    async def processes() -> list[Pid]:
        return rt.processes()

    async def registered() -> list[Atom]:
        return rt.registered()

    async def whereis(name: Any) -> Any:
        return rt.whereis(name) if type(name) is Atom else _UNDEFINED

    async def is_process_alive(pid: Any) -> bool:
        if type(pid) is not Pid:
            raise Exit(_BADARG)
        return rt.is_alive(pid)

    async def info(pid: Any, items: Any = None) -> Any:
        if type(pid) is not Pid:
            raise Exit(_BADARG)
        if items is None:
            found = process_info(rt, pid)
            return _UNDEFINED if found is None else [(Atom(k), v) for k, v in found.items()]
        single = type(items) is Atom
        names = [items] if single else items
        if type(names) is not list or any(type(i) is not Atom for i in names):
            raise Exit(_BADARG)
        try:
            found_items = process_items(rt, pid, [i.name for i in names])
        except ValueError:
            raise Exit(_BADARG) from None
        if found_items is None:
            return _UNDEFINED
        return found_items[0] if single else found_items

    async def this_node() -> Atom:
        return node.atom

    async def memory(kind: Any = None) -> Any:
        table = _memory(rt)
        if kind is None:
            return list(table.items())
        if type(kind) is Atom and kind in table:
            return table[kind]
        raise Exit(_BADARG)

    async def system_info(item: Any) -> Any:
        found = _system_info(rt, started).get(item) if type(item) is Atom else None
        if found is None:
            raise Exit(_BADARG)
        return found

    async def sys_info() -> Any:
        log.debug("observer_backend:sys_info")
        info = _system_info(rt, started)
        keys = [
            "uptime", "run_queue", "io_input", "io_output", "logical_processors",
            "logical_processors_online", "logical_processors_available", "schedulers",
            "schedulers_online", "schedulers_available", "otp_release", "version",
            "system_architecture", "kernel_poll", "smp_support", "threads",
            "thread_pool_size", "wordsize_internal", "wordsize_external", "alloc_info",
            "process_count", "atom_limit", "atom_count", "process_limit", "port_limit",
            "port_count", "ets_limit", "ets_count", "dist_buf_busy_limit",
        ]  # fmt: skip
        return [(Atom(k), info[Atom(k)]) for k in keys] + list(_memory(rt).items())

    async def ensure_loaded(module: Any) -> Any:
        if module == Atom("observer_backend"):
            return (Atom("module"), module)
        return (Atom("error"), Atom("nofile"))

    async def function_exported(module: Any, function: Any, arity: Any) -> bool:
        return (module, function, arity) in {
            (Atom("observer_backend"), Atom("procs_info"), 1),
            (Atom("observer_backend"), Atom("etop_collect"), 1),
            (Atom("observer_backend"), Atom("sys_info"), 0),
            # answered with empty lists: observer then shows an empty tab instead of a
            # modal "not available" dialog that blocks its panel (and observer:stop/0)
            (Atom("observer_backend"), Atom("get_port_list"), 0),
            (Atom("observer_backend"), Atom("get_socket_list"), 0),
            (Atom("observer_backend"), Atom("socket_info"), 0),
        }

    async def which_applications() -> list[Any]:
        return []

    async def fetch_stats(proc: Process, parent: Any, interval_ms: Any) -> None:
        # observer's Load Charts and Memory Allocators tabs: one "scheduler", the
        # process's CPU time against wall time; no I/O counters; memory as erlang:memory().
        if type(parent) is not Pid or type(interval_ms) is not int:
            return
        while True:
            msg = await proc.receive(timeout=max(interval_ms, 50) / 1000, default=None)
            if msg is not None:
                return
            sched = [(1, time.process_time_ns(), time.monotonic_ns())]
            io = ((Atom("input"), 0), (Atom("output"), 0))
            proc.send(parent, (Atom("stats"), 1, sched, io, list(_memory(rt).items())))

    async def no_entries(*_args: Any) -> list[Any]:
        # observer's Ports, Sockets and Table Viewer tabs: a Python node has none
        return []

    async def appmon_start(starter: Any, client: Any, opts: Any) -> Any:
        # observer's Applications tab (appmon_info:start_link/3): a Python node runs no
        # OTP applications, so the server it gets answers every query with none.
        existing = rt.whereis("appmon_info")
        if existing is None:
            existing = rt.spawn(_appmon_stub, node.atom)
        return (_OK, existing)

    async def procs_info(proc: Process, collector: Any) -> None:
        log.debug("observer_backend:procs_info for %s", collector)
        if type(collector) is Pid:
            info = _etop_info(rt, proc.pid)
            proc.send(collector, (Atom("procs_info"), proc.pid, info[-1]))

    async def etop_collect(proc: Process, collector: Any) -> None:
        if type(collector) is Pid:
            proc.send(collector, (proc.pid, _etop_info(rt, proc.pid)))

    async def dbg_relay(proc: Process, parent: Any, tracer: Any) -> None:
        # dbg:n/1 and dbg:tracer/3 wait for {started, Relay} with no timeout: answer,
        # then exit with the reason, so dbg drops this node instead of hanging.
        if type(parent) is Pid:
            proc.send(parent, (Atom("started"), proc.pid))
            # say why on the tracing node's console, as dbg itself reports there (io:format(user, ...))
            text = b"** dbg: node " + node.name.encode() + b" dropped: " + NO_TRACING + b"\n"
            request = (Atom("put_chars"), Atom("unicode"), text)
            proc.send((Atom("user"), parent.node), (Atom("io_request"), proc.pid, proc.pid, request))
        raise Exit((Atom("not_supported"), NO_TRACING))

    async def dbg_trace(pid_spec: Any, how: Any, flags: Any) -> Any:
        return (Atom("error"), (Atom("not_supported"), NO_TRACING))

    table: list[tuple[str, Callable[..., Any]]] = [
        ("processes", processes),
        ("registered", registered),
        ("whereis", whereis),
        ("is_process_alive", is_process_alive),
        ("process_info", info),
        ("node", this_node),
        ("memory", memory),
        ("system_info", system_info),
    ]
    for name, fn in table:
        node.allow_rpc("erlang", name, fn)
    node.allow_rpc("observer_backend", "vsn", vsn)
    node.allow_rpc("observer_backend", "sys_info", sys_info)
    node.allow_spawn("observer_backend", "procs_info", procs_info)
    node.allow_spawn("observer_backend", "fetch_stats", fetch_stats)
    for listing in ("get_table_list", "get_port_list", "get_socket_list", "socket_info"):
        node.allow_rpc("observer_backend", listing, no_entries)
    node.allow_rpc("code", "ensure_loaded", ensure_loaded)
    node.allow_rpc("erlang", "function_exported", function_exported)
    node.allow_rpc("application", "which_applications", which_applications)
    node.allow_rpc("appmon_info", "start_link2", appmon_start)
    node.allow_spawn("observer_backend", "etop_collect", etop_collect)
    node.allow_spawn("dbg", "do_relay", dbg_relay)
    node.allow_rpc("dbg", "erlang_trace", dbg_trace)


def _memory(rt: Any) -> dict[Atom, int]:
    procs = 0
    for pid in rt.processes():
        found = process_items(rt, pid, ["memory"])
        if found:
            procs += found[0][1]
    total = _rss_bytes() or procs
    return {
        Atom("total"): total,
        Atom("processes"): procs,
        Atom("ets"): 0,
        Atom("atom"): 0,
        Atom("code"): 0,
        Atom("binary"): 0,
    }


async def _appmon_stub(proc: Process, this_node: Atom) -> None:
    """``appmon_info`` as observer's Applications tab talks to it: every ``app_ctrl``
    and ``app`` request is answered with an empty result (no applications)."""
    proc.register("appmon_info")
    while True:
        msg = await proc.receive()
        if type(msg) is tuple and len(msg) == 2 and msg[0] == Atom("$gen_cast"):
            req = msg[1]
            if type(req) is tuple and len(req) == 5 and type(req[0]) is Pid and req[3] is True:
                proc.send(req[0], (Atom("delivery"), proc.pid, req[1], req[2], []))


def _system_info(rt: Any, started: float) -> dict[Atom, Any]:
    """``erlang:system_info/1`` items that tools read, with this process's values."""
    cpus = os.cpu_count() or 1
    threads = rt.threads.size
    release = f"python{sys.version_info.major}.{sys.version_info.minor}"
    values: dict[str, Any] = {
        "uptime": int((time.monotonic() - started) * 1000),
        "run_queue": 0,
        "io_input": 0,
        "io_output": 0,
        "logical_processors": cpus,
        "logical_processors_online": cpus,
        "logical_processors_available": cpus,
        "schedulers": 1,
        "schedulers_online": 1,
        "schedulers_available": 1,
        "dirty_cpu_schedulers": 0,
        "otp_release": list(release.encode()),
        "version": list(sys.version.split()[0].encode()),
        "system_architecture": list(f"{os.uname().machine}-python-{sys.platform}".encode()),
        "kernel_poll": True,
        "smp_support": True,
        "threads": True,
        "thread_pool_size": threads,
        "wordsize_internal": 8,
        "wordsize_external": 8,
        "alloc_info": _alloc_info(),
        "process_count": len(rt.processes()),
        "atom_limit": _UNDEFINED,  # none on a Python node: observer shows "Not available"
        "atom_count": _UNDEFINED,  # none on a Python node: observer shows "Not available"
        "process_limit": 1 << 28,
        "port_limit": _UNDEFINED,  # none on a Python node: observer shows "Not available"
        "port_count": _UNDEFINED,  # none on a Python node: observer shows "Not available"
        "ets_limit": _UNDEFINED,  # none on a Python node: observer shows "Not available"
        "ets_count": _UNDEFINED,  # none on a Python node: observer shows "Not available"
        "dist_buf_busy_limit": 1024 * 1024,
    }
    return {Atom(k): v for k, v in values.items()}


def _alloc_info() -> list[Any]:
    """One pseudo allocator for observer's Memory Allocators tab: the interpreter's
    resident memory (CPython does not tell used from reserved, so both are RSS)."""
    rss = _rss_bytes() or 1
    instance = (Atom("instance"), 0, [(Atom("mbcs"), [
        (Atom("blocks"), [(Atom("python"), [(Atom("size"), rss)])]),
        (Atom("carriers_size"), rss, rss, rss),
    ])])  # fmt: skip
    return [(Atom("python_heap"), [instance])]


def _rss_bytes() -> int:
    try:
        with open(f"/proc/{os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _etop_info(rt: Any, collector_proc: Pid) -> tuple[Any, ...]:
    """``#etop_info{}`` (runtime_tools' observer_backend.hrl) for this runtime."""
    now = time.time()
    mega, rest = divmod(int(now), 1_000_000)
    stamp = (mega, rest, int((now % 1) * 1_000_000))
    procinfo = []
    for pid in rt.processes():
        if pid == collector_proc:
            continue
        found = process_info(rt, pid)
        if found is None:
            continue
        name = found["registered_name"] or found["initial_call"]
        procinfo.append(
            (
                Atom("etop_proc_info"),
                pid,
                found["memory"],
                found["reductions"],
                name,
                0,
                found["current_function"],
                found["message_queue_len"],
            )
        )
    memi = list(_memory(rt).items())
    return (
        Atom("etop_info"),
        stamp,
        len(procinfo),
        _UNDEFINED,
        _UNDEFINED,
        0,
        [],
        memi,
        procinfo,
    )


