"""External Term Format encoder: ``term_to_binary/1,2`` in pure Python.

>>> from dist_proto.etf_encode import encode
>>> from dist_proto.terms import Atom
>>> encode((Atom("ok"), 42))
b'\\x83h\\x02w\\x02oka*'

Theory of operation: ``_enc`` walks the term recursively, appending encoded
pieces to a list that is joined once at the end (a large binary is appended as
is, so it is copied only by that join). Types are tested with ``type(x) is T``
in order of frequency, with inline fast paths for atoms and small integers
inside containers; each :class:`Atom` caches its encoded bytes. Deeper than
``_RECURSE_LIMIT`` the sub-term is handed to ``_enc_iter``, which keeps an
explicit stack, so any depth encodes without ``RecursionError``.

Forms chosen are the ones BEAM's ``term_to_binary/1`` picks (OTP 26+ defaults):
UTF-8 atom tags, the smallest integer form, ``STRING_EXT`` for lists of bytes
up to 65535 long, ``NEW_PID_EXT``, ``NEWER_REFERENCE_EXT``, ``NEW_PORT_EXT``
(``V4_PORT_EXT`` for IDs of 2**32 and above).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from .terms import (
    Atom,
    BitString,
    Charlist,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    Term,
    TermMap,
    _set_atom_ext,
)

if TYPE_CHECKING:
    from .mapping import Mapping as TermMapping

__all__ = ["encode", "encode_body"]

#: The struct encoder of the encode in progress (``Mapping.struct_encoder``), for
#: the rare path that meets a value of no built-in Erlang form. Context-local, so
#: concurrent encodes on other threads or tasks do not see it.
_struct_encoder: ContextVar[Callable[[Any], Any] | None] = ContextVar(
    "beam_bridge_struct_encoder", default=None
)


@contextmanager
def _encoding_with(mapping: TermMapping | None) -> Iterator[None]:
    """Let the rare path encode ``mapping``'s registered dataclasses while inside."""
    hook = None if mapping is None else mapping.struct_encoder
    if hook is None:
        yield
        return
    token = _struct_encoder.set(hook)
    try:
        yield
    finally:
        _struct_encoder.reset(token)


def _as_struct(term: Any) -> dict[Any, Any] | None:
    """The struct map of a registered dataclass instance, or None."""
    hook = _struct_encoder.get()
    return None if hook is None else hook(term)

_RECURSE_LIMIT = 120

_SMALL_INT = [bytes((97, i)) for i in range(256)]
_TUPLE_HEAD = [bytes((104, i)) for i in range(256)]
_pack_tag_i32 = struct.Struct(">Bi").pack
_pack_tag_u32 = struct.Struct(">BI").pack
_pack_tag_u16 = struct.Struct(">BH").pack
_pack_tag_f64 = struct.Struct(">Bd").pack
_pack_u32x3 = struct.Struct(">III").pack
_pack_u32x2 = struct.Struct(">II").pack
_pack_u64u32 = struct.Struct(">QI").pack
_pack_bit_head = struct.Struct(">BIB").pack
_pack_ref_head = struct.Struct(">BH").pack

_TRUE = b"w\x04true"
_FALSE = b"w\x05false"
_UNDEFINED = b"w\x09undefined"
_NIL = b"j"


class _Unsupported(TypeError):
    """A value with no Erlang form; carries the value so the caller can find its path."""

    def __init__(self, value: object) -> None:
        super().__init__(f"cannot encode a {type(value).__name__} as an Erlang term")
        self.value = value


def _atom_ext(atom: Atom) -> bytes:
    """The encoded form of ``atom`` (cached on the atom)."""
    name = atom.name
    if len(name) > 255:
        raise ValueError(f"atom of {len(name)} characters (Erlang's limit is 255): {name[:40]!r}...")
    raw = name.encode("utf-8")
    n = len(raw)
    ext = (bytes((119, n)) if n < 256 else bytes((118, n >> 8, n & 255))) + raw
    _set_atom_ext(atom, ext)
    return ext


