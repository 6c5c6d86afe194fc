"""The distribution handshake, sans I/O, for both roles.

Theory of operation
-------------------
This module implements the section "Distribution Handshake" of OTP's
``erl_dist_protocol`` guide (protocol version 6, ``DFLAG_HANDSHAKE_23``), as
``lib/kernel/src/dist_util.erl`` runs it. A is the initiator
(:class:`ClientHandshake`), B the acceptor (:class:`ServerHandshake`)::

    A                                            B
    send_name  'N' flags creation name   --->
                                         <---    status 's' ok | ok_simultaneous | nok
                                                 | not_allowed | alive | named:...
    (after alive) 's' true | false        --->
                                         <---    challenge 'N' flags chB creation name
    challenge_reply 'r' chA digest(chB)  --->
                                         <---    challenge_ack 'a' digest(chA)

Each message is framed as ``Length(2) | Message`` (``Length(4)`` under TLS, where
``inet_tls_dist`` keeps its socket in ``{packet, 4}`` from the start: pass
``header_size=4``); afterwards the connection uses
4-byte frames (:mod:`dist_proto.framing`), and the first of those may already sit
in the read that carried the last handshake message: the final
:class:`HandshakeComplete` event hands those bytes over as ``leftover``.

Both objects follow h11: feed bytes with ``receive_data``, pull typed events with
``next_event`` (``NEED_DATA`` when more bytes are needed), and write out whatever
``data_to_send`` returns. Decisions that need knowledge of the other connections
(simultaneous connect, an existing connection to the same name, dynamic names)
are events that the caller answers: :class:`NameReceived` with
:meth:`ServerHandshake.accept`, :class:`AliveQuery` with
:meth:`ClientHandshake.answer_alive`. Errors raise :class:`RemoteProtocolError`
(the peer was wrong) or :class:`LocalProtocolError` (the caller was) and leave the
object in the ``ERROR`` state; bytes queued before the error (such as an
acceptor's ``not_allowed`` status) can still be taken with ``data_to_send``.

The acceptor also takes the legacy version-5 ``'n'`` send_name followed by the
``'c'`` complement (OTP 23/24 nodes that did not learn our version from EPMD).

>>> a = ClientHandshake("a@h", "secret", creation=5)
>>> b = ServerHandshake("b@h", "secret", creation=6)
>>> b.receive_data(a.data_to_send())
>>> ev = b.next_event()
>>> ev.name, ev.creation, ev.version
('a@h', 5, 6)
>>> b.accept()
>>> a.receive_data(b.data_to_send())
>>> b.receive_data((a.next_event(), a.data_to_send())[1])
>>> done_b = b.next_event()
>>> a.receive_data(b.data_to_send())
>>> done_a = a.next_event()
>>> done_a.peer_name, done_b.peer_name, done_a.flags == done_b.flags
('b@h', 'a@h', True)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from enum import Enum
from typing import Final

from .errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from .flags import DEFAULT_FLAGS, MANDATORY, DFlag, expand_digest, missing_mandatory

__all__ = [
    "NEED_DATA",
    "AliveQuery",
    "AliveReply",
    "ClientHandshake",
    "HandshakeClosed",
    "HandshakeComplete",
    "HandshakeEvent",
    "HandshakeRejected",
    "HandshakeState",
    "NameReceived",
    "Named",
    "ServerHandshake",
    "WrongCookie",
    "compute_digest",
    "simultaneous_status",
]

MAX_HANDSHAKE_PACKET: Final = 0xFFFF
_STATUSES: Final = ("ok", "ok_simultaneous", "nok", "not_allowed", "alive", "named")


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by ``next_event`` when more bytes are needed.
NEED_DATA: Final = _NeedData.NEED_DATA


class HandshakeClosed(RemoteProtocolError):
    """The peer closed the connection before the handshake completed.

    ``state`` is the state the handshake was in (what we were waiting for). An
    initiator in ``CHALLENGE_ACK`` has sent its digest: a peer that closes then
    found it wrong, which is how ``dist_util`` rejects a wrong cookie
    (``cookie_rejected`` is true).
    """

    def __init__(self, state: HandshakeState, role: str) -> None:
        self.state = state
        self.role = role
        super().__init__(
            f"the peer closed the connection while the {role} waited for {_WAITING_FOR[state]}"
        )

    @property
    def cookie_rejected(self) -> bool:
        return self.state is HandshakeState.CHALLENGE_ACK


class WrongCookie(RemoteProtocolError):
    """A digest did not match our cookie: the two nodes have different cookies."""


class HandshakeState(Enum):
    """Where a handshake object stands."""

    SEND_NAME = "SEND_NAME"  # B: waiting for A's send_name
    DECIDE = "DECIDE"  # B: waiting for the caller's accept()
    STATUS = "STATUS"  # A: waiting for B's status
    ANSWER_ALIVE = "ANSWER_ALIVE"  # A: waiting for the caller's answer_alive()
    ALIVE_REPLY = "ALIVE_REPLY"  # B: waiting for A's true/false
    PROCEED = "PROCEED"  # B: waiting for the caller's proceed() after `alive`/true
    CHALLENGE = "CHALLENGE"  # A: waiting for B's challenge
    COMPLEMENT = "COMPLEMENT"  # B: waiting for the legacy 'c' complement
    CHALLENGE_REPLY = "CHALLENGE_REPLY"  # B: waiting for A's challenge_reply
    CHALLENGE_ACK = "CHALLENGE_ACK"  # A: waiting for B's challenge_ack
    DONE = "DONE"  # handshake complete: hand over to DistConnection
    CLOSED = "CLOSED"  # ended by a status (nok, not_allowed, alive/false)
    ERROR = "ERROR"


_WAITING_FOR: Final = {
    HandshakeState.SEND_NAME: "send_name",
    HandshakeState.DECIDE: "our status decision",
    HandshakeState.STATUS: "the status",
    HandshakeState.ANSWER_ALIVE: "our answer to status alive",
    HandshakeState.ALIVE_REPLY: "the answer to status alive",
    HandshakeState.PROCEED: "the old connection to go",
    HandshakeState.CHALLENGE: "the challenge",
    HandshakeState.COMPLEMENT: "the complement",
    HandshakeState.CHALLENGE_REPLY: "the challenge reply",
    HandshakeState.CHALLENGE_ACK: "the challenge ack (the peer checks our cookie's digest first)",
    HandshakeState.DONE: "nothing (complete)",
    HandshakeState.CLOSED: "nothing (closed)",
    HandshakeState.ERROR: "nothing (failed)",
}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class NameReceived:
    """B got A's send_name; answer with :meth:`ServerHandshake.accept`.

    ``name`` is the host alone when A asked for a dynamic name (``name_me``).
    """

    name: str
    flags: DFlag
    creation: int
    version: int = 6

    @property
    def name_me(self) -> bool:
        return bool(self.flags & DFlag.NAME_ME)


@dataclass(frozen=True, slots=True)
class AliveQuery:
    """A got status ``alive``: answer with :meth:`ClientHandshake.answer_alive`."""


@dataclass(frozen=True, slots=True)
class AliveReply:
    """B got A's answer to ``alive``; if ``true``, call :meth:`ServerHandshake.proceed`
    once the old connection is gone (else the handshake is over)."""

    alive: bool


@dataclass(frozen=True, slots=True)
class Named:
    """A got ``named:``: its full node name and creation, assigned by B."""

    name: str
    creation: int


@dataclass(frozen=True, slots=True)
class HandshakeRejected:
    """A got a status that ends the attempt (``nok``, ``not_allowed``), or gave up
    after ``alive``. Close the socket; for ``nok`` the other connection wins."""

    status: str


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The connection is up.

    ``flags`` is what both sides support (AND after digest expansion); ``name`` and
    ``creation`` are this node's (assigned ones after ``named:``); ``leftover`` is
    what arrived after the last handshake message: feed it to the connection.
    """

    peer_name: str
    peer_flags: DFlag
    peer_creation: int
    flags: DFlag
    name: str
    creation: int
    leftover: bytes = b""


