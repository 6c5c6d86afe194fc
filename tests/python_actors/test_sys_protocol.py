"""sys on Python GenServers and Supervisors, without sockets: state, status, suspend,
debug options, change_code, and gen:call's clean-up (python_actors.sys_protocol)."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from dist_proto import Atom, Pid, encode
from python_actors import (
    CallError,
    GenServer,
    NoReply,
    Ok,
    Process,
    Reply,
    Runtime,
    Supervisor,
    call,
    cast,
)
from python_actors import sys_protocol as sysp
from python_actors.hot_upgrade import UpgradeError, upgrade_module

OK = Atom("ok")


class Recorder(GenServer):
    """State: list of what it handled, in order."""

    def init(self, args: Any) -> Any:
        return Ok([])

    def handle_call(self, request: Any, from_: Any, state: list[Any]) -> Any:
        if request == "get":
            return Reply(list(state), state)
        return Reply(("echo", request), [*state, ("call", request)])

    def handle_cast(self, request: Any, state: list[Any]) -> Any:
        return NoReply([*state, ("cast", request)])

    def handle_info(self, message: Any, state: list[Any]) -> Any:
        return NoReply([*state, ("info", message)])


class Opaque:
    def __init__(self) -> None:
        self.handle = object()
        self.size = 3


async def test_get_state_and_replace_state() -> None:
    async with Runtime() as rt:
        pid = await Recorder.start(runtime=rt)
        cast(pid, 1, runtime=rt)
        assert await sysp.get_state(pid, runtime=rt) == [("cast", 1)]
        assert await sysp.replace_state(pid, lambda s: [*s, "x"], runtime=rt) == [("cast", 1), "x"]
        with pytest.raises(sysp.SysError) as err:
            await sysp.replace_state(pid, lambda s: 1 / 0, runtime=rt)
        failed = err.value.reason
        assert failed[0] == Atom("callback_failed")
        assert failed[1] == (Atom("gen_server"), Atom("system_replace_state"))
        assert failed[2][0] == Atom("error")
        assert await call(pid, "get", runtime=rt) == [("cast", 1), "x"]  # unchanged, alive


async def test_suspended_server_queues_everything_but_system_messages_in_order() -> None:
    async with Runtime() as rt:
        pid = await Recorder.start(runtime=rt)
        await sysp.suspend(pid, runtime=rt)
        cast(pid, "a", runtime=rt)
        pending = asyncio.ensure_future(call(pid, "b", runtime=rt))
        await asyncio.sleep(0)  # the call is sent
        rt.send(pid, "c")
        cast(pid, "d", runtime=rt)
        await asyncio.sleep(0.05)
        assert not pending.done()
        assert await sysp.get_state(pid, runtime=rt) == []  # system messages still served
        status = await sysp.get_status(pid, runtime=rt)
        assert status[3][1] == Atom("suspended")
        await sysp.resume(pid, runtime=rt)
        assert await pending == ("echo", "b")
        assert await call(pid, "get", runtime=rt) == [("cast", "a"), ("call", "b"), ("info", "c"), ("cast", "d")]
        status = await sysp.get_status(pid, runtime=rt)
        assert status[3][1] == Atom("running")


async def test_get_status_shape_and_format_status() -> None:
    class Secret(GenServer):
        def format_status(self, status: dict[str, Any]) -> dict[str, Any]:
            return {**status, "state": "redacted"}

    async with Runtime() as rt:
        pid = await Secret.start({"password": "x"}, runtime=rt, name="secret")
        tag, spid, module, items = await sysp.get_status(pid, runtime=rt)
        assert (tag, spid, module) == (Atom("status"), pid, (Atom("module"), Atom("gen_server")))
        pdict, mode, parent, debug, misc = items
        assert mode == Atom("running") and parent == pid and debug == []
        assert misc[0] == (Atom("header"), list(b"Status for generic server secret"))
        assert misc[1] == (Atom("data"), [(list(b"Status"), Atom("running")), (list(b"Parent"), pid),
                                          (list(b"Logged events"), [])])
        assert misc[2] == (Atom("data"), [(list(b"State"), "redacted")])
        assert dict(pdict)[Atom("$initial_call")][1:] == (Atom("init"), 1)
        encode((tag, spid, module, items))  # has an Erlang form


async def test_state_without_erlang_form_never_kills_the_server() -> None:
    async with Runtime() as rt:
        pid = await GenServer.start(Opaque(), runtime=rt)
        state = await sysp.get_state(pid, runtime=rt)
        assert isinstance(state, Opaque)  # a Python caller gets the object itself
        form = sysp.erlang_form(state)
        encode(form)
        assert form[Atom("__class__")] == Atom(f"{__name__}.Opaque")
        assert form[Atom("size")] == 3
        assert form[Atom("handle")][0] == Atom("$python")
        assert rt.is_alive(pid)


async def test_python_supervisor_answers_sys() -> None:
    async with Runtime() as rt:
        sup = await Supervisor.start_link([{"id": "w1", "start": (Recorder.start_link, ())}], runtime=rt)
        status = await sysp.get_status(sup, runtime=rt)
        assert status[0] == Atom("status") and status[3][1] == Atom("running")
        form = sysp.erlang_form(await sysp.get_state(sup, runtime=rt))
        encode(form)
        encode(sysp.erlang_form(status))
        assert [c.id for c in await Supervisor.which_children(sup, runtime=rt)] == ["w1"]


async def test_statistics_log_and_no_debug() -> None:
    async with Runtime() as rt:
        pid = await Recorder.start(runtime=rt)
        assert await sysp.statistics(pid, "get", runtime=rt) == Atom("no_statistics")
        await sysp.statistics(pid, True, runtime=rt)
        await sysp.log(pid, (True, 10), runtime=rt)
        await call(pid, "hi", runtime=rt)
        cast(pid, "c", runtime=rt)
        rt.send(pid, "i")
        await call(pid, "get", runtime=rt)
        stats = dict(await sysp.statistics(pid, "get", runtime=rt))
        assert stats[Atom("messages_in")] == 4 and stats[Atom("messages_out")] == 2
        assert set(stats) == {Atom(k) for k in ("start_time", "current_time", "reductions",
                                                "messages_in", "messages_out")}
        events = await sysp.log(pid, "get", runtime=rt)
        assert events[0][0] == Atom("in") and events[0][1][2] == "hi"
        assert events[1][0] == Atom("out") and events[1][1] == ("echo", "hi")
        assert events[2:4] == [(Atom("in"), (Atom("$gen_cast"), "c")), (Atom("noreply"), [("call", "hi"), ("cast", "c")])]
        assert events[4][1] == "i"
        await sysp.no_debug(pid, runtime=rt)
        assert await sysp.statistics(pid, "get", runtime=rt) == Atom("no_statistics")
        assert await sysp.log(pid, "get", runtime=rt) == []
        with pytest.raises(sysp.SysError):
            await sysp.log(pid, Atom("bogus"), runtime=rt)


async def test_trace_and_log_to_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    async with Runtime() as rt:
        pid = await Recorder.start(runtime=rt, name="traced")
        await sysp.trace(pid, True, runtime=rt)
        path = tmp_path / "events.log"
        await sysp.log_to_file(pid, str(path), runtime=rt)
        cast(pid, 5, runtime=rt)
        await call(pid, "get", runtime=rt)
        await sysp.trace(pid, False, runtime=rt)
        await sysp.log_to_file(pid, False, runtime=rt)
        cast(pid, 6, runtime=rt)
        await call(pid, "get", runtime=rt)
        out = capsys.readouterr().err.splitlines()
        assert out[:2] == ["*DBG* traced got cast 5", '*DBG* traced new state [{<<"cast"/utf8>>,5}]']
        assert out[2].startswith("*DBG* traced got call <<\"get\"/utf8>> from <")
        assert len(out) == 4
        assert path.read_text().splitlines() == out


async def test_unknown_messages_and_change_code_when_running() -> None:
    async with Runtime() as rt:
        pid = await Recorder.start(runtime=rt)
        with pytest.raises(sysp.SysError) as err:
            await sysp.change_code(pid, __name__, "1", None, runtime=rt)
        assert err.value.reason[0] == Atom("unknown_system_msg")

        async def raw(proc: Process) -> Any:
            ref = rt.make_ref()
            proc.send(pid, (Atom("system"), (proc.pid, ref), Atom("bogus")))
            return await proc.receive(lambda m: m[0] == ref, timeout=5)

        assert (await rt.run(raw))[1] == (Atom("error"), (Atom("unknown_system_msg"), Atom("bogus")))


async def test_terminate_runs_terminate() -> None:
    seen: list[Any] = []

    class Ends(GenServer):
        def terminate(self, reason: Any, state: Any) -> None:
            seen.append(reason)

    async with Runtime() as rt:
        pid = await Ends.start(runtime=rt)
        await sysp.terminate(pid, Atom("bye"), runtime=rt)
        assert not rt.is_alive(pid)
        assert seen == [Atom("bye")]


MODULE_V1 = """
from python_actors import GenServer, Ok, Reply

