"""Placement "process": a GenServer whose callbacks run in a worker OS process.

``class Model(GenServer): placement = "process"`` puts each started ``Model`` in
a worker OS process of its own (``python -m python_actors.worker_main``), taken
from a small pool of warm spares that the :class:`~python_actors.Runtime` owns
(``runtime.service("worker_placement", ...)``). CPU-bound pure Python then runs
on every core, and code that hangs or crashes the interpreter is really killed.

Theory of operation. On the node the process is an ordinary local process (pid,
mailbox, links, monitors, registered name, exit signals all live in the runtime):
its behaviour is a :class:`WorkerProxy`. The scheduler hands the proxy one message
at a time; the proxy writes it to the worker and returns an awaitable that ends
when the worker says ``done``, so the process is BUSY meanwhile, exactly as for an
``async`` callback. The worker runs GenServer's own code on the message and streams
back the effects (replies, sends, casts, ``exit/2``, links, a timeout to arm, the
end of the process) in the order it made them; the proxy applies them on the event
loop as if the actor had made them there. Timeouts are the node's timers, so any
message cancels one as in ``gen_server``.

Kill kills: when the process dies on the node for any reason (``exit(Pid, kill)``,
a supervisor's ``brutal_kill`` or shutdown timeout, a link) the runtime has already
propagated the exit; :meth:`WorkerProxy._on_exit` then SIGKILLs the worker at once
and anything it still writes is dropped. A worker that dies by itself (a segfault,
``os._exit(3)``) ends the actor with ``{worker_exited, Status}``, ``Status`` being
the exit code, or 128 + the signal number, like an Erlang port's ``exit_status``.
No orphans: a worker dies with its node (``PR_SET_PDEATHSIG``) or at end of input,
and ``Runtime.stop()`` kills every worker left.

>>> import asyncio
>>> from python_actors import GenServer, Ok, Reply, Runtime, call
>>> class Square(GenServer):
...     placement = "process"
...     def handle_call(self, n, from_, state):
...         return Reply(n * n, state)
>>> async def main():
...     async with Runtime() as rt:
...         pid = await Square.start(runtime=rt)
...         return await call(pid, 12, runtime=rt)
>>> asyncio.run(main())  # doctest: +SKIP
144
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid

from . import worker_channel as ch
from .errors import KILLED, NORMAL, SHUTDOWN, TIMEOUT, BadArg, StartError
from .process import IDLE, RUNNING, Process

if TYPE_CHECKING:
    from .gen_server import GenServer
    from .runtime import Runtime

__all__ = ["POOL_KEY", "WorkerPool", "WorkerProxy", "configure_worker_pool", "start_in_worker"]

log = logging.getLogger("python_actors")

#: the key of the pool in ``Runtime.service``
POOL_KEY = "worker_placement"
WORKER_EXITED = Atom("worker_exited")
_ALREADY_STARTED = Atom("already_started")
_NODE_PID_ENV = "PYTHON_ACTORS_NODE_PID"


class WorkerChannel:
    """The node's end of one worker OS process: frames out, frames in, SIGKILL."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.os_pid: int = process.pid
        self._killed = False
        self._reader: asyncio.Task[None] | None = None
        self._on_frame: Callable[[tuple[Any, ...]], None] | None = None
        self._on_exit: Callable[[int], None] | None = None

    def __repr__(self) -> str:
        return f"<WorkerChannel os_pid={self.os_pid}{' killed' if self._killed else ''}>"

    @classmethod
    async def spawn(cls) -> WorkerChannel:
        """Start a worker OS process and wait until it says ``ready``."""
        env = dict(os.environ)
        path = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(path)
        env[_NODE_PID_ENV] = str(os.getpid())
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "python_actors.worker_main",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )
        channel = cls(process)
        try:
            assert process.stdout is not None
            frame = await ch.read_frame(process.stdout)
            if frame is None or frame[0] != ch.READY:
                raise ch.ChannelError(f"worker {process.pid} did not start: {frame!r}")
        except BaseException:
            channel.kill()
            await channel.wait_closed()
            raise
        return channel

    @property
    def alive(self) -> bool:
        return not self._killed and self._process.returncode is None

    def attach(self, on_frame: Callable[[tuple[Any, ...]], None], on_exit: Callable[[int], None]) -> None:
        """Start dispatching frames to ``on_frame`` and the exit status to ``on_exit``
        (unless the node killed the worker first)."""
        self._on_frame, self._on_exit = on_frame, on_exit
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while not self._killed:
                frame = await ch.read_frame(stdout)
                if frame is None or self._killed:
                    break
                assert self._on_frame is not None
                try:
                    self._on_frame(frame)
                except Exception:
                    log.exception("worker %d: frame %r failed", self.os_pid, frame[0])
        except ch.ChannelError as exc:
            log.error("worker %d broke the channel: %s", self.os_pid, exc)
            self._signal()
        status = await self._process.wait()
        if not self._killed and self._on_exit is not None:
            self._killed = True
            self._on_exit(128 - status if status < 0 else status)

    def send(self, frame: tuple[Any, ...]) -> None:
        """Queue one frame (never blocks the loop; see :meth:`drain`)."""
        stdin = self._process.stdin
        if stdin is not None and not self._killed and not stdin.is_closing():
            stdin.write(ch.pack(frame))

    async def drain(self) -> None:
        """Wait while the pipe to the worker is above asyncio's high-water mark."""
        stdin = self._process.stdin
        if stdin is not None and not self._killed:
            try:
                await stdin.drain()
            except (ConnectionError, BrokenPipeError):
                pass

    def _signal(self) -> None:
        if self._process.returncode is None:
            try:
                self._process.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the worker now; no frame is dispatched after this."""
        self._killed = True
        self._signal()
        if self._process.stdin is not None:
            self._process.stdin.close()

    async def wait_closed(self) -> None:
        """Wait until the worker is reaped and the reader has stopped."""
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            await asyncio.gather(reader, return_exceptions=True)
        await self._process.wait()


class WorkerPool:
    """The worker OS processes of one runtime: ``spares`` warm ones kept ready, and
    every one handed out, so :meth:`aclose` leaves none behind."""

    def __init__(self, spares: int = 1) -> None:
        self.spares = spares
        self._ready: deque[WorkerChannel] = deque()
        self._starting = 0
        self._all: set[WorkerChannel] = set()
        self._starters: set[asyncio.Task[Any]] = set()
        self._reapers: set[asyncio.Task[Any]] = set()
        self._closed = False

    def __repr__(self) -> str:
        return f"<WorkerPool spares={len(self._ready)}/{self.spares} workers={len(self._all)}>"

    def worker_pids(self) -> list[int]:
        """The OS pids of the live workers (spares and in use)."""
        return sorted(c.os_pid for c in self._all if c.alive)

    async def take(self) -> WorkerChannel:
        """A warm worker if one is ready, else a new one; a replacement spare is started."""
        if self._closed:
            raise RuntimeError("worker pool is closed")
        while self._ready:
            channel = self._ready.popleft()
            if channel.alive:
                self._refill()
                return channel
            self._all.discard(channel)
        self._refill()
        return await self._spawn()

    def release(self, channel: WorkerChannel) -> None:
        """Kill a worker whose actor has ended; its spare has already been started."""
        channel.kill()
        self._watch(self._reapers, self._reap(channel))

    async def _spawn(self) -> WorkerChannel:
        channel = await WorkerChannel.spawn()
        if self._closed:
            channel.kill()
            await channel.wait_closed()
            raise RuntimeError("worker pool is closed")
        self._all.add(channel)
        return channel

    def _refill(self) -> None:
        while not self._closed and len(self._ready) + self._starting < self.spares:
            self._starting += 1
            self._watch(self._starters, self._start_spare())

    async def _start_spare(self) -> None:
        try:
            channel = await self._spawn()
        except Exception as exc:
            if not self._closed:
                log.error("could not start a spare worker process: %r", exc)
            return
        finally:
            self._starting -= 1
        self._ready.append(channel)

    async def _reap(self, channel: WorkerChannel) -> None:
        await channel.wait_closed()
        self._all.discard(channel)

    @staticmethod
    def _watch(tasks: set[asyncio.Task[Any]], coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def aclose(self) -> None:
        """Kill every worker (spares and in use) and wait until each is reaped."""
        self._closed = True
        starters = list(self._starters)
        for task in starters:
            task.cancel()
        await asyncio.gather(*starters, return_exceptions=True)
        channels = list(self._all)
        for channel in channels:
            channel.kill()
        await asyncio.gather(*(c.wait_closed() for c in channels), return_exceptions=True)
        await asyncio.gather(*list(self._reapers), return_exceptions=True)
        self._all.clear()
        self._ready.clear()


def configure_worker_pool(runtime: Runtime, *, spares: int = 1) -> WorkerPool:
    """Set how many warm spare workers ``runtime`` keeps (before or after first use)."""
    pool = runtime.service(POOL_KEY, lambda: WorkerPool(spares))
    pool.spares = spares
    return pool


class _Timeout:
    __slots__ = ("token",)

    def __init__(self, token: object) -> None:
        self.token = token


class _Control:
    """A message of the proxy to itself: run ``continue`` or ``stop`` in the worker."""

    __slots__ = ("frame",)

    def __init__(self, frame: tuple[Any, ...]) -> None:
        self.frame = frame


class WorkerProxy:
    """The behaviour of a process-placed GenServer on the node (see the module doc)."""

    def __init__(self, proc: Process, pool: WorkerPool) -> None:
        self._proc = proc
        self._pool = pool
        self._channel: WorkerChannel | None = None
        self._done: asyncio.Future[None] | None = None
        self._init: asyncio.Future[tuple[Any, ...]] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._token: object | None = None

    @property
    def os_pid(self) -> int | None:
        """The OS pid of this actor's worker process (None before it has one)."""
        return self._channel.os_pid if self._channel is not None else None

    # -- start --------------------------------------------------------------------

    async def _boot(self, cls: type[GenServer], args: Any, parent: Pid) -> tuple[Any, ...]:
        proc = self._proc
        channel = await self._pool.take()
        if not proc.alive:  # killed while waiting for a worker
            self._pool.release(channel)
            return (ch.EXIT, proc.reason)
        self._channel = channel
        loop = asyncio.get_running_loop()
        self._init = init = loop.create_future()
        channel.attach(self._on_frame, self._on_worker_exit)
        main = sys.modules.get("__main__")
        main_path = getattr(main, "__file__", None) if cls.__module__ == "__main__" else None
        channel.send((ch.INIT, main_path, pickle.dumps((cls, args)), proc.pid, parent, proc.trap))
        await channel.drain()
        outcome: tuple[Any, ...] = await init
        return outcome

    # -- the runtime's interface -----------------------------------------------------

    def _handle(self, msg: Any) -> Any:
        t = type(msg)
        if t is _Timeout:
            if msg.token is not self._token:
                return None
            self._token = self._timer = None
            frame: tuple[Any, ...] = (ch.TIMEOUT,)
        elif t is _Control:
            frame = msg.frame
        else:
            self._cancel_timer()
            try:
                frame = (ch.MSG, pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))
            except Exception as exc:
                log.error("%s dropped a message that cannot be passed to its worker process: %r",
                          self._proc.pid, exc)
                return None
        channel = self._channel
        assert channel is not None
        self._done = done = asyncio.get_running_loop().create_future()
        channel.send(frame)
        return self._wait(channel, done)

    async def _wait(self, channel: WorkerChannel, done: asyncio.Future[None]) -> None:
        await channel.drain()
        await done

    def _on_exit(self) -> None:
        self._cancel_timer()
        channel = self._channel
        if channel is not None:
            self._pool.release(channel)
        init = self._init
        if init is not None and not init.done():
            init.set_result((ch.EXIT, self._proc.reason))

    def _system_stop(self) -> None:
        """Runtime shutdown: terminate(shutdown) after the current message."""
        proc = self._proc
        proc.mailbox.put_front(_Control((ch.STOP, SHUTDOWN)))
        proc.runtime._enqueue(proc)

    # -- frames from the worker --------------------------------------------------------

    def _on_frame(self, frame: tuple[Any, ...]) -> None:
        proc = self._proc
        if not proc.alive:
            return
        rt = proc.runtime
        kind = frame[0]
        if kind == ch.SEND:
            try:
                rt._send(frame[1], frame[2], proc.pid)
            except BadArg as exc:
                log.warning("%s (in a worker process) sent to %r: %s", proc.pid, frame[1], exc)
        elif kind == ch.REPLY:
            rt.reply_to(frame[1], frame[2], proc.pid)
        elif kind == ch.DONE:
            done = self._done
            if done is not None and not done.done():
                done.set_result(None)
        elif kind == ch.ARM:
            self._arm(frame[1])
        elif kind == ch.TRAP:
            proc.trap = bool(frame[1])
        elif kind == ch.EXIT:
            rt._exit_process(proc, frame[1])
        elif kind == ch.EXIT2:
            try:
                rt._exit2_from(proc, frame[1], frame[2])
            except BadArg as exc:
                log.warning("%s (in a worker process) exit/2 %r: %s", proc.pid, frame[1], exc)
        elif kind == ch.LINK:
            rt._link(proc, frame[1])
        elif kind == ch.UNLINK:
            rt._unlink(proc, frame[1])
        elif kind in (ch.INIT_OK, ch.INIT_IGNORE, ch.INIT_STOP, ch.INIT_CRASH):
            init = self._init
            if init is not None and not init.done():
                init.set_result(frame)
        else:
            log.error("%s: unknown frame %r from its worker", proc.pid, kind)

    def _on_worker_exit(self, status: int) -> None:
        proc = self._proc
        if proc.alive:
            log.error("the worker process of %s exited with status %d", proc.pid, status)
            proc.runtime._exit_process(proc, (WORKER_EXITED, status))

    # -- timeouts ----------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._cancel_timer()
        proc = self._proc
        rt = proc.runtime
        self._token = token = object()
        self._timer = rt._loop_().call_later(max(seconds, 0.0), rt._deliver, proc, _Timeout(token))

    def _cancel_timer(self) -> None:
        self._token = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


