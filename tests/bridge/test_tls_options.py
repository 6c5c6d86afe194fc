"""TLS distribution options and contexts, and two Python nodes talking over TLS (no BEAM).

Reading OTP's option file and ``-ssl_dist_opt`` pairs: the shapes OTP accepts,
charlists and binaries, which role's options win, every unsupported option refused
by name. Building contexts: OTP's defaults (TLS 1.2 only, client ``verify_peer``),
incompatible options refused. Over real sockets between Python nodes, with
certificates ``openssl`` makes: mutual TLS, an encrypted key, ``depth``, TLS 1.3,
ready-made ``ssl.SSLContext`` objects, and a plain node meeting a TLS node.
The 4-byte handshake framing of ``inet_tls_dist`` is checked sans I/O.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bridge import Node, RpcError
from bridge.epmd_server import EpmdServer
from bridge.errors import ConnectError
from bridge.ssl_dist_options import (
    SslDistOptionError,
    load_optfile,
    parse_optfile_text,
    parse_ssl_dist_opt,
    resolve_options,
)
from bridge.tls import TlsDist, client_context, configure_tls, server_context, tls_record_kind
from dist_proto.errors import RemoteProtocolError
from dist_proto.handshake import ClientHandshake, HandshakeComplete, ServerHandshake
from tests.beam import unique_name
from tests.tls_certs import KEY_PASSWORD, Pki, make_pki, write_optfile

COOKIE = "tls_python_cookie"


# -- the option file ---------------------------------------------------------------------


def test_optfile_as_otp_documents_it() -> None:
    text = """
    %% ssl_dist.conf, as in OTP's "Using SSL for Erlang Distribution"
    [{server,
      [{certfile, "/etc/ssl/node.pem"}, {keyfile, <<"/etc/ssl/node.key">>},
       {cacertfile, "/etc/ssl/ca.pem"}, {verify, verify_peer},
       {fail_if_no_peer_cert, true}, {versions, ['tlsv1.2', 'tlsv1.3']},
       {secure_renegotiate, true}, {depth, 2}]},
     {client,
      [{cacertfile, "/etc/ssl/ca.pem"}, {verify, verify_peer},
       {server_name_indication, "db.example.com"}, {ciphers, "ECDHE-ECDSA-AES256-GCM-SHA384"}]}].
    """
    opts = parse_optfile_text(text)
    assert opts["server"] == {
        "certfile": "/etc/ssl/node.pem", "keyfile": "/etc/ssl/node.key", "cacertfile": "/etc/ssl/ca.pem",
        "verify": "verify_peer", "fail_if_no_peer_cert": True, "versions": ["tlsv1.2", "tlsv1.3"],
        "secure_renegotiate": True, "depth": 2,
    }
    assert opts["client"]["server_name_indication"] == "db.example.com"
    assert opts["client"]["ciphers"] == ["ECDHE-ECDSA-AES256-GCM-SHA384"]


def test_optfile_roles_are_optional_and_sni_can_be_disabled() -> None:
    assert parse_optfile_text("[].") == {}
    opts = parse_optfile_text("[{client, [{server_name_indication, disable}, {verify, verify_none}]}].")
    assert opts == {"client": {"server_name_indication": None, "verify": "verify_none"}}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[{server, [{verify_fun, {m, f, []}}]}].', "unsupported TLS distribution option 'verify_fun' for the server"),
        ('[{client, [{crl_check, true}]}].', "'crl_check'"),
        ('[{client, [{reuse_sessions, true}]}].', "'reuse_sessions'"),
        ('[{server, [{log_level, debug}]}].', "'log_level'"),
        ('[{client, [{fail_if_no_peer_cert, true}]}].', "it is a server option"),
        ('[{server, [{server_name_indication, "x"}]}].', "it is a client option"),
        ('[{server, [{verify, maybe}]}].', "verify_peer, verify_none"),
        ('[{server, [{depth, -1}]}].', "non-negative integer"),
        ('[{server, [{versions, [\'sslv3\']}]}].', "tlsv1.2"),
        ('[{server, [{certfile, foo}]}].', "expected a string"),
        ('[{server, [{secure_renegotiate, false}]}].', "secure_renegotiate: false cannot be honoured"),
        ('[{client, [{ciphers, [#{cipher => aes_128_gcm}]}]}].', "only OpenSSL suite names"),
        ('[{peer, []}].', "unknown role 'peer'"),
        ('{server, []}.', "expected [{server, Opts}, {client, Opts}]"),
        ('[{server, certfile}].', "list of {Key, Value} pairs"),
        ('[{server, [{certfile, filename:join("a", "b")}]}].', "not an Erlang term: line 1"),
        ('[{server, [{certfile, "a"}]}', "not an Erlang term"),
    ],
)
def test_optfile_refusals_name_the_problem(text: str, words: str) -> None:
    with pytest.raises(SslDistOptionError) as info:
        parse_optfile_text(text)
    assert words in str(info.value)


def test_optfile_repeated_option_keeps_first_and_missing_file_is_named(tmp_path: Path) -> None:
    opts = parse_optfile_text('[{server, [{certfile, "a"}, {certfile, "b"}]}].')
    assert opts["server"]["certfile"] == "a"  # proplists:get_value/2
    with pytest.raises(SslDistOptionError, match="cannot read ssl_dist_optfile .*nope.conf"):
        load_optfile(tmp_path / "nope.conf")
    latin1 = tmp_path / "latin1.conf"
    latin1.write_bytes('[{server, [{certfile, "/d\xe9j\xe0/n.pem"}]}].'.encode("latin-1"))
    assert load_optfile(latin1)["server"]["certfile"] == "/d\xe9j\xe0/n.pem"


# -- -ssl_dist_opt ------------------------------------------------------------------------


def test_ssl_dist_opt_pairs_as_erl_takes_them() -> None:
    opts = parse_ssl_dist_opt([
        "server_certfile", "s.pem", "server_verify", "verify_peer", "server_fail_if_no_peer_cert", "true",
        "server_depth", "3", "client_verify", "verify_none", "client_versions", "tlsv1.2,tlsv1.3",
    ])
    assert opts["server"] == {"certfile": "s.pem", "verify": "verify_peer", "fail_if_no_peer_cert": True, "depth": 3}
    assert opts["client"] == {"verify": "verify_none", "versions": ["tlsv1.2", "tlsv1.3"]}
    assert parse_ssl_dist_opt({"client_cacertfile": "ca.pem"}) == {"client": {"cacertfile": "ca.pem"}}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["certfile", "x.pem"], "server_OPTION or client_OPTION"),
        (["server_certfile"], "has no value"),
        (["client_dhfile", "dh.pem"], "it is a server option"),
        (["server_verify_fun", "{m,f,[]}"], "'verify_fun'"),
        (["server_depth", "deep"], "expected an integer"),
    ],
)
def test_ssl_dist_opt_refusals(args: list[str], words: str) -> None:
    with pytest.raises(SslDistOptionError) as info:
        parse_ssl_dist_opt(args)
    assert words in str(info.value)


def test_file_entry_wins_over_flags_per_role() -> None:
    """``inet_tls_dist:get_ssl_options/1``: the file's entry for a role, else the flags."""
    from_file = parse_optfile_text('[{server, [{certfile, "file.pem"}]}].')
    from_flags = parse_ssl_dist_opt(["server_certfile", "flag.pem", "client_verify", "verify_none"])
    assert resolve_options(from_file, from_flags) == {
        "server": {"certfile": "file.pem"}, "client": {"verify": "verify_none"},
    }
    assert resolve_options(None, None) == {"server": {}, "client": {}}


