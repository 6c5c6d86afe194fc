"""Python log records in a BEAM node's ``logger``.

:class:`BeamLogHandler` is a :class:`logging.Handler` that sends each record it
handles to the ``logger_proxy`` process of a BEAM node, the process OTP's own nodes
use for log events from other nodes (``logger_proxy:log/1``; OTP 21 and later). It
logs the event with ``logger:log(Level, "~ts", [Text], Meta)`` on that node, so the
record lands in the node's handlers and formatters, filtered by its primary level,
like any Erlang log event::

    handler = forward_logs(node, "app@127.0.0.1")
    logging.getLogger("my_app").warning("disk %d%% full", 91)

Levels map one to one (``CRITICAL`` -> ``critical``, ``ERROR`` -> ``error``,
``WARNING`` -> ``warning``, ``INFO`` -> ``info``, ``DEBUG`` -> ``debug``; levels in
between go to the next lower one). The metadata map carries ``node`` (the Python
node), ``python_logger`` (the record's logger name, a string), ``domain``
(``[beam_bridge, python]``) and, when the record was logged by an actor (a crash
report of a GenServer, say), ``pid``, ``registered_name`` and ``class`` (the actor's
class, ``module.QualName`` as an atom). The text is the message, followed by the traceback if any.

The handler never blocks and never recurses: ``emit`` only queues the record on the
node's event loop (from any thread); records logged while the handler itself is
sending are dropped; at most :data:`MAX_PER_SECOND` records a second go out, and the
number dropped beyond that is reported in the next record's metadata
(``dropped``). Records are lost, never queued without bound, when the BEAM node
cannot be reached.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom
from python_actors import current_process

from .naming import as_atom

if TYPE_CHECKING:
    from .node import Node

__all__ = ["MAX_PER_SECOND", "BeamLogHandler", "beam_level", "forward_logs"]

#: Records a handler sends per second at most; the rest are counted and dropped.
MAX_PER_SECOND = 200

_LOGGER_PROXY = Atom("logger_proxy")
_LOG = Atom("log")
_FORMAT = "~ts"
_DOMAIN = [Atom("beam_bridge"), Atom("python")]
_LEVELS = (
    (logging.CRITICAL, Atom("critical")),
    (logging.ERROR, Atom("error")),
    (logging.WARNING, Atom("warning")),
    (logging.INFO, Atom("info")),
)
_DEBUG = Atom("debug")


def beam_level(levelno: int) -> Atom:
    """The ``logger`` level for a Python level number."""
    for threshold, level in _LEVELS:
        if levelno >= threshold:
            return level
    return _DEBUG


class BeamLogHandler(logging.Handler):
    """Send log records to ``logger`` on the BEAM node ``target`` (see the module docs).

    ``node`` is the running :class:`bridge.Node` that sends them; ``level`` defaults
    to ``WARNING``.
    """

    def __init__(self, node: Node, target: str | Atom, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter("%(message)s"))
        self._node = node
        self._target = as_atom(target)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()
        self._window_start = 0.0
        self._sent_in_window = 0
        self.dropped = 0

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop the node runs on (found by :func:`forward_logs`)."""
        self._loop = loop

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._local, "busy", False):
            return  # a record logged while we send one: never recurse
        self._local.busy = True
        try:
            loop = self._loop
            if loop is None or loop.is_closed() or not self._node.running:
                return
            event = self._event(record)
            if _running_loop() is loop:
                self._send(event)
            else:
                loop.call_soon_threadsafe(self._send, event)
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False

    def _event(self, record: logging.LogRecord) -> tuple[Any, ...]:
        meta: dict[Atom, Any] = {
            Atom("node"): self._node.atom,
            Atom("python_logger"): _charlist(record.name),
            Atom("domain"): _DOMAIN,
            Atom("time"): int(record.created * 1_000_000),
        }
        proc = _current_process_or_none()
        if proc is not None and proc.runtime is self._node.runtime:
            meta[Atom("pid")] = proc.pid
            if proc.name is not None:
                meta[Atom("registered_name")] = proc.name
            if proc.behaviour is not None:
                cls = type(proc.behaviour)
                meta[Atom("class")] = Atom(f"{cls.__module__}.{cls.__qualname__}")
        text = self.format(record)
        return (_LOG, beam_level(record.levelno), _FORMAT, [text.encode("utf-8", "replace")], meta)

    def _send(self, event: tuple[Any, ...]) -> None:
        """On the node's loop: rate-limit, then send to ``{logger_proxy, Target}``."""
        if not self._node.running:
            return
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._sent_in_window = now, 0
        if self._sent_in_window >= MAX_PER_SECOND:
            self.dropped += 1
            return
        self._sent_in_window += 1
        if self.dropped:
            event[4][Atom("dropped")] = self.dropped
            self.dropped = 0
        self._local.busy = True
        try:
            self._node.router.send(self._node.runtime.system_pid, (_LOGGER_PROXY, self._target), event)
        except Exception:  # a record that cannot be sent is lost, never raised into the loop
            self.dropped += 1
        finally:
            self._local.busy = False


def forward_logs(
    node: Node,
    target: str | Atom,
    *,
    level: int = logging.WARNING,
    logger: logging.Logger | None = None,
) -> BeamLogHandler:
    """Attach a :class:`BeamLogHandler` for ``target`` to ``logger`` (the root logger
    by default) and return it; call from the node's event loop. Remove it with
    ``logger.removeHandler(handler)``."""
    handler = BeamLogHandler(node, target, level)
    handler.attach_loop(asyncio.get_running_loop())
    (logger or logging.getLogger()).addHandler(handler)
    return handler


def _charlist(text: str) -> list[int]:
    """An Erlang string: formatters print it as text (a binary would show as ``<<"...">>``)."""
    return [ord(ch) for ch in text]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _current_process_or_none() -> Any:
    try:
        return current_process()
    except Exception:
        return None
