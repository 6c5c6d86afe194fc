"""Exceptions of the network layer: one hierarchy rooted in :class:`BridgeError`.

Everything :mod:`bridge` raises on purpose derives from :class:`BridgeError`, so
``except bridge.BridgeError`` catches every failure of the library (a bad argument
is also a ``ValueError`` or ``TypeError``, as Python code expects)::

    BridgeError
    ├── NodeNotRunning
    ├── BridgeTimeout (also TimeoutError)
    ├── ConnectError (also ConnectionError)
    │   ├── UnknownNode            EPMD does not know the name
    │   ├── HandshakeFailed        refused, timed out, closed, bad peer
    │   │   └── CookieRejected     the peer closed at the digest check: wrong cookie
    │   ├── NameMismatch (also ValueError)  short and long names mixed
    │   └── SimultaneousConnect    (internal: the peer's own attempt wins)
    ├── CallError (also python_actors.CallError)  gen_server:call failed
    ├── RpcError                   rpc:call returned {badrpc, Reason}
    ├── EpmdError, CookieError, SpawnError, NodeNameError (ValueError)

:class:`CallError` and :class:`RpcError` carry the OTP reason term (``reason``) and,
when a connection could not be made, the :class:`ConnectError` behind it as
``__cause__`` (``raise ... from``), so ``str(exc.__cause__)`` says why.
"""

from __future__ import annotations

from typing import Any

from python_actors import CallError as _ActorCallError

__all__ = [
    "BridgeError",
    "BridgeTimeout",
    "CallError",
    "ConnectError",
    "CookieRejected",
    "HandshakeFailed",
    "NameMismatch",
    "NodeNotRunning",
    "RpcError",
    "SimultaneousConnect",
    "UnknownNode",
]


class BridgeError(Exception):
    """Base of every error raised by :mod:`bridge`."""


class BridgeTimeout(BridgeError, TimeoutError):
    """A blocking call (:class:`bridge.BlockingNode`) got no answer in time."""


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
    """The distribution handshake failed (refused, timed out, closed, malformed)."""


class CookieRejected(HandshakeFailed):
    """The handshake failed at the digest check: the cookies differ.

    Raised when the peer closes the connection right after our challenge reply (it
    found our digest wrong, as ``dist_util`` does with ``bad_cookie``), or when its
    challenge ack does not match our cookie.
    """

    def __init__(self, node: str, detail: str = "", *, by_peer: bool = True) -> None:
        who = "the peer rejected the handshake" if by_peer else "we rejected its handshake"
        why = (
            f"{who} at the cookie check: the two nodes most likely have different cookies"
            " (check the cookie argument, $BEAM_BRIDGE_COOKIE and ~/.erlang.cookie on both sides)"
        )
        super().__init__(node, why)
        self.detail = detail  # what the handshake saw (state at close, or the bad digest)


class SimultaneousConnect(ConnectError):
    """Both nodes dialled at once and the peer's attempt wins (status ``nok``)."""

    def __init__(self, node: str) -> None:
        super().__init__(node, "simultaneous connect: the other connection wins")


class NameMismatch(ConnectError, ValueError):
    """A short-named node and a long-named node cannot connect (BEAM refuses it too)."""


class CallError(BridgeError, _ActorCallError):
    """``gen_server:call`` from :meth:`bridge.Node.call` failed.

    Also a :class:`python_actors.CallError`: ``reason`` is OTP's exit reason
    ``{Why, {gen_server, call, [Server, Request, Timeout]}}`` and ``why`` the inner
    reason (``timeout``, ``noproc``, ``{nodedown, Node}``...). When the connection
    could not be made, ``__cause__`` is the :class:`ConnectError` that says why.
    """


class RpcError(BridgeError):
    """``rpc:call`` failed: ``reason`` is the term of ``{badrpc, Reason}``.

    When the connection could not be made, ``reason`` is ``nodedown`` (as
    ``rpc:call`` returns) and ``__cause__`` is the :class:`ConnectError` behind it.
    """

    def __init__(self, reason: Any, detail: str | None = None) -> None:
        text = f"badrpc: {reason!r}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.reason = reason