# -- contexts -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), names=("one", "two"))


def test_context_defaults_follow_otp(pki: Pki) -> None:
    me = pki.nodes["one"]
    server = server_context({"certfile": str(me.certfile), "keyfile": str(me.keyfile)})
    assert server.verify_mode == ssl.CERT_NONE  # verify_none unless asked
    assert server.minimum_version == server.maximum_version == ssl.TLSVersion.TLSv1_2  # dist_defaults/1
    client = client_context({"cacertfile": str(pki.cacertfile)})
    assert client.verify_mode == ssl.CERT_REQUIRED and client.check_hostname  # verify_peer, as OTP 26+
    strict = server_context({"certfile": str(me.certfile), "keyfile": str(me.keyfile), "verify": "verify_peer",
                             "cacertfile": str(pki.cacertfile), "fail_if_no_peer_cert": True,
                             "versions": ["tlsv1.2", "tlsv1.3"]})
    assert strict.verify_mode == ssl.CERT_REQUIRED
    assert strict.maximum_version == ssl.TLSVersion.TLSv1_3
    optional = server_context({"certfile": str(me.certfile), "keyfile": str(me.keyfile), "verify": "verify_peer",
                               "cacertfile": str(pki.cacertfile)})
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    no_sni = client_context({"cacertfile": str(pki.cacertfile), "server_name_indication": None})
    assert no_sni.verify_mode == ssl.CERT_REQUIRED and not no_sni.check_hostname


