"""Pure Erlang distribution protocol: bytes in, values out (standard library only).

>>> from dist_proto import Atom, decode, encode
>>> decode(encode((Atom("ok"), 1)))
(Atom('ok'), 1)
"""

from __future__ import annotations

from importlib import metadata as _metadata

from .control import NO_PAYLOAD, Control
from .errors import DecodeError, LocalProtocolError, ProtocolError, RemoteProtocolError
from .etf import decode, decode_from, encode, encode_body
from .flags import DEFAULT_FLAGS, MANDATORY, DFlag
from .framing import ControlMessage, DistConnection, Tick
from .handshake import ClientHandshake, HandshakeComplete, ServerHandshake
from .mapping import Mapping
from .term_text import TermSyntaxError, format_term, parse_term
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
    exact_key,
)

try:  # the single source is the version in pyproject.toml, as installed
    __version__: str = _metadata.version("beam-bridge")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_FLAGS",
    "MANDATORY",
    "NO_PAYLOAD",
    "Atom",
    "BitString",
    "Charlist",
    "ClientHandshake",
    "Control",
    "ControlMessage",
    "DFlag",
    "DecodeError",
    "DistConnection",
    "HandshakeComplete",
    "LocalProtocolError",
    "Mapping",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerHandshake",
    "TermSyntaxError",
    "Tick",
    "format_term",
    "parse_term",
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
