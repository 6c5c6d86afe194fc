"""System messages: OTP's ``sys`` module served by a Python GenServer, and its client side.

Theory of operation (OTP's sys.erl, ``sys:handle_system_msg/6``, and "sys and proc_lib"
in the OTP design principles). Every ``sys`` function is a ``gen:call`` labelled
``system``: the request ``{system, From, Msg}`` reaches :meth:`GenServer._system`, which
calls :func:`handle_system` here. The server's ``sys`` state (:class:`SysState`) is
created on the first request that needs it (suspend, a debug option); while it exists
every message passes through :func:`intercept` first:

- *suspended*: only system messages, an ``{'EXIT', Parent, Reason}`` of a trapping
  server and the runtime's own stop are handled; everything else waits in
  ``deferred``, in arrival order, and goes back to the head of the mailbox on resume;
- *debugged* (``statistics``, ``trace``, ``log``, ``log_to_file``): calls, casts and
  infos are recorded as OTP's gen_server records them (``{in, Msg}``, ``{out, Reply,
  From, State}``, ``{noreply, State}``) and printed as ``*DBG*`` lines when traced
  (:mod:`python_actors.sys_debug`).

Replies follow what a real gen_server gives on the caller's release (read from OTP 25
and OTP 28 nodes): ``get_state`` and ``replace_state`` answer the bare state before
stdlib 5.1 (OTP 26.1) and ``{ok, State}`` from then on, so for a caller on another node
the server asks that node's ``rex`` for its stdlib version once and remembers it; a
Python caller gets ``{ok, State}``. ``change_code`` is served only while suspended
(otherwise ``{error, {unknown_system_msg, Msg}}``, as OTP). A state with no Erlang form
never kills the server: a remote caller gets its readable form (:func:`erlang_form`).
``replace_state`` from Erlang carries an Erlang fun, which the server runs on the
caller's node (``rex``: ``erlang:apply(Fun, [State])``); from Python it is a callable.

>>> import asyncio
>>> from python_actors import GenServer, Runtime
>>> async def main():
...     async with Runtime() as rt:
...         pid = await GenServer.start({"n": 1}, runtime=rt)
...         await suspend(pid, runtime=rt)
...         status = await get_status(pid, runtime=rt)
...         await resume(pid, runtime=rt)
...         return status[3][1], await get_state(pid, runtime=rt)
>>> asyncio.run(main())
(Atom('suspended'), {'n': 1})
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto import encode
from dist_proto.terms import Atom, ExportFun, Fun, Pid

from . import gen_server as gs
from .errors import EXIT, ActorError, CallError, reason_of
from .gen_client import gen_call
from .process import _maybe_current
from .sys_debug import SysState, debug_command, debugged, state_of, term_text

if TYPE_CHECKING:
    from .gen_server import GenServer
    from .runtime import Runtime

__all__ = [
    "SysError",
    "SysState",
    "change_code",
    "erlang_form",
    "get_state",
    "get_status",
    "handle_system",
    "log",
    "log_to_file",
    "no_debug",
    "replace_state",
    "resume",
    "statistics",
    "suspend",
    "terminate",
    "trace",
]

_OK = Atom("ok")
_GET_STATE = Atom("get_state")
_GET_STATUS = Atom("get_status")
_SUSPEND = Atom("suspend")
_RESUME = Atom("resume")
_TERMINATE = Atom("terminate")
_REPLACE_STATE = Atom("replace_state")
_DEBUG = Atom("debug")
_CHANGE_CODE = Atom("change_code")
_ERROR = Atom("error")
_SYSTEM = Atom("system")
_RUNNING = Atom("running")
_SUSPENDED = Atom("suspended")
_UNKNOWN_SYSTEM_MSG = Atom("unknown_system_msg")
_UNKNOWN_DEBUG = Atom("unknown_debug")
_CALLBACK_FAILED = Atom("callback_failed")
_GEN_SERVER = Atom("gen_server")
_REX = Atom("rex")
_CALL = Atom("call")
_USER = Atom("user")
_BADRPC = Atom("badrpc")
_EXIT_CLASS = Atom("EXIT")
_PYTHON = Atom("$python")
_CLASS_KEY = Atom("__class__")
_FORM_DEPTH = 12
_REPR_MAX = 2000
_LATE_TAGS_MAX = 1024
_VERSION_QUERY_TIMEOUT = 2.0

#: Returned by :func:`intercept` when the message takes the server's normal path.
PASS: Any = object()


class SysError(ActorError):
    """A ``sys`` request answered ``{error, Reason}`` (as ``sys`` raises ``error(Reason)``)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


