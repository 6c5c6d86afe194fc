import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dist_proto.control import Control, RegSend, Send, SendSender, SpawnReply
from dist_proto.errors import DecodeError, ProtocolError, RemoteProtocolError
from dist_proto.etf import encode
from dist_proto.flags import DEFAULT_FLAGS, MANDATORY, DFlag
from dist_proto.framing import NEED_DATA, TICK, ControlMessage, DistConnection, Tick
from dist_proto.terms import Atom, Pid, Reference

PY = Pid(Atom("py@localhost"), 1, 0, 4)
REF = Reference(Atom("py@localhost"), 4, (1, 2, 3))
PASS_FLAGS = MANDATORY | DFlag.DIST_MONITOR  # neither atom cache nor fragments
REG_SEND_PT = bytes.fromhex(
    "00 00 00 2d 70 83 68 04 61 06 58 77 0c 70 79 40 6c 6f 63 61 6c 68 6f 73 74 00 00 00 01"
    " 00 00 00 00 00 00 00 04 77 00 77 03 66 6f 6f 83 77 02 68 69"
)
REG_SEND_HDR = REG_SEND_PT[:4] + b"\x83\x44\x00" + REG_SEND_PT[6:-5] + REG_SEND_PT[-4:]
REG = RegSend(PY, Atom("foo"), Atom("hi"))


def events(conn: DistConnection, data: bytes) -> list[object]:
    conn.receive_data(data)
    return list(conn.events())


def test_reg_send_vector_pass_through() -> None:
    assert DistConnection(PASS_FLAGS).send(REG) == REG_SEND_PT
    assert DistConnection(PASS_FLAGS).encode_reg_send(PY, Atom("foo"), Atom("hi")) == REG_SEND_PT


@pytest.mark.parametrize(
    "flags", [DEFAULT_FLAGS, MANDATORY | DFlag.FRAGMENTS, MANDATORY | DFlag.DIST_HDR_ATOM_CACHE]
)
def test_reg_send_vector_header(flags: int) -> None:
    assert len(REG_SEND_HDR) == len(REG_SEND_PT)
    assert DistConnection(flags).send(REG) == REG_SEND_HDR


@pytest.mark.parametrize("data", [REG_SEND_PT, REG_SEND_HDR])
@pytest.mark.parametrize("flags", [PASS_FLAGS, DEFAULT_FLAGS])
def test_reg_send_vector_decodes(data: bytes, flags: int) -> None:
    assert events(DistConnection(flags), data) == [ControlMessage(REG)]


def test_ticks() -> None:
    conn = DistConnection(DEFAULT_FLAGS)
    assert conn.tick_bytes() == b"\x00\x00\x00\x00"
    assert events(conn, b"\x00\x00\x00\x00" * 2 + b"\x00\x00") == [TICK, Tick()]
    assert events(conn, b"\x00\x00") == [TICK]
    assert conn.next_event() is NEED_DATA


def _hdr_packet(header: bytes, *terms: bytes) -> bytes:
    body = b"\x83\x44" + header + b"".join(terms)
    return struct.pack(">I", len(body)) + body


def _body(term: object) -> bytes:
    return encode(term)[1:]


def test_atom_cache_example() -> None:
    conn = DistConnection(DEFAULT_FLAGS)
    pid = _body(PY)
    # first message: new entries '' -> slot 4*256+10 and foo -> slot 5
    first = _hdr_packet(
        bytes([2, 0x8C, 0x00, 0x0A, 0x00, 0x05, 0x03]) + b"foo",
        bytes([104, 3, 97, 2, 82, 0]) + pid,
        bytes([82, 1]),
    )
    assert events(conn, first) == [ControlMessage(Send(PY, Atom("foo")))]
    # the erl_ext_dist example: 5, 0x04, 0x89, 0x09
    header = bytes([5, 0x04, 0x89, 0x09, 0x0A, 0x05])
    header += bytes([0xEC, 3]) + b"reg" + bytes([0x09, 4]) + b"call"
    header += bytes([0xEE, 13]) + b"set_get_state"
    ctrl = bytes([104, 4, 97, 6]) + pid + bytes([82, 0, 82, 2])
    payload = bytes([104, 3, 82, 3, 82, 4, 82, 1])
    evs = events(conn, _hdr_packet(header, ctrl, payload))
    expected = RegSend(PY, Atom("reg"), (Atom("call"), Atom("set_get_state"), Atom("foo")))
    assert evs == [ControlMessage(expected)]
    assert conn._cache[256 + 236] == Atom("reg")
    assert conn._cache[9] == Atom("call")
    assert conn._cache[256 + 238] == Atom("set_get_state")


