"""bridge: a Python node of an Erlang/Elixir cluster.

With a BEAM node ``app@127.0.0.1`` running (``erl -name app@127.0.0.1 -setcookie secret``)::

    import asyncio
    from bridge import Node

    async def main():
        async with Node("py@127.0.0.1", cookie="secret") as node:
            print(await node.ping("app@127.0.0.1"))   # True

    asyncio.run(main())

The public API is ``__all__`` below; see ``docs/api.md`` for the internal modules.
"""

from dist_proto import (
    __version__ as __version__,  # one version for the three packages of beam-bridge
)

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
