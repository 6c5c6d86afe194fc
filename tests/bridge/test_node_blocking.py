"""The blocking facade with Python nodes only: verbs from plain threads, clean failure."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bridge import BlockingNode, NameTaken, RpcError
from bridge.naming import NodeNameError
from dist_proto.terms import Atom
from python_actors import GenServer, Ok, Reply
from tests.beam import free_port, unique_name

COOKIE = "blocking_cookie"


def _bridge_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("bridge-")]


class Echo(GenServer):
    def init(self, _: Any) -> Ok:
        return Ok(None)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Reply:
        return Reply((Atom("echo"), request), state)


def test_two_blocking_nodes_talk() -> None:
    pa, pb = free_port(), free_port()
    na, nb = f"{unique_name('ba')}@127.0.0.1", f"{unique_name('bb')}@127.0.0.1"
    with (
        BlockingNode(na, cookie=COOKIE, use_epmd=False, listen_port=pa, ports={nb: pb}) as a,
        BlockingNode(nb, cookie=COOKIE, use_epmd=False, listen_port=pb, ports={na: pa}) as b,
    ):
        b.node.allow_rpc("m", "double", lambda x: 2 * x)
        b.run(Echo.start(None, name="echo", runtime=b.node.runtime))
        results: dict[str, Any] = {}

        def worker() -> None:
            results["ping"] = a.ping(nb)
            results["rpc"] = a.rpc(nb, "m", "double", [21])
            results["call"] = a.call(("echo", nb), 1)
            try:
                a.rpc(nb, "m", "missing", [])
            except RpcError as exc:
                results["undef"] = exc.reason[1][0]
            results["pang"] = a.ping("nobody@127.0.0.1", timeout=1)

        t = threading.Thread(target=worker)
        t.start()
        t.join(30)
        assert not t.is_alive()
        assert results == {
            "ping": True,
            "rpc": 42,
            "call": (Atom("echo"), 1),
            "undef": Atom("undef"),
            "pang": False,
        }
    assert _bridge_threads() == []


def test_bad_arguments_leave_no_thread() -> None:
    with pytest.raises(NodeNameError):
        BlockingNode("bad@@name", cookie=COOKIE)
    assert _bridge_threads() == []


def test_failed_start_leaves_no_thread() -> None:
    port = free_port()
    name = f"{unique_name('bt')}@127.0.0.1"
    with BlockingNode(name, cookie=COOKIE, epmd_port=port, embedded_epmd=True):
        with pytest.raises(NameTaken):
            BlockingNode(name, cookie=COOKIE, epmd_port=port)
        assert len(_bridge_threads()) == 1
    assert _bridge_threads() == []
