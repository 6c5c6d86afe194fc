"""The compiled ETF core against the pure codec: same values, same bytes, same errors.

The shared codec tests (test_etf.py, test_etf_props.py, tests/fuzz) run on both
implementations; this module checks what is particular to having two: that the
core is built here, how one is selected, differential fuzzing (both decoders see
the same mutated bytes and must agree on the value or on the error and its
offset), every container kind nested 100 000 deep, the zero-copy option, and
that error paths of the C code do not leak memory.
"""

from __future__ import annotations

import collections
import enum
import os
import random
import subprocess
import sys
import tracemalloc
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
    etf,
    exact_key,
)

PURE = etf.PURE
CORE = etf.compiled()
NODE = Atom("core@127.0.0.1")
needs_core = pytest.mark.skipif(CORE is None, reason="see test_compiled_core_is_built")


def test_compiled_core_is_built() -> None:
    assert CORE is not None, (
        "dist_proto._etf_core is not built: `make venv` (pip install -e .) builds it with gcc"
    )


@pytest.mark.parametrize("value,expected", [(None, "core"), ("1", "pure"), ("0", "core"),
                                            ("", "core")])
def test_environment_variable_selects_the_codec(value: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != etf.PURE_ENV}
    if value is not None:
        env[etf.PURE_ENV] = value
    code = ("import dist_proto, dist_proto.etf as e; "
            "print(e.ACTIVE.name, dist_proto.decode is e.ACTIVE.decode)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    want = expected if CORE is not None else "pure"
    assert out == [want, "True"]


# ------------------------------------------------------------------ differential fuzzing

def _outcome(codec: etf.Codec, data: bytes, **kw: Any) -> tuple[str, Any]:
    try:
        value = codec.decode_from(data, **kw)
    except DecodeError as e:
        return "error", (e.reason, e.offset)
    return "value", (exact_key(value[0]), _types(value[0]), value[1])


def _types(term: Any) -> Any:
    """The Python types of a decoded term, as a nested structure (iterative)."""
    out: list[Any] = []
    stack = [term]
    while stack and len(out) < 100_000:
        x = stack.pop()
        out.append(type(x).__name__)
        if isinstance(x, (tuple, list)):
            stack.extend(x)
        elif isinstance(x, (dict, TermMap)):
            for k, v in x.items():
                stack.extend((k, v))
        elif isinstance(x, ImproperList):
            stack.extend(x.items)
            stack.append(x.tail)
    return tuple(out)


def _corpus() -> list[bytes]:
    terms: list[Any] = [
        (Atom("$gen_call"), (Pid(NODE, 1, 2, 3), Reference(NODE, 4, (5, 6, 7))), (Atom("get"),)),
        {Atom("k"): [1, 2.5, b"bin"], b"x": (True, None), (1, 2): {Atom("a"): []}},
        TermMap([(1, Atom("a")), (1.0, Atom("b")), ([1], {})]),
        [1, 300, -(2**40), 2**63, 2**300, -(2**300), 1.5, "text", BitString(b"\xf0", 4)],
        ImproperList([Atom("alias"), 1], Reference(NODE, 1, (1, 2, 3, 4, 5))),
        (Port(NODE, 5, 1), Port(NODE, 2**40, 1), ExportFun(Atom("m"), Atom("f"), 2)),
        list(range(300)), [[[[[(1,)]]]]], [[], [[]], ()], (Atom("\u043f\u0440\u0438"), Atom("")),
    ]
    out = [PURE.encode(t) for t in terms]
    pid = b"X" + b"w\x03n@h" + bytes(12)
    fields = b"\x01" + b"U" * 16 + bytes.fromhex("00000003 00000002") + b"w\x01m" + b"a\x00"
    fields += b"b\x01\x02\x03\x04" + pid + b"a\x2a" + b"h\x01w\x01x"
    out.append(b"\x83p" + (len(fields) + 4).to_bytes(4, "big") + fields)
    out.append(b"\x83c" + b"1.50000000000000000000e+00".ljust(31, b"\0"))
    out.append(b"\x83d\x00\x02oks\x01x")
    out.append(b"\x83h\x03d\x00\x02oks\x01xr\x00\x01w\x01n\x01\x00\x00\x00\x01")
    out.append(b"\x83h\x02gw\x01n" + bytes(9) + b"fw\x01n" + bytes(5))
    out.append(b"\x83h\x02ew\x01n" + bytes(5) + b"M\x00\x00\x00\x01\x08\xff")
    out.append(b"\x83P" + (4).to_bytes(4, "big") + zlib.compress(b"h\x01a\x01"))
    return out


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 and b:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del b[rng.randrange(len(b) + 1):]
    elif kind == 2 and len(b) > 5:
        i = rng.randrange(1, len(b) - 1)
        value = rng.choice([0, 1, 5, 255, 256, 65535, 2**31, 2**32 - 1, rng.randrange(2**32)])
        width = rng.choice([1, 2, 4])
        b[i:i + width] = value.to_bytes(4, "big")[-width:]
    elif kind == 3:
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 8))
    elif b:
        b[rng.randrange(len(b))] = rng.choice(
            [70, 77, 80, 82, 88, 89, 90, 97, 98, 99, 100, 101, 102, 103, 104, 105, 106, 107, 108,
             109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 0, 255])
    return bytes(b)


