"""numpy arrays and buffer-protocol objects on the wire, without copies.

The term
--------
An array travels as a 4-tuple from which an Nx user rebuilds the tensor::

    {'$nd', Type, Shape, Data}
    %% Type:  Nx's type notation, {f, 32}, {s, 64}, {u, 8}, {c, 64} ...
    %% Shape: a tuple of dimensions, {2, 3}; {} for a scalar (0-d array)
    %% Data:  a binary, the elements in C (row-major) order, little-endian

    {:"$nd", type, shape, data} -> Nx.from_binary(data, type) |> Nx.reshape(shape)
    t -> {:"$nd", Nx.type(t), Nx.shape(t), Nx.to_binary(t)}

======================  ==========================  ==========================
numpy dtype             Type                        back in Python
======================  ==========================  ==========================
float16/32/64           ``{f, 16|32|64}``           the same dtype
int8/16/32/64           ``{s, 8|16|32|64}``         the same dtype
uint8/16/32/64          ``{u, 8|16|32|64}``         the same dtype
bool                    ``{u, 8}`` (0 or 1, Nx's    ``uint8``
                        predicate type)
complex64/128           ``{c, 64|128}``             the same dtype
======================  ==========================  ==========================

Any other dtype (object, strings, structured, datetime, ``longdouble``) raises
:class:`UnsupportedArray` naming it; so does ``{bf, 16}`` and any other Nx type
numpy has no dtype for, when it comes back. A big-endian array is converted
(one copy); a non-contiguous or Fortran-order array is made C-contiguous (one
copy); a C-contiguous little-endian array is never copied.

Sending
-------
Put the array itself (or any object with the buffer protocol: ``array.array``,
``mmap``, ``bytearray``) in a message to a BEAM process: ``node.send(pid, ("frame", arr))``,
a GenServer reply, a call request. The codec has no encoding for those objects,
so the node's router hands such a message to :func:`encode_chunks`: the message is
encoded with a small placeholder for each buffer, and the frame is written as
chunks (header bytes, a view of the buffer's memory, the rest), so the array's
bytes go from its own memory to the socket, never copied into an encoded
``bytes``. An array becomes the ``'$nd'`` term, any other buffer a binary. In the
same message, ``bytes``/``memoryview`` values of at least
:data:`ZERO_COPY_THRESHOLD` bytes are written the same way. The memory is read
when the socket takes it, and what the socket does not take at once stays queued
as a view (Python 3.12+): do not modify the array until it is on the wire, or
send ``arr.copy()``. See docs/arrays.md.

Receiving
---------
:func:`from_term` turns the term into an array; with ``copy=False`` (the default)
the array is a view of the binary's memory (read-only when the binary is
``bytes``), so no copy beyond the one that decoded the message out of the socket
buffer; ``dist_proto.decode(data, zero_copy=True)`` gives memoryviews of the
input instead, and the array is then a view of that input.

>>> import numpy as np
>>> t = to_term(np.arange(6, dtype=np.float32).reshape(2, 3))
>>> t[:3]
(Atom('$nd'), (Atom('f'), 32), (2, 3))
>>> from_term(t).tolist()
[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
"""

from __future__ import annotations

import math
import secrets
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom

if TYPE_CHECKING:
    from .peer import PeerConnection

__all__ = [
    "ND_TAG",
    "ZERO_COPY_THRESHOLD",
    "UnsupportedArray",
    "encode_chunks",
    "encode_or_write",
    "from_term",
    "is_array_term",
    "to_term",
    "write_chunked",
]

#: The first element of an array term.
ND_TAG = Atom("$nd")
#: ``bytes``/``memoryview`` values at least this large go out without a copy too
#: (in a message that holds an array or a buffer object).
ZERO_COPY_THRESHOLD = 64 * 1024

_F, _S, _U, _C = Atom("f"), Atom("s"), Atom("u"), Atom("c")
# numpy dtype kind -> Nx type letter; bool is Nx's predicate type {u, 8}
_KIND_TO_NX = {"f": _F, "i": _S, "u": _U, "c": _C, "b": _U}
_NX_TO_DTYPE = {
    (_F, 16): "<f2", (_F, 32): "<f4", (_F, 64): "<f8",
    (_S, 8): "<i1", (_S, 16): "<i2", (_S, 32): "<i4", (_S, 64): "<i8",
    (_U, 8): "<u1", (_U, 16): "<u2", (_U, 32): "<u4", (_U, 64): "<u8",
    (_C, 64): "<c8", (_C, 128): "<c16",
}
_SUPPORTED = "float16/32/64, int8-64, uint8-64, bool, complex64/128"
_BINARY_HEAD = struct.Struct(">BI")  # BINARY_EXT: 109, length
_U32 = struct.Struct(">I")
_PLACEHOLDER_SIZE = 20


