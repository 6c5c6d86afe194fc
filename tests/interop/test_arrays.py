"""numpy arrays to and from real BEAM nodes (OTP 25 and 28): the ``'$nd'`` term is
decoded on the BEAM with bit syntax and checked value by value; a BEAM binary with
its type and shape comes back as a numpy view of the received data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from bridge import Node
from bridge.arrays import from_term
from dist_proto.terms import Atom
from python_actors import GenServer, Reply
from tests.beam import BeamNode
from tests.interop.node_support import ev, py_node, q

pytestmark = pytest.mark.interop

ARRAYS = {
    "f32": np.array([[0.5, -1.25, 3.0], [1e-3, 2.0**20, -0.0]], dtype=np.float32),
    "f64": np.linspace(-1.0, 1.0, 12).reshape(3, 2, 2),
    "s64": np.array([-(2**62), -1, 0, 1, 2**62], dtype=np.int64),
    "u8": np.arange(250, 256, dtype=np.uint8).reshape(2, 3),
    "bool": np.array([True, False, True, True]),
    "f32_strided": np.arange(20, dtype=np.float32).reshape(4, 5)[:, ::2],
}
# How the BEAM reads each element back: bit syntax for Nx's type.
BITS = {(Atom("f"), 32): "X:32/float-little", (Atom("f"), 64): "X:64/float-little",
        (Atom("s"), 64): "X:64/signed-little", (Atom("u"), 8): "X:8/unsigned-little"}


class Arrays(GenServer):
    """Replies with numpy arrays; takes '$nd' terms and answers with what it saw."""

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request[0] == Atom("get"):
            return Reply((Atom("ok"), ARRAYS[request[1].decode()]), state)
        if request[0] == Atom("big"):
            return Reply(np.arange(request[1], dtype=np.float64), state)
        term = request[1]
        arr = from_term(term)  # a view of the received binary
        shares = bool(np.shares_memory(arr, np.frombuffer(term[3], dtype=np.uint8)))
        return Reply((arr.dtype.str.encode(), list(arr.shape), arr.ravel().tolist(), shares), state)


@pytest.fixture
async def python(epmd: Any) -> AsyncIterator[Node]:
    async with py_node(epmd.port) as node:
        await Arrays.start(runtime=node.runtime, name="py_arrays")
        yield node


def register_shell(name: str) -> str:
    """Register the BEAM's evaluating process as ``name`` (dropping a name it has)."""
    return (f"[unregister(N) || {{registered_name, N}} <- [process_info(self(), registered_name)]], "
            f"catch unregister({name}), register({name}, self())")


def decode_on_beam(nx_type: tuple[Atom, int]) -> str:
    """An Erlang fun turning a '$nd' term into {Type, Shape, [Values]} with bit syntax."""
    return (f"fun({{'$nd', T, S, D}}) -> {{T, S, [X || <<{BITS[nx_type]}>> <= D]}} end")


@pytest.mark.parametrize("key", list(ARRAYS))
async def test_a_numpy_reply_is_read_value_by_value_on_the_beam(beam: BeamNode, python: Node, key: str) -> None:
    arr = ARRAYS[key]
    nx_type = {"f": (Atom("f"), arr.dtype.itemsize * 8), "i": (Atom("s"), 64),
               "u": (Atom("u"), 8), "b": (Atom("u"), 8)}[arr.dtype.kind]
    got = await ev(beam, f"{{ok, A}} = gen_server:call({{py_arrays, {q(python.name)}}}, {{get, <<\"{key}\">>}}), "
                         f"(  {decode_on_beam(nx_type)}  )(A)")
    assert got[0] == nx_type and got[1] == arr.shape
    assert got[2] == [x.item() for x in arr.ravel(order="C")]


async def test_a_send_of_8_mib_arrives_whole(beam: BeamNode, python: Node) -> None:
    """A reply (alias send) and a registered send, each larger than the socket
    buffer, so the chunks are written in parts."""
    n = 1024 * 1024
    got = await ev(beam, f"{{'$nd', {{f, 64}}, {{N}}, D}} = gen_server:call({{py_arrays, {q(python.name)}}}, "
                         f"{{big, {n}}}), {{N, byte_size(D), lists:sum([X || <<X:64/float-little>> <= D])}}")
    assert got == (n, 8 * n, float(n * (n - 1) // 2))
    await ev(beam, register_shell("arrays_inbox"))
    big = np.arange(n, dtype=np.int64).reshape(1024, 1024)
    await python.send(("arrays_inbox", beam.name), (Atom("frame"), big, b"tail"))
    got = await ev(beam, "receive {frame, {'$nd', {s, 64}, {R, C}, D}, Tail} -> "
                         "{R, C, lists:sum([X || <<X:64/signed-little>> <= D]), Tail} after 10000 -> none end")
    assert got == (1024, 1024, n * (n - 1) // 2, b"tail")


async def test_a_beam_binary_comes_back_as_a_numpy_view(beam: BeamNode, python: Node) -> None:
    got = await ev(beam, "D = << <<X:32/float-little>> || X <- [1.5, 2.5, 3.5, 4.5, 5.5, 6.5] >>, "
                         f"gen_server:call({{py_arrays, {q(python.name)}}}, {{take, {{'$nd', {{f, 32}}, {{3, 2}}, D}}}})")
    assert got == (b"<f4", [3, 2], [1.5, 2.5, 3.5, 4.5, 5.5, 6.5], True)
    got = await ev(beam, "D = << <<X:64/signed-little>> || X <- [-1, 7] >>, "
                         f"gen_server:call({{py_arrays, {q(python.name)}}}, {{take, {{'$nd', {{s, 64}}, {{2}}, D}}}})")
    assert got == (b"<i8", [2], [-1, 7], True)


async def test_an_array_sent_before_the_connection_exists(beam: BeamNode, epmd: Any) -> None:
    """The send is queued while the node dials (auto-connect), then written as chunks."""
    await ev(beam, register_shell("arrays_early"))
    async with py_node(epmd.port) as fresh:
        assert beam.name not in fresh.nodes()
        fresh.runtime.send(("arrays_early", beam.name), (Atom("early"), np.arange(5, dtype=np.uint8)))
        got = await ev(beam, "receive {early, {'$nd', {u, 8}, {5}, D}} -> binary_to_list(D) after 10000 -> none end")
    assert got == [0, 1, 2, 3, 4]
