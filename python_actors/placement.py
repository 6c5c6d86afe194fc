"""Placements: where an actor's code runs, so that user code never holds the loop.

The runtime, its signals and a node's connections live on one asyncio event
loop. An actor's *placement* says where its callbacks run instead:

=============  ============================  ===========================  ======================
placement      where callbacks run           what may block there         what ``kill`` does
=============  ============================  ===========================  ======================
``auto``       ``def``: a pool thread;       anything in a ``def``        dead at once for the
(default)      ``async def``: the loop       callback; nothing in an      cluster; pure Python
                                             ``async def`` one            interrupted, C calls
                                                                          finish and are dropped
``loop``       the event loop                nothing (cheapest)           dead at once; the
                                                                          callback is cancelled
                                                                          at its next ``await``
``thread``     one thread of the actor's     anything; same thread every  as ``auto``
               own                           time (thread affinity)
``process``    a worker OS process           anything, CPU-bound pure     SIGKILL of the worker,
                                             Python on its own core       which is replaced
=============  ============================  ===========================  ======================

"Dead at once" means what BEAM means: links and monitors fire ``killed``, the
registered name is free and a supervisor can start the replacement, even while
the killed code is still running; whatever that code produces later (replies,
sends) is dropped. :func:`run_blocking` runs one blocking call of an ``async``
actor off the loop (``await run_blocking(requests.get, url)``).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Callable
from typing import Any

from .errors import NotInProcess
from .process import _current, _maybe_current

__all__ = [
    "AUTO",
    "LOOP",
    "PLACEMENTS",
    "PROCESS",
    "THREAD",
    "call_blocking",
    "drains_in_thread",
    "off_loop_callbacks",
    "run_blocking",
]

AUTO = "auto"
LOOP = "loop"
THREAD = "thread"
PROCESS = "process"
PLACEMENTS = frozenset({AUTO, LOOP, THREAD, PROCESS})

#: gen_server callbacks that a placement may move off the loop
CALLBACKS = (
    "init",
    "handle_call",
    "handle_cast",
    "handle_info",
    "handle_continue",
    "terminate",
    "code_change",
    "format_status",
)


def off_loop_callbacks(cls: type) -> frozenset[str]:
    """The callbacks of GenServer subclass ``cls`` that run on a thread: every plain
    ``def`` callback the class defines itself (the base class's trivial defaults stay
    on the loop), unless its placement is ``loop``. Cached on the class."""
    cached: frozenset[str] | None = cls.__dict__.get("_off_loop_callbacks_")
    if cached is not None:
        return cached
    placement = getattr(cls, "placement", AUTO)
    names: set[str] = set()
    if placement != LOOP:
        base = _gen_server_base(cls)
        for name in CALLBACKS:
            fn = getattr(cls, name, None)
            if fn is None or fn is getattr(base, name, None):
                continue
            if inspect.iscoroutinefunction(fn):
                continue
            names.add(name)
        # a behaviour that wraps init itself (Supervisor) keeps it where it wraps it
        if getattr(cls, "_init_", None) is not getattr(base, "_init_", None):
            names.discard("init")
    frozen = frozenset(names)
    type.__setattr__(cls, "_off_loop_callbacks_", frozen)
    return frozen


def drains_in_thread(cls: type) -> bool:
    """Whether a server of ``cls`` handles its messages in batches on a thread: its
    placement is ``auto`` or ``thread`` and none of its callbacks is ``async``."""
    cached: bool | None = cls.__dict__.get("_drains_in_thread_")
    if cached is not None:
        return cached
    result = False
    if getattr(cls, "placement", AUTO) in (AUTO, THREAD):
        base = _gen_server_base(cls)
        overridden = [
            getattr(cls, name)
            for name in CALLBACKS
            if getattr(cls, name, None) is not getattr(base, name, None)
        ]
        result = bool(overridden) and not any(inspect.iscoroutinefunction(f) for f in overridden)
        if getattr(cls, "_handle", None) is not getattr(base, "_handle", None):
            result = False  # a behaviour with its own message loop
    type.__setattr__(cls, "_drains_in_thread_", result)
    return result


def _gen_server_base(cls: type) -> type:
    for klass in cls.__mro__:
        if klass.__name__ == "GenServer" and klass.__module__ == "python_actors.gen_server":
            return klass
    return object


async def run_blocking(fn: Callable[..., Any], *args: Any) -> Any:
    """Run the blocking ``fn(*args)`` on a pool thread and await its result; for
    ``async`` actors (``await run_blocking(time.sleep, 1)``).

    Inside a process, the call belongs to it: killing the process interrupts the
    call (pure Python at once, a C call when it returns) and its result is dropped.
    """
    proc = _maybe_current()
    if proc is None:
        raise NotInProcess("run_blocking outside a process: use asyncio.to_thread")
    ctx = contextvars.copy_context()
    job = proc.runtime.threads.run(fn, *args, context=ctx)
    previous = proc.job
    proc.job = job
    try:
        return await job.waiter  # type: ignore[misc]
    finally:
        if proc.job is job:
            proc.job = previous


def call_blocking(server: Any, request: Any, timeout: float | None = 5.0) -> Any:
    """``gen_server:call/3`` from a callback running on a thread (placement ``auto``
    or ``thread``, or inside :func:`run_blocking`): blocks that thread, never the loop.

    It is made by the calling process, as in Erlang: the reply is taken from its
    mailbox by selective receive.
    """
    proc = _current.get()
    if proc is None:
        raise NotInProcess("call_blocking outside a process")
    rt = proc.runtime
    if rt.on_loop():
        raise RuntimeError("call_blocking on the event loop would deadlock; await call() there")
    from .gen_client import _call

    future = asyncio.run_coroutine_threadsafe(_call(proc, server, request, timeout), rt._loop_())
    return future.result()