HandshakeEvent = (
    NameReceived | AliveQuery | AliveReply | Named | HandshakeRejected | HandshakeComplete
)


# --------------------------------------------------------------------------- helpers


def compute_digest(challenge: int, cookie: str | bytes) -> bytes:
    """``MD5(Cookie ++ integer_to_list(Challenge))`` (``dist_util:gen_digest/2``).

    >>> compute_digest(1234567, "secret").hex()
    '1074ec9d831e47aa83e47394ca29f2de'
    """
    if isinstance(cookie, str):
        cookie = cookie.encode("utf-8")
    data = bytes(cookie) + str(challenge & 0xFFFFFFFF).encode("ascii")
    return hashlib.md5(data, usedforsecurity=False).digest()


def simultaneous_status(our_name: str, peer_name: str) -> str:
    """Status an acceptor answers when it has its own attempt towards the peer.

    The attempt initiated by the node with the greater name (atom order) survives:
    ``ok_simultaneous`` if the peer's name is greater, else ``nok``.
    """
    return "ok_simultaneous" if peer_name.encode("utf-8") > our_name.encode("utf-8") else "nok"


def _check_full_name(name: str, err: type[ProtocolError]) -> str:
    if not isinstance(name, str):
        raise TypeError("node name must be str")
    alive, at, host = name.partition("@")
    if not at or not alive or not host or "@" in host:
        raise err(f"node name {name!r} is not alive@host")
    _check_atom_text(name, err)
    return name


