"""TLS distribution against real BEAM nodes started with ``-proto_dist inet_tls``.

Certificates are made by ``openssl`` for the module (a test CA, node certificates,
a rogue CA with its own node certificate). The BEAM nodes and the Python nodes read
the *same* ``-ssl_dist_optfile``. Checked, on OTP 25 and on the OTP 28 runtime (which
ships no ``ssl``; it gets OTP 25's ``ssl`` on its code path, see
:func:`tests.tls_certs.ssl_code_path`):

* Python dials BEAM and BEAM dials Python over mutual TLS: ping, rpc, gen:call, send;
  the BEAM sees the connection as TLS.
* Mutual TLS refuses a certificate from an unknown CA, whichever side holds it, and the
  errors say so.
* A plain TCP node and a TLS node do not connect, either way round, and the error on
  the Python side says that TLS is involved.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge import Node, RpcError
from bridge.cli import EXIT_PANG, EXIT_USAGE
from bridge.errors import ConnectError
from dist_proto.terms import Atom
from tests.beam import BeamNode, Epmd, Runtime, unique_name
from tests.bridge.test_cli import run_cli
from tests.interop.node_support import (
    check,
    ev,
    eventually,
    py_name,
    py_node,
    q,
    start_beam,
    stop_beam,
)
from tests.tls_certs import Identity, Pki, make_pki, ssl_code_path, write_optfile

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), names=("beam_node", "py_node"))


def mutual_optfile(folder: Path, me: Identity, cacertfile: Path, name: str) -> Path:
    """A file as an operator would write it for both kinds of node: verify both ways."""
    common: dict[str, object] = {
        "certfile": me.certfile, "keyfile": me.keyfile, "cacertfile": cacertfile, "verify": ":verify_peer",
    }
    return write_optfile(folder / f"{name}.conf", {**common, "fail_if_no_peer_cert": True}, common)


@pytest.fixture(scope="module")
def beam_optfile(pki: Pki) -> Path:
    return mutual_optfile(pki.folder, pki.nodes["beam_node"], pki.cacertfile, "beam")


@pytest.fixture(scope="module")
def py_optfile(pki: Pki) -> Path:
    return mutual_optfile(pki.folder, pki.nodes["py_node"], pki.cacertfile, "py")


def tls_args(runtime: Runtime, optfile: Path) -> list[str]:
    return [*ssl_code_path(runtime.bin_dir), "-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)]


@pytest.fixture(scope="module")
def tls_beam(runtime: Runtime, epmd: Epmd, beam_optfile: Path) -> Iterator[BeamNode]:
    """A BEAM node of the current runtime whose distribution runs over mutual TLS."""
    with BeamNode(runtime, epmd_port=epmd.port, prefix="tls", extra_args=tls_args(runtime, beam_optfile)) as node:
        yield node


@pytest.fixture
async def tls_node(epmd: Epmd, py_optfile: Path) -> AsyncIterator[Node]:
    async with py_node(epmd.port, proto_dist="inet_tls", ssl_dist_optfile=py_optfile) as node:
        yield node


async def _is_tls_connection(beam: BeamNode, node: str) -> bool:
    """The BEAM's own view: the distribution controller of ``node`` is a TLS connection
    process (``inet_tls_dist``), not a port as with ``inet_tcp_dist``."""
    return await ev(beam, f"is_pid(element(2, lists:keyfind({q(node)}, 1, erlang:system_info(dist_ctrl))))") is True


async def test_python_dials_tls_beam(tls_beam: BeamNode, tls_node: Node) -> None:
    beam = tls_beam
    assert await tls_node.ping(beam.name)
    assert await _is_tls_connection(beam, tls_node.name)
    assert await tls_node.rpc(beam.name, "erlang", "node", []) == Atom(beam.name)
    assert await tls_node.rpc(beam.name, "lists", "seq", [1, 3]) == [1, 2, 3]
    children = await tls_node.call((Atom("kernel_sup"), Atom(beam.name)), Atom("which_children"))
    assert any(child[0] == Atom("code_server") for child in children)
    box = unique_name("tlsbox")
    await ev(beam, f"register({box}, spawn(fun() -> receive {{hello, _, _}} = M -> receive {{get, F}} -> F ! M end end end)), ok")
    payload = (Atom("hello"), b"x" * 100_000, list(range(50)))
    await tls_node.send((box, beam.name), payload)
    got = await ev(beam, f"{box} ! {{get, self()}}, receive M -> M after 10000 -> timeout end")
    assert got == payload


async def test_beam_dials_tls_python(tls_beam: BeamNode, tls_node: Node) -> None:
    beam = tls_beam
    tls_node.allow_rpc("tls_test", "double", lambda x: 2 * x)
    assert await ev(beam, f"net_adm:ping({q(tls_node.name)})") == Atom("pong")
    assert tls_node.is_connected(beam.name)
    assert await _is_tls_connection(beam, tls_node.name)
    assert await ev(beam, f"rpc:call({q(tls_node.name)}, tls_test, double, [21])") == 42
    async with tls_node.process("tls_inbox") as inbox:
        await ev(beam, f"{{tls_inbox, {q(tls_node.name)}}} ! {{from_beam, <<\"over tls\">>}}, ok")
        assert await inbox.receive(timeout=10) == (Atom("from_beam"), b"over tls")
        # gen:call from BEAM to a Python process, answered by hand as a gen_server would.
        call = asyncio.ensure_future(
            ev(beam, f"gen_server:call({{tls_inbox, {q(tls_node.name)}}}, ping, 10000)")
        )
        msg = await inbox.receive(timeout=10)
        assert msg[0] == Atom("$gen_call") and msg[2] == Atom("ping")
        from_pid, tag = msg[1]
        inbox.send(from_pid, (tag, Atom("pong_over_tls")))
        assert await call == Atom("pong_over_tls")


async def test_unknown_ca_refused_when_python_dials(
    tls_beam: BeamNode, epmd: Epmd, pki: Pki
) -> None:
    """Python presents a certificate of the rogue CA: the BEAM's mutual TLS refuses it."""
    rogue = mutual_optfile(pki.folder, pki.rogue, pki.cacertfile, unique_name("rogue_client"))
    async with py_node(epmd.port, proto_dist="inet_tls", ssl_dist_optfile=rogue) as node:
        assert await node.ping(tls_beam.name) is False
        with pytest.raises(RpcError) as info:
            await node.rpc(tls_beam.name, "erlang", "node", [])
    cause = info.value.__cause__
    assert isinstance(cause, ConnectError)
    assert "TLS" in cause.reason and "certificate" in cause.reason, cause.reason
    assert tls_beam.name not in node.nodes()


