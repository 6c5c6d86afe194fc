"""TLS distribution options as OTP reads them (``-ssl_dist_optfile`` and ``-ssl_dist_opt``).

>>> from bridge.ssl_dist_options import parse_optfile_text, parse_ssl_dist_opt
>>> opts = parse_optfile_text('[{server, [{certfile, "n.pem"}, {verify, verify_peer}]}].')
>>> opts["server"]
{'certfile': 'n.pem', 'verify': 'verify_peer'}
>>> parse_ssl_dist_opt(["server_certfile", "n.pem", "client_verify", "verify_none"])["client"]
{'verify': 'verify_none'}

Theory of operation
-------------------
This mirrors what OTP's ``ssl`` application does before it ever opens a socket:

* ``ssl_dist_sup:consult/1`` reads the ``-ssl_dist_optfile`` file as *one* Erlang
  term, ``[{server, ServerOpts}, {client, ClientOpts}]``, either role optional.
  We read it with :func:`dist_proto.term_text.parse_term`, which takes data only:
  a file that computes its options with function calls (OTP evaluates the file as
  an expression) is refused, with the position of the first non-data token.
* ``inet_tls_dist:get_ssl_dist_arguments/1`` reads ``-ssl_dist_opt`` pairs: a key
  ``server_OPT`` or ``client_OPT`` and a string value. Each role takes the pairs
  of its own prefix.
* ``inet_tls_dist:get_ssl_options/1``: for each role, the file's entry wins;
  without one, the ``-ssl_dist_opt`` pairs are used.

Every option is then checked against the table of options Python's :mod:`ssl`
can honour (:data:`SUPPORTED`); anything else is refused with
:class:`SslDistOptionError` naming the option and the role, never ignored,
because an ignored security option is a silent downgrade. Values come out as
plain Python: strings (from Erlang strings or binaries), atoms as their names,
booleans, integers and lists. Building the :class:`ssl.SSLContext` objects from
them is :mod:`bridge.tls`'s job; this module opens no file but the option file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from dist_proto.term_text import TermSyntaxError, parse_term
from dist_proto.terms import Atom

from .errors import BridgeError

__all__ = [
    "ROLES",
    "SUPPORTED",
    "SslDistOptionError",
    "SslDistOptions",
    "check_role_options",
    "load_optfile",
    "parse_optfile_text",
    "parse_ssl_dist_opt",
    "resolve_options",
]

ROLES: Final = ("server", "client")

#: One role's options: option name -> value.
SslDistOptions = dict[str, Any]


class SslDistOptionError(BridgeError, ValueError):
    """A TLS distribution option file or option that cannot be honoured as written."""


def _text(value: Any, option: str) -> str:
    """An Erlang string (charlist), binary or atom as a Python ``str``."""
    if isinstance(value, list) and all(type(c) is int and 0 <= c <= 0x10FFFF for c in value):
        return "".join(map(chr, value))
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise SslDistOptionError(f"{option}: the binary is not UTF-8") from None
    if isinstance(value, str):  # from -ssl_dist_opt, already text
        return value
    raise SslDistOptionError(f"{option}: expected a string, got {_show(value)}")


def _atom_name(value: Any, option: str, allowed: tuple[str, ...]) -> str:
    name = value.name if isinstance(value, Atom) else value if isinstance(value, str) else None
    if name is None and isinstance(value, bool):
        name = "true" if value else "false"
    if name not in allowed:
        raise SslDistOptionError(f"{option}: expected one of {', '.join(allowed)}, got {_show(value)}")
    return name


def _show(value: Any) -> str:
    try:
        from dist_proto.term_text import format_term

        return format_term(value)
    except Exception:  # a value the formatter cannot write: show Python's view
        return repr(value)


def _boolean(value: Any, option: str) -> bool:
    return _atom_name(value, option, ("true", "false")) == "true"


def _path(value: Any, option: str) -> str:
    text = _text(value, option)
    if not text:
        raise SslDistOptionError(f"{option}: the file name is empty")
    return text


def _verify(value: Any, option: str) -> str:
    return _atom_name(value, option, ("verify_peer", "verify_none"))


def _depth(value: Any, option: str) -> int:
    if isinstance(value, str):  # -ssl_dist_opt gives text (list_to_integer in OTP)
        try:
            value = int(value)
        except ValueError:
            raise SslDistOptionError(f"{option}: expected an integer, got {value!r}") from None
    if type(value) is not int or value < 0:
        raise SslDistOptionError(f"{option}: expected a non-negative integer, got {_show(value)}")
    return value


_VERSIONS: Final = ("tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3")


def _versions(value: Any, option: str) -> list[str]:
    if isinstance(value, str):  # -ssl_dist_opt: "tlsv1.2,tlsv1.3" or "tlsv1.2 tlsv1.3"
        items: list[Any] = value.replace(",", " ").split()
    elif isinstance(value, list):
        items = value
    else:
        raise SslDistOptionError(f"{option}: expected a list such as ['tlsv1.2','tlsv1.3'], got {_show(value)}")
    if not items:
        raise SslDistOptionError(f"{option}: the list is empty")
    return [_atom_name(v, option, _VERSIONS) for v in items]


def _ciphers(value: Any, option: str) -> list[str]:
    """OpenSSL-style suite names, as one ``":"``-separated string or a list of strings.

    OTP also takes suite maps (``#{cipher => ..., mac => ...}``) and tuples; those
    have no OpenSSL spelling that Python could be given, so they are refused.
    """
    if isinstance(value, str) or (isinstance(value, list) and value and all(type(c) is int for c in value)):
        names = _text(value, option).split(":")
    elif isinstance(value, bytes):
        names = _text(value, option).split(":")
    elif isinstance(value, list):
        names = []
        for item in value:
            if isinstance(item, (list, bytes)):
                names.append(_text(item, option))
            else:
                raise SslDistOptionError(
                    f"{option}: only OpenSSL suite names (strings) can be used from Python, got {_show(item)}"
                )
    else:
        raise SslDistOptionError(f"{option}: expected suite names, got {_show(value)}")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise SslDistOptionError(f"{option}: no cipher suite named")
    return names


def _sni(value: Any, option: str) -> str | None:
    """A host name to send and check, or ``disable`` (``None``: no SNI, no host name check)."""
    if isinstance(value, Atom):
        if value.name != "disable":
            raise SslDistOptionError(f"{option}: expected a host name string or disable, got {_show(value)}")
        return None
    if value == "disable":
        return None
    return _text(value, option)


def _cacerts(value: Any, option: str) -> list[bytes]:
    """DER certificates (binaries), as OTP's ``cacerts``."""
    if not isinstance(value, list) or not all(isinstance(v, bytes) for v in value):
        raise SslDistOptionError(f"{option}: expected a list of DER binaries")
    return list(value)


def _ignored(value: Any, option: str) -> Any:
    return value


#: The options Python's :mod:`ssl` can honour, per role, with their value check.
#: ``hibernate_after`` only tunes the memory of the Erlang process that owns an
#: OTP connection; it has nothing to act on here and is accepted without effect.
_COMMON: Final[dict[str, Callable[[Any, str], Any]]] = {
    "certfile": _path,
    "keyfile": _path,
    "password": _text,
    "cacertfile": _path,
    "cacerts": _cacerts,
    "verify": _verify,
    "depth": _depth,
    "versions": _versions,
    "ciphers": _ciphers,
    "secure_renegotiate": _boolean,
    "hibernate_after": _ignored,
}
SUPPORTED: Final[dict[str, dict[str, Callable[[Any, str], Any]]]] = {
    "server": {**_COMMON, "fail_if_no_peer_cert": _boolean, "dhfile": _path},
    "client": {**_COMMON, "server_name_indication": _sni},
}

_WHY_NOT: Final = {
    "verify_fun": "it names an Erlang function; Python nodes verify with the CA files",
    "crl_check": "CRL checking is not offered through Python's ssl module here",
    "crl_cache": "CRL checking is not offered through Python's ssl module here",
    "reuse_sessions": "Python's ssl module resumes sessions only through explicit session objects",
    "cert": "give the certificate as a file (certfile)",
    "key": "give the key as a file (keyfile)",
    "certs_keys": "give one certificate and key as files (certfile, keyfile)",
    "customize_hostname_check": "it names Erlang functions",
    "signature_algs": "Python's ssl module cannot restrict signature algorithms",
    "eccs": "Python's ssl module sets one curve at most (set_ecdh_curve), not a list",
    "supported_groups": "Python's ssl module cannot choose TLS 1.3 groups",
}


def check_role_options(role: str, options: Iterable[tuple[Any, Any]]) -> SslDistOptions:
    """Validate one role's ``[{Key, Value}]`` and return ``{name: value}``.

    A repeated option keeps its first value, as ``proplists:get_value/2`` does.
    """
    table = SUPPORTED[role]
    out: SslDistOptions = {}
    for key, value in options:
        name = key.name if isinstance(key, Atom) else key
        if not isinstance(name, str):
            raise SslDistOptionError(f"{role} options: {_show(key)} is not an option name")
        check = table.get(name)
        if check is None:
            other = "client" if role == "server" else "server"
            if name in SUPPORTED[other]:
                why = f"it is a {other} option"
            else:
                why = _WHY_NOT.get(name, "Python's ssl module cannot honour it")
            raise SslDistOptionError(f"unsupported TLS distribution option {name!r} for the {role}: {why}")
        if name not in out:
            out[name] = check(value, f"{role} option {name}")
    if "secure_renegotiate" in out and out["secure_renegotiate"] is False:
        raise SslDistOptionError(
            f"{role} option secure_renegotiate: false cannot be honoured (OpenSSL always renegotiates securely)"
        )
    return out


def parse_optfile_text(text: str, *, source: str = "ssl_dist_optfile") -> dict[str, SslDistOptions]:
    """Read the text of an option file: ``[{server, Opts}, {client, Opts}].`` (``ssl_dist_sup:consult/1``)."""
    try:
        term = parse_term(text)
    except TermSyntaxError as exc:
        raise SslDistOptionError(f"{source}: not an Erlang term: {exc}") from None
    if not isinstance(term, list):
        raise SslDistOptionError(f"{source}: expected [{{server, Opts}}, {{client, Opts}}], got {_show(term)[:200]}")
    roles: dict[str, SslDistOptions] = {}
    for entry in term:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], Atom)):
            raise SslDistOptionError(f"{source}: expected {{server, Opts}} or {{client, Opts}}, got {_show(entry)[:200]}")
        role, opts = entry[0].name, entry[1]
        if role not in ROLES:
            raise SslDistOptionError(f"{source}: unknown role {role!r} (server or client)")
        if not isinstance(opts, list) or not all(isinstance(o, tuple) and len(o) == 2 for o in opts):
            raise SslDistOptionError(f"{source}: the {role} options must be a list of {{Key, Value}} pairs")
        roles[role] = check_role_options(role, opts)  # a repeated role: the last wins, as ets:insert/2
    return roles


