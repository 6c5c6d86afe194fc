"""Driving the sans-I/O handshake objects over a :class:`bridge.peer.DistProtocol`.

``dist_util:handshake_we_started/1`` is :func:`run_client`,
``dist_util:handshake_other_started/1`` is :func:`run_server`.

The whole handshake has one deadline, ``setuptime`` seconds from the start (BEAM's
``net_setuptime``, 7 by default): a peer that trickles one byte at a time cannot
keep a handshake, and the node name it claims, alive by re-arming a per-read
timer. When the peer closes the socket, the handshake object is told (its
``receive_eof``) and reports the state it was in; a close right after our
challenge reply means the peer rejected our digest, that is the cookie, and is
raised as :class:`~bridge.errors.CookieRejected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from dist_proto.errors import ProtocolError
from dist_proto.handshake import (
    NEED_DATA,
    AliveQuery,
    AliveReply,
    ClientHandshake,
    HandshakeClosed,
    HandshakeComplete,
    HandshakeRejected,
    Named,
    NameReceived,
    ServerHandshake,
    WrongCookie,
)

from .errors import CookieRejected, HandshakeFailed, SimultaneousConnect
from .peer import DistProtocol

__all__ = ["run_client", "run_server"]


class _Deadline:
    """When the whole handshake must be over (``net_setuptime`` from its start)."""

    __slots__ = ("at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = asyncio.get_running_loop().time() + seconds

    def remaining(self) -> float:
        return self.at - asyncio.get_running_loop().time()


async def _feed(protocol: DistProtocol, hs: ClientHandshake | ServerHandshake, deadline: _Deadline, who: str) -> None:
    remaining = deadline.remaining()
    try:
        if remaining <= 0:
            raise TimeoutError
        data = await asyncio.wait_for(protocol.read(), remaining)
    except TimeoutError:
        raise HandshakeFailed(who, f"handshake not complete in {deadline.seconds:g}s (net_setuptime)") from None
    if data:
        hs.receive_data(data)
    else:
        hs.receive_eof()


def _flush(protocol: DistProtocol, hs: ClientHandshake | ServerHandshake) -> None:
    protocol.write(hs.data_to_send())


async def _next_event(
    protocol: DistProtocol, hs: ClientHandshake | ServerHandshake, peer: str, deadline: _Deadline
) -> object:
    """Write what the handshake queued and return its next event, reading as needed.

    A protocol error still sends what was queued (an acceptor's ``not_allowed``).
    """
    while True:
        try:
            event = hs.next_event()
        except ProtocolError as exc:
            _flush(protocol, hs)
            raise _failure(peer, exc) from exc
        _flush(protocol, hs)
        if event is not NEED_DATA:
            return event
        await _feed(protocol, hs, deadline, peer)


def _failure(peer: str, exc: ProtocolError) -> HandshakeFailed:
    if isinstance(exc, HandshakeClosed) and exc.cookie_rejected:
        return CookieRejected(peer, str(exc))
    if isinstance(exc, WrongCookie):
        return CookieRejected(peer, str(exc), by_peer=False)
    return HandshakeFailed(peer, str(exc))



async def run_client(
    protocol: DistProtocol,
    hs: ClientHandshake,
    *,
    peer: str,
    setuptime: float,
    still_alone: Callable[[], bool] = lambda: True,
) -> tuple[HandshakeComplete, str | None]:
    """Run the initiator's side; returns the completion event and an assigned name (or None).

    The whole handshake must finish within ``setuptime`` seconds. ``still_alone()``
    answers status ``alive`` (``dist_util``'s ``is_pending``): true when we have no
    other connection to the peer, which tells it to replace its stale one."""
    assigned: str | None = None
    deadline = _Deadline(setuptime)
    while True:
        event = await _next_event(protocol, hs, peer, deadline)
        if isinstance(event, AliveQuery):
            alone = still_alone()
            hs.answer_alive(alone)
            _flush(protocol, hs)
            if not alone:
                raise SimultaneousConnect(peer)
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
    setuptime: float,
) -> HandshakeComplete:
    """Run the acceptor's side within ``setuptime`` seconds in all. ``decide`` picks
    the status for the peer's name.

    After status ``alive`` answered with ``true`` the handshake goes on while our
    existing connection to that name stays up: the caller replaces it only once the
    handshake completes, that is once the peer has proved the cookie (an impostor
    claiming a connected node's name must not cost that node its connection).
    """
    peer = "unknown peer"
    deadline = _Deadline(setuptime)
    while True:
        event = await _next_event(protocol, hs, peer, deadline)
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
            hs.proceed()
            _flush(protocol, hs)
        elif isinstance(event, HandshakeComplete):
            _flush(protocol, hs)
            return event
