"""TLS distribution (``-proto_dist inet_tls``): contexts from OTP's options, dialling, accepting.

::

    from bridge import Node
    node = Node("py@127.0.0.1", proto_dist="inet_tls", ssl_dist_optfile="/etc/beam/ssl_dist.conf")

Theory of operation
-------------------
OTP's ``inet_tls_dist`` runs the ordinary distribution protocol inside a TLS
connection: EPMD is asked and answers in plain TCP as always, then the dialling
node opens a TCP connection to the port EPMD gave, runs a TLS handshake as the
client (``ssl:connect/4``, sending the peer's host as SNI), and the accepting node
runs it as the server (``ssl:handshake/3``). The distribution handshake and every
frame after it are application data of that TLS connection.

:class:`TlsDist` holds the two :class:`ssl.SSLContext` objects, built from the
options of :mod:`bridge.ssl_dist_options` (or given ready-made), and does the two
TLS steps for :class:`bridge.Node`:

* :meth:`TlsDist.dial` is ``loop.create_connection(..., ssl=client_context,
  server_hostname=host)`` with the TLS handshake bounded by ``net_setuptime``;
* :meth:`TlsDist.accept` upgrades an accepted TCP connection in place with
  ``loop.start_tls`` (the accepting protocol pauses reading in
  ``connection_made``, so no byte is read before TLS is on), so that a failed TLS
  handshake is seen, and logged, by the node rather than swallowed by asyncio.

Either step checks ``depth`` after the handshake (Python's :mod:`ssl` cannot set
OpenSSL's verify depth) and turns :class:`ssl.SSLError` into
:class:`TlsHandshakeFailed`, whose text says what most likely went wrong:
an unknown CA, a missing client certificate, a host name mismatch, or a peer that
does not speak TLS at all.

A node that runs plain TCP meets a TLS peer too. :class:`GuardedDistProtocol`
looks at the first bytes a peer sends during the distribution handshake: a
distribution handshake message starts with a two-byte length (at most a few
hundred), while a TLS record starts with a content type (22 handshake, 21 alert)
and version ``3.x``. Such bytes, or a peer that closes without sending anything,
end the handshake with a :class:`~bridge.errors.HandshakeFailed` that says the
peer runs TLS distribution.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from .errors import HandshakeFailed
from .peer import DistProtocol
from .ssl_dist_options import (
    SslDistOptionError,
    SslDistOptions,
    load_optfile,
    parse_ssl_dist_opt,
    resolve_options,
)

__all__ = [
    "PROTO_DISTS",
    "GuardedDistProtocol",
    "TlsDist",
    "TlsHandshakeFailed",
    "client_context",
    "describe_ssl_error",
    "configure_tls",
    "guarded",
    "peer_address",
    "server_context",
    "tls_record_kind",
    "verified_chain",
]

#: The ``-proto_dist`` values a :class:`bridge.Node` takes.
PROTO_DISTS: Final = ("inet_tcp", "inet_tls")

#: OTP's ``inet_tls_dist:dist_defaults/1``: TLS 1.2 only unless ``versions`` says otherwise.
DEFAULT_VERSIONS: Final = ["tlsv1.2"]
#: OTP's default ``depth`` (ssl_internal.hrl).
DEFAULT_DEPTH: Final = 10

_TLS_VERSIONS: Final = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}
_PLAIN_HINT: Final = "it runs TLS distribution (-proto_dist inet_tls) and this node runs plain TCP"


class TlsHandshakeFailed(HandshakeFailed):
    """The TLS handshake under a distribution connection failed (or its peer is not TLS)."""


# -- contexts -------------------------------------------------------------------------


def _versions(ctx: ssl.SSLContext, names: list[str], role: str) -> None:
    wanted = sorted({_TLS_VERSIONS[n] for n in names})
    everything = sorted(_TLS_VERSIONS.values())
    low, high = everything.index(wanted[0]), everything.index(wanted[-1])
    if len(wanted) != high - low + 1:
        raise SslDistOptionError(
            f"{role} option versions: Python's ssl module takes a contiguous range of versions, not {names}"
        )
    try:
        ctx.minimum_version = wanted[0]
        ctx.maximum_version = wanted[-1]
    except ValueError as exc:
        raise SslDistOptionError(f"{role} option versions {names}: {exc}") from None


def _ciphers(ctx: ssl.SSLContext, names: list[str], role: str) -> None:
    tls13 = [n for n in names if n.startswith("TLS_")]
    if tls13:
        raise SslDistOptionError(
            f"{role} option ciphers: TLS 1.3 suites ({', '.join(tls13)}) cannot be chosen "
            "through Python's ssl module; name TLS 1.2 suites only"
        )
    try:
        ctx.set_ciphers(":".join(names))
    except ssl.SSLError:
        raise SslDistOptionError(f"{role} option ciphers: OpenSSL knows none of {':'.join(names)}") from None


def _load_files(ctx: ssl.SSLContext, opts: SslDistOptions, role: str) -> None:
    certfile, keyfile = opts.get("certfile"), opts.get("keyfile")
    if keyfile is not None and certfile is None:
        raise SslDistOptionError(f"{role} option keyfile needs certfile")
    if certfile is not None:
        try:
            ctx.load_cert_chain(certfile, keyfile, opts.get("password"))
        except (OSError, ssl.SSLError) as exc:
            what = f"certfile {certfile}" + (f" / keyfile {keyfile}" if keyfile else "")
            why = _reason(exc)
            if isinstance(exc, ssl.SSLError) and keyfile is None:
                why += " (no keyfile given: the key must then be in certfile)"
            elif isinstance(exc, ssl.SSLError):
                why += " (a key that does not match the certificate, or a wrong password?)"
            raise SslDistOptionError(f"{role}: cannot load {what}: {why}") from None
    if "cacertfile" in opts:
        try:
            ctx.load_verify_locations(cafile=opts["cacertfile"])
        except (OSError, ssl.SSLError) as exc:
            raise SslDistOptionError(f"{role}: cannot load cacertfile {opts['cacertfile']}: {_reason(exc)}") from None
    if "cacerts" in opts:
        try:
            ctx.load_verify_locations(cadata=b"".join(opts["cacerts"]))
        except (OSError, ssl.SSLError) as exc:
            raise SslDistOptionError(f"{role}: cannot load cacerts: {_reason(exc)}") from None
    if "dhfile" in opts:
        try:
            ctx.load_dh_params(opts["dhfile"])
        except (OSError, ssl.SSLError) as exc:
            raise SslDistOptionError(f"{role}: cannot load dhfile {opts['dhfile']}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _common(ctx: ssl.SSLContext, opts: SslDistOptions, role: str) -> None:
    _versions(ctx, opts.get("versions", DEFAULT_VERSIONS), role)
    if "ciphers" in opts:
        _ciphers(ctx, opts["ciphers"], role)
    _load_files(ctx, opts, role)


def server_context(opts: SslDistOptions) -> ssl.SSLContext:
    """The accepting side's context (``ssl:handshake/3`` options of ``inet_tls_dist``).

    ``verify`` defaults to ``verify_none`` (no client certificate asked for);
    ``verify_peer`` asks for one and checks it against ``cacertfile``/``cacerts``,
    and with ``fail_if_no_peer_cert`` a client without one is refused.
    """
    if "certfile" not in opts:
        raise SslDistOptionError("server options need certfile (the node's certificate)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, opts, "server")
    verify = opts.get("verify", "verify_none")
    fail = opts.get("fail_if_no_peer_cert", False)
    if verify == "verify_none":
        if fail:
            raise SslDistOptionError(
                "server options {verify, verify_none} and {fail_if_no_peer_cert, true} are incompatible"
            )
        ctx.verify_mode = ssl.CERT_NONE
    else:
        if "cacertfile" not in opts and "cacerts" not in opts:
            raise SslDistOptionError("server option {verify, verify_peer} needs cacertfile or cacerts")
        ctx.verify_mode = ssl.CERT_REQUIRED if fail else ssl.CERT_OPTIONAL
    return ctx


def client_context(opts: SslDistOptions) -> ssl.SSLContext:
    """The dialling side's context (``ssl:connect/4`` options of ``inet_tls_dist``).

    ``verify`` defaults to ``verify_peer``, as ``ssl`` does since OTP 26: the server's
    certificate is checked against ``cacertfile``/``cacerts`` and the host part of the
    node name (``server_name_indication`` replaces it; ``disable`` turns the host
    name check off). ``certfile``/``keyfile`` are the client certificate mutual TLS asks for.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _common(ctx, opts, "client")
    if opts.get("verify", "verify_peer") == "verify_none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        if "cacertfile" not in opts and "cacerts" not in opts:
            raise SslDistOptionError(
                "client option {verify, verify_peer} (the default, as in OTP 26+) needs cacertfile or cacerts; "
                "give {verify, verify_none} to connect without checking the server"
            )
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = opts.get("server_name_indication", "") is not None
    return ctx


