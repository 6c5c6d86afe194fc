"""Names and address families: IPv6 (``inet6_tcp``, ``py@::1``), long names with
dotted hostnames, and BEAM's rule that short and long names do not mix."""

from __future__ import annotations

import socket

import pytest

from bridge import Node
from bridge.connections import names_compatible
from bridge.naming import parse_node_name
from dist_proto.handshake import HandshakeComplete
from dist_proto.terms import Atom
from tests.beam import free_port, unique_name
from tests.bridge.hostile_peer import HostilePeer

COOKIE = "names_cookie"


@pytest.mark.parametrize(
    ("ours", "theirs", "ok"),
    [
        ("a@127.0.0.1", "b@127.0.0.1", True),
        ("a@127.0.0.1", "b@host.example.com", True),  # long names with dotted hostnames
        ("a@host.example.com", "b@::1", True),  # an IPv6 address is a long name
        ("a@::1", "b@10.0.0.1", True),
        ("a@127.0.0.1", "b@localhost", False),  # long to short
        ("a@::1", "b@myhost", False),
        ("a@localhost", "b@myhost", True),  # short to short
        ("a@localhost", "b@127.0.0.1", False),  # short to long (dots)
        ("a@localhost", "b@host.example.com", False),
    ],
)
def test_short_and_long_names_follow_beams_rule(ours: str, theirs: str, ok: bool) -> None:
    why = names_compatible(parse_node_name(ours), parse_node_name(theirs))
    assert (why is None) is ok
    if why is not None:
        assert "short name" in why and "long name" in why


def _v6_name(prefix: str) -> str:
    return f"{unique_name(prefix)}@::1"


async def test_ipv6_nodes_connect_epmd_less() -> None:
    a = Node(_v6_name("a"), cookie=COOKIE, use_epmd=False)
    async with a:
        a.allow_rpc("t", "name", lambda: Atom(a.name))
        listener = a._conns._listener
        assert listener is not None and listener.family == socket.AF_INET6
        async with Node(_v6_name("b"), cookie=COOKIE, use_epmd=False, ports={a.name: a.port}) as b:
            assert await b.ping(a.name)
            assert await b.rpc(a.name, "t", "name", []) == Atom(a.name)
            assert a.nodes() == [b.name]


async def test_ipv6_nodes_find_each_other_through_the_embedded_epmd() -> None:
    epmd_port = free_port()
    async with Node(_v6_name("a"), cookie=COOKIE, epmd_port=epmd_port, embedded_epmd=True) as a:
        async with Node(_v6_name("b"), cookie=COOKIE, epmd_port=epmd_port) as b:
            assert await b.ping(a.name)


async def test_dotted_long_name_is_accepted_by_a_long_named_node() -> None:
    async with Node(f"{unique_name('a')}@127.0.0.1", cookie=COOKIE, use_epmd=False) as a:
        peer = await HostilePeer.open(a.port, f"{unique_name('x')}@host.example.com", COOKIE)
        try:
            assert isinstance(await peer.handshake(), HandshakeComplete)
        finally:
            await peer.close()


async def test_dotted_long_name_is_refused_by_a_short_named_node() -> None:
    async with Node(f"{unique_name('s')}@localhost", cookie=COOKIE, use_epmd=False) as s:
        peer = await HostilePeer.open(s.port, f"{unique_name('x')}@host.example.com", COOKIE)
        try:
            assert await peer.handshake() is None  # closed before any status
        finally:
            await peer.close()
        assert s.nodes() == []
