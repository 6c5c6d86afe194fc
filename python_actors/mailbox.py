"""A process mailbox with selective receive, and a small pattern helper.

``receive(match)`` takes the *first* message for which ``match(msg)`` is true and
leaves every other message where it was, in order (Erlang's ``receive``). A
receiver waiting for a message is handed a matching one directly on delivery, so a
process blocked in ``receive`` holds no queue at all. The queue itself is created
on the first message that has to wait, so an idle, empty mailbox is one small
object.

A ``match`` that raises is treated as not matching.

>>> from dist_proto.terms import Atom
>>> is_exit = pattern((Atom("EXIT"), ANY, ANY))
>>> is_exit((Atom("EXIT"), 1, Atom("normal"))), is_exit((Atom("EXIT"), 1))
(True, False)
"""

from __future__ import annotations

import asyncio
import types
from collections import deque
from collections.abc import Callable
from typing import Any

from .errors import ReceiveTimeout

__all__ = ["ANY", "Mailbox", "Match", "pattern"]

Match = Callable[[Any], bool]


class _Any:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


#: Wildcard for :func:`pattern`: matches any term (Erlang's ``_``).
ANY: Any = _Any()

_EMPTY: Any = object()
_TIMED_OUT: Any = object()
_RAISE: Any = object()


def pattern(template: Any) -> Match:
    """A predicate matching terms shaped like ``template``.

    Tuples and lists match element-wise with the same length, ``ANY`` matches
    anything, a class matches its instances, a function is a predicate on the
    element (a guard), and any other value must be of the same type and equal
    (so ``1`` does not match ``1.0``, as with ``=:=``).
    """

    def check(tpl: Any, value: Any) -> bool:
        if tpl is ANY:
            return True
        t = type(tpl)
        if t is tuple or t is list:
            if type(value) is not t or len(value) != len(tpl):
                return False
            return all(check(a, b) for a, b in zip(tpl, value, strict=True))
        if isinstance(tpl, type):
            return isinstance(value, tpl)
        if isinstance(tpl, (types.FunctionType, types.BuiltinFunctionType)):
            return bool(tpl(value))
        return type(value) is t and bool(value == tpl)

    return lambda value: check(template, value)


def _matches(match: Match, msg: Any) -> bool:
    try:
        return bool(match(msg))
    except Exception:
        return False


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(_TIMED_OUT)


class Mailbox:
    """The message queue of one process."""

    __slots__ = ("_q", "_waiter", "_match")

    def __init__(self) -> None:
        self._q: deque[Any] | None = None
        self._waiter: asyncio.Future[Any] | None = None
        self._match: Match | None = None

    def __len__(self) -> int:
        q = self._q
        return 0 if q is None else len(q)

    def __bool__(self) -> bool:
        q = self._q
        return q is not None and len(q) > 0

    def messages(self) -> list[Any]:
        """A copy of the queued messages, oldest first (``process_info(P, messages)``)."""
        return [] if self._q is None else list(self._q)

    def put(self, msg: Any) -> None:
        """Deliver ``msg``: hand it to a waiting receiver it matches, else queue it."""
        w = self._waiter
        if w is not None:
            m = self._match
            if m is None or _matches(m, msg):
                self._waiter = None
                self._match = None
                if not w.done():
                    w.set_result(msg)
                    return
        q = self._q
        if q is None:
            q = self._q = deque()
        q.append(msg)

    def put_front(self, msg: Any) -> None:
        """Queue ``msg`` ahead of every other message (internal use)."""
        q = self._q
        if q is None:
            q = self._q = deque()
        q.appendleft(msg)

    def popleft(self) -> Any:
        """Take the oldest message; the queue must not be empty."""
        q = self._q
        assert q is not None
        msg = q.popleft()
        if not q:
            self._q = None
        return msg

    def take(self, match: Match | None = None) -> Any:
        """Remove and return the first message matching, or the module's ``_EMPTY``."""
        q = self._q
        if not q:
            return _EMPTY
        if match is None:
            msg = q.popleft()
        else:
            for i, msg in enumerate(q):
                if _matches(match, msg):
                    del q[i]
                    break
            else:
                return _EMPTY
        if not q:
            self._q = None
        return msg

    def remove_all(self, match: Match) -> int:
        """Drop every message matching (``demonitor(R, [flush])``); returns how many."""
        q = self._q
        if not q:
            return 0
        kept = [m for m in q if not _matches(match, m)]
        n = len(q) - len(kept)
        self._q = deque(kept) if kept else None
        return n

    def clear(self) -> None:
        """Drop everything and wake nobody (the process is gone)."""
        self._q = None
        w = self._waiter
        self._waiter = None
        self._match = None
        if w is not None and not w.done():
            w.cancel()

    async def receive(
        self, match: Match | None = None, timeout: float | None = None, default: Any = _RAISE
    ) -> Any:
        """Wait for the first message matching ``match``.

        ``timeout`` is in seconds (``None``: wait forever, ``0``: only look). When it
        expires, return ``default`` if given, else raise :class:`ReceiveTimeout`.
        """
        msg = self.take(match)
        if msg is not _EMPTY:
            return msg
        if timeout is not None and timeout <= 0:
            if default is _RAISE:
                raise ReceiveTimeout(timeout)
            return default
        if self._waiter is not None:
            raise RuntimeError("two concurrent receives on one mailbox")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._waiter = fut
        self._match = match
        handle = None if timeout is None else loop.call_later(timeout, _expire, fut)
        try:
            msg = await fut
        finally:
            if handle is not None:
                handle.cancel()
            if self._waiter is fut:
                self._waiter = None
                self._match = None
        if msg is _TIMED_OUT:
            if default is _RAISE:
                raise ReceiveTimeout(timeout)
            return default
        return msg