# -- the transport --------------------------------------------------------------------


class TlsDist:
    """TLS for a node's distribution connections: the two contexts and two steps.

    ``server_name_indication``: ``""`` to use the host part of the peer's node name
    (``inet_tls_dist``'s choice), a fixed name, or ``None`` for none (``disable``).
    ``depth``: the longest chain of intermediate CAs accepted (OTP's ``depth``).
    Without server options (``server=None``) the node dials over TLS but refuses every
    inbound connection, as an OTP node without a server certificate fails every accept.
    """

    def __init__(
        self,
        server: ssl.SSLContext | None,
        client: ssl.SSLContext,
        *,
        server_name_indication: str | None = "",
        depth: int | None = None,
    ) -> None:
        if (server is not None and server.protocol == ssl.PROTOCOL_TLS_CLIENT) or (
            client.protocol == ssl.PROTOCOL_TLS_SERVER
        ):
            raise SslDistOptionError("ssl_context: give (server_context, client_context) in that order")
        self.server_context = server
        self.client_context = client
        self.server_name_indication = server_name_indication
        self.depth = depth

    @classmethod
    def from_options(cls, options: dict[str, SslDistOptions]) -> TlsDist:
        """Both contexts from OTP-style options (``{"server": {...}, "client": {...}}``)."""
        server, client = options.get("server", {}), options.get("client", {})
        depth = server.get("depth", client.get("depth", DEFAULT_DEPTH))
        if server.get("depth", depth) != client.get("depth", depth):
            raise SslDistOptionError("server and client depth differ; Python nodes check one depth for both")
        return cls(
            server_context(server) if server else None,
            client_context(client),
            server_name_indication=client.get("server_name_indication", ""),
            depth=depth,
        )

    def _sni(self, host: str) -> str | None:
        if self.server_name_indication is None:
            return None
        return self.server_name_indication or host

    async def dial(
        self, factory: Callable[[], DistProtocol], host: str, address: str, port: int, *, node: str, timeout: float
    ) -> DistProtocol:
        """Connect to ``address:port`` and run the TLS handshake as the client (``ssl:connect/4``).

        ``host`` is the host part of the node name, sent as SNI and checked against the
        server's certificate. Raises :class:`TlsHandshakeFailed` for TLS failures and lets
        ``OSError``/``TimeoutError`` of the TCP connect through.
        """
        loop = asyncio.get_running_loop()
        sni = self._sni(host)
        try:
            transport, protocol = await asyncio.wait_for(
                loop.create_connection(
                    factory, address, port, ssl=self.client_context,
                    server_hostname=sni or "", ssl_handshake_timeout=timeout,
                ),
                timeout,
            )
        except ssl.SSLError as exc:
            raise TlsHandshakeFailed(node, describe_ssl_error(exc, "client")) from exc
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:  # not a refused connect
            raise TlsHandshakeFailed(
                node, "the peer closed the connection during the TLS handshake: it refused our TLS parameters "
                "(see its log), or it runs plain TCP distribution"
            ) from exc
        except TimeoutError:
            raise TlsHandshakeFailed(
                node, f"no TLS handshake within {timeout:g}s: the peer may run plain TCP distribution "
                "(-proto_dist inet_tcp), which waits for a distribution handshake instead, or be unreachable"
            ) from None
        try:
            self._check_depth(transport, "server")
        except TlsHandshakeFailed as exc:
            transport.abort()
            raise TlsHandshakeFailed(node, exc.reason) from None
        return protocol

    async def accept(self, protocol: DistProtocol, *, timeout: float) -> None:
        """Upgrade ``protocol``'s accepted TCP connection to TLS (``ssl:handshake/3``).

        The protocol must have paused reading in ``connection_made``; on success its
        ``transport`` is the TLS transport. Raises :class:`TlsHandshakeFailed` naming
        the peer's address.
        """
        raw = protocol.transport
        if raw is None:
            raise TlsHandshakeFailed("unknown peer", "the connection is gone")
        who = f"address {peer_address(raw)}"
        if self.server_context is None:
            raw.close()
            raise TlsHandshakeFailed(who, "this node has no server options (certfile): it accepts no TLS connection")
        loop = asyncio.get_running_loop()
        try:
            tls_transport = await asyncio.wait_for(
                loop.start_tls(raw, protocol, self.server_context, server_side=True, ssl_handshake_timeout=timeout),
                timeout,
            )
        except BaseException as exc:
            raw.close()  # a close, not an abort: our TLS alert still reaches the peer
            if isinstance(exc, ssl.SSLError):
                raise TlsHandshakeFailed(who, describe_ssl_error(exc, "server")) from exc
            if isinstance(exc, TimeoutError):
                raise TlsHandshakeFailed(who, f"no TLS handshake within {timeout:g}s") from None
            if isinstance(exc, OSError):
                raise TlsHandshakeFailed(who, f"the connection failed during the TLS handshake: {exc}") from exc
            raise
        if tls_transport is None:  # the peer went away as the handshake ended
            raw.close()
            raise TlsHandshakeFailed(who, "the connection closed during the TLS handshake")
        protocol.transport = tls_transport
        try:
            self._check_depth(tls_transport, "client")
        except TlsHandshakeFailed:
            tls_transport.close()
            raise

    def _check_depth(self, transport: asyncio.BaseTransport, whose: str) -> None:
        """OTP's ``depth``: at most ``depth`` intermediate CAs between the peer and the root."""
        if self.depth is None:
            return
        chain = verified_chain(transport.get_extra_info("ssl_object"))
        if chain is not None and len(chain) - 2 > self.depth:
            raise TlsHandshakeFailed(
                f"address {peer_address(transport)}",
                f"the {whose} certificate chain has {len(chain) - 2} intermediate CAs, more than depth {self.depth}",
            )


