"""An embedded EPMD (Erlang Port Mapper Daemon) on asyncio.

Theory of operation, after OTP's ``erts/epmd/src/epmd_srv.c`` and the "EPMD Protocol"
section of ``erl_dist_protocol``:

* Each connection carries one request (``Length(2) | Request``), parsed by
  :class:`dist_proto.epmd.EpmdServer`. Requests other than ``ALIVE2_REQ`` get one
  answer and the connection is closed; a malformed request, a packet longer than
  epmd's input buffer, or a connection idle for ``packet_timeout`` is closed without
  a reply.
* ``ALIVE2_REQ`` is honoured only from a local peer (127.0.0.0/8, ``::1``, or the
  address the connection arrived on). The answer is ``ALIVE2_X_RESP`` (32-bit
  creation) when the registrant's highest version is >= 6, else ``ALIVE2_RESP``.
  The connection then *is* the registration: end of stream or any further byte
  unregisters the name and closes it. A refused registration (name taken) gets
  result 1, creation 99, and its connection is kept open like epmd does.
* Creation: a fresh name gets the Unix time + 1 (at least 4); a name found among the
  last ``max_unreg`` unregistered names gets its previous creation + 1. Old
  clients (highest < 6) see ``creation % 3 + 1``.
* ``DUMP_REQ``, ``KILL_REQ`` and ``STOP_REQ`` are accepted from local peers only.
  ``KILL_REQ`` answers ``NO`` while names are registered unless ``relaxed`` (epmd's
  ``-relaxed_command_check``), else ``OK`` and the server stops; ``STOP_REQ`` is
  ignored (connection closed) unless ``relaxed``.

There are no per-connection tasks: each connection is an :class:`asyncio.Protocol`
owned by the server, and :meth:`EpmdServer.stop` closes them all.

>>> import asyncio
>>> async def main() -> tuple[bool, dict[str, RegisteredNode]]:
...     async with EpmdServer("127.0.0.1", 0) as server:    # port 0: any free port
...         return server.port > 0, server.registered()
>>> asyncio.run(main())
(True, {})
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from dist_proto.epmd import (
    EPMD_PORT,
    NEED_DATA,
    Alive2Request,
    Alive2Response,
    ConnectionClosed,
    DumpRequest,
    InvalidAlive2Request,
    KillRequest,
    KillResponse,
    NamesRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    StopRequest,
    StopResponse,
)
from dist_proto.epmd import EpmdServer as _RequestParser
from dist_proto.errors import ProtocolError

__all__ = ["EpmdServer", "RegisteredNode", "ensure_epmd", "is_local_peer", "run_epmd"]

log = logging.getLogger(__name__)

#: epmd's input buffer (``INBUF_SIZE``): a request packet must be shorter.
MAX_PACKET: Final = 3 * 255 * 4
#: epmd's ``MAXSYMLEN``: longest Extra field accepted in ``ALIVE2_REQ``.
MAX_EXTRA: Final = 255 * 4
#: epmd's ``MAX_UNREG_COUNT``: how many unregistered names keep their creation.
MAX_UNREG: Final = 1000
#: epmd's ``CLOSE_TIMEOUT``: seconds a non-registration connection may stay idle.
PACKET_TIMEOUT: Final = 60.0
#: Creation epmd answers on a refused registration.
REFUSED_CREATION: Final = 99


def is_local_peer(peer: Any, local: Any) -> bool:
    """epmd's rule: the peer is on loopback, or has the address the connection came in on.

    ``peer`` and ``local`` are socket addresses as ``getpeername``/``getsockname``
    give them; anything unparsable counts as not local.
    """
    try:
        paddr = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
        laddr = ipaddress.ip_address(str(local[0]).split("%", 1)[0])
    except (TypeError, ValueError, IndexError):
        return False
    if isinstance(paddr, ipaddress.IPv6Address) and paddr.ipv4_mapped is not None:
        paddr = paddr.ipv4_mapped
    if isinstance(laddr, ipaddress.IPv6Address) and laddr.ipv4_mapped is not None:
        laddr = laddr.ipv4_mapped
    return paddr.is_loopback or paddr == laddr


@dataclass(frozen=True, slots=True)
class RegisteredNode:
    """A name currently registered with the embedded EPMD."""

    entry: NodeEntry
    creation: int

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def port(self) -> int:
        return self.entry.port


def _creation_for(counter: int, highest: int) -> int:
    # epmd's get_creation(): 32-bit for version 6 nodes, 1..3 for older ones
    return counter if highest >= 6 else counter % 3 + 1


def _bump(counter: int) -> int:
    # epmd's bump_creation(): unsigned 32-bit increment, never below 4
    counter = (counter + 1) & 0xFFFFFFFF
    return max(counter, 4)


class _Conn(asyncio.Protocol):
    """One client connection of the embedded EPMD."""

    def __init__(self, server: EpmdServer) -> None:
        self._server = server
        self._parser = _RequestParser()
        self._transport: asyncio.Transport | None = None
        self._received = 0
        self._head = bytearray()
        self._timer: asyncio.TimerHandle | None = None
        self.local = False
        self.peer: Any = None
        self.registered: str | None = None  # name this connection holds
        self.keep = False  # after ALIVE2: no idle timeout, no further request

    # -- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses)
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        self.peer = transport.get_extra_info("peername")
        self.local = is_local_peer(self.peer, transport.get_extra_info("sockname"))
        self._server._conns.add(self)
        if self._server.packet_timeout is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._server.packet_timeout, self._idle)

    def data_received(self, data: bytes) -> None:
        if not self.keep:
            # epmd reads into a fixed buffer: a longer packet is dropped, unanswered
            if self._received < 2:
                self._head += data[: 2 - self._received]
            self._received += len(data)
            too_long = self._received >= MAX_PACKET or (
                len(self._head) == 2 and int.from_bytes(self._head, "big") + 2 >= MAX_PACKET
            )
            if too_long:
                log.debug("EPMD: packet too large from %s", self.peer)
                self.close()
                return
        self._feed(data)

    def eof_received(self) -> bool:
        self._feed(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._unregister()
        self._server._conns.discard(self)

    @property
    def fd(self) -> int:
        sock = self._transport.get_extra_info("socket") if self._transport else None
        return int(sock.fileno()) if sock is not None else -1

    # -- helpers

    def close(self) -> None:
        self._unregister()
        if self._transport is not None:
            self._transport.close()

    def _idle(self) -> None:
        if not self.keep:
            log.debug("EPMD: closing idle connection from %s", self.peer)
            self.close()

    def _unregister(self) -> None:
        if self.registered is not None:
            name, self.registered = self.registered, None
            self._server._unregister(name, self)

    def _reply(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _feed(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        try:
            self._parser.receive_data(data)
            while True:
                ev = self._parser.next_event()
                if ev is NEED_DATA:
                    return
                if isinstance(ev, ConnectionClosed):
                    self.close()  # end of stream, or a byte on a registration
                    return
                self._handle(ev)
                if not self.keep:
                    self.close()  # one request per connection
                    return
        except ProtocolError as exc:
            log.debug("EPMD: malformed request from %s: %s", self.peer, exc)
            self.close()

    def _handle(self, req: object) -> None:
        srv = self._server
        if isinstance(req, PortPlease2Request):
            held = srv._nodes.get(req.name)
            resp = Port2Response(0, held[0].entry) if held else Port2Response(1)
            self._reply(resp.to_bytes())
        elif isinstance(req, NamesRequest):
            self._reply(NamesResponse(srv.port, srv._listing()).to_bytes())
        elif isinstance(req, Alive2Request):
            if not self.local:
                log.info("EPMD: ALIVE2_REQ from non-local address %s refused", self.peer)
                return
            self._alive2(req.entry)
        elif isinstance(req, InvalidAlive2Request):
            if not self.local:
                return
            log.info("EPMD: ALIVE2_REQ refused: %s", req.reason)
            self.keep = True
            self._reply(Alive2Response(1, REFUSED_CREATION, req.highest_version >= 6).to_bytes())
        elif not self.local:
            log.info("EPMD: %s from non-local address %s refused", type(req).__name__, self.peer)
        elif isinstance(req, DumpRequest):
            self._reply(srv._dump())
        elif isinstance(req, KillRequest):
            if srv._nodes and not srv.relaxed:
                self._reply(KillResponse(False).to_bytes())
            else:
                self._reply(KillResponse(True).to_bytes())
                log.info("EPMD: killed by KILL_REQ from %s", self.peer)
                srv._shutdown()
        elif isinstance(req, StopRequest):
            if not srv.relaxed:
                log.info("EPMD: STOP_REQ refused (not relaxed)")
                return
            holder = srv._nodes.get(req.name)
            if holder is None:
                self._reply(StopResponse(False).to_bytes())
            else:
                holder[1].close()
                self._reply(StopResponse(True).to_bytes())

    def _alive2(self, entry: NodeEntry) -> None:
        srv = self._server
        self.keep = True  # epmd keeps the socket open whatever the outcome
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        creation = srv._register(entry, self)
        ok = creation is not None
        if ok:
            self.registered = entry.name
        resp = Alive2Response(
            0 if ok else 1,
            creation if creation is not None else REFUSED_CREATION,
            entry.highest_version >= 6,
        )
        self._reply(resp.to_bytes())


class EpmdServer:
    """An embedded, epmd-compatible port mapper (``epmd_srv.c``).

    ``port=0`` binds a free port (see :attr:`port` after :meth:`start`). ``relaxed``
    is epmd's ``-relaxed_command_check``. ``clock`` gives Unix time for fresh
    creations. Use as ``async with EpmdServer(...) as server:``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = EPMD_PORT,
        *,
        relaxed: bool = False,
        packet_timeout: float | None = PACKET_TIMEOUT,
        max_unreg: int = MAX_UNREG,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = host
        self._port = port
        self.relaxed = relaxed
        self.packet_timeout = packet_timeout
        self.max_unreg = max_unreg
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._nodes: dict[str, tuple[RegisteredNode, _Conn]] = {}
        # recently unregistered: name -> (creation counter, last port)
        self._unreg: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._counters: dict[str, int] = {}  # registered name -> creation counter
        self._stopped: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<EpmdServer {self.host}:{self.port} names={len(self._nodes)}>"

    @property
    def port(self) -> int:
        """The TCP port EPMD listens on (the bound one once started)."""
        return self._port

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    def registered(self) -> dict[str, RegisteredNode]:
        """The names registered now."""
        return {name: node for name, (node, _) in self._nodes.items()}

    async def start(self) -> None:
        """Bind and start accepting connections; raises ``OSError`` if the port is taken."""
        if self._server is not None:
            raise RuntimeError("EPMD server already started")
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._server = await loop.create_server(
            lambda: _Conn(self), self.host, self._port, reuse_address=True
        )
        if self._port == 0:
            self._port = int(self._server.sockets[0].getsockname()[1])
        log.info("EPMD: listening on %s:%d", self.host, self._port)

    async def stop(self) -> None:
        """Stop listening, close every connection (unregistering every name)."""
        server = self._server
        self._shutdown()
        if server is not None:
            await server.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run

    async def wait_stopped(self) -> None:
        """Return once the server has stopped (by :meth:`stop` or a ``KILL_REQ``)."""
        if self._stopped is None:
            raise RuntimeError("EPMD server not started")
        await self._stopped.wait()

    async def __aenter__(self) -> EpmdServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- internals

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.close()
        if self._stopped is not None:
            self._stopped.set()

    def _register(self, entry: NodeEntry, conn: _Conn) -> int | None:
        name = entry.name
        if name in self._nodes:
            log.info("EPMD: name %r already registered, refused", name)
            return None
        if len(entry.extra) > MAX_EXTRA:
            log.info("EPMD: extra data too long (%d bytes) for %r", len(entry.extra), name)
            return None
        old = self._unreg.pop(name, None)
        counter = _bump(int(self._clock()) if old is None else old[0])
        creation = _creation_for(counter, entry.highest_version)
        self._counters[name] = counter
        self._nodes[name] = (RegisteredNode(entry, creation), conn)
        log.info("EPMD: registered %r at port %d, creation %d", name, entry.port, creation)
        return creation

    def _unregister(self, name: str, conn: _Conn) -> None:
        held = self._nodes.get(name)
        if held is None or held[1] is not conn:
            return
        node, _ = self._nodes.pop(name)
        self._unreg[name] = (self._counters.pop(name), node.port)
        while len(self._unreg) > self.max_unreg:
            self._unreg.popitem(last=False)
        log.info("EPMD: unregistered %r (port %d)", name, node.port)

    def _listing(self) -> tuple[tuple[str, int], ...]:
        # epmd lists the newest registration first
        return tuple((n, node.port) for n, (node, _) in reversed(self._nodes.items()))

    def _dump(self) -> bytes:
        lines = []
        for name, (node, conn) in reversed(self._nodes.items()):
            lines.append(f"active name     <{name}> at port {node.port}, fd = {conn.fd}\n\0")
        for name, (_, port) in self._unreg.items():
            lines.append(f"old/unused name <{name}>, port = {port}, fd = -1 \n\0")
        return self.port.to_bytes(4, "big") + "".join(lines).encode("utf-8")


async def run_epmd(
    host: str = "127.0.0.1", port: int = EPMD_PORT, *, relaxed: bool = False
) -> None:
    """Serve an embedded EPMD until cancelled or killed (``python -m bridge epmd``)."""
    server = EpmdServer(host, port, relaxed=relaxed)
    await server.start()
    try:
        await server.wait_stopped()
    finally:
        await server.stop()
        log.info("EPMD: stopped")


async def _listening(host: str, port: int, timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def ensure_epmd(
    host: str | list[str] = "127.0.0.1", port: int = EPMD_PORT, *, timeout: float = 2.0
) -> EpmdServer | None:
    """Start an embedded EPMD on ``host:port`` unless something already listens there.

    ``host`` may be a list of addresses (loopback plus the node's own address, so
    nodes on other hosts can look names up). Returns the started server (the caller
    stops it), or ``None`` when an EPMD (or anything else) already accepts
    connections on that port, as ``erl`` does with ``-start_epmd true``.
    """
    first = host if isinstance(host, str) else host[0]
    if await _listening(first, port, timeout):
        return None
    server = EpmdServer(host, port)  # type: ignore[arg-type]  # create_server takes a list
    try:
        await server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return None  # lost a race with another EPMD starting
        raise
    return server
