"""Test one actor with no node (in the spirit of ergo's ``testing/unit``).

:class:`ActorTest` starts a GenServer in a private runtime, linked to a *test
process* that traps exits and monitors it. Drive it with calls, casts and plain
messages; look at what it sent (to anyone: replies included), its state, and its
exit reason.

>>> import asyncio
>>> from dist_proto.terms import Atom
>>> from python_actors import GenServer, NoReply, Ok
>>> class Pinger(GenServer):
...     def init(self, target):
...         return Ok(target)
...     def handle_cast(self, msg, target):
...         self.process.send(target, ("ping", msg))
...         return NoReply(target)
>>> async def main():
...     async with ActorTest(Pinger, "somebody") as t:
...         t.runtime.register("somebody", t.tester.pid)
...         t.cast(1)
...         return await t.sent_to("somebody")
>>> asyncio.run(main())
[('ping', 1)]
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from dist_proto.terms import ImproperList, Pid, Reference

from .errors import DOWN
from .gen_server import call, cast
from .process import Process, _current
from .runtime import Runtime

__all__ = ["ActorTest", "Sent"]


class Sent(tuple):  # type: ignore[type-arg]
    """A message the actor sent: ``(dest, message)``."""

    __slots__ = ()

    @property
    def dest(self) -> Any:
        return self[0]

    @property
    def message(self) -> Any:
        return self[1]


class _RecordingRuntime(Runtime):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.watched: Pid | None = None
        self.sent: list[Sent] = []

    def _send(self, dest: Any, message: Any, sender: Pid) -> None:
        if sender == self.watched and sender is not None:
            self.sent.append(Sent((dest, message)))
        super()._send(dest, message, sender)

    def _send_alias(self, alias: Reference, message: Any, sender: Pid) -> None:
        if sender == self.watched and sender is not None:
            self.sent.append(Sent((alias, message)))
        super()._send_alias(alias, message, sender)


class ActorTest:
    """Start ``behaviour`` with ``args`` under a test runtime; use ``async with``."""

    def __init__(
        self, behaviour: Any, args: Any = None, *, name: Any = None, node: str = "nonode@nohost"
    ) -> None:
        self.behaviour = behaviour
        self.args = args
        self.name = name
        self.runtime = _RecordingRuntime(node)
        self.pid: Pid | None = None
        self._mref: Reference | None = None
        self._tester: Process | None = None

    @property
    def tester(self) -> Process:
        """The test process: the actor's parent, linked, trapping exits."""
        assert self._tester is not None
        return self._tester

    async def __aenter__(self) -> ActorTest:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runtime.stop()

    async def start(self) -> Pid | None:
        """Start the actor (``start_link`` from the test process)."""
        rt = self.runtime
        tester = self._tester = rt._add(None)
        tester.trap = True
        token = _current.set(tester)
        try:
            self.pid = await self.behaviour.start_link(self.args, name=self.name)
        finally:
            _current.reset(token)
        if self.pid is not None:
            rt.watched = self.pid
            self._mref = tester.monitor(self.pid)
        return self.pid

    # -- driving ---------------------------------------------------------------------

    async def call(self, request: Any, timeout: float | None = 5.0) -> Any:
        """``gen_server:call`` from the test process."""
        return await call(self._target, request, timeout, runtime=self.runtime)

    def cast(self, request: Any) -> None:
        """``gen_server:cast``."""
        cast(self._target, request, runtime=self.runtime)

    def send(self, message: Any) -> None:
        """A plain message (``handle_info``), from the test process."""
        self.runtime._send(self._target, message, self.tester.pid)

    def exit(self, reason: Any) -> None:
        """``exit(Actor, Reason)`` from the test process (its parent)."""
        self.tester.exit(self._target, reason)

    @property
    def _target(self) -> Pid:
        assert self.pid is not None, "the actor did not start"
        return self.pid

    # -- observing -------------------------------------------------------------------

    async def settle(self, timeout: float = 5.0) -> None:
        """Let the scheduler run until the actor's mailbox is empty and it is idle, with
        no callback running on a thread either; give up after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for spins in itertools.count():
            await asyncio.sleep(0 if spins < 100 else 0.001)
            p = self.runtime.process(self._target)
            if p is None or (not p.mailbox and p.task is None and p.job is None and p.status == 0):
                return
            if loop.time() > deadline:
                return

    async def sent(self) -> list[Sent]:
        """Everything the actor has sent so far (after :meth:`settle`); calls'
        replies excluded. Clears the record."""
        await self.settle()
        out = [
            s
            for s in self.runtime.sent
            if not (type(s.message) is tuple and len(s.message) == 2 and _is_reply(s))
        ]
        self.runtime.sent.clear()
        return out

    async def sent_to(self, dest: Any) -> list[Any]:
        """The messages sent to ``dest`` (a pid, name, or alias), in order."""
        return [s.message for s in await self.sent() if s.dest == dest]

    @property
    def state(self) -> Any:
        """The actor's current state (peeking, for assertions)."""
        p = self.runtime.process(self._target)
        assert p is not None, "the actor is not alive"
        return p.behaviour._state

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.runtime.is_alive(self.pid)

    async def exit_reason(self, timeout: float = 5.0) -> Any:
        """Wait for the actor to end and return its exit reason."""
        ref = self._mref
        msg = await self.tester.receive(
            lambda m: type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] == ref,
            timeout,
        )
        return msg[4]

    def messages(self) -> list[Any]:
        """What the test process received (EXIT messages, messages sent to it)."""
        return self.tester.messages()


def _is_reply(s: Sent) -> bool:
    tag = s.message[0]
    return type(tag) is Reference or (type(s.dest) is Reference) or _is_alias_tag(tag)


def _is_alias_tag(tag: Any) -> bool:
    return type(tag) is ImproperList