async def start_in_worker(
    cls: type[GenServer],
    args: Any,
    *,
    runtime: Runtime,
    name: Any,
    link_to: Process | None,
    timeout: float | None,
    parent: Pid | None,
    trap_exit: bool,
) -> Pid | None:
    """``gen_server:start[_link]`` of a process-placed GenServer: the pid once ``init``
    has returned in the worker, None on ``ignore``; raises :class:`StartError` with
    OTP's reason (``{already_started, Pid}``, the ``Stop`` reason, the crash reason,
    ``timeout``, ``{worker_exited, Status}``)."""
    if name is not None:
        existing = runtime.whereis(name)
        if existing is not None:
            raise StartError((_ALREADY_STARTED, existing))
    pool = runtime.service(POOL_KEY, WorkerPool)
    proc = runtime._add(link_to, link=link_to is not None)
    if trap_exit:
        proc.trap = True
    proxy = WorkerProxy(proc, pool)
    proc.behaviour = proxy
    proc.status = RUNNING  # not scheduled until init is done
    if name is not None:
        runtime.register(name, proc.pid)
    if parent is None:
        parent = link_to.pid if link_to is not None else proc.pid
    try:
        outcome = await asyncio.wait_for(proxy._boot(cls, args, parent), timeout)
    except TimeoutError:
        _unlink_caller(runtime, link_to, proc)
        runtime._exit_process(proc, KILLED)
        raise StartError(TIMEOUT) from None
    except BaseException:
        runtime._exit_process(proc, KILLED)
        raise
    kind = outcome[0]
    if kind == ch.INIT_OK and proc.alive:
        proc.status = IDLE
        if outcome[1]:
            proc.mailbox.put_front(_Control((ch.CONTINUE,)))
        if proc.mailbox:
            runtime._enqueue(proc)
        return proc.pid
    if not proc.alive:
        raise StartError(proc.reason)
    _unlink_caller(runtime, link_to, proc)
    if kind == ch.INIT_IGNORE:
        runtime._exit_process(proc, NORMAL)
        return None
    reason = outcome[1]
    if kind == ch.INIT_CRASH:
        log.error("%s crashed in init: %r", proc.pid, reason)
    runtime._exit_process(proc, reason)
    raise StartError(reason)


def _unlink_caller(runtime: Runtime, caller: Process | None, proc: Process) -> None:
    if caller is not None and caller.links:
        runtime._unlink(caller, proc.pid)