class UnsupportedArray(TypeError):
    """An array whose dtype has no Nx type, or an Nx type numpy cannot hold."""


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:  # pragma: no cover - numpy is in the "arrays" extra
        raise ImportError("numpy arrays need numpy: pip install 'beam-bridge[arrays]'") from exc
    return numpy


def _nx_type(dtype: Any) -> tuple[Atom, int]:
    letter = _KIND_TO_NX.get(dtype.kind)
    bits = dtype.itemsize * 8
    if letter is None or (letter, bits) not in _NX_TO_DTYPE:
        raise UnsupportedArray(f"numpy dtype {dtype.str} ({dtype}) has no Nx type; supported: {_SUPPORTED}")
    return (letter, bits)


def _c_little(arr: Any) -> Any:
    """``arr`` as a C-contiguous little-endian array: itself when it already is."""
    dtype = arr.dtype
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.astype(dtype.newbyteorder("<"), order="C")
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _bytes_view(arr: Any) -> memoryview:
    """The bytes of a C-contiguous array, as a flat memoryview (no copy)."""
    return memoryview(arr.reshape(-1).view("u1"))


def to_term(arr: Any) -> tuple[Atom, tuple[Atom, int], tuple[int, ...], memoryview]:
    """``{'$nd', Type, Shape, Data}`` for a numpy array, ``Data`` a memoryview of
    its memory (no copy for a C-contiguous little-endian array; one otherwise).
    Raises :class:`UnsupportedArray` for a dtype with no Nx type."""
    np = _numpy()
    if isinstance(arr, np.generic):
        arr = np.asarray(arr)
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"to_term takes a numpy array, not {type(arr).__name__}")
    nx_type = _nx_type(arr.dtype)
    arr = _c_little(arr)
    return (ND_TAG, nx_type, tuple(int(d) for d in arr.shape), _bytes_view(arr))


def is_array_term(term: Any) -> bool:
    """Whether ``term`` has the shape ``{'$nd', {Letter, Bits}, Shape, Data}``."""
    return (
        type(term) is tuple
        and len(term) == 4
        and term[0] == ND_TAG
        and type(term[1]) is tuple
        and len(term[1]) == 2
        and type(term[2]) is tuple
    )


