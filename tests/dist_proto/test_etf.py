"""ETF codec: hand-built vectors per tag, error kinds, round trips, deep terms."""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any

import pytest

from dist_proto import (
    Atom,
    BitString,
    DecodeError,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    TermMap,
)
from dist_proto.etf import Codec
from tests.codecs import by_codec

pytestmark = by_codec

N = Atom("n@h")
NODE = b"w\x03n@h"


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


# (bytes after 131, decoded value, whether encode gives the same bytes back)
VECTORS: list[tuple[bytes, Any, bool]] = [
    (b"a\x00", 0, True),
    (b"a\xff", 255, True),
    (b"b\x00\x00\x01\x00", 256, True),
    (b"b\xff\xff\xff\xff", -1, True),
    (b"b\x80\x00\x00\x00", -(2**31), True),
    (b"b\x7f\xff\xff\xff", 2**31 - 1, True),
    (b"n\x04\x00\x00\x00\x00\x80", 2**31, True),
    (b"n\x04\x01\x01\x00\x00\x80", -(2**31) - 1, True),
    (b"n\x08\x00" + b"\xff" * 8, 2**64 - 1, True),
    (b"o" + u32(256) + b"\x00" + b"\x00" * 255 + b"\x01", 2**2040, True),
    (b"n\x01\x00\x05", 5, False),  # non-minimal forms are accepted
    (b"b\x00\x00\x00\x05", 5, False),
    (b"o\x00\x00\x00\x01\x01\x05", -5, False),
    (b"F" + struct.pack(">d", 1.5), 1.5, True),
    (b"F" + struct.pack(">d", -0.0), -0.0, True),
    (b"c" + b"1.50000000000000000000e+00".ljust(31, b"\0"), 1.5, False),
    (b"w\x02ok", Atom("ok"), True),
    (b"w\x04true", True, True),
    (b"w\x05false", False, True),
    (b"w\x09undefined", None, True),
    (b"w\x03nil", Atom("nil"), True),
    (b"d\x00\x02ok", Atom("ok"), False),
    (b"s\x02ok", Atom("ok"), False),
    (b"d\x00\x01\xe9", Atom("\xe9"), False),
    (b"v\x00\x02ok", Atom("ok"), False),
    (b"w\x02\xd0\xbf", Atom("\u043f"), True),
    (b"v\x01\xfe" + "\u043f".encode() * 255, Atom("\u043f" * 255), True),
    (b"m" + u32(3) + b"abc", b"abc", True),
    (b"m" + u32(0), b"", True),
    (b"M" + u32(1) + b"\x03\xe0", BitString(b"\xe0", 3), True),
    (b"M" + u32(1) + b"\x08\xe0", b"\xe0", False),  # 8 used bits: a binary
    (b"h\x00", (), True),
    (b"h\x02a\x01a\x02", (1, 2), True),
    (b"i" + u32(2) + b"a\x01a\x02", (1, 2), False),
    (b"j", [], True),
    (b"k\x00\x03abc", [97, 98, 99], True),
    (b"l" + u32(2) + b"a\x01b\x00\x00\x01\x00j", [1, 256], True),
    (b"l" + u32(1) + b"a\x01w\x01t", ImproperList([1], Atom("t")), True),
    (b"l" + u32(1) + b"a\x01k\x00\x01\x02", [1, 2], False),  # list tail is a list
    (b"t" + u32(0), {}, True),
    (b"t" + u32(1) + b"w\x01ka\x01", {Atom("k"): 1}, True),
    (b"XU" + NODE[1:] + u32(1) + u32(2) + u32(3), None, False),  # placeholder, replaced below
]
VECTORS.pop()
VECTORS += [
    (b"X" + NODE + u32(1) + u32(2) + u32(3), Pid(N, 1, 2, 3), True),
    (b"g" + NODE + u32(1) + u32(2) + b"\x03", Pid(N, 1, 2, 3), False),
    (b"Y" + NODE + u32(7) + u32(3), Port(N, 7, 3), True),
    (b"x" + NODE + struct.pack(">Q", 2**40) + u32(3), Port(N, 2**40, 3), True),
    (b"f" + NODE + u32(7) + b"\x03", Port(N, 7, 3), False),
    (b"Z\x00\x03" + NODE + u32(9) + u32(1) + u32(2) + u32(3), Reference(N, 9, (1, 2, 3)), True),
    (b"Z\x00\x05" + NODE + u32(9) + u32(1) * 5, Reference(N, 9, (1,) * 5), True),
    (b"r\x00\x02" + NODE + b"\x09" + u32(1) + u32(2), Reference(N, 9, (1, 2)), False),
    (b"e" + NODE + u32(1) + b"\x09", Reference(N, 9, (1,)), False),
    (b"qw\x05listsw\x03mapa\x02", ExportFun(Atom("lists"), Atom("map"), 2), True),
    (b"w\x03n@h", N, True),
]


