"""External Term Format decoder: ``binary_to_term/1`` in pure Python.

>>> from dist_proto.etf_decode import decode
>>> decode(bytes([131, 104, 2, 119, 2, 111, 107, 97, 42]))
(Atom('ok'), 42)

Theory of operation (see protocol/DISTRIBUTION.md §6 and §9):

- ``_dec`` is a recursive decoder that handles the common tags inline, in
  order of frequency, with fast paths for atoms and small integers inside
  containers; rare tags go through ``_RARE``, a table indexed by tag.
- When the recursion gets deeper than ``_RECURSE_LIMIT`` it hands the
  sub-term to ``_dec_iter``, which keeps its own stack, so a term nested
  100 000 deep (BEAM builds those) never raises ``RecursionError``.
- Fixed-size reads are not bounds-checked one by one: reading past the end
  raises ``IndexError``/``struct.error``, which :func:`decode_from` turns into
  a :class:`DecodeError` at the end offset (the only place such a read can
  fail). Every length field is checked against the bytes remaining before
  anything is allocated, and a lying ``COMPRESSED`` size is caught while
  inflating.
- Atoms are cached per encoded bytes in a bounded dict; ``true``/``false``
  become ``bool`` and ``undefined`` becomes ``None``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from .errors import DecodeError
from .terms import (
    _ATOM_SALT,
    Atom,
    BitString,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    Term,
    TermMap,
    _set_atom_ext,
    _set_atom_hash,
    _set_atom_name,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_UNCOMPRESSED_SIZE",
    "decode",
    "decode_from",
]

#: Default cap on nesting depth (BEAM builds terms nested 100 000 deep and more).
DEFAULT_MAX_DEPTH = 1_000_000
#: Default cap on the declared size of a ``COMPRESSED`` term (64 MiB).
DEFAULT_MAX_UNCOMPRESSED_SIZE = 64 * 1024 * 1024

VERSION = 131
_RECURSE_LIMIT = 120  # deeper than this, continue with the explicit-stack decoder
_ATOM_CACHE_MAX = 10_000

_u16 = struct.Struct(">H").unpack_from
_u32 = struct.Struct(">I").unpack_from
_i32 = struct.Struct(">i").unpack_from
_u64 = struct.Struct(">Q").unpack_from
_f64 = struct.Struct(">d").unpack_from
_u32u32u32 = struct.Struct(">III").unpack_from
_u32u8 = struct.Struct(">IB").unpack_from
_u32u32u8 = struct.Struct(">IIB").unpack_from
_u32x2 = struct.Struct(">II").unpack_from
_u64u32 = struct.Struct(">QI").unpack_from
_fun_head = struct.Struct(">IB16sII").unpack_from  # size, arity, uniq, index, num_free

_SPECIAL: dict[str, Any] = {"true": True, "false": False, "undefined": None}
_NOT_SPECIAL = object()
_new_object = object.__new__


class _Ctx:
    """Per-call settings: the atom cache of a distribution header and the limits."""

    __slots__ = ("atom_cache", "max_depth", "max_size", "limit")

    def __init__(self, atom_cache: Sequence[Atom] | None, max_depth: int, max_size: int) -> None:
        self.atom_cache = atom_cache
        self.max_depth = max_depth
        self.max_size = max_size
        self.limit = min(_RECURSE_LIMIT, max_depth)


# --------------------------------------------------------------------------- atoms

_utf8_atoms: dict[bytes, Any] = {}
_latin1_atoms: dict[bytes, Any] = {}


def _make_atom(name: str) -> Any:
    """The decoded value of an atom named ``name`` (``bool``/``None`` for the special three)."""
    special = _SPECIAL.get(name, _NOT_SPECIAL)
    if special is not _NOT_SPECIAL:
        return special
    atom = _new_object(Atom)
    _set_atom_name(atom, name)
    _set_atom_hash(atom, hash(name) ^ _ATOM_SALT)
    raw = name.encode("utf-8")
    n = len(raw)
    _set_atom_ext(atom, (bytes((119, n)) if n < 256 else bytes((118, n >> 8, n & 255))) + raw)
    return atom


def _utf8_atom(data: bytes, start: int, n: int, tag_pos: int) -> Any:
    """Decode (and cache) the UTF-8 atom text ``data[start:start+n]``."""
    raw = data[start : start + n]
    if len(raw) != n:
        raise DecodeError(f"atom text of {n} bytes runs past the end", tag_pos)
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("atom text is not valid UTF-8", tag_pos) from None
    if len(name) > 255:
        raise DecodeError(f"atom of {len(name)} characters (limit 255)", tag_pos)
    value = _make_atom(name)
    if len(_utf8_atoms) >= _ATOM_CACHE_MAX:
        _utf8_atoms.clear()
    _utf8_atoms[raw] = value
    return value


def _latin1_atom(data: bytes, start: int, n: int, tag_pos: int) -> Any:
    raw = data[start : start + n]
    if len(raw) != n:
        raise DecodeError(f"atom text of {n} bytes runs past the end", tag_pos)
    if n > 255:
        raise DecodeError(f"atom of {n} characters (limit 255)", tag_pos)
    value = _make_atom(raw.decode("latin-1"))
    if len(_latin1_atoms) >= _ATOM_CACHE_MAX:
        _latin1_atoms.clear()
    _latin1_atoms[raw] = value
    return value


def _cached_atom(ctx: _Ctx, index: int, pos: int) -> Any:
    cache = ctx.atom_cache
    if cache is None:
        raise DecodeError("ATOM_CACHE_REF outside a distribution header", pos)
    if index >= len(cache):
        raise DecodeError(f"ATOM_CACHE_REF {index} but the header has {len(cache)} refs", pos)
    atom = cache[index]
    if type(atom) is not Atom:
        raise DecodeError(f"atom cache entry {index} is not an Atom", pos)
    special = _SPECIAL.get(atom.name, _NOT_SPECIAL)
    return atom if special is _NOT_SPECIAL else special


def _any_atom(data: bytes, pos: int, ctx: _Ctx) -> tuple[Any, int]:
    """Decode an atom of any atom tag at ``pos``; anything else is an error."""
    tag = data[pos]
    if tag == 119 or tag == 115:
        n = data[pos + 1]
        start = pos + 2
    elif tag == 118 or tag == 100:
        n = _u16(data, pos + 1)[0]
        start = pos + 3
    elif tag == 82:
        return _cached_atom(ctx, data[pos + 1], pos), pos + 2
    else:
        raise DecodeError(f"expected an atom, found tag {tag}", pos)
    if tag >= 118:
        value = _utf8_atoms.get(data[start : start + n], _NOT_SPECIAL)
        if value is _NOT_SPECIAL:
            value = _utf8_atom(data, start, n, pos)
    else:
        value = _latin1_atoms.get(data[start : start + n], _NOT_SPECIAL)
        if value is _NOT_SPECIAL:
            value = _latin1_atom(data, start, n, pos)
    return value, start + n


def _node_atom(data: bytes, pos: int, ctx: _Ctx) -> tuple[Atom, int]:
    """An atom that must stay an :class:`Atom` (a node name, a module)."""
    value, pos2 = _any_atom(data, pos, ctx)
    if type(value) is not Atom:
        value = Atom("undefined" if value is None else "true" if value else "false")
    return value, pos2


# --------------------------------------------------------------------------- rare tags


def _check_len(data: bytes, start: int, n: int, what: str, pos: int) -> None:
    if n > len(data) - start:
        raise DecodeError(f"{what} claims {n} bytes, only {max(len(data) - start, 0)} left", pos)


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
    return _any_atom(data, pos, ctx)


def _d_large_tuple(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _u32(data, pos + 1)[0]
    _check_len(data, pos + 5, n, "LARGE_TUPLE_EXT", pos)
    if depth >= ctx.limit:
        return _dec_iter(data, pos, depth, ctx)
    p = pos + 5
    items: list[Any] = []
    append = items.append
    for _ in range(n):
        v, p = _dec(data, p, depth + 1, ctx)
        append(v)
    return tuple(items), p


def _d_bit_binary(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n, bits = _u32u8(data, pos + 1)
    _check_len(data, pos + 6, n, "BIT_BINARY_EXT", pos)
    if not 1 <= bits <= 8:
        raise DecodeError(f"BIT_BINARY_EXT with {bits} bits in its last byte (must be 1..8)", pos)
    if n == 0:
        raise DecodeError("BIT_BINARY_EXT with no bytes", pos)
    if bits == 8:  # every bit of the last byte used: a plain binary
        return data[pos + 6 : pos + 6 + n], pos + 6 + n
    return BitString(data[pos + 6 : pos + 6 + n], bits), pos + 6 + n


def _big(data: bytes, pos: int, start: int, n: int) -> tuple[int, int]:
    _check_len(data, start + 1, n, "bignum", pos)
    sign = data[start]
    if sign > 1:
        raise DecodeError(f"bignum sign byte {sign} (must be 0 or 1)", pos)
    value = int.from_bytes(data[start + 1 : start + 1 + n], "little")
    return (-value if sign else value), start + 1 + n


def _d_small_big(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _big(data, pos, pos + 2, data[pos + 1])


def _d_large_big(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _big(data, pos, pos + 5, _u32(data, pos + 1)[0])


_pids: dict[bytes, Pid] = {}


def _d_new_pid(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    if data[pos + 1] == 119:  # cache pids by their bytes: senders repeat
        end = pos + 15 + data[pos + 2]
        raw = data[pos:end]
        pid = _pids.get(raw)
        if pid is not None:
            return pid, end
    node, p = _node_atom(data, pos + 1, ctx)
    i, s, c = _u32u32u32(data, p)
    pid = Pid(node, i, s, c)
    if data[pos + 1] == 119:
        if len(_pids) >= _ATOM_CACHE_MAX:
            _pids.clear()
        _pids[data[pos : p + 12]] = pid
    return pid, p + 12


def _d_pid(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _node_atom(data, pos + 1, ctx)
    i, s, c = _u32u32u8(data, p)
    return Pid(node, i, s, c), p + 9


def _d_new_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _node_atom(data, pos + 1, ctx)
    i, c = _u32x2(data, p)
    return Port(node, i, c), p + 8


def _d_v4_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _node_atom(data, pos + 1, ctx)
    i, c = _u64u32(data, p)
    return Port(node, i, c), p + 12


def _d_port(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _node_atom(data, pos + 1, ctx)
    i, c = _u32u8(data, p)
    return Port(node, i, c), p + 5


def _d_reference(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node, p = _node_atom(data, pos + 1, ctx)
    i, c = _u32u8(data, p)
    return Reference(node, c, (i,)), p + 5


def _d_new_reference(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    tag = data[pos]
    n = _u16(data, pos + 1)[0]
    if not 1 <= n <= 5:
        raise DecodeError(f"reference with {n} ID words (must be 1..5)", pos)
    node, p = _node_atom(data, pos + 3, ctx)
    if tag == 90:
        creation = _u32(data, p)[0]
        p += 4
    else:
        creation = data[p]
        p += 1
    ids = _ids[n](data, p)
    ref = _new_object(Reference)
    _set_ref_node(ref, node)
    _set_ref_creation(ref, creation)
    _set_ref_ids(ref, ids)
    return ref, p + 4 * n


_ids = [struct.Struct(f">{n}I").unpack_from for n in range(6)]
_set_ref_node = Reference.__dict__["node"].__set__
_set_ref_creation = Reference.__dict__["creation"].__set__
_set_ref_ids = Reference.__dict__["ids"].__set__


def _d_export(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    module, p = _node_atom(data, pos + 1, ctx)
    function, p = _node_atom(data, p, ctx)
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
    _check_len(data, pos + 1, size, "NEW_FUN_EXT", pos)
    if num_free > size:
        raise DecodeError(f"NEW_FUN_EXT claims {num_free} free variables in {size} bytes", pos)
    module, p = _node_atom(data, pos + 30, ctx)
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
        creator, p = _d_new_pid(data, p, 0, ctx)
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
        v, p = _dec(data, p, depth + 1, ctx)
        free.append(v)
    return _make_fun(data, pos, p, head, free, ctx), p


def _d_atom_cache_ref(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    return _cached_atom(ctx, data[pos + 1], pos), pos + 2


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


_Decoder = Callable[[bytes, int, int, _Ctx], tuple[Any, int]]
_RARE: list[_Decoder] = [_d_unknown] * 256
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
    88: _d_new_pid,
    103: _d_pid,
    89: _d_new_port,
    120: _d_v4_port,
    102: _d_port,
    101: _d_reference,
    114: _d_new_reference,
    90: _d_new_reference,
    113: _d_export,
    112: _d_new_fun,
    82: _d_atom_cache_ref,
    121: _d_local,
    117: _d_fun_ext,
    80: _d_compressed,
}.items():
    _RARE[_tag] = _fn


# --------------------------------------------------------------------------- containers


def _finish_list(items: list[Any]) -> Any:
    """``items`` holds the elements then the tail; build a list or an ImproperList."""
    tail = items.pop()
    tt = type(tail)
    if tt is list:
        if tail:
            items.extend(tail)
        return items
    if not items:
        return tail  # LIST_EXT of length 0: the value is its tail
    if tt is ImproperList:
        items.extend(tail.items)
        return ImproperList(items, tail.tail)
    return ImproperList(items, tail)


def _finish_map(keys: Sequence[Any], values: Sequence[Any], pos: int) -> Any:
    """A dict, or a TermMap when Python would merge keys or cannot hash one."""
    n = len(keys)
    try:
        d = dict(zip(keys, values, strict=True))
        if len(d) == n:
            return d
    except TypeError:
        pass
    m = TermMap(zip(keys, values, strict=True))
    if len(m) != n:
        raise DecodeError("map has duplicate keys", pos)
    return m


def _dec_map(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    n = _u32(data, pos + 1)[0]
    _check_len(data, pos + 5, 2 * n, "MAP_EXT", pos)
    if depth >= ctx.limit and n:
        return _dec_iter(data, pos, depth, ctx)
    p = pos + 5
    d: dict[Any, Any] = {}
    depth += 1
    try:
        for _ in range(n):
            tag = data[p]
            if tag == 119:
                m = data[p + 1]
                q = p + 2 + m
                k = _utf8_atoms.get(data[p + 2 : q], _NOT_SPECIAL)
                if k is _NOT_SPECIAL:
                    k = _utf8_atom(data, p + 2, m, p)
                p = q
            elif tag == 109:
                m = _u32(data, p + 1)[0]
                q = p + 5 + m
                if q > len(data):
                    _check_len(data, p + 5, m, "BINARY_EXT", p)
                k = data[p + 5 : q]
                p = q
            else:
                k, p = _dec(data, p, depth, ctx)
            tag = data[p]
            if tag == 97:
                v = data[p + 1]
                p += 2
            elif tag == 119:
                m = data[p + 1]
                q = p + 2 + m
                v = _utf8_atoms.get(data[p + 2 : q], _NOT_SPECIAL)
                if v is _NOT_SPECIAL:
                    v = _utf8_atom(data, p + 2, m, p)
                p = q
            else:
                v, p = _dec(data, p, depth, ctx)
            d[k] = v
        if len(d) == n:
            return d, p
    except TypeError:
        pass
    # Python merged two keys or could not hash one: decode again, keeping pairs
    keys: list[Any] = []
    values: list[Any] = []
    p = pos + 5
    for _ in range(n):
        k, p = _dec(data, p, depth, ctx)
        v, p = _dec(data, p, depth, ctx)
        keys.append(k)
        values.append(v)
    return _finish_map(keys, values, pos), p


def _run_length(data: bytes, p: int, k: int, stride: int, tag: bytes) -> int:
    """How many of the next ``k`` elements (``stride`` bytes each) start with ``tag``.

    Looks at geometrically growing windows so short runs cost little.
    """
    run = 0
    chunk = 16
    while run < k:
        m = min(chunk, k - run)
        q = p + stride * run
        tags = data[q : q + stride * m : stride]
        same = len(tags) - len(tags.lstrip(tag))
        run += same
        if same < m:
            break
        chunk *= 4
    return run


def _small_run(data: bytes, p: int, k: int, items: list[Any]) -> tuple[int, int]:
    """Decode a run of up to ``k`` SMALL_INTEGER_EXTs at ``p`` in C-speed slices."""
    run = _run_length(data, p, k, 2, b"a")
    end = p + 2 * run
    if end > len(data):
        raise IndexError
    items.extend(data[p + 1 : end : 2])
    return run, end


def _i32_run(data: bytes, p: int, k: int, items: list[Any]) -> tuple[int, int]:
    """Decode a run of up to ``k`` INTEGER_EXTs at ``p``: gather the 4 byte planes."""
    run = _run_length(data, p, k, 5, b"b")
    end = p + 5 * run
    if end > len(data):
        raise IndexError
    buf = bytearray(4 * run)
    buf[0::4] = data[p + 1 : end : 5]
    buf[1::4] = data[p + 2 : end : 5]
    buf[2::4] = data[p + 3 : end : 5]
    buf[3::4] = data[p + 4 : end : 5]
    items.extend(struct.unpack(f">{run}i", buf))
    return run, end


def _dec(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    """Decode the term at ``pos``; return it and the offset after it."""
    tag = data[pos]
    if tag == 119:  # SMALL_ATOM_UTF8_EXT
        n = data[pos + 1]
        end = pos + 2 + n
        v = _utf8_atoms.get(data[pos + 2 : end], _NOT_SPECIAL)
        if v is _NOT_SPECIAL:
            v = _utf8_atom(data, pos + 2, n, pos)
        return v, end
    if tag == 97:  # SMALL_INTEGER_EXT
        return data[pos + 1], pos + 2
    if tag == 104:  # SMALL_TUPLE_EXT
        n = data[pos + 1]
        if n == 0:
            return (), pos + 2
        if depth >= ctx.limit:
            return _dec_iter(data, pos, depth, ctx)
        p = pos + 2
        depth += 1
        items: list[Any] = []
        append = items.append
        for _ in range(n):
            tag = data[p]
            if tag == 119:
                m = data[p + 1]
                q = p + 2 + m
                v = _utf8_atoms.get(data[p + 2 : q], _NOT_SPECIAL)
                if v is _NOT_SPECIAL:
                    v = _utf8_atom(data, p + 2, m, p)
                p = q
            elif tag == 97:
                v = data[p + 1]
                p += 2
            else:
                v, p = _dec(data, p, depth, ctx)
            append(v)
        return tuple(items), p
    if tag == 109:  # BINARY_EXT
        n = _u32(data, pos + 1)[0]
        end = pos + 5 + n
        if end > len(data):
            _check_len(data, pos + 5, n, "BINARY_EXT", pos)
        return data[pos + 5 : end], end
    if tag == 106:  # NIL_EXT
        return [], pos + 1
    if tag == 108:  # LIST_EXT
        n = _u32(data, pos + 1)[0]
        _check_len(data, pos + 5, n, "LIST_EXT", pos)
        if depth >= ctx.limit:
            return _dec_iter(data, pos, depth, ctx)
        p = pos + 5
        depth += 1
        items = []
        append = items.append
        i = 0
        while i < n:
            i += 1
            tag = data[p]
            if tag == 97:
                if n - i >= 16 and data[p + 2] == 97 and data[p + 4] == 97 and data[p + 6] == 97:
                    k, p = _small_run(data, p, n - i + 1, items)
                    i += k - 1
                    continue
                append(data[p + 1])
                p += 2
            elif tag == 98:
                if n - i >= 16 and data[p + 5] == 98 and data[p + 10] == 98 and data[p + 15] == 98:
                    k, p = _i32_run(data, p, n - i + 1, items)
                    i += k - 1
                    continue
                append(_i32(data, p + 1)[0])
                p += 5
            elif tag == 119:
                m = data[p + 1]
                q = p + 2 + m
                v = _utf8_atoms.get(data[p + 2 : q], _NOT_SPECIAL)
                if v is _NOT_SPECIAL:
                    v = _utf8_atom(data, p + 2, m, p)
                append(v)
                p = q
            else:
                v, p = _dec(data, p, depth, ctx)
                append(v)
        if data[p] == 106:
            return items, p + 1
        tail, p = _dec(data, p, depth, ctx)
        items.append(tail)
        return _finish_list(items), p
    if tag == 116:  # MAP_EXT
        return _dec_map(data, pos, depth, ctx)
    if tag == 98:  # INTEGER_EXT
        return _i32(data, pos + 1)[0], pos + 5
    if tag == 107:  # STRING_EXT
        n = _u16(data, pos + 1)[0]
        end = pos + 3 + n
        if end > len(data):
            _check_len(data, pos + 3, n, "STRING_EXT", pos)
        return list(data[pos + 3 : end]), end
    if tag == 88:
        return _d_new_pid(data, pos, depth, ctx)
    if tag == 90:
        return _d_new_reference(data, pos, depth, ctx)
    if tag == 70:  # NEW_FLOAT_EXT
        v = _f64(data, pos + 1)[0]
        if v - v != 0.0:
            raise DecodeError("NEW_FLOAT_EXT is not a finite float", pos)
        return v, pos + 9
    return _RARE[tag](data, pos, depth, ctx)


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
                _check_len(data, pos + 5, n, "LARGE_TUPLE_EXT", pos)
                pos += 5
            if n:
                frame = [0, n, [], start, None]
            else:
                value = ()
        elif tag == 108:
            n = _u32(data, pos + 1)[0]
            _check_len(data, pos + 5, n, "LIST_EXT", pos)
            pos += 5
            frame = [1, n + 1, [], start, None]
        elif tag == 116:
            n = _u32(data, pos + 1)[0]
            _check_len(data, pos + 5, 2 * n, "MAP_EXT", pos)
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
            value, pos = _dec(data, pos, 0, ctx)
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
                value = _finish_list(fitems)
            elif kind == 2:
                value = _finish_map(fitems[0::2], fitems[1::2], frame[3])
            else:
                value = _make_fun(data, frame[3], pos, frame[4], fitems, ctx)
        else:
            return value, pos


# --------------------------------------------------------------------------- entry points


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


def decode_from(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    versioned: bool = True,
    atom_cache: Sequence[Atom] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_uncompressed_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE,
) -> tuple[Term, int]:
    """Decode one external term starting at ``offset``; return ``(term, end_offset)``.

    Like ``binary_to_term/1`` on a prefix. With ``versioned`` the term starts with
    the version byte 131 (and may then be ``COMPRESSED``); without it the tag comes
    first, as inside a distribution header. ``atom_cache`` resolves
    ``ATOM_CACHE_REF`` (index ``i`` is ``atom_cache[i]``).

    >>> decode_from(b"xx\\x83a\\x07yy", 2)
    (7, 5)
    """
    if type(data) is bytes:
        buf = data
        base = 0
    elif isinstance(data, (bytearray, memoryview)):
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        buf = bytes(view[offset:])
        base = offset
    else:
        raise TypeError(f"decode needs bytes, bytearray or memoryview, not {type(data).__name__}")
    if offset < 0 or offset > len(buf) + base:
        raise ValueError(f"offset {offset} is outside the data ({len(buf) + base} bytes)")
    pos = offset - base
    ctx = _Ctx(atom_cache, max_depth, max_uncompressed_size)
    where = "data"
    try:
        if versioned:
            if pos >= len(buf):
                raise DecodeError("no data (expected the version byte 131)", offset)
            if buf[pos] != VERSION:
                raise DecodeError(f"expected the version byte 131, found {buf[pos]}", offset)
            pos += 1
            if pos < len(buf) and buf[pos] == 80:
                inner, end = _inflate(buf, pos, ctx)
                where = "compressed data"
                try:
                    term, inner_end = _dec(inner, 0, 0, ctx)
                except DecodeError as e:
                    raise DecodeError(
                        f"in compressed data at inflated offset {e.offset}: {e.reason}", pos
                    ) from None
                if inner_end != len(inner):
                    raise DecodeError(
                        f"compressed term has {len(inner) - inner_end} bytes after it", pos
                    )
                return term, end + base
        if pos >= len(buf):
            raise DecodeError("no data (expected a term)", pos + base)
        term, end = _dec(buf, pos, 0, ctx)
        if end > len(buf):
            raise IndexError
    except (IndexError, struct.error):
        raise DecodeError(f"unexpected end of {where}", len(buf) + base) from None
    except RecursionError:
        raise DecodeError("term nested too deeply for this Python stack", offset) from None
    except DecodeError as e:
        if base and e.offset is not None:
            raise DecodeError(e.reason, e.offset + base) from None
        raise
    return term, end + base


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_uncompressed_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE,
) -> Term:
    """Decode a whole external term (``binary_to_term/1``).

    ``data`` starts with the version byte 131 (then possibly ``COMPRESSED``);
    bytes after the term are an error.

    >>> decode(b"\\x83h\\x02w\\x02oka\\x01")
    (Atom('ok'), 1)
    """
    if (
        type(data) is bytes
        and max_depth == DEFAULT_MAX_DEPTH
        and len(data) > 1
        and data[0] == VERSION
        and data[1] != 80
    ):
        # the common case, without decode_from's set-up
        try:
            term, end = _dec(data, 1, 0, _DEFAULT_CTX)
        except (IndexError, struct.error):
            raise DecodeError("unexpected end of data", len(data)) from None
        except RecursionError:
            raise DecodeError("term nested too deeply for this Python stack", 0) from None
    else:
        term, end = decode_from(
            data, 0, max_depth=max_depth, max_uncompressed_size=max_uncompressed_size
        )
    n = len(data) if not isinstance(data, memoryview) else data.nbytes
    if end != n:
        if end > n:
            raise DecodeError("unexpected end of data", n)
        raise DecodeError(f"{n - end} bytes after the term", end)
    return term


_DEFAULT_CTX = _Ctx(None, DEFAULT_MAX_DEPTH, DEFAULT_MAX_UNCOMPRESSED_SIZE)