def from_term(term: Any, copy: bool = False) -> Any:
    """The numpy array of an ``'$nd'`` term. ``copy=False``: a view of the data's
    memory (read-only if the data is ``bytes``); ``copy=True``: a writable copy.
    Raises ``ValueError`` for a malformed term (a shape that does not match the
    data's size) and :class:`UnsupportedArray` for a type numpy has no dtype for."""
    if not is_array_term(term):
        raise ValueError(f"not an array term {{'$nd', Type, Shape, Data}}: {term!r:.200}")
    _, nx_type, shape, data = term
    dtype_str = _NX_TO_DTYPE.get((nx_type[0], nx_type[1]))
    if dtype_str is None:
        raise UnsupportedArray(f"Nx type {nx_type!r} has no numpy dtype here; supported: {_SUPPORTED}")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError(f"array shape must be a tuple of non-negative integers, not {shape!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"array data must be a binary, not {type(data).__name__}")
    np = _numpy()
    dtype = np.dtype(dtype_str)
    size = math.prod(shape) * dtype.itemsize
    if len(data) != size:  # memoryviews from the codec are flat bytes
        raise ValueError(f"array data has {len(data)} bytes; shape {shape} of {nx_type!r} needs {size}")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    return arr.copy() if copy else arr


# -- zero-copy writing ---------------------------------------------------------------


class _Buffers:
    """Buffers found in a message, each replaced by a placeholder binary."""

    def __init__(self) -> None:
        self.views: dict[bytes, memoryview] = {}
        self.changed = False  # something else was made encodable (a numpy scalar)

    def placeholder(self, view: memoryview) -> bytes:
        key = secrets.token_bytes(_PLACEHOLDER_SIZE)
        self.views[key] = view
        return key

    def swap(self, x: Any) -> Any:
        t = type(x)
        if t is tuple:
            return tuple([self.swap(i) for i in x])
        if t is list:
            return [self.swap(i) for i in x]
        if t is dict:
            return {self.swap(k): self.swap(v) for k, v in x.items()}
        if t is bytes or t is memoryview or t is bytearray:
            view = memoryview(x)
            if view.nbytes >= ZERO_COPY_THRESHOLD:
                return self.placeholder(_flat(view))
            return x
        if t is str or t is int or t is float or t is Atom:
            return x
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(x, np.ndarray):
                tag, nx_type, shape, view = to_term(x)
                return (tag, nx_type, shape, self.placeholder(view))
            if isinstance(x, np.generic):  # a numpy scalar: the Python number
                self.changed = True
                return x.item()
        try:
            view = memoryview(x)
        except TypeError:
            return x  # not a buffer: the codec will say what it is
        return self.placeholder(_flat(view))


def _flat(view: memoryview) -> memoryview:
    """The bytes of a buffer as a flat byte view: the same memory when contiguous,
    else one copy."""
    if not view.c_contiguous:
        return memoryview(view.tobytes())
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def encode_chunks(encode_frame: Callable[[Any], bytes], message: Any) -> list[bytes | memoryview] | None:
    """The frames of ``message`` as chunks whose buffers are views, not copies.

    ``encode_frame(msg)`` encodes a message as the connection's frame(s) (for
    instance ``lambda m: conn.encode_send(to, m, sender)``). Returns None when the
    message holds no array or buffer object (then the codec's error stands)."""
    found = _Buffers()
    swapped = found.swap(message)
    if not found.views:
        return [encode_frame(swapped)] if found.changed else None
    frame = encode_frame(swapped)
    if len(frame) != 4 + _U32.unpack_from(frame)[0]:
        # Fragmented (the rest of the message is itself large): send it whole, copied.
        views = found.views
        return [encode_frame(_unswap(swapped, views))]
    spots = []
    for key, view in found.views.items():
        at = frame.find(key)
        head = at - _BINARY_HEAD.size
        if at < 0 or frame[head:at] != _BINARY_HEAD.pack(109, _PLACEHOLDER_SIZE):
            raise AssertionError("placeholder binary not found in the encoded frame")
        spots.append((head, at + _PLACEHOLDER_SIZE, view))
    spots.sort(key=lambda s: s[0])
    grown = sum(len(v) - _PLACEHOLDER_SIZE for _, _, v in spots)
    total = len(frame) - 4 + grown
    if total > 0xFFFFFFFF:
        raise ValueError(f"distribution message of {total} bytes is too large")
    chunks: list[bytes | memoryview] = []
    pos = 4
    head_bytes = _U32.pack(total)
    for head, end, view in spots:
        chunks.append(head_bytes + frame[pos:head] + _BINARY_HEAD.pack(109, len(view)))
        chunks.append(view)
        head_bytes = b""
        pos = end
    chunks.append(frame[pos:])
    return chunks


def _unswap(x: Any, views: dict[bytes, memoryview]) -> Any:
    t = type(x)
    if t is tuple:
        return tuple([_unswap(i, views) for i in x])
    if t is list:
        return [_unswap(i, views) for i in x]
    if t is dict:
        return {_unswap(k, views): _unswap(v, views) for k, v in x.items()}
    if t is bytes and len(x) == _PLACEHOLDER_SIZE and x in views:
        return views[x]
    return x


def write_chunked(peer: PeerConnection, encode_frame: Callable[[Any], bytes], message: Any) -> bool:
    """Write ``message`` to ``peer`` as chunks (:func:`encode_chunks`); False, with
    nothing written, when it holds no array or buffer object."""
    chunks = encode_chunks(encode_frame, message)
    if chunks is None:
        return False
    peer.write_chunks(chunks)
    return True


def encode_or_write(peer: PeerConnection, encode_frame: Callable[[Any], bytes], message: Any) -> bytes | None:
    """``encode_frame(message)``; for a message holding arrays or buffer objects,
    write its chunks to ``peer`` now and return None (a deferred signal's maker)."""
    try:
        return encode_frame(message)
    except TypeError:
        if not write_chunked(peer, encode_frame, message):
            raise
        return None
