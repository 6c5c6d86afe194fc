"""Asyncio EPMD client: register a node, look one up, list the names.

Mirrors ``erl_epmd`` (``register_node/3``, ``port_please/3``, ``names/1``) over the
sans-I/O messages of :mod:`dist_proto.epmd`. Each request opens its own TCP
connection to EPMD; ``ALIVE2_REQ``'s connection *is* the registration and stays open
until :meth:`Registration.close` (or until EPMD goes away, see
:meth:`Registration.wait_closed`).

With an EPMD listening on the default port::

    async def main() -> None:
        async with await register("py", 45000) as reg:
            print(reg.creation)
            print(await port_please("py", "127.0.0.1"))
            print(await names())

Errors all derive from :class:`EpmdError`. A name that is not a valid node name
(empty, NUL, bad UTF-8, more than 255 characters) raises ``ValueError``.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Final, cast

from dist_proto.epmd import (
    EPMD_PORT,
    NEED_DATA,
    NODE_TYPE_HIDDEN,
    NODE_TYPE_NORMAL,
    Alive2Request,
    Alive2Response,
    ConnectionClosed,
    EpmdClient,
    NamesRequest,
    NamesResponse,
    NodeEntry,
    Port2Response,
    PortPlease2Request,
    Request,
    Response,
    validate_node_name,
)
from dist_proto.errors import LocalProtocolError, RemoteProtocolError

from .errors import BridgeError

__all__ = [
    "DEFAULT_TIMEOUT",
    "EpmdError",
    "EpmdProtocolError",
    "EpmdTimeout",
    "EpmdUnavailable",
    "NameTaken",
    "NodeInfo",
    "Registration",
    "epmd_port_from_env",
    "names",
    "port_please",
    "register",
]

#: Seconds allowed for connecting to EPMD and getting its answer.
DEFAULT_TIMEOUT: Final = 5.0


class EpmdError(BridgeError):
    """Base of every error raised by the EPMD client."""


class EpmdUnavailable(EpmdError, ConnectionError):
    """No EPMD could be reached: connection refused (nothing listens) or unreachable."""


class NameTaken(EpmdError):
    """EPMD refused the registration (result != 0): usually the name is already registered."""


class EpmdProtocolError(EpmdError):
    """EPMD sent bytes that are not a valid answer, or closed without answering."""


class EpmdTimeout(EpmdError, TimeoutError):
    """EPMD did not answer within the timeout."""


def epmd_port_from_env() -> int:
    """The EPMD port: ``$ERL_EPMD_PORT`` if set (as ``erl`` and ``epmd`` read it), else 4369."""
    raw = os.environ.get("ERL_EPMD_PORT", "").strip()
    if not raw:
        return EPMD_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(f"ERL_EPMD_PORT={raw!r} is not a port number") from None
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"ERL_EPMD_PORT={raw!r} is not a port number")
    return port


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What EPMD on ``host`` says about a registered node (a ``PORT2_RESP``)."""

    name: str
    host: str
    port: int
    node_type: int
    protocol: int
    highest_version: int
    lowest_version: int
    extra: bytes = b""

    @property
    def hidden(self) -> bool:
        """True if the node registered as hidden ('H' or erl_interface's 'h').

        BEAM registers 'M' even when started ``-hidden``: hidden-ness is really
        settled in the distribution handshake.
        """
        return self.node_type in (NODE_TYPE_HIDDEN, 104)


def _check_name(name: str) -> str:
    try:
        return validate_node_name(name)
    except LocalProtocolError as exc:
        raise ValueError(f"invalid node name {name!r}: {exc}") from None


class _EpmdProtocol(asyncio.Protocol):
    """One EPMD connection: writes one request, resolves ``response``, watches the close."""

    def __init__(self, request: Request, loop: asyncio.AbstractEventLoop) -> None:
        self._client = EpmdClient()
        self._payload = self._client.send(request)
        self.keep_open = isinstance(request, Alive2Request)
        self.response: asyncio.Future[Response] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.lost_by_peer = False
        self.closing_locally = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's are not asyncio.Transport subclasses)
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        transport.write(self._payload)  # the only bytes ever written on this socket

    def data_received(self, data: bytes) -> None:
        if self.response.done():
            # EPMD never writes on a registration after its answer: treat it as broken.
            self._drop()
            return
        try:
            self._client.receive_data(data)
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        self._poll()

    def eof_received(self) -> bool:
        if not self.response.done():
            self._client.receive_data(b"")
            self._poll()
        self._drop()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.response.done():
            self.response.set_exception(
                EpmdProtocolError("EPMD closed the connection without answering")
            )
            self.response.exception()  # retrieved: the caller may have gone
        if not self.closing_locally:
            self.lost_by_peer = True
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        self.closing_locally = True
        if self.transport is not None:
            self.transport.close()

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: RemoteProtocolError) -> None:
        if not self.response.done():
            err = EpmdProtocolError(f"invalid answer from EPMD: {exc}")
            err.__cause__ = exc
            self.response.set_exception(err)
            self.response.exception()
        self.close()

    def _poll(self) -> None:
        try:
            ev = self._client.next_event()
        except RemoteProtocolError as exc:
            self._fail(exc)
            return
        if ev is NEED_DATA:
            return
        if isinstance(ev, ConnectionClosed):
            return  # connection_lost reports it
        if not self.response.done():
            self.response.set_result(ev)
        if not self.keep_open:
            self.close()