# -- the server side ----------------------------------------------------------------


def _is_system_path(server: GenServer, msg: Any) -> bool:
    """Messages a suspended server still handles: system messages, the parent's EXIT
    (trapping), the runtime's stop."""
    t = type(msg)
    if t is tuple and len(msg) == 3:
        tag = msg[0]
        if tag == _SYSTEM:
            return True
        return tag == EXIT and msg[1] == server._parent and server._proc.trap
    return t is gs._Internal and msg.kind == "stop"


def forget_reply(server: GenServer, tag: Any) -> None:
    """A call of this server ended (timeout, cancellation) with a plain reference tag,
    which unlike an alias cannot be deactivated: drop its reply if it comes later, so
    it never reaches ``handle_info`` (OTP 24+ behaviour)."""
    st = state_of(server)
    st.late_tags[tag] = None
    while len(st.late_tags) > _LATE_TAGS_MAX:
        del st.late_tags[next(iter(st.late_tags))]


def intercept(server: GenServer, msg: Any) -> Any:
    """Called by ``GenServer._handle`` while the server has a :class:`SysState`:
    defer (suspended), record (debugged), drop a late reply, or :data:`PASS` to the
    normal path."""
    st = server._sys
    if st is None or _is_system_path(server, msg):
        return PASS
    if st.late_tags and type(msg) is tuple and len(msg) == 2 and msg[0] in st.late_tags:
        del st.late_tags[msg[0]]
        if st.idle:
            server._sys = None
        return None
    if st.suspended:
        st.deferred.append(msg)
        return None
    if not st.debugging or type(msg) is gs._Internal:
        return PASS
    return debugged(server, st, msg)


def handle_system(server: GenServer, from_: Any, request: Any) -> Any:
    """``sys:handle_system_msg/6`` for a GenServer: answer ``request`` to ``from_``.

    Returns None, or an awaitable when the answer needs the caller's node (its
    ``sys`` version, or running an Erlang fun there) or ``code_change`` is async.
    """
    proc = server._proc
    rt = proc.runtime
    remote = type(from_) is tuple and len(from_) == 2 and type(from_[0]) is Pid and not rt.is_local(from_[0])

    def answer(value: Any) -> None:
        rt.reply_to(from_, erlang_form(value) if remote else value, proc.pid)

    if request == _GET_STATE:
        if remote:
            return _answer_state(server, from_, server._state)
        answer((_OK, server._state))
        return None
    if request == _GET_STATUS:
        answer(_status(server))
        return None
    if request == _SUSPEND:
        state_of(server).suspended = True
        answer(_OK)
        return None
    if request == _RESUME:
        _resume(server)
        answer(_OK)
        return None
    t = type(request)
    if t is tuple and len(request) == 2:
        tag, arg = request
        if tag == _TERMINATE:
            answer(_OK)  # sys:handle_system_msg replies before system_terminate runs
            if server._sys is not None:
                server._sys.close()
            return server._stop(arg, server._state)
        if tag == _REPLACE_STATE:
            return _replace_state(server, from_, arg, remote)
        if tag == _DEBUG:
            answer(debug_command(server, arg, remote))
            return None
    if t is tuple and len(request) == 4 and request[0] == _CHANGE_CODE:
        st = server._sys
        if st is not None and st.suspended:
            from .hot_upgrade import change_code as do_change_code

            return do_change_code(server, request[1], request[2], request[3], answer)
    answer((_ERROR, (_UNKNOWN_SYSTEM_MSG, request)))
    return None


def _resume(server: GenServer) -> None:
    st = server._sys
    if st is None:
        return
    st.suspended = False
    if st.deferred:
        server._requeue_front(list(st.deferred))
        st.deferred.clear()
    if st.idle:
        server._sys = None