@pytest.mark.parametrize(
    ("role", "opts", "words"),
    [
        ("server", {}, "server options need certfile"),
        ("server", {"cert": True, "verify": "verify_none", "fail_if_no_peer_cert": True}, "incompatible"),
        ("server", {"cert": True, "verify": "verify_peer"}, "needs cacertfile or cacerts"),
        ("client", {}, "needs cacertfile or cacerts; give {verify, verify_none}"),
        ("client", {"verify": "verify_none", "versions": ["tlsv1.1", "tlsv1.3"]}, "contiguous range"),
        ("client", {"verify": "verify_none", "ciphers": ["TLS_AES_128_GCM_SHA256"]}, "TLS 1.3 suites"),
        ("client", {"verify": "verify_none", "ciphers": ["NOT-A-CIPHER"]}, "OpenSSL knows none of NOT-A-CIPHER"),
        ("client", {"verify": "verify_none", "keyfile": "k.pem"}, "keyfile needs certfile"),
        ("client", {"verify": "verify_none", "certfile": "/nonexistent.pem"}, "cannot load certfile /nonexistent.pem"),
        ("server", {"cert": True, "cacertfile": "/nonexistent-ca.pem"}, "cannot load cacertfile"),
    ],
)
def test_context_refusals(pki: Pki, role: str, opts: dict[str, Any], words: str) -> None:
    if opts.pop("cert", False):
        opts = {"certfile": str(pki.nodes["one"].certfile), "keyfile": str(pki.nodes["one"].keyfile), **opts}
    build = server_context if role == "server" else client_context
    with pytest.raises(SslDistOptionError) as info:
        build(opts)
    assert words in str(info.value)


def test_wrong_key_password_is_an_option_error(pki: Pki) -> None:
    me = pki.encrypted
    with pytest.raises(SslDistOptionError, match="cannot load certfile"):
        server_context({"certfile": str(me.certfile), "keyfile": str(me.keyfile), "password": "wrong"})