def _check_atom_text(name: str, err: type[ProtocolError]) -> None:
    if len(name) > 255:
        raise err(f"node name of {len(name)} characters is longer than an atom")
    if "\x00" in name:
        raise err("node name contains NUL")


def _decode_name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError("node name is not valid UTF-8") from None


def _pack(body: bytes, header_size: int = 2) -> bytes:
    if len(body) > MAX_HANDSHAKE_PACKET:
        raise LocalProtocolError("handshake message longer than 65535 bytes")
    return len(body).to_bytes(header_size, "big") + body


def _random_challenge() -> int:
    return secrets.randbits(32)


class _Base:
    """Shared framing (2-byte lengths, 4-byte under TLS), buffers and error state."""

    _role = "handshake"

    def __init__(self, name: str, cookie: str | bytes, flags: int, creation: int, header_size: int = 2) -> None:
        if header_size not in (2, 4):
            raise LocalProtocolError(f"handshake length header of {header_size} bytes (2, or 4 under TLS)")
        self.header_size = header_size
        self.our_name = name
        self._cookie = cookie.encode("utf-8") if isinstance(cookie, str) else bytes(cookie)
        self.our_flags = DFlag(int(flags))
        self.creation = creation
        self.peer_name: str | None = None
        self.peer_flags: DFlag = DFlag(0)
        self.peer_creation = 0
        self._in = bytearray()
        self._out = bytearray()
        self._state = HandshakeState.ERROR
        self._error: ProtocolError | None = None
        self._eof = False
        if not 0 <= creation <= 0xFFFFFFFF:
            raise LocalProtocolError(f"creation {creation} does not fit in 32 bits")

    @property
    def state(self) -> HandshakeState:
        return self._state

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket (never ``b""``: on EOF, drop the object)."""
        if self._state is HandshakeState.DONE:
            raise LocalProtocolError("handshake is complete; feed the DistConnection")
        self._in += data

    def receive_eof(self) -> None:
        """The peer closed its side. Buffered messages are still returned by
        ``next_event``; after them it raises :class:`HandshakeClosed` naming the state
        we were in (unless the handshake had already ended)."""
        self._eof = True

    def _closed_error(self) -> HandshakeClosed | None:
        if self._eof and self._state not in (
            HandshakeState.DONE, HandshakeState.CLOSED, HandshakeState.ERROR
        ):
            return HandshakeClosed(self._state, self._role)
        return None

    def data_to_send(self) -> bytes:
        """Bytes to write to the peer (possibly empty)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def _send(self, body: bytes) -> None:
        self._out += _pack(body, self.header_size)

    def _packet(self) -> bytes | None:
        buf, size = self._in, self.header_size
        if len(buf) < size:
            return None
        n = int.from_bytes(buf[:size], "big")
        if n > MAX_HANDSHAKE_PACKET:
            raise RemoteProtocolError(f"handshake message of {n} bytes announced (at most {MAX_HANDSHAKE_PACKET})")
        if len(buf) < size + n:
            return None
        body = bytes(buf[size : size + n])
        del buf[: size + n]
        if not body:
            raise RemoteProtocolError(f"empty handshake message in state {self._state.value}")
        return body

    def _fail(self, exc: ProtocolError) -> ProtocolError:
        self._state = HandshakeState.ERROR
        self._error = exc
        return exc

    def _require(self, *states: HandshakeState) -> None:
        if self._state not in states:
            raise LocalProtocolError(f"not allowed in state {self._state.value}")

    def _check_peer_flags(self, flags: DFlag, required: int) -> None:
        if not expand_digest(flags) & DFlag.HANDSHAKE_23:
            raise RemoteProtocolError(f"{self._who()} lacks DFLAG_HANDSHAKE_23")
        missing = missing_mandatory(flags, required)
        if missing:
            raise RemoteProtocolError(
                f"{self._who()} lacks mandatory distribution flags: {', '.join(missing)}"
            )

    def _who(self) -> str:
        return f"peer {self.peer_name!r}" if self.peer_name else "peer"

    def _complete(self) -> HandshakeComplete:
        assert self.peer_name is not None
        flags = expand_digest(self.our_flags) & expand_digest(self.peer_flags)
        flags &= ~DFlag.NAME_ME
        leftover = bytes(self._in)
        self._in.clear()
        self._state = HandshakeState.DONE
        return HandshakeComplete(
            peer_name=self.peer_name,
            peer_flags=self.peer_flags,
            peer_creation=self.peer_creation,
            flags=flags,
            name=self.our_name,
            creation=self.creation,
            leftover=leftover,
        )