def _big(x: int) -> bytes:
    sign = 0
    if x < 0:
        sign = 1
        x = -x
    n = (x.bit_length() + 7) // 8
    digits = x.to_bytes(n, "little")
    if n < 256:
        return bytes((110, n, sign)) + digits
    return _pack_tag_u32(111, n) + bytes((sign,)) + digits


def _int(x: int) -> bytes:
    if 0 <= x <= 255:
        return _SMALL_INT[x]
    if -2147483648 <= x <= 2147483647:
        return _pack_tag_i32(98, x)
    return _big(x)


def _float(x: float) -> bytes:
    if x - x != 0.0:
        raise ValueError(f"Erlang floats are finite, cannot encode {x!r}")
    return _pack_tag_f64(70, x)


def _as_string(x: list[Any]) -> bytes | None:
    """``x`` as STRING_EXT bytes if it is 1..65535 integers 0..255 (as BEAM encodes it)."""
    if len(x) > 65535:
        return None
    first = x[0]
    if type(first) is not int or not 0 <= first <= 255:
        return None
    try:
        b = bytes(x)
    except (TypeError, ValueError):
        return None
    # bytes() accepts True/False as 1/0: those are atoms, not integers
    if (0 in b or 1 in b) and bool in set(map(type, x)):
        return None
    return b


def _atom_of(x: Any) -> bytes:
    if type(x) is not Atom:
        raise TypeError(f"expected an Atom, got {type(x).__name__}")
    e: bytes | None = x._ext
    return e if e is not None else _atom_ext(x)


def _e_pid(x: Pid) -> bytes:
    return b"X" + _atom_of(x.node) + _pack_u32x3(x.id, x.serial, x.creation)


def _e_port(x: Port) -> bytes:
    if 0 <= x.id < 2**32:
        return b"Y" + _atom_of(x.node) + _pack_u32x2(x.id, x.creation)
    return b"x" + _atom_of(x.node) + _pack_u64u32(x.id, x.creation)


def _e_ref(x: Reference) -> bytes:
    n = len(x.ids)
    if not 1 <= n <= 5:
        raise ValueError(f"a reference has 1..5 ID words, not {n}")
    return (
        _pack_ref_head(90, n)
        + _atom_of(x.node)
        + struct.pack(f">I{n}I", x.creation, *x.ids)
    )


def _e_export(x: ExportFun) -> bytes:
    if not 0 <= x.arity <= 255:
        raise ValueError(f"fun arity must be 0..255, not {x.arity}")
    return b"q" + _atom_of(x.module) + _atom_of(x.function) + _SMALL_INT[x.arity]


def _e_bits(x: BitString) -> bytes:
    if x.bits == 8:
        return _pack_tag_u32(109, len(x.data)) + x.data
    return _pack_bit_head(77, len(x.data), x.bits) + x.data


def _e_buffer(x: Any) -> bytes:
    view = memoryview(x)
    return bytes(view.cast("B") if view.c_contiguous else view.tobytes())


_SCALARS: dict[type, Callable[[Any], bytes]] = {
    Pid: _e_pid,
    Port: _e_port,
    Reference: _e_ref,
    ExportFun: _e_export,
    BitString: _e_bits,
}


