"""One distribution connection to one remote node: handshake I/O, framing, ticks.

Theory of operation
-------------------
This implements the I/O half of OTP's ``erl_dist_protocol`` ("Distribution
Handshake" and "Protocol between Connected Nodes"); the protocol itself lives in
:mod:`dist_proto.handshake` and :mod:`dist_proto.framing`, which own no socket.

A :class:`DistProtocol` is an ``asyncio.Protocol`` with two phases. During the
handshake, bytes are queued for the coroutine that drives the handshake object
(:func:`bridge.connect.dial` / :func:`bridge.connect.accept`), bounded by
``net_setuptime`` per step as BEAM does. Once the handshake is complete the
protocol switches to the connected phase: every ``data_received`` feeds the
:class:`dist_proto.framing.DistConnection` and hands each decoded control message
straight to the node's router (no task per message, no per-message await).

Ticks follow ``net_kernel``: every ``net_ticktime / 4`` a timer checks the link; if we
wrote nothing in that interval we send a tick; if we have read nothing for
``net_ticktime`` (plus a quarter, like BEAM's tick cycle) the peer is declared dead
and the connection closes with reason ``net_tick_timeout``. Every tick received is
answered with a tick, as erl_interface and jinterface do.

No message is delivered before the handshake completes; a protocol error from the
peer closes this connection alone. An exception raised while dispatching one of
the peer's messages is logged and that message dropped; the event loop never sees
it.

Backpressure is a busy distribution port, as BEAM's ``dist_buf_busy_limit``: the
transport's write buffer has a high-water mark (``busy_limit``, 1 MiB by default)
and a low-water mark at half of it. Above the high mark the connection is *busy*:
:meth:`PeerConnection.wait_writable` suspends async senders until the buffer drains
below the low mark (or the connection dies). Writes themselves never block, so
the synchronous paths (the actor router) still write, and their bytes count
towards the same mark. When the connection dies with frames still buffered,
:attr:`PeerConnection.unsent_frames` says how many were lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dist_proto.errors import DecodeError, ProtocolError
from dist_proto.framing import DEFAULT_MAX_FRAME, DistConnection, Tick
from dist_proto.mapping import Mapping
from dist_proto.terms import Atom

if TYPE_CHECKING:
    from dist_proto.control import Control

__all__ = ["DEFAULT_BUSY_LIMIT", "DistProtocol", "PeerConnection"]

log = logging.getLogger("bridge.peer")

#: Bytes of unsent output above which a connection is busy (OTP's ``dist_buf_busy_limit``).
DEFAULT_BUSY_LIMIT = 1024 * 1024


class DistProtocol(asyncio.Protocol):
    """The asyncio side of one connection, before and after the handshake."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed_exc: BaseException | None = None
        self.closed = False
        self.peer: PeerConnection | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None:
            peer._on_data(data)
            return
        self._chunks.append(data)
        self._wake()

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer._on_pause()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer._on_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._closed_exc = exc
        self._wake()
        if not self.lost.done():
            self.lost.set_result(None)
        if self.peer is not None:
            self.peer._on_lost(exc)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- handshake phase ------------------------------------------------------------

    async def read(self) -> bytes:
        """The next chunk of bytes during the handshake; b'' when the peer closed."""
        while not self._chunks:
            if self.closed:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._chunks.popleft()

    def write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def take_buffered(self) -> bytes:
        """Bytes that arrived during the handshake and were not consumed yet."""
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True


