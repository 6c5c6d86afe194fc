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
BEAM's auto-connect does) or accepted from BEAM; :mod:`bridge.connections` keeps
that bookkeeping (simultaneous connects, the handshake cap, replacing a restarted
peer only once it has proved the cookie). When a connection ends, every link and
monitor towards that node fires with ``noconnection`` and ``nodedown`` subscribers
are told. ``send``, ``cast`` and ``call`` wait while a connection is busy (see
docs/transport.md).

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
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dist_proto.etf import remap
from dist_proto.flags import DEFAULT_FLAGS, DFlag
from dist_proto.mapping import Mapping as TermMapping
from dist_proto.mapping import keyword_list
from dist_proto.terms import Atom, Pid, Reference
from python_actors import CallError as ActorCallError
from python_actors import Process, Runtime
from python_actors import call as gen_call

from . import global_names as global_api
from .connections import DEFAULT_MAX_HANDSHAKES, DEFAULT_MAX_QUEUED_SIGNALS, Connections
from .cookie import resolve_cookie
from .epmd_client import Registration, epmd_port_from_env, register
from .epmd_server import EpmdServer, ensure_epmd
from .errors import CallError, ConnectError, CookieRejected, NameMismatch, NodeNotRunning, RpcError
from .global_service import GlobalService
from .introspection import install as install_introspection
from .naming import NodeName, NodeNameError, as_atom, parse_node_name
from .peer import DEFAULT_BUSY_LIMIT, PeerConnection
from .pg import PgScope
from .registry import is_global_or_via, resolve_name
from .routing import NodeRouter
from .system_processes import Spawner, start_system_supervisor
from .tick_guard import TickGuard
from .tls import TlsDist, configure_tls

__all__ = ["Node"]

log = logging.getLogger("bridge.node")

_YES = Atom("yes")
_IS_AUTH = Atom("is_auth")
_CALL = Atom("call")
_USER = Atom("user")
_BADRPC = Atom("badrpc")
_NODEUP = Atom("nodeup")
_NODEDOWN = Atom("nodedown")
_DEST_SHAPES = (
    "a destination is a Pid, a registered name (str or Atom), an alias Reference"
    " or a (name, 'alive@host') tuple"
)


def _wire_timeout(timeout: float | None) -> Any:
    """The timeout as ``gen_server:call`` reports it (milliseconds or ``infinity``)."""
    return Atom("infinity") if timeout is None else int(timeout * 1000)




