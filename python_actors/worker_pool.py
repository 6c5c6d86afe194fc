"""Worker OS processes of a runtime: one :class:`WorkerChannel` per process, and
the :class:`WorkerPool` that keeps warm spares and kills every worker it made.

A worker is ``python -m python_actors.worker_main`` started with
:class:`subprocess.Popen`; its pipes are asyncio pipe transports (writes never
block the event loop; :meth:`WorkerChannel.drain` waits above the high-water
mark). Its exit is seen through a pidfd (Linux), else by polling, and it is reaped
by its own ``Popen``, so no other reaper (asyncio's child watcher, a thread per
child) races for its exit status.

>>> pool = WorkerPool(spares=2)
>>> pool
<WorkerPool spares=0/2 workers=0>
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import worker_channel as ch

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["POOL_KEY", "WorkerChannel", "WorkerPool", "configure_worker_pool", "main_ref"]

log = logging.getLogger("python_actors")

#: the key of the pool in ``Runtime.service``
POOL_KEY = "worker_placement"
_NODE_PID_ENV = "PYTHON_ACTORS_NODE_PID"
_POLL_INTERVAL = 0.05


def main_ref(cls: type) -> tuple[str, str] | None:
    """How a worker finds a class defined in the node's ``__main__``: the module
    name it was run as (``python -m pkg.app``) or its script path."""
    if cls.__module__ != "__main__":
        return None
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None):
        return ("module", spec.name)
    path = getattr(main, "__file__", None)
    return ("path", path) if path else None


class _PipeWriter(asyncio.Protocol):
    """Flow control of the pipe to a worker: :meth:`drain` waits while paused."""

    def __init__(self) -> None:
        self._paused = False
        self._lost = False
        self._waiters: list[asyncio.Future[None]] = []

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def drain(self) -> None:
        while self._paused and not self._lost:
            w = asyncio.get_running_loop().create_future()
            self._waiters.append(w)
            await w


class WorkerChannel:
    """The node's end of one worker OS process: frames out, frames in, SIGKILL."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        read_transport: asyncio.BaseTransport,
        write_transport: asyncio.WriteTransport,
        writer: _PipeWriter,
    ) -> None:
        self._popen = popen
        self.os_pid: int = popen.pid
        self._stdout = reader
        self._read_transport = read_transport
        self._write_transport = write_transport
        self._writer = writer
        self._killed = False
        self._reader: asyncio.Task[None] | None = None
        self._on_frame: Callable[[tuple[Any, ...]], None] | None = None
        self._on_exit: Callable[[int], None] | None = None
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._pidfd: int | None = None
        self._poll: asyncio.TimerHandle | None = None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
            self._loop.add_reader(self._pidfd, self._check_exit)
        except (AttributeError, OSError):
            self._pidfd = None
            self._poll = self._loop.call_later(_POLL_INTERVAL, self._check_exit)

    def __repr__(self) -> str:
        return f"<WorkerChannel os_pid={self.os_pid}{' killed' if self._killed else ''}>"

    @classmethod
    async def spawn(cls) -> WorkerChannel:
        """Start a worker OS process and wait until it says ``ready``."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        env[_NODE_PID_ENV] = str(os.getpid())
        popen = subprocess.Popen(
            [sys.executable, "-m", "python_actors.worker_main"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        assert popen.stdin is not None and popen.stdout is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        try:
            read_transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), popen.stdout
            )
            write_transport, writer = await loop.connect_write_pipe(_PipeWriter, popen.stdin)
        except BaseException:
            popen.kill()
            popen.wait()  # just killed: returns at once
            raise
        channel = cls(popen, reader, read_transport, write_transport, writer)
        try:
            frame = await ch.read_frame(reader)
            if frame is None or frame[0] != ch.READY:
                raise ch.ChannelError(f"worker {popen.pid} did not start: {frame!r}")
        except BaseException:
            channel.kill()
            await channel.wait_closed()
            raise
        return channel

    async def preload(self, refs: list[Any]) -> None:
        """Have a spare import modules now (before it is attached to an actor)."""
        self.send((ch.PRELOAD, refs))
        frame = await ch.read_frame(self._stdout)
        if frame is None or frame[0] != ch.PRELOADED:
            raise ch.ChannelError(f"worker {self.os_pid} failed to preload: {frame!r}")

    def _check_exit(self) -> None:
        self._poll = None
        status = self._popen.poll()
        if status is None:
            if self._pidfd is None:
                self._poll = self._loop.call_later(_POLL_INTERVAL, self._check_exit)
            return
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if not self._exited.done():
            self._exited.set_result(status)

    @property
    def alive(self) -> bool:
        return not self._killed and not self._exited.done()

    def attach(self, on_frame: Callable[[tuple[Any, ...]], None], on_exit: Callable[[int], None]) -> None:
        """Start dispatching frames to ``on_frame`` and the exit status to ``on_exit``
        (unless the node killed the worker first)."""
        self._on_frame, self._on_exit = on_frame, on_exit
        self._reader = self._loop.create_task(self._read())

    async def _read(self) -> None:
        try:
            while not self._killed:
                frame = await ch.read_frame(self._stdout)
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
        status = await self._exited
        self._close_pipes()
        if not self._killed and self._on_exit is not None:
            self._killed = True
            self._on_exit(128 - status if status < 0 else status)

    def send(self, frame: tuple[Any, ...]) -> None:
        """Queue one frame (never blocks the loop; see :meth:`drain`)."""
        if not self._killed and not self._write_transport.is_closing():
            self._write_transport.write(ch.pack(frame))

    async def drain(self) -> None:
        """Wait while the pipe to the worker is above asyncio's high-water mark."""
        await self._writer.drain()

    def _signal(self) -> None:
        if not self._exited.done():
            try:
                self._popen.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _close_pipes(self) -> None:
        self._write_transport.close()
        self._read_transport.close()

    def kill(self) -> None:
        """SIGKILL the worker now; no frame is dispatched after this."""
        self._killed = True
        self._signal()
        self._write_transport.close()

    async def wait_closed(self) -> None:
        """Wait until the worker is reaped and the reader has stopped."""
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            await asyncio.gather(reader, return_exceptions=True)
        await self._exited
        self._close_pipes()


