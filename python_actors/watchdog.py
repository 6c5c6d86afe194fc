"""The watchdog: names the actor that holds the event loop.

Every runtime operation, every connection of a node and every callback of a
``loop``-placed actor share one asyncio event loop. A callback that blocks it
(``time.sleep``, a long computation, a blocking client library inside an
``async def``) delays everything else, so the watchdog, a thread of the runtime,
looks at the loop's heartbeat; when the loop has not come round for longer than
``threshold`` seconds it logs a warning (logger ``python_actors.watchdog``) naming
the process that holds it (pid, registered name, class) with the stack of the
loop thread at that moment, and once the loop is free again, how long it was held.
The fix is another placement for that actor (see docs/placement.md) or
``await run_blocking(fn, ...)`` around the blocking call.

``Runtime(watchdog=seconds)`` sets the threshold (default 0.25 s); ``None``
turns the watchdog off.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from typing import TYPE_CHECKING, Any, NamedTuple

from .loop_monitor import LoopMonitor

if TYPE_CHECKING:
    from .process import Process
    from .runtime import Runtime

__all__ = ["Stall", "Watchdog"]

log = logging.getLogger("python_actors.watchdog")


class Stall(NamedTuple):
    """One report: who held the loop, and the loop thread's stack when it was seen."""

    pid: Any
    name: Any
    behaviour: str
    stack: str


class Watchdog(LoopMonitor):
    """Watches ``runtime``'s event loop from a thread; create it on the loop thread."""

    def __init__(self, runtime: Runtime, threshold: float) -> None:
        self._runtime = runtime
        self._threshold = threshold
        self._reported: float | None = None
        #: reports made so far, oldest first (for tests and for a health endpoint)
        self.stalls: list[Stall] = []
        super().__init__(runtime._loop_(), max(threshold / 4, 0.005), "python_actors-watchdog")

    def check(self, beat: float, now: float) -> None:
        held = now - beat - self._period
        if held > self._threshold:
            if self._reported != beat:
                self._reported = beat
                self._report(held)
        elif self._reported is not None and beat != self._reported:
            log.warning("event loop free again after %.2f s", beat - self._reported)
            self._reported = None

    def _holder(self) -> Process | None:
        rt = self._runtime
        running = rt._running
        if running is not None:
            return running
        task = asyncio.current_task(self._loop)
        if task is None:
            return None
        for p in list(rt._procs.values()):
            if p.task is task:
                return p
        return None

    def _report(self, held: float) -> None:
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)"
        proc = self._holder()
        if proc is None:
            stall = Stall(None, None, "", stack)
            log.warning(
                "event loop blocked for %.2f s outside any actor; stack of the loop thread:\n%s",
                held,
                stack,
            )
        else:
            beh = proc.behaviour
            cls = "" if beh is None else f"{type(beh).__module__}.{type(beh).__qualname__}"
            stall = Stall(proc.pid, proc.name, cls, stack)
            log.warning(
                "event loop blocked for %.2f s by %s (registered name %s, %s); give it the "
                "'thread' or 'process' placement or wrap the blocking call in "
                "run_blocking(). Stack of the loop thread:\n%s",
                held,
                proc.pid,
                proc.name,
                cls or "coroutine process",
                stack,
            )
        self.stalls.append(stall)