VSN = "1"

class Counter(GenServer):
    def handle_call(self, request, from_, state):
        return Reply((VSN, state), state + 1)
"""

MODULE_V2 = """
from python_actors import GenServer, Ok, Reply

VSN = "2"

class Counter(GenServer):
    def handle_call(self, request, from_, state):
        return Reply((VSN, state), state + 10)

    def code_change(self, old_vsn, state, extra):
        return Ok(state + extra)
"""


@pytest.fixture
def upgradable(tmp_path: Path) -> Any:
    name = f"upgradable_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODULE_V1)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
        yield module, tmp_path / f"{name}.py"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


async def test_upgrade_module_while_calls_flow(upgradable: Any) -> None:
    module, path = upgradable
    async with Runtime() as rt:
        pids = [await module.Counter.start(i * 100, runtime=rt) for i in range(3)]

        async def client(pid: Pid) -> list[Any]:
            return [await call(pid, "next", runtime=rt) for _ in range(40)]

        clients = [asyncio.ensure_future(client(p)) for p in pids]
        await asyncio.sleep(0)
        path.write_text(MODULE_V2)
        importlib.invalidate_caches()
        upgraded = await upgrade_module(rt, module.__name__, old_vsn="1", extra=1000)
        assert sorted(upgraded, key=lambda p: p.id) == pids
        results = await asyncio.gather(*clients)
        for base, replies in zip((0, 100, 200), results, strict=True):
            assert len(replies) == 40  # none lost
            vsns = [v for v, _ in replies]
            k = vsns.index("2") if "2" in vsns else 40
            assert vsns == ["1"] * k + ["2"] * (40 - k)
            expected = base
            for vsn, seen in replies:
                if vsn == "2" and seen != expected:
                    expected += 1000  # code_change added extra once
                assert seen == expected
                expected += 1 if vsn == "1" else 10
        new_cls = sys.modules[module.__name__].Counter
        assert all(type(rt.process(p).behaviour) is new_cls for p in pids)  # type: ignore[union-attr]


async def test_failed_upgrade_keeps_old_code(upgradable: Any) -> None:
    module, path = upgradable
    async with Runtime() as rt:
        pid = await module.Counter.start(5, runtime=rt)
        path.write_text("this is not python\n")
        importlib.invalidate_caches()
        with pytest.raises(UpgradeError) as err:
            await upgrade_module(rt, module.__name__)
        assert pid in err.value.failures and err.value.upgraded == []
        assert await call(pid, "next", runtime=rt) == ("1", 5)  # resumed, old code


class Caller(GenServer):
    """Calls a slow server with a short timeout; records every info it gets."""

    def init(self, args: Any) -> Any:
        return Ok([])

    async def handle_call(self, request: Any, from_: Any, infos: list[Any]) -> Any:
        if request == "infos":
            return Reply(list(infos), infos)
        try:
            await call(request, "slow", timeout=0.05)
        except CallError as exc:
            return Reply(exc.why, infos)
        return Reply("answered", infos)

    def handle_info(self, message: Any, infos: list[Any]) -> Any:
        return NoReply([*infos, message])


class Slow(GenServer):
    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        await asyncio.sleep(0.3)
        self.reply(from_, "late")
        return NoReply(state)


async def test_late_reply_never_reaches_handle_info_and_monitor_is_gone() -> None:
    async with Runtime() as rt:
        slow = await Slow.start(runtime=rt)
        caller = await Caller.start(runtime=rt)
        assert await call(caller, slow, runtime=rt) == Atom("timeout")
        proc = rt.process(caller)
        assert proc is not None and not proc.monitors and not rt._aliases
        await asyncio.sleep(0.4)  # the late reply has been sent by now
        rt.send(caller, "marker")
        assert await call(caller, "infos", runtime=rt) == ["marker"]


async def test_cancelled_call_removes_monitor_and_alias() -> None:
    async with Runtime() as rt:
        slow = await Slow.start(runtime=rt)

        async def body(proc: Process) -> Any:
            task = asyncio.ensure_future(call(slow, "x", timeout=None))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return proc.monitors, dict(rt._aliases)

        monitors, aliases = await rt.run(body)
        assert not monitors and not aliases


async def test_runtime_stop_ends_a_suspended_server_with_terminate() -> None:
    seen: list[Any] = []

    class Ends(GenServer):
        def terminate(self, reason: Any, state: Any) -> None:
            seen.append(reason)

    async with Runtime() as rt:
        pid = await Ends.start(runtime=rt)
        await sysp.suspend(pid, runtime=rt)
        cast(pid, "never handled", runtime=rt)
    assert seen == [Atom("shutdown")]


async def test_upgrade_sees_a_same_size_edit_made_in_the_same_second(upgradable: Any) -> None:
    """The bytecode cache's freshness check (mtime, size) cannot tell these files apart."""
    import os
    import py_compile

    module, path = upgradable
    py_compile.compile(str(path), cfile=importlib.util.cache_from_source(str(path)), doraise=True)
    before = path.stat()
    path.write_text(MODULE_V1.replace('VSN = "1"', 'VSN = "9"'))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    async with Runtime() as rt:
        pid = await module.Counter.start(0, runtime=rt)
        assert await upgrade_module(rt, module.__name__) == [pid]
        assert await call(pid, "next", runtime=rt) == ("9", 0)


