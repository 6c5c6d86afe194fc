import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dist_proto.errors import DecodeError, LocalProtocolError, ProtocolError, RemoteProtocolError
from dist_proto.flags import DEFAULT_FLAGS, MANDATORY, DFlag, expand_digest
from dist_proto.handshake import (
    NEED_DATA,
    AliveQuery,
    AliveReply,
    ClientHandshake,
    HandshakeComplete,
    HandshakeRejected,
    HandshakeState,
    Named,
    NameReceived,
    ServerHandshake,
    compute_digest,
    simultaneous_status,
)

PY_FLAGS = 0x4_0707_0FBC


def drain(hs: ClientHandshake | ServerHandshake) -> list[object]:
    out: list[object] = []
    while True:
        ev = hs.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)


def pump(
    a: ClientHandshake, b: ServerHandshake, answer: dict[type, object] | None = None
) -> tuple[list[object], list[object]]:
    """Shuttle bytes until neither side has anything to say; answer decision events."""
    answer = answer or {}
    a_events: list[object] = []
    b_events: list[object] = []
    for _ in range(20):
        moved = False
        data = a.data_to_send()
        if data:
            moved = True
            b.receive_data(data)
        for ev in drain(b):
            b_events.append(ev)
            act = answer.get(type(ev))
            if act is not None:
                act(ev)  # type: ignore[operator]
        data = b.data_to_send()
        if data:
            moved = True
            a.receive_data(data)
        for ev in drain(a):
            a_events.append(ev)
            act = answer.get(type(ev))
            if act is not None:
                act(ev)  # type: ignore[operator]
        if not moved and not a._out and not b._out:
            break
    return a_events, b_events


def make(**kw: object) -> tuple[ClientHandshake, ServerHandshake]:
    a = ClientHandshake("a@host", kw.pop("a_cookie", "secret"), creation=5, **kw)  # type: ignore[arg-type]
    b = ServerHandshake("b@host", "secret", creation=6)
    return a, b


def test_digest_vectors() -> None:
    assert compute_digest(1234567, "secret").hex() == "1074ec9d831e47aa83e47394ca29f2de"
    assert compute_digest(4294967295, b"secret").hex() == "5dfd181e69aa587cc812eb333e6536b6"


def test_send_name_vector() -> None:
    a = ClientHandshake("py@localhost", "c", flags=PY_FLAGS, creation=4)
    assert a.data_to_send() == bytes.fromhex(
        "00 1b 4e 00 00 00 04 07 07 0f bc 00 00 00 04 00 0c 70 79 40 6c 6f 63 61 6c 68 6f 73 74"
    )


@pytest.mark.parametrize("status", ["ok", "ok_simultaneous"])
def test_ok_paths(status: str) -> None:
    a, b = make(peer_name="b@host")
    a_ev, b_ev = pump(a, b, {NameReceived: lambda ev: b.accept(status)})
    assert isinstance(b_ev[0], NameReceived)
    assert (b_ev[0].name, b_ev[0].creation, b_ev[0].flags) == ("a@host", 5, DEFAULT_FLAGS)
    done_a, done_b = a_ev[-1], b_ev[-1]
    assert isinstance(done_a, HandshakeComplete) and isinstance(done_b, HandshakeComplete)
    assert (done_a.peer_name, done_a.peer_creation, done_a.name) == ("b@host", 6, "a@host")
    assert (done_b.peer_name, done_b.peer_creation, done_b.name) == ("a@host", 5, "b@host")
    assert done_a.flags == done_b.flags == expand_digest(DEFAULT_FLAGS)
    assert a.state is b.state is HandshakeState.DONE
    assert done_a.leftover == done_b.leftover == b""