@pytest.mark.parametrize("body,value,canonical", VECTORS, ids=lambda v: repr(v)[:30])
def test_vector(body: bytes, value: Any, canonical: bool, codec: Codec) -> None:
    got = codec.decode(b"\x83" + body)
    assert got == value and type(got) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)
    if canonical:
        assert codec.encode(value) == b"\x83" + body
        assert codec.encode_body(value) == body
    else:
        assert codec.decode(codec.encode(value)) == value


def test_new_fun_is_opaque_and_byte_exact(codec: Codec) -> None:
    pid = b"X" + NODE + u32(1) + u32(0) + u32(1)
    fields = b"\x01" + b"U" * 16 + u32(3) + u32(1) + b"w\x01m" + b"a\x00" + b"b\x01\x02\x03\x04"
    fields += pid + b"a\x2a"
    raw = b"p" + u32(len(fields) + 4) + fields
    fun = codec.decode(b"\x83" + raw)
    assert type(fun) is Fun
    assert (fun.module, fun.arity, fun.index, fun.free_vars) == (Atom("m"), 1, 3, (42,))
    assert codec.encode(fun) == b"\x83" + raw
    # decoded with an atom cache: rebuilt from the fields, without cache refs
    cached = raw.replace(b"w\x01m", b"R\x00")
    cached = cached[:1] + u32(len(cached) - 1) + cached[5:]
    fun2, end = codec.decode_from(cached, 0, versioned=False, atom_cache=[Atom("m")])
    assert end == len(cached) and fun2.data == raw


def test_str_encodes_as_binary_and_buffers_too(codec: Codec) -> None:
    assert codec.encode("h\u00e9") == b"\x83m" + u32(3) + "h\u00e9".encode()
    assert codec.encode(bytearray(b"ab")) == codec.encode(b"ab") == codec.encode(memoryview(b"ab"))
    assert codec.encode(BitString(b"\xff", 8)) == codec.encode(b"\xff")


def test_string_ext_rules(codec: Codec) -> None:
    assert codec.encode([1, 2])[1:2] == b"k"
    assert codec.encode([True, 1])[1:2] == b"l"  # booleans are atoms
    assert codec.encode([1, 256])[1:2] == b"l"
    assert codec.encode([0] * 65535)[1:2] == b"k"
    assert codec.encode([0] * 65536)[1:2] == b"l"
    assert codec.decode(codec.encode([0] * 70000)) == [0] * 70000


def test_maps_that_python_would_merge(codec: Codec) -> None:
    for pairs in ([(1, Atom("a")), (1.0, Atom("b"))], [(0.0, 1), (-0.0, 2)],
                  [(True, 1), (1, 2)], [([1], 1), ({2: 3}, 4)]):
        m = TermMap(pairs)
        back = codec.decode(codec.encode(m))
        assert type(back) is TermMap and back == m and len(back) == 2
    assert codec.decode(codec.encode({1: 2})) == {1: 2}


