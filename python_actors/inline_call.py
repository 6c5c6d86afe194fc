"""The inline local call: ``gen_server:call`` to a ready local server, without a
trip through the event loop.

A call between two local processes normally costs at least two loop iterations:
the request is queued in the server's mailbox and the scheduler runs it in a later
``call_soon`` pass, then the reply wakes the caller's task in another one. When
the server is *ready* — idle, its mailbox empty, its ``handle_call`` a plain
function that runs on the event loop (placement ``loop``, or an ``async`` server's
plain ``handle_call``), not suspended or debugged by ``sys`` — the request would be
the very next message it handles, and nothing can run on the loop in between. So
the caller runs the server's handler itself, at once, as that server
(:meth:`Runtime.handle_now`: ``self()``, reductions and the watchdog see the
server), and finds the reply already in its mailbox.

Everything else is the ordinary call (:func:`python_actors.gen_client._call`): the
alias is made first, the request is the same ``('$gen_call', From, Request)``
message, and the reply comes back through the same path. The monitor is made only
if the handler returns without a reply (:func:`server_down`): while the handler
runs in the caller's task nothing else runs, so the server cannot end unseen, and
a server that ended in its handler gives the caller the ``DOWN`` its monitor would
have given, with the server's exit reason. Hence the semantics are unchanged:

* ordering: a server with anything queued is not ready, so a request never
  overtakes a message sent to the server before it;
* a crash in ``handle_call`` ends the *server* (``terminate`` runs, links and
  monitors fire) and the caller gets the exit through its monitor, as
  ``{Reason, {gen_server, call, ...}}``;
* a server that kills itself, or that answers later (``NoReply`` and
  ``gen_server:reply``), is waited for on the mailbox with the caller's timeout,
  exactly as before; ``timeout=0`` never runs inline (OTP's call with a zero
  timeout cannot see a reply);
* a caller killed meanwhile (the handler sent it an exit signal) stops at once;
* fairness: at most 64 inline handles per loop iteration (the scheduler's budget
  per process and pass); the next call takes the ordinary path and so yields.

A server whose ``handle_call`` runs on a thread (placement ``auto`` with plain
callbacks, ``thread``, ``process``) is never run inline on the loop: that would put
user code on the loop, which the placements exist to prevent.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom

from .errors import DOWN
from .mailbox import _EMPTY, Match
from .process import IDLE, Process

if TYPE_CHECKING:
    from dist_proto.terms import Pid, Reference

    from .runtime import Runtime

__all__ = ["NOT_YET", "ready_server", "run_inline", "server_down"]

#: :func:`run_inline` found no reply yet: wait for it on the mailbox
NOT_YET: Any = object()

_PROCESS = Atom("process")


def ready_server(rt: Runtime, caller: Process, target: Pid, timeout: float | None) -> Process | None:
    """The local process ``target`` if a call from ``caller`` (running on the loop)
    may run its handler inline now, else None."""
    if timeout is not None and timeout <= 0:
        return None
    server = rt.process(target)
    if server is None or server is caller or server.status != IDLE or server.mailbox:
        return None
    ready = getattr(server.behaviour, "_inline_ready", None)
    if ready is None or not ready():
        return None
    return server if rt.may_handle_now() else None


def run_inline(rt: Runtime, caller: Process, server: Process, request: Any, match: Match) -> Any:
    """Run the ready ``server``'s handler for ``request`` (``('$gen_call', From,
    Req)``) now; return the message that ends the call (``(Tag, Reply)``, or the
    ``DOWN`` of the caller's monitor), taken from the caller's mailbox in the order
    it came, or :data:`NOT_YET`."""
    rt.handle_now(server, request)
    if not caller.alive:  # the handler sent the caller an exit signal that ended it
        raise asyncio.CancelledError
    msg = caller.mailbox.take(match)
    return NOT_YET if msg is _EMPTY else msg


def server_down(rt: Runtime, caller: Process, server: Process, mref: Reference, target: Pid) -> Any:
    """After an inline handler that left no reply: the ``DOWN`` message the caller's
    monitor would hold if ``server`` ended in it, else None once the monitor
    (``mref``) is made, to wait for a later reply as an ordinary call does."""
    if server.alive:
        rt._monitor(caller, target, mref)
        return None
    reason = server.reason
    if reason is None:  # its end is still being propagated: the monitor gets its DOWN
        rt._monitor(caller, target, mref)
        return None
    return (DOWN, mref, _PROCESS, target, reason)