def test_negotiated_flags_are_and() -> None:
    a = ClientHandshake("a@host", "secret", creation=5, flags=0x4_0600_0000 | DFlag.DIST_MONITOR)
    b = ServerHandshake("b@host", "secret", creation=6)
    a_ev, b_ev = pump(a, b, {NameReceived: lambda ev: b.accept()})
    done = a_ev[-1]
    assert isinstance(done, HandshakeComplete)
    assert done.flags == expand_digest(0x4_0600_0000) | DFlag.DIST_MONITOR
    assert not done.flags & DFlag.FRAGMENTS
    assert b_ev[-1].flags == done.flags  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", ["nok", "not_allowed"])
def test_refused(status: str) -> None:
    a, b = make()
    a_ev, b_ev = pump(a, b, {NameReceived: lambda ev: b.accept(status)})
    assert a_ev == [HandshakeRejected(status)]
    assert a.state is b.state is HandshakeState.CLOSED


def test_alive_true_then_proceed() -> None:
    a, b = make()
    a_ev, b_ev = pump(
        a,
        b,
        {
            NameReceived: lambda ev: b.accept("alive"),
            AliveQuery: lambda ev: a.answer_alive(True),
            AliveReply: lambda ev: b.proceed(),
        },
    )
    assert a_ev[0] == AliveQuery()
    assert b_ev[1] == AliveReply(True)
    assert isinstance(a_ev[-1], HandshakeComplete) and isinstance(b_ev[-1], HandshakeComplete)


def test_alive_false() -> None:
    a, b = make()
    a_ev, b_ev = pump(
        a,
        b,
        {NameReceived: lambda ev: b.accept("alive"), AliveQuery: lambda ev: a.answer_alive(False)},
    )
    assert b_ev[-1] == AliveReply(False)
    assert a.state is b.state is HandshakeState.CLOSED


def test_dynamic_name() -> None:
    a = ClientHandshake("somehost", "secret", creation=0, name_me=True)
    b = ServerHandshake("b@host", "secret", creation=6)
    body = a.data_to_send()
    assert body.endswith(b"\x00\x08somehost")
    b.receive_data(body)
    ev = b.next_event()
    assert isinstance(ev, NameReceived) and ev.name_me and ev.name == "somehost"
    with pytest.raises(LocalProtocolError):
        b.accept("ok")
    b.accept("named", name="X12@somehost", creation=77)
    out = b.data_to_send()
    assert out.startswith(b"\x00\x19snamed:\x00\x0cX12@somehost\x00\x00\x00\x4d")
    a.receive_data(out)
    assert a.next_event() == Named("X12@somehost", 77)
    a_ev, b_ev = pump(a, b)
    done_a, done_b = a_ev[-1], b_ev[-1]
    assert isinstance(done_a, HandshakeComplete) and isinstance(done_b, HandshakeComplete)
    assert (done_a.name, done_a.creation) == ("X12@somehost", 77)
    assert (done_b.peer_name, done_b.peer_creation) == ("X12@somehost", 77)
    assert not done_a.flags & DFlag.NAME_ME


def test_dynamic_name_refused() -> None:
    a = ClientHandshake("h", "secret", creation=0, name_me=True)
    b = ServerHandshake("b@host", "secret", creation=6)
    a_ev, _ = pump(a, b, {NameReceived: lambda ev: b.accept("not_allowed")})
    assert a_ev == [HandshakeRejected("not_allowed")]


def test_wrong_cookie_detected_by_acceptor() -> None:
    a, b = make(a_cookie="other")
    with pytest.raises(RemoteProtocolError, match="a@host"):
        pump(a, b, {NameReceived: lambda ev: b.accept()})
    assert b.state is HandshakeState.ERROR
    with pytest.raises(RemoteProtocolError):
        b.next_event()


def test_wrong_cookie_detected_by_initiator() -> None:
    a, b = make()
    b.receive_data(a.data_to_send())
    b.next_event()
    b.accept()
    a.receive_data(b.data_to_send())
    assert a.next_event() is NEED_DATA
    b.receive_data(a.data_to_send())
    assert isinstance(b.next_event(), HandshakeComplete)
    ack = bytearray(b.data_to_send())
    ack[-1] ^= 1
    a.receive_data(bytes(ack))
    with pytest.raises(RemoteProtocolError, match="b@host"):
        a.next_event()
    assert a.state is HandshakeState.ERROR


