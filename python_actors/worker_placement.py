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

An example (a script: the worker finds ``Square`` by loading it)::

    import asyncio
    from python_actors import GenServer, Reply, Runtime, call

    class Square(GenServer):
        placement = "process"

        def handle_call(self, n, from_, state):
            return Reply(n * n, state)

    async def main():
        async with Runtime() as rt:
            pid = await Square.start(runtime=rt)
            print(await call(pid, 12, runtime=rt))   # 144, computed in the worker

    if __name__ == "__main__":
        asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid

from . import worker_channel as ch
from .errors import KILLED, NORMAL, SHUTDOWN, TIMEOUT, BadArg, StartError, reason_of
from .process import IDLE, RUNNING, Process
from .worker_pool import POOL_KEY, WorkerChannel, WorkerPool, configure_worker_pool, main_ref

if TYPE_CHECKING:
    from .gen_server import GenServer
    from .runtime import Runtime

__all__ = ["POOL_KEY", "WorkerPool", "WorkerProxy", "configure_worker_pool", "start_in_worker"]

log = logging.getLogger("python_actors")

WORKER_EXITED = Atom("worker_exited")
_ALREADY_STARTED = Atom("already_started")


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
        channel.send((ch.INIT, main_ref(cls), pickle.dumps((cls, args)), proc.pid, parent, proc.trap))
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
        # The process is busy until the worker says done: one message at a time is
        # in the pipe, so the write buffer stays bounded with no drain.
        self._done = done = asyncio.get_running_loop().create_future()
        channel.send(frame)
        return done

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
    pool.preload(cls)
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
    except (OSError, ch.ChannelError, pickle.PicklingError, TypeError, AttributeError) as exc:
        # no worker could be started, or the class or argument cannot be pickled
        reason = reason_of(exc)
        _unlink_caller(runtime, link_to, proc)
        runtime._exit_process(proc, reason)
        raise StartError(reason) from exc
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