def _enc(term: Any, a: Callable[[Any], None], depth: int) -> None:
    """Append the encoded pieces of ``term`` with ``a``."""
    t = type(term)
    if t is Atom:
        e = term._ext
        a(e if e is not None else _atom_ext(term))
    elif t is int:
        if 0 <= term <= 255:
            a(_SMALL_INT[term])
        elif -2147483648 <= term <= 2147483647:
            a(_pack_tag_i32(98, term))
        else:
            a(_big(term))
    elif t is tuple:
        n = len(term)
        if depth >= _RECURSE_LIMIT and n:
            _enc_iter(term, a)
            return
        a(_TUPLE_HEAD[n] if n < 256 else _pack_tag_u32(105, n))
        depth += 1
        for x in term:
            tx = type(x)
            if tx is Atom:
                e = x._ext
                a(e if e is not None else _atom_ext(x))
            elif tx is int and 0 <= x <= 255:
                a(_SMALL_INT[x])
            else:
                _enc(x, a, depth)
    elif t is bytes:
        a(_pack_tag_u32(109, len(term)))
        a(term)
    elif t is list:
        if not term:
            a(_NIL)
            return
        s = _as_string(term)
        if s is not None:
            a(_pack_tag_u16(107, len(s)))
            a(s)
            return
        if depth >= _RECURSE_LIMIT:
            _enc_iter(term, a)
            return
        a(_pack_tag_u32(108, len(term)))
        depth += 1
        for x in term:
            tx = type(x)
            if tx is int:
                if 0 <= x <= 255:
                    a(_SMALL_INT[x])
                elif -2147483648 <= x <= 2147483647:
                    a(_pack_tag_i32(98, x))
                else:
                    a(_big(x))
            elif tx is Atom:
                e = x._ext
                a(e if e is not None else _atom_ext(x))
            else:
                _enc(x, a, depth)
        a(_NIL)
    elif t is dict or t is TermMap:
        if depth >= _RECURSE_LIMIT and term:
            _enc_iter(term, a)
            return
        a(_pack_tag_u32(116, len(term)))
        depth += 1
        for k, v in term.items():
            if type(k) is Atom:
                e = k._ext
                a(e if e is not None else _atom_ext(k))
            else:
                _enc(k, a, depth)
            tv = type(v)
            if tv is Atom:
                e = v._ext
                a(e if e is not None else _atom_ext(v))
            elif tv is int and 0 <= v <= 255:
                a(_SMALL_INT[v])
            else:
                _enc(v, a, depth)
    elif t is bool:
        a(_TRUE if term else _FALSE)
    elif term is None:
        a(_UNDEFINED)
    elif t is float:
        a(_float(term))
    elif t is str:
        raw = term.encode("utf-8")
        a(_pack_tag_u32(109, len(raw)))
        a(raw)
    elif t is ImproperList:
        if depth >= _RECURSE_LIMIT:
            _enc_iter(term, a)
            return
        a(_pack_tag_u32(108, len(term.items)))
        depth += 1
        for x in term.items:
            _enc(x, a, depth)
        _enc(term.tail, a, depth)
    elif t is Fun:
        a(term.data)
    else:
        fn = _SCALARS.get(t)
        if fn is not None:
            a(fn(term))
        else:
            _enc_other(term, a, depth)


def _enc_other(term: Any, a: Callable[[Any], None], depth: int) -> None:
    """Subclasses of the supported built-in types, and buffers."""
    if isinstance(term, (bytearray, memoryview)):
        data = _e_buffer(term)
        a(_pack_tag_u32(109, len(data)))
        a(data)
    elif isinstance(term, bool):
        a(_TRUE if term else _FALSE)
    elif isinstance(term, int):
        a(_int(int(term)))
    elif isinstance(term, float):
        a(_float(float(term)))
    elif isinstance(term, Charlist):
        _enc(term.code_points(), a, depth)
    elif isinstance(term, str):
        _enc(str(term), a, depth)
    elif isinstance(term, bytes):
        _enc(bytes(term), a, depth)
    elif isinstance(term, tuple):
        _enc(tuple(term), a, depth)
    elif isinstance(term, list):
        _enc(list(term), a, depth)
    elif isinstance(term, Mapping):
        _enc(dict(term.items()) if isinstance(term, dict) else TermMap(term), a, depth)
    else:
        struct_map = _as_struct(term)
        if struct_map is None:
            raise _Unsupported(term)
        _enc(struct_map, a, depth)


