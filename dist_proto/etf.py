"""External Term Format: ``term_to_binary/1,2`` and ``binary_to_term/1``.

>>> from dist_proto.etf import encode, decode
>>> from dist_proto.terms import Atom
>>> data = encode((Atom("ok"), [1, 2, 3], {Atom("k"): b"v"}))
>>> decode(data)
(Atom('ok'), [1, 2, 3], {Atom('k'): b'v'})

Two implementations give the same values, bytes and errors: the pure-Python
codec (:mod:`dist_proto.etf_decode`, :mod:`dist_proto.etf_encode`) and an
optional compiled core (:mod:`dist_proto.etf_core`, a C extension that
``pip install`` builds when a C compiler is present). The core is used when
it was built, unless the environment variable ``BEAM_BRIDGE_PURE`` is set to
a non-empty value other than ``0`` when this module is first imported.
:data:`ACTIVE` is the codec in use; :func:`available` lists every codec that
can be loaded here (tests and benchmarks run each). The Python mapping is
documented in :mod:`dist_proto.terms`; the core in ``docs/codec.md``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

from . import etf_decode as _pure_decode
from . import etf_encode as _pure_encode
from .errors import DecodeError
from .etf_decode import DEFAULT_MAX_DEPTH, DEFAULT_MAX_UNCOMPRESSED_SIZE
from .mapping import DEFAULT as DEFAULT_MAPPING
from .mapping import Mapping
from .terms import Term

__all__ = [
    "ACTIVE",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_UNCOMPRESSED_SIZE",
    "PURE_ENV",
    "Codec",
    "DecodeError",
    "DistContext",
    "available",
    "compiled",
    "decode",
    "decode_dist",
    "decode_from",
    "dist_context",
    "encode",
    "encode_body",
    "remap",
]

#: The environment variable that forces the pure-Python codec.
PURE_ENV = "BEAM_BRIDGE_PURE"

#: A decoding context for :func:`decode_dist` (from :func:`dist_context`); opaque.
DistContext = Any


class Codec(NamedTuple):
    """One implementation of the codec: the same functions, the same behaviour."""

    name: str
    encode: Callable[..., bytes]
    encode_body: Callable[..., bytes]
    decode: Callable[..., Term]
    decode_from: Callable[..., tuple[Term, int]]
    decode_dist: Callable[[bytes, int, DistContext], tuple[Term, int]]
    dist_context: Callable[..., DistContext]
    #: ``scan_frames(data, pos, cache, max_frame, no_payload) -> (events, pos)``: the
    #: distribution frames of BEAM's steady state decoded in one call (see
    #: :meth:`dist_proto.framing.DistConnection.drain`); None in the pure codec, whose
    #: framing is :meth:`~dist_proto.framing.DistConnection.next_event` alone.
    scan_frames: Callable[[bytes, int, list[Any], int, Any], tuple[list[Term], int]] | None


PURE = Codec(
    "pure",
    _pure_encode.encode,
    _pure_encode.encode_body,
    _pure_decode.decode,
    _pure_decode.decode_from,
    _pure_decode.decode_dist,
    _pure_decode.dist_context,
    None,
)


def _core_module() -> ModuleType | None:
    try:
        from . import etf_core
    except ImportError:
        return None
    return etf_core


def compiled() -> Codec | None:
    """The compiled core as a :class:`Codec`, or None when it was not built."""
    core = _core_module()
    if core is None:
        return None
    return Codec(
        "core", core.encode, core.encode_body, core.decode, core.decode_from, core.decode_dist,
        core.dist_context, core.scan_frames,
    )


def available() -> list[Codec]:
    """Every codec that loads here: the pure one, then the compiled core if built."""
    core = compiled()
    return [PURE] if core is None else [PURE, core]


def _select() -> Codec:
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return PURE
    return compiled() or PURE


#: The codec that :func:`encode`, :func:`decode` and friends are.
ACTIVE: Codec = _select()

encode = ACTIVE.encode
encode_body = ACTIVE.encode_body
decode = ACTIVE.decode
decode_from = ACTIVE.decode_from
decode_dist = ACTIVE.decode_dist
dist_context = ACTIVE.dist_context


def remap(term: Term, source: Mapping | None, target: Mapping | None) -> Term:
    """``term`` as decoding with ``target`` gives it, from its form under ``source``.

    The conversions are invertible (a ``str`` from ``strings`` is the UTF-8 binary,
    a :class:`~dist_proto.terms.Charlist` the charlist, a registered dataclass its
    struct), so this is ``decode(encode(term, mapping=source), mapping=target)``:
    one encode and one decode, none when the mappings are equal. Per-call mappings
    (``Node.call(..., mapping=...)``) use it on the reply. A value with no Erlang
    form (a Python object a local actor returned) comes back unchanged.

    >>> from dist_proto.mapping import Mapping
    >>> remap(["café".encode()], None, Mapping(strings=True))
    ['café']
    """
    if (source or DEFAULT_MAPPING) == (target or DEFAULT_MAPPING):
        return term
    try:
        data = encode(term, mapping=source) if source is not None else encode(term)
    except (TypeError, ValueError):
        return term
    return decode(data, mapping=target) if target is not None else decode(data)
