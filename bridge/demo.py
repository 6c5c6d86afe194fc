"""``make demo``: Python, Erlang and Elixir nodes in one cluster and one supervision tree.

``python -m bridge.demo [--ebin DIR]`` needs ``erl`` and ``elixir`` on ``PATH`` and the
compiled beam_bridge application (``rebar3 compile`` in a checkout of the repository):
``--ebin``, else ``$BEAM_BRIDGE_EBIN``, else ``./_build/default/lib/beam_bridge/ebin``.
It starts a private EPMD, an Elixir node with a GenServer, an Erlang node with the
beam_bridge application, and a Python node run *by* the Erlang node's supervisor,
then prints a transcript with timings and stops everything it started::

    app_erl: demo_sup (Erlang, rest_for_one)
     |- the Python node py@127.0.0.1 (beam_bridge_node: an OS process)
     |    `- py_sup (Python Supervisor)
     |         |- py_counter   (Python GenServer)
     |         `- demo_events  (Erlang gen_event on app_erl: a BEAM child of Python)
     `- actors_sup (Erlang, one_for_one)
          `- counter (Python GenServer, started by beam_bridge)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dist_proto import Atom, Pid, format_term

from . import event_loop
from ._beam_runtime import BeamNode, Epmd, find_erl, pid_expr
from .node import Node

COOKIE = "beam_bridge_demo"


def _say(text: str) -> None:
    print(text, flush=True)


def _step(title: str) -> None:
    _say(f"\n== {title}")


def _os_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether OS process ``pid`` has exited (or is a zombie) within ``seconds``."""
    deadline = time.monotonic() + seconds
    while _os_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