async def _request(
    request: Request, host: str, epmd_port: int | None, timeout: float | None
) -> tuple[_EpmdProtocol, Response]:
    port = epmd_port_from_env() if epmd_port is None else epmd_port
    loop = asyncio.get_running_loop()
    proto = _EpmdProtocol(request, loop)
    try:
        async with asyncio.timeout(timeout):
            try:
                await loop.create_connection(lambda: proto, host, port)
            except ConnectionRefusedError as exc:
                raise EpmdUnavailable(f"no EPMD listens on {host}:{port}") from exc
            except OSError as exc:
                raise EpmdUnavailable(f"cannot reach EPMD at {host}:{port}: {exc}") from exc
            response = await asyncio.shield(proto.response)
    except TimeoutError:
        proto.close()
        raise EpmdTimeout(f"EPMD at {host}:{port} did not answer in {timeout} s") from None
    except BaseException:
        proto.close()
        raise
    return proto, response


class Registration:
    """A name registered with EPMD; the open connection *is* the registration.

    Never write on it: any byte makes EPMD unregister. :meth:`close` unregisters;
    :meth:`wait_closed` returns when the registration has ended either way, and
    :attr:`lost` then tells whether EPMD ended it (EPMD stopped or died).
    """

    def __init__(
        self,
        entry: NodeEntry,
        creation: int,
        extended: bool,
        epmd_host: str,
        epmd_port: int,
        protocol: _EpmdProtocol,
    ) -> None:
        self.name = entry.name
        self.port = entry.port
        self.node_type = entry.node_type
        self.creation = creation
        #: True for ALIVE2_X_RESP (32-bit creation), False for the old ALIVE2_RESP.
        self.extended = extended
        self.epmd_host = epmd_host
        self.epmd_port = epmd_port
        self._protocol = protocol

    def __repr__(self) -> str:
        state = "lost" if self.lost else "closed" if self.closed else "open"
        return (
            f"<Registration {self.name!r} port={self.port} creation={self.creation} "
            f"epmd={self.epmd_host}:{self.epmd_port} {state}>"
        )

    @property
    def closed(self) -> bool:
        """True once the registration connection is gone (closed here or by EPMD)."""
        return self._protocol.closed.done()

    @property
    def lost(self) -> bool:
        """True if EPMD closed the registration (it stopped, died or refused us)."""
        return self.closed and self._protocol.lost_by_peer

    async def wait_closed(self) -> None:
        """Wait until the registration has ended; check :attr:`lost` for why."""
        await asyncio.shield(self._protocol.closed)

    async def close(self) -> None:
        """Unregister the name by closing the connection (``erl_epmd`` stop)."""
        self._protocol.close()
        await asyncio.shield(self._protocol.closed)

    async def __aenter__(self) -> Registration:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def register(
    name_alive: str,
    port: int,
    *,
    host: str = "127.0.0.1",
    epmd_port: int | None = None,
    hidden: bool = True,
    highest: int = 6,
    lowest: int = 6,
    extra: bytes = b"",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Registration:
    """Register ``name_alive`` (no ``@host``) listening on ``port`` (``erl_epmd:register_node/3``).

    Sends ``ALIVE2_REQ`` with node type 72 ('H') if ``hidden`` else 77 ('M') and
    returns the open :class:`Registration`. EPMD only accepts registrations from its
    own host. Raises :class:`EpmdUnavailable`, :class:`NameTaken`,
    :class:`EpmdProtocolError` or :class:`EpmdTimeout`.
    """
    name = _check_name(name_alive)
    entry = NodeEntry(
        name,
        port,
        NODE_TYPE_HIDDEN if hidden else NODE_TYPE_NORMAL,
        0,
        highest,
        lowest,
        bytes(extra),
    )
    try:
        request = Alive2Request(entry)
        request.to_bytes()
    except LocalProtocolError as exc:
        raise ValueError(str(exc)) from None
    real_port = epmd_port_from_env() if epmd_port is None else epmd_port
    proto, response = await _request(request, host, real_port, timeout)
    if not isinstance(response, Alive2Response):  # pragma: no cover - parser guarantees it
        proto.close()
        raise EpmdProtocolError(f"unexpected answer to ALIVE2_REQ: {response!r}")
    if not response.ok:
        proto.close()  # EPMD keeps a refused registration socket open; close it
        raise NameTaken(
            f"EPMD at {host}:{real_port} refused {name!r} (result {response.result}):"
            " the name is probably registered already"
        )
    return Registration(entry, response.creation, response.extended, host, real_port, proto)


async def port_please(
    alive: str,
    host: str,
    *,
    epmd_port: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> NodeInfo | None:
    """Look up ``alive`` (no ``@host``) in EPMD on ``host`` (``erl_epmd:port_please/3``).

    Returns ``None`` when the name is not registered there.
    """
    name = _check_name(alive)
    _, response = await _request(PortPlease2Request(name), host, epmd_port, timeout)
    if not isinstance(response, Port2Response):  # pragma: no cover
        raise EpmdProtocolError(f"unexpected answer to PORT_PLEASE2_REQ: {response!r}")
    node = response.node
    if node is None:
        return None
    return NodeInfo(
        node.name,
        host,
        node.port,
        node.node_type,
        node.protocol,
        node.highest_version,
        node.lowest_version,
        node.extra,
    )


async def names(
    host: str = "127.0.0.1",
    *,
    epmd_port: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> list[tuple[str, int]]:
    """The ``(name, port)`` pairs registered with EPMD on ``host`` (``erl_epmd:names/1``)."""
    _, response = await _request(NamesRequest(), host, epmd_port, timeout)
    if not isinstance(response, NamesResponse):  # pragma: no cover
        raise EpmdProtocolError(f"unexpected answer to NAMES_REQ: {response!r}")
    return list(response.nodes)