def test_acceptor_refuses_missing_mandatory_flags() -> None:
    flags = int(DEFAULT_FLAGS) & ~int(DFlag.V4_NC | DFlag.UNLINK_ID)
    a = ClientHandshake("a@host", "secret", creation=5, flags=flags)
    b = ServerHandshake("b@host", "secret", creation=6)
    b.receive_data(a.data_to_send())
    with pytest.raises(RemoteProtocolError, match="UNLINK_ID, V4_NC"):
        b.next_event()
    assert b.data_to_send() == b"\x00\x0csnot_allowed"
    assert b.state is HandshakeState.ERROR


def test_initiator_checks_acceptor_flags() -> None:
    a = ClientHandshake("a@host", "secret", creation=5)
    b = ServerHandshake("b@host", "secret", creation=6, flags=0x1070F94, required_flags=0)
    with pytest.raises(RemoteProtocolError, match="UNLINK_ID, V4_NC"):
        pump(a, b, {NameReceived: lambda ev: b.accept()})


def test_acceptor_sends_full_name_and_initiator_checks_it() -> None:
    a = ClientHandshake("a@host", "secret", creation=5, peer_name="c@host")
    b = ServerHandshake("b@host.example.com", "secret", creation=6, challenge=1234567)
    b.receive_data(a.data_to_send())
    b.next_event()
    b.accept()
    out = b.data_to_send()
    challenge = out[2 + 3 + 2 :]
    assert challenge[0:1] == b"N"
    assert struct.unpack(">QIIH", challenge[1:19]) == (DEFAULT_FLAGS, 1234567, 6, 18)
    assert challenge[19:] == b"b@host.example.com"
    a.receive_data(out)
    with pytest.raises(RemoteProtocolError, match="c@host"):
        a.next_event()


def test_leftover_handed_over() -> None:
    a, b = make()
    b.receive_data(a.data_to_send())
    b.next_event()
    b.accept()
    a.receive_data(b.data_to_send())
    a.next_event()
    frames = b"\x00\x00\x00\x00\x00\x00\x00\x02\x70\x83"
    b.receive_data(a.data_to_send() + frames[:3])
    b.receive_data(frames[3:])
    done_b = b.next_event()
    assert isinstance(done_b, HandshakeComplete) and done_b.leftover == frames
    a.receive_data(b.data_to_send() + b"\x00\x00")
    done_a = a.next_event()
    assert isinstance(done_a, HandshakeComplete) and done_a.leftover == b"\x00\x00"
    with pytest.raises(LocalProtocolError):
        a.receive_data(b"x")


def test_v5_send_name_with_complement() -> None:
    b = ServerHandshake("b@host", "secret", creation=6, challenge=99)
    low = int(DEFAULT_FLAGS) & 0xFFFFFFFF
    high = int(DEFAULT_FLAGS) >> 32
    body = b"n" + struct.pack(">HI", 5, low) + b"a@host"
    b.receive_data(struct.pack(">H", len(body)) + body)
    ev = b.next_event()
    assert isinstance(ev, NameReceived) and ev.version == 5 and ev.name == "a@host"
    b.accept()
    assert b.data_to_send()[2:5] == b"sok"
    comp = b"c" + struct.pack(">II", high, 9)
    reply = b"r" + struct.pack(">I", 4242) + compute_digest(99, "secret")
    b.receive_data(struct.pack(">H", 9) + comp + struct.pack(">H", 21) + reply)
    done = b.next_event()
    assert isinstance(done, HandshakeComplete)
    assert done.peer_flags == DEFAULT_FLAGS and done.peer_creation == 9
    assert b.data_to_send() == b"\x00\x11a" + compute_digest(4242, "secret")


