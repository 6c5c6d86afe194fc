"""A thread that watches an asyncio event loop's heartbeat.

The loop stamps ``beat`` every ``period`` seconds from a timer; the monitor's thread
wakes every ``period`` and calls :meth:`LoopMonitor.check` with the last beat, so a
subclass can tell how long the loop has been held and act from outside it (the
watchdog names the holder, the tick guard keeps connections ticking). Create it on
the loop's thread; ``aclose()`` stops the timer and joins the thread.
"""

from __future__ import annotations

import asyncio
import threading
import time

__all__ = ["LoopMonitor"]


class LoopMonitor:
    """Base class: override :meth:`check`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float, name: str) -> None:
        self._loop = loop
        self._period = period
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._stop = threading.Event()
        self._timer: asyncio.Handle | None = loop.call_soon(self._heartbeat)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        if not self._stop.is_set():
            self._timer = self._loop.call_later(self._period, self._heartbeat)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.check(self._beat, time.monotonic())

    def check(self, beat: float, now: float) -> None:
        """Called from the monitor's thread every period with the loop's last beat."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Stop watching (the thread ends within one period)."""
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.to_thread(self._thread.join, 5)
