"""The debug side of ``sys`` for a GenServer: its :class:`SysState` and the debug options.

OTP's ``sys`` keeps a server's debug options in a list it threads through the loop
(``sys:handle_debug/4``, ``sys:debug_options/1``); here they live in the server's
:class:`SysState`, created by the first ``sys`` request that needs one. While a debug
option is on, :func:`debugged` dispatches calls, casts and infos itself so that it can
record them as gen_server does: ``{in, Msg}``, then ``{out, Reply, From, State}`` for a
reply or ``{noreply, State}``; ``statistics`` counts them, ``log`` keeps the last N,
``trace`` prints them and ``log_to_file`` appends them, as ``*DBG*`` lines in the words
of gen_server's ``print_event/3``. The results go through the server's usual
``_after``. Served by :mod:`python_actors.sys_protocol`.
"""

from __future__ import annotations

import datetime
import inspect
import sys
from collections import deque
from typing import IO, TYPE_CHECKING, Any

from dist_proto import format_term
from dist_proto.terms import Atom

from . import gen_server as gs

if TYPE_CHECKING:
    from .gen_server import GenServer

__all__ = ["SysState", "debug_command", "debugged", "format_event", "state_of", "term_text"]

_OK = Atom("ok")
_ERROR = Atom("error")
_UNKNOWN_DEBUG = Atom("unknown_debug")
_IN = Atom("in")
_OUT = Atom("out")
_NOREPLY = Atom("noreply")
_NO_STATISTICS = Atom("no_statistics")
_NOT_ALLOWED = Atom("not_allowed")
_DEFAULT_LOG_MAX = 10


def _local_time() -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``erlang:localtime()``: ``{{Y, M, D}, {H, Mi, S}}``."""
    t = datetime.datetime.now()
    return ((t.year, t.month, t.day), (t.hour, t.minute, t.second))


class SysState:
    """The ``sys`` side of one server: suspension and debug options (``sys:debug_options``)."""

    __slots__ = (
        "suspended", "deferred", "trace", "log_max", "events", "stats", "log_file",
        "modern_callers", "late_tags",
    )

    def __init__(self) -> None:
        self.suspended = False
        #: messages that arrived while suspended, oldest first
        self.deferred: deque[Any] = deque()
        self.trace = False
        self.log_max = 0  # 0: not logging
        self.events: deque[Any] = deque()
        #: [start_time, reductions, messages_in, messages_out] while statistics are on
        self.stats: list[Any] | None = None
        self.log_file: IO[str] | None = None
        #: node -> whether its ``sys`` wants ``{ok, State}`` (stdlib >= 5.1)
        self.modern_callers: dict[Atom, bool] = {}
        #: reply tags of calls that ended without an alias to cancel (oldest first)
        self.late_tags: dict[Any, None] = {}

    @property
    def idle(self) -> bool:
        """Nothing left for :func:`intercept` to do: the server may drop this state."""
        return not (self.suspended or self.deferred or self.debugging or self.modern_callers
                    or self.late_tags)

    @property
    def debugging(self) -> bool:
        return self.trace or self.log_max > 0 or self.stats is not None or self.log_file is not None

    def debug_options(self) -> list[Any]:
        """What ``get_status`` shows as the debug list (``[]`` when none)."""
        out: list[Any] = []
        if self.stats is not None:
            start, reds, n_in, n_out = self.stats
            out.append((Atom("statistics"), (start, (Atom("reductions"), reds), n_in, n_out)))
        if self.log_max:
            out.append((Atom("log"), [self.log_max, *reversed(self.events)]))
        if self.trace:
            out.append((Atom("trace"), True))
        if self.log_file is not None:
            out.append((Atom("log_to_file"), True))
        return out

    def close(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


def state_of(server: GenServer) -> SysState:
    """The server's :class:`SysState`, created on first use."""
    st: SysState | None = server._sys
    if st is None:
        st = server._sys = SysState()
    return st


def debugged(server: GenServer, st: SysState, msg: Any) -> Any:
    """Handle a call, cast or info of a debugged server, recording its events.

    The callback runs where the server's placement puts it (``GenServer._callback``),
    so a plain ``def`` of a server that mixes async and plain callbacks still runs
    off the loop while ``sys:trace``/``sys:log`` are on."""
    _event(server, st, (_IN, msg))
    try:
        if type(msg) is tuple and len(msg) == 3 and msg[0] == gs.GEN_CALL:
            from_ = msg[1]
            res = server._callback("handle_call", msg[2], from_, server._state)
        elif type(msg) is tuple and len(msg) == 2 and msg[0] == gs.GEN_CAST:
            from_ = None
            res = server._callback("handle_cast", msg[1], server._state)
        else:
            from_ = None
            res = server._callback("handle_info", msg, server._state)
    except Exception as exc:
        return server._crash(exc)
    if inspect.isawaitable(res):
        return _debugged_async(server, st, res, from_)
    _event_for_result(server, st, res, from_)
    return server._after(res, from_)


async def _debugged_async(server: GenServer, st: SysState, coro: Any, from_: Any) -> None:
    try:
        res = await coro
    except Exception as exc:
        nxt = server._crash(exc)
    else:
        _event_for_result(server, st, res, from_)
        nxt = server._after(res, from_)
    if nxt is not None:
        await nxt


