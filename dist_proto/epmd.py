"""EPMD (Erlang Port Mapper Daemon) messages, sans I/O.

Implements the "EPMD Protocol" section of OTP's ``erl_dist_protocol`` guide, for
both ends: a client (register a node, look one up, list names) and the parsing
side of a server, so the network layer can run an embedded EPMD.

Every request travels as ``Length(2) | Request``; responses have no length prefix
and ``NAMES``/``DUMP`` responses end when EPMD closes the socket.

A client performs one request per connection:

>>> client = EpmdClient()
>>> client.send(PortPlease2Request("f25")).hex(" ")
'00 04 7a 66 32 35'
>>> client.receive_data(bytes.fromhex("77 01"))
>>> client.next_event()
Port2Response(result=1, node=None)

A server parses requests and encodes the replies:

>>> server = EpmdServer()
>>> server.receive_data(bytes.fromhex("00 01 6e"))
>>> server.next_event()
NamesRequest()
>>> NamesResponse(4369, (("f25", 46581),)).to_bytes()
b'\\x00\\x00\\x11\\x11name f25 at port 46581\\n'
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import Enum
from typing import Final

from .errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "ALIVE2_REQ",
    "ALIVE2_RESP",
    "ALIVE2_X_RESP",
    "DUMP_REQ",
    "EPMD_PORT",
    "KILL_REQ",
    "NAMES_REQ",
    "NEED_DATA",
    "NODE_TYPE_HIDDEN",
    "NODE_TYPE_NORMAL",
    "PORT2_RESP",
    "PORT_PLEASE2_REQ",
    "STOP_REQ",
    "Alive2Request",
    "InvalidAlive2Request",
    "Alive2Response",
    "ConnectionClosed",
    "DumpRequest",
    "DumpResponse",
    "EpmdClient",
    "EpmdServer",
    "KillRequest",
    "KillResponse",
    "NamesRequest",
    "NamesResponse",
    "NodeEntry",
    "Port2Response",
    "PortPlease2Request",
    "Request",
    "Response",
    "StopRequest",
    "StopResponse",
    "validate_node_name",
]

EPMD_PORT: Final = 4369

ALIVE2_REQ: Final = 120  # 'x'
ALIVE2_X_RESP: Final = 118  # 'v'
ALIVE2_RESP: Final = 121  # 'y'
PORT_PLEASE2_REQ: Final = 122  # 'z'
PORT2_RESP: Final = 119  # 'w'
NAMES_REQ: Final = 110  # 'n'
DUMP_REQ: Final = 100  # 'd'
KILL_REQ: Final = 107  # 'k'
STOP_REQ: Final = 115  # 's'

NODE_TYPE_NORMAL: Final = 77  # 'M'
NODE_TYPE_HIDDEN: Final = 72  # 'H'

#: Largest NAMES/DUMP text a client buffers before giving up.
MAX_LISTING: Final = 1 << 20


class _NeedData(Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by ``next_event`` when more bytes are needed.
NEED_DATA: Final = _NeedData.NEED_DATA


def validate_node_name(
    name: str | bytes, *, remote: bool = False, allow_empty: bool = False
) -> str:
    """Check an alive name (no ``@host``) as EPMD does and return it as ``str``.

    Names are atoms: valid UTF-8, no NUL, at most 255 characters. Raises
    :class:`RemoteProtocolError` if ``remote`` else :class:`LocalProtocolError`.
    """
    err = RemoteProtocolError if remote else LocalProtocolError
    if isinstance(name, (bytes, bytearray, memoryview)):
        try:
            text = bytes(name).decode("utf-8")
        except UnicodeDecodeError:
            raise err("node name is not valid UTF-8") from None
    elif isinstance(name, str):
        text = name
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise err("node name is not encodable as UTF-8") from None
    else:
        raise TypeError(f"node name must be str or bytes, not {type(name).__name__}")
    if not text and not allow_empty:
        raise err("empty node name")
    if "\x00" in text:
        raise err("node name contains NUL")
    if len(text) > 255:
        raise err(f"node name has {len(text)} characters, more than 255")
    return text


def _u16(value: int, what: str) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{what} {value} does not fit in 16 bits")
    return value.to_bytes(2, "big")


def _frame(body: bytes) -> bytes:
    if len(body) > 0xFFFF:
        raise LocalProtocolError("EPMD request longer than 65535 bytes")
    return len(body).to_bytes(2, "big") + body


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """What a node registers and what ``PORT2_RESP`` reports about it."""

    name: str
    port: int
    node_type: int = NODE_TYPE_HIDDEN
    protocol: int = 0
    highest_version: int = 6
    lowest_version: int = 5
    extra: bytes = b""

    def _encode(self) -> bytes:
        name = validate_node_name(self.name).encode("utf-8")
        if not (0 <= self.node_type <= 255 and 0 <= self.protocol <= 255):
            raise LocalProtocolError("node type and protocol must fit in a byte")
        return b"".join(
            (
                _u16(self.port, "port"),
                bytes((self.node_type, self.protocol)),
                _u16(self.highest_version, "highest version"),
                _u16(self.lowest_version, "lowest version"),
                _u16(len(name), "name length"),
                name,
                _u16(len(self.extra), "extra length"),
                bytes(self.extra),
            )
        )

    @classmethod
    def _decode(cls, data: bytes, what: str) -> NodeEntry:
        """Parse the fields after the opcode; ``data`` must be exactly the fields."""
        if len(data) < 10:
            raise RemoteProtocolError(f"{what} too short ({len(data)} bytes)")
        port, node_type, protocol, high, low, nlen = struct.unpack_from(">HBBHHH", data)
        end = 10 + nlen
        if len(data) < end + 2:
            raise RemoteProtocolError(f"{what}: name length {nlen} exceeds the message")
        name = validate_node_name(data[10:end], remote=True)
        (elen,) = struct.unpack_from(">H", data, end)
        if len(data) < end + 2 + elen:
            raise RemoteProtocolError(f"{what}: extra length {elen} exceeds the message")
        extra = bytes(data[end + 2 : end + 2 + elen])
        return cls(name, port, node_type, protocol, high, low, extra)


@dataclass(frozen=True, slots=True)
class Alive2Request:
    """``ALIVE2_REQ``: register ``entry`` (keep the socket open to stay registered)."""

    entry: NodeEntry

    def to_bytes(self) -> bytes:
        return _frame(bytes((ALIVE2_REQ,)) + self.entry._encode())


@dataclass(frozen=True, slots=True)
class InvalidAlive2Request:
    """A well-framed ``ALIVE2_REQ`` whose name is not a valid node name (NUL, bad
    UTF-8, over 255 characters): epmd refuses it with result 1 and keeps the socket."""

    reason: str
    highest_version: int


@dataclass(frozen=True, slots=True)
class PortPlease2Request:
    """``PORT_PLEASE2_REQ``: look up a node by its alive name (no ``@host``)."""

    name: str

    def to_bytes(self) -> bytes:
        return _frame(bytes((PORT_PLEASE2_REQ,)) + validate_node_name(self.name).encode())


@dataclass(frozen=True, slots=True)
class NamesRequest:
    """``NAMES_REQ``: list the registered names."""

    def to_bytes(self) -> bytes:
        return _frame(bytes((NAMES_REQ,)))


@dataclass(frozen=True, slots=True)
class DumpRequest:
    """``DUMP_REQ``: debug listing (local peers only)."""

    def to_bytes(self) -> bytes:
        return _frame(bytes((DUMP_REQ,)))


@dataclass(frozen=True, slots=True)
class KillRequest:
    """``KILL_REQ``: ask EPMD to terminate (local peers only)."""

    def to_bytes(self) -> bytes:
        return _frame(bytes((KILL_REQ,)))


@dataclass(frozen=True, slots=True)
class StopRequest:
    """``STOP_REQ``: unregister ``name`` (relaxed mode, local peers only)."""

    name: str

    def to_bytes(self) -> bytes:
        return _frame(bytes((STOP_REQ,)) + validate_node_name(self.name).encode())


Request = (
    Alive2Request | PortPlease2Request | NamesRequest | DumpRequest | KillRequest | StopRequest
)


@dataclass(frozen=True, slots=True)
class Alive2Response:
    """``ALIVE2_X_RESP`` (32-bit creation) or, if not ``extended``, ``ALIVE2_RESP``."""

    result: int
    creation: int
    extended: bool = True

    @property
    def ok(self) -> bool:
        return self.result == 0

    def to_bytes(self) -> bytes:
        if self.extended:
            return struct.pack(">BBI", ALIVE2_X_RESP, self.result, self.creation)
        return struct.pack(">BBH", ALIVE2_RESP, self.result, self.creation & 0xFFFF)


@dataclass(frozen=True, slots=True)
class Port2Response:
    """``PORT2_RESP``: ``node`` is set on success (``result == 0``)."""

    result: int
    node: NodeEntry | None = None

    def to_bytes(self) -> bytes:
        if self.node is None:
            return bytes((PORT2_RESP, self.result or 1))
        return bytes((PORT2_RESP, 0)) + self.node._encode()


@dataclass(frozen=True, slots=True)
class NamesResponse:
    """``NAMES_RESP``: EPMD's own port and the ``(name, port)`` pairs registered."""

    epmd_port: int
    nodes: tuple[tuple[str, int], ...]

    def to_bytes(self) -> bytes:
        text = "".join(f"name {n} at port {p}\n" for n, p in self.nodes)
        return struct.pack(">I", self.epmd_port) + text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class DumpResponse:
    """``DUMP_RESP``: EPMD's port and its free-form listing."""

    epmd_port: int
    text: str

    def to_bytes(self) -> bytes:
        return struct.pack(">I", self.epmd_port) + self.text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class KillResponse:
    """Reply to ``KILL_REQ``: ``OK`` or ``NO``."""

    ok: bool

    def to_bytes(self) -> bytes:
        return b"OK" if self.ok else b"NO"


