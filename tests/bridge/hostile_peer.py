"""A hostile peer for tests: a raw socket driven by the sans-I/O handshake objects.

It plays whatever part a test needs (an impostor claiming another node's name, a
peer with the wrong cookie, a trickler, a peer that stops reading) against a real
:class:`bridge.Node` listening on loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from dist_proto.flags import DEFAULT_FLAGS
from dist_proto.framing import DistConnection
from dist_proto.handshake import (
    NEED_DATA,
    AliveQuery,
    ClientHandshake,
    HandshakeComplete,
    HandshakeRejected,
)

STEP_TIMEOUT = 10.0


class HostilePeer:
    """One connection to ``port``, claiming to be ``name`` with ``cookie``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hs: ClientHandshake) -> None:
        self.reader = reader
        self.writer = writer
        self.hs = hs
        self.conn: DistConnection | None = None
        self._discarder: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, port: int, name: str, cookie: str, *, rcvbuf: int | None = None) -> HostilePeer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        hs = ClientHandshake(name, cookie, flags=DEFAULT_FLAGS, creation=7)
        return cls(reader, writer, hs)

    def send_handshake_bytes(self) -> None:
        self.writer.write(self.hs.data_to_send())

    async def next_event(self) -> Any:
        """The next handshake event (sending what the handshake queued); None on EOF."""
        while True:
            event = self.hs.next_event()
            self.send_handshake_bytes()
            if event is not NEED_DATA:
                return event
            data = await asyncio.wait_for(self.reader.read(65536), STEP_TIMEOUT)
            if not data:
                return None
            self.hs.receive_data(data)

    async def handshake(self, *, answer_alive: bool = True) -> Any:
        """Run the handshake to its end: HandshakeComplete, HandshakeRejected or None (closed)."""
        while True:
            event = await self.next_event()
            if isinstance(event, AliveQuery):
                self.hs.answer_alive(answer_alive)
                continue
            if event is None or isinstance(event, (HandshakeComplete, HandshakeRejected)):
                if isinstance(event, HandshakeComplete):
                    self.conn = DistConnection(int(event.flags))
                    self.send_handshake_bytes()
                return event

    def stop_reading(self) -> None:
        """Read nothing more: the node's output towards us backs up (a frozen peer)."""
        self.writer.transport.pause_reading()

    def resume_reading(self) -> None:
        """Read (and discard) everything from now on."""
        self.writer.transport.resume_reading()
        self._discarder = asyncio.get_running_loop().create_task(self._discard())

    async def _discard(self) -> None:
        with contextlib.suppress(ConnectionError):
            while await self.reader.read(1 << 20):
                pass

    def send_control(self, control: tuple[Any, ...], payload: Any = None) -> None:
        assert self.conn is not None
        if payload is None:
            self.writer.write(self.conn.send_term(control))
        else:
            self.writer.write(self.conn.send_term(control, payload))

    async def closed_by_peer(self, timeout: float = STEP_TIMEOUT) -> bool:
        """Read until EOF; True when the node closed the connection."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        if self._discarder is not None:
            self._discarder.cancel()
            with contextlib.suppress(BaseException):
                await self._discarder
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