async def test_python_refuses_beam_with_unknown_ca(
    runtime: Runtime, tls_beam: BeamNode, epmd: Epmd, pki: Pki, py_optfile: Path
) -> None:
    """The BEAM presents a rogue certificate: the Python client refuses it."""
    rogue_conf = mutual_optfile(pki.folder, pki.rogue, pki.cacertfile, unique_name("rogue_beam"))
    rogue_beam = await start_beam(runtime, epmd.port, prefix="rogue", extra_args=tls_args(runtime, rogue_conf))
    try:
        async with py_node(epmd.port, proto_dist="inet_tls", ssl_dist_optfile=py_optfile) as node:
            with pytest.raises(RpcError) as info:
                await node.rpc(rogue_beam.name, "erlang", "node", [])
            cause = info.value.__cause__
            assert isinstance(cause, ConnectError)
            assert "server's certificate was rejected" in cause.reason, cause.reason
            assert "not issued by a CA in our cacertfile" in cause.reason
            assert rogue_beam.name not in node.nodes()
            # The genuine BEAM still gets through on the same Python node.
            assert await node.ping(tls_beam.name)
    finally:
        await stop_beam(rogue_beam)


async def test_beam_with_unknown_ca_refused_by_python_server(
    runtime: Runtime, epmd: Epmd, pki: Pki, py_optfile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A BEAM that trusts our CA but presents a rogue certificate is refused by the
    Python node's server (mutual TLS), which logs why; one that trusts only the rogue
    CA refuses our certificate, and the log says that instead."""
    rogue_conf = mutual_optfile(pki.folder, pki.rogue, pki.cacertfile, unique_name("rogue_client"))
    distrustful_conf = mutual_optfile(pki.folder, pki.rogue, pki.rogue_cacertfile, unique_name("rogue_only"))
    rogue_beam = await start_beam(runtime, epmd.port, prefix="rogue", extra_args=tls_args(runtime, rogue_conf))
    distrustful = await start_beam(runtime, epmd.port, prefix="rogue", extra_args=tls_args(runtime, distrustful_conf))
    try:
        async with py_node(epmd.port, proto_dist="inet_tls", ssl_dist_optfile=py_optfile) as node:
            with caplog.at_level(logging.WARNING, logger="bridge.node"):
                assert await ev(rogue_beam, f"net_adm:ping({q(node.name)})") == Atom("pang")
                await eventually(lambda: "client's certificate was rejected" in caplog.text, what="refusal logged")
                assert "not issued by a CA in our cacertfile" in caplog.text
                assert await ev(distrustful, f"net_adm:ping({q(node.name)})") == Atom("pang")
                await eventually(lambda: "the peer does not trust our certificate" in caplog.text,
                                 what="distrust logged")
            assert rogue_beam.name not in node.nodes() and distrustful.name not in node.nodes()
    finally:
        await stop_beam(rogue_beam)
        await stop_beam(distrustful)


async def test_plain_python_to_tls_beam_says_tls(tls_beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port) as node:
        with pytest.raises(RpcError) as info:
            await node.rpc(tls_beam.name, "erlang", "node", [])
        cause = info.value.__cause__
        assert isinstance(cause, ConnectError)
        assert "TLS" in cause.reason and "inet_tls" in cause.reason, cause.reason
        assert tls_beam.name not in node.nodes()


async def test_tls_beam_to_plain_python_is_refused_with_a_reason(
    tls_beam: BeamNode, epmd: Epmd, caplog: pytest.LogCaptureFixture
) -> None:
    async with py_node(epmd.port) as node:
        with caplog.at_level(logging.WARNING, logger="bridge.node"):
            assert await ev(tls_beam, f"net_adm:ping({q(node.name)})") == Atom("pang")
            await eventually(lambda: "sent a TLS ClientHello" in caplog.text, what="TLS peer logged")
        assert "inet_tls" in caplog.text
        assert tls_beam.name not in node.nodes()


async def test_tls_python_to_plain_beam_says_tls(beam: BeamNode, epmd: Epmd, py_optfile: Path) -> None:
    async with py_node(epmd.port, proto_dist="inet_tls", ssl_dist_optfile=py_optfile, net_setuptime=3.0) as node:
        with pytest.raises(RpcError) as info:
            await node.rpc(beam.name, "erlang", "node", [])
        cause = info.value.__cause__
        assert isinstance(cause, ConnectError)
        assert "TLS" in cause.reason and "plain TCP" in cause.reason, cause.reason


async def test_plain_beam_to_tls_python_is_refused_with_a_reason(
    beam: BeamNode, tls_node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="bridge.node"):
        assert await ev(beam, f"net_adm:ping({q(tls_node.name)})") == Atom("pang")
        await eventually(lambda: "did not speak TLS" in caplog.text, what="plain peer logged")
    assert beam.name not in tls_node.nodes()


async def test_ssl_dist_opt_flags_serve_both_kinds_of_node(
    runtime: Runtime, epmd: Epmd, pki: Pki
) -> None:
    """The same ``-ssl_dist_opt`` pairs start a BEAM node and a Python node that connect."""
    me = pki.nodes["py_node"]
    flags = [
        "server_certfile", str(me.certfile), "server_keyfile", str(me.keyfile),
        "server_cacertfile", str(pki.cacertfile), "server_verify", "verify_peer",
        "server_fail_if_no_peer_cert", "true",
        "client_certfile", str(me.certfile), "client_keyfile", str(me.keyfile),
        "client_cacertfile", str(pki.cacertfile), "client_verify", "verify_peer",
    ]
    args = [*ssl_code_path(runtime.bin_dir), "-proto_dist", "inet_tls", "-ssl_dist_opt", *flags]
    beam = await start_beam(runtime, epmd.port, prefix="tlsopt", extra_args=args)
    try:
        async with Node(py_name(), cookie=beam.cookie, epmd_port=epmd.port,
                        proto_dist="inet_tls", ssl_dist_opt=flags) as node:
            assert await node.ping(beam.name)
            await check(beam, f"lists:member({q(node.name)}, nodes(hidden))")
            assert await _is_tls_connection(beam, node.name)
    finally:
        await stop_beam(beam)


async def test_cli_over_tls(tls_beam: BeamNode, epmd: Epmd, py_optfile: Path, pki: Pki) -> None:
    """``python -m bridge --proto-dist inet_tls --ssl-dist-optfile FILE`` (and ``--ssl-dist-opt``)."""
    tls = ["--cookie", tls_beam.cookie, "--proto-dist", "inet_tls"]
    done = await asyncio.to_thread(run_cli, [*tls, "--ssl-dist-optfile", str(py_optfile), "ping", tls_beam.name],
                                   epmd.port)
    assert (done.returncode, done.stdout) == (0, "pong\n"), done.stderr
    done = await asyncio.to_thread(
        run_cli, [*tls, "--ssl-dist-optfile", str(py_optfile), "rpc", tls_beam.name, "lists", "seq", "1", "3"],
        epmd.port)
    assert (done.returncode, done.stdout) == (0, "[1,2,3]\n"), done.stderr
    me = pki.nodes["py_node"]
    flags = ["--ssl-dist-opt", "client_certfile", str(me.certfile), "--ssl-dist-opt", "client_keyfile",
             str(me.keyfile), "--ssl-dist-opt", "client_cacertfile", str(pki.cacertfile),
             "--ssl-dist-opt", "client_verify", "verify_peer"]
    done = await asyncio.to_thread(run_cli, [*tls, *flags, "ping", tls_beam.name], epmd.port)
    assert (done.returncode, done.stdout) == (0, "pong\n"), done.stderr
    # A certificate without its key is a usage error that says what is missing.
    done = await asyncio.to_thread(
        run_cli, [*tls, "--ssl-dist-opt", "client_certfile", str(me.certfile), "--ssl-dist-opt",
                  "client_cacertfile", str(pki.cacertfile), "ping", tls_beam.name], epmd.port)
    assert done.returncode == EXIT_USAGE and "no keyfile given" in done.stderr, done.stderr
    # A plain CLI against the TLS node: pang, and stderr says TLS.
    done = await asyncio.to_thread(run_cli, ["--cookie", tls_beam.cookie, "ping", tls_beam.name], epmd.port)
    assert (done.returncode, done.stdout) == (EXIT_PANG, "pang\n")
    assert "TLS" in done.stderr and "inet_tls" in done.stderr, done.stderr
    # An option Python cannot honour: a usage error that names it.
    bad = pki.folder / "bad_cli.conf"
    bad.write_text('[{client, [{verify_fun, {m, f, []}}]}].')
    done = await asyncio.to_thread(run_cli, [*tls, "--ssl-dist-optfile", str(bad), "ping", tls_beam.name],
                                   epmd.port)
    assert done.returncode == EXIT_USAGE and "'verify_fun'" in done.stderr, done.stderr
