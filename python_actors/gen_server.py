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
trapping server runs ``terminate(reason)``; ``sys:get_state`` is answered.

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
import inspect
import logging
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from dist_proto.terms import Atom, ImproperList, Pid

from .errors import (
    DOWN,
    EXIT,
    KILLED,
    NOCONNECTION,
    NORMAL,
    SHUTDOWN,
    TIMEOUT,
    BadArg,
    CallError,
    Exit,
    NotInProcess,
    StartError,
    is_clean_exit,
    reason_of,
)
from .process import IDLE, RUNNING, Process, _current, _maybe_current

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

GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
HIBERNATE = Atom("hibernate")
IGNORE = Atom("ignore")
_SYSTEM = Atom("system")
_ALIAS = Atom("alias")
_BAD_RETURN = Atom("bad_return_value")
_CALLING_SELF = Atom("calling_self")
_NODEDOWN = Atom("nodedown")
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

    __slots__ = ("_proc", "_state", "_parent", "_timer", "_token")

    _proc: Process
    _state: Any
    _parent: Pid
    _timer: asyncio.TimerHandle | None
    _token: Any

    #: where the callbacks run: "loop" (the node's event loop) or "process" (a worker
    #: OS process of its own, see python_actors.worker_placement)
    placement: ClassVar[str] = "loop"

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
        """``gen_server:reply(From, Reply)`` (deferred replies)."""
        self._proc.runtime.reply_to(from_, value, self._proc.pid)

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
        if cls.placement == "process":
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
        try:
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
        death = loop.create_task(rt.join(proc.pid))
        try:
            finished, _ = await asyncio.wait(
                {done, death}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            death.cancel()
        if done in finished:
            return done.result()
        if proc.alive:  # timed out
            rt._exit_process(proc, KILLED)
            return _Failed(TIMEOUT)
        return _Failed(proc.reason)

    def _after_init(self, res: Any, caller: Process | None) -> Pid | None:
        proc = self._proc
        rt = proc.runtime
        t = type(res)
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
        """Handle one message. Returns None, or an awaitable continuing the work."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        t = type(msg)
        try:
            if t is tuple:
                n = len(msg)
                tag = msg[0]
                if n == 3 and tag == GEN_CALL:
                    from_ = msg[1]
                    res = self.handle_call(msg[2], from_, self._state)
                    if type(res) is Reply and res.action is None:
                        self._proc.runtime.reply_to(from_, res.reply, self._proc.pid)
                        self._state = res.state
                        return None
                    return self._after(res, from_)
                if n == 2 and tag == GEN_CAST:
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
            return self._after(self.handle_info(msg, self._state))
        except Exception as exc:
            return self._crash(exc)

    def _internal(self, msg: _Internal) -> Any:
        if msg.kind == "continue":
            return self._after(self.handle_continue(msg.arg, self._state))
        if msg.kind == "stop":
            return self._stop(msg.arg, self._state)
        if msg.kind == "timeout" and msg.arg is self._token:
            return self._after(self.handle_info(TIMEOUT, self._state))
        return None

    def _system(self, from_: Any, request: Any) -> Any:
        rt = self._proc.runtime
        if request == Atom("get_state"):
            rt.reply_to(from_, self._state, self._proc.pid)
        elif type(request) is tuple and len(request) == 2 and request[0] == Atom("terminate"):
            rt.reply_to(from_, Atom("ok"), self._proc.pid)
            return self._stop(request[1], self._state)
        else:
            rt.reply_to(
                from_,
                (Atom("error"), (Atom("unknown_system_msg"), request)),
                self._proc.pid,
            )
        return None

    def _after(self, res: Any, from_: Any = None) -> Any:
        if inspect.isawaitable(res):
            return self._after_async(res, from_)
        t = type(res)
        if t is NoReply:
            self._state = res.state
            return self._action(res.action)
        if t is Reply and from_ is not None:
            self._proc.runtime.reply_to(from_, res.reply, self._proc.pid)
            self._state = res.state
            return self._action(res.action)
        if t is Stop:
            if res.reply is not _NOREPLY and from_ is not None:
                self._proc.runtime.reply_to(from_, res.reply, self._proc.pid)
            return self._stop(res.reason, res.state)
        return self._stop((_BAD_RETURN, res), self._state)

    async def _after_async(self, coro: Any, from_: Any) -> None:
        try:
            res = await coro
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
                return self._after(self.handle_continue(action.arg, self._state))
            except Exception as exc:
                return self._crash(exc)
        if isinstance(action, (int, float)) and not isinstance(action, bool):
            self._set_timeout(action)
            return None
        return self._stop((_BAD_RETURN, action), self._state)

    def _set_timeout(self, seconds: float) -> None:
        proc = self._proc
        token = self._token = object()
        msg = _Internal("timeout", token)
        rt = proc.runtime
        self._timer = rt._loop_().call_later(max(seconds, 0), rt._deliver, proc, msg)

    def _crash(self, exc: BaseException) -> Any:
        return self._stop(reason_of(exc), self._state)

    def _stop(self, reason: Any, state: Any) -> Any:
        try:
            res = self.terminate(reason, state)
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
        except Exception as exc:
            reason = reason_of(exc)
        self._exit(reason)

    def _exit(self, reason: Any) -> None:
        if not is_clean_exit(reason):
            log.error(
                "GenServer %s (%s) terminating: %r", self._proc.pid, type(self).__name__, reason
            )
        self._proc.runtime._exit_process(self._proc, reason)

    def _on_exit(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _system_stop(self) -> None:
        """Runtime shutdown: terminate(shutdown) after the current message."""
        proc = self._proc
        proc.mailbox.put_front(_Internal("stop", SHUTDOWN))
        proc.runtime._enqueue(proc)


class _Raised(NamedTuple):
    exc: BaseException


class _Failed(NamedTuple):
    reason: Any


# -- client API ------------------------------------------------------------------------


def _caller(runtime: Runtime | None) -> tuple[Process | None, Runtime]:
    proc = _maybe_current()
    if proc is not None and (runtime is None or proc.runtime is runtime) and proc.alive:
        return proc, proc.runtime
    if runtime is None:
        raise NotInProcess("outside a process pass runtime=")
    return None, runtime


async def call(
    server: Any, request: Any, timeout: float | None = 5.0, *, runtime: Runtime | None = None
) -> Any:
    """``gen_server:call(Server, Request, Timeout)``; timeout in seconds, None = infinity.

    ``server`` is a pid, a registered name or ``(name, node)``. Works inside a process
    (selective receive on its mailbox) or outside one (``runtime=`` needed). Raises
    :class:`CallError` whose ``reason`` is OTP's exit reason
    ``{Why, {gen_server, call, [Server, Request, Timeout]}}`` — ``Why`` is
    ``timeout``, ``noproc``, ``{nodedown, Node}`` or the server's exit reason.
    """
    proc, rt = _caller(runtime)
    if proc is not None:
        return await _call(proc, server, request, timeout)
    tmp = rt._add(None)
    try:
        return await _call(tmp, server, request, timeout)
    finally:
        rt._exit_process(tmp, NORMAL)


async def _call(proc: Process, server: Any, request: Any, timeout: float | None) -> Any:
    rt = proc.runtime
    wire_timeout = Atom("infinity") if timeout is None else int(timeout * 1000)
    target = server
    if type(server) in (Atom, str):
        target = rt.whereis(server)
        if target is None:
            raise CallError(Atom("noproc"), server, request, wire_timeout)
    if target == proc.pid:
        raise CallError(_CALLING_SELF, server, request, wire_timeout)
    mref = rt._monitor(proc, target)
    local = type(target) is Pid and rt.is_local(target)
    if local:
        rt._aliases[mref] = proc
        tag: Any = ImproperList((_ALIAS,), mref)
    else:
        tag = mref
    try:
        try:
            rt._send(target, (GEN_CALL, (proc.pid, tag), request), proc.pid)
        except BadArg:
            pass

        def match(m: Any) -> bool:
            if type(m) is not tuple:
                return False
            n = len(m)
            if n == 2:
                h = m[0]
                return h is tag or h == tag
            return n == 5 and m[0] == DOWN and m[1] == mref

        msg = await proc.mailbox.receive(match, timeout, _NOREPLY)
    finally:
        if local:
            rt._aliases.pop(mref, None)
    if msg is _NOREPLY:
        rt._demonitor(proc, mref, True)
        raise CallError(TIMEOUT, server, request, wire_timeout)
    if len(msg) == 2:
        rt._demonitor(proc, mref, True)
        return msg[1]
    why = msg[4]
    if why == NOCONNECTION and not local:
        node = target.node if type(target) is Pid else target[1]
        why = (_NODEDOWN, node)
    raise CallError(why, server, request, wire_timeout)


def cast(server: Any, request: Any, *, runtime: Runtime | None = None) -> None:
    """``gen_server:cast``: send ``('$gen_cast', request)``; never fails."""
    proc, rt = _caller(runtime)
    try:
        rt._send(server, (GEN_CAST, request), proc.pid if proc is not None else rt.system_pid)
    except BadArg:
        pass


def reply(from_: tuple[Pid, Any], value: Any, *, runtime: Runtime | None = None) -> None:
    """``gen_server:reply(From, Reply)``."""
    proc, rt = _caller(runtime)
    rt.reply_to(from_, value, proc.pid if proc is not None else None)


async def stop(
    server: Any,
    reason: Any = NORMAL,
    timeout: float | None = None,
    *,
    runtime: Runtime | None = None,
) -> None:
    """``gen_server:stop(Server, Reason, Timeout)``: run ``terminate`` and wait for the end.

    Raises :class:`Exit` with ``noproc`` if there is no such server, ``timeout`` if it
    does not end in time, or the reason it ended with if that is not ``reason``.
    """
    proc, rt = _caller(runtime)
    owner = proc if proc is not None else rt._add(None)
    try:
        mref = rt._monitor(owner, server)
        try:
            rt._send(server, (_SYSTEM, (owner.pid, mref), (Atom("terminate"), reason)), owner.pid)
        except BadArg:
            pass

        def is_down(m: Any) -> bool:
            return type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == mref

        msg = await owner.mailbox.receive(is_down, timeout, _NOREPLY)
        if msg is _NOREPLY:
            rt._demonitor(owner, mref, True)
            raise Exit(TIMEOUT)
        # drop the ok reply to the system message
        owner.mailbox.remove_all(lambda m: type(m) is tuple and len(m) == 2 and m[0] == mref)
        if msg[4] != reason:
            raise Exit(msg[4])
    finally:
        if proc is None:
            rt._exit_process(owner, NORMAL)
