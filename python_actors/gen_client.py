"""The client side of ``gen_server``: ``call`` (``gen:call/4`` as OTP 24+ makes it),
``cast``, ``reply`` and ``stop``, for Python processes and for code outside any process.

:mod:`python_actors.gen_server` re-exports them; the server side lives there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, ImproperList, Pid

from .errors import DOWN, NOCONNECTION, NORMAL, TIMEOUT, BadArg, CallError, Exit, NotInProcess
from .inline_call import NOT_YET, ready_server, run_inline, server_down
from .process import Process, _maybe_current

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["GEN_CALL", "GEN_CAST", "call", "cast", "gen_call", "reply", "stop"]

GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
_SYSTEM = Atom("system")
_ALIAS = Atom("alias")
_CALLING_SELF = Atom("calling_self")
_NODEDOWN = Atom("nodedown")
_NOREPLY: Any = object()  # no reply (yet): what a receive that timed out returns


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
    return await gen_call(server, request, timeout, runtime)


async def gen_call(
    server: Any, request: Any, timeout: float | None, runtime: Runtime | None, label: Atom = GEN_CALL
) -> Any:
    """``gen:call(Server, Label, Request, Timeout)`` from the current process, or from a
    short-lived one on ``runtime`` outside any process; ``label`` is ``'$gen_call'``
    (:func:`call`) or ``system`` (``sys``'s requests)."""
    proc, rt = _caller(runtime)
    if proc is not None:
        return await _call(proc, server, request, timeout, label)
    tmp = rt._add(None)
    try:
        return await _call(tmp, server, request, timeout, label)
    finally:
        rt._exit_process(tmp, NORMAL)


async def _call(
    proc: Process, server: Any, request: Any, timeout: float | None, label: Atom = GEN_CALL
) -> Any:
    """``gen:call/4`` as OTP 24+ makes it: monitor the server, tag the request with an
    alias (``[alias | Mref]``) when the server's node offers ALIAS (always for a local
    one), and whatever ends the call (reply, DOWN, timeout, cancellation, error) remove
    the monitor and the alias and drop a reply that raced in, so a late reply never
    reaches the caller's mailbox. ``label`` is ``'$gen_call'`` or ``system`` (sys)."""
    rt = proc.runtime
    wire_timeout = Atom("infinity") if timeout is None else int(timeout * 1000)
    target = server
    if type(server) in (Atom, str):
        target = rt.whereis(server)
        if target is None:
            raise CallError(Atom("noproc"), server, request, wire_timeout)
    if target == proc.pid:
        raise CallError(_CALLING_SELF, server, request, wire_timeout)
    local = type(target) is Pid and rt.is_local(target)
    node = target.node if type(target) is Pid else _as_node(target)
    server_now = ready_server(rt, proc, target, timeout) if local and label is GEN_CALL else None
    # A ready server's handler runs now, in this task: nothing can end it unseen before
    # it returns, so its monitor is only made if the reply is not there by then.
    monitored = server_now is None
    mref = rt._monitor(proc, target) if monitored else rt.make_ref()
    aliased = local or _supports_alias(rt, node)
    tag: Any = mref
    if aliased:
        rt._aliases[mref] = proc
        tag = ImproperList((_ALIAS,), mref)

    def match(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        n = len(m)
        if n == 2:
            h = m[0]
            return h is tag or h == tag
        return n == 5 and m[0] == DOWN and m[1] == mref

    msg: Any = _NOREPLY
    try:
        if server_now is not None:  # ready: its handler runs now (inline_call.py)
            msg = run_inline(rt, proc, server_now, (label, (proc.pid, tag), request), match)
            if msg is NOT_YET:
                msg = _NOREPLY
                ended = server_down(rt, proc, server_now, mref, target)
                if ended is None:
                    monitored = True  # the server lives on (a later reply): monitor it now
                else:
                    msg = ended
        else:
            try:
                rt._send(target, (label, (proc.pid, tag), request), proc.pid)
            except BadArg:
                pass
        if msg is _NOREPLY:
            msg = await proc.mailbox.receive(match, timeout, _NOREPLY)
    finally:
        if aliased:
            rt._aliases.pop(mref, None)
        if monitored and (msg is _NOREPLY or len(msg) == 2):  # not ended by DOWN: still up
            rt._demonitor(proc, mref, True)
        if msg is _NOREPLY:  # timeout, cancellation, error: drop a reply that raced in
            proc.mailbox.remove_all(lambda m: type(m) is tuple and len(m) == 2 and m[0] == tag)
            from .gen_server import GenServer  # (the server side imports this module)

            if not aliased and isinstance(proc.behaviour, GenServer):
                from .sys_protocol import forget_reply

                forget_reply(proc.behaviour, tag)  # and one that comes later
    if msg is _NOREPLY:
        raise CallError(TIMEOUT, server, request, wire_timeout)
    if len(msg) == 2:
        return msg[1]
    why = msg[4]
    if why == NOCONNECTION and not local:
        why = (_NODEDOWN, node)
    raise CallError(why, server, request, wire_timeout)


def _as_node(target: Any) -> Atom:
    node = target[1] if type(target) is tuple and len(target) == 2 else None
    return node if type(node) is Atom else Atom(str(node))


def _supports_alias(rt: Runtime, node: Atom) -> bool:
    query = getattr(rt.router, "supports_alias", None)  # routers older than the query
    return bool(query(node)) if query is not None else False


def cast(server: Any, request: Any, *, runtime: Runtime | None = None) -> None:
    """``gen_server:cast``: send ``('$gen_cast', request)``; never fails."""
    proc, rt = _caller(runtime)
    if not rt.on_loop():
        rt.from_thread(_cast_if_alive, proc, rt, server, request)
        return
    try:
        rt._send(server, (GEN_CAST, request), proc.pid if proc is not None else rt.system_pid)
    except BadArg:
        pass


def _cast_if_alive(proc: Process | None, rt: Runtime, server: Any, request: Any) -> None:
    if proc is not None and not proc.alive:
        return
    try:
        rt._send(server, (GEN_CAST, request), proc.pid if proc is not None else rt.system_pid)
    except BadArg:
        pass


def reply(from_: tuple[Pid, Any], value: Any, *, runtime: Runtime | None = None) -> None:
    """``gen_server:reply(From, Reply)``."""
    proc, rt = _caller(runtime)
    if not rt.on_loop():
        if proc is not None:
            rt.from_thread(_reply_if_alive, proc, from_, value)
        else:
            rt.from_thread(rt.reply_to, from_, value, None)
        return
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


def _reply_if_alive(proc: Process, from_: Any, value: Any) -> None:
    if proc.alive:
        proc.runtime.reply_to(from_, value, proc.pid)