def _same_truncation(core: tuple[str, Any], pure: tuple[str, Any]) -> bool:
    """Both found the input cut short. The pure codec's inline atom paths look the text up in
    its atom cache before checking its length, so it may report the end of the data (or a
    size check that fails because of it) later than the core, which names the atom."""
    return (core[0] == pure[0] == "error" and "runs past the end" in core[1][0])


@needs_core
def test_differential_fuzz_same_value_or_same_error() -> None:
    assert CORE is not None
    rng = random.Random(20261201)
    corpus = _corpus()
    cache = [Atom("c"), Atom("true"), "not an atom"]  # type: ignore[list-item]
    for record in corpus:
        assert _outcome(CORE, record) == _outcome(PURE, record)
        assert _outcome(CORE, record)[0] == "value"
    differ = []
    for _ in range(20_000):
        data = _mutate(rng, rng.choice(corpus))
        if rng.random() < 0.3:
            data = _mutate(rng, data)
        for kw in ({}, {"versioned": False, "offset": 1, "atom_cache": cache},
                   {"max_depth": 3}):
            if kw.get("offset", 0) > len(data):
                continue
            core, pure = _outcome(CORE, data, **kw), _outcome(PURE, data, **kw)
            if core != pure and not _same_truncation(core, pure):
                differ.append((data, kw, core, pure))
    assert not differ, differ[:3]


# ------------------------------------------------------------------ depth

def _nest(kind: str, depth: int) -> Any:
    x: Any = Atom("leaf")
    for i in range(depth):
        if kind == "tuple":
            x = (x,)
        elif kind == "list":
            x = [x, i]
        elif kind == "map value":
            x = {Atom("k"): x}
        elif kind == "map key":  # (hashing keys recurses in CPython: kept shallower below)
            x = TermMap([(x, i)]) if i % 2 else {(x,): i}
        elif kind == "improper":
            x = ImproperList([i], x)
        else:
            x = [x] if i % 3 == 0 else (Atom("t"), x) if i % 3 == 1 else {b"k": x}
    return x


@needs_core
@pytest.mark.parametrize("kind", ["tuple", "list", "map value", "map key", "improper", "mixed"])
def test_nested_100_000_deep_both_ways(kind: str) -> None:
    assert CORE is not None
    # (map keys: CPython's hash recurses; improper: both decoders merge nested tails)
    term = _nest(kind, {"map key": 300, "improper": 3_000}.get(kind, 100_000))
    data = PURE.encode(term)
    assert CORE.encode(term) == data
    back = CORE.decode(data)
    assert CORE.encode(back) == PURE.encode(PURE.decode(data))
    assert PURE.encode(back) == CORE.encode(back)
    for codec in (PURE, CORE):
        with pytest.raises(DecodeError, match="deeper than 100"):
            codec.decode(data, max_depth=100)


@needs_core
def test_nested_funs_decode_alike() -> None:
    """Funs whose free variable is a fun: the explicit stack's fun frames (1000 deep, as each
    fun keeps its own bytes)."""
    assert CORE is not None
    pid = b"X" + b"w\x03n@h" + bytes(12)
    fixed = b"\x00" + b"U" * 16 + bytes(4) + (1).to_bytes(4, "big") + b"w\x01ma\x00a\x00" + pid
    sizes = []
    inner_len = 1  # the innermost free variable: []
    for _ in range(1000):
        size = 4 + len(fixed) + inner_len
        sizes.append(size)
        inner_len = 1 + size
    data = b"\x83" + b"".join(b"p" + s.to_bytes(4, "big") + fixed for s in reversed(sizes)) + b"j"
    outcome = _outcome(CORE, data)
    assert outcome[0] == "value" and outcome == _outcome(PURE, data)
    assert _outcome(CORE, data, max_depth=500) == _outcome(PURE, data, max_depth=500)
    assert CORE.encode(CORE.decode(data)) == data