def test_decode_from_offsets_and_atom_cache(codec: Codec) -> None:
    data = b"junk\x83a\x05" + b"w\x01x"
    assert codec.decode_from(data, 4) == (5, 7)
    assert codec.decode_from(data, 7, versioned=False) == (Atom("x"), 10)
    assert codec.decode_from(bytearray(data), 4) == (5, 7)
    assert codec.decode_from(memoryview(data), 7, versioned=False) == (Atom("x"), 10)
    cache = [Atom("a"), Atom("true")]
    assert codec.decode_from(b"h\x02R\x00R\x01", 0, versioned=False, atom_cache=cache) == (
        (Atom("a"), True), 6)
    pid = b"XR\x00" + u32(1) + u32(0) + u32(1)
    assert codec.decode_from(pid, versioned=False, atom_cache=[N])[0] == Pid(N, 1, 0, 1)


def test_compressed(codec: Codec) -> None:
    term = [Atom("x")] * 1000
    for level in (True, 1, 9):
        data = codec.encode(term, compressed=level)
        assert data[1] == 80 and codec.decode(data) == term
    assert codec.encode([1], compressed=True) == codec.encode([1])  # does not shrink: left as is
    assert codec.encode(term, compressed=0) == codec.encode(term)
    with pytest.raises(ValueError):
        codec.encode(term, compressed=10)


def test_deep_terms_both_ways(codec: Codec) -> None:
    depth = 100_000
    deep: Any = []
    for _ in range(depth):
        deep = [deep]
    data = codec.encode(deep)
    assert data == b"\x83" + (b"l" + u32(1)) * depth + b"j" * (depth + 1)
    back = codec.decode(data)
    n = 0
    while back:
        back = back[0]
        n += 1
    assert n == depth
    tup = b"\x83" + b"h\x01" * depth + b"t" + u32(1) + b"a\x01" + b"l" + u32(1) + b"a\x02w\x01t"
    value = codec.decode(tup)
    assert codec.encode(value) == tup


def test_big_containers(codec: Codec) -> None:
    t = tuple(range(70_000))
    assert codec.decode(codec.encode(t)) == t
    ints = list(range(-50_000, 50_000)) + [2**40, -(2**70)]
    assert codec.decode(codec.encode(ints)) == ints


def test_atoms(codec: Codec) -> None:
    with pytest.raises(ValueError):
        codec.encode(Atom("x" * 256))
    assert codec.decode(codec.encode(Atom("x" * 255))) == Atom("x" * 255)
    assert codec.decode(codec.encode(Atom(""))) == Atom("")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_floats(value: float, codec: Codec) -> None:
    with pytest.raises(ValueError):
        codec.encode(value)


def test_unsupported_types_name_the_path(codec: Codec) -> None:
    with pytest.raises(TypeError, match=r"set.*\[1\]\[Atom\('k'\)\]"):
        codec.encode([1, {Atom("k"): {1}}])
    with pytest.raises(TypeError, match="object"):
        codec.encode(object())


# ------------------------------------------------------------------ errors

