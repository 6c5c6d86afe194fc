"""Placement "process": GenServer semantics with callbacks in a worker OS process.

No network: a Runtime on the test's loop, real worker OS processes. OS processes
are checked by pid in /proc (gone, or never reaped = still a zombie, counts as alive).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dist_proto.terms import Atom, Pid
from python_actors import (
    CallError,
    ChildSpec,
    Process,
    Runtime,
    StartError,
    Supervisor,
    call,
    cast,
    stop,
)
from python_actors.worker_placement import POOL_KEY, WorkerPool, WorkerProxy, configure_worker_pool
from tests.python_actors.worker_actors import AsyncWorker, Worker

EXIT, DOWN = Atom("EXIT"), Atom("DOWN")
NORMAL, SHUTDOWN, KILLED = Atom("normal"), Atom("shutdown"), Atom("killed")
WORKER_EXITED = Atom("worker_exited")
REPO = Path(__file__).resolve().parents[2]


def os_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False


async def gone(pid: int, within: float = 10.0) -> bool:
    """Whether OS process ``pid`` has ended (polled; the bound only ends the wait)."""
    for _ in range(int(within / 0.02)):
        if not os_alive(pid):
            return True
        await asyncio.sleep(0.02)
    return False


def os_pid_of(rt: Runtime, pid: Pid) -> int:
    proc = rt.process(pid)
    assert proc is not None and isinstance(proc.behaviour, WorkerProxy)
    os_pid = proc.behaviour.os_pid
    assert os_pid is not None
    return os_pid


@pytest.fixture
async def rt() -> AsyncIterator[Runtime]:
    async with Runtime() as runtime:
        yield runtime


def probe(rt: Runtime, trap: bool = False) -> Process:
    """A plain process the test reads messages from."""
    p = rt._add(None)
    p.trap_exit = trap
    return p


async def test_call_cast_info_run_in_the_worker(rt: Runtime) -> None:
    pid = await Worker.start((1, None), runtime=rt, name="w")
    assert isinstance(pid, Pid)
    os_pid, self_pid, self_again = await call(pid, "whoami", runtime=rt)
    assert os_pid != os.getpid() and os_alive(os_pid)
    assert self_pid == pid and self_again == pid  # self.pid works in the worker
    cast("w", 10, runtime=rt)
    rt.send("w", "info")
    assert await call("w", "get", runtime=rt) == 111
    assert await call(pid, "defer", runtime=rt) == "deferred"


async def test_an_actor_takes_a_warm_spare_and_a_new_spare_is_made(rt: Runtime) -> None:
    pool = configure_worker_pool(rt, spares=1)
    for _ in range(1000):
        if pool.worker_pids():
            break
        await asyncio.sleep(0.02)
    [spare] = pool.worker_pids()
    pid = await Worker.start((0, None), runtime=rt)
    assert os_pid_of(rt, pid) == spare
    for _ in range(1000):
        if len(pool.worker_pids()) == 2:
            break
        await asyncio.sleep(0.02)
    [new_spare] = set(pool.worker_pids()) - {spare}
    other = await Worker.start((0, None), runtime=rt)
    assert os_pid_of(rt, other) == new_spare


async def test_async_callbacks(rt: Runtime) -> None:
    pid = await AsyncWorker.start(runtime=rt)
    assert await call(pid, "a", runtime=rt) == "a"
    assert await call(pid, "b", runtime=rt) == "b"
    assert await call(pid, "log", runtime=rt) == ["a", "b"]


async def test_init_outcomes(rt: Runtime) -> None:
    pool = rt.service(POOL_KEY, WorkerPool)
    assert await Worker.start(("ignore", None), runtime=rt) is None
    with pytest.raises(StartError) as ei:
        await Worker.start(("stop", None), runtime=rt)
    assert ei.value.reason == Atom("no_way")
    with pytest.raises(StartError) as ei:
        await Worker.start(("crash", None), runtime=rt)
    assert ei.value.reason[:3] == (Atom("python_exception"), b"ValueError", b"bad init")
    with pytest.raises(StartError) as ei:
        await Worker.start(("bad", None), runtime=rt)
    assert ei.value.reason == (Atom("bad_return_value"), "not a shape")
    with pytest.raises(StartError) as ei:
        await Worker.start(("os_exit", None), runtime=rt)
    assert ei.value.reason == (WORKER_EXITED, 7)
    assert rt.processes() == []
    # the workers of the failed starts are gone; only the warm spare is left
    for _ in range(250):
        if len(pool.worker_pids()) == pool.spares:
            break
        await asyncio.sleep(0.02)
    assert len(pool.worker_pids()) == pool.spares


async def test_start_argument_that_cannot_be_pickled(rt: Runtime) -> None:
    with pytest.raises(StartError) as ei:
        await Worker.start((0, lambda: None), runtime=rt, name="never")
    assert ei.value.reason[0] == Atom("python_exception")
    assert rt.processes() == [] and rt.whereis("never") is None


async def test_already_started_and_start_timeout(rt: Runtime) -> None:
    pid = await Worker.start((0, None), runtime=rt, name="only")
    with pytest.raises(StartError) as ei:
        await Worker.start((0, None), runtime=rt, name="only")
    assert ei.value.reason == (Atom("already_started"), pid)
    pool = rt.service(POOL_KEY, WorkerPool)
    with pytest.raises(StartError) as ei:
        await Worker.start(("hang", None), runtime=rt, timeout=1.0, name="hung")
    assert ei.value.reason == Atom("timeout")
    assert rt.whereis("hung") is None and rt.processes() == [pid]
    # the worker stuck in init is killed: left are the live actor's and the spare
    for _ in range(500):
        if len(pool.worker_pids()) == 1 + pool.spares:
            break
        await asyncio.sleep(0.02)
    assert os_pid_of(rt, pid) in pool.worker_pids() and len(pool.worker_pids()) == 1 + pool.spares


async def test_continue_and_timeouts(rt: Runtime) -> None:
    pid = await Worker.start(("continue", None), runtime=rt)
    assert await call(pid, "get", runtime=rt) == 1  # handle_continue ran before the call
    assert await call(pid, "continue", runtime=rt) == "later"
    assert await call(pid, "get", runtime=rt) == 1001
    timed = await Worker.start(("timeout", None), runtime=rt)  # Ok(0, 0.05)
    await asyncio.sleep(0.5)  # no message meanwhile: the node's timer fires first
    assert await call(timed, "get", runtime=rt) == ("timed out", 0)
    # a message before the timeout cancels it (as gen_server's receive ... after)
    assert await call(pid, ("arm", 1.5), runtime=rt) == "armed"
    cast(pid, 1, runtime=rt)
    await asyncio.sleep(2.0)
    assert await call(pid, "get", runtime=rt) == 1002


async def test_stop_with_reply_runs_terminate(rt: Runtime) -> None:
    me = probe(rt)
    pid = await Worker.start((0, me.pid), runtime=rt)
    os_pid = os_pid_of(rt, pid)
    ref = me.monitor(pid)
    assert await call(pid, "stop", runtime=rt) == "bye"
    assert await me.receive(timeout=10) == ("terminated", NORMAL)
    assert await me.receive(timeout=10) == (DOWN, ref, Atom("process"), pid, NORMAL)
    assert await gone(os_pid)


async def test_gen_server_stop(rt: Runtime) -> None:
    me = probe(rt)
    pid = await Worker.start((0, me.pid), runtime=rt)
    await stop(pid, Atom("bye"), runtime=rt)
    assert await me.receive(timeout=10) == ("terminated", Atom("bye"))
    assert not rt.is_alive(pid)


async def test_crash_reason_reaches_links_monitors_and_caller(rt: Runtime) -> None:
    me = probe(rt, trap=True)
    pid = await Worker.start((0, me.pid), runtime=rt)
    me.link(pid)
    ref = me.monitor(pid)
    with pytest.raises(CallError) as ei:
        await call(pid, "crash", runtime=rt)
    why = ei.value.why
    assert why[:3] == (Atom("python_exception"), b"RuntimeError", b"crash in call")
    assert b"worker_actors.py" in why[3]  # the worker's traceback
    got = [await me.receive(timeout=10) for _ in range(3)]
    assert ("terminated", why) in got
    assert (EXIT, pid, why) in got
    assert (DOWN, ref, Atom("process"), pid, why) in got


async def test_bad_return_value_and_unpicklable_reply(rt: Runtime) -> None:
    pid = await Worker.start((0, None), runtime=rt)
    with pytest.raises(CallError) as ei:
        await call(pid, "bad", runtime=rt)
    assert ei.value.why == (Atom("bad_return_value"), "not a shape")
    pid = await Worker.start((0, None), runtime=rt)
    with pytest.raises(CallError) as ei:
        await call(pid, "unpicklable_reply", runtime=rt)
    assert ei.value.why[:2] == (Atom("python_exception"), b"TypeError")
    assert b"pickle" in ei.value.why[2]


async def test_unpicklable_state_stays_in_the_worker(rt: Runtime) -> None:
    pid = await Worker.start(("lock", None), runtime=rt)
    assert await call(pid, "lock_type", runtime=rt) == "lock"
    me = probe(rt)
    me.send(pid, (Atom("system"), (me.pid, "tag"), Atom("get_state")))
    tag, answer = await me.receive(timeout=10)
    assert tag == "tag" and answer[0] == Atom("error") and answer[1][0] == Atom("not_available_in_worker")
    assert await call(pid, "lock_type", runtime=rt) == "lock"  # still alive

    counter = await Worker.start((42, None), runtime=rt)
    me.send(counter, (Atom("system"), (me.pid, "tag2"), Atom("get_state")))
    assert await me.receive(timeout=10) == ("tag2", (Atom("ok"), 42))


async def test_effects_reach_the_node_in_order(rt: Runtime) -> None:
    me = probe(rt)
    pid = await Worker.start((0, None), runtime=rt)
    assert await call(pid, ("send_many", me.pid, 50), runtime=rt) == "sent"
    got = [await me.receive(timeout=10) for _ in range(51)]
    assert got == [("n", i) for i in range(50)] + [(Atom("$gen_cast"), "cast from worker")]
    assert await call(pid, ("send_after", me.pid), runtime=rt) == "armed"
    assert await me.receive(timeout=10) == "later"  # sent by the worker's own timer


async def test_exit_signals(rt: Runtime) -> None:
    me = probe(rt)
    pid = await Worker.start((0, me.pid), runtime=rt)
    rt.exit(pid, NORMAL)  # ignored when not trapping
    assert await call(pid, "get", runtime=rt) == 0
    os_pid = os_pid_of(rt, pid)
    ref = me.monitor(pid)
    rt.exit(pid, SHUTDOWN)
    assert await me.receive(timeout=10) == (DOWN, ref, Atom("process"), pid, SHUTDOWN)
    assert await gone(os_pid)
    assert me.messages() == []  # terminate does not run on an untrapped exit signal

    trapping = await Worker.start(("trap", me.pid), runtime=rt)
    assert rt.process(trapping).trap_exit  # type: ignore[union-attr]  # set in init, in the worker
    rt.exit(trapping, Atom("please"))
    assert await me.receive(timeout=10) == ("got exit", Atom("please"))
    assert await call(trapping, "get", runtime=rt) == 0


async def test_exit_link_and_unsupported_calls_from_the_worker(rt: Runtime) -> None:
    me = probe(rt, trap=True)
    pid = await Worker.start((0, None), runtime=rt)
    assert await call(pid, ("link", me.pid), runtime=rt) == "linked"
    assert await call(pid, ("exit", me.pid, Atom("bye")), runtime=rt) == "sent"
    assert await me.receive(timeout=10) == (EXIT, pid, Atom("bye"))
    with pytest.raises(CallError) as ei:
        await call(pid, ("monitor", me.pid), runtime=rt)
    assert ei.value.why[1] == b"python_actors.worker_main.WorkerPlacementError"
    assert await me.receive(timeout=10) == (EXIT, pid, ei.value.why)  # the link fired


async def test_trap_exit_and_exit_from_parent_runs_terminate(rt: Runtime) -> None:
    me = probe(rt)
    parent = probe(rt)
    pid = await Worker.start((0, me.pid), runtime=rt, parent=parent.pid, trap_exit=True)
    parent.link(pid)
    os_pid = os_pid_of(rt, pid)
    rt._exit_process(parent, Atom("going"))
    assert await me.receive(timeout=10) == ("terminated", Atom("going"))
    assert await gone(os_pid)
    assert not rt.is_alive(pid)


async def test_kill_of_a_worker_stuck_in_an_infinite_loop(rt: Runtime) -> None:
    me = probe(rt, trap=True)
    pid = await Worker.start((0, me.pid), runtime=rt, name="stuck")
    me.link(pid)
    ref = me.monitor(pid)
    os_pid = os_pid_of(rt, pid)
    cast(pid, "spin", runtime=rt)
    caller = asyncio.create_task(call(pid, "get", None, runtime=rt))
    await asyncio.sleep(0.2)
    rt.exit(pid, Atom("kill"))
    # the cluster sees the death at once: links, monitors, name, the pending call
    assert not rt.is_alive(pid) and rt.whereis("stuck") is None
    assert me.messages() == [(EXIT, pid, KILLED), (DOWN, ref, Atom("process"), pid, KILLED)]
    with pytest.raises(CallError) as ei:
        await caller
    assert ei.value.why == KILLED
    assert await gone(os_pid)  # and the OS process is really gone
    replacement = await Worker.start((5, None), runtime=rt, name="stuck")
    assert await call(replacement, "get", runtime=rt) == 5
    assert os_pid_of(rt, replacement) != os_pid


async def test_worker_that_exits_or_crashes_by_itself(rt: Runtime) -> None:
    me = probe(rt)
    pid = await Worker.start((0, me.pid), runtime=rt)
    ref = me.monitor(pid)
    with pytest.raises(CallError) as ei:
        await call(pid, ("os_exit", 3), runtime=rt)
    assert ei.value.why == (WORKER_EXITED, 3)
    assert await me.receive(timeout=10) == (DOWN, ref, Atom("process"), pid, (WORKER_EXITED, 3))
    pid = await Worker.start((0, None), runtime=rt)
    with pytest.raises(CallError) as ei:
        await call(pid, "segfault", runtime=rt)
    assert ei.value.why == (WORKER_EXITED, 128 + signal.SIGSEGV)


async def test_python_supervisor_restarts_an_actor_whose_worker_was_killed(rt: Runtime) -> None:
    spec = ChildSpec("w", (Worker.start_link, ((3, None),)), shutdown="brutal_kill")
    sup = await Supervisor.start_link([spec], intensity=3, runtime=rt)
    [child] = await Supervisor.which_children(sup, runtime=rt)
    os_pid = os_pid_of(rt, child.pid)
    me = probe(rt)
    ref = me.monitor(child.pid)
    os.kill(os_pid, signal.SIGKILL)  # from outside, as the OOM killer would
    down = await me.receive(timeout=10)
    assert down == (DOWN, ref, Atom("process"), child.pid, (WORKER_EXITED, 128 + signal.SIGKILL))
    for _ in range(500):
        [again] = await Supervisor.which_children(sup, runtime=rt)
        if isinstance(again.pid, Pid) and again.pid != child.pid:
            break
        await asyncio.sleep(0.02)
    assert again.pid != child.pid and await call(again.pid, "get", runtime=rt) == 3
    new_os_pid = os_pid_of(rt, again.pid)
    assert new_os_pid != os_pid
    cast(again.pid, "spin", runtime=rt)
    await Supervisor.terminate_child(sup, "w", runtime=rt)  # brutal_kill of a spinning worker
    assert not rt.is_alive(again.pid)
    assert await gone(new_os_pid)


async def test_runtime_stop_terminates_and_leaves_no_worker(tmp_path: Path) -> None:
    rt = Runtime()
    report = tmp_path / "terminate.txt"
    configure_worker_pool(rt, spares=2)
    a = await Worker.start((0, str(report)), runtime=rt)
    b = await Worker.start((0, None), runtime=rt)
    cast(b, "spin", runtime=rt)
    pool = rt.service(POOL_KEY, WorkerPool)
    for _ in range(500):  # both spares warm
        if len(pool.worker_pids()) == 4:
            break
        await asyncio.sleep(0.02)
    pids = pool.worker_pids()
    assert len(pids) == 4 and os_pid_of(rt, a) in pids
    await rt.stop(timeout=1.0)
    assert report.read_text() == f"terminated {SHUTDOWN}\n"  # a: terminate(shutdown); b: killed
    for os_pid in pids:
        assert not os_alive(os_pid), os_pid  # reaped by stop(), no polling needed


async def test_message_that_cannot_be_pickled_is_dropped_with_an_error(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    pid = await Worker.start((0, None), runtime=rt)
    rt.send(pid, lambda: None)
    rt.send(pid, "info")
    assert await call(pid, "get", runtime=rt) == 100
    assert "cannot be passed to its worker process" in caplog.text


ORPHAN_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from python_actors import GenServer, Ok, Reply, Runtime, call
    from python_actors.worker_placement import POOL_KEY, WorkerPool

    class Here(GenServer):  # defined in __main__: the worker loads this script
        placement = "process"
        def handle_call(self, request, from_, state):
            import os
            return Reply(os.getpid(), state)

    async def main():
        rt = Runtime()
        pid = await Here.start(runtime=rt)
        mine = await call(pid, "pid", runtime=rt)
        pool = rt.service(POOL_KEY, WorkerPool)
        while len(pool.worker_pids()) < 2:
            await asyncio.sleep(0.02)
        print(mine, *pool.worker_pids(), flush=True)
        await asyncio.sleep(3600)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


async def test_no_orphans_when_the_node_process_dies(tmp_path: Path) -> None:
    script = tmp_path / "node_main.py"
    script.write_text(ORPHAN_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    node = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, env=env)
    try:
        assert node.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(node.stdout.readline), 60)
        mine, *workers = (int(x) for x in line.split())
        assert mine in workers and len(workers) == 2
        assert all(os_alive(w) for w in workers)
    finally:
        node.kill()
        node.wait()
        if node.stdout is not None:
            node.stdout.close()
    for w in workers:
        assert await gone(w), f"worker {w} outlived its node"