def test_v5_complement_missing_high_flags() -> None:
    b = ServerHandshake("b@host", "secret", creation=6)
    body = b"n" + struct.pack(">HI", 5, int(DEFAULT_FLAGS) & 0xFFFFFFFF) + b"a@host"
    b.receive_data(struct.pack(">H", len(body)) + body)
    b.next_event()
    b.accept()
    b.receive_data(b"\x00\x09c\x00\x00\x00\x00\x00\x00\x00\x09")
    with pytest.raises(RemoteProtocolError, match="V4_NC"):
        b.next_event()


def test_bad_names_refused() -> None:
    for name in [b"nohost", b"a@b@c", b"@h", b"\xff@h"]:
        b = ServerHandshake("b@host", "secret", creation=6)
        body = b"N" + struct.pack(">QIH", DEFAULT_FLAGS, 1, len(name)) + name
        b.receive_data(struct.pack(">H", len(body)) + body)
        with pytest.raises(RemoteProtocolError):
            b.next_event()


def test_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        ClientHandshake("nohost", "c", creation=1)
    with pytest.raises(LocalProtocolError):
        ClientHandshake("a@h", "c", creation=1, flags=MANDATORY & ~DFlag.HANDSHAKE_23)
    b = ServerHandshake("b@host", "c", creation=1)
    with pytest.raises(LocalProtocolError):
        b.accept()
    with pytest.raises(LocalProtocolError):
        b.proceed()


def test_simultaneous_status() -> None:
    assert simultaneous_status("a@h", "b@h") == "ok_simultaneous"
    assert simultaneous_status("b@h", "a@h") == "nok"


def _server_stream() -> list[bytes]:
    """The bytes a client sends in a full ok handshake, with fixed challenges."""
    a = ClientHandshake("a@host", "secret", creation=5, challenge=7)
    b = ServerHandshake("b@host", "secret", creation=6, challenge=8)
    sent = [a.data_to_send()]
    b.receive_data(sent[0])
    b.next_event()
    b.accept()
    a.receive_data(b.data_to_send())
    a.next_event()
    sent.append(a.data_to_send())
    return sent


@given(st.lists(st.integers(0, 200), max_size=8))
def test_chunked_feeding_gives_same_events(cuts: list[int]) -> None:
    tail = b"\x00\x00\x00\x00rest"
    stream = b"".join(_server_stream()) + tail
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[i:j] for i, j in zip([0, *points], [*points, len(stream)], strict=True)]
    b = ServerHandshake("b@host", "secret", creation=6, challenge=8)
    events: list[object] = []
    after = b""
    for chunk in chunks:
        if b.state is HandshakeState.DONE:
            after += chunk
            continue
        b.receive_data(chunk)
        while True:
            new = drain(b)
            events.extend(new)
            if new and isinstance(new[-1], NameReceived):
                b.accept()
                continue
            break
    assert [type(e) for e in events] == [NameReceived, HandshakeComplete]
    done = events[-1]
    assert isinstance(done, HandshakeComplete)
    assert done.leftover + after == tail
    assert done.peer_name == "a@host"


@given(st.binary(max_size=400), st.integers(1, 64))
def test_fuzz_server(data: bytes, step: int) -> None:
    b = ServerHandshake("b@host", "secret", creation=6)
    try:
        for i in range(0, len(data), step):
            b.receive_data(data[i : i + step])
            for ev in drain(b):
                if isinstance(ev, NameReceived):
                    b.accept("named", name="x@h", creation=1) if ev.name_me else b.accept()
                elif isinstance(ev, AliveReply) and ev.alive:
                    b.proceed()
    except (ProtocolError, DecodeError):
        pass


@given(st.binary(max_size=400), st.integers(1, 64), st.booleans())
def test_fuzz_client(data: bytes, step: int, name_me: bool) -> None:
    a = ClientHandshake("a@host", "secret", creation=5, name_me=name_me)
    try:
        for i in range(0, len(data), step):
            a.receive_data(data[i : i + step])
            for ev in drain(a):
                if isinstance(ev, AliveQuery):
                    a.answer_alive(True)
    except (ProtocolError, DecodeError):
        pass
