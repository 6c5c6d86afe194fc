"""External Term Format: ``term_to_binary/1,2`` and ``binary_to_term/1`` in pure Python.

>>> from dist_proto.etf import encode, decode
>>> from dist_proto.terms import Atom
>>> data = encode((Atom("ok"), [1, 2, 3], {Atom("k"): b"v"}))
>>> decode(data)
(Atom('ok'), [1, 2, 3], {Atom('k'): b'v'})

The Python mapping is documented in :mod:`dist_proto.terms`. The decoder lives
in :mod:`dist_proto.etf_decode`, the encoder in :mod:`dist_proto.etf_encode`.
"""

from __future__ import annotations

from .errors import DecodeError
from .etf_decode import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_UNCOMPRESSED_SIZE,
    decode,
    decode_from,
)
from .etf_encode import encode, encode_body

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_UNCOMPRESSED_SIZE",
    "DecodeError",
    "decode",
    "decode_from",
    "encode",
    "encode_body",
]
