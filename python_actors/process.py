"""Processes: the handle a process's code uses, and the current-process context.

A process is either *coroutine-style* (``spawn(fn, *args)`` runs
``await fn(proc, *args)`` in one asyncio task for its whole life) or
*callback-style* (a :class:`~python_actors.GenServer`): it owns no task while idle;
a message delivered to it puts it on the runtime's run queue and the scheduler
calls its handler. A callback that is a coroutine function runs in a task of the
process until it returns.

Inside a process (its task, or one of its callbacks), :func:`current_process`
returns its :class:`Process`; this is Erlang's implicit ``self()``.

>>> import asyncio
>>> from python_actors import Runtime
>>> async def echo(proc):
...     sender, msg = await proc.receive()
...     proc.send(sender, msg)
>>> async def main():
...     async with Runtime() as rt:
...         async def client(proc):
...             pid = proc.spawn(echo)
...             proc.send(pid, (proc.self(), "hi"))
...             return await proc.receive()
...         return await rt.run(client)
>>> asyncio.run(main())
'hi'
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid, Reference

from .errors import BadArg, NotInProcess
from .mailbox import _RAISE, Mailbox, Match

if TYPE_CHECKING:
    from .runtime import Runtime
    from .threads import Job

__all__ = ["Process", "current_process"]

_current: ContextVar[Process | None] = ContextVar("python_actors.current", default=None)

# scheduler states of a callback-style process
IDLE = 0
QUEUED = 1
RUNNING = 2
BUSY = 3

#: returned by a behaviour's ``_handle`` whose work continues off the loop: the
#: process stays BUSY until the behaviour calls ``Runtime.resume``
DETACHED: Any = type("Detached", (), {"__repr__": lambda self: "DETACHED"})()


def current_process() -> Process:
    """The process whose code is running (Erlang's ``self()`` context).

    Raises :class:`NotInProcess` outside any process.
    """
    proc = _current.get()
    if proc is None:
        raise NotInProcess("not inside a process")
    return proc


def _maybe_current() -> Process | None:
    return _current.get()


class Process:
    """One process of a :class:`Runtime`, as seen by its own code.

    Methods mirror the BIFs of the same name and act *as this process* (sender of
    messages, owner of links and monitors).
    """

    __slots__ = (
        "pid",
        "runtime",
        "mailbox",
        "links",
        "monitors",
        "watchers",
        "trap",
        "alive",
        "task",
        "behaviour",
        "status",
        "name",
        "aliases",
        "parent",
        "reason",
        "job",
        "reductions",
    )

    def __init__(self, runtime: Runtime, pid: Pid, parent: Pid | None) -> None:
        self.pid = pid
        self.runtime = runtime
        self.mailbox = Mailbox()
        #: linked pid -> 0 (active) or the id of a pending remote unlink
        self.links: dict[Pid, int] | None = None
        #: monitors this process holds: ref -> target (pid or (name, node))
        self.monitors: dict[Reference, Any] | None = None
        #: monitors held on this process: ref -> (watcher pid, what DOWN names)
        self.watchers: dict[Reference, tuple[Pid, Any]] | None = None
        self.trap = False
        self.alive = True
        self.task: asyncio.Task[Any] | None = None
        self.behaviour: Any = None
        self.status = IDLE
        self.name: Atom | None = None
        self.aliases: set[Reference] | None = None
        self.parent = parent
        #: the exit reason, once dead
        self.reason: Any = None
        #: the thread job running this process's blocking code, if any (interrupted on kill)
        self.job: Job | None = None
        #: messages handled so far: the analogue of BEAM's reductions (process_info)
        self.reductions = 0

    def __repr__(self) -> str:
        return f"<Process {self.pid}{'' if self.alive else ' dead'}>"

    # -- identity -------------------------------------------------------------------

    def self(self) -> Pid:
        """``erlang:self()``."""
        return self.pid

    @property
    def trap_exit(self) -> bool:
        """``process_flag(trap_exit, Flag)``: exit signals become ``{'EXIT', From, Reason}``."""
        return self.trap

    @trap_exit.setter
    def trap_exit(self, flag: bool) -> None:
        self.trap = bool(flag)

    def is_alive(self) -> bool:
        """``erlang:is_process_alive(self())``."""
        return self.alive

    # -- messages -------------------------------------------------------------------

    def send(self, dest: Any, message: Any) -> Any:
        """``erlang:send(Dest, Msg)``: dest is a pid, a name, ``(name, node)`` or an alias.

        From a callback running on a thread the send is handed to the loop, in order,
        and dropped if this process has been killed meanwhile."""
        rt = self.runtime
        if rt.on_loop():
            rt._send(dest, message, self.pid)
        else:
            if type(dest) in (Atom, str) and rt.whereis(dest) is None:
                raise BadArg(f"no process registered as {dest}")
            rt.from_thread(_send_if_alive, self, dest, message)
        return message

    def send_after(self, seconds: float, dest: Any, message: Any) -> None:
        """``erlang:send_after(Time, Dest, Msg)``: send ``message`` from this process in
        ``seconds`` (dropped if this process is gone by then). Safe from any thread."""
        rt = self.runtime
        rt.call_on_loop(rt._loop_().call_later, max(seconds, 0), _send_if_alive, self, dest, message)

    async def receive(
        self, match: Match | None = None, timeout: float | None = None, default: Any = _RAISE
    ) -> Any:
        """Selective receive: the first message with ``match(msg)`` true (any if None).

        ``timeout`` in seconds (``after``): on expiry return ``default`` if given,
        else raise :class:`~python_actors.ReceiveTimeout`.
        """
        return await self.mailbox.receive(match, timeout, default)

    def messages(self) -> list[Any]:
        """``process_info(self(), messages)``."""
        return self.mailbox.messages()

    # -- processes ------------------------------------------------------------------

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
        """``spawn``: run ``await fn(proc, *args)`` in a new process."""
        return self.runtime.call_on_loop(self.runtime._spawn, fn, args, self, False)  # type: ignore[no-any-return]

    def spawn_link(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
        """``spawn_link``: spawn and link atomically."""
        return self.runtime.call_on_loop(self.runtime._spawn, fn, args, self, True)  # type: ignore[no-any-return]

    def spawn_monitor(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> tuple[Pid, Reference]:
        """``spawn_monitor``: spawn and monitor atomically; returns ``(pid, ref)``."""
        pid = self.runtime.call_on_loop(self.runtime._spawn, fn, args, self)
        return pid, self.monitor(pid)

    def link(self, pid: Pid) -> None:
        """``link/1``. A dead local pid sends this process an exit signal ``noproc``."""
        self.runtime.call_on_loop(self.runtime._link, self, pid)

    def unlink(self, pid: Pid) -> None:
        """``unlink/1`` (UNLINK_ID protocol for a remote pid)."""
        self.runtime.call_on_loop(self.runtime._unlink, self, pid)

    def monitor(self, target: Any) -> Reference:
        """``monitor(process, Target)``: a pid, a local name or ``(name, node)``.

        The DOWN message is ``(Atom('DOWN'), ref, Atom('process'), item, reason)``
        with item the pid, or ``(name, node)`` for a name. A target that does not
        exist gives DOWN ``noproc`` at once.
        """
        return self.runtime.call_on_loop(self.runtime._monitor, self, target)  # type: ignore[no-any-return]

    def demonitor(self, ref: Reference, flush: bool = False) -> bool:
        """``demonitor(Ref, [flush])``: with ``flush`` also drop a DOWN already queued.

        Returns True if the monitor was still active (``[info]``).
        """
        return self.runtime.call_on_loop(self.runtime._demonitor, self, ref, flush)  # type: ignore[no-any-return]

    def exit(self, pid: Any, reason: Any) -> None:
        """``exit(Pid, Reason)``: send an exit signal (``kill`` cannot be trapped)."""
        self.runtime.call_on_loop(self.runtime._exit2_from, self, pid, reason)

    def alias(self) -> Reference:
        """``alias()``: a reference that routes messages to this process until unaliased."""
        return self.runtime.call_on_loop(self.runtime._alias, self)  # type: ignore[no-any-return]

    def unalias(self, ref: Reference) -> bool:
        """``unalias(Alias)``."""
        return self.runtime.call_on_loop(self.runtime._unalias, self, ref)  # type: ignore[no-any-return]

    def register(self, name: Atom | str) -> None:
        """``register(Name, self())``."""
        self.runtime.call_on_loop(self.runtime.register, name, self.pid)


def _send_if_alive(proc: Process, dest: Any, message: Any) -> None:
    if proc.alive:
        try:
            proc.runtime._send(dest, message, proc.pid)
        except BadArg:
            pass  # the name went away between the thread's check and now
