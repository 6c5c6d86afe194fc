"""The tick guard: the node keeps ticking while its event loop is held.

A BEAM peer drops a connection that has sent it nothing for ``net_ticktime``
seconds. Ticks are written by the node's event loop, so anything that holds the
loop for that long (a ``loop``-placed actor that blocks, an ``async def`` callback
calling blocking code, the program's own code on the node's loop) would cost every
connection. The guard is a thread of the node that watches the loop's heartbeat:
while the loop is held for more than a tick period it writes a tick (four zero
bytes) straight to each connection's socket, between whole frames only
(:meth:`bridge.peer.PeerConnection.tick_from_thread`). Reading waits for the loop;
the peer's own ticks wait in the kernel's buffer, and the connection judges the
peer's silence only once the loop has come round again.

TLS connections are not covered: their records are written by the loop. The
watchdog (``python_actors.watchdog``) names whatever held the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["TickGuard"]

log = logging.getLogger("bridge.tick_guard")


class _Tickable(Protocol):
    def tick_from_thread(self) -> bool: ...


class TickGuard:
    """Watches ``loop`` (create it on the loop thread) and ticks ``peers()`` while it is held."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        peers: Callable[[], Iterable[_Tickable]],
        ticktime: float,
    ) -> None:
        self._loop = loop
        self._peers_of = peers
        self._period = max(min(ticktime / 4, 1.0), 0.05)
        self._beat = time.monotonic()
        self._stop = threading.Event()
        #: ticks written from the guard's thread (for tests and diagnostics)
        self.ticks_sent = 0
        self._timer: asyncio.Handle | None = loop.call_soon(self._heartbeat)
        self._thread = threading.Thread(target=self._watch, name="tick-guard", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        self._beat = time.monotonic()
        if not self._stop.is_set():
            self._timer = self._loop.call_later(self._period, self._heartbeat)

    def _watch(self) -> None:
        held_since: float | None = None
        while not self._stop.wait(self._period):
            beat = self._beat
            if time.monotonic() - beat < 2 * self._period:
                if held_since is not None:
                    log.info("event loop free again; %d ticks were sent for it", self.ticks_sent)
                held_since = None
                continue
            if held_since != beat:
                held_since = beat
                log.warning("event loop held for over %.1f s: the tick guard keeps the "
                            "connections alive", time.monotonic() - beat)
            try:
                # read from this thread while the loop is held; if the loop resumes
                # and changes the set meanwhile, try again on the next round
                peers = list(self._peers_of())
            except RuntimeError:
                continue
            for peer in peers:
                try:
                    if peer.tick_from_thread():
                        self.ticks_sent += 1
                except Exception:  # a closing transport: the loop will notice
                    log.debug("tick from the guard failed", exc_info=True)

    async def aclose(self) -> None:
        """Stop the thread (within one period)."""
        self._stop.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.to_thread(self._thread.join, 5)