# ------------------------------------------------------------------ zero copy, contexts

@pytest.mark.parametrize("codec", etf.available(), ids=lambda c: c.name)
def test_zero_copy_binaries_are_views_of_the_input(codec: etf.Codec) -> None:
    blob = bytes(range(256)) * 4096
    data = codec.encode((blob, {b"key": b"v"}, BitString(b"\xff", 8)))
    value = codec.decode(data, zero_copy=True)
    big, small, bits = value[0], value[1], value[2]
    assert type(big) is memoryview and big.readonly and big.obj is data and big == blob
    assert [type(k) for k in small] == [memoryview] and small == {b"key": b"v"}
    assert bits == b"\xff" and codec.encode(value) == data
    packed = codec.encode(blob, compressed=True)
    view = codec.decode(packed, zero_copy=True)
    assert type(view) is memoryview and view == blob
    assert type(codec.decode(data)[0]) is bytes


@needs_core
def test_atom_cache_contexts_agree() -> None:
    assert CORE is not None
    cache = [Atom("a"), Atom("true"), Atom("undefined"), "x", Atom("m")]
    cases = [b"h\x03R\x00R\x01R\x02", b"R\x03", b"R\x05", b"XR\x00" + bytes(12),
             b"qR\x04R\x01a\x02", b"XR\x01" + bytes(12)]
    for body in cases:
        for codec_ctx in (cache, [], None):
            assert (_outcome(CORE, body, versioned=False, atom_cache=codec_ctx)
                    == _outcome(PURE, body, versioned=False, atom_cache=codec_ctx))
    for codec in (PURE, CORE):
        ctx = codec.dist_context(cache)
        assert codec.decode_dist(b"zzR\x01", 2, ctx) == (True, 4)
        with pytest.raises(DecodeError, match="not an Atom"):
            codec.decode_dist(b"R\x03", 0, ctx)
        with pytest.raises(DecodeError, match="no data"):
            codec.decode_dist(b"ab", 2, ctx)
        with pytest.raises(ValueError):
            codec.decode_dist(b"ab", 3, ctx)


@needs_core
def test_many_distinct_atoms_through_the_bounded_cache() -> None:
    assert CORE is not None
    atoms = [Atom(f"atom_{i}") for i in range(20_000)]
    data = PURE.encode(atoms)
    back = CORE.decode(data)
    assert back == atoms and CORE.decode(data) == atoms
    assert [hash(a) for a in back[:100]] == [hash(a) for a in atoms[:100]]
    assert CORE.encode(back) == data


# ------------------------------------------------------------------ encoding

class _Int(int):
    pass


class _Str(str):
    pass


class _Color(enum.IntEnum):
    RED = 1


class _Map(collections.abc.Mapping[Any, Any]):
    def __init__(self, d: dict[Any, Any]) -> None:
        self._d = d

    def __getitem__(self, k: Any) -> Any:
        return self._d[k]

    def __iter__(self) -> Any:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)


SAME_BYTES: list[Any] = [
    [_Int(5), _Int(300)], [5, _Int(6)], [_Color.RED, 2], [True, 1], [1, 2**40], _Str("x"),
    collections.OrderedDict([(1, 2)]), _Map({Atom("a"): 1}), bytearray(b"ab"),
    memoryview(b"abcd")[::2], (1.5, -0.0, 2**63, -(2**63), -(2**64), 2**64 - 1, -(2**31) - 1),
    [0] * 65535, [0] * 65536, list(range(256)) + [256], "h\u00e9llo", b"",
    Pid(NODE, 2**32 - 1, 0, 2**32 - 1), Port(NODE, 2**64 - 1, 3), Port(NODE, 2**32 - 1, 3),
    Reference(NODE, 1, (1,)), ExportFun(Atom("m"), Atom("f"), 255), BitString(b"\x01\x80", 1),
    Fun(b"p\x00", Atom("m"), 0, 0, b"u" * 16), ImproperList([1], ImproperList([2], 3)),
    {}, (), [], [[]], TermMap([]), Atom("\U0001f600" * 255),
]


@needs_core
@pytest.mark.parametrize("term", SAME_BYTES, ids=lambda t: repr(t)[:30])
def test_encoders_give_the_same_bytes(term: Any) -> None:
    assert CORE is not None
    assert CORE.encode(term) == PURE.encode(term)
    assert CORE.encode_body(term) == PURE.encode_body(term)
    for level in (True, 0, 9):
        assert CORE.encode(term, compressed=level) == PURE.encode(term, compressed=level)