def test_configure_tls_arguments() -> None:
    assert configure_tls("inet_tcp") is None
    with pytest.raises(ValueError, match="proto_dist 'inet6_tls' is not supported"):
        configure_tls("inet6_tls")
    with pytest.raises(ValueError, match="needs ssl_dist_optfile, ssl_dist_opt or ssl_context"):
        configure_tls("inet_tls")
    with pytest.raises(ValueError, match="proto_dist is 'inet_tcp'"):
        configure_tls("inet_tcp", ssl_dist_opt=["client_verify", "verify_none"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with pytest.raises(ValueError, match="in that order"):
        TlsDist(client, server)
    with pytest.raises(ValueError, match="give \\(server_context, client_context\\)"):
        configure_tls("inet_tls", ssl_context=server)


def test_node_refuses_bad_tls_configuration_at_construction(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text("[{server, [{certfile, \"x.pem\"}, {verify_fun, {m, f, []}}]}].")
    with pytest.raises(SslDistOptionError, match="'verify_fun'"):
        Node(f"{unique_name('bad')}@127.0.0.1", cookie=COOKIE, proto_dist="inet_tls", ssl_dist_optfile=bad)


# -- sans I/O: framing and first bytes ------------------------------------------------------


def test_handshake_with_four_byte_frames() -> None:
    """``inet_tls_dist`` keeps ``{packet, 4}`` during the handshake too."""
    a = ClientHandshake("a@h", "c", creation=5, header_size=4)
    b = ServerHandshake("b@h", "c", creation=6, header_size=4)
    first = a.data_to_send()
    assert int.from_bytes(first[:4], "big") == len(first) - 4 and first[4:5] == b"N"
    b.receive_data(first)
    b.next_event()
    b.accept()
    a.receive_data(b.data_to_send())
    a.next_event()
    b.receive_data(a.data_to_send())
    done_b = b.next_event()
    a.receive_data(b.data_to_send())
    done_a = a.next_event()
    assert isinstance(done_a, HandshakeComplete) and isinstance(done_b, HandshakeComplete)
    assert (done_a.peer_name, done_b.peer_name) == ("b@h", "a@h")


def test_four_byte_frame_cannot_announce_a_huge_message() -> None:
    b = ServerHandshake("b@h", "c", creation=6, header_size=4)
    b.receive_data((1 << 30).to_bytes(4, "big") + b"N")
    with pytest.raises(RemoteProtocolError, match="handshake message of 1073741824 bytes"):
        b.next_event()


def test_tls_record_kind() -> None:
    client_hello = bytes([22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3])
    assert tls_record_kind(client_hello) == "ClientHello"
    assert tls_record_kind(bytes([21, 3, 3, 0, 2, 2, 10])) == "alert"
    assert tls_record_kind(bytes([22, 3, 3, 0, 50, 2])) == "handshake"
    send_name = ClientHandshake("a@h", "c", creation=5).data_to_send()
    assert tls_record_kind(send_name) is None
    assert tls_record_kind(b"\x00\x16\x03") is None and tls_record_kind(b"\x16") is None


# -- two Python nodes over TLS ----------------------------------------------------------------


@pytest.fixture
async def epmd_server() -> AsyncIterator[EpmdServer]:
    async with EpmdServer("127.0.0.1", 0) as server:
        yield server


def _conf(pki: Pki, cert: str = "one", *, server: Mapping[str, object] | None = None,
          client: Mapping[str, object] | None = None, ca: Path | None = None) -> Path:
    ident = pki.nodes[cert] if cert in pki.nodes else getattr(pki, cert)
    common: dict[str, object] = {"certfile": ident.certfile, "keyfile": ident.keyfile,
                                 "cacertfile": ca or pki.cacertfile, "verify": ":verify_peer"}
    return write_optfile(pki.folder / f"{unique_name('conf')}.conf",
                         {**common, "fail_if_no_peer_cert": True, **(server or {})}, {**common, **(client or {})})


def _tls_node(epmd_server: EpmdServer, conf: Path, **kw: Any) -> Node:
    return Node(f"{unique_name('tp')}@127.0.0.1", cookie=COOKIE, epmd_port=epmd_server.port,
                proto_dist="inet_tls", ssl_dist_optfile=conf, **kw)


async def _rpc_error(node: Node, peer: Node) -> ConnectError:
    with pytest.raises(RpcError) as info:
        await node.rpc(peer.name, "erlang", "node", [])
    cause = info.value.__cause__
    assert isinstance(cause, ConnectError)
    return cause


async def test_python_nodes_mutual_tls(epmd_server: EpmdServer, pki: Pki) -> None:
    async with _tls_node(epmd_server, _conf(pki, "one")) as a, _tls_node(epmd_server, _conf(pki, "two")) as b:
        b.allow_rpc("m", "f", lambda x: x + 1)
        assert await a.rpc(b.name, "m", "f", [41]) == 42
        async with b.process("inbox") as inbox:
            await a.send(("inbox", b.name), b"y" * 300_000)
            assert await inbox.receive(timeout=10) == b"y" * 300_000
        assert await b.ping(a.name)


async def test_encrypted_key_with_password(epmd_server: EpmdServer, pki: Pki) -> None:
    conf = _conf(pki, "encrypted", server={"password": KEY_PASSWORD}, client={"password": KEY_PASSWORD})
    async with _tls_node(epmd_server, conf) as a, _tls_node(epmd_server, _conf(pki, "two")) as b:
        assert await a.ping(b.name)
        assert await b.ping(a.name)


async def test_depth_limits_intermediate_cas(epmd_server: EpmdServer, pki: Pki) -> None:
    """The chained certificate has one intermediate CA: depth 0 refuses it, depth 1 takes it."""
    strict = _conf(pki, "two", server={"depth": 0}, client={"depth": 0})
    lenient = _conf(pki, "two", server={"depth": 1}, client={"depth": 1})
    async with _tls_node(epmd_server, _conf(pki, "chained")) as chained:
        async with _tls_node(epmd_server, strict) as a:
            cause = await _rpc_error(a, chained)
            assert "1 intermediate CAs, more than depth 0" in cause.reason, cause.reason
        async with _tls_node(epmd_server, lenient) as b:
            assert await b.ping(chained.name)


async def test_tls13_and_unknown_ca_between_python_nodes(
    epmd_server: EpmdServer, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    v13 = {"versions": [":tlsv1.3"]}
    async with _tls_node(epmd_server, _conf(pki, "one", server=v13, client=v13)) as a, \
            _tls_node(epmd_server, _conf(pki, "two", server=v13, client=v13)) as b:
        assert await a.ping(b.name)
        async with _tls_node(epmd_server, _conf(pki, "rogue", server=v13, client=v13)) as rogue:
            with caplog.at_level(logging.WARNING, logger="bridge.node"):
                cause = await _rpc_error(rogue, b)
            # Under TLS 1.3 the client learns of its rejected certificate after its own
            # handshake finished: the error still says it is TLS and about a certificate.
            assert "TLS" in cause.reason and "certificate" in cause.reason, cause.reason
            assert "client's certificate was rejected" in caplog.text
            assert rogue.name not in b.nodes()


async def test_only_tls12_against_only_tls13(
    epmd_server: EpmdServer, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """asyncio drops the server's TLS alert when a handshake fails, so the client can
    only say that the peer refused during the TLS handshake; the server says why."""
    v12, v13 = {"versions": [":tlsv1.2"]}, {"versions": [":tlsv1.3"]}
    async with _tls_node(epmd_server, _conf(pki, "one", server=v12, client=v12)) as a, \
            _tls_node(epmd_server, _conf(pki, "two", server=v13, client=v13)) as b:
        with caplog.at_level(logging.WARNING, logger="bridge.node"):
            cause = await _rpc_error(a, b)
        assert "during the TLS handshake" in cause.reason, cause.reason
        assert "no TLS version in common" in caplog.text


async def test_ready_made_contexts(epmd_server: EpmdServer, pki: Pki) -> None:
    me = pki.nodes["one"]
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.cacertfile))
    server.load_cert_chain(str(me.certfile), str(me.keyfile))
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.cacertfile))
    client.load_cert_chain(str(me.certfile), str(me.keyfile))
    async with Node(f"{unique_name('ctx')}@127.0.0.1", cookie=COOKIE, epmd_port=epmd_server.port,
                    proto_dist="inet_tls", ssl_context=(server, client)) as a, \
            _tls_node(epmd_server, _conf(pki, "two")) as b:
        a.allow_rpc("m", "seven", lambda: 7)
        assert await b.rpc(a.name, "m", "seven", []) == 7
        assert await a.ping(b.name)


async def test_plain_and_tls_python_nodes_say_why(
    epmd_server: EpmdServer, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async with _tls_node(epmd_server, _conf(pki, "one"), net_setuptime=3.0) as tls, \
            Node(f"{unique_name('plain')}@127.0.0.1", cookie=COOKIE, epmd_port=epmd_server.port) as plain:
        with caplog.at_level(logging.WARNING, logger="bridge.node"):
            cause = await _rpc_error(plain, tls)
            assert "TLS" in cause.reason and "inet_tls" in cause.reason, cause.reason
            assert "did not speak TLS" in caplog.text
            cause = await _rpc_error(tls, plain)
            assert "TLS" in cause.reason and "plain TCP" in cause.reason, cause.reason
            assert "sent a TLS ClientHello" in caplog.text
        assert plain.nodes() == [] and tls.nodes() == []


async def test_client_only_node_dials_but_accepts_nothing(
    epmd_server: EpmdServer, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """Without server options a node dials over TLS, and refuses inbound connections
    with a logged reason (an OTP node without a server certificate fails every accept)."""
    me = pki.nodes["one"]
    flags = ["client_certfile", str(me.certfile), "client_keyfile", str(me.keyfile),
             "client_cacertfile", str(pki.cacertfile)]
    async with Node(f"{unique_name('co')}@127.0.0.1", cookie=COOKIE, epmd_port=epmd_server.port,
                    proto_dist="inet_tls", ssl_dist_opt=flags) as client_only, \
            _tls_node(epmd_server, _conf(pki, "two")) as full:
        with caplog.at_level(logging.WARNING, logger="bridge.node"):
            await _rpc_error(full, client_only)
        assert "accepts no TLS connection" in caplog.text
        assert await client_only.ping(full.name)


async def test_tls_dial_to_a_closed_port_is_not_a_tls_error(pki: Pki) -> None:
    from tests.beam import free_port

    target = f"{unique_name('gone')}@127.0.0.1"
    conf = _conf(pki, "one")
    async with Node(f"{unique_name('tp')}@127.0.0.1", cookie=COOKIE, use_epmd=False,
                    ports={target: free_port()}, proto_dist="inet_tls", ssl_dist_optfile=conf) as node:
        with pytest.raises(RpcError) as info:
            await node.rpc(target, "erlang", "node", [])
    cause = info.value.__cause__
    assert isinstance(cause, ConnectError)
    assert "cannot reach port" in cause.reason and "TLS" not in cause.reason, cause.reason