def verified_chain(ssl_object: Any) -> list[Any] | None:
    """The peer's verified chain, leaf first (``SSLObject.get_verified_chain``, Python 3.13+;
    on older Pythons the same method of the C object under it); None if not verified."""
    if ssl_object is None:
        return None
    get = getattr(ssl_object, "get_verified_chain", None)
    if get is None:
        get = getattr(getattr(ssl_object, "_sslobj", None), "get_verified_chain", None)
    if get is None:
        return None
    chain = get()
    return list(chain) if chain else None


def peer_address(transport: asyncio.BaseTransport) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of the other end of ``transport``."""
    peername = transport.get_extra_info("peername")
    if isinstance(peername, tuple) and len(peername) >= 2:
        host = str(peername[0])
        return f"[{host}]:{peername[1]}" if ":" in host else f"{host}:{peername[1]}"
    return "unknown peer"


_SSL_REASONS: Final = {
    "WRONG_VERSION_NUMBER": "the peer did not speak TLS ({plain})",
    "HTTP_REQUEST": "the peer did not speak TLS ({plain})",
    "UNKNOWN_PROTOCOL": "the peer did not speak TLS ({plain})",
    "RECORD_LAYER_FAILURE": "the peer did not speak TLS ({plain})",
    "PACKET_LENGTH_TOO_LONG": "the peer did not speak TLS ({plain})",
    "TLSV1_ALERT_UNKNOWN_CA": "the peer does not trust our certificate: it was not issued by a CA in the peer's cacertfile",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the peer rejected our certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "the peer rejected our certificate",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the peer requires a client certificate (mutual TLS) and we sent none: set certfile for the client",
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "the peer sent no client certificate, and fail_if_no_peer_cert is true",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the peer refused the TLS handshake (no common version or cipher, or it wanted a client certificate we did not send)",
    "NO_SHARED_CIPHER": "no cipher suite in common with the peer",
    "UNSUPPORTED_PROTOCOL": "no TLS version in common with the peer",
    "TLSV1_ALERT_PROTOCOL_VERSION": "no TLS version in common with the peer",
    "UNEXPECTED_EOF_WHILE_READING": "the peer closed the connection during the TLS handshake (it may run plain TCP distribution, or refused us)",
}
_PLAIN_PEER: Final = "it may run plain TCP distribution, -proto_dist inet_tcp"


def describe_ssl_error(exc: ssl.SSLError, role: str) -> str:
    """Words for an :class:`ssl.SSLError` of a distribution connection's TLS handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or _reason(exc)
        if exc.verify_code in (19, 20, 21):  # self-signed in chain, unknown issuer, unable to verify leaf
            why = "it was not issued by a CA in our cacertfile"
        elif exc.verify_code == 62:  # hostname mismatch
            why = "it is not valid for the host name (use server_name_indication, or a certificate for that host)"
        else:
            why = detail
        peer = "server" if role == "client" else "client"
        return f"TLS: the {peer}'s certificate was rejected: {why} ({detail})"
    text = _SSL_REASONS.get(exc.reason or "")
    if text is None:
        return f"TLS handshake failed: {_reason(exc)}"
    return "TLS: " + text.format(plain=_PLAIN_PEER)