class PeerConnection:
    """An established connection to ``name``: send control messages, receive into ``dispatch``.

    ``dispatch(peer, control)`` is called for every control message; ``on_close(peer,
    reason)`` once when the connection ends (for ``nodedown``).
    """

    def __init__(
        self,
        protocol: DistProtocol,
        *,
        name: Atom,
        creation: int,
        flags: int,
        dispatch: Callable[[PeerConnection, Control], None],
        on_close: Callable[[PeerConnection, Any], None],
        ticktime: float,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_reassembly: int | None = None,
        busy_limit: int = DEFAULT_BUSY_LIMIT,
        mapping: Mapping | None = None,
    ) -> None:
        self.name = name
        self.creation = creation
        self.flags = flags
        self.protocol = protocol
        assert protocol.transport is not None
        self.transport: asyncio.Transport = protocol.transport
        self.conn = DistConnection(
            flags, max_frame=max_frame, max_reassembly=max_reassembly, mapping=mapping
        )
        if busy_limit < 1:
            raise ValueError("busy_limit must be positive")
        self.busy_limit = busy_limit
        self._dispatch = dispatch
        self._on_close = on_close
        self.ticktime = ticktime
        self._loop = asyncio.get_running_loop()
        now = time.monotonic()
        self._last_read = now
        self._wrote = False
        self._out: list[bytes] = []  # frames written this event-loop iteration
        self._flush_pending = False  # a _flush_batch is scheduled for this iteration
        self._flushed_early = False  # a write(now=True) went out early this iteration
        self.open = True
        self.close_reason: Any = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed: asyncio.Future[Any] = self._loop.create_future()
        self.busy = False  # output above the high-water mark
        self.busy_count = 0  # times the connection became busy
        self.dispatch_errors = 0
        self.unsent_frames = 0  # frames lost when the connection died (set then)
        self.unsent_bytes = 0
        self._writable: list[asyncio.Future[None]] = []
        # Output accounting: (cumulative bytes handed to the transport, frames in
        # that write) for every write not yet known to be on the wire.
        self._written_total = 0
        self._out_bytes = 0
        self._buffered_at_last_look = 0
        self._batches: deque[tuple[int, int]] = deque()
        # Writes to the transport hold this lock, so that the tick guard's thread can
        # put a tick between two whole frames while the loop is held (tick_guard.py).
        self._write_lock = threading.Lock()
        self._last_tick_check = time.monotonic()
        self._plain_socket = self.transport.get_extra_info("sslcontext") is None

    def start(self, leftover: bytes) -> None:
        """Switch the protocol to the connected phase and process early frames."""
        self.protocol.peer = self
        self.transport.set_write_buffer_limits(high=self.busy_limit, low=self.busy_limit // 2)
        early = leftover + self.protocol.take_buffered()
        self._schedule_tick()
        if early:
            self._on_data(early)
        if self.protocol.closed:
            self._on_lost(None)

    def __repr__(self) -> str:
        return f"<PeerConnection {self.name.name} {'open' if self.open else 'closed'}>"

    # -- receiving ------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        if not self.open:
            return
        self._last_read = time.monotonic()
        conn = self.conn
        conn.receive_data(data)
        dispatch = self._dispatch
        drain = conn.drain
        while True:
            try:
                events = drain()
            except (ProtocolError, DecodeError) as exc:
                log.warning("closing connection to %s: %s", self.name.name, exc)
                self.close(("protocol_error", str(exc)))
                return
            except Exception as exc:  # a decoder bug must cost this connection only
                log.exception("closing connection to %s: cannot decode its data", self.name.name)
                self.close(("protocol_error", repr(exc)))
                return
            if not events:
                return
            for control in events:
                if isinstance(control, Tick):
                    self.write(conn.tick_bytes())
                    continue
                try:
                    dispatch(self, control)
                except Exception:
                    self._dispatch_failed(control)
                if not self.open:
                    return

    def _dispatch_failed(self, control: Any) -> None:
        """Contain an exception raised while handling one of the peer's messages:
        log it (with the traceback the first time on this connection) and drop it."""
        self.dispatch_errors += 1
        what = type(control).__name__
        if self.dispatch_errors == 1:
            log.exception("dropped a %s from %s: handling it failed", what, self.name.name)
        else:
            log.warning("dropped a %s from %s: handling it failed (%d so far)", what, self.name.name, self.dispatch_errors)

    def _on_lost(self, exc: BaseException | None) -> None:
        self._finish(Atom("connection_closed") if exc is None else ("connection_lost", str(exc)))

    # -- sending --------------------------------------------------------------------

    def write(self, data: bytes, *, now: bool = False) -> None:
        """Queue whole frames; they go out in one ``transport.write`` per loop iteration.

        ``now`` (a message, which a caller may be waiting on the answer to): the
        first such frame of a loop iteration goes out at once, with the frames
        queued before it (a call's MONITOR_P and its SEND in one write), so a round
        trip does not wait for the next iteration; the frames after it in the same
        iteration are batched as usual."""
        if self.open:
            with self._write_lock:
                out = self._out
                if not out:
                    self._out_bytes = 0
                if not self._flush_pending:
                    self._flush_pending = True
                    self._wrote = True
                    self._loop.call_soon(self._flush_batch)
                out.append(data)
                self._out_bytes += len(data)
                early = now and not self._flushed_early
                if early:
                    self._flushed_early = True
                burst = self._out_bytes + self._buffered_at_last_look > self.busy_limit
            if early or burst:
                # Early: see above. Burst: crossing the busy mark within one loop
                # iteration; hand it to the transport now, so that the mark sees it
                # (pause_writing fires).
                self._flush()

    def _flush_batch(self) -> None:
        """The once-per-iteration flush that :meth:`write` schedules."""
        self._flush_pending = False
        self._flushed_early = False
        self._flush()

    def _flush(self) -> None:
        with self._write_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        out = self._out
        if not out:
            return
        frames = len(out)
        data = out[0] if frames == 1 else b"".join(out)
        out.clear()
        if not self.open:
            return
        self.transport.write(data)
        self._written_total += len(data)
        self._note_buffered(frames)

    def _note_buffered(self, frames: int) -> None:
        buffered = self.transport.get_write_buffer_size()
        self._buffered_at_last_look = buffered
        if buffered:
            self._batches.append((self._written_total, frames))
        elif self._batches:
            self._batches.clear()

    def write_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Write one message given as chunks (:mod:`bridge.arrays`): after the frames
        queued this iteration, each chunk handed to the transport as it is, never
        joined, so a view of an array's memory reaches the socket without a copy."""
        if not self.open:
            return
        with self._write_lock:
            self._flush_locked()
            if not self.open:
                return
            for chunk in chunks:
                self.transport.write(chunk)
                self._written_total += len(chunk)
            self._wrote = True
            self._note_buffered(1)

    def tick_from_thread(self) -> bool:
        """Write a tick from another thread while the loop is held (the tick guard).

        The frames queued for this loop iteration go first, then the tick, straight to
        the socket; only when the transport's own buffer is empty (so the stream is
        between frames) and with the loop's writes excluded by the lock. Not for TLS,
        whose records the loop writes. Returns True if a tick went out."""
        if not self.open or not self._plain_socket:
            return False
        with self._write_lock:
            if self.transport.get_write_buffer_size():
                return False
            sock = self.transport.get_extra_info("socket")
            if sock is None:
                return False
            data = b"".join(self._out) + b"\0\0\0\0"
            try:
                n = os.write(sock.fileno(), data)
            except BlockingIOError:
                n = 0
            except OSError:
                return False
            had_queue = bool(self._out)
            self._out.clear()
            self._written_total += n
            if n < len(data):
                self._out.append(data[n:])  # the loop sends the rest, in order
                if not had_queue:
                    self._loop.call_soon_threadsafe(self._flush)
            return n > 0

    # -- backpressure -----------------------------------------------------------------

    def _on_pause(self) -> None:
        if not self.busy:
            self.busy = True
            self.busy_count += 1
            log.debug("connection to %s is busy (%d bytes unsent)", self.name.name, self.write_buffer_size())

    def _on_resume(self) -> None:
        self.busy = False
        self._prune_batches()
        self._wake_writers()

    def _wake_writers(self) -> None:
        waiters, self._writable = self._writable, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def wait_writable(self) -> None:
        """Return once the connection is not busy (at once if it is not), or closed.

        This is where an async sender is suspended on a busy distribution port."""
        while self.busy and self.open:
            waiter = self._loop.create_future()
            self._writable.append(waiter)
            await waiter

    def _prune_batches(self) -> None:
        buffered = self.transport.get_write_buffer_size()
        self._buffered_at_last_look = buffered
        on_the_wire = self._written_total - buffered
        batches = self._batches
        while batches and batches[0][0] <= on_the_wire:
            batches.popleft()

    def _count_unsent(self) -> None:
        """Frames (messages and signals) whose bytes were not all written when the
        connection died; measured now if the transport still holds its buffer, else
        from the last look at it (an upper bound)."""
        buffered = self.transport.get_write_buffer_size() or self._buffered_at_last_look
        on_the_wire = self._written_total - buffered
        frames = sum(n for end, n in self._batches if end > on_the_wire) if buffered else 0
        self.unsent_frames = frames + len(self._out)
        self.unsent_bytes = buffered + sum(map(len, self._out))
        self._batches.clear()
        self._out.clear()

    def send(self, control: Control) -> None:
        """Encode and write one control message (with its payload). Used for answers
        the peer waits on (SPAWN_REPLY, an immediate MONITOR_P_EXIT): written at once
        like a message (see :meth:`write`)."""
        if self.open:
            self.write(self.conn.send(control), now=True)

    def write_buffer_size(self) -> int:
        """Bytes written to this connection and not yet on the wire."""
        return self.transport.get_write_buffer_size() + sum(map(len, self._out))

    # -- ticks ----------------------------------------------------------------------

    def _schedule_tick(self) -> None:
        self._timer = self._loop.call_later(self.ticktime / 4, self._tick)

    def _tick(self) -> None:
        if not self.open:
            return
        now = time.monotonic()
        late = now - self._last_tick_check > self.ticktime / 2
        self._last_tick_check = now
        silent_for = now - self._last_read
        # After the loop was held, what the peer sent meanwhile is still unread: judge
        # its silence on the next round, once the loop has read its socket.
        if silent_for > self.ticktime and not late:
            log.warning("node %s not responding for %.1fs, disconnecting", self.name.name, silent_for)
            # Abort, not close: a frozen peer would never drain our buffered writes,
            # and close() waits for that before it lets the socket go.
            self.abort(Atom("net_tick_timeout"))
            return
        if not self._wrote:
            self.write(self.conn.tick_bytes())
        self._wrote = False
        if self._batches:
            self._prune_batches()
        self._schedule_tick()

    # -- closing --------------------------------------------------------------------

    def close(self, reason: Any = None) -> None:
        """Close the connection; fires ``on_close`` (nodedown) once."""
        if not self.open:
            return
        self._flush()
        self.transport.close()  # what is buffered still goes out
        self._batches.clear()
        self._finish(reason if reason is not None else Atom("disconnect"), count_unsent=False)

    def abort(self, reason: Any) -> None:
        if self.open:
            self._count_unsent()
            self.transport.abort()
            self._finish(reason, count_unsent=False)

    def _finish(self, reason: Any, *, count_unsent: bool = True) -> None:
        if not self.open:
            return
        if count_unsent:
            self._count_unsent()
        self.open = False
        self.busy = False
        self._wake_writers()
        self.close_reason = reason
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.closed.done():
            self.closed.set_result(reason)
        self._on_close(self, reason)