BAD: list[tuple[bytes, str]] = [
    (b"", "no data"),
    (b"\x82a\x01", "version byte"),
    (b"\x83", "no data"),
    (b"\x83a", "end of data"),
    (b"\x83a\x01\x00", "after the term"),
    (b"\x83m\xff\xff\xff\xff\x00", "claims 4294967295 bytes"),
    (b"\x83l\xff\xff\xff\xffj", "LIST_EXT claims"),
    (b"\x83t\x7f\xff\xff\xff", "MAP_EXT claims"),
    (b"\x83i\xff\xff\xff\xff", "LARGE_TUPLE_EXT claims"),
    (b"\x83k\x00\x09ab", "STRING_EXT claims"),
    (b"\x83o\xff\xff\xff\xff\x00", "bignum claims"),
    (b"\x83n\x01\x02\x01", "sign byte"),
    (b"\x83w\x02\xff\xfe", "not valid UTF-8"),
    (b"\x83w\x05ab", "runs past the end"),
    (b"\x83v\x01\x00" + b"x" * 256, "256 characters"),
    (b"\x83d\x01\x00" + b"x" * 256, "256 characters"),
    (b"\x83M\x00\x00\x00\x01\x00\xff", "bits"),
    (b"\x83M\x00\x00\x00\x01\x09\xff", "bits"),
    (b"\x83M\x00\x00\x00\x00\x03", "no bytes"),
    (b"\x83Z\x00\x00" + NODE + u32(1), "1..5"),
    (b"\x83Z\x00\x06" + NODE + u32(1) + u32(1) * 6, "1..5"),
    (b"\x83F\x7f\xf8\x00\x00\x00\x00\x00\x00", "finite"),
    (b"\x83F\x7f\xf0\x00\x00\x00\x00\x00\x00", "finite"),
    (b"\x83c" + b"nan".ljust(31, b"\0"), "finite"),
    (b"\x83c" + b"zzz".ljust(31, b"\0"), "not a number"),
    (b"\x83t\x00\x00\x00\x02a\x01a\x01a\x01a\x02", "duplicate keys"),
    (b"\x83t\x00\x00\x00\x02w\x01aa\x01w\x01aa\x02", "duplicate keys"),
    (b"\x83y\x00\x00\x00\x00", "LOCAL_EXT"),
    (b"\x83u\x00\x00\x00\x00", "FUN_EXT"),
    (b"\x83I", "tag 73"),
    (b"\x83\x00", "tag 0"),
    (b"\x83R\x00", "ATOM_CACHE_REF outside"),
    (b"\x83X" + b"a\x01" + u32(1) * 3, "expected an atom"),
    (b"\x83qw\x01mw\x01fb\x00\x00\x00\x01", "arity"),
    (b"\x83h\x01P\x00\x00\x00\x01", "right after the version byte"),
    (b"\x83P\x00\x00\x00\x00", "size 0"),
    (b"\x83P\xff\xff\xff\xff" + zlib.compress(b"a\x01"), "limit"),
    (b"\x83P\x00\x00\x00\x05" + zlib.compress(b"a\x01"), "inflates to 2 bytes"),
    (b"\x83P\x00\x00\x00\x01" + zlib.compress(b"a\x01"), "more than 1"),
    (b"\x83P\x00\x00\x00\x02" + zlib.compress(b"a\x01")[:-3], "truncated"),
    (b"\x83P\x00\x00\x00\x02" + b"garbage!", "zlib"),
    (b"\x83P\x00\x00\x00\x03" + zlib.compress(b"a\x01\x00"), "bytes after"),
    (b"\x83P\x00\x00\x00\x02" + zlib.compress(b"m\x00"), "compressed data"),
    (b"\x83P\x00\x00\x00\x02" + zlib.compress(b"a\x01") + b"x", "after the term"),
]


@pytest.mark.parametrize("data,message", BAD, ids=lambda v: repr(v)[:40])
def test_bad_input(data: bytes, message: str, codec: Codec) -> None:
    with pytest.raises(DecodeError, match=message) as info:
        codec.decode(data)
    assert isinstance(info.value, ValueError)
    assert info.value.offset is not None and "offset" in str(info.value)


def test_atom_cache_errors(codec: Codec) -> None:
    with pytest.raises(DecodeError, match="has 1 refs"):
        codec.decode_from(b"R\x01", versioned=False, atom_cache=[Atom("a")])


def test_depth_cap(codec: Codec) -> None:
    data = b"\x83" + b"h\x01" * 50 + b"j"
    assert codec.decode(data, max_depth=50) is not None
    with pytest.raises(DecodeError, match="deeper than 10"):
        codec.decode(data, max_depth=10)


def test_lying_length_fails_at_once(codec: Codec) -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"\x83m\xff\xff\xff\xff")
    with pytest.raises(DecodeError, match="limit"):
        codec.decode(b"\x83P\x01\x00\x00\x00" + zlib.compress(b"\0" * 100), max_uncompressed_size=2**20)


def test_bomb_is_not_inflated_beyond_declared_size(codec: Codec) -> None:
    bomb = zlib.compress(b"m" + u32(50_000_000) + b"\0" * 50_000_000, 9)
    with pytest.raises(DecodeError, match="more than 100"):
        codec.decode(b"\x83P" + u32(100) + bomb)
