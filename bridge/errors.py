"""Exceptions of the network layer (one flat set, one line each)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "BridgeError",
    "ConnectError",
    "HandshakeFailed",
    "NodeNotRunning",
    "RpcError",
    "SimultaneousConnect",
    "UnknownNode",
]


class BridgeError(Exception):
    """Base of every error raised by :mod:`bridge`."""


class NodeNotRunning(BridgeError):
    """The node was used before ``start()`` or after ``stop()``."""


class ConnectError(BridgeError, ConnectionError):
    """A connection to another node could not be set up."""

    def __init__(self, node: str, reason: str) -> None:
        super().__init__(f"cannot connect to {node}: {reason}")
        self.node = node
        self.reason = reason


class UnknownNode(ConnectError):
    """EPMD on the node's host does not know the node's name."""

    def __init__(self, node: str, reason: str = "not registered with EPMD") -> None:
        super().__init__(node, reason)


class HandshakeFailed(ConnectError):
    """The distribution handshake failed (wrong cookie, refused, timed out, closed)."""


class SimultaneousConnect(ConnectError):
    """Both nodes dialled at once and the peer's attempt wins (status ``nok``)."""

    def __init__(self, node: str) -> None:
        super().__init__(node, "simultaneous connect: the other connection wins")


class RpcError(BridgeError):
    """``rpc:call`` failed: ``reason`` is the term of ``{badrpc, Reason}``."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"badrpc: {reason!r}")
        self.reason = reason
