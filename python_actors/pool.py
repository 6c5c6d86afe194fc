"""Pool: N GenServer workers under a Supervisor, checked out one call at a time.

The Python twin of the BEAM's ``beam_bridge_pool`` (poolboy's semantics): a pool
process starts and links a one_for_one :class:`Supervisor` with ``size`` workers
(each ``worker.start_link(args)``, restarted when it ends); :meth:`Pool.call` checks
out an idle worker, runs ``call(worker, request)`` and checks it back in. Callers
that find every worker busy wait in a FIFO queue. ``timeout`` (seconds, ``None`` =
infinity) covers the wait and the call: past it the caller gets :class:`PoolCallError`
with reason ``{timeout, {beam_bridge_pool, call, [Pool, Request, Timeout]}}`` and a
worker still running the request is killed (``exit(Worker, kill)``) and replaced by
the supervisor. A caller process that dies while holding a worker checks it in.

>>> import asyncio
>>> from python_actors import GenServer, Reply, Runtime
>>> class Square(GenServer):
...     def handle_call(self, n, from_, state):
...         return Reply(n * n, state)
>>> async def main():
...     async with Runtime() as rt:
...         await Pool.start_link(Square, size=2, name="squares", runtime=rt)
...         return [await Pool.call("squares", n, runtime=rt) for n in range(4)]
>>> asyncio.run(main())
[0, 1, 4, 9]
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid, Reference

from .errors import DOWN, EXIT, KILL, TIMEOUT, CallError, Exit, NotInProcess
from .gen_server import GenServer, NoReply, Ok, Reply, Stop, call, cast
from .process import _maybe_current, current_process
from .supervisor import ChildSpec, Supervisor, shutdown_children

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["Pool", "PoolCallError"]

_CHECKOUT = Atom("checkout")
_CHECKIN = Atom("checkin")
_EXPIRED = Atom("expired")
_CANCEL = Atom("cancel_waiting")
_STATUS = Atom("status")
_WORKERS = Atom("workers")
_WORKER_UP = Atom("$pool_worker")
_POOL_MFA = (Atom("beam_bridge_pool"), Atom("call"))


class PoolCallError(CallError):
    """:meth:`Pool.call` failed; ``reason`` is ``{Why, {beam_bridge_pool, call, [Pool, Request, Timeout]}}``,
    as ``beam_bridge_pool:call/3`` exits on the BEAM. ``why`` is ``timeout``,
    ``noproc`` or the worker's call failure."""

    def __init__(self, why: Any, pool: Any, request: Any, timeout: Any) -> None:
        Exit.__init__(self, (why, (*_POOL_MFA, [pool, request, timeout])))
        self.why = why


class _Options:
    __slots__ = ("worker", "args", "size", "strategy", "intensity", "period", "shutdown")

    def __init__(self, worker: type[GenServer], args: Any, size: int, strategy: str,
                 intensity: int | None, period: float, shutdown: float | str) -> None:
        if size < 1:
            raise ValueError(f"pool size must be at least 1, not {size}")
        if strategy not in ("fifo", "lifo"):
            raise ValueError(f"bad pool strategy {strategy!r}")
        self.worker, self.args, self.size, self.strategy = worker, args, size, strategy
        self.intensity = 2 * size if intensity is None else intensity
        self.period, self.shutdown = period, shutdown


class _State:
    __slots__ = ("opts", "sup", "workers", "idle", "busy", "waiting")

    def __init__(self, opts: _Options, sup: Pid) -> None:
        self.opts = opts
        self.sup = sup
        self.workers: dict[Pid, Reference] = {}             # worker -> its monitor
        self.idle: deque[Pid] = deque()
        self.busy: dict[Pid, tuple[Any, Reference]] = {}    # worker -> (cref, caller monitor)
        self.waiting: deque[tuple[Any, Any, Reference]] = deque()  # (from, cref, caller monitor)