@dataclass(frozen=True, slots=True)
class StopResponse:
    """Reply to ``STOP_REQ``: ``STOPPED`` or ``NOEXIST``."""

    stopped: bool

    def to_bytes(self) -> bytes:
        return b"STOPPED" if self.stopped else b"NOEXIST"


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed the connection (or, on a registration, sent more bytes)."""


Response = (
    Alive2Response | Port2Response | NamesResponse | DumpResponse | KillResponse | StopResponse
)

_NAME_LINE = re.compile(r"name (.+) at port (\d+)")


def _parse_names(text: str) -> tuple[tuple[str, int], ...]:
    nodes: list[tuple[str, int]] = []
    for line in text.split("\n"):
        if not line:
            continue
        m = _NAME_LINE.fullmatch(line)
        if m is None:
            raise RemoteProtocolError(f"malformed NAMES line {line!r}")
        port = int(m.group(2))
        if port > 0xFFFF:
            raise RemoteProtocolError(f"port {port} out of range in NAMES line")
        nodes.append((m.group(1), port))
    return tuple(nodes)


# --------------------------------------------------------------------------- client


class EpmdClient:
    """One EPMD request and its response, sans I/O (``erl_epmd`` does the same).

    Call :meth:`send`, write the bytes, feed what arrives to :meth:`receive_data`
    (``b""`` at end of stream) and poll :meth:`next_event` until it returns a
    response or :class:`ConnectionClosed`. After an ``ALIVE2`` response, keep the
    socket open: closing it unregisters the node.
    """

    def __init__(self, *, max_listing: int = MAX_LISTING) -> None:
        self._request: Request | None = None
        self._buf = bytearray()
        self._eof = False
        self._done = False
        self._error: RemoteProtocolError | None = None
        self._max_listing = max_listing

    @property
    def request(self) -> Request | None:
        return self._request

    def send(self, request: Request) -> bytes:
        """Encode ``request``; one per client object."""
        if self._request is not None:
            raise LocalProtocolError("EPMD takes one request per connection")
        data = request.to_bytes()
        self._request = request
        return data

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from EPMD; ``b""`` means the connection closed."""
        if self._eof and data:
            raise LocalProtocolError("data received after end of stream")
        if not data:
            self._eof = True
        else:
            self._buf += data
            if len(self._buf) > self._max_listing + 4:
                self._fail(f"EPMD response longer than {self._max_listing} bytes")

    def _fail(self, msg: str) -> None:
        self._error = RemoteProtocolError(msg)
        raise self._error

    def next_event(self) -> Response | ConnectionClosed | _NeedData:
        """The response, :data:`NEED_DATA`, or :class:`ConnectionClosed` afterwards."""
        if self._error is not None:
            raise self._error
        if self._done:
            return ConnectionClosed() if self._eof else NEED_DATA
        if self._request is None:
            raise LocalProtocolError("no request sent yet")
        try:
            ev = self._parse()
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        if ev is NEED_DATA and self._eof:
            if not self._buf:
                self._done = True
                return ConnectionClosed()
            self._fail(f"EPMD closed mid-response ({len(self._buf)} bytes buffered)")
        if ev is not NEED_DATA:
            self._done = True
        return ev

    def _parse(self) -> Response | _NeedData:
        buf, req = self._buf, self._request
        if isinstance(req, (NamesRequest, DumpRequest)):
            if not self._eof:
                return NEED_DATA
            if len(buf) < 4:
                return NEED_DATA
            (port,) = struct.unpack_from(">I", buf)
            try:
                text = bytes(buf[4:]).decode("utf-8")
            except UnicodeDecodeError:
                raise RemoteProtocolError("EPMD listing is not valid UTF-8") from None
            del buf[:]
            if isinstance(req, DumpRequest):
                return DumpResponse(port, text)
            return NamesResponse(port, _parse_names(text))
        if isinstance(req, KillRequest):
            if len(buf) < 2:
                return NEED_DATA
            word = bytes(buf[:2])
            if word not in (b"OK", b"NO"):
                raise RemoteProtocolError(f"unexpected KILL reply {word!r}")
            del buf[:2]
            return KillResponse(word == b"OK")
        if isinstance(req, StopRequest):
            if len(buf) < 7:
                return NEED_DATA
            word = bytes(buf[:7])
            if word not in (b"STOPPED", b"NOEXIST"):
                raise RemoteProtocolError(f"unexpected STOP reply {word!r}")
            del buf[:7]
            return StopResponse(word == b"STOPPED")
        if not buf:
            return NEED_DATA
        tag = buf[0]
        if isinstance(req, Alive2Request):
            if tag == ALIVE2_X_RESP:
                if len(buf) < 6:
                    return NEED_DATA
                _, result, creation = struct.unpack_from(">BBI", buf)
                del buf[:6]
                return Alive2Response(result, creation, True)
            if tag == ALIVE2_RESP:
                if len(buf) < 4:
                    return NEED_DATA
                _, result, creation = struct.unpack_from(">BBH", buf)
                del buf[:4]
                return Alive2Response(result, creation, False)
            raise RemoteProtocolError(f"unexpected reply tag {tag} to ALIVE2_REQ")
        assert isinstance(req, PortPlease2Request)
        if tag != PORT2_RESP:
            raise RemoteProtocolError(f"unexpected reply tag {tag} to PORT_PLEASE2_REQ")
        if len(buf) < 2:
            return NEED_DATA
        if buf[1] != 0:
            result = buf[1]
            del buf[:2]
            return Port2Response(result, None)
        # success: opcode, result, then 10 fixed bytes, name, 2-byte elen, extra
        if len(buf) < 12:
            return NEED_DATA
        (nlen,) = struct.unpack_from(">H", buf, 10)
        if len(buf) < 14 + nlen:
            return NEED_DATA
        (elen,) = struct.unpack_from(">H", buf, 12 + nlen)
        end = 14 + nlen + elen
        if len(buf) < end:
            return NEED_DATA
        entry = NodeEntry._decode(bytes(buf[2:end]), "PORT2_RESP")
        del buf[:end]
        return Port2Response(0, entry)