class WorkerPool:
    """The worker OS processes of one runtime: ``spares`` warm ones kept ready, and
    every one handed out, so :meth:`aclose` leaves none behind."""

    def __init__(self, spares: int = 1) -> None:
        self.spares = spares
        self._ready: deque[WorkerChannel] = deque()
        self._starting = 0
        self._all: set[WorkerChannel] = set()
        self._starters: set[asyncio.Task[Any]] = set()
        self._waiters: deque[asyncio.Future[WorkerChannel | None]] = deque()
        self._reapers: set[asyncio.Task[Any]] = set()
        self._closed = False
        #: modules of the classes started so far, imported by each new spare
        self._preload: dict[tuple[str, tuple[str, str] | None], None] = {}

    def __repr__(self) -> str:
        return f"<WorkerPool spares={len(self._ready)}/{self.spares} workers={len(self._all)}>"

    def ready_spares(self) -> int:
        """How many spares are started, preloaded and waiting for an actor."""
        return sum(1 for c in self._ready if c.alive)

    def worker_pids(self) -> list[int]:
        """The OS pids of the live workers (spares and in use)."""
        return sorted(c.os_pid for c in self._all if c.alive)

    async def take(self) -> WorkerChannel:
        """A warm worker: a ready spare, else the next spare to get ready, else a new
        one. A replacement spare is started."""
        if self._closed:
            raise RuntimeError("worker pool is closed")
        while self._ready:
            channel = self._ready.popleft()
            if channel.alive:
                self._refill()
                return channel
            self.release(channel)
        if self._starting > len(self._waiters):
            waiter: asyncio.Future[WorkerChannel | None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            got = await waiter
            if got is not None:
                self._refill()
                return got
        self._refill()
        return await self._spawn()

    def preload(self, cls: type) -> None:
        """Have every spare started from now on import ``cls``'s module while idle,
        so the next start of such an actor (a restart, say) does not wait for it."""
        self._preload[(cls.__module__, main_ref(cls))] = None

    def prewarm(self) -> None:
        """Start spares up to :attr:`spares` now (when called with a running loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._refill()

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
        channel: WorkerChannel | None = None
        try:
            channel = await self._spawn()
            if self._preload:
                await channel.preload(list(self._preload))
        except Exception as exc:
            if not self._closed:
                log.error("could not start a spare worker process: %r", exc)
            if channel is not None:
                self.release(channel)
                channel = None
        finally:
            self._starting -= 1
        self._hand_over(channel)

    def _hand_over(self, channel: WorkerChannel | None) -> None:
        """Give a new spare to the first start waiting for one, else keep it ready
        (None: it failed, a waiter then starts its own)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(channel)
                return
        if channel is not None:
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
        while self._waiters:
            self._hand_over(None)
        channels = list(self._all)
        for channel in channels:
            channel.kill()
        await asyncio.gather(*(c.wait_closed() for c in channels), return_exceptions=True)
        await asyncio.gather(*list(self._reapers), return_exceptions=True)
        self._all.clear()
        self._ready.clear()


def configure_worker_pool(runtime: Runtime, *, spares: int = 1) -> WorkerPool:
    """Set how many warm spare workers ``runtime`` keeps, and start them now (call it
    from the event loop; otherwise the first process-placed start fills the pool)."""
    pool: WorkerPool = runtime.service(POOL_KEY, lambda: WorkerPool(spares))
    pool.spares = spares
    pool.prewarm()
    return pool


