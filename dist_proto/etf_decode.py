"""External Term Format decoder: ``binary_to_term/1`` in pure Python.

>>> from dist_proto.etf_decode import decode
>>> decode(bytes([131, 104, 2, 119, 2, 111, 107, 97, 42]))
(Atom('ok'), 42)

Theory of operation (see docs/protocol.md §6 and §9):

- ``_dec`` is a recursive decoder that handles the common tags inline, in
  order of frequency, with fast paths for atoms and small integers inside
  containers; rare tags go through ``_RARE``, a table indexed by tag that
  lives in :mod:`dist_proto.etf_decode_rare`.
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
  become ``bool`` and ``undefined`` becomes ``None``. Pids are cached per encoded
  bytes too (senders repeat), and built without ``__init__``.
- Distribution messages (:mod:`dist_proto.framing`) decode through
  :func:`dist_context` / :func:`decode_dist`: one context per distribution header,
  whose ``ATOM_CACHE_REF`` values are resolved once, not once per reference.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Callable, Sequence
from typing import Any

from .errors import DecodeError
from .mapping import STRUCT_KEY as _STRUCT_KEY
from .mapping import Mapping
from .terms import (
    _ATOM_SALT,
    Atom,
    Charlist,
    ImproperList,
    Pid,
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
    "decode_dist",
    "decode_from",
    "dist_context",
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

_SPECIAL: dict[str, Any] = {"true": True, "false": False, "undefined": None}
_NOT_SPECIAL = object()
_new_object = object.__new__


class _Ctx:
    """Per-call settings: the atom cache of a distribution header and the limits.

    ``resolved[i]`` is the decoded value of ``ATOM_CACHE_REF i`` (``bool``/``None``
    for the special atoms), or ``_BAD_REF`` when the slot is not an :class:`Atom`;
    references past its end go through :func:`_cached_atom` for the error.
    """

    __slots__ = (
        "atom_cache", "binary", "charlists", "limit", "max_depth", "max_size", "resolved",
        "strings", "structs", "view",
    )

    def __init__(
        self,
        atom_cache: Sequence[Atom] | None,
        max_depth: int,
        max_size: int,
        mapping: Mapping | None = None,
    ) -> None:
        self.atom_cache = atom_cache
        self.max_depth = max_depth
        self.max_size = max_size
        self.limit = min(_RECURSE_LIMIT, max_depth)
        self.resolved: list[Any] = []
        self.view: memoryview | None = None  # set for zero-copy binaries
        # binary(data, start, end): how a binary decodes when not as bytes (zero copy,
        # strings); None on the default path. See set_view.
        self.binary: Callable[[bytes, int, int], Any] | None = None
        self.strings = mapping is not None and mapping.strings
        self.charlists = mapping is not None and mapping.charlists
        #: structs(map, offset) for maps with a __struct__ key; None without structs
        self.structs = None if mapping is None else mapping.struct_hook
        if self.strings:
            self.binary = self._binary
        if atom_cache is not None:
            # a reference is one byte: no more than 256 entries can be named
            for atom in atom_cache[:256]:
                if type(atom) is Atom:
                    self.resolved.append(_SPECIAL.get(atom.name, atom))
                else:
                    self.resolved.append(_BAD_REF)


    def set_view(self, view: memoryview | None) -> None:
        """Decode binaries as read-only views of ``view`` (zero copy)."""
        self.view = view
        if view is not None:
            self.binary = self._binary

    def _binary(self, data: bytes, start: int, end: int) -> Any:
        if self.strings:
            raw = data[start:end]
            try:
                if end - start > _UTF8_PRECHECK:
                    # most binaries that are not text show it at once: fail on a short
                    # prefix, not after the error has copied the whole binary
                    _utf8_prefix(raw[:_UTF8_PRECHECK], "strict", False)
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                if self.view is None:
                    return raw
        if self.view is not None:
            return self.view[start:end]
        return data[start:end]


_BAD_REF = object()
_UTF8_PRECHECK = 256
_utf8_prefix = codecs.utf_8_decode  # (data, errors, final): final=False allows a cut character


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


def _ctx_atom(ctx: _Ctx, index: int, pos: int) -> Any:
    """The value of ``ATOM_CACHE_REF index`` (resolved once per context)."""
    resolved = ctx.resolved
    if index < len(resolved):
        v = resolved[index]
        if v is not _BAD_REF:
            return v
    return _cached_atom(ctx, index, pos)


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
        return _ctx_atom(ctx, data[pos + 1], pos), pos + 2
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


# --------------------------------------------------------------------------- pids, refs

def _check_len(data: bytes, start: int, n: int, what: str, pos: int) -> None:
    if n > len(data) - start:
        raise DecodeError(f"{what} claims {n} bytes, only {max(len(data) - start, 0)} left", pos)


_pids: dict[bytes, Pid] = {}
_cached_node_pids: dict[tuple[Atom, bytes], Pid] = {}
_set_pid_node = Pid.__dict__["node"].__set__
_set_pid_id = Pid.__dict__["id"].__set__
_set_pid_serial = Pid.__dict__["serial"].__set__
_set_pid_creation = Pid.__dict__["creation"].__set__


def _new_pid(node: Atom, i: int, s: int, c: int) -> Pid:
    """``Pid(node, i, s, c)`` without ``__init__``'s ``object.__setattr__`` calls."""
    pid = _new_object(Pid)
    _set_pid_node(pid, node)
    _set_pid_id(pid, i)
    _set_pid_serial(pid, s)
    _set_pid_creation(pid, c)
    return pid