def configure_tls(
    proto_dist: str,
    *,
    ssl_dist_optfile: str | Path | None = None,
    ssl_dist_opt: Sequence[str] | Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
) -> TlsDist | None:
    """The node's TLS set-up for ``proto_dist`` (None for plain TCP), as ``erl`` reads
    ``-proto_dist``, ``-ssl_dist_optfile`` and ``-ssl_dist_opt``."""
    if proto_dist not in PROTO_DISTS:
        raise SslDistOptionError(f"proto_dist {proto_dist!r} is not supported: use one of {', '.join(PROTO_DISTS)}")
    given = ssl_dist_optfile is not None or ssl_dist_opt is not None or ssl_context is not None
    if proto_dist == "inet_tcp":
        if given:
            raise SslDistOptionError("TLS options were given but proto_dist is 'inet_tcp'; use proto_dist='inet_tls'")
        return None
    if ssl_context is not None:
        if ssl_dist_optfile is not None or ssl_dist_opt is not None:
            raise SslDistOptionError("give ssl_context or ssl_dist_optfile/ssl_dist_opt, not both")
        if isinstance(ssl_context, ssl.SSLContext):
            raise SslDistOptionError("ssl_context: give (server_context, client_context)")
        server, client = ssl_context
        return TlsDist(server, client)
    if ssl_dist_optfile is None and ssl_dist_opt is None:
        raise SslDistOptionError("proto_dist 'inet_tls' needs ssl_dist_optfile, ssl_dist_opt or ssl_context")
    from_file = load_optfile(ssl_dist_optfile) if ssl_dist_optfile is not None else None
    from_args = parse_ssl_dist_opt(ssl_dist_opt) if ssl_dist_opt is not None else None
    return TlsDist.from_options(resolve_options(from_file, from_args))