async def _poll(fn: Any, timeout: float = 20.0, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("the demo waited too long")
        await asyncio.sleep(interval)


def find_ebin(given: str | None) -> Path:
    """The beam_bridge application's ``ebin``: ``--ebin``, ``$BEAM_BRIDGE_EBIN``, ``./_build``."""
    candidates = [given, os.environ.get("BEAM_BRIDGE_EBIN"),
                  str(Path.cwd() / "_build" / "default" / "lib" / "beam_bridge" / "ebin")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "beam_bridge.beam").exists():
            return Path(candidate).resolve()
    raise SystemExit(
        "the demo needs the compiled beam_bridge application: run `rebar3 compile` in a checkout "
        "of beam-bridge (make demo does), then pass --ebin _build/default/lib/beam_bridge/ebin "
        "or set BEAM_BRIDGE_EBIN, or run the demo from the checkout's root")


async def run(ebin: Path) -> None:
    """Run the whole demo; ``SystemExit(1)`` if a process it started was left behind."""
    erl_path = find_erl()
    started = time.monotonic()
    with Epmd(erl_path) as epmd, tempfile.TemporaryDirectory(prefix="beam-bridge-demo-") as workdir:
        _step("Starting an Elixir node, an Erlang node and a Python node")
        with BeamNode(erl_path, epmd_port=epmd.port, prefix="app_ex", cookie=COOKIE, elixir=True) as ex, \
             BeamNode(erl_path, epmd_port=epmd.port, prefix="app_erl", cookie=COOKIE,
                      extra_args=["-pa", str(ebin)]) as erl:
            _say(f"Elixir node   {ex.name}")
            _say(f"Erlang node   {erl.name}")
            ex.eval('element(1, \'Elixir.Code\':eval_string(<<"'
                    "defmodule Demo.Counter do use GenServer; "
                    "def init(n), do: {:ok, n}; "
                    "def handle_call(:get, _, n), do: {:reply, n, n}; "
                    "def handle_call({:add, k}, _, n), do: {:reply, n + k, n + k} end; "
                    "GenServer.start(Demo.Counter, 40, name: Demo.Counter)"
                    '">>))')
            py_name = f"py_{os.getpid()}@127.0.0.1"
            erl.eval("process_flag(trap_exit, true)")
            node_opts = (f"#{{name => '{py_name}', module => \"bridge.demo_actors\", "
                         f"python => \"{sys.executable}\", cd => \"{workdir}\", stop_timeout => 3000, "
                         f"env => [{{\"DEMO_ERLANG_NODE\", \"{erl.name}\"}}]}}")
            t0 = time.monotonic()
            erl.eval(
                "{ok, Top} = beam_bridge_sup:start_link(#{strategy => rest_for_one, intensity => 10, period => 60}, ["
                f"beam_bridge_node:child_spec({node_opts}), "
                "#{id => actors_sup, type => supervisor, start => {beam_bridge_sup, start_link, "
                "[#{intensity => 10, period => 60}, "
                f"[beam_bridge:child_spec(#{{id => counter, node => '{py_name}', actor => counter, args => 10}})]]}}}}])",
                timeout=90,
            )
            _say(f"Python node   {py_name} (an OS process owned by an Erlang supervisor; up in "
                 f"{(time.monotonic() - t0) * 1000:.0f} ms)")
            _say(_tree())

            async with Node(f"demo_{os.getpid()}@127.0.0.1", cookie=COOKIE, epmd_port=epmd.port) as me:
                await _calls(me, ex, erl, py_name)
                await _crashes(me, ex, erl, py_name)
            node_child = erl.eval(
                f"element(2, lists:keyfind({{python_node, '{py_name}'}}, 1, supervisor:which_children(Top)))")
            py_os_pid = erl.eval(f"beam_bridge_node:os_pid({_pid(node_child)})")
            _step("Shutting down")
            erl.eval("unlink(Top), exit(Top, shutdown), timer:sleep(200)")
            _say(f"Erlang tree stopped; Python node process {py_os_pid} stopped with it: "
                 f"{_gone_within(py_os_pid, 10.0)}")
        pids = {"Elixir node": ex.pid, "Erlang node": erl.pid, "Python node": py_os_pid}
    pids["EPMD"] = epmd.proc.pid
    left = [what for what, pid in pids.items() if not _gone_within(pid, 10.0)]
    _say(f"Processes left behind: {', '.join(left) if left else 'none'}. "
         f"Demo took {time.monotonic() - started:.1f} s.")
    if left:
        raise SystemExit(1)


def _tree() -> str:
    return (
        "\nThe supervision tree:\n"
        "  demo_sup (Erlang, rest_for_one)\n"
        "   |- Python node (beam_bridge_node)\n"
        "   |    `- py_sup (Python Supervisor)\n"
        "   |         |- py_counter  (Python GenServer)\n"
        "   |         `- demo_events (Erlang gen_event on the Erlang node)\n"
        "   `- actors_sup (Erlang supervisor)\n"
        "        `- counter (Python GenServer started by beam_bridge)"
    )


async def _ev(beam: Any, expr: str) -> Any:
    return await asyncio.to_thread(beam.eval, expr)


async def _calls(me: Node, ex: Any, erl: Any, py: str) -> None:
    _step("Python calls the Elixir GenServer")
    t = time.perf_counter()
    n = await me.call(("Elixir.Demo.Counter", ex.name), (Atom("add"), 2))
    _say(f"GenServer.call({{Demo.Counter, {ex.name}}}, {{:add, 2}}) -> {n}  "
         f"({(time.perf_counter() - t) * 1e6:.0f} us)")
    _say(f"rpc erlang:system_info(otp_release) on Elixir node -> "
         f"{bytes(await me.rpc(ex.name, 'erlang', 'system_info', [Atom('otp_release')])).decode()}")

    _step("Elixir calls the Python GenServer")
    reply = await _ev(ex, f"'Elixir.GenServer':cast({{py_counter, '{py}'}}, {{add, 5}}), "
                          f"'Elixir.GenServer':call({{py_counter, '{py}'}}, get)")
    _say(f"GenServer.cast({{:py_counter, :\"{py}\"}}, {{:add, 5}}); GenServer.call(..., :get) -> {reply}")
    pong = await _ev(ex, f"net_adm:ping('{py}')")
    hidden = format_term(await _ev(ex, "nodes(hidden)"))
    _say(f"net_adm:ping from Elixir -> {pong}; nodes(hidden) on Elixir -> {hidden}")

    _step("Erlang calls the Python actor it supervises")
    value = await _ev(erl, f"gen_server:call({_pid(await _counter_pid(erl))}, {{add, 1}})")
    _say(f"gen_server:call(Counter, {{add, 1}}) -> {value}")


_fresh = itertools.count()


async def _counter_pid(erl: Any) -> Any:
    # erl_eval keeps bindings between evaluations: use fresh variable names.
    n = next(_fresh)
    return await _ev(erl, f"case lists:keyfind(actors_sup, 1, supervisor:which_children(Top)) of "
                          f"{{_, S{n}, _, _}} when is_pid(S{n}) -> case supervisor:which_children(S{n}) of "
                          f"[{{counter, P{n}, _, _}}] when is_pid(P{n}) -> P{n}; _ -> undefined end; "
                          f"_ -> undefined end")


async def _crashes(me: Node, ex: Any, erl: Any, py: str) -> None:
    _step("Crash 1: the Python actor crashes; its Erlang supervisor restarts it")
    old = await _counter_pid(erl)
    t = time.perf_counter()
    await _ev(erl, f"catch gen_server:call({_pid(old)}, crash)")

    async def new_counter() -> Any:
        pid = await _counter_pid(erl)
        if isinstance(pid, Pid) and pid != old:
            return pid
        return None

    new = await _poll(new_counter)
    value = await _ev(erl, f"gen_server:call({_pid(new)}, get)")
    _say(f"{format_term(old)} crashed -> restarted as {format_term(new)} (state {value}) "
         f"in {(time.perf_counter() - t) * 1000:.1f} ms")

    _step("Crash 2: an Erlang process supervised by the Python supervisor is killed")
    old_ev = await _ev(erl, "whereis(demo_events)")
    t = time.perf_counter()
    await _ev(erl, "exit(whereis(demo_events), kill)")

    async def new_events() -> Any:
        pid = await _ev(erl, "whereis(demo_events)")
        return pid if isinstance(pid, Pid) and pid != old_ev else None

    new_ev = await _poll(new_events)
    _say(f"demo_events {format_term(old_ev)} killed -> restarted by py_sup as {format_term(new_ev)} "
         f"in {(time.perf_counter() - t) * 1000:.1f} ms")

    _step("Crash 3: the whole Python node is killed (kill -9); the Erlang tree restarts it")
    node_child = await _ev(erl, f"element(2, lists:keyfind({{python_node, '{py}'}}, 1, supervisor:which_children(Top)))")
    os_pid = await _ev(erl, f"beam_bridge_node:os_pid({_pid(node_child)})")
    old = await _counter_pid(erl)
    t = time.perf_counter()
    os.kill(os_pid, signal.SIGKILL)
    new = await _poll(new_counter, timeout=60)
    node_back = (time.perf_counter() - t) * 1000
    reply = await _poll(lambda: _elixir_get(ex, py), timeout=30)
    _say(f"Python node (OS pid {os_pid}) killed -> node and its actors back in {node_back:.0f} ms; "
         f"counter {format_term(new)} answers {await _ev(erl, f'gen_server:call({_pid(new)}, get)')}; "
         f"Elixir's GenServer.call to py_counter answers {reply}")
    _say(f"Old OS process gone: {not _os_alive(os_pid)}")


async def _elixir_get(ex: Any, py: str) -> Any:
    value = await _ev(ex, f"catch 'Elixir.GenServer':call({{py_counter, '{py}'}}, get, 1000)")
    return value if isinstance(value, int) else None


def _pid(pid: Any) -> str:
    if not isinstance(pid, Pid):
        raise RuntimeError(f"expected a pid, got {pid!r}")
    return pid_expr(pid)


def main(argv: list[str] | None = None) -> None:
    """``python -m bridge.demo [--ebin DIR]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bridge.demo",
        description="Python, Erlang and Elixir nodes in one cluster and one supervision tree.")
    parser.add_argument("--ebin", metavar="DIR",
                        help="the beam_bridge application's ebin folder (default: $BEAM_BRIDGE_EBIN, "
                             "else ./_build/default/lib/beam_bridge/ebin)")
    args = parser.parse_args(argv)
    event_loop.run(run(find_ebin(args.ebin)))  # uvloop when installed


if __name__ == "__main__":
    main()
