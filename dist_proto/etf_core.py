"""The compiled ETF codec: :mod:`dist_proto.etf`'s functions backed by ``dist_proto._etf_core``.

Importing this module raises ``ImportError`` when the C extension was not built
(no compiler at install time); :mod:`dist_proto.etf` then keeps the pure codec.
The C core decodes and encodes every term; this module holds what the pure
codec does in Python anyway and the core reuses so that both give the same
values, bytes and errors: argument checking and offsets of
:func:`decode_from`, inflating ``COMPRESSED`` terms, compressing, and the rare
forms (bignums above 64 bits, atoms not yet encoded, subclasses of the
built-in types, the error that names where an unsupported value sits).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from . import _etf_core as _core
from .control import AliasSend, RegSend, Send, SendSender
from .errors import DecodeError
from .etf_decode import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_UNCOMPRESSED_SIZE,
    VERSION,
    _Ctx,
    input_buffer,
)
from .etf_decode import _options as _mapping_options
from .etf_decode_rare import _inflate
from .etf_encode import (
    _as_string,
    _as_struct,
    _atom_ext,
    _big,
    _e_buffer,
    _encoding_with,
    _float,
    _path_of,
    _Unsupported,
)
from .mapping import STRUCT_KEY
from .mapping import Mapping as TermMapping
from .terms import (
    _ATOM_SALT,
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
)

__all__ = [
    "DecodeContext",
    "decode",
    "decode_dist",
    "decode_from",
    "dist_context",
    "encode",
    "encode_body",
    "scan_frames",
]

DecodeContext = _core.DecodeContext


def _coerce(term: Any) -> Any:
    """The built-in-typed equivalent of a subclass or buffer (``etf_encode._enc_other``)."""
    if isinstance(term, (bytearray, memoryview)):
        return _e_buffer(term)
    if isinstance(term, bool):
        return bool(term)
    if isinstance(term, int):
        return int(term)
    if isinstance(term, float):
        return float(term)
    if isinstance(term, Charlist):
        return term.code_points()
    if isinstance(term, str):
        return str(term)
    if isinstance(term, bytes):
        return bytes(term)
    if isinstance(term, tuple):
        return tuple(term)
    if isinstance(term, list):
        return list(term)
    if isinstance(term, Mapping):
        return dict(term.items()) if isinstance(term, dict) else TermMap(term)
    struct_map = _as_struct(term)  # a registered dataclass, while encoding with a mapping
    if struct_map is None:
        raise _Unsupported(term)
    return struct_map


def _encode_failed(term: Any, error: _Unsupported) -> None:
    raise TypeError(f"{error} (at {_path_of(term, error.value)})") from None


def _rebuild_fun(
    arity: int, uniq: bytes, index: int, num_free: int, module: Atom, ints: bytes,
    creator: Pid, free: tuple[Any, ...],
) -> bytes:
    """A NEW_FUN_EXT rebuilt from its fields (its atom-cache references resolved)."""
    parts = [
        struct.pack(">B16sII", arity, uniq, index, num_free),
        _core.encode_body(module),
        ints,
        _core.encode_body(creator),
    ]
    parts.extend(_core.encode_body(v) for v in free)
    body = b"".join(parts)
    return struct.pack(">BI", 112, len(body) + 4) + body


class _Truncated(Exception):
    """The inflated term of a COMPRESSED record ends early."""


def decode_from(
    data: bytes | bytearray | memoryview,
    offset: int = 0,
    *,
    versioned: bool = True,
    atom_cache: Sequence[Atom] | None = None,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_uncompressed_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE,
    zero_copy: bool = False,
    mapping: TermMapping | None = None,
) -> tuple[Term, int]:
    """:func:`dist_proto.etf_decode.decode_from` on the compiled core (same results and errors)."""
    buf, base, pos = input_buffer(data, offset)
    mapping = _mapping_options(mapping)
    ctx = (
        None if atom_cache is None and mapping is None
        else _core.dist_context(atom_cache, mapping)
    )
    where = "data"
    try:
        if versioned:
            if pos >= len(buf):
                raise DecodeError("no data (expected the version byte 131)", offset)
            if buf[pos] != VERSION:
                raise DecodeError(f"expected the version byte 131, found {buf[pos]}", offset)
            pos += 1
            if pos < len(buf) and buf[pos] == 80:
                limits = _Ctx(None, max_depth, max_uncompressed_size)
                inner, end = _inflate(buf, pos, limits)
                where = "compressed data"
                try:
                    term, inner_end = _core.decode_at(inner, 0, ctx, max_depth, zero_copy)
                except DecodeError as e:
                    if e.offset == len(inner) and e.reason == "unexpected end of data":
                        raise _Truncated from None
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
        term, end = _core.decode_at(buf, pos, ctx, max_depth, zero_copy)
    except (_Truncated, IndexError, struct.error):  # (the last two from _inflate)
        raise DecodeError(f"unexpected end of {where}", len(buf) + base) from None
    except DecodeError as e:
        if base and e.offset is not None:
            raise DecodeError(e.reason, e.offset + base) from None
        raise
    return term, end + base


def _decode_slow(
    data: bytes | bytearray | memoryview,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_uncompressed_size: int = DEFAULT_MAX_UNCOMPRESSED_SIZE,
    zero_copy: bool = False,
    mapping: TermMapping | None = None,
) -> Term:
    """:func:`decode` for what the C entry point does not take itself (compressed, buffers, options)."""
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


def _encode_body_mapped(term: Term, mapping: TermMapping | None = None) -> bytes:
    """:func:`dist_proto.etf_encode.encode_body` with a mapping, on the compiled core."""
    with _encoding_with(mapping):
        return _core.encode_body(term)


def _encode_compressed(
    term: Term, compressed: bool | int = False, *, mapping: TermMapping | None = None
) -> bytes:
    """:func:`dist_proto.etf_encode.encode` with compression or a mapping, on the compiled core."""
    if mapping is not None:
        with _encoding_with(mapping):
            return _encode_compressed(term, compressed)
    if compressed is False or compressed is None:
        return _core.encode(term)
    level = 6 if compressed is True else int(compressed)
    if not 0 <= level <= 9:
        raise ValueError(f"compression level must be 0..9, not {compressed!r}")
    body = _core.encode_body(term)
    if level == 0 or len(body) > 0xFFFFFFFF:
        return b"\x83" + body
    packed = zlib.compress(body, level)
    if len(packed) + 5 >= len(body):
        return b"\x83" + body
    return b"".join((b"\x83", struct.pack(">BI", 80, len(body)), packed))


_core.configure(
    Atom=Atom, Pid=Pid, Port=Port, Reference=Reference, ExportFun=ExportFun, Fun=Fun,
    BitString=BitString, ImproperList=ImproperList, TermMap=TermMap, DecodeError=DecodeError,
    Unsupported=_Unsupported, coerce=_coerce, as_string=_as_string, atom_ext=_atom_ext,
    big_ext=_big, float_ext=_float, encode_failed=_encode_failed, decode_slow=_decode_slow,
    encode_compressed=_encode_compressed, rebuild_fun=_rebuild_fun, atom_salt=_ATOM_SALT,
    default_max_depth=DEFAULT_MAX_DEPTH, Mapping=TermMapping, Charlist=Charlist,
    struct_key=STRUCT_KEY, encode_body_slow=_encode_body_mapped,
    Send=Send, RegSend=RegSend, SendSender=SendSender, AliasSend=AliasSend,
)

decode = _core.decode
decode_dist = _core.decode_dist
dist_context = _core.dist_context
encode = _core.encode
encode_body = _core.encode_body
scan_frames = _core.scan_frames