BAD_TERMS: list[Any] = [
    {1, 2}, [1, {Atom("k"): object()}], float("nan"), [float("inf")], Atom("x" * 256),
    Pid(NODE, 2**32, 0, 0), Pid(NODE, -1, 0, 0), Pid("node", 1, 0, 0),  # type: ignore[arg-type]
    Port(NODE, -1, 0), Port(NODE, 2**64, 0), Reference(NODE, 1, ()),
    Reference(NODE, 1, (1,) * 6), ExportFun(Atom("m"), Atom("f"), 256), "\ud800",
    (1, 2, {3: [4, (5, complex(1, 2))]}),
]


@needs_core
@pytest.mark.parametrize("term", BAD_TERMS, ids=lambda t: repr(t)[:30])
def test_encoders_fail_alike(term: Any) -> None:
    assert CORE is not None
    errors = []
    for codec in (PURE, CORE):
        with pytest.raises((TypeError, ValueError)) as info:
            codec.encode(term)
        errors.append(info.type)
        if info.type is TypeError:
            errors.append(str(info.value))
    assert errors[: len(errors) // 2] == errors[len(errors) // 2:]


# ------------------------------------------------------------------ memory

@needs_core
def test_error_paths_do_not_leak() -> None:
    assert CORE is not None
    rng = random.Random(7)
    bad = [_mutate(rng, r) for r in _corpus() for _ in range(20)]
    terms = [[1, {2: object()}], (Atom("a"), float("nan")), Pid(NODE, -1, 0, 0)]

    def run() -> None:
        for data in bad:
            try:
                CORE.decode(data)
            except DecodeError:
                pass
        for t in terms:
            try:
                CORE.encode(t)
            except (TypeError, ValueError):
                pass

    run()
    tracemalloc.start()
    try:
        run()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20):
            run()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 20 more rounds over ~300 inputs: a leak of even one object per error shows up
    assert grown < 200_000, f"{grown} bytes kept by 20 rounds of failing decodes/encodes"


@needs_core
def test_lying_lengths_fail_before_allocating() -> None:
    assert CORE is not None
    for data in (b"\x83l\xff\xff\xff\xff" + b"a\x01" * 10, b"\x83t\xff\xff\xff\xffa\x01",
                 b"\x83i\xff\xff\xff\xff", b"\x83m\xff\xff\xff\xff", b"\x83o\xff\xff\xff\xff\x00",
                 b"\x83p\xff\xff\xff\xff" + bytes(40)):
        tracemalloc.start()
        try:
            with pytest.raises(DecodeError, match="claims"):
                CORE.decode(data)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1_000_000


@needs_core
def test_decoded_identifiers_are_not_tracked_by_the_cyclic_gc() -> None:
    """Atoms, pids, ports, references and export funs cannot be in a cycle: the core
    leaves them out of the collector's generations (a full mailbox costs it less)."""
    import gc

    assert CORE is not None
    term = (Atom("seq_untracked"), Pid(NODE, 1, 2, 3), Port(NODE, 4, 5), Reference(NODE, 6, (7, 8, 9)),
            ExportFun(Atom("m"), Atom("f"), 2))
    decoded = CORE.decode(CORE.encode(term))
    assert decoded == term
    assert not any(gc.is_tracked(x) for x in decoded)
    assert hash(decoded[3]) == hash(term[3])  # the lazily cached hash works on them too
    gc.collect()
    assert decoded == term


@needs_core
def test_decoded_tuples_of_identifiers_leave_the_collector_and_cycles_stay_collectable() -> None:
    import gc
    import weakref

    assert CORE is not None
    flat = CORE.decode(CORE.encode((Atom("seq"), 1, b"x", "s", 2.5, (Atom("ok"), Pid(NODE, 1, 2, 3)))))
    assert not gc.is_tracked(flat) and not gc.is_tracked(flat[5])
    with_list = CORE.decode(CORE.encode((Atom("a"), [1, 2])))
    with_map = CORE.decode(CORE.encode((Atom("a"), {1: 2})))
    assert gc.is_tracked(with_list) and gc.is_tracked(with_map)  # a container can lead back

    class Marker:  # freed only if the cycle it sits in is collected
        pass

    # a cycle through a decoded tuple (tuple -> its list -> the tuple) is still collected
    marker = Marker()
    with_list[1].extend([marker, with_list])
    gone = weakref.ref(marker)
    del with_list, marker
    gc.collect()
    assert gone() is None
