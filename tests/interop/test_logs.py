"""Python log records and actor crash reports in the BEAM's ``logger``, OTP 25 and 28.

The BEAM node gets a ``logger_std_h`` handler writing to a file with a template that
prints the level and the metadata we promise (pid, registered name, class, node), so
the test reads what an operator's handler would see.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge import Node
from bridge.logs import BeamLogHandler, beam_level, forward_logs
from dist_proto import Atom
from python_actors import Exit, GenServer, Ok, Reply
from tests.beam import REPO_ROOT, BeamNode, Epmd, Runtime, pid_expr, unique_name
from tests.interop.node_support import ev, eventually, py_node
from tests.interop.test_erl_app import erl_ebin  # noqa: F401  (session fixture)

pytestmark = pytest.mark.interop

FIXTURE = REPO_ROOT / "tests" / "interop" / "fixtures" / "py_actors.py"
TEMPLATE = ('[level, "|", {pid, [pid], ["-"]}, "|", {registered_name, [registered_name], ["-"]}, "|", '
            '{class, [class], ["-"]}, "|", {node, [node], ["-"]}, "|", msg, "\\n"]')


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd, erl_ebin: Path) -> Iterator[BeamNode]:  # noqa: F811
    with BeamNode(runtime, epmd_port=epmd.port, prefix="log", extra_args=["-pa", str(erl_ebin)]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


@pytest.fixture
def log_file(beam: BeamNode, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "beam.log"
    handler = unique_name("h")
    beam.eval(f"ok = logger:add_handler({handler}, logger_std_h, #{{config => #{{file => \"{path}\"}}, level => all, "
              f"formatter => {{logger_formatter, #{{single_line => true, template => {TEMPLATE}}}}}}})")
    yield path
    beam.eval(f"logger:remove_handler({handler})")


def lines(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split("|", 5) for line in path.read_text().splitlines() if line]


class Chatty(GenServer):
    def init(self, _: object) -> Ok:
        return Ok(None)

    def handle_call(self, request: object, from_: object, state: None) -> Reply:
        if request == Atom("crash"):
            raise ValueError("chatty crashed")
        logging.getLogger("chatty").warning("asked %s", request)
        return Reply(Atom("ok"), state)


@pytest.fixture
async def node(epmd: Epmd) -> AsyncIterator[Node]:
    async with py_node(epmd.port, prefix="pylog") as n:
        yield n


async def test_records_reach_logger_at_matching_levels(beam: BeamNode, node: Node, log_file: Path) -> None:
    lg = logging.getLogger(unique_name("app"))
    lg.setLevel(logging.DEBUG)
    handler = forward_logs(node, beam.name, logger=lg)
    try:
        lg.debug("not sent: below WARNING")
        lg.info("not sent either")
        lg.warning("disk %d%% full", 91)
        lg.error("failed: ünïcode ✓")
        lg.critical("down")
        try:
            raise KeyError("k")
        except KeyError:
            lg.exception("with traceback")
        await eventually(lambda: len(lines(log_file)) >= 4, what="four log lines on the BEAM")
        await asyncio.sleep(0.2)
        got = [(lv, msg) for lv, _pid, _name, _cls, _node, msg in lines(log_file)]
        assert got[:3] == [("warning", "disk 91% full"), ("error", "failed: ünïcode ✓"), ("critical", "down")]
        assert got[3][0] == "error" and got[3][1].startswith("with traceback") and "KeyError: 'k'" in got[3][1]
        assert all(n == node.name for *_, n, _ in lines(log_file))
    finally:
        lg.removeHandler(handler)


async def test_actor_crash_report_has_pid_name_and_class(beam: BeamNode, node: Node, log_file: Path) -> None:
    handler = forward_logs(node, beam.name)
    name = unique_name("chatty")
    try:
        pid = await Chatty.start(None, name=name, runtime=node.runtime)
        assert await node.call(pid, Atom("hello")) == Atom("ok")
        with pytest.raises(Exit):
            await node.call(pid, Atom("crash"))
        await eventually(lambda: any(ln[0] == "error" for ln in lines(log_file)), what="crash report")
        expect_pid = (await ev(beam, f"list_to_binary(pid_to_list({pid_expr(pid)}))")).decode()
        warning = next(ln for ln in lines(log_file) if ln[0] == "warning")
        crash = next(ln for ln in lines(log_file) if ln[0] == "error")
        cls = f"{Chatty.__module__}.{Chatty.__qualname__}"
        assert warning[:5] == ["warning", expect_pid, name, cls, node.name] and warning[5] == "asked hello"
        assert crash[:5] == ["error", expect_pid, name, cls, node.name]
        assert "terminating" in crash[5] and "chatty crashed" in crash[5]
    finally:
        logging.getLogger().removeHandler(handler)


async def test_handler_never_recurses(node: Node, beam: BeamNode, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record logged from inside the send path (as a warning of the connection code
    would be) is dropped, not sent again and again."""
    lg = logging.getLogger(unique_name("rec"))
    handler = forward_logs(node, beam.name, logger=lg)
    original = node.router.send
    sent: list[object] = []

    def send_and_warn(from_pid: object, to: object, message: object) -> None:
        sent.append(message)
        lg.warning("a warning while sending")
        original(from_pid, to, message)  # type: ignore[arg-type]

    monkeypatch.setattr(node.router, "send", send_and_warn)
    try:
        for i in range(3):
            lg.warning("record %d", i)
        await asyncio.sleep(0.1)
        assert len(sent) == 3
        assert await node.ping(beam.name)
    finally:
        lg.removeHandler(handler)


