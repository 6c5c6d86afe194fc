"""The connections of one node: listen, accept, dial, decide, replace (``net_kernel``'s part).

Theory of operation
-------------------
:class:`Connections` owns every :class:`~bridge.peer.PeerConnection` of a node, the
listening socket, and the connections being set up (``_Pending``: dialled by us,
or accepted and past the name check, with the signals queued for them). It is the
``net_kernel`` + ``dist_util`` bookkeeping of a BEAM node:

* **Auto-connect.** A signal to a node we have no connection to is queued and the
  node is dialled. The queue is bounded (``max_queued_signals``); a signal beyond
  it is dropped and counted, as are signals left when a set-up fails.
* **Simultaneous connects** are resolved as ``dist_util`` does: the attempt of the
  node with the greater name wins (``ok_simultaneous`` / ``nok``). Two inbound
  attempts claiming one name both go on, and the first to prove the cookie wins:
  an impostor holding a name cannot lock the real node out.
* **Nothing changes before the cookie is proved.** A peer that claims the name of a
  node we are connected to is answered ``alive``; whatever it answers, the existing
  connection stays up until the newcomer's challenge reply has verified, and only
  then is it replaced. A peer claiming the name of a node we are dialling does not
  stop our dial either: if it was an impostor, our dial completes as if it had
  never come.
* **Bounded set-up.** Every handshake has one deadline (``net_setuptime``), and at
  most ``max_handshakes`` inbound handshakes run at once; a connection beyond that
  is closed at once and counted. Accept errors (``EMFILE`` when the process is out
  of file descriptors) are logged once per episode, and accepting resumes after a
  short pause.
* **Names.** A short-named node (``py@host``) and a long-named node
  (``py@host.example.com``, ``py@127.0.0.1``) do not connect, as on BEAM; the
  attempt fails with :class:`~bridge.errors.NameMismatch` or, inbound, the socket
  is closed before any status is sent (which is what ``inet_tcp_dist`` does).

Counters (``Node.counters()``): ``dropped_signals`` (signals that never reached the
wire), ``unsent_frames`` / ``unsent_bytes`` (left in a connection's output when it
died), ``refused_handshakes`` (over the cap), ``accept_errors``,
``failed_handshakes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto.handshake import ClientHandshake, NameReceived, ServerHandshake, simultaneous_status
from dist_proto.terms import Atom

from .connect import run_client, run_server
from .epmd_client import EpmdError, port_please
from .errors import ConnectError, HandshakeFailed, NameMismatch, SimultaneousConnect, UnknownNode
from .naming import NodeName, parse_node_name
from .peer import DEFAULT_BUSY_LIMIT, DistProtocol, PeerConnection
from .tls import GuardedDistProtocol, TlsHandshakeFailed, guarded, peer_address

if TYPE_CHECKING:
    from .node import Node

__all__ = ["DEFAULT_MAX_HANDSHAKES", "DEFAULT_MAX_QUEUED_SIGNALS", "Connections", "names_compatible"]

log = logging.getLogger("bridge.node")

#: Inbound handshakes allowed at once (each holds a socket for up to ``net_setuptime``).
DEFAULT_MAX_HANDSHAKES = 64
#: Signals queued for one node while its connection is being set up.
DEFAULT_MAX_QUEUED_SIGNALS = 10_000

_RESOURCE_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
_ACCEPT_RETRY_DELAY = 0.5

Make = Callable[[PeerConnection], "bytes | None"]


def names_compatible(ours: NodeName, theirs: NodeName) -> str | None:
    """None if a node named ``ours`` may connect to ``theirs``, else why not.

    BEAM's rule (``inet_tcp_dist:splitnode/3``): a long-named node accepts hosts
    with a dot or IP addresses; a short-named node refuses hosts with a dot.
    """
    if ours.is_long:
        if theirs.is_long:
            return None
        return (
            f"{ours} uses long names (-name) and {theirs} a short name (-sname):"
            " BEAM does not connect the two; name both nodes the same way"
        )
    if "." not in theirs.host:
        return None
    return (
        f"{ours} uses a short name (-sname) and {theirs} a long name (-name):"
        " BEAM does not connect the two; name both nodes the same way"
    )


class _Pending:
    """A connection being set up, with the signals queued for it.

    ``task`` is our dial, if any; ``accepting`` counts the inbound handshakes from
    that node in progress; ``superseded`` when that inbound attempt won a
    simultaneous connect (``ok_simultaneous``); ``waiting`` while our dial, told
    ``nok`` by the peer, waits for the inbound one."""

    __slots__ = ("queue", "task", "done", "accepting", "superseded", "waiting", "overflow")

    def __init__(self) -> None:
        self.queue: list[Make] = []
        self.task: asyncio.Task[Any] | None = None
        self.done: asyncio.Future[PeerConnection] = asyncio.get_running_loop().create_future()
        self.accepting = 0  # inbound handshakes from that node in progress
        self.superseded = False
        self.waiting = False
        self.overflow = 0


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.done.done():
        pending.done.set_exception(exc)
        pending.done.exception()  # retrieved: callers may have gone away


class Connections:
    """Every connection of ``node``. ``Node`` keeps the public API and delegates here."""

    def __init__(
        self,
        node: Node,
        *,
        max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
        max_queued_signals: int = DEFAULT_MAX_QUEUED_SIGNALS,
        busy_limit: int = DEFAULT_BUSY_LIMIT,
        max_reassembly: int | None = None,
    ) -> None:
        if max_handshakes < 1 or max_queued_signals < 0 or busy_limit < 1:
            raise ValueError("max_handshakes and busy_limit must be positive, max_queued_signals >= 0")
        self._node = node
        self.max_handshakes = max_handshakes
        self.max_queued_signals = max_queued_signals
        self.busy_limit = busy_limit
        self.max_reassembly = max_reassembly
        self.peers: dict[Atom, PeerConnection] = {}
        self.pending: dict[Atom, _Pending] = {}
        self._handshakes: set[DistProtocol] = set()
        self._inbound = 0
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._over_cap_logged = False
        self._accept_error_logged = False
        self.counters: dict[str, int] = dict.fromkeys(
            (
                "dropped_signals",
                "unsent_frames",
                "unsent_bytes",
                "refused_handshakes",
                "accept_errors",
                "failed_handshakes",
                "dispatch_errors",
            ),
            0,
        )

    # -- listening --------------------------------------------------------------------

    async def listen(self, host: str, port: int) -> int:
        """Bind and listen on ``host:port``; returns the port. Accepting runs in a task."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._listener = sock
        self._accept_task = self._node._own(self._accept_loop(sock), "accept loop")
        return int(sock.getsockname()[1])

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                if listener.fileno() < 0:
                    return  # closed by close()
                self.counters["accept_errors"] += 1
                if exc.errno not in _RESOURCE_ERRNOS:
                    log.debug("accept failed: %r", exc)  # the client gave up (ECONNABORTED...)
                    continue
                if not self._accept_error_logged:
                    self._accept_error_logged = True
                    log.error("%s cannot accept connections: %s; retrying (logged once)", self._node.name, exc)
                await asyncio.sleep(_ACCEPT_RETRY_DELAY)
                continue
            if self._accept_error_logged:
                log.warning("%s accepts connections again (%d accept errors)", self._node.name, self.counters["accept_errors"])
                self._accept_error_logged = False
            if self._inbound >= self.max_handshakes:
                self.counters["refused_handshakes"] += 1
                if not self._over_cap_logged:
                    self._over_cap_logged = True
                    log.warning(
                        "%s: %d handshakes in progress; refusing further connections until some finish",
                        self._node.name,
                        self._inbound,
                    )
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
                conn.close()
                continue
            self._inbound += 1
            try:
                factory = functools.partial(_Inbound, pause=self._node.tls is not None)
                _, protocol = await loop.connect_accepted_socket(factory, conn)
            except OSError as exc:
                self._inbound -= 1
                conn.close()
                log.debug("accepted socket failed at once: %r", exc)
                continue
            self._node._own(self._accept(protocol), "accept")

    async def close(self) -> None:
        """Stop accepting, close every connection and handshake."""
        if self._accept_task is not None:
            self._accept_task.cancel()
            await asyncio.wait([self._accept_task])
            self._accept_task = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for peer in list(self.peers.values()):
            peer.close(Atom("shutdown"))
        for proto in list(self._handshakes):
            proto.abort()

    # -- state --------------------------------------------------------------------------

    @property
    def handshakes_in_progress(self) -> int:
        """Inbound handshakes running now (at most ``max_handshakes``)."""
        return self._inbound

    def open_peer(self, node: Atom) -> PeerConnection | None:
        peer = self.peers.get(node)
        return peer if peer is not None and peer.open else None

    async def connection(self, node: Atom) -> PeerConnection:
        """The open connection to ``node``, dialling or waiting for its set-up."""
        if node == self._node.atom:
            raise ConnectError(node.name, "that is this node")
        peer = self.peers.get(node)
        if peer is not None and peer.open:
            return peer
        pending = self.pending.get(node) or self._start_connect(node)
        return await asyncio.shield(pending.done)

    def queue_full(self, node: Atom) -> bool:
        """True if signals for ``node`` wait for its connection and the queue is full."""
        pending = self.pending.get(node)
        return pending is not None and len(pending.queue) >= self.max_queued_signals

    def emit(self, node: Atom, make: Make) -> None:
        """Write a signal for ``node`` now, or queue it behind the connection set-up
        (never blocks: a full queue drops the signal and counts it)."""
        peer = self.peers.get(node)
        if peer is not None and peer.open:
            data = make(peer)
            if data:
                peer.write(data)
            return
        if not self._node.running or node == self._node.atom:
            return
        pending = self.pending.get(node) or self._start_connect(node)
        if len(pending.queue) >= self.max_queued_signals:
            self.counters["dropped_signals"] += 1
            pending.overflow += 1
            if pending.overflow == 1:
                log.warning(
                    "dropping signals to %s: %d already wait for its connection", node.name, len(pending.queue)
                )
            return
        pending.queue.append(make)

    def _drop_queue(self, node: Atom, pending: _Pending, why: str) -> None:
        lost = len(pending.queue)
        pending.queue.clear()
        if lost:
            self.counters["dropped_signals"] += lost
            log.warning("dropped %d signals queued for %s: %s", lost, node.name, why)

    # -- dialling -----------------------------------------------------------------------

    def _start_connect(self, node: Atom) -> _Pending:
        pending = _Pending()
        self.pending[node] = pending
        pending.task = self._node._own(self._dial(node, pending), f"dial {node.name}")
        return pending

    async def _dial(self, node: Atom, pending: _Pending) -> None:
        try:
            peer = await self._dial_once(node, pending)
        except BaseException as exc:
            if self.pending.get(node) is pending:
                del self.pending[node]
            err = exc if isinstance(exc, ConnectError) else ConnectError(node.name, repr(exc))
            self._drop_queue(node, pending, err.reason)
            _fail(pending, err)
            self._node._node_lost(node)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not pending.done.done():
            pending.done.set_result(peer)

    async def _dial_once(self, node: Atom, pending: _Pending) -> PeerConnection:
        me = self._node
        target = parse_node_name(node.name)
        mismatch = names_compatible(me.parsed_name, target)
        if mismatch is not None:
            raise NameMismatch(node.name, mismatch)
        port = me.known_port(node.name)
        if port is None:
            if not me.use_epmd:
                raise UnknownNode(node.name, "no port known for it (EPMD-less mode)")
            try:
                info = await port_please(target.alive, target.resolve(), epmd_port=me.epmd_port)
            except EpmdError as exc:
                raise ConnectError(node.name, f"EPMD on {target.host}: {exc}") from exc
            except OSError as exc:
                raise ConnectError(node.name, f"cannot resolve {target.host}: {exc}") from exc
            if info is None:
                raise UnknownNode(node.name)
            port = info.port
        loop = asyncio.get_running_loop()
        protocol: DistProtocol
        try:
            if me.tls is not None:
                protocol = await me.tls.dial(
                    guarded(node.name), target.host, target.resolve(), port,
                    node=node.name, timeout=me.net_setuptime,
                )  # fmt: skip
            else:
                _, protocol = await asyncio.wait_for(
                    loop.create_connection(guarded(node.name), target.resolve(), port), me.net_setuptime
                )
        except TlsHandshakeFailed:
            if pending.superseded:
                return await self._wait_superseding(node, pending)
            raise
        except (TimeoutError, OSError) as exc:
            if pending.superseded:
                return await self._wait_superseding(node, pending)
            raise ConnectError(node.name, f"cannot reach port {port}: {exc!r}") from exc
        self._handshakes.add(protocol)
        try:
            hs = ClientHandshake(
                me.name, me.cookie, flags=me.flags, creation=me.creation, peer_name=node.name,
                header_size=me.handshake_header,
            )  # fmt: skip
            complete, _ = await run_client(
                protocol,
                hs,
                peer=node.name,
                setuptime=me.net_setuptime,
                still_alone=lambda: not pending.superseded and self.open_peer(node) is None,
            )
        except SimultaneousConnect:
            protocol.abort()
            # The peer's own attempt wins (it said ``nok``): wait for it.
            return await self._wait_superseding(node, pending)
        except HandshakeFailed:
            protocol.abort()
            self.counters["failed_handshakes"] += 1
            if pending.superseded:
                return await self._wait_superseding(node, pending)
            raise
        except BaseException:
            protocol.abort()
            raise
        finally:
            self._handshakes.discard(protocol)
        return self._add_peer(protocol, complete.peer_name, complete.peer_creation, int(complete.flags), complete.leftover)

    async def _wait_superseding(self, node: Atom, pending: _Pending) -> PeerConnection:
        """Wait for the peer's connection that won a simultaneous connect."""
        pending.waiting = True
        try:
            return await asyncio.wait_for(asyncio.shield(pending.done), self._node.net_setuptime * 2)
        except TimeoutError:
            raise ConnectError(node.name, "simultaneous connect: the peer's attempt did not complete") from None

    # -- accepting ----------------------------------------------------------------------

    async def _accept(self, protocol: DistProtocol) -> None:
        me = self._node
        self._handshakes.add(protocol)
        if me.tls is not None:
            try:
                await me.tls.accept(protocol, timeout=me.net_setuptime)
            except BaseException as exc:
                self._handshakes.discard(protocol)
                self._inbound -= 1
                if not isinstance(exc, TlsHandshakeFailed):
                    raise
                self.counters["failed_handshakes"] += 1
                log.warning("refused connection from %s: %s", exc.node, exc.reason)  # our TLS alert went out
                return
        hs = ServerHandshake(
            me.name, me.cookie, flags=me.flags, creation=me.creation, header_size=me.handshake_header
        )
        claimed: list[tuple[Atom, _Pending]] = []  # the pending entry this handshake counts in

        def decide(event: NameReceived) -> str:
            status = self._decide(event)
            if status in ("ok", "ok_simultaneous"):
                name = Atom(event.name)
                claimed.append((name, self.pending[name]))
            return status

        try:
            complete = await run_server(protocol, hs, decide=decide, setuptime=me.net_setuptime)
        except SimultaneousConnect as exc:
            log.debug("simultaneous connect from %s: ours wins", exc.node)
            protocol.abort()
            return
        except HandshakeFailed as exc:
            self.counters["failed_handshakes"] += 1
            log.warning("refused connection from %s: %s", exc.node, exc.reason)
            protocol.abort()
            for name, pending in claimed:
                self._accept_failed(name, pending, exc)
            return
        except BaseException as exc:
            protocol.abort()
            for name, pending in claimed:
                self._accept_failed(name, pending, ConnectError(name.name, repr(exc)))
            raise
        finally:
            self._handshakes.discard(protocol)
            self._inbound -= 1
            if self._inbound < self.max_handshakes:
                self._over_cap_logged = False
        self._add_peer(protocol, complete.peer_name, complete.peer_creation, int(complete.flags), complete.leftover)

    def _decide(self, event: NameReceived) -> str:
        """The status for an inbound handshake from ``event.name`` (``dist_util``'s
        ``is_allowed``/``mark_pending``). Nothing about an existing connection or our
        own dial changes here: the peer has not proved the cookie yet."""
        me = self._node
        if event.name_me:
            return "not_allowed"
        mismatch = names_compatible(me.parsed_name, parse_node_name(event.name))
        if mismatch is not None:
            raise HandshakeFailed(event.name, mismatch)
        name = Atom(event.name)
        if self.open_peer(name) is not None:
            # Replaced only once this handshake completes (the cookie is proved).
            return "alive"
        pending = self.pending.get(name)
        if pending is None:
            pending = self.pending[name] = _Pending()
            pending.accepting = 1
            return "ok"
        if pending.accepting:
            # Another inbound handshake claims that name and has not proved the cookie
            # yet: both go on and the first to prove it wins, so an impostor holding
            # the name cannot lock the real node out (BEAM answers ``nok`` here).
            pending.accepting += 1
            return "ok"
        status = simultaneous_status(me.name, event.name)
        if status == "ok_simultaneous":
            # Its attempt wins: ours goes on only until the peer answers it (``nok``
            # from a real peer; an impostor's claim leaves our dial to complete).
            pending.accepting = 1
            pending.superseded = True
        return status

    def _accept_failed(self, name: Atom, pending: _Pending, exc: ConnectError) -> None:
        """An inbound handshake counted in ``name``'s pending entry failed."""
        if self.pending.get(name) is not pending or not pending.accepting:
            return  # that set-up is over (another attempt connected)
        pending.accepting -= 1
        if pending.accepting:
            return  # another inbound handshake for that name is still running
        pending.superseded = False
        if pending.task is not None:
            if pending.waiting:
                _fail(pending, exc)  # our dial was told nok and waits on this one
            return  # else our dial is still running: let it finish
        del self.pending[name]
        self._drop_queue(name, pending, exc.reason)
        _fail(pending, exc)
        if self._node.running:
            self._node._node_lost(name)

    # -- connected ----------------------------------------------------------------------

    def _add_peer(self, protocol: DistProtocol, name: str, creation: int, flags: int, leftover: bytes) -> PeerConnection:
        me = self._node
        atom = Atom(name)
        peer = PeerConnection(
            protocol,
            name=atom,
            creation=creation,
            flags=flags,
            dispatch=me.router.dispatch,
            on_close=self._peer_closed,
            ticktime=me.net_ticktime,
            busy_limit=self.busy_limit,
            max_reassembly=self.max_reassembly,
            mapping=me.mapping,
        )
        old = self.peers.get(atom)
        if old is not None and old.open:
            # The peer proved the cookie: it restarted, and its old connection is stale.
            old.close(Atom("replaced"))
        self.peers[atom] = peer
        pending = self.pending.pop(atom, None)
        if pending is not None:
            for make in pending.queue:
                try:
                    data = make(peer)
                except Exception as exc:  # its sender is gone; BEAM would have said badarg
                    self.counters["dropped_signals"] += 1
                    log.warning("dropping a signal to %s queued during connection set-up: %r", name, exc)
                    continue
                if data:
                    peer.write(data)
            pending.queue.clear()
            if not pending.done.done():
                pending.done.set_result(peer)
        peer.start(leftover)
        log.info("connected to %s", name)
        me._notify(atom, True, None)
        return peer

    def _peer_closed(self, peer: PeerConnection, reason: Any) -> None:
        if self.peers.get(peer.name) is peer:
            del self.peers[peer.name]
        self.counters["dispatch_errors"] += peer.dispatch_errors
        if peer.unsent_frames or peer.unsent_bytes:
            self.counters["unsent_frames"] += peer.unsent_frames
            self.counters["unsent_bytes"] += peer.unsent_bytes
            log.warning(
                "connection to %s lost with %d messages/signals (%d bytes) still unsent; they are dropped",
                peer.name.name,
                peer.unsent_frames,
                peer.unsent_bytes,
            )
        log.info("nodedown %s (%r)", peer.name.name, reason)
        self._node._node_lost(peer.name)
        self._node._notify(peer.name, False, reason)


class _Inbound(GuardedDistProtocol):
    """An accepted connection: named by its address in errors; for a TLS node, reading
    pauses at once so that the TLS upgrade reads the first bytes."""

    def __init__(self, *, pause: bool) -> None:
        super().__init__()
        self._pause = pause

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.peer_label = f"address {peer_address(transport)}"
        if self._pause:
            transport.pause_reading()  # type: ignore[attr-defined]