def load_optfile(path: str | Path) -> dict[str, SslDistOptions]:
    """Read an ``-ssl_dist_optfile`` (UTF-8, or Latin-1 as OTP's default encoding)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SslDistOptionError(f"cannot read ssl_dist_optfile {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_optfile_text(text, source=str(path))


def parse_ssl_dist_opt(args: Sequence[str] | Mapping[str, str]) -> dict[str, SslDistOptions]:
    """Read ``-ssl_dist_opt`` pairs (``inet_tls_dist:ssl_options/2``): ``server_OPT Value``
    and ``client_OPT Value``. A key without either prefix is refused (OTP skips it
    silently, which hides typos)."""
    pairs = list(args.items()) if isinstance(args, Mapping) else _pairs(list(args))
    by_role: dict[str, list[tuple[str, str]]] = {"server": [], "client": []}
    for key, value in pairs:
        role, _, name = key.partition("_")
        if role not in by_role or not name:
            raise SslDistOptionError(
                f"ssl_dist_opt {key!r}: the key must be server_OPTION or client_OPTION (e.g. server_certfile)"
            )
        by_role[role].append((name, value))
    return {role: check_role_options(role, opts) for role, opts in by_role.items() if opts}


def _pairs(flat: list[str]) -> list[tuple[str, str]]:
    if len(flat) % 2:
        raise SslDistOptionError(f"ssl_dist_opt: {flat[-1]!r} has no value (options come in KEY VALUE pairs)")
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def resolve_options(
    optfile: dict[str, SslDistOptions] | None, opt_args: dict[str, SslDistOptions] | None
) -> dict[str, SslDistOptions]:
    """Each role's options as ``inet_tls_dist:get_ssl_options/1`` picks them: the file's
    entry for that role, else the ``-ssl_dist_opt`` pairs, else none."""
    out: dict[str, SslDistOptions] = {}
    for role in ROLES:
        if optfile and role in optfile:
            out[role] = dict(optfile[role])
        elif opt_args and role in opt_args:
            out[role] = dict(opt_args[role])
        else:
            out[role] = {}
    return out
