import pytest
from hypothesis import given
from hypothesis import strategies as st

from dist_proto.epmd import (
    NEED_DATA,
    NODE_TYPE_NORMAL,
    Alive2Request,
    Alive2Response,
    ConnectionClosed,
    DumpRequest,
    DumpResponse,
    EpmdClient,
    EpmdServer,
    KillRequest,
    KillResponse,
    NamesRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    Request,
    StopRequest,
    StopResponse,
    validate_node_name,
)
from dist_proto.errors import DecodeError, LocalProtocolError, ProtocolError, RemoteProtocolError

F25_ALIVE = bytes.fromhex("78 86 f5 4d 00 00 06 00 05 00 03 66 32 35 00 00")
PYREG_PORT2 = bytes.fromhex("77 00 b5 f5 48 00 00 06 00 06 00 05 70 79 72 65 67 00 00")


def test_alive2_request_vector() -> None:
    req = Alive2Request(NodeEntry("f25", 0x86F5, NODE_TYPE_NORMAL, 0, 6, 5))
    assert req.to_bytes() == b"\x00\x10" + F25_ALIVE


def test_server_parses_alive2_and_registration_ends_on_any_byte() -> None:
    srv = EpmdServer()
    srv.receive_data(b"\x00\x10" + F25_ALIVE[:5])
    assert srv.next_event() is NEED_DATA
    srv.receive_data(F25_ALIVE[5:])
    ev = srv.next_event()
    assert ev == Alive2Request(NodeEntry("f25", 34549, 77, 0, 6, 5, b""))
    assert srv.next_event() is NEED_DATA
    srv.receive_data(b"x")
    assert srv.next_event() == ConnectionClosed()


def test_alive2_x_response_vector() -> None:
    client = EpmdClient()
    client.send(Alive2Request(NodeEntry("py", 5000)))
    client.receive_data(bytes.fromhex("76 00 6b"))
    assert client.next_event() is NEED_DATA
    client.receive_data(bytes.fromhex("01 46 59"))
    resp = client.next_event()
    assert resp == Alive2Response(0, 0x6B014659, True)
    assert resp.to_bytes() == bytes.fromhex("76 00 6b 01 46 59")
    assert client.next_event() is NEED_DATA  # keep registration open
    client.receive_data(b"")
    assert client.next_event() == ConnectionClosed()


def test_alive2_failure_and_old_resp() -> None:
    client = EpmdClient()
    client.send(Alive2Request(NodeEntry("py", 5000)))
    client.receive_data(bytes.fromhex("76 01 00 00 00 63"))
    resp = client.next_event()
    assert isinstance(resp, Alive2Response) and not resp.ok
    client = EpmdClient()
    client.send(Alive2Request(NodeEntry("py", 5000, highest_version=5)))
    client.receive_data(bytes.fromhex("79 00 00 03"))
    assert client.next_event() == Alive2Response(0, 3, False)
    assert Alive2Response(0, 3, False).to_bytes() == bytes.fromhex("79 00 00 03")


def test_port_please_vector_both_sides() -> None:
    client = EpmdClient()
    assert client.send(PortPlease2Request("pyreg")) == b"\x00\x06zpyreg"
    for i in range(len(PYREG_PORT2)):
        client.receive_data(PYREG_PORT2[i : i + 1])
        ev = client.next_event()
        if i < len(PYREG_PORT2) - 1:
            assert ev is NEED_DATA
    entry = NodeEntry("pyreg", 0xB5F5, 72, 0, 6, 6, b"")
    assert ev == Port2Response(0, entry)
    assert Port2Response(0, entry).to_bytes() == PYREG_PORT2
    srv = EpmdServer()
    srv.receive_data(b"\x00\x06zpyreg")
    assert srv.next_event() == PortPlease2Request("pyreg")
    srv.receive_data(b"")
    assert srv.next_event() == ConnectionClosed()


def test_port_not_found() -> None:
    client = EpmdClient()
    client.send(PortPlease2Request("nope"))
    client.receive_data(b"\x77\x01")
    assert client.next_event() == Port2Response(1, None)
    assert Port2Response(1).to_bytes() == b"\x77\x01"


def test_names_roundtrip() -> None:
    resp = NamesResponse(4369, (("f25", 46581), ("py", 5000)))
    client = EpmdClient()
    assert client.send(NamesRequest()) == b"\x00\x01n"
    client.receive_data(resp.to_bytes())
    assert client.next_event() is NEED_DATA  # until epmd closes
    client.receive_data(b"")
    assert client.next_event() == resp
    assert client.next_event() == ConnectionClosed()


