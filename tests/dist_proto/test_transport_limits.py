"""Sans-I/O limits of the transport: the handshake's view of a peer that closes, and
the per-connection cap on fragmented messages under reassembly."""

from __future__ import annotations

import struct

import pytest

from dist_proto.control import RegSend
from dist_proto.errors import RemoteProtocolError
from dist_proto.flags import DEFAULT_FLAGS
from dist_proto.framing import NEED_DATA as NO_FRAME
from dist_proto.framing import DistConnection
from dist_proto.handshake import (
    NEED_DATA,
    ClientHandshake,
    HandshakeClosed,
    HandshakeComplete,
    HandshakeState,
    ServerHandshake,
    WrongCookie,
)
from dist_proto.terms import Atom, Pid

A, B = "a@h", "b@h"


def _to_challenge_ack(cookie_b: str = "secret") -> tuple[ClientHandshake, ServerHandshake]:
    """A has sent its challenge reply; B (with ``cookie_b``) has not answered yet."""
    a = ClientHandshake(A, "secret", creation=5)
    b = ServerHandshake(B, cookie_b, creation=6)
    b.receive_data(a.data_to_send())
    b.next_event()
    b.accept()
    a.receive_data(b.data_to_send())
    assert a.next_event() is NEED_DATA
    assert a.state is HandshakeState.CHALLENGE_ACK
    return a, b


def test_peer_closing_after_our_challenge_reply_is_a_rejected_cookie() -> None:
    a, b = _to_challenge_ack(cookie_b="other")
    b.receive_data(a.data_to_send())
    with pytest.raises(WrongCookie):
        b.next_event()  # B finds the digest wrong and closes, as dist_util does
    a.receive_eof()
    with pytest.raises(HandshakeClosed) as info:
        a.next_event()
    assert info.value.state is HandshakeState.CHALLENGE_ACK
    assert info.value.cookie_rejected
    assert "cookie" in str(info.value)
    assert a.state is HandshakeState.ERROR


@pytest.mark.parametrize("role", ["client", "server"])
def test_peer_closing_before_any_status_is_not_a_cookie_problem(role: str) -> None:
    hs: ClientHandshake | ServerHandshake
    if role == "client":
        hs = ClientHandshake(A, "secret", creation=5)
        expected = HandshakeState.STATUS
    else:
        hs = ServerHandshake(B, "secret", creation=6)
        expected = HandshakeState.SEND_NAME
    hs.receive_eof()
    with pytest.raises(HandshakeClosed) as info:
        hs.next_event()
    assert info.value.state is expected
    assert not info.value.cookie_rejected


def test_messages_buffered_before_eof_are_still_read() -> None:
    a = ClientHandshake(A, "secret", creation=5)
    b = ServerHandshake(B, "secret", creation=6)
    b.receive_data(a.data_to_send())
    b.next_event()
    b.accept("not_allowed")
    a.receive_data(b.data_to_send())
    a.receive_eof()
    event = a.next_event()
    assert getattr(event, "status", None) == "not_allowed"
    assert a.state is HandshakeState.CLOSED
    assert a.next_event() is NEED_DATA  # closed by a status: EOF is expected then


def test_eof_after_completion_is_ignored_by_the_handshake() -> None:
    a, b = _to_challenge_ack()
    b.receive_data(a.data_to_send())
    assert isinstance(b.next_event(), HandshakeComplete)
    a.receive_data(b.data_to_send())
    assert isinstance(a.next_event(), HandshakeComplete)
    a.receive_eof()
    assert a.next_event() is NEED_DATA


# -- fragment reassembly cap ---------------------------------------------------------------


def _first_fragments(count: int, size: int) -> list[bytes]:
    """The first fragment of ``count`` different fragmented messages of ``size`` bytes."""
    sender = DistConnection(DEFAULT_FLAGS, fragment_size=1000)
    pid = Pid(Atom("p@h"), 1, 0, 1)
    firsts = []
    for _ in range(count):
        data = sender.send(RegSend(pid, Atom("to"), b"x" * size))
        (length,) = struct.unpack_from(">I", data)
        firsts.append(data[: 4 + length])
    return firsts


def test_open_sequences_together_stay_under_the_reassembly_cap() -> None:
    receiver = DistConnection(DEFAULT_FLAGS, max_reassembly=5000)
    firsts = _first_fragments(10, 20_000)
    with pytest.raises(RemoteProtocolError, match="unfinished fragmented messages hold over 5000 bytes"):
        for frame in firsts:
            receiver.receive_data(frame)
            assert receiver.next_event() is NO_FRAME
            assert receiver.reassembly_bytes <= 5000


def test_finished_sequences_release_their_bytes() -> None:
    sender = DistConnection(DEFAULT_FLAGS, fragment_size=1000)
    receiver = DistConnection(DEFAULT_FLAGS, max_reassembly=30_000)
    pid = Pid(Atom("p@h"), 1, 0, 1)
    for _ in range(5):  # 5 x 20 kB in turn: each one completes before the next
        receiver.receive_data(sender.send(RegSend(pid, Atom("to"), b"x" * 20_000)))
        assert len(list(receiver.events())) == 1
        assert receiver.reassembly_bytes == 0


def test_default_reassembly_cap_is_one_message() -> None:
    conn = DistConnection(DEFAULT_FLAGS, max_frame=1 << 20)
    assert conn.max_reassembly == conn.max_message == 1 << 20