async def test_unreachable_target_costs_nothing(node: Node, beam: BeamNode) -> None:
    handler = BeamLogHandler(node, "nobody@127.0.0.1")
    handler.attach_loop(asyncio.get_running_loop())
    lg = logging.getLogger(unique_name("nowhere"))
    lg.addHandler(handler)
    try:
        for i in range(3):
            lg.warning("to nowhere %d", i)
        assert await node.ping(beam.name)
    finally:
        lg.removeHandler(handler)


def test_level_mapping() -> None:
    assert [beam_level(n).name for n in (50, 45, 40, 30, 25, 20, 10, 0)] == [
        "critical", "error", "error", "warning", "info", "info", "debug", "debug"]


def test_python_node_under_beam_bridge_node_logs_to_its_owner(beam: BeamNode, log_file: Path) -> None:
    """``beam_bridge_node`` starts the Python node with ``--log-to`` its own node: an
    actor's crash report arrives in the owner's logger at error level."""
    py = f"{unique_name('pyl')}@127.0.0.1"
    opts = (f"#{{name => '{py}', module => \"{FIXTURE}\", python => \"{sys.executable}\", "
            f"cd => \"{REPO_ROOT}\", stop_timeout => 3000}}")
    beam.eval(f"{{ok, LSup}} = beam_bridge_sup:start_link(#{{strategy => rest_for_one, intensity => 5, period => 5}}, "
              f"[beam_bridge_node:child_spec({opts}), "
              f"beam_bridge:child_spec(#{{id => counter, node => '{py}', actor => counter, args => 0}})])", timeout=60)
    try:
        beam.eval("[{counter, LC, _, _} | _] = supervisor:which_children(LSup), LA = beam_bridge:actor(LC), "
                  "catch gen_server:call(LC, crash)")
        for _ in range(100):
            crash = [ln for ln in lines(log_file) if ln[0] == "error" and ln[4] == py]
            if crash:
                break
            asyncio.run(asyncio.sleep(0.1))
        assert crash, lines(log_file)
        assert crash[0][3].endswith("Counter") and "asked to crash" in crash[0][5]
        assert crash[0][1] == beam.eval_term("list_to_binary(pid_to_list(LA))").decode()
    finally:
        beam.eval("unlink(LSup), exit(LSup, shutdown)")


ELIXIR_BACKEND = """
defmodule BBCapture do
  @behaviour :gen_event
  def init(_), do: {:ok, nil}
  def handle_call({:configure, _}, s), do: {:ok, :ok, s}
  def handle_event({level, _gl, {Logger, msg, _ts, md}}, s) do
    if md[:domain] == [:beam_bridge, :python] do
      send(:bb_collector, {:logged, level, IO.chardata_to_string(msg), md[:class], md[:registered_name]})
    end
    {:ok, s}
  end
  def handle_event(_, s), do: {:ok, s}
  def handle_info(_, s), do: {:ok, s}
end
{:ok, _} = Application.ensure_all_started(:logger)
Process.register(self(), :bb_collector)
Logger.add_backend(BBCapture)
"""


def test_elixir_logger_backends_see_python_records(epmd: Epmd) -> None:
    """Elixir 1.14 on OTP 25: a Logger backend receives the Python records, with the
    crash report's level and metadata."""

    async def scenario() -> None:
        from tests.beam import runtime as find_runtime

        with BeamNode(find_runtime("otp25"), epmd_port=epmd.port, elixir=True) as ex:
            code = ELIXIR_BACKEND.replace('"', '\\"')
            await asyncio.to_thread(ex.eval_term, f"element(1, 'Elixir.Code':eval_string(<<\"{code}\"/utf8>>))")
            async with py_node(epmd.port, prefix="pyex") as node:
                handler = forward_logs(node, ex.name)
                name = unique_name("chatty")
                try:
                    pid = await Chatty.start(None, name=name, runtime=node.runtime)
                    await node.call(pid, Atom("hi"))
                    with pytest.raises(Exit):
                        await node.call(pid, Atom("crash"))
                    got = await asyncio.to_thread(
                        ex.eval_term,
                        "[receive {logged, L, M, C, N} -> {L, M, C, N} after 5000 -> timeout end || _ <- [1, 2]]")
                finally:
                    logging.getLogger().removeHandler(handler)
            cls = Atom(f"{Chatty.__module__}.{Chatty.__qualname__}")
            # Elixir 1.14's backends name the level :warn (logger's warning).
            assert got[0] == (Atom("warn"), b"asked hi", cls, Atom(name))
            assert got[1][0] == Atom("error") and b"chatty crashed" in got[1][1] and got[1][2:] == (cls, Atom(name))

    asyncio.run(scenario())