def test_atom_cache_long_atoms_and_empty_slot() -> None:
    conn = DistConnection(DEFAULT_FLAGS)
    ctrl = bytes([104, 3, 97, 2, 82, 0]) + _body(PY)
    pkt = _hdr_packet(bytes([1, 0x18, 0x07, 0x00, 0x03]) + b"abc", ctrl, bytes([82, 0]))
    assert events(conn, pkt) == [ControlMessage(Send(PY, Atom("abc")))]
    pkt = _hdr_packet(bytes([1, 0x01, 0x08]), ctrl, bytes([82, 0]))
    with pytest.raises(RemoteProtocolError, match="empty slot 264"):
        events(conn, pkt)


def test_atom_cache_ref_out_of_header_range() -> None:
    conn = DistConnection(DEFAULT_FLAGS)
    pkt = _hdr_packet(b"\x00", bytes([104, 3, 97, 2, 82, 0]) + _body(PY), b"\x6a")
    with pytest.raises(RemoteProtocolError, match="corrupted external term"):
        events(conn, pkt)


def test_max_frame_checked_before_body_arrives() -> None:
    conn = DistConnection(DEFAULT_FLAGS, max_frame=100)
    with pytest.raises(RemoteProtocolError, match="exceeds the 100-byte limit"):
        events(conn, b"\x00\x00\x00\x65")
    with pytest.raises(RemoteProtocolError):  # error state persists
        conn.next_event()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\x71\x83\x6a", "starts with 113"),
        (b"\x83\x47", "unknown distribution header tag 71"),
        (b"\x70" + encode((2, Atom(""), PY)) + encode(1) + b"\x00", "trailing bytes"),
        (b"\x70" + encode((9, PY, PY)), "unknown distribution operation"),
        (b"\x70" + encode((6, PY, Atom(""), Atom("x"), 1)) + encode(1), "REG_SEND: expected"),
        (b"\x70\x83\x99", "corrupted external term"),
        (b"\x70" + encode((2, Atom(""), PY)) + b"\x6a", "corrupted external term"),
    ],
)
def test_bad_packets(body: bytes, match: str) -> None:
    conn = DistConnection(PASS_FLAGS)
    with pytest.raises(RemoteProtocolError, match=match):
        events(conn, struct.pack(">I", len(body)) + body)


def test_events_before_a_bad_packet_are_delivered() -> None:
    conn = DistConnection(PASS_FLAGS)
    conn.receive_data(REG_SEND_PT + b"\x00\x00\x00\x01\x00")
    it = conn.events()
    assert next(it) == ControlMessage(REG)
    with pytest.raises(RemoteProtocolError):
        next(it)


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def test_fragmentation_roundtrip() -> None:
    sender = DistConnection(DEFAULT_FLAGS, fragment_size=100)
    msg = RegSend(PY, Atom("foo"), bytes(range(256)) * 2)
    data = sender.send(msg)
    frames = _frames(data)
    assert len(frames) == 6  # 517-byte payload body
    assert frames[0][:2] == b"\x83\x45" and all(f[:2] == b"\x83\x46" for f in frames[1:])
    ids = [struct.unpack_from(">QQ", f, 2) for f in frames]
    assert [i[1] for i in ids] == [6, 5, 4, 3, 2, 1]
    assert len({i[0] for i in ids}) == 1
    receiver = DistConnection(DEFAULT_FLAGS)
    assert events(receiver, data) == [ControlMessage(msg)]
    assert receiver.open_sequences == 0
    # small messages are not fragmented, nor is anything without FRAGMENTS
    assert sender.send(REG) == REG_SEND_HDR
    no_frag = DistConnection(MANDATORY | DFlag.DIST_HDR_ATOM_CACHE, fragment_size=100)
    assert len(_frames(no_frag.send(msg))) == 1


def test_interleaved_sequences() -> None:
    sender = DistConnection(DEFAULT_FLAGS, fragment_size=50)
    m1 = Send(PY, b"a" * 120)
    m2 = Send(PY, b"b" * 120)
    f1, f2 = _frames(sender.send(m1)), _frames(sender.send(m2))
    order = [f1[0], f2[0], f2[1], f1[1], f1[2], f2[2]]
    data = b"".join(struct.pack(">I", len(f)) + f for f in order)
    assert events(DistConnection(DEFAULT_FLAGS), data) == [ControlMessage(m1), ControlMessage(m2)]


