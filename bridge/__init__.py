"""bridge: a Python node of an Erlang/Elixir cluster.

>>> from bridge import Node                                # doctest: +SKIP
>>> async with Node("py@127.0.0.1", cookie="secret") as node:   # doctest: +SKIP
...     await node.ping("app@127.0.0.1")
True
"""

from .blocking import BlockingNode
from .cookie import COOKIE_ENV, CookieError, resolve_cookie
from .epmd_client import EpmdError, EpmdUnavailable, NameTaken
from .errors import (
    BridgeError,
    BridgeTimeout,
    CallError,
    ConnectError,
    CookieRejected,
    HandshakeFailed,
    NameMismatch,
    NodeNotRunning,
    RpcError,
    UnknownNode,
)
from .naming import NodeNameError
from .node import Node
from .remote_spawn import SpawnError, beam_child, spawn_request

__all__ = [
    "COOKIE_ENV",
    "BlockingNode",
    "BridgeError",
    "BridgeTimeout",
    "CallError",
    "ConnectError",
    "CookieError",
    "CookieRejected",
    "EpmdError",
    "EpmdUnavailable",
    "HandshakeFailed",
    "NameMismatch",
    "NameTaken",
    "Node",
    "NodeNameError",
    "NodeNotRunning",
    "RpcError",
    "SpawnError",
    "UnknownNode",
    "beam_child",
    "resolve_cookie",
    "spawn_request",
]