# -- plain TCP nodes meeting TLS peers ------------------------------------------------


def tls_record_kind(data: bytes) -> str | None:
    """``"ClientHello"``/``"handshake"``/``"alert"`` if ``data`` starts a TLS record, else None.

    A distribution handshake message starts with a two-byte length of at most a few
    hundred bytes; a TLS record with type 22 or 21 and version ``3.0``-``3.4``, which
    read as such a length would be over 5000.
    """
    if len(data) < 3 or data[1] != 3 or data[2] > 4:
        return None
    if data[0] == 22:
        return "ClientHello" if len(data) >= 6 and data[5] == 1 else "handshake"
    if data[0] == 21:
        return "alert"
    return None


class GuardedDistProtocol(DistProtocol):
    """A :class:`~bridge.peer.DistProtocol` that recognises a TLS peer in its first bytes.

    ``peer`` names the other side in errors (its node name when we dial, its address
    when we accept).
    """

    def __init__(self, peer: str = "unknown peer") -> None:
        super().__init__()
        self.peer_label = peer
        self._first_read = True
        self._lost_exc: BaseException | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost_exc = exc
        super().connection_lost(exc)

    async def read(self) -> bytes:
        data = await super().read()
        first, self._first_read = self._first_read, False
        if not data and isinstance(self._lost_exc, ssl.SSLError):
            role = "server" if self.transport is not None and self.transport.get_extra_info("server_side") else "client"
            raise TlsHandshakeFailed(self.peer_label, describe_ssl_error(self._lost_exc, role))
        if not first:
            return data
        kind = tls_record_kind(data)
        if kind == "ClientHello" or kind == "handshake":
            raise HandshakeFailed(self.peer_label, f"the peer sent a TLS {kind}: {_PLAIN_HINT}")
        if kind == "alert":
            raise HandshakeFailed(self.peer_label, f"the peer answered with a TLS alert: {_PLAIN_HINT}")
        if not data and self.transport is not None and self.transport.get_extra_info("sslcontext") is not None:
            raise TlsHandshakeFailed(
                self.peer_label,
                "the peer closed the TLS connection before the distribution handshake: it most likely "
                "refused our certificate (mutual TLS, TLS 1.3 reports that after the handshake); see its log",
            )
        if not data and self.transport is not None:
            raise HandshakeFailed(
                self.peer_label,
                "the peer closed the connection before sending a byte of the distribution handshake: "
                "it may run TLS distribution (-proto_dist inet_tls) while this node runs plain TCP, "
                "or it refused us before answering (see its log)",
            )
        return data


def guarded(peer: str) -> Callable[[], GuardedDistProtocol]:
    """A protocol factory for dialling ``peer``."""
    return lambda: GuardedDistProtocol(peer)