async def _modern_sys(server: GenServer, node: Atom) -> bool:
    """Whether ``node``'s ``sys`` wants ``{ok, State}`` (stdlib 5.1, OTP 26.1, and later)."""
    st = state_of(server)
    known = st.modern_callers.get(node)
    if known is not None:
        return known
    request = (_CALL, Atom("application"), Atom("get_key"), [Atom("stdlib"), Atom("vsn")], _USER)
    modern = True
    try:  # well inside sys's own 5 s default, so the caller still gets its answer
        res = await gs.call((_REX, node), request, _VERSION_QUERY_TIMEOUT)
    except CallError:
        res = None
    if type(res) is tuple and len(res) == 2 and res[0] == _OK and isinstance(res[1], list):
        version = bytes(res[1]).decode("ascii", "replace")
        parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]]
        modern = tuple(parts) >= (5, 1)
    st.modern_callers[node] = modern
    return modern


async def _answer_state(server: GenServer, from_: Any, state: Any) -> None:
    proc = server._proc
    modern = await _modern_sys(server, from_[0].node)
    form = erlang_form(state)
    proc.runtime.reply_to(from_, (_OK, form) if modern else form, proc.pid)


def _callback_failed(cls: Atom, reason: Any) -> Any:
    return (_ERROR, (_CALLBACK_FAILED, (_GEN_SERVER, Atom("system_replace_state")), (cls, reason)))


def _replace_state(server: GenServer, from_: Any, fn: Any, remote: bool) -> Any:
    proc = server._proc
    if type(fn) in (Fun, ExportFun):
        if not remote:
            proc.runtime.reply_to(from_, _callback_failed(_ERROR, Atom("badfun")), proc.pid)
            return None
        return _replace_state_remote(server, from_, fn)
    try:
        if not callable(fn):
            raise TypeError(f"replace_state needs a callable, got {fn!r}")
        new_state = fn(server._state)
    except Exception as exc:
        reply = _callback_failed(_ERROR, reason_of(exc))
    else:
        server._state = new_state
        reply = (_OK, new_state)
    proc.runtime.reply_to(from_, erlang_form(reply) if remote else reply, proc.pid)
    return None


async def _replace_state_remote(server: GenServer, from_: Any, fun: Any) -> None:
    """Run the caller's Erlang fun on the caller's node: ``rex`` ``erlang:apply(Fun, [State])``."""
    proc = server._proc
    node = from_[0].node
    state = server._state
    try:
        encode(state)
    except Exception:
        reply: Any = _callback_failed(_ERROR, (Atom("no_erlang_form"), _type_name(state).encode()))
        proc.runtime.reply_to(from_, reply, proc.pid)
        return
    request = (_CALL, Atom("erlang"), Atom("apply"), [fun, [state]], _USER)
    try:
        res = await gs.call((_REX, node), request, 5.0)
    except CallError as exc:
        reply = _callback_failed(Atom("exit"), exc.why)
    else:
        if type(res) is tuple and len(res) == 2 and res[0] == _BADRPC:
            why = res[1]
            if type(why) is tuple and len(why) == 2 and why[0] == _EXIT_CLASS:
                inner = why[1]
                if type(inner) is tuple and len(inner) == 2 and isinstance(inner[1], list):
                    reply = _callback_failed(_ERROR, inner[0])
                else:
                    reply = _callback_failed(Atom("exit"), inner)
            else:
                reply = _callback_failed(Atom("exit"), why)
        else:
            server._state = res
            modern = await _modern_sys(server, node)
            reply = (_OK, res) if modern else res
    proc.runtime.reply_to(from_, reply, proc.pid)


def _status(server: GenServer) -> Any:
    """``{status, Pid, {module, gen_server}, [PDict, SysState, Parent, Debug, Misc]}``."""
    proc = server._proc
    st = server._sys
    cls = type(server)
    name = proc.name if proc.name is not None else proc.pid
    log_events = list(reversed(st.events)) if st is not None else []
    try:
        formatted = server.format_status({"state": server._state, "log": log_events})
        shown_state = formatted.get("state", server._state)
        shown_log = formatted.get("log", log_events)
    except Exception as exc:
        shown_state, shown_log = (Atom("format_status_crashed"), reason_of(exc)), log_events
    status = _SUSPENDED if st is not None and st.suspended else _RUNNING
    pdict = [
        (Atom("$initial_call"), (Atom(f"{cls.__module__}.{cls.__qualname__}"), Atom("init"), 1)),
        (Atom("$ancestors"), [server._parent] if server._parent != proc.pid else []),
    ]
    misc = [
        (Atom("header"), _charlist(f"Status for generic server {term_text(name)}")),
        (Atom("data"), [
            (_charlist("Status"), status),
            (_charlist("Parent"), server._parent),
            (_charlist("Logged events"), shown_log),
        ]),
        (Atom("data"), [(_charlist("State"), shown_state)]),
    ]
    debug = st.debug_options() if st is not None else []
    return (Atom("status"), proc.pid, (Atom("module"), _GEN_SERVER),
            [pdict, status, server._parent, debug, misc])