def _frag(tag: int, seq: int, frag: int, rest: bytes) -> bytes:
    body = bytes([131, tag]) + struct.pack(">QQ", seq, frag) + rest
    return struct.pack(">I", len(body)) + body


def test_fragment_errors() -> None:
    start = _frag(69, 7, 3, b"\x00" + _body((2, Atom(""), PY)) + b"\x6d\x00\x00")
    with pytest.raises(RemoteProtocolError, match="out of order"):
        events(DistConnection(DEFAULT_FLAGS), start + _frag(70, 7, 1, b"x"))
    with pytest.raises(RemoteProtocolError, match="unknown sequence"):
        events(DistConnection(DEFAULT_FLAGS), _frag(70, 7, 1, b"x"))
    with pytest.raises(RemoteProtocolError, match="duplicate start"):
        events(DistConnection(DEFAULT_FLAGS), start + start)
    with pytest.raises(RemoteProtocolError, match="open fragment sequences"):
        events(
            DistConnection(DEFAULT_FLAGS, max_sequences=2),
            start + start.replace(b"\x07", b"\x08", 1) + start.replace(b"\x07", b"\x09", 1),
        )
    with pytest.raises(RemoteProtocolError, match="over 40 bytes"):
        events(
            DistConnection(DEFAULT_FLAGS, max_message=40),
            start + _frag(70, 7, 2, b"x" * 40),
        )
    # a single-fragment 69 sequence is a whole message
    whole = _frag(69, 1, 1, b"\x00" + _body((2, Atom(""), PY)) + _body(5))
    assert events(DistConnection(DEFAULT_FLAGS), whole) == [ControlMessage(Send(PY, 5))]


def test_fast_paths() -> None:
    other = Pid(Atom("b@h"), 5, 0, 1)
    conn = DistConnection(DEFAULT_FLAGS)
    rx = DistConnection(DEFAULT_FLAGS)
    assert events(rx, conn.encode_send(other, 1, PY)) == [ControlMessage(SendSender(PY, other, 1))]
    assert events(rx, conn.encode_send(other, 1)) == [ControlMessage(Send(other, 1))]
    plain = DistConnection(PASS_FLAGS)
    assert events(rx, plain.encode_send(other, 1, PY)) == [ControlMessage(Send(other, 1))]
    reply = SpawnReply(REF, other, 2, PY)
    assert events(rx, conn.send(reply)) == [ControlMessage(reply)]


STREAM_MSGS: list[Control] = [
    REG,
    Send(PY, [1, 2, 3]),
    SendSender(PY, PY, b"z" * 300),
    SpawnReply(REF, PY, 0, Atom("notsup")),
]


def _stream() -> bytes:
    sender = DistConnection(DEFAULT_FLAGS, fragment_size=64)
    parts = []
    for m in STREAM_MSGS:
        parts.append(sender.send(m))
        parts.append(sender.tick_bytes())
    return b"".join(parts)


@given(st.lists(st.integers(0, 1000), max_size=12))
def test_chunked_feeding_gives_same_events(cuts: list[int]) -> None:
    stream = _stream()
    points = sorted({min(c, len(stream)) for c in cuts})
    conn = DistConnection(DEFAULT_FLAGS)
    got: list[object] = []
    for i, j in zip([0, *points], [*points, len(stream)], strict=True):
        got.extend(events(conn, stream[i:j]))
    expected: list[object] = []
    for m in STREAM_MSGS:
        expected += [ControlMessage(m), TICK]
    assert got == expected
    assert conn.next_event() is NEED_DATA


@settings(max_examples=300)
@given(st.binary(max_size=600), st.integers(1, 80), st.booleans())
def test_fuzz(data: bytes, step: int, header: bool) -> None:
    conn = DistConnection(DEFAULT_FLAGS if header else PASS_FLAGS, max_frame=1 << 16)
    try:
        for i in range(0, len(data), step):
            events(conn, data[i : i + step])
    except (ProtocolError, DecodeError):
        pass


@settings(max_examples=300)
@given(st.binary(max_size=200), st.sampled_from([68, 69, 70]))
def test_fuzz_headers(rest: bytes, tag: int) -> None:
    body = bytes([131, tag]) + rest
    conn = DistConnection(DEFAULT_FLAGS)
    try:
        events(conn, struct.pack(">I", len(body)) + body)
    except (ProtocolError, DecodeError):
        pass