def test_names_malformed_line() -> None:
    client = EpmdClient()
    client.send(NamesRequest())
    client.receive_data(b"\x00\x00\x11\x11garbage\n")
    client.receive_data(b"")
    with pytest.raises(RemoteProtocolError):
        client.next_event()
    with pytest.raises(RemoteProtocolError):  # stays in error state
        client.next_event()


def test_dump_kill_stop() -> None:
    cases: list[tuple[Request, bytes, KillResponse | StopResponse]] = [
        (KillRequest(), b"OK", KillResponse(True)),
        (KillRequest(), b"NO", KillResponse(False)),
        (StopRequest("x"), b"STOPPED", StopResponse(True)),
        (StopRequest("x"), b"NOEXIST", StopResponse(False)),
    ]
    for req, reply, expected in cases:
        srv = EpmdServer()
        client = EpmdClient()
        srv.receive_data(client.send(req))
        assert srv.next_event() == req
        assert expected.to_bytes() == reply
        client.receive_data(reply)
        assert client.next_event() == expected
    client = EpmdClient()
    srv = EpmdServer()
    srv.receive_data(client.send(DumpRequest()))
    assert srv.next_event() == DumpRequest()
    client.receive_data(DumpResponse(4369, "active name     <a> at port 1, fd = 5\n").to_bytes())
    client.receive_data(b"")
    assert client.next_event() == DumpResponse(4369, "active name     <a> at port 1, fd = 5\n")


@pytest.mark.parametrize(
    "body",
    [
        b"zab\x00c",  # NUL
        b"z\xff\xfe",  # bad UTF-8
        b"z" + b"a" * 256,  # too long
        b"z",  # empty
        b"q",  # unknown
        b"x\x00\x01M\x00\x00\x06\x00\x05\x00\x09ab",  # name length lies
    ],
)
def test_server_rejects_malformed(body: bytes) -> None:
    srv = EpmdServer()
    srv.receive_data(len(body).to_bytes(2, "big") + body)
    with pytest.raises(RemoteProtocolError):
        srv.next_event()


def test_name_validation() -> None:
    assert validate_node_name("é" * 255) == "é" * 255
    with pytest.raises(LocalProtocolError):
        validate_node_name("a" * 256)
    with pytest.raises(LocalProtocolError):
        PortPlease2Request("a\x00").to_bytes()
    with pytest.raises(RemoteProtocolError):
        validate_node_name(b"\xc3", remote=True)


def test_one_request_per_client() -> None:
    client = EpmdClient()
    client.send(NamesRequest())
    with pytest.raises(LocalProtocolError):
        client.send(NamesRequest())


@given(st.binary(max_size=300), st.integers(1, 50))
def test_server_fuzz(data: bytes, step: int) -> None:
    srv = EpmdServer()
    try:
        for i in range(0, len(data), step):
            srv.receive_data(data[i : i + step])
            srv.next_event()
        srv.receive_data(b"")
        srv.next_event()
    except (ProtocolError, DecodeError):
        pass


_REQS: list[Request] = [
    NamesRequest(),
    PortPlease2Request("a"),
    Alive2Request(NodeEntry("a", 1)),
    KillRequest(),
]


@given(
    st.sampled_from(_REQS),
    st.binary(max_size=300),
    st.integers(1, 50),
)
def test_client_fuzz(req: Request, data: bytes, step: int) -> None:
    client = EpmdClient()
    client.send(req)
    try:
        for i in range(0, len(data), step):
            client.receive_data(data[i : i + step])
            client.next_event()
        client.receive_data(b"")
        client.next_event()
    except (ProtocolError, DecodeError):
        pass


def test_server_follows_epmd_on_lenient_requests() -> None:
    """epmd_srv.c ignores bytes after NAMES/DUMP/KILL, drops one trailing NUL of a
    PORT_PLEASE2 name, and answers a well-framed ALIVE2 with a bad name (result 1)."""
    from dist_proto.epmd import InvalidAlive2Request, NamesRequest, PortPlease2Request

    srv = EpmdServer()
    srv.receive_data(b"\x00\x02nX")
    assert isinstance(srv.next_event(), NamesRequest)
    srv = EpmdServer()
    srv.receive_data(b"\x00\x04zab\x00")
    assert srv.next_event() == PortPlease2Request("ab")
    srv = EpmdServer()
    body = b"x\x00\x01M\x00\x00\x06\x00\x05\x00\x02\xff\xfe\x00\x00"
    srv.receive_data(len(body).to_bytes(2, "big") + body)
    event = srv.next_event()
    assert isinstance(event, InvalidAlive2Request) and event.highest_version == 6