def _event_for_result(server: GenServer, st: SysState, res: Any, from_: Any) -> None:
    t = type(res)
    if t is gs.Reply and from_ is not None:
        _event(server, st, (_OUT, res.reply, from_, res.state))
    elif t is gs.NoReply:
        _event(server, st, (_NOREPLY, res.state))
    elif t is gs.Stop and from_ is not None and res.reply is not gs._NOREPLY:
        _event(server, st, (_OUT, res.reply, from_, res.state))


def _event(server: GenServer, st: SysState, event: Any) -> None:
    """``sys:handle_debug/4``: count, log, trace, write to file."""
    if st.stats is not None:
        st.stats[1] += 1
        if event[0] == _IN:
            st.stats[2] += 1
        elif event[0] == _OUT:
            st.stats[3] += 1
    if st.log_max:
        st.events.appendleft(event)
        while len(st.events) > st.log_max:
            st.events.pop()
    if st.trace:
        print(format_event(server, event), file=sys.stderr, flush=True)
    if st.log_file is not None:
        st.log_file.write(format_event(server, event) + "\n")
        st.log_file.flush()


def term_text(term: Any) -> str:
    """``~tp``: the Erlang text of a term, or its repr when it has no Erlang form."""
    try:
        return format_term(term)
    except Exception:
        return repr(term)


def format_event(server: GenServer, event: Any) -> str:
    """A ``*DBG*`` line as gen_server's ``print_event/3`` writes it."""
    proc = server._proc
    who = term_text(proc.name if proc.name is not None else proc.pid)
    kind = event[0]
    if kind == _IN:
        msg = event[1]
        if type(msg) is tuple and len(msg) == 3 and msg[0] == gs.GEN_CALL:
            sender = msg[1][0] if type(msg[1]) is tuple and msg[1] else msg[1]
            return f"*DBG* {who} got call {term_text(msg[2])} from {term_text(sender)}"
        if type(msg) is tuple and len(msg) == 2 and msg[0] == gs.GEN_CAST:
            return f"*DBG* {who} got cast {term_text(msg[1])}"
        return f"*DBG* {who} got {term_text(msg)}"
    if kind == _OUT:
        to = event[2][0] if type(event[2]) is tuple and event[2] else event[2]
        return f"*DBG* {who} sent {term_text(event[1])} to {term_text(to)}, new state {term_text(event[3])}"
    if kind == _NOREPLY:
        return f"*DBG* {who} new state {term_text(event[1])}"
    return f"*DBG* {who} dbg {term_text(event)}"


def debug_command(server: GenServer, opt: Any, remote: bool) -> Any:
    """``sys:debug_cmd``: the reply to ``{debug, Opt}``."""
    st = state_of(server)
    reply: Any = _OK
    t = type(opt)
    if opt == Atom("no_debug"):
        st.close()
        st.trace, st.log_max, st.stats = False, 0, None
        st.events.clear()
    elif t is tuple and len(opt) == 2:
        what, arg = opt
        if what == Atom("trace") and type(arg) is bool:
            st.trace = arg
        elif what == Atom("log"):
            reply = _debug_log(server, st, arg)
        elif what == Atom("statistics"):
            reply = _debug_statistics(st, arg)
        elif what == Atom("log_to_file"):
            reply = _debug_log_to_file(st, arg, remote)
        else:
            reply = _UNKNOWN_DEBUG
    else:
        reply = _UNKNOWN_DEBUG
    if st.idle:
        server._sys = None
    return reply


def _debug_log(server: GenServer, st: SysState, arg: Any) -> Any:
    if arg is True:
        arg = (True, _DEFAULT_LOG_MAX)
    if type(arg) is tuple and len(arg) == 2 and arg[0] is True and type(arg[1]) is int and arg[1] > 0:
        st.log_max = arg[1]
        while len(st.events) > st.log_max:
            st.events.pop()
        return _OK
    if arg is False:
        st.log_max = 0
        st.events.clear()
        return _OK
    if arg == Atom("get"):
        return (_OK, list(reversed(st.events)))
    if arg == Atom("print"):
        for event in reversed(st.events):
            print(format_event(server, event), file=sys.stderr, flush=True)
        return _OK
    return _UNKNOWN_DEBUG


def _debug_statistics(st: SysState, arg: Any) -> Any:
    if arg is True:
        st.stats = [_local_time(), 0, 0, 0]
        return _OK
    if arg is False:
        st.stats = None
        return _OK
    if arg == Atom("get"):
        if st.stats is None:
            return (_OK, _NO_STATISTICS)
        start, reds, n_in, n_out = st.stats
        return (_OK, [
            (Atom("start_time"), start),
            (Atom("current_time"), _local_time()),
            (Atom("reductions"), reds),
            (Atom("messages_in"), n_in),
            (Atom("messages_out"), n_out),
        ])
    return _UNKNOWN_DEBUG


def _debug_log_to_file(st: SysState, arg: Any, remote: bool) -> Any:
    if arg is False:
        st.close()
        return _OK
    if remote:
        # another node may not make this node write files (as rpc, only what is allowed)
        return (_ERROR, (_NOT_ALLOWED, Atom("log_to_file")))
    if isinstance(arg, list):
        arg = "".join(chr(c) for c in arg)
    elif isinstance(arg, bytes):
        arg = arg.decode()
    st.close()
    try:
        st.log_file = open(str(arg), "a", encoding="utf-8")  # noqa: SIM115 (owned by SysState)
    except (OSError, TypeError, ValueError):
        return (_ERROR, Atom("open_file"))
    return _OK
