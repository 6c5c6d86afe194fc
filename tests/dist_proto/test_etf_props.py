"""Property tests of the ETF codec (Hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dist_proto import (
    Atom,
    BitString,
    DecodeError,
    ExportFun,
    ImproperList,
    Pid,
    Port,
    Reference,
    TermMap,
    exact_key,
)
from dist_proto.etf import Codec
from tests.codecs import by_codec

pytestmark = by_codec

atoms = st.text(max_size=20).map(Atom)
nodes = st.sampled_from([Atom("a@h"), Atom("nonode@nohost"), Atom("py@127.0.0.1")])
u32 = st.integers(0, 2**32 - 1)
scalars = st.one_of(
    atoms,
    st.booleans(),
    st.none(),
    st.integers(),
    st.integers(-(2**3000), 2**3000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=40),
    st.builds(BitString, st.binary(min_size=1, max_size=5), st.integers(1, 7)),
    st.builds(Pid, nodes, u32, u32, u32),
    st.builds(Port, nodes, st.integers(0, 2**64 - 1), u32),
    st.builds(Reference, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple)),
    st.builds(ExportFun, atoms, atoms, st.integers(0, 255)),
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.builds(ImproperList, st.lists(children, min_size=1, max_size=4),
                  scalars.filter(lambda x: type(x) is not list)),
        st.dictionaries(scalars.filter(lambda x: type(x) is not float), children, max_size=5),
        st.lists(st.tuples(children, children), max_size=5).map(TermMap),
    )


terms = st.recursive(scalars, _containers, max_leaves=30)


@given(terms)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_roundtrip(codec: Codec, value: Any) -> None:
    data = codec.encode(value)
    back = codec.decode(data)
    assert exact_key(back) == exact_key(value)
    if not isinstance(value, (dict, TermMap)):
        assert codec.encode(back) == data  # re-encoding is stable
    assert exact_key(codec.decode(codec.encode(value, compressed=True))) == exact_key(value)
    body = codec.encode_body(value)
    assert codec.decode_from(body, versioned=False)[1] == len(body)


@given(st.binary(max_size=200))
@settings(max_examples=2000)
def test_random_bytes_only_decode_error(codec: Codec, data: bytes) -> None:
    for blob in (data, b"\x83" + data):
        try:
            codec.decode(blob)
        except DecodeError:
            pass


@given(terms, st.data())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_truncation(codec: Codec, value: Any, data: st.DataObject) -> None:
    blob = codec.encode(value)
    cut = data.draw(st.integers(0, len(blob) - 1))
    try:
        codec.decode(blob[:cut])
    except DecodeError:
        return
    raise AssertionError("a truncated term decoded")