def _charlist(text: str) -> list[int]:
    return [ord(c) for c in text]


# -- readable forms -------------------------------------------------------------------


def _type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def erlang_form(value: Any) -> Any:
    """``value`` if it has an Erlang form; else a readable term standing for it.

    Tuples, lists, dicts and sets are converted element by element; a dataclass or an
    object with attributes becomes a map ``#{'__class__' => 'mod.Class', field => ...}``;
    anything else ``{'$python', <<"mod.Class">>, <<"repr">>}``. Never raises.
    """
    try:
        encode(value)
        return value
    except Exception:
        return _form(value, _FORM_DEPTH, set())


def _form(value: Any, depth: int, seen: set[int]) -> Any:
    try:
        encode(value)
        return value
    except Exception:
        pass
    if depth <= 0 or id(value) in seen:
        return _opaque(value)
    seen = seen | {id(value)}
    t = type(value)
    if t is tuple or isinstance(value, tuple):
        return tuple(_form(v, depth - 1, seen) for v in value)
    if isinstance(value, (list, deque, set, frozenset)):
        return [_form(v, depth - 1, seen) for v in value]
    if isinstance(value, dict):
        return {_key_form(k, depth, seen): _form(v, depth - 1, seen) for k, v in value.items()}
    fields = _fields(value)
    if fields is not None:
        out: dict[Any, Any] = {_CLASS_KEY: Atom(_type_name(value))}
        for k, v in fields.items():
            out[Atom(k)] = _form(v, depth - 1, seen)
        return out
    return _opaque(value)


def _key_form(key: Any, depth: int, seen: set[int]) -> Any:
    form = _form(key, depth - 1, seen)
    try:
        hash(form)
        return form
    except TypeError:
        return repr(key).encode("utf-8", "replace")


def _fields(value: Any) -> dict[str, Any] | None:
    if callable(value) or isinstance(value, type):
        return None
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict) and attrs:
        return {k: v for k, v in attrs.items() if not k.startswith("__")}
    slots = [s for c in type(value).__mro__ for s in getattr(c, "__slots__", ())]
    if slots and type(value).__module__ != "builtins":
        return {s: getattr(value, s) for s in slots if hasattr(value, s) and not s.startswith("__")}
    return None


def _opaque(value: Any) -> Any:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unprintable: {exc!r}>"
    return (_PYTHON, _type_name(value).encode(), text[:_REPR_MAX].encode("utf-8", "replace"))


# -- the client side (module sys) --------------------------------------------------------


async def _sys_call(server: Any, request: Any, timeout: float | None, runtime: Runtime | None) -> Any:
    """``gen:call(Server, system, Request, Timeout)`` (``sys:send_system_msg``)."""
    return await gen_call(server, request, timeout, runtime, _SYSTEM)


def _ok_value(res: Any) -> Any:
    if type(res) is tuple and len(res) == 2:
        if res[0] == _OK:
            return res[1]
        if res[0] == _ERROR:
            raise SysError(res[1])
    return res


def _ok(res: Any) -> None:
    if res != _OK:
        raise SysError(res[1] if type(res) is tuple and len(res) == 2 and res[0] == _ERROR else res)


async def get_state(server: Any, timeout: float | None = 5.0, *, runtime: Runtime | None = None) -> Any:
    """``sys:get_state(Name, Timeout)``: the server's state (the Python object)."""
    return _ok_value(await _sys_call(server, Atom("get_state"), timeout, runtime))


async def replace_state(
    server: Any, fn: Callable[[Any], Any], timeout: float | None = 5.0, *, runtime: Runtime | None = None
) -> Any:
    """``sys:replace_state(Name, Fun, Timeout)``: ``fn(state)`` becomes the state; returns it.

    Raises :class:`SysError` ``{callback_failed, {gen_server, system_replace_state},
    {error, Reason}}`` if ``fn`` raises (the state is then unchanged)."""
    return _ok_value(await _sys_call(server, (Atom("replace_state"), fn), timeout, runtime))


