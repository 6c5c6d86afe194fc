"""Exit reasons and exceptions of the actor runtime.

An exit reason is any Erlang term. The runtime uses these shapes, the same on the
wire as locally, so an Erlang engineer can pattern-match them::

    normal | shutdown | {shutdown, Term}      clean exits (supervisors do not log them)
    kill                                      exit(Pid, kill): untrappable
    killed                                    what a killed process exits with
    noproc | noconnection                     link/monitor on a dead pid / lost node
    {timeout, {gen_server, call, [S, R, T]}}  a gen_server call timed out (likewise
                                              {noproc, ...}, {Reason, ...} as in OTP)

A Python exception that escapes a process (not an :class:`Exit`) ends it with::

    {python_exception, <<"ValueError">>, <<"message">>, <<"Traceback ...">>}

that is ``(Atom('python_exception'), type_name, message, traceback)`` where the
type name is the class's qualified name (``b"ValueError"`` for builtins,
``b"myapp.errors.Boom"`` otherwise), and message and traceback are UTF-8 binaries.
Match it in Erlang with ``{python_exception, Type, Msg, _Trace}``.

Raising :class:`Exit` inside a process is ``erlang:exit(Reason)``: the process ends
with exactly that reason.

>>> from dist_proto.terms import Atom
>>> reason_of(ValueError("bad"))[:3]
(Atom('python_exception'), b'ValueError', b'bad')
"""

from __future__ import annotations

import traceback
from typing import Any

from dist_proto.terms import Atom

__all__ = [
    "EXIT",
    "DOWN",
    "KILL",
    "KILLED",
    "NOCONNECTION",
    "NOPROC",
    "NORMAL",
    "PYTHON_EXCEPTION",
    "SHUTDOWN",
    "TIMEOUT",
    "ActorError",
    "BadArg",
    "CallError",
    "Exit",
    "NotInProcess",
    "ReceiveTimeout",
    "StartError",
    "is_clean_exit",
    "reason_of",
]

NORMAL = Atom("normal")
SHUTDOWN = Atom("shutdown")
KILL = Atom("kill")
KILLED = Atom("killed")
NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")
TIMEOUT = Atom("timeout")
EXIT = Atom("EXIT")
DOWN = Atom("DOWN")
PYTHON_EXCEPTION = Atom("python_exception")


class ActorError(Exception):
    """Base of every exception this package raises."""


class Exit(ActorError):
    """``erlang:exit(Reason)``: raised inside a process it ends it with ``reason``."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class CallError(Exit):
    """A ``gen_server:call`` failed; ``reason`` is OTP's ``{Why, {gen_server, call, [S, R, T]}}``.

    ``why`` is the inner reason: ``timeout``, ``noproc``, ``noconnection``,
    ``calling_self`` or the exit reason of the server.
    """

    def __init__(self, why: Any, server: Any, request: Any, timeout: Any) -> None:
        super().__init__((why, (Atom("gen_server"), Atom("call"), [server, request, timeout])))
        self.why = why


class StartError(ActorError):
    """``start``/``start_link`` returned ``{error, Reason}``; ``reason`` holds Reason."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


class BadArg(ActorError):
    """The Erlang ``badarg`` error: e.g. send to an unregistered name, register a taken name."""


class NotInProcess(ActorError):
    """The operation needs a current process (or an explicit runtime) and has none."""


class ReceiveTimeout(ActorError, TimeoutError):
    """``receive ... after T`` expired and no default was given."""


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def reason_of(exc: BaseException) -> Any:
    """The exit reason for an exception that escaped a process (see the module doc)."""
    if isinstance(exc, Exit):
        return exc.reason
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (
        PYTHON_EXCEPTION,
        _type_name(exc).encode(),
        str(exc).encode("utf-8", "replace"),
        text.encode("utf-8", "replace"),
    )


def is_clean_exit(reason: Any) -> bool:
    """``normal``, ``shutdown`` or ``{shutdown, _}``: not restarted by ``transient``."""
    if reason == NORMAL or reason == SHUTDOWN:
        return True
    return type(reason) is tuple and len(reason) == 2 and reason[0] == SHUTDOWN
