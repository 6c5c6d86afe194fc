"""Pure Erlang distribution protocol: bytes in, values out (standard library only).

>>> from dist_proto import Atom, decode, encode
>>> decode(encode((Atom("ok"), 1)))
(Atom('ok'), 1)
"""

from __future__ import annotations

from .errors import DecodeError
from .etf import decode, decode_from, encode, encode_body
from .terms import (
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
    exact_key,
)

__all__ = [
    "Atom",
    "BitString",
    "DecodeError",
    "ExportFun",
    "Fun",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "Term",
    "TermMap",
    "decode",
    "decode_from",
    "encode",
    "encode_body",
    "exact_key",
]