class _Raw:
    """Pre-encoded bytes on ``_enc_iter``'s stack."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_RAW_NIL = _Raw(_NIL)


def _enc_iter(term: Any, a: Callable[[Any], None]) -> None:
    """Encode ``term`` with an explicit stack (any nesting depth)."""
    stack: list[Any] = [term]
    pop = stack.pop
    push = stack.append
    while stack:
        x = pop()
        t = type(x)
        if t is tuple:
            n = len(x)
            a(_TUPLE_HEAD[n] if n < 256 else _pack_tag_u32(105, n))
            stack.extend(reversed(x))
        elif t is list:
            if not x:
                a(_NIL)
                continue
            s = _as_string(x)
            if s is not None:
                a(_pack_tag_u16(107, len(s)))
                a(s)
                continue
            a(_pack_tag_u32(108, len(x)))
            push(_RAW_NIL)
            stack.extend(reversed(x))
        elif t is dict or t is TermMap:
            a(_pack_tag_u32(116, len(x)))
            for k, v in reversed(list(x.items())):
                push(v)
                push(k)
        elif t is ImproperList:
            a(_pack_tag_u32(108, len(x.items)))
            push(x.tail)
            stack.extend(reversed(x.items))
        elif t is _Raw:
            a(x.data)
        elif isinstance(x, (tuple, list, Mapping)):
            # container subclasses: encode as their base type, iteratively
            push(tuple(x) if isinstance(x, tuple) else list(x) if isinstance(x, list)
                 else dict(x.items()) if isinstance(x, dict) else TermMap(x))
        else:
            _enc(x, a, 0)  # a scalar: no recursion


def _path_of(term: Any, bad: object) -> str:
    """Where ``bad`` sits inside ``term``, as ``[i][key]...`` (for error messages)."""
    stack: list[tuple[Any, str]] = [(term, "")]
    seen = 0
    while stack and seen < 1_000_000:
        x, path = stack.pop()
        seen += 1
        if x is bad:
            return path or "the top level"
        if isinstance(x, (tuple, list)):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(x))
        elif isinstance(x, ImproperList):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(x.items))
            stack.append((x.tail, f"{path}.tail"))
        elif isinstance(x, Mapping):
            for k, v in x.items():
                stack.append((k, f"{path}<key {k!r}>"))
                stack.append((v, f"{path}[{k!r}]"))
    return "an unknown place"


def _join(term: Term, prefix: bytes) -> bytes:
    out: list[Any] = [prefix]
    try:
        _enc(term, out.append, 0)
    except _Unsupported as e:
        raise TypeError(f"{e} (at {_path_of(term, e.value)})") from None
    except struct.error as e:
        raise ValueError(f"a value is out of range for its Erlang form ({e})") from None
    except RecursionError:
        raise ValueError("term nested too deeply for this Python stack") from None
    return b"".join(out)


def encode_body(term: Term, mapping: TermMapping | None = None) -> bytes:
    """Encode ``term`` without the version byte (for distribution-header framing).

    ``mapping`` is :func:`encode`'s.

    >>> encode_body([1, 2])
    b'k\\x00\\x02\\x01\\x02'
    """
    if mapping is None:
        return _join(term, b"")
    with _encoding_with(mapping):
        return _join(term, b"")


def encode(term: Term, compressed: bool | int = False, *, mapping: TermMapping | None = None) -> bytes:
    """Encode ``term`` as an external term with the version byte (``term_to_binary/1,2``).

    ``compressed=True`` compresses at zlib level 6, an int 0..9 picks the level
    (0 means uncompressed), as ``term_to_binary(T, [{compressed, Level}])``; like
    BEAM, the uncompressed form is returned when compression does not shrink it.
    ``mapping`` (:class:`dist_proto.mapping.Mapping`) lets its registered
    dataclasses encode as Elixir structs; the other options only affect decoding
    (a ``str`` is always a binary, a :class:`~dist_proto.terms.Charlist` a charlist).

    >>> encode([1, 2])
    b'\\x83k\\x00\\x02\\x01\\x02'
    """
    if mapping is not None:
        with _encoding_with(mapping):
            return encode(term, compressed)
    if compressed is False or compressed is None:
        return _join(term, b"\x83")
    level = 6 if compressed is True else int(compressed)
    if not 0 <= level <= 9:
        raise ValueError(f"compression level must be 0..9, not {compressed!r}")
    body = _join(term, b"")
    if level == 0 or len(body) > 0xFFFFFFFF:
        return b"\x83" + body
    packed = zlib.compress(body, level)
    if len(packed) + 5 >= len(body):
        return b"\x83" + body
    return b"".join((b"\x83", _pack_tag_u32(80, len(body)), packed))
