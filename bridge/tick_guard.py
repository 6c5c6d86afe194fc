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
from collections.abc import Callable, Iterable
from typing import Protocol

from python_actors.loop_monitor import LoopMonitor

__all__ = ["TickGuard"]

log = logging.getLogger("bridge.tick_guard")


class _Tickable(Protocol):
    def tick_from_thread(self) -> bool: ...


class TickGuard(LoopMonitor):
    """Watches ``loop`` (create it on the loop thread) and ticks ``peers()`` while it is held."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        peers: Callable[[], Iterable[_Tickable]],
        ticktime: float,
    ) -> None:
        self._peers_of = peers
        self._held_since: float | None = None
        #: ticks written from the guard's thread (for tests and diagnostics)
        self.ticks_sent = 0
        super().__init__(loop, max(min(ticktime / 4, 1.0), 0.05), "tick-guard")

    def check(self, beat: float, now: float) -> None:
        if now - beat < 2 * self._period:
            if self._held_since is not None:
                log.info("event loop free again; %d ticks were sent for it", self.ticks_sent)
            self._held_since = None
            return
        if self._held_since != beat:
            self._held_since = beat
            log.warning("event loop held for over %.1f s: the tick guard keeps the "
                        "connections alive", now - beat)
        try:
            # read from this thread while the loop is held; if the loop resumes and
            # changes the set meanwhile, try again on the next round
            peers = list(self._peers_of())
        except RuntimeError:
            return
        for peer in peers:
            try:
                if peer.tick_from_thread():
                    self.ticks_sent += 1
            except Exception:  # a closing transport: the loop will notice
                log.debug("tick from the guard failed", exc_info=True)