class Pool(GenServer):
    """A pool of ``size`` workers (a GenServer class) under its own supervisor."""

    __slots__ = ()
    _is_supervisor = True

    @classmethod
    async def start_link(  # type: ignore[override]
        cls,
        worker: type[GenServer],
        args: Any = None,
        *,
        size: int = 5,
        strategy: str = "fifo",
        intensity: int | None = None,
        period: float = 5.0,
        shutdown: float | str = 5.0,
        name: Atom | str | None = None,
        runtime: Runtime | None = None,
        timeout: float | None = None,
    ) -> Pid | None:
        """Start a pool linked to the caller (``beam_bridge_pool:start_link/1``).

        ``worker.start_link(args)`` starts each worker; ``strategy`` ``"fifo"`` (spread
        calls) or ``"lifo"``; ``intensity`` (default ``2 * size``) and ``period`` are
        the workers' supervisor's restart limits; ``shutdown`` a worker's shutdown."""
        opts = _Options(worker, args, size, strategy, intensity, period, shutdown)
        return await cls._start(opts, name, runtime, True, timeout)

    # -- client API ----------------------------------------------------------------

    @staticmethod
    async def call(pool: Any, request: Any, timeout: float | None = 5.0, *,
                   runtime: Runtime | None = None) -> Any:
        """``beam_bridge_pool:call(Pool, Request, Timeout)``: run ``request`` on one idle
        worker; raises :class:`PoolCallError` (see the module docs)."""
        caller = _maybe_current()
        if caller is None or not caller.alive or (runtime is not None and caller.runtime is not runtime):
            if runtime is None:
                raise NotInProcess("Pool.call outside a process needs runtime=")
            # The worker is held by the calling process: outside one, make one.
            return await runtime.run(lambda _proc: Pool.call(pool, request, timeout))
        wire_timeout = Atom("infinity") if timeout is None else int(timeout * 1000)
        deadline = None if timeout is None else time.monotonic() + timeout
        cref = caller.runtime.make_ref()
        try:
            worker = await call(pool, (_CHECKOUT, cref), timeout, runtime=runtime)
        except CallError as exc:
            if exc.why == TIMEOUT:
                cast(pool, (_CANCEL, cref), runtime=runtime)
            raise PoolCallError(exc.why, pool, request, wire_timeout) from None
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            # The wait for a worker used the whole timeout: the worker is not stuck.
            cast(pool, (_CHECKIN, worker, cref), runtime=runtime)
            raise PoolCallError(TIMEOUT, pool, request, wire_timeout)
        try:
            reply = await call(worker, request, left, runtime=runtime)
        except CallError as exc:
            cast(pool, (_EXPIRED if exc.why == TIMEOUT else _CHECKIN, worker, cref), runtime=runtime)
            raise PoolCallError(exc.why, pool, request, wire_timeout) from None
        cast(pool, (_CHECKIN, worker, cref), runtime=runtime)
        return reply

    @staticmethod
    async def checkout(pool: Any, timeout: float | None = 5.0) -> Pid:
        """Take a worker for several calls (``beam_bridge_pool:checkout/2``); give it
        back with :meth:`checkin`. The calling process holds it (its death checks the
        worker in), so this needs a current process. Raises :class:`CallError` on timeout."""
        caller = current_process()
        cref = caller.runtime.make_ref()
        try:
            worker: Pid = await call(pool, (_CHECKOUT, cref), timeout)
        except CallError as exc:
            if exc.why == TIMEOUT:
                cast(pool, (_CANCEL, cref))
            raise
        return worker

    @staticmethod
    def checkin(pool: Any, worker: Pid, *, runtime: Runtime | None = None) -> None:
        """Give back a worker taken with :meth:`checkout`."""
        cast(pool, (_CHECKIN, worker, None), runtime=runtime)

    @staticmethod
    async def status(pool: Any, *, runtime: Runtime | None = None) -> dict[str, int]:
        """``{size, workers, idle, busy, waiting}``, as ``beam_bridge_pool:status/1``."""
        got: dict[Atom, int] = await call(pool, _STATUS, runtime=runtime)
        return {str(k): v for k, v in got.items()}

    @staticmethod
    async def workers(pool: Any, *, runtime: Runtime | None = None) -> list[Pid]:
        """The pids of the running workers."""
        got: list[Pid] = await call(pool, _WORKERS, runtime=runtime)
        return got

    # -- callbacks -----------------------------------------------------------------

    async def init(self, opts: _Options) -> Any:
        self.process.trap_exit = True
        manager = self.pid

        async def start_worker() -> Pid | None:
            pid = await opts.worker.start_link(opts.args)
            if pid is not None:
                current_process().send(manager, (_WORKER_UP, pid))
            return pid

        specs = [ChildSpec(id=i, start=start_worker, shutdown=opts.shutdown) for i in range(opts.size)]
        try:
            sup = await Supervisor.start_link(specs, intensity=opts.intensity, period=opts.period)
        except Exception as exc:  # StartError: the workers could not start
            return Stop(getattr(exc, "reason", exc))
        assert sup is not None
        return Ok(_State(opts, sup))

    def handle_call(self, request: Any, from_: Any, state: _State) -> Any:
        if type(request) is tuple and len(request) == 2 and request[0] == _CHECKOUT:
            cref, caller = request[1], from_[0]
            mref = self.process.monitor(caller)
            if state.idle:
                worker = state.idle.popleft()
                state.busy[worker] = (cref, mref)
                return Reply(worker, state)
            state.waiting.append((from_, cref, mref))
            return NoReply(state)
        if request == _STATUS:
            return Reply({Atom("size"): state.opts.size, Atom("workers"): len(state.workers),
                          Atom("idle"): len(state.idle), Atom("busy"): len(state.busy),
                          Atom("waiting"): len(state.waiting)}, state)
        if request == _WORKERS:
            return Reply(list(state.workers), state)
        return Reply((Atom("error"), Atom("unknown_call")), state)

    def handle_cast(self, request: Any, state: _State) -> Any:
        if type(request) is tuple and len(request) == 3 and request[0] in (_CHECKIN, _EXPIRED):
            tag, worker, cref = request
            held = state.busy.get(worker)
            if held is not None and (cref is None or held[0] == cref):
                if tag == _EXPIRED:
                    # Stuck past its caller's timeout: kill it; the supervisor replaces it.
                    self.process.exit(worker, KILL)
                    self._forget(worker, state)
                else:
                    del state.busy[worker]
                    self.process.demonitor(held[1], flush=True)
                    self._give(worker, state)
        elif type(request) is tuple and len(request) == 2 and request[0] == _CANCEL:
            cref = request[1]
            for entry in [w for w in state.waiting if w[1] == cref]:
                state.waiting.remove(entry)
                self.process.demonitor(entry[2], flush=True)
            for worker in [w for w, (c, _) in state.busy.items() if c == cref]:
                self.process.demonitor(state.busy.pop(worker)[1], flush=True)
                self._give(worker, state)
        return NoReply(state)

    def handle_info(self, message: Any, state: _State) -> Any:
        if type(message) is not tuple:
            return NoReply(state)
        if len(message) == 2 and message[0] == _WORKER_UP:
            worker = message[1]
            state.workers[worker] = self.process.monitor(worker)
            self._give(worker, state)
        elif len(message) == 5 and message[0] == DOWN:
            ref, pid = message[1], message[3]
            if state.workers.get(pid) == ref:
                self._forget(pid, state)
            else:
                self._caller_down(ref, state)
        elif len(message) == 3 and message[0] == EXIT and message[1] == state.sup:
            return Stop(message[2], state)
        return NoReply(state)

    async def terminate(self, reason: Any, state: Any) -> None:
        if isinstance(state, _State) and self.runtime.is_alive(state.sup):
            await shutdown_children(self.process, [(state.sup, "infinity")])

    # -- internals -------------------------------------------------------------------

    def _give(self, worker: Pid, state: _State) -> None:
        """Hand a free worker to the first waiting caller, or keep it idle."""
        if state.waiting:
            from_, cref, mref = state.waiting.popleft()
            state.busy[worker] = (cref, mref)
            self.reply(from_, worker)
        elif state.opts.strategy == "fifo":
            state.idle.append(worker)
        else:
            state.idle.appendleft(worker)

    def _forget(self, worker: Pid, state: _State) -> None:
        mref = state.workers.pop(worker, None)
        if mref is not None:
            self.process.demonitor(mref, flush=True)
        held = state.busy.pop(worker, None)
        if held is not None:
            self.process.demonitor(held[1], flush=True)
        if worker in state.idle:
            state.idle.remove(worker)

    def _caller_down(self, mref: Any, state: _State) -> None:
        for worker, (_, ref) in list(state.busy.items()):
            if ref == mref:
                del state.busy[worker]
                self._give(worker, state)
                return
        for entry in [w for w in state.waiting if w[2] == mref]:
            state.waiting.remove(entry)