def _d_new_pid(data: bytes, pos: int, depth: int, ctx: _Ctx) -> tuple[Any, int]:
    node_tag = data[pos + 1]
    if node_tag == 119:  # cache pids by their bytes: senders repeat
        end = pos + 15 + data[pos + 2]
        raw = data[pos:end]
        pid = _pids.get(raw)
        if pid is not None:
            return pid, end
    elif node_tag == 82:  # node from the atom cache: cache by (node, id words)
        cache = ctx.atom_cache
        i = data[pos + 2]
        if cache is not None and i < len(cache):
            node = cache[i]
            if type(node) is Atom:
                key = (node, data[pos + 3 : pos + 15])
                pid = _cached_node_pids.get(key)
                if pid is None:
                    pid = _new_pid(node, *_u32u32u32(data, pos + 3))
                    if len(_cached_node_pids) >= _ATOM_CACHE_MAX:
                        _cached_node_pids.clear()
                    _cached_node_pids[key] = pid
                return pid, pos + 15
    node, p = _node_atom(data, pos + 1, ctx)
    i, s, c = _u32u32u32(data, p)
    pid = _new_pid(node, i, s, c)
    if node_tag == 119:
        if len(_pids) >= _ATOM_CACHE_MAX:
            _pids.clear()
        _pids[data[pos : p + 12]] = pid
    return pid, p + 12


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
    """MAP_EXT: keys and values are kept in decode order, so a map that Python would
    merge or cannot hash becomes a TermMap without decoding anything twice (decoding
    again would cost 2**depth for such maps nested in each other's keys)."""
    n = _u32(data, pos + 1)[0]
    _check_len(data, pos + 5, 2 * n, "MAP_EXT", pos)
    if depth >= ctx.limit and n:
        return _rare._dec_iter(data, pos, depth, ctx)
    p = pos + 5
    keys: list[Any] = []
    values: list[Any] = []
    add_key = keys.append
    add_value = values.append
    depth += 1
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
            k = data[p + 5 : q] if ctx.binary is None else ctx.binary(data, p + 5, q)
            p = q
        else:
            k, p = _dec(data, p, depth, ctx)
        add_key(k)
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
        add_value(v)
    m = _finish_map(keys, values, pos)
    if ctx.structs is not None and type(m) is dict and _STRUCT_KEY in m:
        m = ctx.structs(m, pos)
    return m, p


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
    if tag == 82:  # ATOM_CACHE_REF
        return _ctx_atom(ctx, data[pos + 1], pos), pos + 2
    if tag == 104:  # SMALL_TUPLE_EXT
        n = data[pos + 1]
        if n == 0:
            return (), pos + 2
        if depth >= ctx.limit:
            return _rare._dec_iter(data, pos, depth, ctx)
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
            elif tag == 82:
                v = _ctx_atom(ctx, data[p + 1], p)
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
        if ctx.binary is not None:
            return ctx.binary(data, pos + 5, end), end
        return data[pos + 5 : end], end
    if tag == 106:  # NIL_EXT
        return [], pos + 1
    if tag == 108:  # LIST_EXT
        n = _u32(data, pos + 1)[0]
        _check_len(data, pos + 5, n, "LIST_EXT", pos)
        if depth >= ctx.limit:
            return _rare._dec_iter(data, pos, depth, ctx)
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
        if ctx.charlists:
            return Charlist(data[pos + 3 : end].decode("latin-1")), end
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


# --------------------------------------------------------------------------- entry points


