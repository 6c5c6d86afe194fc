"""A Python node of an Erlang/Elixir cluster (``net_kernel`` and ``erlang`` distribution BIFs).

With a BEAM node ``app@127.0.0.1`` running (``erl -name app@127.0.0.1 -setcookie secret``)::

    import asyncio
    from bridge import Node

    async def main():
        async with Node("py@127.0.0.1", cookie="secret") as node:
            print(await node.ping("app@127.0.0.1"))                 # True
            print(await node.rpc("app@127.0.0.1", "erlang", "node", []))

    asyncio.run(main())

Theory of operation
-------------------
The node listens on the address its host part names (never on every interface
unless ``listen_host="0.0.0.0"`` is asked for), registers its port with EPMD as a
hidden node and keeps the registration socket open, then owns one
:class:`~bridge.peer.PeerConnection` per remote node. Connections are made on first
use (any signal to a node we are not connected to queues the signal and dials, as
BEAM's auto-connect does) or accepted from BEAM. Simultaneous connects are resolved
as ``dist_util`` does: the attempt of the node with the greater name wins. When a
connection ends, every link and monitor towards that node fires with
``noconnection`` and ``nodedown`` subscribers are told.

All local processes live in a :class:`python_actors.Runtime` whose pids carry this
node's name and EPMD creation; :class:`~bridge.routing.NodeRouter` carries their
signals over the wire. The system processes BEAM expects (``net_kernel`` for
``net_adm:ping``, ``rex`` for ``rpc``, the spawner for ``spawn_request``/``erpc``)
are started with the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dist_proto.flags import DEFAULT_FLAGS, DFlag
from dist_proto.handshake import ClientHandshake, NameReceived, ServerHandshake, simultaneous_status
from dist_proto.terms import Atom, Pid
from python_actors import Process, Runtime
from python_actors import call as gen_call

from .connect import run_client, run_server
from .cookie import resolve_cookie
from .epmd_client import EpmdError, Registration, epmd_port_from_env, port_please, register
from .epmd_server import EpmdServer, ensure_epmd
from .errors import (
    ConnectError,
    HandshakeFailed,
    NodeNotRunning,
    RpcError,
    SimultaneousConnect,
    UnknownNode,
)
from .naming import as_atom, parse_node_name
from .peer import DistProtocol, PeerConnection
from .pg import PgScope
from .registry import is_global_or_via, resolve_name
from .routing import NodeRouter
from .system_processes import NetKernel, Rex, Spawner
from .tick_guard import TickGuard

__all__ = ["Node"]

log = logging.getLogger("bridge.node")

_YES = Atom("yes")
_IS_AUTH = Atom("is_auth")
_CALL = Atom("call")
_USER = Atom("user")
_BADRPC = Atom("badrpc")
_NODEUP = Atom("nodeup")
_NODEDOWN = Atom("nodedown")




class _Pending:
    """A connection being set up (dialled by us, or accepted and past the name check),
    with the signals queued for it. ``task`` is our dial, if any; ``accepting`` is set
    while an inbound handshake from that node is in progress; ``superseded`` when our
    dial lost a simultaneous connect to the inbound one (``ok_simultaneous``)."""

    __slots__ = ("queue", "task", "done", "protocol", "accepting", "superseded")

    def __init__(self) -> None:
        self.queue: list[Callable[[PeerConnection], bytes | None]] = []
        self.task: asyncio.Task[Any] | None = None
        self.done: asyncio.Future[PeerConnection] = asyncio.get_running_loop().create_future()
        self.protocol: DistProtocol | None = None
        self.accepting = False
        self.superseded = False


class Node:
    """A hidden node named ``name`` (``alive@host``), an async context manager.

    ``cookie``: the argument, else ``$BEAM_BRIDGE_COOKIE``, else ``~/.erlang.cookie``.
    ``epmd_port``: where EPMD listens (default ``$ERL_EPMD_PORT`` or 4369).
    ``embedded_epmd``: run an EPMD in this process if nothing listens on that port.
    ``use_epmd=False`` with ``listen_port`` and ``ports={node: port}``: EPMD-less mode.
    ``net_ticktime`` (seconds, default 60, as ``net_kernel``) and ``net_setuptime`` (7).
    ``hidden=False`` advertises ``DFLAG_PUBLISHED`` (visible mode; not the default).
    """

    def __init__(
        self,
        name: str,
        cookie: str | None = None,
        *,
        hidden: bool = True,
        epmd_port: int | None = None,
        use_epmd: bool = True,
        embedded_epmd: bool = False,
        listen_host: str | None = None,
        listen_port: int = 0,
        ports: dict[str, int] | None = None,
        net_ticktime: float = 60.0,
        net_setuptime: float = 7.0,
    ) -> None:
        self._parsed = parse_node_name(name)
        self.name = str(self._parsed)
        self.atom = Atom(self.name)
        self._cookie_arg = cookie
        self.cookie = ""
        self.hidden = hidden
        self.flags = int(DEFAULT_FLAGS) | (0 if hidden else int(DFlag.PUBLISHED))
        self.epmd_port = epmd_port if epmd_port is not None else epmd_port_from_env()
        self.use_epmd = use_epmd
        self.embedded_epmd = embedded_epmd
        self._listen_host = listen_host
        self._listen_port = listen_port
        self._ports = {str(k): v for k, v in (ports or {}).items()}
        self.net_ticktime = net_ticktime
        self.net_setuptime = net_setuptime
        self.creation = 0
        self.port = 0
        self._runtime: Runtime | None = None
        self._server: asyncio.AbstractServer | None = None
        self._registration: Registration | None = None
        self._epmd_server: EpmdServer | None = None
        self._peers: dict[Atom, PeerConnection] = {}
        self._pending: dict[Atom, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handshakes: set[DistProtocol] = set()
        self._node_monitors: list[Callable[[Atom, bool, Any], None]] = []
        self._stopped: asyncio.Event | None = None
        self.router = NodeRouter(self)
        self._spawner = Spawner(self)
        self._rex: Rex | None = None
        self._pg_scopes: dict[Atom, PgScope] = {}

    # -- lifecycle --------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        """The node's process runtime (:class:`python_actors.Runtime`)."""
        if self._runtime is None:
            raise NodeNotRunning(f"node {self.name} is not started")
        return self._runtime

    @property
    def running(self) -> bool:
        return self._runtime is not None and self._stopped is not None and not self._stopped.is_set()

    async def start(self) -> Node:
        """Listen, register with EPMD, start the system processes."""
        loop = asyncio.get_running_loop()
        self.cookie = resolve_cookie(self._cookie_arg)
        self._stopped = asyncio.Event()
        host = self._listen_host or self._parsed.resolve()
        try:
            self._server = await loop.create_server(self._accepted, host, self._listen_port)
            self.port = int(self._server.sockets[0].getsockname()[1])
            if self.use_epmd:
                if self.embedded_epmd:
                    # Loopback for registration, plus the node's address so that
                    # nodes on other hosts can look us up (never every interface).
                    epmd_hosts = ["127.0.0.1"] + ([host] if not host.startswith("127.") else [])
                    self._epmd_server = await ensure_epmd(epmd_hosts, self.epmd_port)
                self._registration = await register(
                    self._parsed.alive, self.port, epmd_port=self.epmd_port, hidden=self.hidden
                )
                self.creation = self._registration.creation
            else:
                self.creation = secrets.randbelow(0xFFFFFFF0) + 4
            self._runtime = Runtime(self.atom, self.creation, router=self.router)
            await self._runtime.__aenter__()
            self._runtime.service(
                "tick_guard",
                lambda: TickGuard(loop, lambda: [p for p in self._peers.values() if p.open], self.net_ticktime),
            )
            await NetKernel.start(self, runtime=self._runtime, name="net_kernel")
            self._rex = Rex(self)
            await self._rex.start_process()
        except BaseException:
            await self.stop()
            raise
        log.info("node %s up on port %d (creation %d)", self.name, self.port, self.creation)
        return self

    async def stop(self) -> None:
        """Stop every process (``terminate`` runs), close connections, unregister."""
        if self._stopped is not None:
            self._stopped.set()
        if self._runtime is not None:
            await self._runtime.stop()
        for peer in list(self._peers.values()):
            peer.close(Atom("shutdown"))
        for proto in list(self._handshakes):
            proto.abort()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._registration is not None:
            await self._registration.close()
            self._registration = None
        if self._epmd_server is not None:
            await self._epmd_server.stop()
            self._epmd_server = None

    async def __aenter__(self) -> Node:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Wait until :meth:`stop` is called (by a signal handler, say)."""
        if self._stopped is None:
            raise NodeNotRunning(f"node {self.name} is not started")
        await self._stopped.wait()

    def _own(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connections ------------------------------------------------------------------

    def nodes(self) -> list[str]:
        """``nodes(connected)``: the names of the nodes we have a connection to."""
        return [n.name for n, p in self._peers.items() if p.open]

    def is_connected(self, node: str | Atom) -> bool:
        peer = self._peers.get(as_atom(node))
        return peer is not None and peer.open

    async def connect(self, node: str | Atom) -> bool:
        """``net_kernel:connect_node/1``: True once connected, False if it failed."""
        try:
            await self._connection(as_atom(node))
        except ConnectError as exc:
            log.info("connect to %s failed: %s", node, exc)
            return False
        return True

    async def _connection(self, node: Atom) -> PeerConnection:
        if node == self.atom:
            raise ConnectError(node.name, "that is this node")
        peer = self._peers.get(node)
        if peer is not None and peer.open:
            return peer
        pending = self._pending.get(node) or self._start_connect(node)
        return await asyncio.shield(pending.done)

    def disconnect(self, node: str | Atom) -> bool:
        """``erlang:disconnect_node/1``."""
        peer = self._peers.get(as_atom(node))
        if peer is None or not peer.open:
            return False
        peer.close(Atom("disconnect"))
        return True

    def _emit(self, node: Atom, make: Callable[[PeerConnection], bytes | None]) -> None:
        """Write a signal for ``node`` now, or queue it behind the connection set-up."""
        peer = self._peers.get(node)
        if peer is not None and peer.open:
            data = make(peer)
            if data:
                peer.write(data)
            return
        if self._runtime is None or (self._stopped is not None and self._stopped.is_set()):
            return
        if node == self.atom:
            return
        pending = self._pending.get(node) or self._start_connect(node)
        pending.queue.append(make)

    def _start_connect(self, node: Atom) -> _Pending:
        pending = _Pending()
        self._pending[node] = pending
        pending.task = self._own(self._dial(node, pending), f"dial {node.name}")
        return pending

    async def _dial(self, node: Atom, pending: _Pending) -> None:
        try:
            peer = await self._dial_once(node, pending)
        except BaseException as exc:
            if self._pending.get(node) is pending:
                del self._pending[node]
            pending.queue.clear()
            if not pending.done.done():
                err = exc if isinstance(exc, ConnectError) else ConnectError(node.name, repr(exc))
                pending.done.set_exception(err)
                pending.done.exception()  # retrieved: callers may have gone away
            self._node_lost(node)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not pending.done.done():
            pending.done.set_result(peer)

    async def _dial_once(self, node: Atom, pending: _Pending) -> PeerConnection:
        target = parse_node_name(node.name)
        port = self._ports.get(node.name)
        if port is None:
            if not self.use_epmd:
                raise UnknownNode(node.name, "no port known for it (EPMD-less mode)")
            try:
                info = await port_please(target.alive, target.resolve(), epmd_port=self.epmd_port)
            except EpmdError as exc:
                raise ConnectError(node.name, f"EPMD on {target.host}: {exc}") from exc
            except OSError as exc:
                raise ConnectError(node.name, f"cannot resolve {target.host}: {exc}") from exc
            if info is None:
                raise UnknownNode(node.name)
            port = info.port
        if pending.superseded:
            return await self._wait_superseding(node, pending)
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(DistProtocol, target.resolve(), port), self.net_setuptime
            )
        except (TimeoutError, OSError) as exc:
            if pending.superseded:
                return await self._wait_superseding(node, pending)
            raise ConnectError(node.name, f"cannot reach port {port}: {exc!r}") from exc
        if pending.superseded:
            protocol.abort()
            return await self._wait_superseding(node, pending)
        self._handshakes.add(protocol)
        pending.protocol = protocol
        try:
            hs = ClientHandshake(
                self.name, self.cookie, flags=self.flags, creation=self.creation, peer_name=node.name
            )
            complete, _ = await run_client(protocol, hs, peer=node.name, setuptime=self.net_setuptime)
        except (SimultaneousConnect, HandshakeFailed) as exc:
            protocol.abort()
            if pending.superseded or isinstance(exc, SimultaneousConnect):
                # The peer's own attempt wins (it said ``nok``, or we said
                # ``ok_simultaneous`` to it and dropped this one): wait for it.
                return await self._wait_superseding(node, pending)
            raise
        except BaseException:
            protocol.abort()
            raise
        finally:
            self._handshakes.discard(protocol)
            pending.protocol = None
        return self._add_peer(protocol, complete.peer_name, complete.peer_creation, int(complete.flags), complete.leftover)

    async def _wait_superseding(self, node: Atom, pending: _Pending) -> PeerConnection:
        """Wait for the peer's connection that won a simultaneous connect."""
        try:
            return await asyncio.wait_for(asyncio.shield(pending.done), self.net_setuptime * 2)
        except TimeoutError:
            raise ConnectError(node.name, "simultaneous connect: the peer's attempt did not complete") from None

    def _accepted(self) -> DistProtocol:
        proto = _AcceptedProtocol(self)
        return proto

    async def _accept(self, protocol: DistProtocol) -> None:
        self._handshakes.add(protocol)
        hs = ServerHandshake(self.name, self.cookie, flags=self.flags, creation=self.creation)
        claimed: list[Atom] = []  # the node whose pending entry this handshake owns

        def decide(event: NameReceived) -> str:
            status = self._decide(event)
            if status in ("ok", "ok_simultaneous"):
                claimed.append(Atom(event.name))
            return status

        async def drop_old(name: str) -> None:
            claimed.append(Atom(name))
            await self._drop_old(name)

        try:
            complete = await run_server(
                protocol, hs, decide=decide, drop_old=drop_old, setuptime=self.net_setuptime
            )
        except SimultaneousConnect as exc:
            log.debug("simultaneous connect from %s: ours wins", exc.node)
            protocol.abort()
            return
        except HandshakeFailed as exc:
            log.warning("refused connection from %s: %s", exc.node, exc.reason)
            protocol.abort()
            for name in claimed:
                self._accept_failed(name, exc)
            return
        except BaseException as exc:
            protocol.abort()
            for name in claimed:
                self._accept_failed(name, ConnectError(name.name, repr(exc)))
            raise
        finally:
            self._handshakes.discard(protocol)
        peer = self._add_peer(protocol, complete.peer_name, complete.peer_creation, int(complete.flags), complete.leftover)
        pending = self._pending.get(peer.name)
        if pending is not None and not pending.done.done():
            pending.done.set_result(peer)

    def _decide(self, event: NameReceived) -> str:
        """The status for an inbound handshake from ``event.name`` (``dist_util``'s
        ``is_allowed``/``mark_pending``): a node being set up either way is pending,
        so a signal to it waits for that handshake instead of dialling again."""
        if event.name_me:
            return "not_allowed"
        name = Atom(event.name)
        peer = self._peers.get(name)
        if peer is not None and peer.open:
            return "alive"
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = _Pending()
            pending.accepting = True
            return "ok"
        if pending.accepting:
            return "nok"  # another inbound handshake from that name is already running
        status = simultaneous_status(self.name, event.name)
        if status == "ok_simultaneous":
            # Its attempt wins: abandon ours at once, as net_kernel kills its set-up
            # process, so the peer never sees our attempt as a second connection.
            pending.accepting = True
            pending.superseded = True
            if pending.protocol is not None:
                pending.protocol.abort()
        return status

    async def _drop_old(self, name: str) -> None:
        atom = Atom(name)
        if atom not in self._pending:
            pending = self._pending[atom] = _Pending()
            pending.accepting = True
        peer = self._peers.get(atom)
        if peer is not None:
            peer.close(Atom("peer_restarted"))

    def _accept_failed(self, name: Atom, exc: ConnectError) -> None:
        """An inbound handshake that owned ``name``'s pending entry failed."""
        pending = self._pending.get(name)
        if pending is None or not pending.accepting:
            return
        if pending.task is not None:
            # Our superseded dial waits on it and cleans up.
            if not pending.done.done():
                pending.done.set_exception(exc)
                pending.done.exception()
            return
        del self._pending[name]
        pending.queue.clear()
        if not pending.done.done():
            pending.done.set_exception(exc)
            pending.done.exception()
        if self.running:
            self._node_lost(name)

    def _add_peer(self, protocol: DistProtocol, name: str, creation: int, flags: int, leftover: bytes) -> PeerConnection:
        atom = Atom(name)
        peer = PeerConnection(
            protocol,
            name=atom,
            creation=creation,
            flags=flags,
            dispatch=self.router.dispatch,
            on_close=self._peer_closed,
            ticktime=self.net_ticktime,
        )
        old = self._peers.get(atom)
        if old is not None and old.open:
            old.close(Atom("replaced"))
        self._peers[atom] = peer
        pending = self._pending.pop(atom, None)
        if pending is not None:
            for make in pending.queue:
                try:
                    data = make(peer)
                except Exception as exc:  # its sender is gone; BEAM would have said badarg
                    log.warning("dropping a signal to %s queued during connection set-up: %r", name, exc)
                    continue
                if data:
                    peer.write(data)
            pending.queue.clear()
            if not pending.done.done():
                pending.done.set_result(peer)
        peer.start(leftover)
        log.info("connected to %s", name)
        self._notify(atom, True, None)
        return peer

    def _peer_closed(self, peer: PeerConnection, reason: Any) -> None:
        if self._peers.get(peer.name) is peer:
            del self._peers[peer.name]
        log.info("nodedown %s (%r)", peer.name.name, reason)
        self._node_lost(peer.name)
        self._notify(peer.name, False, reason)

    def _node_lost(self, node: Atom) -> None:
        """No connection to ``node`` (it went down, or could not be reached): every link,
        monitor and pending spawn request towards it fails with ``noconnection``."""
        if self._runtime is not None:
            self._runtime.node_down(node)
        self._spawner.node_down(node)

    # -- node monitoring --------------------------------------------------------------

    def monitor_nodes(self, callback: Callable[[Atom, bool, Any], None]) -> Callable[[], None]:
        """Call ``callback(node, up, reason)`` on every nodeup/nodedown; returns an unsubscribe."""
        self._node_monitors.append(callback)
        return lambda: self._node_monitors.remove(callback)

    def _notify(self, node: Atom, up: bool, reason: Any) -> None:
        for cb in list(self._node_monitors):
            try:
                cb(node, up, reason)
            except Exception:  # a subscriber's bug must not break the connection
                log.exception("node monitor callback failed")

    async def wait_nodedown(self, node: str | Atom, timeout: float | None = None) -> Any:
        """Wait until the connection to ``node`` goes down; returns the reason."""
        peer = self._peers.get(as_atom(node))
        if peer is None or not peer.open:
            return None
        return await asyncio.wait_for(asyncio.shield(peer.closed), timeout)

    # -- processes and messages -------------------------------------------------------

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Pid:
        """``spawn``: run ``await fn(proc, *args)`` as a new process of this node."""
        return self.runtime.spawn(fn, *args)

    @contextlib.asynccontextmanager
    async def process(self, name: str | Atom | None = None) -> AsyncIterator[Process]:
        """A process for the calling code: a pid and mailbox, optionally registered.

        ``async with node.process("inbox") as p: msg = await p.receive(timeout=5)``
        """
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Process] = loop.create_future()
        finished: asyncio.Future[None] = loop.create_future()

        async def body(proc: Process) -> None:
            if name is not None:
                proc.register(name)
            ready.set_result(proc)
            await finished

        pid = self.runtime.spawn(body)
        try:
            proc = await ready
        except BaseException:
            self.runtime.exit(pid, Atom("kill"))
            raise
        try:
            yield proc
        finally:
            if not finished.done():
                finished.set_result(None)
            with contextlib.suppress(Exception):
                await self.runtime.join(pid, 5)

    def register(self, name: str | Atom, pid: Pid) -> None:
        """``register/2`` on this node."""
        self.runtime.register(name, pid)

    def whereis(self, name: str | Atom) -> Pid | None:
        """``whereis/1`` on this node."""
        return self.runtime.whereis(name)

    @staticmethod
    def _dest(dest: Any) -> Any:
        if type(dest) is tuple and len(dest) == 2 and type(dest[0]) in (str, Atom):
            return (as_atom(dest[0]), as_atom(dest[1]))
        if type(dest) is str:
            return Atom(dest)
        return dest

    async def send(self, dest: Any, message: Any) -> None:
        """``erlang:send/2``: a pid, a local name, or ``(name, node)``; connects if needed."""
        self.runtime.send(self._dest(dest), message)

    async def call(self, dest: Any, request: Any, timeout: float | None = 5.0, *, via: str | None = None) -> Any:
        """``gen_server:call/3`` (``GenServer.call``): raises :class:`python_actors.CallError`.

        ``dest``: a pid, a local name, ``(name, node)``, ``("global", Name)`` or
        ``("via", Module, Name)``; the last two are resolved by asking the BEAM node
        ``via`` (default: the only connected node).
        """
        if is_global_or_via(dest):
            found = await resolve_name(self, dest, via, timeout)
            if found is None:
                from python_actors import CallError

                wire = Atom("infinity") if timeout is None else int(timeout * 1000)
                raise CallError(Atom("noproc"), dest, request, wire)
            dest = found
        target = self._dest(dest)
        node = target.node if type(target) is Pid else target[1] if type(target) is tuple else None
        if node is not None and node != self.atom:
            await self._connection_or_nodedown(node, target, request, timeout)
        return await gen_call(target, request, timeout, runtime=self.runtime)

    async def _connection_or_nodedown(self, node: Atom, target: Any, request: Any, timeout: float | None) -> None:
        try:
            await self._connection(node)
        except ConnectError:
            from python_actors import CallError

            wire_timeout = Atom("infinity") if timeout is None else int(timeout * 1000)
            raise CallError((Atom("nodedown"), node), target, request, wire_timeout) from None

    async def cast(self, dest: Any, request: Any) -> None:
        """``gen_server:cast/2``: never fails."""
        self.runtime.cast(self._dest(dest), request)

    async def ping(self, node: str | Atom, timeout: float = 5.0) -> bool:
        """``net_adm:ping/1``: True for ``pong``, False for ``pang``."""
        node = as_atom(node)
        if node == self.atom:
            return True
        try:
            await asyncio.wait_for(self._connection(node), timeout)
            reply = await gen_call((Atom("net_kernel"), node), (_IS_AUTH, self.atom), timeout, runtime=self.runtime)
        except Exception as exc:
            log.debug("ping %s: %r", node.name, exc)
            return False
        return bool(reply == _YES)

    async def rpc(self, node: str | Atom, module: str | Atom, function: str | Atom, args: list[Any], timeout: float | None = 5.0) -> Any:
        """``rpc:call/5`` through the peer's ``rex``: the value, or raises :class:`RpcError`.

        Exceptions on the remote side come back as ``RpcError(('EXIT', ...))``;
        an unreachable node as ``RpcError(nodedown)``; no answer in time as
        ``RpcError(timeout)``.
        """
        node = as_atom(node)
        try:
            await self._connection(node)
        except ConnectError as exc:
            raise RpcError(Atom("nodedown")) from exc
        request = (_CALL, as_atom(module), as_atom(function), list(args), _USER)
        from python_actors import CallError

        try:
            result = await gen_call((Atom("rex"), node), request, timeout, runtime=self.runtime)
        except CallError as exc:
            why = exc.why
            if why == Atom("timeout"):
                raise RpcError(Atom("timeout")) from None
            if isinstance(why, tuple) and why and why[0] == _NODEDOWN:
                raise RpcError(Atom("nodedown")) from None
            raise RpcError(why) from None
        if type(result) is tuple and len(result) == 2 and result[0] == _BADRPC:
            raise RpcError(result[1])
        return result

    # -- process groups -----------------------------------------------------------------

    async def pg(self, scope: str | Atom = "pg") -> PgScope:
        """The node's ``pg`` scope ``scope`` (the default scope is ``pg``), started on
        first use as ``pg:start_link(Scope)`` would: see :mod:`bridge.pg`."""
        name = Atom(str(scope))
        found = self._pg_scopes.get(name)
        if found is None:
            found = self._pg_scopes[name] = PgScope(self, name)
            try:
                await found.start()
            except BaseException:
                del self._pg_scopes[name]
                raise
            self.runtime.service(f"pg:{name.name}", lambda: found)
        return found

    # -- what BEAM may run here ---------------------------------------------------------

    def allow_rpc(self, module: str, function: str, fn: Callable[..., Any]) -> None:
        """Let BEAM run ``fn`` as ``rpc:call(ThisNode, module, function, Args)`` / ``erpc:call``."""
        self._spawner.allow_rpc(module, function, fn)

    def allow_spawn(
        self,
        module: str | Atom,
        function: str | Atom | Callable[..., Any],
        target: Callable[..., Any] | None = None,
    ) -> None:
        """Let BEAM start ``target`` here with ``spawn_request(ThisNode, module, function, Args)``
        (and ``spawn/4``, ``spawn_link/4``, ``spawn_monitor/4``).

        ``target`` is a coroutine function run as ``await target(proc, *Args)``, or a
        :class:`python_actors.GenServer` subclass started with ``init(Arg)`` (the single
        argument, or the list when there are several). With two arguments,
        ``allow_spawn("counter", Counter)``, the function is ``start_link``: that is
        what ``beam_bridge:start_link(Node, counter, Args)`` and ``PyChild`` start
        under an Erlang or Elixir supervisor.
        """
        if target is None:
            if isinstance(function, (str, Atom)):
                raise TypeError("allow_spawn(module, function, target) or allow_spawn(name, target)")
            target, function = function, "start_link"
        self._spawner.allow_spawn(module, str(function), target)


class _AcceptedProtocol(DistProtocol):
    """An inbound connection: starts the acceptor's handshake when the socket is up."""

    def __init__(self, node: Node) -> None:
        super().__init__()
        self._node = node

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._node._own(self._node._accept(self), "accept")
