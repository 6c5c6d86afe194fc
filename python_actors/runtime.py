"""The runtime: owner of every local process, pid and reference, and the scheduler.

Theory of operation. All state lives on one asyncio event loop and every
operation is synchronous: a send appends to a mailbox, a link or monitor updates
both ends at once, and a process's death is propagated (links, monitors,
registry, aliases) before the call that caused it returns, iteratively, so a chain
of 100 000 linked processes does not recurse. Signals between two local processes
therefore keep their order (BEAM's signal ordering guarantee).

Callback-style processes (GenServers) are driven by a run queue: delivering a
message to an idle one queues it and schedules one ``_run`` pass with
``loop.call_soon``; the pass calls handlers synchronously, a bounded number per
process and per pass so no process or the event loop starves. A handler that is a
coroutine function gets a task of its process until it completes. Coroutine-style
processes own one task each.

Anything about another node goes through the :class:`~python_actors.router.Router`
(see router.py for the protocol and the inbound half implemented here).

>>> import asyncio
>>> async def main():
...     async with Runtime("py@127.0.0.1", creation=7) as rt:
...         return rt.make_ref().node
>>> asyncio.run(main())
Atom('py@127.0.0.1')
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import secrets
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from dist_proto.terms import Atom, ImproperList, Pid, Reference

from .errors import (
    DOWN,
    EXIT,
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    BadArg,
    reason_of,
)
from .inbound import InboundMixin
from .process import BUSY, DETACHED, IDLE, QUEUED, RUNNING, Process, _current, _maybe_current
from .router import LocalRouter, Router
from .threads import ActorThreads
from .watchdog import Watchdog

__all__ = ["Runtime"]

log = logging.getLogger("python_actors")

_PROCESS = Atom("process")
_ALIAS = Atom("alias")
_UNDEFINED = Atom("undefined")
_BUDGET_PER_PROC = 64
_BUDGET_PER_PASS = 4096


def _key(pid: Pid) -> int:
    return pid.id | (pid.serial << 32)


def _as_atom(name: Any) -> Atom:
    if type(name) is Atom:
        return name
    if type(name) is str:
        return Atom(name)
    raise BadArg(f"not a name: {name!r}")


class Runtime(InboundMixin):
    """A set of processes on one node: ``erlang`` BIFs, registry, scheduler.

    ``node_name`` is this node's name (``nonode@nohost`` when not distributed) and
    ``creation`` its incarnation number (from EPMD for a real node; default 0 for
    ``nonode@nohost``, else random). Use as ``async with Runtime() as rt`` or call
    :meth:`stop`.
    """

    def __init__(
        self,
        node_name: Atom | str = "nonode@nohost",
        creation: int | None = None,
        *,
        router: Router | None = None,
        watchdog: float | None = 0.25,
    ) -> None:
        self.node: Atom = _as_atom(node_name)
        if creation is None:
            creation = 0 if self.node.name == "nonode@nohost" else secrets.randbits(32) or 1
        self.creation = creation
        self._router: Router = router if router is not None else LocalRouter(self)
        self._procs: dict[int, Process] = {}
        self._names: dict[Atom, Process] = {}
        self._aliases: dict[Reference, Process] = {}
        self._remote: dict[Atom, set[Process]] = {}
        self._pid_n = 0
        self._ref_n = 0
        self._unlink_n = 0
        self._runq: deque[Process] = deque()
        #: the process whose callback the scheduler is running (for the watchdog)
        self._running: Process | None = None
        self._scheduled = False
        self._inline_runs = 0
        self._dying: deque[tuple[Process, Any]] = deque()
        self._draining = False
        self._joiners: dict[int, list[asyncio.Future[Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._stopped = False
        self._services: dict[str, Any] = {}
        self._outbox: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._outbox_lock = threading.Lock()
        self._watchdog_threshold = watchdog
        #: the pid signals from outside any process are sent from (never alive)
        self.system_pid = Pid(self.node, 0, 0, creation)

    def __repr__(self) -> str:
        return f"<Runtime {self.node.name} processes={len(self._procs)}>"

    # -- identity -------------------------------------------------------------------

    def set_router(self, router: Router) -> None:
        """Attach the network layer (done by ``bridge``)."""
        self._router = router

    @property
    def router(self) -> Router:
        return self._router

    def is_local(self, pid: Pid | Reference) -> bool:
        """Whether a pid or reference belongs to this node."""
        return pid.node is self.node or pid.node == self.node

    def _new_pid(self) -> Pid:
        procs = self._procs
        while True:
            self._pid_n = n = (self._pid_n + 1) & 0xFFFFFFF  # 28 bits, like BEAM
            pid = Pid(self.node, n & 0x7FFF, n >> 15, self.creation)
            if n and _key(pid) not in procs:
                return pid

    def make_ref(self) -> Reference:
        """``make_ref()``: three words, the first below 2**18, unique per runtime."""
        self._ref_n = n = self._ref_n + 1
        return Reference(
            self.node, self.creation, (n & 0x3FFFF, (n >> 18) & 0xFFFFFFFF, (n >> 50) & 0xFFFFFFFF)
        )

    def _loop_(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._loop_thread = threading.get_ident()
        return loop

    def on_loop(self) -> bool:
        """Whether the caller runs on the runtime's event loop thread (where every
        runtime operation happens; code on other threads goes through
        :meth:`from_thread`)."""
        return self._loop_thread is None or threading.get_ident() == self._loop_thread

    def from_thread(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread, in the order of these calls (a send
        from a callback running on a thread, say). Directly when already there."""
        if self.on_loop():
            fn(*args)
            return
        with self._outbox_lock:
            self._outbox.append((fn, args))
            if len(self._outbox) > 1:
                return  # a flush is already scheduled
        self._loop_().call_soon_threadsafe(self._flush_outbox)

    def _flush_outbox(self) -> None:
        """Run what threads handed to the loop, in order; one wake-up per batch."""
        with self._outbox_lock:
            items, self._outbox = self._outbox, []
        for fn, args in items:
            try:
                fn(*args)
            except Exception:
                log.exception("operation handed over from a thread failed: %r", fn)

    def call_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` run on the loop thread, waiting for its result (or exception)
        when called from another thread."""
        if self.on_loop():
            return fn(*args)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:
                done.set_exception(exc)

        self._loop_().call_soon_threadsafe(run)
        return done.result()

    def service(self, key: str, factory: Callable[[], Any]) -> Any:
        """A per-runtime helper object (a thread pool, a worker pool), created on first
        use by ``factory()``; its ``aclose()`` is awaited by :meth:`stop` once every
        process has stopped."""
        svc = self._services.get(key)
        if svc is None:
            if self._stopped:
                raise RuntimeError("runtime is stopped")
            svc = self._services[key] = factory()
        return svc

    @property
    def threads(self) -> ActorThreads:
        """The pool that runs synchronous callbacks and :func:`run_blocking` calls."""
        pool: ActorThreads = self.service("actor_threads", lambda: ActorThreads("actor"))
        return pool

    def _later(self, fn: Callable[..., Any], *args: Any) -> None:
        self._loop_().call_soon(fn, *args)

    # -- processes ------------------------------------------------------------------

    def _add(self, parent: Process | None, link: bool = False) -> Process:
        if self._stopped:
            raise RuntimeError("runtime is stopped")
        pid = self._new_pid()
        proc = Process(self, pid, parent.pid if parent is not None else None)
        self._procs[_key(pid)] = proc
        if link and parent is not None:
            proc.links = {parent.pid: 0}
            if parent.links is None:
                parent.links = {}
            parent.links[pid] = 0
        return proc

    def _spawn(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        parent: Process | None = None,
        link: bool = False,
    ) -> Pid:
        proc = self._add(parent, link)
        self._start_task(proc, self._main(proc, fn, args))
        return proc.pid

    def _start_task(self, proc: Process, coro: Any) -> asyncio.Task[Any]:
        ctx = contextvars.copy_context()
        ctx.run(_current.set, proc)
        task = self._loop_().create_task(coro, context=ctx)
        proc.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _main(self, proc: Process, fn: Callable[..., Awaitable[Any]], args: Any) -> None:
        try:
            await fn(proc, *args)
            reason: Any = NORMAL
        except asyncio.CancelledError:
            if not proc.alive:
                return
            reason = KILLED
        except Exception as exc:
            reason = reason_of(exc)
        self._exit_process(proc, reason)

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
        """``spawn`` from outside any process: run ``await fn(proc, *args)``."""
        return self._spawn(fn, args, _maybe_current())

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``await fn(proc, *args)`` as a temporary process and return its result.

        The process exits ``normal`` afterwards (or with the exception's reason, which
        is re-raised here).
        """
        proc = self._add(None)
        loop = self._loop_()
        result: asyncio.Future[Any] = loop.create_future()

        async def body(p: Process) -> None:
            try:
                value = await fn(p, *args)
            except BaseException as exc:
                if not result.done():
                    result.set_exception(exc)
                raise
            result.set_result(value)

        self._start_task(proc, self._main(proc, body, ()))
        return await result

    def _get(self, pid: Pid) -> Process | None:
        p = self._procs.get(pid.id | (pid.serial << 32))
        if p is not None and p.pid.creation == pid.creation:
            return p
        return None

    def process(self, pid: Pid) -> Process | None:
        """The live local process with this pid, or None."""
        return self._get(pid) if self.is_local(pid) else None

    def is_alive(self, pid: Pid) -> bool:
        """``is_process_alive/1`` for a local pid."""
        return self.process(pid) is not None

    def processes(self) -> list[Pid]:
        """``processes()``: the pids of the live local processes, oldest first."""
        return [p.pid for p in self._procs.values()]

    async def join(self, pid: Pid, timeout: float | None = None) -> Any:
        """Wait until local ``pid`` has ended and return its exit reason (``noproc`` if
        it was already gone). Does not create a monitor; for tests and shutdown."""
        fut = self.exit_future(pid)
        if fut.done():
            return fut.result()
        return await asyncio.wait_for(fut, timeout)

    def exit_future(self, pid: Pid) -> asyncio.Future[Any]:
        """A future set to local ``pid``'s exit reason when it ends (already set to
        ``noproc`` if it is gone); no monitor, no task. :meth:`forget_exit_future`
        drops one no longer wanted."""
        fut: asyncio.Future[Any] = self._loop_().create_future()
        if self.process(pid) is None:
            fut.set_result(NOPROC)
        else:
            self._joiners.setdefault(_key(pid), []).append(fut)
        return fut

    def forget_exit_future(self, pid: Pid, fut: asyncio.Future[Any]) -> None:
        """Drop a future of :meth:`exit_future` (its process still runs)."""
        waiting = self._joiners.get(_key(pid))
        if waiting is not None and fut in waiting:
            waiting.remove(fut)
            if not waiting:
                del self._joiners[_key(pid)]

    # -- registry -------------------------------------------------------------------

    def register(self, name: Atom | str, pid: Pid) -> None:
        """``register/2``; raises :class:`BadArg` like BEAM (name taken, pid dead or named)."""
        name = _as_atom(name)
        if name == _UNDEFINED or name in self._names:
            raise BadArg(f"name {name} is already registered")
        p = self.process(pid)
        if p is None:
            raise BadArg(f"{pid} is not a live local process")
        if p.name is not None:
            raise BadArg(f"{pid} is already registered as {p.name}")
        p.name = name
        self._names[name] = p

    def unregister(self, name: Atom | str) -> None:
        """``unregister/1``; :class:`BadArg` if the name is not registered."""
        p = self._names.pop(_as_atom(name), None)
        if p is None:
            raise BadArg(f"{name} is not registered")
        p.name = None

    def whereis(self, name: Atom | str) -> Pid | None:
        """``whereis/1``: the pid registered under ``name`` or None."""
        p = self._names.get(_as_atom(name))
        return None if p is None else p.pid

    def registered(self) -> list[Atom]:
        """``registered()``."""
        return list(self._names)

    # -- messages -------------------------------------------------------------------

    def send(self, dest: Any, message: Any) -> Any:
        """``erlang:send/2`` from outside any process (remote sends come from
        :attr:`system_pid`). Safe from any thread."""
        if self.on_loop():
            self._send(dest, message, self.system_pid)
        else:
            self.call_on_loop(self._send, dest, message, self.system_pid)
        return message

    def _send(self, dest: Any, message: Any, sender: Pid) -> None:
        t = type(dest)
        if t is Pid:
            if dest.node is self.node or dest.node == self.node:
                p = self._procs.get(dest.id | (dest.serial << 32))
                if p is not None and p.pid.creation == dest.creation:
                    self._deliver(p, message)
            else:
                self._router.send(sender, dest, message)
        elif t is Atom or t is str:
            p = self._names.get(_as_atom(dest))
            if p is None:
                raise BadArg(f"no process registered as {dest}")
            self._deliver(p, message)
        elif t is tuple and len(dest) == 2:
            name, node = _as_atom(dest[0]), _as_atom(dest[1])
            if node == self.node:
                p = self._names.get(name)
                if p is None:
                    raise BadArg(f"no process registered as {name}")
                self._deliver(p, message)
            else:
                self._router.send(sender, (name, node), message)
        elif t is Reference:
            self._send_alias(dest, message, sender)
        else:
            raise BadArg(f"bad destination {dest!r}")

    def _send_alias(self, alias: Reference, message: Any, sender: Pid) -> None:
        if self.is_local(alias):
            p = self._aliases.get(alias)
            if p is not None:
                self._deliver(p, message)
        else:
            self._router.send_alias(sender, alias, message)

    def reply_to(self, tag_from: tuple[Pid, Any], message: Any, sender: Pid | None = None) -> None:
        """``gen:reply/2`` routing: send ``(Tag, message)`` to the alias in the tag
        (``[alias | A]`` or ``[[alias | A] | _]``) or else to the pid."""
        if not self.on_loop():
            self.from_thread(self.reply_to, tag_from, message, sender)
            return
        pid, tag = tag_from
        sender = sender or self.system_pid
        alias = _alias_of(tag)
        if alias is not None:
            self._send_alias(alias, (tag, message), sender)
        else:
            self._send(pid, (tag, message), sender)

    def _deliver(self, p: Process, message: Any) -> None:
        p.mailbox.put(message)
        if p.status == IDLE and p.behaviour is not None:
            p.status = QUEUED
            self._runq.append(p)
            if not self._scheduled:
                self._scheduled = True
                self._loop_().call_soon(self._run)

    def _enqueue(self, p: Process) -> None:
        if p.status == IDLE and p.alive:
            p.status = QUEUED
            self._runq.append(p)
            if not self._scheduled:
                self._scheduled = True
                self._loop_().call_soon(self._run)

    # -- the scheduler --------------------------------------------------------------

    def _run(self) -> None:
        self._scheduled = False
        runq = self._runq
        budget = _BUDGET_PER_PASS
        while runq and budget > 0:
            p = runq.popleft()
            if not p.alive:
                continue
            p.status = RUNNING
            mailbox = p.mailbox
            handle = p.behaviour._handle
            n = 0
            token = _current.set(p)
            self._running = p
            try:
                while n < _BUDGET_PER_PROC and mailbox and p.alive:
                    n += 1
                    pending = handle(mailbox.popleft())
                    if pending is not None:
                        p.status = BUSY
                        if pending is not DETACHED:
                            self._start_task(p, self._busy(p, pending))
                        break
            except BaseException as exc:  # a bug in a behaviour: end the process
                log.exception("behaviour of %s failed", p.pid)
                if p.alive:
                    self._exit_process(p, reason_of(exc))
            finally:
                self._running = None
                _current.reset(token)
            budget -= n
            p.reductions += n
            if p.status == RUNNING:
                if p.alive and mailbox:
                    p.status = QUEUED
                    runq.append(p)
                else:
                    p.status = IDLE
        if runq and not self._scheduled:
            self._scheduled = True
            self._loop_().call_soon(self._run)

    def may_handle_now(self) -> bool:
        """Whether one more message may be handled inline (:meth:`handle_now`) before
        the loop runs again: at most as many per loop iteration as the scheduler gives
        one process per pass, so a caller looping over inline calls still yields."""
        n = self._inline_runs
        if n == 0:
            self._loop_().call_soon(self._reset_inline_runs)
        elif n >= _BUDGET_PER_PROC:
            return False
        self._inline_runs = n + 1
        return True

    def _reset_inline_runs(self) -> None:
        self._inline_runs = 0

    def handle_now(self, p: Process, message: Any) -> None:
        """Handle ``message`` in the idle process ``p`` at once, from the current loop
        callback, exactly as the scheduler's next pass would (the inline local call of
        :mod:`python_actors.inline_call`); ``p``'s mailbox must be empty."""
        p.status = RUNNING
        token = _current.set(p)
        running, self._running = self._running, p
        try:
            pending = p.behaviour._handle(message)
            if pending is not None:
                p.status = BUSY
                if pending is not DETACHED:
                    self._start_task(p, self._busy(p, pending))
        except BaseException as exc:  # a bug in a behaviour: end the process
            log.exception("behaviour of %s failed", p.pid)
            if p.alive:
                self._exit_process(p, reason_of(exc))
        finally:
            self._running = running
            _current.reset(token)
        p.reductions += 1
        if p.status == RUNNING:
            p.status = IDLE
            if p.mailbox:
                self._enqueue(p)

    def resume(self, p: Process) -> None:
        """End the BUSY state a behaviour entered by returning :data:`DETACHED` from
        ``_handle`` (its work ran elsewhere, a thread say): take the next messages."""
        if p.alive and p.status == BUSY:
            p.status = IDLE
            if p.mailbox:
                self._enqueue(p)

    async def _busy(self, p: Process, pending: Awaitable[Any]) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            if p.alive:
                self._exit_process(p, KILLED)
            return
        except BaseException as exc:
            log.exception("behaviour of %s failed", p.pid)
            if p.alive:
                self._exit_process(p, reason_of(exc))
            return
        p.task = None
        if p.alive:
            p.status = IDLE
            if p.mailbox:
                self._enqueue(p)

    # -- exits ----------------------------------------------------------------------

    def _exit_process(self, p: Process, reason: Any) -> None:
        """End ``p`` with ``reason`` and propagate (iteratively)."""
        if not p.alive:
            return
        p.alive = False
        self._dying.append((p, reason))
        if self._draining:
            return
        self._draining = True
        try:
            while self._dying:
                q, r = self._dying.popleft()
                self._finish(q, r)
        finally:
            self._draining = False

    def _finish(self, p: Process, reason: Any) -> None:
        pid = p.pid
        p.reason = reason
        self._procs.pop(_key(pid), None)
        if p.name is not None:
            self._names.pop(p.name, None)
            p.name = None
        if p.aliases:
            for a in p.aliases:
                self._aliases.pop(a, None)
            p.aliases = None
        p.mailbox.clear()
        beh = p.behaviour
        if beh is not None:
            beh._on_exit()
        if p.links:
            links, p.links = p.links, None
            for other, state in links.items():
                if self.is_local(other):
                    o = self._get(other)
                    if o is not None and o.links is not None and o.links.pop(pid, None) is not None:
                        self._link_signal(o, pid, reason)
                elif state == 0:
                    self._router.exit(pid, other, reason)
        if p.monitors:
            mons, p.monitors = p.monitors, None
            for ref, target in mons.items():
                tpid = target if type(target) is Pid else None
                if tpid is not None and self.is_local(tpid):
                    t = self._get(tpid)
                    if t is not None and t.watchers:
                        t.watchers.pop(ref, None)
                elif tpid is None and self.is_local_target(target):
                    for t in self._procs.values():  # rare: name monitor, target renamed
                        if t.watchers and ref in t.watchers:
                            del t.watchers[ref]
                            break
                else:
                    self._router.demonitor(pid, target, ref)
        if p.watchers:
            watchers, p.watchers = p.watchers, None
            for ref, (watcher, item) in watchers.items():
                if self.is_local(watcher):
                    w = self._get(watcher)
                    if w is not None and w.monitors and w.monitors.pop(ref, None) is not None:
                        self._deliver(w, (DOWN, ref, _PROCESS, item, reason))
                else:
                    self._router.down(item, watcher, ref, reason)
        job = p.job
        if job is not None:
            p.job = None
            self.threads.interrupt(job)
        task = p.task
        if task is not None:
            p.task = None
            if not task.done():
                task.cancel()
        joiners = self._joiners.pop(_key(pid), None)
        if joiners:
            for fut in joiners:
                if not fut.done():
                    fut.set_result(reason)

    def is_local_target(self, target: Any) -> bool:
        return type(target) is tuple and target[1] == self.node

    def _link_signal(self, o: Process, from_pid: Pid, reason: Any) -> None:
        """An exit signal caused by a broken link."""
        if o.trap:
            self._deliver(o, (EXIT, from_pid, reason))
        elif reason != NORMAL:
            self._exit_process(o, reason)

    def _exit2_signal(self, o: Process, from_pid: Pid, reason: Any) -> None:
        """An exit signal sent by ``exit/2``."""
        if reason == KILL:
            self._exit_process(o, KILLED)
        elif o.trap:
            self._deliver(o, (EXIT, from_pid, reason))
        elif reason != NORMAL:
            self._exit_process(o, reason)
        elif from_pid == o.pid:
            self._exit_process(o, NORMAL)

    def exit(self, pid: Any, reason: Any) -> None:
        """``exit/2`` from outside any process (sent from :attr:`system_pid`). Safe
        from any thread."""
        self.call_on_loop(self._exit2, self.system_pid, pid, reason)

    def _exit2(self, from_pid: Pid, pid: Any, reason: Any) -> None:
        if type(pid) is not Pid:
            target = self.whereis(pid) if type(pid) in (Atom, str) else None
            if target is None:
                raise BadArg(f"exit/2 needs a pid, got {pid!r}")
            pid = target
        if self.is_local(pid):
            o = self._get(pid)
            if o is not None:
                self._exit2_signal(o, from_pid, reason)
        else:
            self._router.exit2(from_pid, pid, reason)

    def _exit2_from(self, p: Process, pid: Any, reason: Any) -> None:
        self._exit2(p.pid, pid, reason)

    # -- links, monitors, aliases ---------------------------------------------------

    def _track_remote(self, p: Process, node: Atom) -> None:
        self._remote.setdefault(node, set()).add(p)

    def _link(self, p: Process, pid: Pid) -> None:
        if pid == p.pid:
            return
        if p.links is None:
            p.links = {}
        if self.is_local(pid):
            o = self._get(pid)
            if o is None:
                self._link_signal(p, pid, NOPROC)
                return
            p.links[pid] = 0
            if o.links is None:
                o.links = {}
            o.links[p.pid] = 0
        else:
            if p.links.get(pid) == 0:
                return
            p.links[pid] = 0
            self._track_remote(p, pid.node)
            self._router.link(p.pid, pid)

    def _unlink(self, p: Process, pid: Pid) -> None:
        if p.links is None or pid not in p.links:
            return
        if self.is_local(pid):
            del p.links[pid]
            o = self._get(pid)
            if o is not None and o.links:
                o.links.pop(p.pid, None)
        elif p.links[pid] == 0:
            self._unlink_n = uid = (self._unlink_n % 0xFFFFFFFFFFFFFFFF) + 1
            p.links[pid] = uid
            self._router.unlink(p.pid, pid, uid)

    def _monitor(self, p: Process, target: Any, ref: Reference | None = None) -> Reference:
        if ref is None:
            ref = self.make_ref()
        t = type(target)
        if t is Atom or t is str:
            target = (_as_atom(target), self.node)
            t = tuple
        if t is tuple:
            name, node = _as_atom(target[0]), _as_atom(target[1])
            item: Any = (name, node)
            if node == self.node:
                o = self._names.get(name)
            else:
                if p.monitors is None:
                    p.monitors = {}
                p.monitors[ref] = item
                self._track_remote(p, node)
                self._router.monitor(p.pid, item, ref)
                return ref
        elif t is Pid:
            item = target
            if not self.is_local(target):
                if p.monitors is None:
                    p.monitors = {}
                p.monitors[ref] = target
                self._track_remote(p, target.node)
                self._router.monitor(p.pid, target, ref)
                return ref
            o = self._get(target)
        else:
            raise BadArg(f"cannot monitor {target!r}")
        if o is None:
            self._deliver(p, (DOWN, ref, _PROCESS, item, NOPROC))
            return ref
        if p.monitors is None:
            p.monitors = {}
        p.monitors[ref] = o.pid
        if o.watchers is None:
            o.watchers = {}
        o.watchers[ref] = (p.pid, item)
        return ref

    def _demonitor(self, p: Process, ref: Reference, flush: bool) -> bool:
        target = p.monitors.pop(ref, None) if p.monitors else None
        if target is not None:
            if type(target) is Pid and self.is_local(target):
                o = self._get(target)
                if o is not None and o.watchers:
                    o.watchers.pop(ref, None)
            else:
                self._router.demonitor(p.pid, target, ref)
        if flush:
            p.mailbox.remove_all(
                lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref
            )
        return target is not None

    def _alias(self, p: Process) -> Reference:
        ref = self.make_ref()
        self._aliases[ref] = p
        if p.aliases is None:
            p.aliases = set()
        p.aliases.add(ref)
        return ref

    def _unalias(self, p: Process, ref: Reference) -> bool:
        if p.aliases and ref in p.aliases:
            p.aliases.discard(ref)
            self._aliases.pop(ref, None)
            return True
        return False

    # -- GenServer convenience ------------------------------------------------------

    async def start(self, behaviour: Any, args: Any = None, *, name: Any = None) -> Pid | None:
        """``gen_server:start``: ``behaviour.start(args, name=..., runtime=self)``."""
        result: Pid | None = await behaviour.start(args, name=name, runtime=self)
        return result

    async def call(self, server: Any, request: Any, timeout: float | None = 5.0) -> Any:
        """``gen_server:call`` from outside any process (see :func:`python_actors.call`)."""
        from .gen_server import call

        return await call(server, request, timeout, runtime=self)

    def cast(self, server: Any, request: Any) -> None:
        """``gen_server:cast`` (see :func:`python_actors.cast`)."""
        from .gen_server import GEN_CAST

        try:
            self._send(server, (GEN_CAST, request), self.system_pid)
        except BadArg:
            pass

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        self._loop_()
        if self._watchdog_threshold:
            self.service("watchdog", lambda: Watchdog(self, self._watchdog_threshold or 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _shutdown(self, p: Process, timeout: float) -> None:
        if not p.alive:
            return
        if p.behaviour is None and p.task is None:  # a proxy (call from outside, tester)
            self._exit_process(p, SHUTDOWN)
            return
        fut: asyncio.Future[Any] = self._loop_().create_future()
        self._joiners.setdefault(_key(p.pid), []).append(fut)
        beh = p.behaviour
        if beh is not None:
            beh._system_stop()
        else:
            self._exit2_signal(p, self.system_pid, SHUTDOWN)
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            self._exit_process(p, KILLED)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop every process: top-level processes newest first (so a supervisor stops
        its children in OTP order), then any left; a GenServer runs ``terminate``
        with ``shutdown``; after ``timeout`` seconds a process is killed. No task
        survives."""
        if self._stopped:
            return
        for top_level_only in (True, False):
            for p in reversed(list(self._procs.values())):
                if not p.alive:
                    continue
                if top_level_only and p.parent is not None and self._get(p.parent) is not None:
                    continue
                await self._shutdown(p, timeout)
        self._stopped = True
        for p in list(self._procs.values()):
            self._exit_process(p, KILLED)
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        services, self._services = self._services, {}
        for svc in reversed(list(services.values())):
            try:
                await svc.aclose()
            except Exception:
                log.exception("closing %r failed", svc)


def _alias_of(tag: Any) -> Reference | None:
    """The alias of a gen reply tag: ``[alias | A]`` or ``[[alias | A] | _]``."""
    t = type(tag)
    if t is ImproperList:
        items = tag.items
        if len(items) == 1 and items[0] == _ALIAS and type(tag.tail) is Reference:
            return tag.tail
        return _alias_of(items[0]) if type(items[0]) is ImproperList else None
    if t is list and tag and type(tag[0]) is ImproperList:
        return _alias_of(tag[0])
    return None