def decode_from(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    versioned: bool = True,
    atom_cache: Sequence[Atom] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_uncompressed_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE,
    zero_copy: bool = False,
    mapping: Mapping | None = None,
) -> tuple[Term, int]:
    """Decode one external term starting at ``offset``; return ``(term, end_offset)``.

    Like ``binary_to_term/1`` on a prefix. With ``versioned`` the term starts with
    the version byte 131 (and may then be ``COMPRESSED``); without it the tag comes
    first, as inside a distribution header. ``atom_cache`` resolves
    ``ATOM_CACHE_REF`` (index ``i`` is ``atom_cache[i]``). With ``zero_copy`` a
    binary decodes to a read-only ``memoryview`` of the input (of the inflated
    bytes for a ``COMPRESSED`` term; of a copy when ``data`` is not ``bytes``)
    instead of a ``bytes`` copy: the input stays alive as long as any view does.
    ``mapping`` (:class:`dist_proto.mapping.Mapping`) picks the codec options
    (strings, charlists, structs); None is the lossless default.

    >>> decode_from(b"xx\\x83a\\x07yy", 2)
    (7, 5)
    """
    buf, base, pos = input_buffer(data, offset)
    ctx = _Ctx(atom_cache, max_depth, max_uncompressed_size, _options(mapping))
    if zero_copy:
        ctx.set_view(memoryview(buf))
    where = "data"
    try:
        if versioned:
            if pos >= len(buf):
                raise DecodeError("no data (expected the version byte 131)", offset)
            if buf[pos] != VERSION:
                raise DecodeError(f"expected the version byte 131, found {buf[pos]}", offset)
            pos += 1
            if pos < len(buf) and buf[pos] == 80:
                inner, end = _rare._inflate(buf, pos, ctx)
                where = "compressed data"
                if zero_copy:
                    ctx.set_view(memoryview(inner))
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


def dist_context(atom_cache: Sequence[Atom] | None, mapping: Mapping | None = None) -> _Ctx:
    """A decoding context for :func:`decode_dist` with the default limits.

    Build one per distribution header (``atom_cache`` is its list of atoms) and
    reuse it for the terms of that message; ``mapping`` picks the codec options
    (:class:`dist_proto.mapping.Mapping`) of the terms decoded with it.
    """
    return _Ctx(atom_cache, DEFAULT_MAX_DEPTH, DEFAULT_MAX_UNCOMPRESSED_SIZE, _options(mapping))


def decode_dist(data: bytes, offset: int, ctx: _Ctx) -> tuple[Term, int]:
    """``decode_from(data, offset, versioned=False, atom_cache=...)`` for ``bytes``.

    The distribution fast path: ``ctx`` comes from :func:`dist_context`; the errors
    are :func:`decode_from`'s.
    """
    if offset < 0 or offset > len(data):
        raise ValueError(f"offset {offset} is outside the data ({len(data)} bytes)")
    if offset == len(data):
        raise DecodeError("no data (expected a term)", offset)
    try:
        term, end = _dec(data, offset, 0, ctx)
    except (IndexError, struct.error):
        raise DecodeError("unexpected end of data", len(data)) from None
    except RecursionError:
        raise DecodeError("term nested too deeply for this Python stack", offset) from None
    if end > len(data):
        raise DecodeError("unexpected end of data", len(data))
    return term, end


def decode(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_uncompressed_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE,
    zero_copy: bool = False,
    mapping: Mapping | None = None,
) -> Term:
    """Decode a whole external term (``binary_to_term/1``).

    ``data`` starts with the version byte 131 (then possibly ``COMPRESSED``);
    bytes after the term are an error. ``zero_copy`` and ``mapping`` are
    :func:`decode_from`'s.

    >>> decode(b"\\x83h\\x02w\\x02oka\\x01")
    (Atom('ok'), 1)
    """
    if (
        type(data) is bytes
        and max_depth == DEFAULT_MAX_DEPTH
        and not zero_copy
        and mapping is None
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
            data, 0, max_depth=max_depth, max_uncompressed_size=max_uncompressed_size,
            zero_copy=zero_copy, mapping=mapping,
        )
    n = len(data) if not isinstance(data, memoryview) else data.nbytes
    if end != n:
        if end > n:
            raise DecodeError("unexpected end of data", n)
        raise DecodeError(f"{n - end} bytes after the term", end)
    return term


_DEFAULT_CTX = _Ctx(None, DEFAULT_MAX_DEPTH, DEFAULT_MAX_UNCOMPRESSED_SIZE)


def _options(mapping: Mapping | None) -> Mapping | None:
    """``mapping`` checked; None for the default mapping (the faster path)."""
    if mapping is None:
        return None
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a dist_proto.mapping.Mapping, not {type(mapping).__name__}")
    return None if mapping.is_default else mapping


from . import etf_decode_rare as _rare  # noqa: E402  (it reaches this module at call time)

_RARE = _rare.RARE


def input_buffer(data: bytes | bytearray | memoryview, offset: int) -> tuple[bytes, int, int]:
    """The bytes a decode reads, the offset they start at in ``data``, and the position
    of ``offset`` in them: ``bytes`` as they are, any other buffer copied from ``offset``.
    Shared by both codecs, so they refuse the same inputs with the same errors."""
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
    return buf, base, offset - base