async def get_status(server: Any, timeout: float | None = 5.0, *, runtime: Runtime | None = None) -> Any:
    """``sys:get_status(Name, Timeout)``: ``{status, Pid, {module, gen_server}, [...]}``."""
    return await _sys_call(server, Atom("get_status"), timeout, runtime)


async def suspend(server: Any, timeout: float | None = 5.0, *, runtime: Runtime | None = None) -> None:
    """``sys:suspend(Name, Timeout)``: from now on only system messages are handled."""
    _ok(await _sys_call(server, Atom("suspend"), timeout, runtime))


async def resume(server: Any, timeout: float | None = 5.0, *, runtime: Runtime | None = None) -> None:
    """``sys:resume(Name, Timeout)``: handle the messages that waited, in order, then on."""
    _ok(await _sys_call(server, Atom("resume"), timeout, runtime))


async def change_code(
    server: Any,
    module: str | Atom,
    old_vsn: Any = None,
    extra: Any = None,
    timeout: float | None = 5.0,
    *,
    runtime: Runtime | None = None,
) -> None:
    """``sys:change_code(Name, Module, OldVsn, Extra, Timeout)`` on a suspended server:
    see :mod:`python_actors.hot_upgrade`."""
    module = module if type(module) is Atom else Atom(str(module))
    _ok(await _sys_call(server, (Atom("change_code"), module, old_vsn, extra), timeout, runtime))


async def terminate(
    server: Any, reason: Any, timeout: float | None = None, *, runtime: Runtime | None = None
) -> None:
    """``sys:terminate(Name, Reason, Timeout)``: ``terminate(reason, state)`` runs, the
    server exits. The server answers before it terminates, as OTP's do; for a server
    of this runtime this also waits until it has ended."""
    _ok(await _sys_call(server, (Atom("terminate"), reason), timeout, runtime))
    proc = _maybe_current()
    rt = runtime if runtime is not None else (proc.runtime if proc is not None else None)
    if rt is not None:
        pid = rt.whereis(server) if type(server) in (Atom, str) else server
        if type(pid) is Pid and rt.process(pid) is not None:
            await rt.join(pid, timeout)


async def _debug_call(server: Any, opt: Any, timeout: float | None, runtime: Runtime | None) -> Any:
    res = await _sys_call(server, (Atom("debug"), opt), timeout, runtime)
    if res == _UNKNOWN_DEBUG:
        raise SysError(res)
    return res


async def statistics(
    server: Any, flag: bool | str = "get", timeout: float | None = 5.0, *, runtime: Runtime | None = None
) -> Any:
    """``sys:statistics(Name, Flag)``: True/False, or ``"get"`` for the list (or ``no_statistics``)."""
    arg = Atom(flag) if isinstance(flag, str) else flag
    return _ok_value(await _debug_call(server, (Atom("statistics"), arg), timeout, runtime))


async def trace(server: Any, flag: bool, timeout: float | None = 5.0, *, runtime: Runtime | None = None) -> None:
    """``sys:trace(Name, Flag)``: print each event as a ``*DBG*`` line on standard error."""
    _ok(await _debug_call(server, (Atom("trace"), bool(flag)), timeout, runtime))


async def log(
    server: Any, flag: Any = "get", timeout: float | None = 5.0, *, runtime: Runtime | None = None
) -> Any:
    """``sys:log(Name, Flag)``: True, ``(True, N)``, False, ``"get"`` (the events), ``"print"``."""
    arg = Atom(flag) if isinstance(flag, str) else flag
    return _ok_value(await _debug_call(server, (Atom("log"), arg), timeout, runtime))


async def log_to_file(
    server: Any, path: str | bool, timeout: float | None = 5.0, *, runtime: Runtime | None = None
) -> None:
    """``sys:log_to_file(Name, FileName | false)``: append each event's ``*DBG*`` line."""
    _ok(await _debug_call(server, (Atom("log_to_file"), path), timeout, runtime))


async def no_debug(server: Any, timeout: float | None = 5.0, *, runtime: Runtime | None = None) -> None:
    """``sys:no_debug(Name)``: turn every debug option off."""
    _ok(await _debug_call(server, Atom("no_debug"), timeout, runtime))