# --------------------------------------------------------------------------- server


class EpmdServer:
    """The request side of one EPMD connection, for an embedded EPMD (``epmd_srv.c``).

    :meth:`next_event` yields one :data:`Request`; the caller answers with the
    matching response's ``to_bytes()``. A malformed request raises
    :class:`RemoteProtocolError`: close the socket without a reply, as EPMD does.
    After an :class:`Alive2Request` the socket is the registration: any further
    byte, or end of stream, yields :class:`ConnectionClosed` (unregister then).
    Which requests a non-local peer may make is the caller's policy.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._eof = False
        self._state = "IDLE"  # IDLE -> ANSWERED | REGISTERED -> CLOSED
        self._error: RemoteProtocolError | None = None

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the client; ``b""`` means the connection closed."""
        if self._eof and data:
            raise LocalProtocolError("data received after end of stream")
        if not data:
            self._eof = True
        else:
            self._buf += data

    def next_event(self) -> Request | InvalidAlive2Request | ConnectionClosed | _NeedData:
        """Parse the request; :class:`ConnectionClosed` when the client is gone."""
        if self._error is not None:
            raise self._error
        if self._state == "CLOSED":
            return ConnectionClosed()
        if self._state == "REGISTERED":
            if self._buf or self._eof:
                self._state = "CLOSED"
                return ConnectionClosed()
            return NEED_DATA
        if self._state == "ANSWERED":
            if self._eof:
                self._state = "CLOSED"
                return ConnectionClosed()
            if self._buf:
                self._error = RemoteProtocolError("EPMD takes one request per connection")
                raise self._error
            return NEED_DATA
        try:
            ev = self._parse()
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        if ev is NEED_DATA:
            if self._eof:
                self._state = "CLOSED"
                if self._buf:
                    self._error = RemoteProtocolError("connection closed mid-request")
                    raise self._error
                return ConnectionClosed()
            return ev
        self._state = "REGISTERED" if isinstance(ev, Alive2Request) else "ANSWERED"
        return ev

    def _parse(self) -> Request | InvalidAlive2Request | _NeedData:
        buf = self._buf
        if len(buf) < 2:
            return NEED_DATA
        (length,) = struct.unpack_from(">H", buf)
        if len(buf) < 2 + length:
            return NEED_DATA
        body = bytes(buf[2 : 2 + length])
        del buf[: 2 + length]
        if not body:
            raise RemoteProtocolError("empty EPMD request")
        op = body[0]
        if op == ALIVE2_REQ:
            try:
                entry = NodeEntry._decode(body[1:], "ALIVE2_REQ")
            except RemoteProtocolError as exc:
                if not _alive2_well_framed(body[1:]):
                    raise
                # epmd answers a well-framed request with a bad name with result 1.
                (high,) = struct.unpack_from(">H", body, 5)
                return InvalidAlive2Request(str(exc), high)
            return Alive2Request(entry)
        if op == PORT_PLEASE2_REQ:
            raw = body[1:]
            if raw.endswith(b"\0"):  # epmd_srv.c drops one trailing NUL
                raw = raw[:-1]
            return PortPlease2Request(validate_node_name(raw, remote=True))
        if op == STOP_REQ:
            return StopRequest(validate_node_name(body[1:], remote=True))
        # epmd_srv.c looks only at the first byte of these; trailing bytes are ignored.
        if op == NAMES_REQ:
            return NamesRequest()
        if op == DUMP_REQ:
            return DumpRequest()
        if op == KILL_REQ:
            return KillRequest()
        raise RemoteProtocolError(f"unknown EPMD request code {op}")


def _alive2_well_framed(data: bytes) -> bool:
    """The ALIVE2 fields' lengths are consistent (only the name's content is bad)."""
    if len(data) < 10:
        return False
    (nlen,) = struct.unpack_from(">H", data, 8)
    end = 10 + nlen
    if len(data) < end + 2:
        return False
    (elen,) = struct.unpack_from(">H", data, end)
    return bool(len(data) >= end + 2 + int(elen))
