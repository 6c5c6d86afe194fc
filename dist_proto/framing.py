"""The distribution connection after the handshake, sans I/O.

Theory of operation
-------------------
This module implements the sections "Protocol between Connected Nodes" of OTP's
``erl_dist_protocol`` guide and "Distribution Header" / "Distribution Header for
Fragmented Messages" of ``erl_ext_dist``, as ``erts/emulator/beam/dist.c`` and
``external.c`` run them.

Every packet is ``Length(4) | Data``; length 0 is a tick (keep-alive). ``Data``
is one of:

* pass-through: ``112, 131 Control [131 Payload]``, used when neither
  ``DIST_HDR_ATOM_CACHE`` nor ``FRAGMENTS`` is negotiated;
* a distribution header ``131, 68, N, Flags, AtomCacheRefs, Control [Payload]``
  (terms without their 131 byte; ``ATOM_CACHE_REF`` indexes the header's refs,
  which point into a per-connection, per-direction 2048-slot cache);
* a fragmented message: ``131, 69, SeqId(8), FragId(8), <header as 68>, Control,
  first slice of Payload`` then ``131, 70, SeqId(8), FragId(8), slice``…, with
  FragId counting down to 1.

:class:`DistConnection` accepts all three on input whatever was negotiated (BEAM
picks one per connection; being liberal costs nothing) and produces exactly the
format the negotiated flags require on output: pass-through, or ``131 68 0``
headers (we never populate an outgoing atom cache) with 69/70 fragments for
large payloads when ``FRAGMENTS`` is negotiated.

The receive path is the hot path: incoming bytes are kept in an immutable
``bytes`` object walked with an offset, and both terms are decoded in place with
:func:`dist_proto.etf.decode_dist`. Bytes that arrive while a frame is
incomplete wait in a ``bytearray`` and are merged only once the frame can be
completed, so every byte is copied a bounded number of times. A distribution
header that only refers to cached atoms (BEAM's steady state) is parsed once:
its bytes map to the decoding context built for it, until a header writes to
the atom cache again. :meth:`DistConnection.drain` takes every complete message
of a read at once; with the compiled codec core, runs of such steady-state frames
are decoded by one C call (``scan_frames``, docs/codec.md) and every other frame
by :meth:`DistConnection.next_event`. The send-family control messages are built
without their dataclass ``__init__``, and the send fast paths write their control tuple's
bytes directly.

>>> from dist_proto.flags import DEFAULT_FLAGS
>>> from dist_proto.control import RegSend
>>> from dist_proto.terms import Atom, Pid
>>> a, b = DistConnection(DEFAULT_FLAGS), DistConnection(DEFAULT_FLAGS)
>>> pid = Pid(Atom("py@localhost"), 1, 0, 4)
>>> b.receive_data(a.send(RegSend(pid, Atom("foo"), Atom("hi"))) + a.tick_bytes())
>>> list(b.events())
[ControlMessage(control=RegSend(from_pid=Pid(node=Atom('py@localhost'), id=1, serial=0, \
creation=4), to_name=Atom('foo'), message=Atom('hi'))), Tick()]
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from . import etf
from .control import (
    NO_PAYLOAD,
    AliasSend,
    Control,
    RegSend,
    Send,
    SendSender,
    from_term,
)
from .errors import DecodeError, LocalProtocolError, ProtocolError, RemoteProtocolError
from .etf import DistContext as _Ctx
from .etf import decode_dist, dist_context, encode_body
from .flags import DFlag
from .mapping import Mapping
from .terms import Atom, Pid, Reference, Term

__all__ = [
    "DEFAULT_FRAGMENT_SIZE",
    "DEFAULT_MAX_FRAME",
    "NEED_DATA",
    "TICK",
    "ControlMessage",
    "DistConnection",
    "DistEvent",
    "Tick",
]

DEFAULT_MAX_FRAME: Final = 64 * 1024 * 1024
DEFAULT_FRAGMENT_SIZE: Final = 64 * 1024
DEFAULT_MAX_SEQUENCES: Final = 256
ATOM_CACHE_SIZE: Final = 2048

_PASS_THROUGH: Final = 112
_VERSION: Final = 131
_HDR: Final = 68
_FRAG_START: Final = 69
_FRAG_CONT: Final = 70
_TICK_BYTES: Final = b"\x00\x00\x00\x00"
_HDR_PREFIX: Final = b"\x83\x44\x00"
_U32: Final = struct.Struct(">I")
_pack_u32: Final = _U32.pack
_pack_pid: Final = struct.Struct(">III").pack
_HEADER_MEMO_MAX: Final = 512
_U64X2: Final = struct.Struct(">QQ")


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`DistConnection.next_event` when more bytes are needed.
NEED_DATA: Final = _NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class Tick:
    """A zero-length packet (keep-alive). Answer it with :meth:`DistConnection.tick_bytes`."""


TICK: Final = Tick()


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """One distribution message; ``control`` carries its payload (message/reason/args)."""

    control: Control


DistEvent = Tick | ControlMessage


class _Sequence:
    """A fragmented message being reassembled."""

    __slots__ = ("next_id", "chunks", "size", "ctx", "payload_ctx")

    def __init__(self, next_id: int, chunk: bytes, ctx: _Ctx, payload_ctx: _Ctx) -> None:
        self.next_id = next_id
        self.chunks = [chunk]
        self.size = len(chunk)
        self.ctx = ctx
        self.payload_ctx = payload_ctx


class DistConnection:
    """Framing and (de)serialisation of one connection after the handshake.

    ``flags`` are the negotiated flags (``HandshakeComplete.flags``). Feed bytes
    with :meth:`receive_data` (start with ``HandshakeComplete.leftover``), take
    events from :meth:`next_event` or :meth:`events` (or messages in bulk from
    :meth:`drain`, what the node uses), and write what :meth:`send`,
    :meth:`send_term`, the ``encode_*`` fast paths and :meth:`tick_bytes` return.
    Timing (ticks every ``net_ticktime/4``, dead after silence) is the caller's.

    A bad packet raises :class:`RemoteProtocolError` and the connection stays in
    an error state: BEAM kills the connection in that case, so should the caller.
    ``compiled_framing=False`` keeps :meth:`drain` on the Python framing even when
    the compiled core is built (the tests compare the two).
    """

    def __init__(
        self,
        flags: int,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_message: int | None = None,
        max_sequences: int = DEFAULT_MAX_SEQUENCES,
        fragment_size: int = DEFAULT_FRAGMENT_SIZE,
        max_reassembly: int | None = None,
        mapping: Mapping | None = None,
        compiled_framing: bool = True,
    ) -> None:
        self.flags = DFlag(int(flags))
        #: codec options for payloads (messages, exit reasons, spawn arguments); control
        #: terms always decode with the default mapping. None: the lossless default.
        self.mapping = None if mapping is None or mapping.is_default else mapping
        # encoding needs the mapping only for its registered dataclasses
        self._encode_mapping = (
            None if self.mapping is None or self.mapping.struct_encoder is None else self.mapping
        )
        self.max_frame = max_frame
        self.max_message = max_frame if max_message is None else max_message
        self.max_sequences = max_sequences
        #: Bytes held by all unfinished fragmented messages together (default: one
        #: ``max_message``), so open sequences cannot multiply the per-message cap.
        self.max_reassembly = self.max_message if max_reassembly is None else max_reassembly
        self._reassembly_bytes = 0
        if fragment_size < 1:
            raise ValueError("fragment_size must be positive")
        self.fragment_size = fragment_size
        self._use_header = bool(self.flags & (DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS))
        self._fragments = bool(self.flags & DFlag.FRAGMENTS)
        self._data = b""
        self._pos = 0
        self._pending = bytearray()
        self._cache: list[Atom | None] = [None] * ATOM_CACHE_SIZE
        self._header_memo: dict[bytes, tuple[_Ctx, _Ctx]] = {}
        no_atoms = dist_context([])
        self._no_atoms = (no_atoms, self._payload_context([], no_atoms))
        self._sequences: dict[int, _Sequence] = {}
        self._next_seq = 1
        self._error: ProtocolError | None = None
        self._deferred: Exception | None = None
        # the compiled scan of steady-state frames (drain); payloads with a mapping
        # decode through the Python framing
        scan = etf.ACTIVE.scan_frames if compiled_framing and self.mapping is None else None
        self._scan = scan

    # ----------------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes read from the socket. Cheap; parsing happens in :meth:`next_event`."""
        if not data:
            return
        if self._pos >= len(self._data) and not self._pending:
            self._data = data if type(data) is bytes else bytes(data)
            self._pos = 0
        else:
            self._pending += data

    def events(self) -> Iterator[DistEvent]:
        """Yield every complete event; an error is raised after the events before it."""
        next_event = self.next_event
        while True:
            ev = next_event()
            if ev is NEED_DATA:
                return
            yield ev

    def drain(self) -> list[Control | Tick]:
        """What :meth:`next_event` would give until :data:`NEED_DATA`, taken in bulk:
        the control object of every complete message (its payload inside) and
        :data:`TICK` for a tick, in order; ``[]`` when more bytes are needed.

        With the compiled codec core, the frames of BEAM's steady state (a
        distribution header that only refers to cached atoms, no fragments) are
        decoded by one C call per run of such frames; every other frame goes through
        :meth:`next_event`. An error is raised only once the messages before it are
        returned: by this call when it has nothing to return, else by the next one.
        """
        deferred = self._deferred
        if deferred is not None:
            self._deferred = None
            raise deferred
        out: list[Control | Tick] = []
        scan = self._scan
        next_event = self.next_event
        while True:
            try:
                if scan is not None and self._error is None:
                    fast, self._pos = scan(self._data, self._pos, self._cache, self.max_frame, NO_PAYLOAD)
                    if fast:  # control objects, or a control term followed by its payload
                        it = iter(fast)
                        for control in it:
                            out.append(_control(control, next(it)) if type(control) is tuple else control)
                ev = next_event()
            except Exception as exc:  # (an interrupt is not held back)
                if isinstance(exc, ProtocolError) and self._error is None:
                    self._error = exc  # a bad control term: the connection is done, as in next_event
                if not out:
                    raise
                self._deferred = exc
                return out
            if ev is NEED_DATA:
                return out
            out.append(ev.control if isinstance(ev, ControlMessage) else TICK)

    def next_event(self) -> DistEvent | _NeedData:
        """The next :class:`Tick` or :class:`ControlMessage`, or :data:`NEED_DATA`."""
        if self._error is not None:
            raise self._error
        while True:
            data, pos = self._data, self._pos
            avail = len(data) - pos
            if avail >= 4:
                n = _U32.unpack_from(data, pos)[0]
                if n > self.max_frame:
                    self._error = RemoteProtocolError(
                        f"frame of {n} bytes exceeds the {self.max_frame}-byte limit"
                    )
                    raise self._error
                if avail >= 4 + n:
                    start = pos + 4
                    self._pos = end = start + n
                    if n == 0:
                        return TICK
                    try:
                        ev = self._packet(data, start, end)
                    except ProtocolError as exc:
                        self._error = exc
                        raise
                    except DecodeError as exc:
                        self._error = RemoteProtocolError(
                            f"corrupted external term in distribution message: {exc.reason}"
                            + ("" if exc.offset is None else f" (at byte {exc.offset - start})")
                        )
                        raise self._error from None
                    if ev is None:
                        continue
                    return ev
                need = 4 + n
            else:
                need = 4
            if avail + len(self._pending) < need:
                if avail == 0:
                    self._data, self._pos = b"", 0
                return NEED_DATA
            # merge the tail with what arrived since
            self._data = data[pos:] + self._pending
            self._pending = bytearray()
            self._pos = 0

    def _packet(self, data: bytes, start: int, end: int) -> ControlMessage | None:
        kind = data[start]
        if kind == _PASS_THROUGH:
            control, off = etf.decode_from(data, start + 1)
            return self._message(data, control, off, end, None)
        if kind != _VERSION or end - start < 2:
            raise RemoteProtocolError(
                f"distribution message starts with {kind}, expected 112 or 131"
            )
        tag = data[start + 1]
        if tag == _HDR:
            ctx, pctx, off = self._dist_header(data, start + 2, end)
            control, off = decode_dist(data, off, ctx)
            return self._message(data, control, off, end, pctx)
        if tag == _FRAG_START or tag == _FRAG_CONT:
            return self._fragment(data, start, end, tag)
        raise RemoteProtocolError(f"unknown distribution header tag {tag}")

    def _message(
        self,
        data: bytes,
        control: Any,
        off: int,
        end: int,
        ctx: _Ctx | None,
    ) -> ControlMessage:
        """``ctx`` is the header's decoding context for the payload; None for pass-through
        (versioned terms)."""
        if off > end:
            raise RemoteProtocolError("control term runs past the end of its packet")
        payload: Term = NO_PAYLOAD
        if off < end:
            if ctx is None:
                payload, off = etf.decode_from(data, off, mapping=self.mapping)
            else:
                payload, off = decode_dist(data, off, ctx)
            if off != end:
                raise RemoteProtocolError(
                    "payload term runs past the end of its packet"
                    if off > end
                    else f"{end - off} trailing bytes after the payload term"
                )
        ev = _new(ControlMessage)
        _set_cm_control(ev, _control(control, payload))
        return ev

    def _payload_context(self, atoms: list[Atom], ctx: _Ctx) -> _Ctx:
        """The context payloads decode with: ``ctx`` itself without a mapping."""
        return ctx if self.mapping is None else dist_context(atoms, self.mapping)

    def _dist_header(self, data: bytes, pos: int, end: int) -> tuple[_Ctx, _Ctx, int]:
        """:meth:`_header` and the decoding context for it, memoised by header bytes.

        A header whose every entry refers to a cached atom takes ``1 + N//2 + 1 + N``
        bytes and means the same until the cache changes: it is looked up by those
        bytes. A header that writes to the cache empties the memo.
        """
        if pos < end:
            n = data[pos]
            if n == 0:
                return self._no_atoms[0], self._no_atoms[1], pos + 1
            hend = pos + n // 2 + 2 + n
            if hend <= end:
                key = data[pos:hend]
                pair = self._header_memo.get(key)
                if pair is not None:
                    return pair[0], pair[1], hend
        else:
            hend = -1
        atoms, off = self._header(data, pos, end)
        ctx = dist_context(atoms)
        pctx = self._payload_context(atoms, ctx)
        memo = self._header_memo
        if off != hend:  # new cache entries: earlier headers may mean other atoms now
            memo.clear()
        else:
            if len(memo) >= _HEADER_MEMO_MAX:
                memo.clear()
            memo[data[pos:hend]] = (ctx, pctx)
        return ctx, pctx, off

    def _header(self, data: bytes, pos: int, end: int) -> tuple[list[Atom], int]:
        """Parse ``N, Flags, AtomCacheRefs`` (erl_ext_dist "Distribution Header")."""
        if pos >= end:
            raise RemoteProtocolError("truncated distribution header")
        n = data[pos]
        pos += 1
        if n == 0:
            return [], pos
        flag_len = n // 2 + 1
        if pos + flag_len > end:
            raise RemoteProtocolError("truncated distribution header flags")
        flag_bytes = data[pos : pos + flag_len]
        pos += flag_len
        long_atoms = bool((flag_bytes[n // 2] >> (4 * (n & 1))) & 1)
        cache = self._cache
        atoms: list[Atom] = []
        for i in range(n):
            nib = (flag_bytes[i >> 1] >> (4 * (i & 1))) & 0xF
            if pos >= end:
                raise RemoteProtocolError("truncated atom cache reference")
            slot = ((nib & 7) << 8) | data[pos]
            pos += 1
            if nib & 8:
                if long_atoms:
                    if pos + 2 > end:
                        raise RemoteProtocolError("truncated atom cache entry")
                    length = (data[pos] << 8) | data[pos + 1]
                    pos += 2
                else:
                    if pos + 1 > end:
                        raise RemoteProtocolError("truncated atom cache entry")
                    length = data[pos]
                    pos += 1
                if pos + length > end:
                    raise RemoteProtocolError("atom cache entry runs past the packet")
                try:
                    text = data[pos : pos + length].decode("utf-8")
                except UnicodeDecodeError:
                    raise RemoteProtocolError(f"atom cache entry {i} is not valid UTF-8") from None
                if len(text) > 255:
                    raise RemoteProtocolError(f"atom cache entry {i} longer than 255 characters")
                pos += length
                atom = Atom(text)
                cache[slot] = atom
            else:
                cached = cache[slot]
                if cached is None:
                    raise RemoteProtocolError(f"atom cache reference {i} to empty slot {slot}")
                atom = cached
            atoms.append(atom)
        return atoms, pos

    def _fragment(self, data: bytes, start: int, end: int, tag: int) -> ControlMessage | None:
        if end - start < 18:
            raise RemoteProtocolError("truncated fragment header")
        seq, frag = _U64X2.unpack_from(data, start + 2)
        pos = start + 18
        seqs = self._sequences
        if frag == 0:
            raise RemoteProtocolError(f"fragment id 0 in sequence {seq}")
        if tag == _FRAG_START:
            if seq in seqs:
                raise RemoteProtocolError(f"duplicate start of fragment sequence {seq}")
            ctx, pctx, pos = self._dist_header(data, pos, end)
            if frag == 1:
                control, off = decode_dist(data, pos, ctx)
                return self._message(data, control, off, end, pctx)
            if len(seqs) >= self.max_sequences:
                raise RemoteProtocolError(f"more than {self.max_sequences} open fragment sequences")
            seq_state = _Sequence(frag - 1, data[pos:end], ctx, pctx)
            if seq_state.size > self.max_message:
                raise RemoteProtocolError("fragmented message exceeds the size limit")
            self._hold(seq_state.size)
            seqs[seq] = seq_state
            return None
        state = seqs.get(seq)
        if state is None:
            raise RemoteProtocolError(f"fragment {frag} of unknown sequence {seq}")
        if frag != state.next_id:
            raise RemoteProtocolError(
                f"fragment {frag} of sequence {seq} out of order (expected {state.next_id})"
            )
        chunk = data[pos:end]
        state.size += len(chunk)
        if state.size > self.max_message:
            del seqs[seq]
            self._reassembly_bytes -= state.size - len(chunk)
            raise RemoteProtocolError(
                f"fragmented message of over {self.max_message} bytes in sequence {seq}"
            )
        self._hold(len(chunk))
        state.chunks.append(chunk)
        if frag > 1:
            state.next_id = frag - 1
            return None
        del seqs[seq]
        self._reassembly_bytes -= state.size
        whole = b"".join(state.chunks)
        control, off = decode_dist(whole, 0, state.ctx)
        return self._message(whole, control, off, len(whole), state.payload_ctx)

    def _hold(self, size: int) -> None:
        self._reassembly_bytes += size
        if self._reassembly_bytes > self.max_reassembly:
            raise RemoteProtocolError(
                f"unfinished fragmented messages hold over {self.max_reassembly} bytes"
                f" ({len(self._sequences)} sequences open)"
            )

    @property
    def reassembly_bytes(self) -> int:
        """Bytes held by fragmented messages under reassembly."""
        return self._reassembly_bytes

    @property
    def open_sequences(self) -> int:
        """Fragmented messages under reassembly."""
        return len(self._sequences)

    # ----------------------------------------------------------------- sending

    @staticmethod
    def tick_bytes() -> bytes:
        """A tick (zero-length packet)."""
        return _TICK_BYTES

    def send(self, msg: Control) -> bytes:
        """Encode a control message (and its payload) as one or more packets."""
        return self.send_term(msg.to_term(), msg.payload)

    def send_term(self, control: tuple[Any, ...], payload: Term = NO_PAYLOAD) -> bytes:
        """Encode a raw control tuple and optional payload in the negotiated format."""
        if not self._use_header:
            body = b"\x70" + etf.encode(control)
            if payload is not NO_PAYLOAD:
                body += (
                    etf.encode(payload) if self._encode_mapping is None
                    else etf.encode(payload, mapping=self._encode_mapping)
                )
            return self._frame(body)
        ctrl = etf.encode_body(control)
        if payload is NO_PAYLOAD:
            return self._frame(_HDR_PREFIX + ctrl)
        pay = (
            etf.encode_body(payload) if self._encode_mapping is None
            else etf.encode_body(payload, self._encode_mapping)
        )
        if self._fragments and len(pay) > self.fragment_size:
            return self._fragmented(ctrl, pay)
        return self._frame(b"".join((_HDR_PREFIX, ctrl, pay)))

    def _frame(self, body: bytes) -> bytes:
        n = len(body)
        if n > 0xFFFFFFFF:
            raise LocalProtocolError(f"distribution message of {n} bytes is too large")
        return _U32.pack(n) + body

    def _fragmented(self, ctrl: bytes, pay: bytes) -> bytes:
        size = self.fragment_size
        count = (len(pay) + size - 1) // size
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFFFFFFFFFFFFFF or 1
        out = [self._frame(b"\x83\x45" + _U64X2.pack(seq, count) + b"\x00" + ctrl + pay[:size])]
        frag = count - 1
        for off in range(size, len(pay), size):
            out.append(self._frame(b"\x83\x46" + _U64X2.pack(seq, frag) + pay[off : off + size]))
            frag -= 1
        return b"".join(out)

    # Fast paths: no dataclass, control tuple bytes built directly.

    def _framed(self, ctrl: bytes, message: Term) -> bytes:
        """``ctrl`` (encoded control tuple, no version byte) and ``message`` as packets."""
        pay = (
            encode_body(message) if self._encode_mapping is None
            else encode_body(message, self._encode_mapping)
        )
        if self._fragments and len(pay) > self.fragment_size:
            return self._fragmented(ctrl, pay)
        n = 3 + len(ctrl) + len(pay)
        if n > 0xFFFFFFFF:
            raise LocalProtocolError(f"distribution message of {n} bytes is too large")
        return b"".join((_pack_u32(n), _HDR_PREFIX, ctrl, pay))

    def encode_send(self, to: Pid, message: Term, from_pid: Pid | None = None) -> bytes:
        """``erlang:send/2`` to a remote pid: SEND_SENDER if negotiated and ``from_pid``
        is known, else SEND."""
        if from_pid is not None and self.flags & DFlag.SEND_SENDER:
            if self._use_header:
                ctrl = _pid_pair(b"h\x03a\x16", from_pid, to)
                if ctrl is not None:
                    return self._framed(ctrl, message)
            return self.send_term((22, from_pid, to), message)
        if self._use_header:
            ctrl = _pid_pair(b"h\x03a\x02w\x00", None, to)
            if ctrl is not None:
                return self._framed(ctrl, message)
        return self.send_term((2, _EMPTY, to), message)

    def encode_reg_send(self, from_pid: Pid, name: Atom, message: Term) -> bytes:
        """``erlang:send({Name, Node}, Msg)``: REG_SEND."""
        if self._use_header and type(name) is Atom:
            ctrl = _pid_pair(b"h\x04a\x06", None, from_pid)
            if ctrl is not None:
                ext = name._ext
                return self._framed(
                    b"".join((ctrl, b"w\x00", ext if ext is not None else encode_body(name))),
                    message,
                )
        return self.send_term((6, from_pid, _EMPTY, name), message)

    def encode_alias_send(self, from_pid: Pid, alias: Reference, message: Term) -> bytes:
        """Send to a process alias (ALIAS_SEND; the caller checks ALIAS was negotiated)."""
        return self.send_term((33, from_pid, alias), message)


def _pid_ext(pid: Any) -> bytes | None:
    """NEW_PID_EXT of ``pid``, or None to let the general encoder (and its errors) do it."""
    if type(pid) is not Pid or type(pid.node) is not Atom:
        return None
    ext = pid.node._ext
    if ext is None:
        return None
    try:
        return b"X" + ext + _pack_pid(pid.id, pid.serial, pid.creation)
    except struct.error:
        return None


def _pid_pair(prefix: bytes, a: Pid | None, b: Pid) -> bytes | None:
    """``prefix`` then the encoded pids ``a`` (if given) and ``b``; None if one cannot be."""
    eb = _pid_ext(b)
    if eb is None:
        return None
    if a is None:
        return prefix + eb
    ea = _pid_ext(a)
    return None if ea is None else b"".join((prefix, ea, eb))


_EMPTY: Final = Atom("")


_new = object.__new__
_set_cm_control = ControlMessage.__dict__["control"].__set__


def _setters(cls: type, *fields: str) -> tuple[Any, ...]:
    return tuple(cls.__dict__[f].__set__ for f in fields)


_SEND_SET = _setters(Send, "to_pid", "message")
_REG_SEND_SET = _setters(RegSend, "from_pid", "to_name", "message")
_SEND_SENDER_SET = _setters(SendSender, "from_pid", "to_pid", "message")


def _control(control: Any, payload: Term) -> Control:
    """:func:`dist_proto.control.from_term` with inline fast paths for the sends.

    The send messages are built without their frozen dataclass ``__init__`` (the
    fields are set through the slots), which halves what building one costs.
    """
    if type(control) is tuple:
        n = len(control)
        op = control[0] if n else None
        if payload is not NO_PAYLOAD and type(op) is int:
            if op == 6 and n == 4 and type(control[1]) is Pid and type(control[3]) is Atom:
                msg: Any = _new(RegSend)
                f, t, m = _REG_SEND_SET
                f(msg, control[1])
                t(msg, control[3])
                m(msg, payload)
                return msg  # type: ignore[no-any-return]
            if op == 22 and n == 3 and type(control[1]) is Pid and type(control[2]) is Pid:
                msg = _new(SendSender)
                f, t, m = _SEND_SENDER_SET
                f(msg, control[1])
                t(msg, control[2])
                m(msg, payload)
                return msg  # type: ignore[no-any-return]
            if op == 2 and n == 3 and type(control[2]) is Pid:
                msg = _new(Send)
                t, m = _SEND_SET
                t(msg, control[2])
                m(msg, payload)
                return msg  # type: ignore[no-any-return]
            if op == 33 and n == 3 and type(control[1]) is Pid and type(control[2]) is Reference:
                return AliasSend(control[1], control[2], payload)
    return from_term(control, payload)
