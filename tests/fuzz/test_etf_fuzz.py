"""Mutation fuzzing of the ETF decoder: only DecodeError, and every decode is fast.

Valid records (a corpus covering every tag) are mutated with bit flips,
truncation, length-field corruption and random splices; a fixed seed and a
bounded iteration count keep the run reproducible and under ~20 s.
"""

from __future__ import annotations

import random
import time
import zlib

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
)
from dist_proto.etf import Codec
from tests.codecs import by_codec

pytestmark = by_codec

NODE = Atom("fuzz@127.0.0.1")
def _corpus(codec: Codec) -> list[bytes]:
    terms = [
        (Atom("$gen_call"), (Pid(NODE, 1, 2, 3), Reference(NODE, 4, (5, 6, 7))), (Atom("get"),)),
        {Atom("k"): [1, 2.5, b"bin"], b"x": (True, None)},
        TermMap([(1, Atom("a")), (1.0, Atom("b")), ([1], {})]),
        [1, 300, -(2**40), 2**300, 1.5, "text", BitString(b"\xf0", 4)],
        ImproperList([Atom("alias")], Reference(NODE, 1, (1, 2, 3, 4, 5))),
        (Port(NODE, 5, 1), Port(NODE, 2**40, 1), ExportFun(Atom("m"), Atom("f"), 2)),
        list(range(300)),
        [[[[[(1,)]]]]],
        Atom("\u043f\u0440\u0438\u0432\u0435\u0442"),
    ]
    out = [codec.encode(t) for t in terms]
    out.append(codec.encode([Atom("x")] * 200, compressed=True))
    out.append(b"\x83c" + b"1.50000000000000000000e+00".ljust(31, b"\0"))
    out.append(b"\x83d\x00\x02ok")
    out.append(b"\x83P" + (4).to_bytes(4, "big") + zlib.compress(b"h\x01a\x01"))
    return out


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0 and b:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncation
        del b[rng.randrange(len(b) + 1):]
    elif kind == 2 and len(b) > 5:  # corrupt a (length) field with a big or boundary value
        i = rng.randrange(1, len(b) - 1)
        value = rng.choice([0, 1, 5, 255, 256, 65535, 2**31, 2**32 - 1, rng.randrange(2**32)])
        width = rng.choice([1, 2, 4])
        b[i:i + width] = value.to_bytes(4, "big")[-width:]
    elif kind == 3:  # splice in random bytes or part of another record
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.randbytes(rng.randint(1, 8))
    else:  # replace a byte with an interesting tag
        if b:
            b[rng.randrange(len(b))] = rng.choice(
                [70, 77, 80, 82, 88, 90, 97, 98, 99, 100, 104, 105, 106, 107, 108, 109, 110,
                 111, 112, 113, 114, 116, 117, 118, 119, 120, 121, 0, 255])
    return bytes(b)


def test_mutated_records_only_raise_decode_error(codec: Codec) -> None:
    rng = random.Random(20240611)
    corpus = _corpus(codec)
    for record in corpus:
        codec.decode(record)  # the originals are valid
    deadline = time.monotonic() + 15
    slowest = 0.0
    iterations = 0
    while iterations < 60_000 and time.monotonic() < deadline:
        data = _mutate(rng, rng.choice(corpus))
        if rng.random() < 0.3:
            data = _mutate(rng, data)
        t0 = time.perf_counter()
        try:
            codec.decode(data)
        except DecodeError as e:
            assert e.offset is not None
        try:
            codec.decode_from(data[1:], versioned=False, atom_cache=[Atom("c")])
        except DecodeError:
            pass
        slowest = max(slowest, time.perf_counter() - t0)
        iterations += 1
    assert iterations > 2_000
    # A hang guard, not a performance check: inputs are a few KiB at most.
    assert slowest < 5.0, f"a decode took {slowest:.3f}s"
