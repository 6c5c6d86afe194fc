"""Exceptions raised by :mod:`dist_proto`.

Errors say who was wrong (as h11 does): :class:`LocalProtocolError` when the caller
asked for something the protocol forbids, :class:`RemoteProtocolError` when the peer
sent it. Both derive from :class:`ProtocolError`. Codec errors are
:class:`DecodeError` (a ``ValueError``) for bad bytes; encoding a value with no
Erlang form raises ``TypeError`` (or ``ValueError`` for a value of the right type
that Erlang cannot hold, such as NaN).
"""

from __future__ import annotations

__all__ = ["DecodeError", "LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class DecodeError(ValueError):
    """Bytes that are not a valid external term; ``offset`` is where decoding failed."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        self.reason = message
        super().__init__(message if offset is None else f"at offset {offset}: {message}")


class ProtocolError(Exception):
    """A distribution, handshake or EPMD protocol violation."""


class LocalProtocolError(ProtocolError):
    """This side asked for something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""
