"""Threads that run actors' blocking code off the event loop.

The runtime keeps its state on one asyncio event loop, and nothing a user writes
should hold that loop: a synchronous callback runs on a thread of an
:class:`ActorThreads` pool and the loop only applies its result. The pool is
BEAM's dirty schedulers with one difference: it grows, so a callback that blocks
for ever never makes another actor wait for a free thread. Idle threads retire
after ``idle_timeout`` seconds.

Killing. :meth:`ActorThreads.interrupt` raises :class:`Killed` inside the thread
running a job (``PyThreadState_SetAsyncExc``). That stops pure-Python code at its
next bytecode; code blocked inside C (``time.sleep``, a socket read, a C
extension's loop) sees it only when it returns to Python. Either way the actor is
already dead for the cluster before this is called (links, monitors and its name
are handled by the runtime); the interrupt only frees the thread sooner, and
whatever the job produces afterwards is dropped.

>>> pool = ActorThreads(name="doc")
>>> pool.submit(lambda: 6 * 7).result(timeout=5)
42
>>> pool.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ctypes
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ActorThreads", "Job", "Killed"]

log = logging.getLogger("python_actors.threads")


class Killed(BaseException):  # noqa: N818 - it mirrors the exit reason ``killed``
    """Raised inside a thread whose actor was killed. A ``BaseException``, so a
    handler's ``except Exception`` does not swallow it."""


def _raise_in_thread(ident: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else ctypes.c_void_p(0)
    )


class Job:
    """One call submitted to the pool: its future, and the thread running it (if any).

    ``waiter`` (jobs from :meth:`ActorThreads.run`): the asyncio future the loop awaits,
    settled from the thread through ``call_soon_threadsafe`` when the job ends."""

    __slots__ = ("fn", "args", "context", "future", "thread", "interrupted", "waiter")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], context: contextvars.Context | None
    ) -> None:
        self.fn = fn
        self.args = args
        self.context = context
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.thread: int | None = None
        self.interrupted = False
        self.waiter: asyncio.Future[Any] | None = None

    def result(self, timeout: float | None = None) -> Any:
        return self.future.result(timeout)


_STOP: Any = object()


class ActorThreads:
    """A pool of threads that grows when every thread is busy.

    ``max_threads`` bounds the pool (a job waits for a thread beyond it; the default
    is high enough that only a runaway program reaches it). ``max_threads=1`` with
    ``idle_timeout=None`` is a dedicated thread (the ``thread`` placement).
    """

    def __init__(
        self, name: str = "actor", *, idle_timeout: float | None = 30.0, max_threads: int = 512
    ) -> None:
        self._name = name
        self._idle_timeout = idle_timeout
        self._max = max_threads
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: set[threading.Thread] = set()
        self._n = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"<ActorThreads {self._name} threads={len(self._threads)} idle={self._idle}>"

    @property
    def size(self) -> int:
        """How many threads the pool has now (busy or idle)."""
        return len(self._threads)

    def submit(
        self, fn: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> Job:
        """Run ``fn(*args)`` on a pool thread (inside ``context`` if given)."""
        job = Job(fn, args, context)
        self._enqueue(job)
        return job

    def run(
        self, fn: Callable[..., Any], *args: Any, context: contextvars.Context | None = None
    ) -> Job:
        """:meth:`submit` for a caller on the event loop: ``await job.waiter`` gives the
        result. The thread settles the waiter itself (one ``call_soon_threadsafe``), which
        costs about half of what ``asyncio.wrap_future`` on the job's future does; a
        waiter cancelled before the job starts cancels the job."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        job = Job(fn, args, context)
        job.waiter = waiter
        waiter.add_done_callback(lambda w: job.future.cancel() if w.cancelled() else None)
        self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"thread pool {self._name} is closed")
            if self._idle > 0:
                self._idle -= 1
            elif len(self._threads) < self._max:
                self._start_thread()
            self._jobs.put(job)

    def _start_thread(self) -> None:
        self._n += 1
        t = threading.Thread(target=self._work, name=f"{self._name}-{self._n}", daemon=True)
        self._threads.add(t)
        t.start()

    def interrupt(self, job: Job) -> bool:
        """Raise :class:`Killed` in the thread running ``job``; cancel it if not started.

        Returns True if the job was running or cancelled."""
        with self._lock:
            if job.thread is not None and not job.interrupted:
                job.interrupted = True
                _raise_in_thread(job.thread, Killed)
                return True
        return job.future.cancel()

    def close(self) -> None:
        """Stop the threads once their current job is done. A thread stuck in a job
        that never returns stays until the job ends (it is a daemon thread, so it does
        not keep the interpreter alive)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in range(len(self._threads)):
                self._jobs.put(_STOP)

    async def aclose(self) -> None:
        """:meth:`close`, for :meth:`python_actors.Runtime.service` owners."""
        self.close()

    # -- the worker threads -----------------------------------------------------------

    def _work(self) -> None:
        me = threading.current_thread()
        try:
            while True:
                try:
                    job = self._jobs.get(timeout=self._idle_timeout)
                except queue.Empty:
                    with self._lock:
                        if self._idle > 0:  # nobody counted on this thread: retire
                            self._idle -= 1
                            return
                    continue
                except Killed:  # a stray interrupt that arrived after its job ended
                    continue
                if job is _STOP:
                    return
                self._run(job)
                with self._lock:
                    if self._closed:
                        return
                    self._idle += 1
        finally:
            with self._lock:
                self._threads.discard(me)

    def _run(self, job: Job) -> None:
        future = job.future
        try:
            if not future.set_running_or_notify_cancel():
                return
            with self._lock:
                job.thread = threading.get_ident()
            try:
                if job.context is not None:
                    value = job.context.run(job.fn, *job.args)
                else:
                    value = job.fn(*job.args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
                self._finish(job)
                future.set_exception(exc)
                _settle_from_thread(job.waiter, exc, None)
            else:
                self._finish(job)
                future.set_result(value)
                _settle_from_thread(job.waiter, None, value)
        except Killed:
            # Raised after the job's code returned, before _finish cleared it.
            self._finish(job)
            if not future.done():
                future.set_exception(Killed())
                _settle_from_thread(job.waiter, Killed(), None)

    def _finish(self, job: Job) -> None:
        with self._lock:
            job.thread = None
            if job.interrupted:
                _raise_in_thread(threading.get_ident(), None)  # clear one still pending


def _settle_from_thread(waiter: asyncio.Future[Any] | None, exc: BaseException | None, value: Any) -> None:
    """Hand a job's outcome to the loop awaiting it (a no-op for :meth:`ActorThreads.submit` jobs)."""
    if waiter is None:
        return
    try:
        waiter.get_loop().call_soon_threadsafe(_settle, waiter, exc, value)
    except RuntimeError:  # the loop is closed: nobody awaits it any more
        pass


def _settle(waiter: asyncio.Future[Any], exc: BaseException | None, value: Any) -> None:
    if waiter.done():  # cancelled meanwhile (the process was killed)
        return
    if exc is not None:
        waiter.set_exception(exc)
    else:
        waiter.set_result(value)
