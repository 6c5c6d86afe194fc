"""A blocking facade over :class:`bridge.Node` for scripts, REPLs and notebooks.

It runs the node's event loop in a thread it owns and offers the same verbs as the
async API, each blocking until done::

    from bridge import BlockingNode
    with BlockingNode("py@127.0.0.1", cookie="secret") as node:
        print(node.ping("app@127.0.0.1"))
        print(node.rpc("app@127.0.0.1", "erlang", "node", []))

Closing it (or leaving the ``with`` block) stops the node and joins the thread.

Backpressure: ``send``, ``cast`` and ``call`` block the calling thread while the
connection to the destination node is busy (its unsent output above the node's
``busy_limit``, 1 MiB by default), exactly as the async verbs wait; they return
once the output drains or the connection dies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from bridge.errors import BridgeTimeout
from dist_proto.mapping import Mapping

from . import event_loop

if TYPE_CHECKING:
    from bridge.node import Node

__all__ = ["BlockingNode"]

T = TypeVar("T")


class BlockingNode:
    """Same verbs as :class:`bridge.Node`, blocking; the loop runs in a thread owned here."""

    def __init__(self, name: str, cookie: str | None = None, **options: Any) -> None:
        from bridge.node import Node

        # Built before the loop thread starts: bad arguments must not leave a thread behind.
        self._node: Node = Node(name, cookie=cookie, **options)
        self._loop = event_loop.new_event_loop()  # uvloop when installed
        self._thread = threading.Thread(target=self._run, name=f"bridge-{name}", daemon=True)
        self._thread.start()
        try:
            self._submit(self._node.start(), None)
        except BaseException:
            self._stop_loop()
            raise

    @property
    def loop_kind(self) -> str:
        """``uvloop`` or ``asyncio``: the kind of loop this node runs on (``BEAM_BRIDGE_LOOP``)."""
        return event_loop.loop_name(self._loop)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _submit(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BridgeTimeout("the node did not answer in time") from None

    @property
    def node(self) -> Node:
        """The underlying async node (use it only from its loop)."""
        return self._node

    @property
    def name(self) -> str:
        return self._node.name

    def ping(self, node: str, timeout: float = 5.0) -> bool:
        """``net_adm:ping/1``: True for ``pong``."""
        return self._submit(self._node.ping(node, timeout=timeout), None)

    def rpc(
        self, node: str, module: str, function: str, args: list[Any], timeout: float = 5.0, *,
        kwargs: dict[str, Any] | None = None, mapping: Mapping | None = None,
    ) -> Any:
        """``rpc:call/5``: the value, or raises :class:`bridge.RpcError`; ``kwargs`` and
        ``mapping`` as :meth:`bridge.Node.rpc`."""
        coro = self._node.rpc(node, module, function, args, timeout=timeout, kwargs=kwargs, mapping=mapping)
        return self._submit(coro, None)

    def call(self, dest: Any, request: Any, timeout: float = 5.0, *, mapping: Mapping | None = None) -> Any:
        """``gen_server:call/3``; ``mapping`` as :meth:`bridge.Node.call`."""
        return self._submit(self._node.call(dest, request, timeout=timeout, mapping=mapping), None)

    def cast(self, dest: Any, request: Any) -> None:
        """``gen_server:cast/2``."""
        self._submit(self._node.cast(dest, request), None)

    def send(self, dest: Any, message: Any) -> None:
        """``erlang:send/2`` to a pid, a registered name or ``(name, node)``; blocks
        while the connection is busy."""
        self._submit(self._node.send(dest, message), None)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run any coroutine on the node's loop and wait for its result."""
        return self._submit(coro, timeout)

    def close(self) -> None:
        """Stop the node (running every actor's ``terminate``) and the loop thread."""
        if not self._loop.is_running():
            return
        try:
            self._submit(self._node.stop(), 30)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def __enter__(self) -> BlockingNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