# --------------------------------------------------------------------------- initiator


class ClientHandshake(_Base):
    """The initiator (A): ``dist_util:handshake_we_started/1``.

    ``name`` is this node's full name, or its host alone with ``name_me=True`` (a
    dynamic name: B assigns name and creation, reported by :class:`Named`).
    ``peer_name``, if given, must match the name in B's challenge. The send_name
    message is queued at construction.
    """

    _role = "initiator"

    def __init__(
        self,
        name: str,
        cookie: str | bytes,
        *,
        flags: int = DEFAULT_FLAGS,
        creation: int,
        peer_name: str | None = None,
        name_me: bool = False,
        required_flags: int = MANDATORY,
        challenge: int | None = None,
        header_size: int = 2,
    ) -> None:
        flags = int(flags)
        if name_me:
            flags |= DFlag.NAME_ME
            host = name.rpartition("@")[2]
            if not host:
                raise LocalProtocolError("a dynamic name needs the host")
            _check_atom_text(host, LocalProtocolError)
            name, creation = host, 0
        else:
            flags &= ~DFlag.NAME_ME
            _check_full_name(name, LocalProtocolError)
        if not expand_digest(flags) & DFlag.HANDSHAKE_23:
            raise LocalProtocolError("our flags must include DFLAG_HANDSHAKE_23")
        super().__init__(name, cookie, flags, creation, header_size)
        self.expected_peer = peer_name
        self.required_flags = required_flags
        self.name_me = name_me
        self._challenge = _random_challenge() if challenge is None else challenge & 0xFFFFFFFF
        raw = name.encode("utf-8")
        self._send(struct.pack(">BQIH", 78, int(flags), creation, len(raw)) + raw)
        self._state = HandshakeState.STATUS

    def answer_alive(self, alive: bool) -> None:
        """Answer status ``alive``: ``True`` if we have no other connection to B (we
        restarted), which makes B drop its old one; ``False`` to give up."""
        self._require(HandshakeState.ANSWER_ALIVE)
        self._send(b"strue" if alive else b"sfalse")
        self._state = HandshakeState.CHALLENGE if alive else HandshakeState.CLOSED

    def next_event(self) -> HandshakeEvent | _NeedData:
        """The next event, or :data:`NEED_DATA`."""
        if self._error is not None:
            raise self._error
        st = self._state
        if st in (HandshakeState.ANSWER_ALIVE, HandshakeState.CLOSED, HandshakeState.DONE):
            closed = self._closed_error()
            if closed is not None:
                raise self._fail(closed)
            return NEED_DATA
        try:
            body = self._packet()
            if body is None:
                closed = self._closed_error()
                if closed is not None:
                    raise closed
                return NEED_DATA
            return self._HANDLERS[st](self, body)
        except ProtocolError as exc:
            raise self._fail(exc) from None

    def _on_status(self, body: bytes) -> HandshakeEvent | _NeedData:
        if body[0] != ord("s"):
            raise RemoteProtocolError(f"expected status 's', got message {body[0]}")
        text = body[1:]
        if text.startswith(b"named:"):
            if not self.name_me:
                raise RemoteProtocolError("status named: without a dynamic name request")
            if len(text) < 8:
                raise RemoteProtocolError("truncated named: status")
            (nlen,) = struct.unpack_from(">H", text, 6)
            if len(text) < 8 + nlen + 4:
                raise RemoteProtocolError("truncated named: status")
            name = _decode_name(text[8 : 8 + nlen])
            (creation,) = struct.unpack_from(">I", text, 8 + nlen)
            _check_full_name(name, RemoteProtocolError)
            self.our_name, self.creation = name, creation
            self._state = HandshakeState.CHALLENGE
            return Named(name, creation)
        status = text.decode("latin-1")
        if status in ("ok", "ok_simultaneous"):
            if self.name_me:
                raise RemoteProtocolError(f"status {status} for a dynamic name request")
            self._state = HandshakeState.CHALLENGE
            return self.next_event()
        if status in ("nok", "not_allowed"):
            self._state = HandshakeState.CLOSED
            return HandshakeRejected(status)
        if status == "alive":
            self._state = HandshakeState.ANSWER_ALIVE
            return AliveQuery()
        raise RemoteProtocolError(f"unknown handshake status {status[:40]!r}")

    def _on_challenge(self, body: bytes) -> HandshakeEvent | _NeedData:
        if body[0] != ord("N"):
            raise RemoteProtocolError(f"expected challenge 'N', got message {body[0]}")
        if len(body) < 19:
            raise RemoteProtocolError(f"challenge of {len(body)} bytes is too short")
        _, flags, challenge, creation, nlen = struct.unpack_from(">BQIIH", body)
        if len(body) < 19 + nlen:
            raise RemoteProtocolError("challenge name length exceeds the message")
        name = _decode_name(body[19 : 19 + nlen])
        self.peer_name = name
        _check_full_name(name, RemoteProtocolError)
        if self.expected_peer is not None and name != self.expected_peer:
            raise RemoteProtocolError(
                f"challenge from {name!r}, but we connected to {self.expected_peer!r}"
            )
        self.peer_flags = DFlag(flags)
        self.peer_creation = creation
        self._check_peer_flags(self.peer_flags, self.required_flags)
        digest = compute_digest(challenge, self._cookie)
        self._send(struct.pack(">BI", ord("r"), self._challenge) + digest)
        self._state = HandshakeState.CHALLENGE_ACK
        return self.next_event()

    def _on_ack(self, body: bytes) -> HandshakeEvent | _NeedData:
        if body[0] != ord("a") or len(body) != 17:
            raise RemoteProtocolError(
                f"expected a 17-byte challenge_ack from {self.peer_name!r},"
                f" got {len(body)} bytes starting with {body[0]}"
            )
        if not hmac.compare_digest(body[1:], compute_digest(self._challenge, self._cookie)):
            raise WrongCookie(f"wrong cookie: bad challenge_ack digest from {self.peer_name!r}")
        return self._complete()

    _HANDLERS = {
        HandshakeState.STATUS: _on_status,
        HandshakeState.CHALLENGE: _on_challenge,
        HandshakeState.CHALLENGE_ACK: _on_ack,
    }


