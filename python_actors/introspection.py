"""``erlang:process_info/2`` for the processes of a runtime.

The items are BEAM's, with the closest Python meaning:

=======================  ===============================================================
item                     value
=======================  ===============================================================
``registered_name``      the registered name, or ``[]`` (BEAM's value for none)
``message_queue_len``    messages waiting in the mailbox
``memory``               bytes: the process, its behaviour object and its queued
                         messages, shallow sizes (``sys.getsizeof``); an estimate
``reductions``           messages the process has handled (BEAM counts work units;
                         the order of magnitude and the growth are what tools use)
``current_function``     ``{Module, Function, Arity}``: the Python function at the top
                         of the process's stack when it runs on a thread or the loop,
                         else where it waits (``{Module, 'Class.idle', 0}``)
``initial_call``         ``{Module, 'Class.init', 1}`` for a GenServer, the coroutine
                         function for a coroutine process
``status``               ``running`` (a callback or its task is running), ``runnable``
                         (messages queued), ``waiting``
``links``, ``monitors``  pids linked; ``[{process, Pid | {Name, Node}}]`` monitored
``trap_exit``            the flag
=======================  ===============================================================

These are what ``etop``, ``observer`` and ``recon``-style tools read. Called on the
runtime's loop thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom

from .process import BUSY, QUEUED, RUNNING, Process

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["ITEMS", "process_info", "process_items"]

ITEMS = (
    "registered_name",
    "message_queue_len",
    "memory",
    "reductions",
    "current_function",
    "initial_call",
    "status",
    "links",
    "monitors",
    "trap_exit",
)

_PROCESS = Atom("process")


def process_info(runtime: Runtime, pid: Any) -> dict[str, Any] | None:
    """``erlang:process_info(Pid)``-like: every item above, or None for a dead pid."""
    proc = runtime.process(pid)
    if proc is None:
        return None
    return {item: _ITEM[item](proc) for item in ITEMS}


def process_items(runtime: Runtime, pid: Any, items: list[str]) -> list[tuple[Atom, Any]] | None:
    """``erlang:process_info(Pid, Items)``: ``[{Item, Value}]`` in the order asked; None
    for a dead pid. Unknown items raise ValueError (BEAM's ``badarg``)."""
    proc = runtime.process(pid)
    if proc is None:
        return None
    out = []
    for item in items:
        fn = _ITEM.get(item)
        if fn is None:
            raise ValueError(f"unknown process_info item {item!r}")
        out.append((Atom(item), fn(proc)))
    return out


def _module_of(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _memory(proc: Process) -> int:
    size = sys.getsizeof(proc) + sys.getsizeof(proc.mailbox)
    for msg in proc.mailbox.messages():
        size += sys.getsizeof(msg)
    if proc.behaviour is not None:
        size += sys.getsizeof(proc.behaviour)
        state = getattr(proc.behaviour, "_state", None)
        if state is not None:
            size += sys.getsizeof(state)
    return size


def _frame_function(frame: Any) -> tuple[Atom, Atom, int]:
    code = frame.f_code
    module = frame.f_globals.get("__name__", "?")
    return (Atom(module), Atom(getattr(code, "co_qualname", code.co_name)), code.co_argcount)


def _current_function(proc: Process) -> tuple[Atom, Atom, int]:
    job = proc.job
    if job is not None and job.thread is not None:
        frame = sys._current_frames().get(job.thread)
        if frame is not None:
            return _frame_function(frame)
    task = proc.task
    if task is not None and not task.done():
        coro: Any = task.get_coro()
        while coro is not None:  # the innermost coroutine it waits in
            inner = getattr(coro, "cr_await", None)
            if inner is None or not hasattr(inner, "cr_frame"):
                break
            coro = inner
        frame = getattr(coro, "cr_frame", None)
        if frame is not None:
            return _frame_function(frame)
    beh = proc.behaviour
    if beh is not None:
        return (Atom(type(beh).__module__), Atom(f"{type(beh).__qualname__}.idle"), 0)
    return (Atom("python_actors"), Atom("idle"), 0)


def _initial_call(proc: Process) -> tuple[Atom, Atom, int]:
    beh = proc.behaviour
    if beh is not None:
        return (Atom(type(beh).__module__), Atom(f"{type(beh).__qualname__}.init"), 1)
    task = proc.task
    if task is not None:
        coro: Any = task.get_coro()
        code = getattr(coro, "cr_code", None)
        if code is not None:
            frame = getattr(coro, "cr_frame", None)
            module = frame.f_globals.get("__name__", "?") if frame is not None else "python_actors"
            return (Atom(module), Atom(code.co_qualname), code.co_argcount)
    return (Atom("python_actors"), Atom("process"), 0)


def _status(proc: Process) -> Atom:
    if proc.status in (RUNNING, BUSY) or (proc.behaviour is None and proc.mailbox and proc.task):
        return Atom("running")
    if proc.status == QUEUED or proc.mailbox:
        return Atom("runnable")
    return Atom("waiting")


_ITEM: dict[str, Callable[[Process], Any]] = {
    "registered_name": lambda p: p.name if p.name is not None else [],
    "message_queue_len": lambda p: len(p.mailbox),
    "memory": _memory,
    "reductions": lambda p: p.reductions,
    "current_function": _current_function,
    "initial_call": _initial_call,
    "status": _status,
    "links": lambda p: list(p.links or ()),
    "monitors": lambda p: [(_PROCESS, t) for t in (p.monitors or {}).values()],
    "trap_exit": lambda p: p.trap,
}