async def test_upgrade_module_from_inside_a_process(upgradable: Any) -> None:
    """As the rpc of ``python -m bridge upgrade`` runs it: each request from its own process."""
    from python_actors.hot_upgrade import rpc_upgrade_module

    module, path = upgradable
    async with Runtime() as rt:
        pids = [await module.Counter.start(i, runtime=rt) for i in (1, 2, 3)]
        path.write_text(MODULE_V2)

        async def body(proc: Process) -> Any:
            return await rpc_upgrade_module(Atom(module.__name__), 100)

        ok, upgraded = await rt.run(body)
        assert ok == OK and sorted(upgraded, key=lambda p: p.id) == pids
        assert await call(pids[0], "next", runtime=rt) == ("2", 101)


class Mixed(GenServer):
    """An async handle_call and a plain handle_info: the plain one belongs off the loop."""

    def init(self, args: Any) -> Any:
        return Ok(None)

    async def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        return Reply(state, state)

    def handle_info(self, message: Any, state: Any) -> Any:
        return NoReply(threading.current_thread().name)


async def test_debugged_server_keeps_its_placement() -> None:
    """Under sys:statistics/trace a plain callback of a mixed server still runs on a thread."""
    async with Runtime() as rt:
        pid = await Mixed.start(runtime=rt)
        loop_thread = threading.current_thread().name
        rt.send(pid, "plain")
        assert await call(pid, "where", runtime=rt) not in (None, loop_thread)
        await sysp.statistics(pid, True, runtime=rt)
        rt.send(pid, "plain again")
        where = await call(pid, "where", runtime=rt)
        assert where is not None and where != loop_thread
        stats = dict(await sysp.statistics(pid, "get", runtime=rt))
        assert stats[Atom("messages_in")] == 2