# --------------------------------------------------------------------------- acceptor


class ServerHandshake(_Base):
    """The acceptor (B): ``dist_util:handshake_other_started/1``.

    After :class:`NameReceived`, call :meth:`accept` with the status to send.
    ``name`` is this node's full name; it goes into the challenge byte for byte.
    """

    _role = "acceptor"

    def __init__(
        self,
        name: str,
        cookie: str | bytes,
        *,
        flags: int = DEFAULT_FLAGS,
        creation: int,
        required_flags: int = MANDATORY,
        challenge: int | None = None,
        header_size: int = 2,
    ) -> None:
        _check_full_name(name, LocalProtocolError)
        flags = int(flags) & ~DFlag.NAME_ME
        super().__init__(name, cookie, flags, creation, header_size)
        self.required_flags = required_flags
        self._challenge = _random_challenge() if challenge is None else challenge & 0xFFFFFFFF
        self._version = 6
        self._state = HandshakeState.SEND_NAME

    def accept(
        self, status: str = "ok", *, name: str | None = None, creation: int | None = None
    ) -> None:
        """Answer :class:`NameReceived` (``dist_util``'s ``send_status``).

        ``ok``/``ok_simultaneous`` continue; ``nok``/``not_allowed`` end the
        handshake; ``alive`` asks A (see :class:`AliveReply`); ``named`` (only for a
        ``name_me`` request) assigns ``name`` and ``creation``. A dynamic-name
        request accepts only ``named`` or a refusal.
        """
        self._require(HandshakeState.DECIDE)
        if status not in _STATUSES:
            raise LocalProtocolError(f"unknown status {status!r}")
        name_me = bool(self.peer_flags & DFlag.NAME_ME)
        if status == "named":
            if not name_me:
                raise LocalProtocolError("status named only answers a dynamic name request")
            if name is None or creation is None:
                raise LocalProtocolError("status named needs name and creation")
            _check_full_name(name, LocalProtocolError)
            if not 0 <= creation <= 0xFFFFFFFF:
                raise LocalProtocolError("creation does not fit in 32 bits")
            raw = name.encode("utf-8")
            self._send(b"snamed:" + struct.pack(">H", len(raw)) + raw + struct.pack(">I", creation))
            self.peer_name, self.peer_creation = name, creation
            self._send_challenge()
            return
        if name_me and status in ("ok", "ok_simultaneous", "alive"):
            raise LocalProtocolError(
                f"a dynamic name request needs named or a refusal, not {status}"
            )
        self._send(b"s" + status.encode("ascii"))
        if status in ("nok", "not_allowed"):
            self._state = HandshakeState.CLOSED
        elif status == "alive":
            self._state = HandshakeState.ALIVE_REPLY
        else:
            self._send_challenge()

    def proceed(self) -> None:
        """Continue after :class:`AliveReply` ``True`` (the old connection is gone)."""
        self._require(HandshakeState.PROCEED)
        self._send_challenge()

    def _send_challenge(self) -> None:
        flags = int(self.our_flags)
        if self.peer_flags & DFlag.NAME_ME:
            flags |= DFlag.NAME_ME
        raw = self.our_name.encode("utf-8")
        self._send(struct.pack(">BQIIH", 78, flags, self._challenge, self.creation, len(raw)) + raw)
        self._state = (
            HandshakeState.COMPLEMENT if self._version == 5 else HandshakeState.CHALLENGE_REPLY
        )

    def next_event(self) -> HandshakeEvent | _NeedData:
        """The next event, or :data:`NEED_DATA`."""
        if self._error is not None:
            raise self._error
        st = self._state
        if st not in self._HANDLERS:
            closed = self._closed_error()
            if closed is not None:
                raise self._fail(closed)
            return NEED_DATA
        try:
            body = self._packet()
            if body is None:
                closed = self._closed_error()
                if closed is not None:
                    raise closed
                return NEED_DATA
            return self._HANDLERS[st](self, body)
        except ProtocolError as exc:
            raise self._fail(exc) from None

    def _refuse(self, exc: RemoteProtocolError) -> RemoteProtocolError:
        self._send(b"snot_allowed")
        return exc

    def _on_send_name(self, body: bytes) -> HandshakeEvent:
        tag = body[0]
        if tag == ord("N"):
            if len(body) < 15:
                raise RemoteProtocolError(f"send_name of {len(body)} bytes is too short")
            _, flags, creation, nlen = struct.unpack_from(">BQIH", body)
            if len(body) < 15 + nlen:
                raise RemoteProtocolError("send_name name length exceeds the message")
            raw = body[15 : 15 + nlen]
            version = 6
        elif tag == ord("n"):
            if len(body) < 7:
                raise RemoteProtocolError(f"send_name of {len(body)} bytes is too short")
            _, version, flags = struct.unpack_from(">BHI", body)
            if version not in (5, 6):
                raise RemoteProtocolError(f"unsupported distribution version {version}")
            raw, creation, version = body[7:], 0, 5
        else:
            raise RemoteProtocolError(f"expected send_name, got message {tag}")
        name = _decode_name(raw)
        self.peer_flags = DFlag(flags)
        self.peer_creation = creation
        self._version = version
        if self.peer_flags & DFlag.NAME_ME:
            if version == 5:
                raise self._refuse(RemoteProtocolError("dynamic name request in a v5 send_name"))
            if not name or "@" in name:
                raise self._refuse(RemoteProtocolError(f"dynamic name request with host {name!r}"))
            _check_atom_text(name, RemoteProtocolError)
        else:
            self.peer_name = name
            try:
                _check_full_name(name, RemoteProtocolError)
            except RemoteProtocolError as exc:
                raise self._refuse(exc) from None
        required = self.required_flags if version == 6 else self.required_flags & 0xFFFFFFFF
        try:
            self._check_peer_flags(self.peer_flags, required)
        except RemoteProtocolError as exc:
            raise self._refuse(exc) from None
        self._state = HandshakeState.DECIDE
        return NameReceived(name, self.peer_flags, creation, version)

    def _on_alive_reply(self, body: bytes) -> HandshakeEvent:
        if body == b"strue":
            self._state = HandshakeState.PROCEED
            return AliveReply(True)
        if body == b"sfalse":
            self._state = HandshakeState.CLOSED
            return AliveReply(False)
        raise RemoteProtocolError(f"bad answer to status alive: {body[:40]!r}")

    def _on_complement(self, body: bytes) -> HandshakeEvent | _NeedData:
        if body[0] != ord("c") or len(body) != 9:
            raise RemoteProtocolError(f"expected a 9-byte complement 'c', got {len(body)} bytes")
        _, high, creation = struct.unpack(">BII", body)
        self.peer_flags = DFlag(int(self.peer_flags) | (high << 32))
        self.peer_creation = creation
        self._check_peer_flags(self.peer_flags, self.required_flags)
        self._state = HandshakeState.CHALLENGE_REPLY
        return self.next_event()

    def _on_challenge_reply(self, body: bytes) -> HandshakeEvent:
        if body[0] != ord("r") or len(body) != 21:
            raise RemoteProtocolError(
                f"expected a 21-byte challenge_reply from {self.peer_name!r},"
                f" got {len(body)} bytes starting with {body[0]}"
            )
        (their_challenge,) = struct.unpack_from(">I", body, 1)
        if not hmac.compare_digest(body[5:], compute_digest(self._challenge, self._cookie)):
            raise WrongCookie(f"wrong cookie: bad challenge_reply digest from {self.peer_name!r}")
        self._send(b"a" + compute_digest(their_challenge, self._cookie))
        return self._complete()

    _HANDLERS = {
        HandshakeState.SEND_NAME: _on_send_name,
        HandshakeState.ALIVE_REPLY: _on_alive_reply,
        HandshakeState.COMPLEMENT: _on_complement,
        HandshakeState.CHALLENGE_REPLY: _on_challenge_reply,
    }
