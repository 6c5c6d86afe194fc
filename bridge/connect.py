"""Driving the sans-I/O handshake objects over a :class:`bridge.peer.DistProtocol`.

``dist_util:handshake_we_started/1`` is :func:`run_client`,
``dist_util:handshake_other_started/1`` is :func:`run_server`. Each step must finish
within ``net_setuptime`` seconds (BEAM's default is 7), as BEAM re-arms its timer per
step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from dist_proto.errors import ProtocolError
from dist_proto.handshake import (
    NEED_DATA,
    AliveQuery,
    AliveReply,
    ClientHandshake,
    HandshakeComplete,
    HandshakeRejected,
    Named,
    NameReceived,
    ServerHandshake,
)

from .errors import HandshakeFailed, SimultaneousConnect
from .peer import DistProtocol

__all__ = ["run_client", "run_server"]


async def _feed(protocol: DistProtocol, hs: ClientHandshake | ServerHandshake, setuptime: float, who: str) -> None:
    try:
        data = await asyncio.wait_for(protocol.read(), setuptime)
    except TimeoutError:
        raise HandshakeFailed(who, f"handshake step timed out after {setuptime:g}s") from None
    if not data:
        raise HandshakeFailed(who, "connection closed during the handshake")
    hs.receive_data(data)


def _flush(protocol: DistProtocol, hs: ClientHandshake | ServerHandshake) -> None:
    protocol.write(hs.data_to_send())


async def _next_event(
    protocol: DistProtocol, hs: ClientHandshake | ServerHandshake, peer: str, setuptime: float
) -> object:
    """Write what the handshake queued and return its next event, reading as needed.

    A protocol error still sends what was queued (an acceptor's ``not_allowed``).
    """
    while True:
        try:
            event = hs.next_event()
        except ProtocolError as exc:
            _flush(protocol, hs)
            raise HandshakeFailed(peer, str(exc)) from exc
        _flush(protocol, hs)
        if event is not NEED_DATA:
            return event
        await _feed(protocol, hs, setuptime, peer)


async def run_client(
    protocol: DistProtocol, hs: ClientHandshake, *, peer: str, setuptime: float
) -> tuple[HandshakeComplete, str | None]:
    """Run the initiator's side; returns the completion event and an assigned name (or None)."""
    assigned: str | None = None
    while True:
        event = await _next_event(protocol, hs, peer, setuptime)
        if isinstance(event, AliveQuery):
            # We only dial when we have no connection to the peer: tell it to drop its stale one.
            hs.answer_alive(True)
        elif isinstance(event, Named):
            assigned = event.name
        elif isinstance(event, HandshakeRejected):
            if event.status == "nok":
                raise SimultaneousConnect(peer)
            raise HandshakeFailed(peer, f"refused with status {event.status!r}")
        elif isinstance(event, HandshakeComplete):
            _flush(protocol, hs)
            return event, assigned


async def run_server(
    protocol: DistProtocol,
    hs: ServerHandshake,
    *,
    decide: Callable[[NameReceived], str],
    drop_old: Callable[[str], Awaitable[None]],
    setuptime: float,
) -> HandshakeComplete:
    """Run the acceptor's side. ``decide`` picks the status for the peer's name;
    ``drop_old`` closes our stale connection when the peer answers ``alive`` with true."""
    peer = "unknown peer"
    while True:
        event = await _next_event(protocol, hs, peer, setuptime)
        if isinstance(event, NameReceived):
            peer = event.name
            status = decide(event)
            hs.accept(status)
            _flush(protocol, hs)
            if status == "nok":
                raise SimultaneousConnect(peer)  # our own attempt (or another) goes on
            if status == "not_allowed":
                raise HandshakeFailed(peer, f"refused with status {status!r}")
        elif isinstance(event, AliveReply):
            if not event.alive:
                raise HandshakeFailed(peer, "peer kept its existing connection")
            await drop_old(peer)
            hs.proceed()
            _flush(protocol, hs)
        elif isinstance(event, HandshakeComplete):
            _flush(protocol, hs)
            return event
