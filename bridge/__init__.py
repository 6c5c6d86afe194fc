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
    ConnectError,
    HandshakeFailed,
    NodeNotRunning,
    RpcError,
    UnknownNode,
)
from .node import Node
from .remote_spawn import SpawnError, beam_child, spawn_request

__all__ = [
    "COOKIE_ENV",
    "BlockingNode",
    "BridgeError",
    "ConnectError",
    "CookieError",
    "EpmdError",
    "EpmdUnavailable",
    "HandshakeFailed",
    "NameTaken",
    "Node",
    "NodeNotRunning",
    "RpcError",
    "SpawnError",
    "UnknownNode",
    "beam_child",
    "resolve_cookie",
    "spawn_request",
]
