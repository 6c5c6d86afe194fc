"""GenServer: OTP's ``gen_server`` behaviour on the local runtime.

A subclass implements the callbacks of ``gen_server`` (each may be a plain or an
``async`` method) and returns OTP's shapes as small named tuples:

=====================================  ==========================================
OTP                                    Python
=====================================  ==========================================
``{ok, State}`` ``{ok, S, Action}``    ``Ok(state)``, ``Ok(state, Continue(x))``
``ignore`` / ``{stop, Reason}``        ``IGNORE`` / ``Stop(reason)``
``{reply, R, S}`` ``{reply, R, S, A}`` ``Reply(r, state)``, ``Reply(r, state, action)``
``{noreply, S}`` ``{noreply, S, A}``   ``NoReply(state)``, ``NoReply(state, action)``
``{stop, Reason, S}``                  ``Stop(reason, state)``
``{stop, Reason, Reply, S}``           ``Stop(reason, state, reply=r)``
=====================================  ==========================================

An action is ``Continue(arg)`` (``handle_continue`` runs before any other message),
a timeout in seconds (``handle_info(Atom('timeout'), S)`` unless a message comes
first) or ``HIBERNATE`` (accepted, no effect). Any other return ends the process
with ``{bad_return_value, Value}``; an exception ends it with the reason shape of
:mod:`python_actors.errors`; either way ``terminate(reason, state)`` runs first.
Defaults follow Elixir: an unhandled call stops with ``{bad_call, Req}``, a cast
with ``{bad_cast, Req}``, an info message is logged and dropped.

On the wire this is exactly gen_server: calls arrive as
``('$gen_call', (from_pid, tag), request)`` and are answered with ``(tag, reply)``
to the alias in the tag (``[alias | Ref]``) or else to ``from_pid``; casts are
``('$gen_cast', request)``; an ``('EXIT', parent, reason)`` from the parent of a
trapping server runs ``terminate(reason)``; ``{system, From, Msg}`` (every ``sys``
call: state, status, suspend/resume, ``change_code``, debug options) is served by
:mod:`python_actors.sys_protocol`.

>>> import asyncio
>>> from python_actors import Runtime
>>> class Counter(GenServer):
...     def init(self, start):
...         return Ok(start)
...     def handle_call(self, request, from_, n):
...         return Reply(n, n)
...     def handle_cast(self, by, n):
...         return NoReply(n + by)
>>> async def main():
...     async with Runtime() as rt:
...         pid = await Counter.start(10, runtime=rt, name="counter")
...         cast("counter", 5, runtime=rt)
...         return await call(pid, "get", runtime=rt)
>>> asyncio.run(main())
15
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from dist_proto.terms import Atom, Pid

from .errors import (
    EXIT,
    KILLED,
    NORMAL,
    SHUTDOWN,
    TIMEOUT,
    NotInProcess,
    StartError,
    is_clean_exit,
    reason_of,
)
from .gen_client import _SYSTEM, GEN_CALL, GEN_CAST, _reply_if_alive, call, cast, reply, stop
from .placement import AUTO, PLACEMENTS, THREAD, drains_in_thread, off_loop_callbacks
from .process import DETACHED, IDLE, RUNNING, Process, _current, _maybe_current
from .threads import ActorThreads, Killed

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = [
    "GEN_CALL",
    "GEN_CAST",
    "HIBERNATE",
    "IGNORE",
    "Continue",
    "GenServer",
    "NoReply",
    "Ok",
    "Reply",
    "Stop",
    "call",
    "cast",
    "reply",
    "stop",
]

log = logging.getLogger("python_actors")

HIBERNATE = Atom("hibernate")
IGNORE = Atom("ignore")
_BAD_RETURN = Atom("bad_return_value")
_NOREPLY: Any = object()


class Ok(NamedTuple):
    """``{ok, State}`` / ``{ok, State, Action}`` from ``init``."""

    state: Any
    action: Any = None


class Reply(NamedTuple):
    """``{reply, Reply, State}`` / ``{reply, Reply, State, Action}``."""

    reply: Any
    state: Any
    action: Any = None


class NoReply(NamedTuple):
    """``{noreply, State}`` / ``{noreply, State, Action}``."""

    state: Any
    action: Any = None


class Stop(NamedTuple):
    """``{stop, Reason}`` (init), ``{stop, Reason, State}``, ``{stop, Reason, Reply, State}``."""

    reason: Any
    state: Any = None
    reply: Any = _NOREPLY


class Continue(NamedTuple):
    """``{continue, Arg}``: run ``handle_continue(arg, state)`` next."""

    arg: Any


class _Internal:
    __slots__ = ("kind", "arg")

    def __init__(self, kind: str, arg: Any = None) -> None:
        self.kind = kind
        self.arg = arg


class GenServer:
    """Base class of a gen_server. One instance per process; ``self.process`` is it.

    Do not override ``__init__`` with parameters: ``init(args)`` is the constructor
    and returns the state.
    """

    __slots__ = (
        "_proc", "_state", "_parent", "_timer", "_token", "_sys",
        "_off", "_thread", "_drain", "_done", "_front",
    )  # fmt: skip

    _proc: Process
    _state: Any
    _parent: Pid
    _timer: asyncio.TimerHandle | None
    _token: Any
    _sys: Any  # sys_protocol.SysState once a sys call suspended or debugs this server
    _off: frozenset[str]
    _thread: ActorThreads | None
    _drain: bool
    _done: bool
    _front: list[Any] | None

    #: Where the callbacks run (docs/placement.md): ``"auto"`` (the default: plain
    #: ``def`` callbacks on a pool thread, ``async def`` ones on the event loop),
    #: ``"loop"`` (everything on the event loop: cheapest, for callbacks that never
    #: block), ``"thread"`` (plain callbacks on one thread of this actor's own, for
    #: libraries that need thread affinity) or ``"process"`` (a worker OS process).
    placement: ClassVar[str] = AUTO

    # -- callbacks (override) -------------------------------------------------------

    def init(self, args: Any) -> Any:
        """``init(Args)``: return ``Ok(state)``, ``IGNORE`` or ``Stop(reason)``."""
        return Ok(args)

    def handle_call(self, request: Any, from_: tuple[Pid, Any], state: Any) -> Any:
        """``handle_call(Request, From, State)``."""
        return Stop((Atom("bad_call"), request), state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        """``handle_cast(Request, State)``."""
        return Stop((Atom("bad_cast"), request), state)

    def handle_info(self, message: Any, state: Any) -> Any:
        """``handle_info(Info, State)``: by default logs and ignores the message."""
        log.warning("%s received unexpected message %r", self._proc.pid, message)
        return NoReply(state)

    def handle_continue(self, arg: Any, state: Any) -> Any:
        """``handle_continue(Arg, State)``."""
        return Stop((Atom("bad_continue"), arg), state)

    def terminate(self, reason: Any, state: Any) -> Any:
        """``terminate(Reason, State)``: runs on stop, crash, or exit from the parent
        while trapping exits (not when killed by an untrapped exit signal)."""
        return None

    def code_change(self, old_vsn: Any, state: Any, extra: Any) -> Any:
        """``code_change(OldVsn, State, Extra)`` after a hot upgrade moved this server to
        the reloaded class (``sys:change_code``): return ``Ok(new_state)``."""
        return Ok(state)

    def format_status(self, status: dict[str, Any]) -> dict[str, Any]:
        """``format_status(Status)`` (OTP 25+): what ``sys:get_status`` shows; gets and
        returns a dict with ``"state"`` and ``"log"``."""
        return status

    def _init_(self, args: Any) -> Any:
        # behaviours built on GenServer (Supervisor) wrap the user's init here
        return self.init(args)

    # -- for the callbacks ----------------------------------------------------------

    @property
    def process(self) -> Process:
        """This server's :class:`Process` (its ``self()`` context)."""
        return self._proc

    @property
    def pid(self) -> Pid:
        return self._proc.pid

    @property
    def runtime(self) -> Runtime:
        return self._proc.runtime

    def reply(self, from_: tuple[Pid, Any], value: Any) -> None:
        """``gen_server:reply(From, Reply)`` (deferred replies). From a callback running on
        a thread it is sent in order with the callback's other sends, and dropped if the
        process has been killed meanwhile."""
        proc = self._proc
        rt = proc.runtime
        if rt.on_loop():
            rt.reply_to(from_, value, proc.pid)
        else:
            rt.from_thread(_reply_if_alive, proc, from_, value)

    # -- starting -------------------------------------------------------------------

    @classmethod
    async def start(
        cls,
        args: Any = None,
        *,
        name: Atom | str | None = None,
        runtime: Runtime | None = None,
        timeout: float | None = None,
        parent: Pid | None = None,
        trap_exit: bool = False,
    ) -> Pid | None:
        """``gen_server:start``: the pid once ``init`` has returned, None on ``ignore``.

        Raises :class:`StartError` with OTP's reason (``{already_started, Pid}``, the
        ``Stop`` reason, the crash reason, ``timeout``).

        ``parent`` names the process this server treats as its parent (an
        ``{'EXIT', Parent, Reason}`` then runs ``terminate(Reason)``, as gen_server
        does for the process that started it) — for a server owned by a process of
        another node, such as an Erlang supervisor; ``trap_exit=True`` sets the flag
        before ``init`` runs (``process_flag(trap_exit, true)`` in ``init/1``).
        """
        return await cls._start(args, name, runtime, False, timeout, parent, trap_exit)

    @classmethod
    async def start_link(
        cls,
        args: Any = None,
        *,
        name: Atom | str | None = None,
        runtime: Runtime | None = None,
        timeout: float | None = None,
    ) -> Pid | None:
        """``gen_server:start_link``: as :meth:`start`, linked to the calling process.

        Outside any process there is nothing to link to and this is :meth:`start`.
        If ``init`` fails the link is removed before the new process exits, so the
        caller gets the :class:`StartError` and no exit signal.
        """
        return await cls._start(args, name, runtime, True, timeout)

    @classmethod
    async def _start(
        cls,
        args: Any,
        name: Any,
        runtime: Runtime | None,
        link: bool,
        timeout: float | None,
        parent: Pid | None = None,
        trap_exit: bool = False,
    ) -> Pid | None:
        caller = _maybe_current()
        if runtime is None:
            if caller is None:
                raise NotInProcess("start outside a process needs runtime=")
            runtime = caller.runtime
        elif caller is not None and caller.runtime is not runtime:
            caller = None
        setup = getattr(cls, "_placement_setup_", None)
        if setup is None or setup[0] is not cls:
            setup = _placement_setup(cls)
        placement = setup[1]
        if placement == "process":
            from .worker_placement import start_in_worker

            return await start_in_worker(
                cls, args, runtime=runtime, name=name, link_to=caller if link else None,
                timeout=timeout, parent=parent, trap_exit=trap_exit,
            )
        if name is not None:
            existing = runtime.whereis(name)
            if existing is not None:
                raise StartError((Atom("already_started"), existing))
        proc = runtime._add(caller, link=link and caller is not None)
        inst = cls()
        inst._proc = proc
        inst._state = None
        inst._timer = None
        inst._token = None
        inst._sys = None
        inst._off = setup[2]
        inst._drain = setup[3]
        inst._done = False
        inst._front = None
        inst._thread = (
            ActorThreads(f"actor{proc.pid.id}", idle_timeout=None, max_threads=1)
            if placement == THREAD
            else None
        )
        inst._parent = caller.pid if (link and caller is not None) else proc.pid
        if parent is not None:
            inst._parent = parent
        if trap_exit:
            proc.trap = True
        proc.behaviour = inst
        proc.status = RUNNING  # not scheduled until init is done
        if name is not None:
            runtime.register(name, proc.pid)
        token = _current.set(proc)
        res: Any
        try:
            if "init" in inst._off:
                res = inst._in_thread(inst._init_, args)
            else:
                res = inst._init_(args)
        except Exception as exc:
            res = _Raised(exc)
        finally:
            _current.reset(token)
        if inspect.isawaitable(res):
            res = await inst._await_init(res, timeout)
        return inst._after_init(res, caller)

    async def _await_init(self, coro: Any, timeout: float | None) -> Any:
        proc = self._proc
        rt = proc.runtime
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()

        async def run_init() -> None:
            try:
                value = await coro
            except Exception as exc:
                value = _Raised(exc)
            proc.task = None
            if not done.done():
                done.set_result(value)

        rt._start_task(proc, run_init())
        # the first of: init done, the process ended, the timeout (no extra task)
        death = rt.exit_future(proc.pid)
        first: asyncio.Future[None] = loop.create_future()

        def settle(_: Any = None) -> None:
            if not first.done():
                first.set_result(None)

        done.add_done_callback(settle)
        death.add_done_callback(settle)
        timer = None if timeout is None else loop.call_later(timeout, settle)
        try:
            await first
        finally:
            if timer is not None:
                timer.cancel()
            done.remove_done_callback(settle)
            if not death.done():
                rt.forget_exit_future(proc.pid, death)
        if done.done():
            return done.result()
        if proc.alive:  # timed out
            rt._exit_process(proc, KILLED)
            return _Failed(TIMEOUT)
        return _Failed(proc.reason)

    def _after_init(self, res: Any, caller: Process | None) -> Pid | None:
        proc = self._proc
        rt = proc.runtime
        t = type(res)
        if t is _Failed:
            raise StartError(res.reason)
        if not proc.alive:
            raise StartError(proc.reason)
        if t is Ok:
            self._state = res.state
            proc.status = IDLE
            if type(res.action) is Continue:
                proc.mailbox.put_front(_Internal("continue", res.action.arg))
            elif res.action is not None:
                self._set_timeout(res.action)
            if proc.mailbox:
                rt._enqueue(proc)
            return proc.pid
        if caller is not None and caller.links:
            rt._unlink(caller, proc.pid)
        if res == IGNORE:
            rt._exit_process(proc, NORMAL)
            return None
        if t is Stop:
            reason = res.reason
        elif t is _Raised:
            reason = reason_of(res.exc)
            log.error("%s crashed in init: %r", proc.pid, reason)
        elif t is _Failed:
            raise StartError(res.reason)
        else:
            reason = (_BAD_RETURN, res)
        rt._exit_process(proc, reason)
        raise StartError(reason)

    # -- the loop (driven by the runtime's scheduler) ----------------------------------

    def _handle(self, msg: Any) -> Any:
        """Handle one message. Returns None, or an awaitable continuing the work, or
        DETACHED when the message went to a thread with the ones queued behind it."""
        if self._drain and self._proc.runtime.on_loop():
            return self._start_batch(msg)
        self._cancel_timer()
        if self._sys is not None:  # suspended or debugged (sys)
            from .sys_protocol import PASS, intercept

            done = intercept(self, msg)
            if done is not PASS:
                return done
        t = type(msg)
        try:
            if t is tuple:
                n = len(msg)
                tag = msg[0]
                if n == 3 and tag == GEN_CALL:
                    from_ = msg[1]
                    if "handle_call" in self._off and not self._drain:
                        return self._after_async(
                            self._in_thread(self.handle_call, msg[2], from_, self._state), from_
                        )
                    res = self.handle_call(msg[2], from_, self._state)
                    if type(res) is Reply and res.action is None:
                        if self._proc.alive:  # a server killed in its handler sends nothing
                            self._proc.runtime.reply_to(from_, res.reply, self._proc.pid)
                        self._state = res.state
                        return None
                    return self._after(res, from_)
                if n == 2 and tag == GEN_CAST:
                    if "handle_cast" in self._off and not self._drain:
                        return self._after_async(
                            self._in_thread(self.handle_cast, msg[1], self._state), None
                        )
                    res = self.handle_cast(msg[1], self._state)
                    if type(res) is NoReply and res.action is None:
                        self._state = res.state
                        return None
                    return self._after(res)
                if n == 3 and tag == EXIT and msg[1] == self._parent and self._proc.trap:
                    return self._stop(msg[2], self._state)
                if n == 3 and tag == _SYSTEM:
                    return self._system(msg[1], msg[2])
            elif t is _Internal:
                return self._internal(msg)
            return self._after(self._callback("handle_info", msg, self._state))
        except Exception as exc:
            return self._crash(exc)

    def _callback(self, name: str, *args: Any) -> Any:
        """Call callback ``name`` where its placement says: its result, or an awaitable
        of it when it runs on a thread."""
        fn = getattr(self, name)
        if name in self._off and not self._drain:
            return self._in_thread(fn, *args)
        return fn(*args)

    def _inline_ready(self) -> bool:
        """Whether a local caller on the loop may run this idle server's ``handle_call``
        at once (python_actors.inline_call): it runs on the loop, is a plain function,
        and no ``sys`` suspension, debug hook or stop is in the way."""
        if (
            self._sys is not None
            or self._done
            or self._drain
            or self._front is not None
            or "handle_call" in self._off
        ):
            return False
        cls = type(self)
        capable: bool | None = cls.__dict__.get("_inline_capable_")
        if capable is None:
            capable = cls._handle is GenServer._handle and not inspect.iscoroutinefunction(
                cls.handle_call
            )
            type.__setattr__(cls, "_inline_capable_", capable)
        return capable

    # -- a synchronous server's messages, run on a thread in batches ---------------------

    def _start_batch(self, first: Any) -> Any:
        """Hand ``first`` and the messages queued behind it to a thread: one hop there
        and one back for the whole batch (casts cost no hop of their own)."""
        proc = self._proc
        batch = [first]
        mailbox = proc.mailbox
        while mailbox and len(batch) < _BATCH:
            batch.append(mailbox.popleft())
        ctx = contextvars.copy_context()
        ctx.run(_current.set, proc)
        pool = self._thread if self._thread is not None else proc.runtime.threads
        proc.job = pool.submit(self._run_batch, batch, context=ctx)
        return DETACHED

    def _run_batch(self, batch: list[Any]) -> None:
        """On the thread: the messages in order, as the loop would handle them; what they
        do to the runtime (replies, timers, the exit) is handed to the loop in order."""
        proc = self._proc
        rt = proc.runtime
        try:
            for i, msg in enumerate(batch):
                if self._done or not proc.alive:
                    return
                proc.reductions += 1
                pending = self._handle(msg)
                if pending is not None:  # async code reached from a plain callback
                    asyncio.run_coroutine_threadsafe(_awaited(pending), rt._loop_()).result()
                if self._front:  # messages to take first (sys:resume): end the batch here
                    front, self._front = self._front + batch[i + 1 :], None
                    rt.from_thread(self._put_front, front)
                    return
        finally:
            rt.from_thread(self._batch_done)

    def _requeue_front(self, messages: list[Any]) -> None:
        """Put ``messages`` back at the head of the mailbox, in order (``sys:resume``
        replaying what came while suspended); from a batch on a thread, the batch ends
        and its remaining messages follow them."""
        if self._proc.runtime.on_loop():
            self._put_front(messages)
        elif self._front is None:
            self._front = list(messages)
        else:
            self._front.extend(messages)

    def _put_front(self, messages: list[Any]) -> None:
        mailbox = self._proc.mailbox
        for msg in reversed(messages):
            mailbox.put_front(msg)

    def _batch_done(self) -> None:
        proc = self._proc
        proc.job = None
        proc.runtime.resume(proc)

    def _refresh_placement(self) -> None:
        """Where the callbacks run, recomputed after the class changed (hot upgrade)."""
        setup = _placement_setup(type(self))
        self._off = setup[2]
        self._drain = setup[3]

    def _cancel_timer(self) -> None:
        rt = self._proc.runtime
        if rt.on_loop():
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        elif self._token is not None:
            rt.from_thread(self._cancel_timer)

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on this actor's thread (placement ``thread``) or a pool
        thread, as this process; the loop stays free meanwhile. A kill interrupts it."""
        proc = self._proc
        ctx = contextvars.copy_context()
        ctx.run(_current.set, proc)
        pool = self._thread if self._thread is not None else proc.runtime.threads
        job = pool.run(fn, *args, context=ctx)
        proc.job = job
        try:
            return await job.waiter  # type: ignore[misc]
        finally:
            if proc.job is job:
                proc.job = None

    def _internal(self, msg: _Internal) -> Any:
        if msg.kind == "continue":
            return self._after(self._callback("handle_continue", msg.arg, self._state))
        if msg.kind == "stop":
            return self._stop(msg.arg, self._state)
        if msg.kind == "timeout" and msg.arg is self._token:
            return self._after(self._callback("handle_info", TIMEOUT, self._state))
        return None

    def _system(self, from_: Any, request: Any) -> Any:
        """``{system, From, Request}``: ``sys:handle_system_msg`` (see sys_protocol)."""
        from .sys_protocol import handle_system

        return handle_system(self, from_, request)

    def _after(self, res: Any, from_: Any = None) -> Any:
        if inspect.isawaitable(res):
            return self._after_async(res, from_)
        t = type(res)
        if t is NoReply:
            self._state = res.state
            return self._action(res.action)
        if t is Reply and from_ is not None:
            if self._proc.alive:
                self._proc.runtime.reply_to(from_, res.reply, self._proc.pid)
            self._state = res.state
            return self._action(res.action)
        if t is Stop:
            if res.reply is not _NOREPLY and from_ is not None and self._proc.alive:
                self._proc.runtime.reply_to(from_, res.reply, self._proc.pid)
            return self._stop(res.reason, res.state)
        return self._stop((_BAD_RETURN, res), self._state)

    async def _after_async(self, coro: Any, from_: Any) -> None:
        try:
            res = await coro
        except Killed:
            return  # killed while its callback ran: the runtime has ended the process
        except Exception as exc:
            nxt = self._crash(exc)
        else:
            nxt = self._after(res, from_)
        if nxt is not None:
            await nxt

    def _action(self, action: Any) -> Any:
        if action is None or action == HIBERNATE:
            return None
        if type(action) is Continue:
            try:
                return self._after(self._callback("handle_continue", action.arg, self._state))
            except Exception as exc:
                return self._crash(exc)
        if isinstance(action, (int, float)) and not isinstance(action, bool):
            self._set_timeout(action)
            return None
        return self._stop((_BAD_RETURN, action), self._state)

    def _set_timeout(self, seconds: float) -> None:
        token = self._token = object()
        self._proc.runtime.from_thread(self._arm_timer, seconds, _Internal("timeout", token))

    def _arm_timer(self, seconds: float, msg: _Internal) -> None:
        proc = self._proc
        if proc.alive and msg.arg is self._token:
            rt = proc.runtime
            self._timer = rt._loop_().call_later(max(seconds, 0), rt._deliver, proc, msg)

    def _crash(self, exc: BaseException) -> Any:
        return self._stop(reason_of(exc), self._state)

    def _stop(self, reason: Any, state: Any) -> Any:
        try:
            res = self._callback("terminate", reason, state)
        except Exception as exc:
            reason = reason_of(exc)
            res = None
        if inspect.isawaitable(res):
            return self._stop_async(res, reason)
        self._exit(reason)
        return None

    async def _stop_async(self, coro: Any, reason: Any) -> None:
        try:
            await coro
        except Killed:
            return
        except Exception as exc:
            reason = reason_of(exc)
        self._exit(reason)

    def _exit(self, reason: Any) -> None:
        if not is_clean_exit(reason):
            log.error(
                "GenServer %s (%s) terminating: %r", self._proc.pid, type(self).__name__, reason
            )
        self._done = True
        self._proc.runtime.from_thread(self._proc.runtime._exit_process, self._proc, reason)

    def _on_exit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._thread is not None:
            self._thread.close()
        if self._sys is not None:  # a sys log file
            self._sys.close()

    def _system_stop(self) -> None:
        """Runtime shutdown: terminate(shutdown) after the current message."""
        proc = self._proc
        proc.mailbox.put_front(_Internal("stop", SHUTDOWN))
        proc.runtime._enqueue(proc)


_BATCH = 256


def _placement_setup(cls: type) -> tuple[type, str, frozenset[str], bool]:
    """``(cls, placement, off-loop callbacks, drains in batches)`` for GenServer class
    ``cls``, checked once and cached on the class."""
    placement = getattr(cls, "placement", AUTO)
    if placement not in PLACEMENTS:
        raise ValueError(f"{cls.__name__}.placement must be one of {sorted(PLACEMENTS)}")
    setup = (cls, placement, off_loop_callbacks(cls), drains_in_thread(cls))
    type.__setattr__(cls, "_placement_setup_", setup)
    return setup


async def _awaited(pending: Any) -> None:
    await pending


class _Raised(NamedTuple):
    exc: BaseException


class _Failed(NamedTuple):
    reason: Any
