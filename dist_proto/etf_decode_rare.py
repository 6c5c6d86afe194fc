"""The rarely taken paths of :mod:`dist_proto.etf_decode`, split from it.

Decoders of the rare tags (floats in the old text form, large tuples, bitstrings,
bignums, old pids/ports/refs, ports, export and local funs, and the tags that are
always an error in a term), the explicit-stack decoder ``_dec_iter`` for terms
nested deeper than the recursion limit, and ``_inflate`` for ``COMPRESSED``.
:data:`RARE` is the table, indexed by tag, that :func:`dist_proto.etf_decode._dec`
falls back to; every entry has ``_dec``'s signature ``(data, pos, depth, ctx)``.
The decoder core is reached through the module at call time, as it imports this
module at its end.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import etf_decode as _core
from .errors import DecodeError
from .mapping import STRUCT_KEY
from .terms import Atom, BitString, ExportFun, Fun, Pid, Port, Reference

if TYPE_CHECKING:
    from .etf_decode import _Ctx

__all__ = ["RARE"]

_u32 = struct.Struct(">I").unpack_from
_u32u8 = struct.Struct(">IB").unpack_from
_u32u32u8 = struct.Struct(">IIB").unpack_from
_u32x2 = struct.Struct(">II").unpack_from
_u64u32 = struct.Struct(">QI").unpack_from
_fun_head = struct.Struct(">IB16sII").unpack_from  # size, arity, uniq, index, num_free


def _d_float_ext(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    raw = data[pos + 1 : pos + 32]
    if len(raw) != 31:
        raise IndexError
    text = raw.split(b"\0", 1)[0].strip()
    try:
        value = float(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise DecodeError("FLOAT_EXT text is not a number", pos) from None
    if value - value != 0.0 or b"_" in text:
        raise DecodeError("FLOAT_EXT is not a finite float", pos)
    return value, pos + 32


def _d_atom(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _core._any_atom(data, pos, ctx)


def _d_large_tuple(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _u32(data, pos + 1)[0]
    _core._check_len(data, pos + 5, n, "LARGE_TUPLE_EXT", pos)
    if depth >= ctx.limit:
        return _dec_iter(data, pos, depth, ctx)
    p = pos + 5
    items: list[Any] = []
    append = items.append
    for _ in range(n):
        v, p = _core._dec(data, p, depth + 1, ctx)
        append(v)
    return tuple(items), p


def _d_bit_binary(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n, bits = _u32u8(data, pos + 1)
    _core._check_len(data, pos + 6, n, "BIT_BINARY_EXT", pos)
    if not 1 <= bits <= 8:
        raise DecodeError(f"BIT_BINARY_EXT with {bits} bits in its last byte (must be 1..8)", pos)
    if n == 0:
        raise DecodeError("BIT_BINARY_EXT with no bytes", pos)
    if bits == 8:  # every bit of the last byte used: a plain binary
        if ctx.binary is not None:
            return ctx.binary(data, pos + 6, pos + 6 + n), pos + 6 + n
        return data[pos + 6 : pos + 6 + n], pos + 6 + n
    return BitString(data[pos + 6 : pos + 6 + n], bits), pos + 6 + n


def _big(data: bytes, pos: int, start: int, n: int) -> tuple[int, int]:
    _core._check_len(data, start + 1, n, "bignum", pos)
    sign = data[start]
    if sign > 1:
        raise DecodeError(f"bignum sign byte {sign} (must be 0 or 1)", pos)
    value = int.from_bytes(data[start + 1 : start + 1 + n], "little")
    return (-value if sign else value), start + 1 + n


def _d_small_big(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _big(data, pos, pos + 2, data[pos + 1])


def _d_large_big(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _big(data, pos, pos + 5, _u32(data, pos + 1)[0])


def _d_pid(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _core._node_atom(data, pos + 1, ctx)
    i, s, c = _u32u32u8(data, p)
    return Pid(node, i, s, c), p + 9


def _d_new_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _core._node_atom(data, pos + 1, ctx)
    i, c = _u32x2(data, p)
    return Port(node, i, c), p + 8


def _d_v4_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _core._node_atom(data, pos + 1, ctx)
    i, c = _u64u32(data, p)
    return Port(node, i, c), p + 12


def _d_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _core._node_atom(data, pos + 1, ctx)
    i, c = _u32u8(data, p)
    return Port(node, i, c), p + 5


def _d_reference(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _core._node_atom(data, pos + 1, ctx)
    i, c = _u32u8(data, p)
    return Reference(node, c, (i,)), p + 5


def _d_export(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    module, p = _core._node_atom(data, pos + 1, ctx)
    function, p = _core._node_atom(data, p, ctx)
    if data[p] != 97:
        raise DecodeError("EXPORT_EXT arity is not a SMALL_INTEGER_EXT", p)
    return ExportFun(module, function, data[p + 1]), p + 2


_FunHead = tuple[int, int, bytes, int, int, Atom, int, int, Pid, int]


def _fun_header(data: bytes, pos: int, ctx: _Ctx) -> _FunHead:
    """Parse a NEW_FUN_EXT up to its free variables.

    Returns ``(size, arity, uniq, index, num_free, module, ints_start, ints_end,
    creator, p)``: ``data[ints_start:ints_end]`` holds the old index and old uniq
    integers and ``p`` is the offset of the first free variable.
    """
    size, arity, uniq, index, num_free = _fun_head(data, pos + 1)
    _core._check_len(data, pos + 1, size, "NEW_FUN_EXT", pos)
    if num_free > size:
        raise DecodeError(f"NEW_FUN_EXT claims {num_free} free variables in {size} bytes", pos)
    module, p = _core._node_atom(data, pos + 30, ctx)
    ints_start = p
    for what in ("old index", "old uniq"):
        tag = data[p]
        if tag == 97:
            p += 2
        elif tag == 98:
            p += 5
        else:
            raise DecodeError(f"NEW_FUN_EXT {what} is not an integer", p)
    ints_end = p
    tag = data[p]
    if tag == 88:
        creator, p = _core._d_new_pid(data, p, 0, ctx)
    elif tag == 103:
        creator, p = _d_pid(data, p, 0, ctx)
    else:
        raise DecodeError("NEW_FUN_EXT creator is not a pid", p)
    return size, arity, uniq, index, num_free, module, ints_start, ints_end, creator, p


def _make_fun(data: bytes, pos: int, end: int, head: _FunHead, free: list[Any], ctx: _Ctx) -> Fun:
    size, arity, uniq, index, num_free, module, ints_start, ints_end, creator, _ = head
    if end - pos - 1 != size:
        raise DecodeError(f"NEW_FUN_EXT size field {size} but its fields took {end - pos - 1}", pos)
    if ctx.atom_cache is None:
        raw = data[pos:end]
    else:
        # the raw bytes may hold ATOM_CACHE_REFs that mean nothing outside this
        # message: rebuild the fun from its decoded fields instead
        from .etf_encode import encode_body

        parts = [
            struct.pack(">B16sII", arity, uniq, index, num_free),
            encode_body(module),
            data[ints_start:ints_end],
            encode_body(creator),
        ]
        parts.extend(encode_body(v) for v in free)
        body = b"".join(parts)
        raw = struct.pack(">BI", 112, len(body) + 4) + body
    return Fun(raw, module, arity, index, uniq, tuple(free))


def _d_new_fun(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    head = _fun_header(data, pos, ctx)
    if depth >= ctx.limit and head[4]:
        return _dec_iter(data, pos, depth, ctx)
    p = head[9]
    free = []
    for _ in range(head[4]):
        v, p = _core._dec(data, p, depth + 1, ctx)
        free.append(v)
    return _make_fun(data, pos, p, head, free, ctx), p


def _d_atom_cache_ref(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _core._cached_atom(ctx, data[pos + 1], pos), pos + 2


def _d_local(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    raise DecodeError(
        "LOCAL_EXT (121) is node-local: it can only be decoded by the node that made it", pos
    )


def _d_fun_ext(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    raise DecodeError("FUN_EXT (117) is obsolete and not decoded since OTP 23", pos)


def _d_compressed(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    raise DecodeError("COMPRESSED (80) is only allowed right after the version byte", pos)


def _d_unknown(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    raise DecodeError(f"unknown or internal tag {data[pos]}", pos)


# --------------------------------------------------------------------------- deep terms, compressed


def _dec_iter(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    """Decode the term at ``pos`` with an explicit stack (for deeply nested terms).

    ``depth`` is the nesting depth of ``pos`` in the whole term.
    """
    # a frame: [kind, expected item count, items, start offset, fun header]
    # kinds: 0 tuple, 1 list (items end with the tail), 2 map (k, v, k, v ...), 3 fun
    stack: list[list[Any]] = []
    max_depth = ctx.max_depth
    value: Any
    while True:
        start = pos
        tag = data[pos]
        frame: list[Any] | None = None
        if tag == 104 or tag == 105:
            if tag == 104:
                n = data[pos + 1]
                pos += 2
            else:
                n = _u32(data, pos + 1)[0]
                _core._check_len(data, pos + 5, n, "LARGE_TUPLE_EXT", pos)
                pos += 5
            if n:
                frame = [0, n, [], start, None]
            else:
                value = ()
        elif tag == 108:
            n = _u32(data, pos + 1)[0]
            _core._check_len(data, pos + 5, n, "LIST_EXT", pos)
            pos += 5
            frame = [1, n + 1, [], start, None]
        elif tag == 116:
            n = _u32(data, pos + 1)[0]
            _core._check_len(data, pos + 5, 2 * n, "MAP_EXT", pos)
            pos += 5
            if n:
                frame = [2, 2 * n, [], start, None]
            else:
                value = {}
        elif tag == 112:
            head = _fun_header(data, pos, ctx)
            pos = head[9]
            if head[4]:
                frame = [3, head[4], [], start, head]
            else:
                value = _make_fun(data, start, pos, head, [], ctx)
        else:
            value, pos = _core._dec(data, pos, 0, ctx)
        if frame is not None:
            if depth + len(stack) >= max_depth:
                raise DecodeError(f"term nested deeper than {max_depth}", start)
            stack.append(frame)
            continue
        while stack:
            frame = stack[-1]
            fitems = frame[2]
            fitems.append(value)
            if len(fitems) < frame[1]:
                break
            stack.pop()
            kind = frame[0]
            if kind == 0:
                value = tuple(fitems)
            elif kind == 1:
                value = _core._finish_list(fitems)
            elif kind == 2:
                value = _core._finish_map(fitems[0::2], fitems[1::2], frame[3])
                if ctx.structs is not None and type(value) is dict and STRUCT_KEY in value:
                    value = ctx.structs(value, frame[3])
            else:
                value = _make_fun(data, frame[3], pos, frame[4], fitems, ctx)
        else:
            return value, pos


def _inflate(data: bytes, pos: int, ctx: _Ctx) -> tuple[bytes, int]:
    """Inflate the COMPRESSED term whose tag (80) is at ``pos``; return (inner, end offset)."""
    size = _u32(data, pos + 1)[0]
    if size == 0:
        raise DecodeError("COMPRESSED term declares size 0", pos)
    if size > ctx.max_size:
        raise DecodeError(
            f"COMPRESSED term declares {size} bytes (limit {ctx.max_size})", pos
        )
    z = zlib.decompressobj()
    try:
        out = z.decompress(memoryview(data)[pos + 5 :], size)
        if not z.eof:
            extra = z.decompress(z.unconsumed_tail, 1)
            if extra:
                raise DecodeError(f"COMPRESSED term inflates to more than {size} bytes", pos)
    except zlib.error as e:
        raise DecodeError(f"COMPRESSED term has bad zlib data ({e})", pos) from None
    if not z.eof:
        raise DecodeError("COMPRESSED term's zlib stream is truncated", len(data))
    if len(out) != size:
        raise DecodeError(f"COMPRESSED term inflates to {len(out)} bytes, not {size}", pos)
    return out, len(data) - len(z.unused_data)


_Decoder = Callable[[bytes, int, int, "_Ctx"], tuple[Any, int]]
RARE: list[_Decoder] = [_d_unknown] * 256
for _tag, _fn in {
    99: _d_float_ext,
    100: _d_atom,
    115: _d_atom,
    118: _d_atom,
    119: _d_atom,
    105: _d_large_tuple,
    77: _d_bit_binary,
    110: _d_small_big,
    111: _d_large_big,
    88: _core._d_new_pid,
    103: _d_pid,
    89: _d_new_port,
    120: _d_v4_port,
    102: _d_port,
    101: _d_reference,
    114: _core._d_new_reference,
    90: _core._d_new_reference,
    113: _d_export,
    112: _d_new_fun,
    82: _d_atom_cache_ref,
    121: _d_local,
    117: _d_fun_ext,
    80: _d_compressed,
}.items():
    RARE[_tag] = _fn