class Node:
    """A hidden node named ``name`` (``alive@host``), an async context manager.

    ``cookie``: the argument, else ``$BEAM_BRIDGE_COOKIE``, else ``~/.erlang.cookie``.
    ``epmd_port``: where EPMD listens (default ``$ERL_EPMD_PORT`` or 4369).
    ``embedded_epmd``: run an EPMD in this process if nothing listens on that port.
    ``use_epmd=False`` with ``listen_port`` and ``ports={node: port}``: EPMD-less mode.
    ``net_ticktime`` (seconds, default 60, as ``net_kernel``) and ``net_setuptime`` (7).
    ``hidden=False`` advertises ``DFLAG_PUBLISHED`` (visible mode; not the default).
    ``introspection=False`` leaves out the read-only answers to OTP's tools (etop,
    ``rpc`` of ``erlang:process_info`` ...; see :mod:`bridge.introspection`).
    ``busy_limit`` (bytes, default 1 MiB as ``dist_buf_busy_limit``): above it a
    connection is busy and ``send``/``cast``/``call`` wait. ``max_handshakes``
    (64): inbound handshakes at once. ``max_queued_signals`` (10 000): signals
    queued for a node being connected. ``max_reassembly`` (64 MiB): bytes of
    fragmented messages under reassembly per connection. See docs/transport.md.
    ``proto_dist="inet_tls"`` runs distribution over TLS (see :mod:`bridge.tls`), set up
    from ``ssl_dist_optfile`` (OTP's file), ``ssl_dist_opt`` (``erl``'s
    ``-ssl_dist_opt`` pairs) or ``ssl_context=(server_context, client_context)``.
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
        introspection: bool = True,
        busy_limit: int = DEFAULT_BUSY_LIMIT,
        max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
        max_queued_signals: int = DEFAULT_MAX_QUEUED_SIGNALS,
        max_reassembly: int | None = None,
        proto_dist: str = "inet_tcp",
        ssl_dist_optfile: str | Path | None = None,
        ssl_dist_opt: Sequence[str] | Mapping[str, str] | None = None,
        ssl_context: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
        mapping: TermMapping | None = None,
    ) -> None:
        if mapping is not None and not isinstance(mapping, TermMapping):
            raise TypeError(f"mapping must be a dist_proto.Mapping, not {type(mapping).__name__}")
        self._parsed = parse_node_name(name)
        #: codec options for every message this node receives from BEAM (and the
        #: dataclasses it may send as structs): see docs/mapping.md. None: lossless.
        self.mapping: TermMapping | None = mapping
        self.proto_dist = proto_dist
        #: TLS distribution (``inet_tls``) or None for plain TCP
        self.tls: TlsDist | None = configure_tls(
            proto_dist, ssl_dist_optfile=ssl_dist_optfile, ssl_dist_opt=ssl_dist_opt, ssl_context=ssl_context
        )
        #: the handshake's length header: 2 bytes on TCP, 4 with inet_tls_dist
        self.handshake_header = 2 if self.tls is None else 4
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
        self._registration: Registration | None = None
        self._epmd_server: EpmdServer | None = None
        self._conns = Connections(
            self,
            max_handshakes=max_handshakes,
            max_queued_signals=max_queued_signals,
            busy_limit=busy_limit,
            max_reassembly=max_reassembly,
        )
        self._peers: dict[Atom, PeerConnection] = self._conns.peers
        self._tasks: set[asyncio.Task[Any]] = set()
        self._node_monitors: list[Callable[[Atom, bool, Any], None]] = []
        self._stopped: asyncio.Event | None = None
        self.router = NodeRouter(self)
        self._spawner = Spawner(self)
        self._pg_scopes: dict[Atom, PgScope] = {}
        self._introspection = introspection
        #: the node's ``global_name_server`` (visible mode only; see :mod:`bridge.global_server`)
        self.global_service: GlobalService | None = None if hidden else GlobalService(self)

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
        self.cookie = resolve_cookie(self._cookie_arg)
        self._stopped = asyncio.Event()
        host = self._listen_host or self._parsed.resolve()
        try:
            self.port = await self._conns.listen(host, self._listen_port)
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
                lambda: TickGuard(
                    asyncio.get_running_loop(),
                    lambda: [p for p in self._peers.values() if p.open],
                    self.net_ticktime,
                ),
            )
            await start_system_supervisor(self)
            if self._introspection:
                install_introspection(self)
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
        await self._conns.close()
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

    def visible_nodes(self) -> list[str]:
        """``nodes()``: the connected nodes that are not hidden."""
        return [n.name for n, p in self._peers.items() if p.open and p.flags & DFlag.PUBLISHED]

    def is_visible(self, node: str | Atom) -> bool:
        """Connected to ``node`` and it is not hidden."""
        peer = self._peers.get(as_atom(node))
        return peer is not None and peer.open and bool(peer.flags & DFlag.PUBLISHED)

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
        return await self._conns.connection(node)

    def disconnect(self, node: str | Atom) -> bool:
        """``erlang:disconnect_node/1``."""
        peer = self._peers.get(as_atom(node))
        if peer is None or not peer.open:
            return False
        peer.close(Atom("disconnect"))
        return True

    def _emit(self, node: Atom, make: Callable[[PeerConnection], bytes | None]) -> None:
        """Write a signal for ``node`` now, or queue it behind the connection set-up."""
        self._conns.emit(node, make)

    @property
    def parsed_name(self) -> NodeName:
        """This node's name, split (``alive``, ``host``, ``is_long``)."""
        return self._parsed

    def known_port(self, node: str) -> int | None:
        """The port given for ``node`` in ``ports=`` (EPMD-less mode), if any."""
        return self._ports.get(node)

    def counters(self) -> dict[str, int]:
        """Transport counters: ``dropped_signals``, ``unsent_frames``, ``unsent_bytes``,
        ``refused_handshakes``, ``accept_errors``, ``failed_handshakes``,
        ``dispatch_errors``, ``handshakes_in_progress`` (see docs/transport.md)."""
        counts = dict(self._conns.counters)
        counts["handshakes_in_progress"] = self._conns.handshakes_in_progress
        for peer in self._peers.values():
            counts["dispatch_errors"] += peer.dispatch_errors
        return counts

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
        """A destination in the runtime's form; ValueError names the shapes expected."""
        t = type(dest)
        if t is Pid or t is Reference:
            return dest
        if t is str or t is Atom:
            if not dest:
                raise ValueError(_DEST_SHAPES + ", not an empty name")
            return as_atom(dest)
        if t is tuple and len(dest) == 2 and type(dest[0]) in (str, Atom) and type(dest[1]) in (str, Atom):
            name, node = dest
            if not name:
                raise ValueError(_DEST_SHAPES + f"; {dest!r} has an empty name")
            if "@" not in str(node):
                raise ValueError(f"{_DEST_SHAPES}; in {dest!r} the node {str(node)!r} is not alive@host")
            try:
                parse_node_name(str(node))
            except NodeNameError as exc:
                raise ValueError(f"{_DEST_SHAPES}; in {dest!r}: {exc}") from None
            return (as_atom(name), as_atom(node))
        raise ValueError(f"{_DEST_SHAPES}, not {dest!r}")

    @staticmethod
    def _node_of(target: Any) -> Atom | None:
        if type(target) is Pid:
            return target.node
        if type(target) is tuple:
            node: Atom = target[1]
            return node
        if type(target) is Reference:
            return target.node
        return None

    def _ready_to_write(self, node: Atom | None) -> bool:
        """True when a signal to ``node`` can go now: this node, or an open connection
        that is not busy (what :meth:`_writable` would return at once)."""
        if node is None or node == self.atom:
            return True
        peer = self._peers.get(node)
        return peer is not None and peer.open and not peer.busy

    async def _writable(self, node: Atom | None, *, connect: bool = False) -> bool:
        """Wait while ``node``'s connection is busy (a sender suspended on a busy
        distribution port, as BEAM suspends it). False if the connection died while
        we waited: the signal is dropped, as BEAM drops it.

        While the connection is being set up the signal is queued behind it and we
        do not wait, unless that queue is full or ``connect`` asks for the
        connection to be up (``call``, ``rpc``)."""
        if node is None or node == self.atom:
            return True
        peer = self._peers.get(node)
        if peer is None or not peer.open:
            if not connect and not self._conns.queue_full(node):
                return True
            peer = await self._connection(node)
        if peer.busy:
            await peer.wait_writable()
            return peer.open
        return True

    async def send(self, dest: Any, message: Any) -> None:
        """``erlang:send/2``: a pid, a local name, or ``(name, node)``; connects if needed.

        Waits while the connection is busy (its output above ``busy_limit``), or
        while it is being set up with ``max_queued_signals`` already waiting. Never
        fails for an unreachable node: the message is dropped, as BEAM drops it."""
        target = self._dest(dest)
        try:
            if not await self._writable(self._node_of(target)):
                return
        except ConnectError as exc:
            log.debug("send to %r dropped: %s", dest, exc)
            return
        self.runtime.send(target, message)

    async def call(
        self, dest: Any, request: Any, timeout: float | None = 5.0, *, via: str | None = None,
        mapping: TermMapping | None = None,
    ) -> Any:
        """``gen_server:call/3`` (``GenServer.call``): raises :class:`bridge.CallError`.

        ``dest``: a pid, a local name, ``(name, node)``, ``("global", Name)`` or
        ``("via", Module, Name)``; the last two are resolved by asking the BEAM node
        ``via`` (default: the only connected node). ``timeout`` (seconds) covers
        everything: connecting, waiting for a busy connection, and the reply.
        ``mapping`` gives the reply as that mapping decodes it instead of the node's
        (:func:`dist_proto.etf.remap`; see docs/mapping.md).
        """
        reply = await self._call(dest, request, timeout, via)
        return reply if mapping is None else remap(reply, self.mapping, mapping)

    async def _call(self, dest: Any, request: Any, timeout: float | None, via: str | None) -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        if is_global_or_via(dest):
            found = await resolve_name(self, dest, via, timeout)
            if found is None:
                raise CallError(Atom("noproc"), dest, request, _wire_timeout(timeout))
            dest = found
        target = self._dest(dest)
        node = self._node_of(target)
        if not self._ready_to_write(node):  # else no wait, and no task for wait_for
            try:
                await asyncio.wait_for(self._writable(node, connect=True), timeout)
            except TimeoutError:
                raise CallError(Atom("timeout"), target, request, _wire_timeout(timeout)) from None
            except ConnectError as exc:
                raise CallError((_NODEDOWN, node), target, request, _wire_timeout(timeout)) from exc
        left = None if timeout is None else max(0.0, timeout - (loop.time() - started))
        try:
            return await gen_call(target, request, left, runtime=self.runtime)
        except ActorCallError as exc:
            if isinstance(exc, CallError):
                raise
            raise CallError(exc.why, target, request, _wire_timeout(timeout)) from None

    async def cast(self, dest: Any, request: Any) -> None:
        """``gen_server:cast/2``: never fails; waits like :meth:`send`."""
        target = self._dest(dest)
        try:
            if not await self._writable(self._node_of(target)):
                return
        except ConnectError as exc:
            log.debug("cast to %r dropped: %s", dest, exc)
            return
        self.runtime.cast(target, request)

    async def ping(self, node: str | Atom, timeout: float = 5.0) -> bool:
        """``net_adm:ping/1``: True for ``pong``, False for ``pang``.

        A ``pang`` because the peer rejected our cookie (or our kind of name) is
        logged at WARNING with the reason; other failures at DEBUG."""
        node = as_atom(node)
        if node == self.atom:
            return True
        try:
            await asyncio.wait_for(self._connection(node), timeout)
            reply = await gen_call((Atom("net_kernel"), node), (_IS_AUTH, self.atom), timeout, runtime=self.runtime)
        except (CookieRejected, NameMismatch) as exc:
            log.warning("ping %s: pang: %s", node.name, exc)
            return False
        except Exception as exc:
            log.debug("ping %s: %r", node.name, exc)
            return False
        return bool(reply == _YES)

    async def rpc(
        self, node: str | Atom, module: str | Atom, function: str | Atom, args: list[Any],
        timeout: float | None = 5.0, *, kwargs: dict[str, Any] | None = None,
        mapping: TermMapping | None = None,
    ) -> Any:
        """``rpc:call/5`` through the peer's ``rex``: the value, or raises :class:`RpcError`.

        ``kwargs`` go as a keyword list appended to ``args`` (``[timeout: 5]``);
        ``mapping`` gives the value as that mapping decodes it (see :meth:`call`).

        Exceptions on the remote side come back as ``RpcError(('EXIT', ...))``;
        an unreachable node as ``RpcError(nodedown)`` whose ``__cause__`` (and
        message) says why, a rejected cookie included; no answer in time (connecting
        included) as ``RpcError(timeout)``.
        """
        node = as_atom(node)
        loop = asyncio.get_running_loop()
        started = loop.time()
        if not self._ready_to_write(node):
            try:
                await asyncio.wait_for(self._writable(node, connect=True), timeout)
            except TimeoutError:
                raise RpcError(Atom("timeout"), f"no connection to {node.name} within {timeout:g}s") from None
            except ConnectError as exc:
                raise RpcError(Atom("nodedown"), str(exc)) from exc
        call_args = list(args) if not kwargs else [*args, keyword_list(kwargs)]
        request = (_CALL, as_atom(module), as_atom(function), call_args, _USER)
        left = None if timeout is None else max(0.0, timeout - (loop.time() - started))
        try:
            result = await gen_call((Atom("rex"), node), request, left, runtime=self.runtime)
        except ActorCallError as exc:
            why = exc.why
            if why == Atom("timeout"):
                raise RpcError(Atom("timeout")) from None
            if isinstance(why, tuple) and why and why[0] == _NODEDOWN:
                raise RpcError(Atom("nodedown")) from None
            raise RpcError(why) from None
        if type(result) is tuple and len(result) == 2 and result[0] == _BADRPC:
            raise RpcError(result[1])
        return result if mapping is None else remap(result, self.mapping, mapping)

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

    # -- global names ---------------------------------------------------------------------

    async def global_register(self, name: Any, pid: Pid, *, method: str = "random_exit_name", via: str | None = None) -> bool:
        """``global:register_name/3`` (see :mod:`bridge.global_names`; ``via`` for a hidden node)."""
        return await global_api.register_name(self, name, pid, method=method, via=via)

    async def global_unregister(self, name: Any, *, via: str | None = None) -> None:
        """``global:unregister_name/1``."""
        await global_api.unregister_name(self, name, via=via)

    async def global_whereis(self, name: Any, *, via: str | None = None) -> Pid | None:
        """``global:whereis_name/1``: the pid or None."""
        return await global_api.whereis_name(self, name, via=via)

    async def global_send(self, name: Any, message: Any, *, via: str | None = None) -> Pid:
        """``global:send/2``."""
        return await global_api.send(self, name, message, via=via)

    async def global_names(self, *, via: str | None = None) -> list[Any]:
        """``global:registered_names/0``."""
        return await global_api.registered_names(self, via=via)

    async def global_sync(self, timeout: float | None = None) -> None:
        """``global:sync/0`` (visible mode; a hidden node has nothing to sync)."""
        await global_api.sync(self, timeout)

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

