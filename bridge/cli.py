"""``python -m bridge``: an operator's tool for an Erlang/Elixir cluster, after ``erl_call``.

::

    $ python -m bridge --cookie secret ping app@127.0.0.1
    pong
    $ python -m bridge -setcookie secret rpc app@127.0.0.1 lists reverse '[1, 2, 3]'
    [3,2,1]
    $ python -m bridge names
    epmd: up and running on port 4369 with data:
    name app at port 37755
    $ python -m bridge --name py@127.0.0.1 serve ./my_actors.py
    node py@127.0.0.1 up (port 40231)

Commands: ``ping``, ``rpc``, ``call``, ``cast``, ``send``, ``upgrade`` (one request to one node),
``names`` (what EPMD knows), ``epmd`` (run the embedded EPMD) and ``serve`` (keep a
node up, hosting a Python module). Terms on the command line are Erlang term text
(:func:`dist_proto.term_text.parse_term`); results are printed the same way
(:func:`~dist_proto.term_text.format_term`). See ``docs/cli.md``.

One-shot commands (``ping`` ... ``send``) behave like ``erl_call``: they look the
target up in EPMD themselves and run a hidden node that is *not* registered with
EPMD (name ``bridge_cli_<random>@127.0.0.1`` unless ``--name`` is given; the host is
this machine's short host name when the target has a short name).

The ``serve`` module contract
-----------------------------
``serve MODULE`` imports MODULE, an importable dotted name (``myapp.actors``) or a
Python file (``./actors.py``; its folder is put first on ``sys.path``), then starts
the node (default name ``py@127.0.0.1``, registered with EPMD) and uses, when the
module defines them:

``ALLOW_RPC = {("mod", "fun"): callable}``
    each entry is passed to :meth:`bridge.Node.allow_rpc`: BEAM may then
    ``rpc:call(PyNode, mod, fun, Args)`` / ``erpc:call``; the callable gets the
    ``Args`` as positional arguments and may be ``async``.
``ALLOW_SPAWN = {("mod", "fun"): fn_or_genserver_class}``
    each entry is passed to :meth:`bridge.Node.allow_spawn` (``spawn_request``).
``async def main(node)``
    awaited once the tables above are in place; it may start actors, call
    ``node.allow_rpc``/``allow_spawn``, register names. The ready line is printed
    when ``main`` *returns*, so do set-up there and start long-lived work as
    processes (``node.spawn``, a ``Supervisor``); the node keeps serving after it
    returns. If ``main`` raises, the node stops and the command exits 70.

The ready line ``node NAME up (port N)`` goes to standard output, flushed; nothing
else does. SIGINT or SIGTERM (and, with ``--stdin-watch``, the end of standard
input, which is how a BEAM port owner going away is seen) stop the node cleanly:
every process is stopped and ``terminate`` runs, the EPMD registration is closed,
and the command exits 0.

Exit codes
----------
==  ===========================================================================
0   success (``pong``; the result printed; the message sent; a clean stop)
1   ``pang``: ``ping`` could not reach the node
2   the remote side failed: ``{badrpc, Reason}`` from ``rpc``, a failed ``call``
3   unavailable: node unreachable, handshake refused (cookie), no EPMD, cookie
    file unusable, name already registered, address in use
64  usage (EX_USAGE): bad arguments, a term that does not parse, a bad node name
70  (EX_SOFTWARE) the ``serve`` module failed: import error, bad table, ``main`` raised
130 interrupted (SIGINT) during a one-shot command
==  ===========================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from dist_proto.term_text import TermSyntaxError, format_term, parse_term
from dist_proto.terms import Atom
from python_actors import CallError

from . import event_loop
from .cookie import CookieError, resolve_cookie
from .epmd_client import EpmdError, NameTaken, epmd_port_from_env, names, port_please
from .epmd_server import EpmdServer
from .errors import ConnectError, RpcError
from .logs import forward_logs
from .naming import NodeName, NodeNameError, parse_node_name
from .node import Node
from .ssl_dist_options import SslDistOptionError
from .tls import PROTO_DISTS, configure_tls

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PANG",
    "EXIT_REMOTE",
    "EXIT_SOFTWARE",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "load_module",
    "main",
]

log = logging.getLogger("bridge.cli")

EXIT_OK = 0
EXIT_PANG = 1
EXIT_REMOTE = 2
EXIT_UNAVAILABLE = 3
EXIT_USAGE = 64
EXIT_SOFTWARE = 70
EXIT_INTERRUPTED = 130

DEFAULT_TIMEOUT = 5.0
DEFAULT_SERVE_NAME = "py@127.0.0.1"

EPILOG = """\
exit codes:
  0    success (pong, result printed, message sent, clean stop on SIGINT/SIGTERM)
  1    pang: ping could not reach the node
  2    the remote side failed: {badrpc, Reason} from rpc, a failed call
  3    unavailable: node unreachable, handshake refused (wrong cookie), no EPMD,
       cookie file unusable, name already registered, address in use
  64   usage: bad arguments, a term that does not parse, a bad node name
  70   the serve module failed (import error, bad ALLOW_* table, main raised)
  130  interrupted

terms are Erlang term text: '[1, {a, <<"b">>}, "str", #{k => 1.5}]'; put -- before
arguments that start with '-'. The cookie is --cookie/-setcookie, else
$BEAM_BRIDGE_COOKIE, else ~/.erlang.cookie. See docs/cli.md.
"""


class CliError(Exception):
    """A failure to report on standard error, with the exit code it maps to."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Unreachable(CliError):
    """The target node could not be reached (EPMD lookup, connection, handshake)."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_UNAVAILABLE, message)


# -- arguments ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad usage; here 2 means "the remote side failed", so 64."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after the command name.

    On the sub-commands their default is SUPPRESS, so that an option given before the
    command name is not overwritten by the sub-command's default.
    """

    def dflt(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--name", metavar="NAME", default=dflt(None),
                        help="this node's name (default: bridge_cli_<random>@127.0.0.1; "
                             f"{DEFAULT_SERVE_NAME} for serve)")
    parser.add_argument("--cookie", "-setcookie", metavar="COOKIE", dest="cookie", default=dflt(None),
                        help="the cookie (default: $BEAM_BRIDGE_COOKIE, else ~/.erlang.cookie)")
    parser.add_argument("--epmd-port", metavar="PORT", type=_port, default=dflt(None),
                        help="EPMD's port (default: $ERL_EPMD_PORT, else 4369)")
    parser.add_argument("--timeout", metavar="SECONDS", type=_positive, default=dflt(DEFAULT_TIMEOUT),
                        help="for each step: EPMD lookup, connection, the request (default: 5)")
    parser.add_argument("-v", "--verbose", action="count", default=dflt(0),
                        help="log to standard error (-vv: debug)")
    parser.add_argument("--proto-dist", "-proto_dist", metavar="PROTO", dest="proto_dist",
                        choices=PROTO_DISTS, default=dflt("inet_tcp"),
                        help="distribution carrier: inet_tcp (default) or inet_tls")
    parser.add_argument("--ssl-dist-optfile", "-ssl_dist_optfile", metavar="FILE", dest="ssl_dist_optfile",
                        default=dflt(None), help="OTP's TLS distribution option file (with inet_tls)")
    parser.add_argument("--ssl-dist-opt", "-ssl_dist_opt", metavar=("KEY", "VALUE"), dest="ssl_dist_opt",
                        nargs=2, action="append", default=dflt(None),
                        help="one of erl's -ssl_dist_opt pairs, e.g. server_certfile FILE (repeatable)")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The ``argparse`` parser of ``python -m bridge``."""
    parser = _Parser(
        prog=prog or "python -m bridge",
        description="Talk to an Erlang/Elixir cluster as a hidden node (in the spirit of erl_call).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(parser, top=True)
    parser.add_argument("--strings", action="store_true",
                        help='rpc/call: print lists of character codes as "strings"')
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _add_common(p, top=False)
        return p

    p = command("ping", "net_adm:ping(NODE): print pong (exit 0) or pang (exit 1)")
    p.add_argument("node", metavar="NODE")

    p = command("rpc", "rpc:call(NODE, MOD, FUN, [ARG, ...]) and print the result")
    p.add_argument("node", metavar="NODE")
    p.add_argument("module", metavar="MOD")
    p.add_argument("function", metavar="FUN")
    p.add_argument("args", metavar="ARG", nargs="*", help="one Erlang term per argument")
    p.add_argument("--strings", action="store_true", default=argparse.SUPPRESS,
                   help='print lists of character codes as "strings"')

    p = command("call", "gen_server:call({NAME, NODE}, REQUEST) and print the reply")
    p.add_argument("node", metavar="NODE")
    p.add_argument("server", metavar="NAME", help="a registered name on NODE")
    p.add_argument("request", metavar="REQUEST", help="an Erlang term")
    p.add_argument("--strings", action="store_true", default=argparse.SUPPRESS,
                   help='print lists of character codes as "strings"')

    p = command("cast", "gen_server:cast({NAME, NODE}, REQUEST)")
    p.add_argument("node", metavar="NODE")
    p.add_argument("server", metavar="NAME", help="a registered name on NODE")
    p.add_argument("request", metavar="REQUEST", help="an Erlang term")

    p = command("send", "{NAME, NODE} ! TERM")
    p.add_argument("node", metavar="NODE")
    p.add_argument("server", metavar="NAME", help="a registered name on NODE")
    p.add_argument("message", metavar="TERM", help="an Erlang term")

    p = command("upgrade", "hot-upgrade every actor of Python MODULE on NODE (sys:suspend, "
                           "change_code, resume); NODE must allow-list python_actors:upgrade_module")
    p.add_argument("node", metavar="NODE")
    p.add_argument("module", metavar="MODULE", help="the Python module's dotted name")
    p.add_argument("extra", metavar="EXTRA", nargs="?", default=None,
                   help="an Erlang term passed as code_change's extra (default: undefined)")

    p = command("names", "list the names registered with EPMD on HOST (like epmd -names)")
    p.add_argument("host", metavar="HOST", nargs="?", default="127.0.0.1")

    p = command("epmd", "run the embedded EPMD until SIGINT/SIGTERM")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=_port, default=None,
                   help="port (default: --epmd-port, $ERL_EPMD_PORT, else 4369; 0: any free port)")
    p.add_argument("--relaxed", action="store_true", help="epmd's -relaxed_command_check")
    p.add_argument("--stdin-watch", action="store_true", help="also stop when standard input closes")

    p = command("serve", "keep a node up (hosting MODULE) until SIGINT/SIGTERM")
    p.add_argument("module", metavar="MODULE", nargs="?",
                   help="a module name or a .py file: ALLOW_RPC, ALLOW_SPAWN, async def main(node)")
    p.add_argument("--stdin-watch", action="store_true",
                   help="also stop when standard input closes (for a BEAM port owner)")
    p.add_argument("--embedded-epmd", action="store_true",
                   help="run an EPMD in this process if none listens on the EPMD port")
    p.add_argument("--listen-port", metavar="PORT", type=_port, default=0, help="distribution port (default: any)")
    p.add_argument("--visible", action="store_true", help="connect as a visible node, not hidden")
    p.add_argument("--log-to", metavar="NODE",
                   help="also send log records (WARNING and up) to the logger of BEAM node NODE")
    return parser


# -- helpers -----------------------------------------------------------------------------


def _err(message: str) -> None:
    print(f"bridge: {message}", file=sys.stderr, flush=True)


def _out(line: str) -> None:
    with contextlib.suppress(BrokenPipeError):
        print(line, flush=True)


def parse_arg_term(text: str, what: str) -> Any:
    """``parse_term(text)``, or a :class:`CliError` (exit 64) showing where it went wrong."""
    try:
        return parse_term(text)
    except TermSyntaxError as exc:
        message = f"{what} is not an Erlang term: {exc}"
        if "\n" not in text:
            message += f"\n    {text}\n    {' ' * (exc.column - 1)}^"
        raise CliError(EXIT_USAGE, message) from None


def _node_name(text: str, what: str = "node name") -> NodeName:
    try:
        return parse_node_name(text)
    except NodeNameError as exc:
        raise CliError(EXIT_USAGE, f"bad {what}: {exc}") from None


def _epmd_port(args: argparse.Namespace) -> int:
    if args.epmd_port is not None:
        return int(args.epmd_port)
    try:
        return epmd_port_from_env()
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None


def _cookie(args: argparse.Namespace) -> str:
    try:
        return resolve_cookie(args.cookie)
    except (CookieError, OSError) as exc:
        raise CliError(EXIT_UNAVAILABLE, f"no usable cookie: {exc}") from None


def _client_name(args: argparse.Namespace, target: NodeName) -> str:
    if args.name:
        return str(_node_name(args.name, "--name"))
    host = "127.0.0.1" if target.is_long else socket.gethostname().split(".", 1)[0]
    return f"bridge_cli_{secrets.token_hex(4)}@{host}"


async def _lookup(target: NodeName, epmd_port: int, timeout: float) -> int:
    """The distribution port of ``target``, from EPMD on its host (``erl_epmd:port_please``)."""
    try:
        host = target.resolve()
    except (OSError, NodeNameError) as exc:
        raise Unreachable(f"cannot connect to {target}: cannot resolve host {target.host!r}: {exc}") from None
    try:
        info = await port_please(target.alive, host, epmd_port=epmd_port, timeout=timeout)
    except (EpmdError, OSError) as exc:
        raise Unreachable(f"cannot connect to {target}: {exc}") from None
    except ValueError as exc:
        raise CliError(EXIT_USAGE, f"bad node name: {exc}") from None
    if info is None:
        raise Unreachable(f"cannot connect to {target}: not registered with EPMD at {host}:{epmd_port}")
    return info.port


def _tls_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Node`` keyword arguments for ``--proto-dist``/``--ssl-dist-optfile``/``--ssl-dist-opt``,
    checked here so that a bad option file is a usage error with its reason."""
    opts: dict[str, Any] = {"proto_dist": getattr(args, "proto_dist", "inet_tcp")}
    if getattr(args, "ssl_dist_optfile", None) is not None:
        opts["ssl_dist_optfile"] = args.ssl_dist_optfile
    if getattr(args, "ssl_dist_opt", None):
        opts["ssl_dist_opt"] = [item for pair in args.ssl_dist_opt for item in pair]
    try:
        configure_tls(**opts)
    except SslDistOptionError as exc:
        raise CliError(EXIT_USAGE, f"TLS distribution: {exc}") from None
    return opts


@contextlib.asynccontextmanager
async def _client(args: argparse.Namespace, target_text: str) -> AsyncIterator[tuple[Node, Atom]]:
    """A hidden, unregistered node connected to the target (as ``erl_call`` does)."""
    target = _node_name(target_text)
    name = _client_name(args, target)
    epmd_port = _epmd_port(args)
    timeout = float(args.timeout)
    cookie = _cookie(args)
    port = await _lookup(target, epmd_port, timeout)
    node = Node(name, cookie=cookie, hidden=True, use_epmd=False, ports={str(target): port},
                net_setuptime=timeout, **_tls_options(args))
    try:
        await node.start()
    except OSError as exc:
        raise CliError(EXIT_UNAVAILABLE, f"cannot listen as {name}: {exc}") from None
    atom = Atom(str(target))
    try:
        try:
            # Node.connect() only says yes or no; the reason is what an operator needs.
            await asyncio.wait_for(node._connection(atom), timeout)
        except ConnectError as exc:
            raise Unreachable(str(exc)) from None
        except TimeoutError:
            raise Unreachable(f"cannot connect to {target}: no answer in {timeout:g} s") from None
        yield node, atom
        await asyncio.sleep(0)  # let a send or cast just written reach the socket
    finally:
        await node.stop()


# -- one-shot commands ---------------------------------------------------------------------


async def cmd_ping(args: argparse.Namespace) -> int:
    try:
        async with _client(args, args.node) as (node, target):
            ok = await node.ping(target, float(args.timeout))
    except Unreachable as exc:
        _err(exc.message)
        ok = False
    _out("pong" if ok else "pang")
    return EXIT_OK if ok else EXIT_PANG


async def cmd_rpc(args: argparse.Namespace) -> int:
    call_args = [parse_arg_term(a, f"argument {i}") for i, a in enumerate(args.args, 1)]
    async with _client(args, args.node) as (node, target):
        try:
            result = await node.rpc(target, args.module, args.function, call_args, float(args.timeout))
        except RpcError as exc:
            _err(f"rpc {args.module}:{args.function}/{len(call_args)} on {target.name} failed: "
                 f"{{badrpc,{format_term(exc.reason)}}}")
            return EXIT_REMOTE
    _out(format_term(result, strings=args.strings))
    return EXIT_OK


async def cmd_upgrade(args: argparse.Namespace) -> int:
    """``upgrade NODE MODULE [EXTRA]``: rpc ``python_actors:upgrade_module(MODULE[, EXTRA])`` on NODE, which
    the node allows with ``node.allow_rpc("python_actors", "upgrade_module",
    python_actors.hot_upgrade.rpc_upgrade_module)``; prints the upgraded pids."""
    call_args: list[Any] = [Atom(args.module)]
    if args.extra is not None:
        call_args.append(parse_arg_term(args.extra, "EXTRA"))
    async with _client(args, args.node) as (node, target):
        try:
            result = await node.rpc(target, "python_actors", "upgrade_module", call_args,
                                    float(args.timeout))
        except RpcError as exc:
            hint = ""
            if type(exc.reason) is tuple and exc.reason and exc.reason[0] == Atom("EXIT"):
                hint = " (does the node allow-list python_actors:upgrade_module?)"
            _err(f"upgrade of {args.module} on {target.name} failed: {{badrpc,{format_term(exc.reason)}}}{hint}")
            return EXIT_REMOTE
    if type(result) is tuple and len(result) == 2 and result[0] == Atom("ok"):
        _out(format_term(result[1]))
        return EXIT_OK
    _err(f"upgrade of {args.module} on {target.name} failed: {format_term(result)}")
    return EXIT_REMOTE


async def cmd_call(args: argparse.Namespace) -> int:
    request = parse_arg_term(args.request, "REQUEST")
    async with _client(args, args.node) as (node, target):
        try:
            reply = await node.call((Atom(args.server), target), request, float(args.timeout))
        except CallError as exc:
            _err(f"call to {args.server} on {target.name} failed: {format_term(exc.reason)}")
            return EXIT_REMOTE
    _out(format_term(reply, strings=args.strings))
    return EXIT_OK


async def cmd_cast(args: argparse.Namespace) -> int:
    request = parse_arg_term(args.request, "REQUEST")
    async with _client(args, args.node) as (node, target):
        await node.cast((Atom(args.server), target), request)
    return EXIT_OK


async def cmd_send(args: argparse.Namespace) -> int:
    message = parse_arg_term(args.message, "TERM")
    async with _client(args, args.node) as (node, target):
        await node.send((Atom(args.server), target), message)
    return EXIT_OK


async def cmd_names(args: argparse.Namespace) -> int:
    port = _epmd_port(args)
    try:
        entries = await names(args.host, epmd_port=port, timeout=float(args.timeout))
    except (EpmdError, OSError) as exc:
        _err(f"cannot list names: {exc}")
        return EXIT_UNAVAILABLE
    _out(f"epmd: up and running on port {port} with data:")
    for name, node_port in entries:
        _out(f"name {name} at port {node_port}")
    return EXIT_OK


# -- long-running commands -----------------------------------------------------------------


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


def _stop_on_stdin_eof(stop: asyncio.Event) -> None:
    """Set ``stop`` when standard input ends (a BEAM port closes our stdin when its owner dies)."""
    loop = asyncio.get_running_loop()

    def watch() -> None:
        try:
            while os.read(0, 65536):  # raw reads: no buffered-stdin lock held at exit
                pass
        except OSError:
            pass
        log.info("standard input closed, stopping")
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch, name="bridge-stdin-watch", daemon=True).start()


async def _first(*aws: Awaitable[Any]) -> None:
    """Wait until the first of ``aws`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def cmd_epmd(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    port = args.port if args.port is not None else _epmd_port(args)
    server = EpmdServer(args.host, port, relaxed=args.relaxed)
    try:
        await server.start()
    except OSError as exc:
        _err(f"cannot listen on {args.host}:{port}: {exc}")
        return EXIT_UNAVAILABLE
    if args.stdin_watch:
        _stop_on_stdin_eof(stop)
    _out(f"epmd up on {args.host}:{server.port}")
    try:
        await _first(stop.wait(), server.wait_stopped())
    finally:
        await server.stop()
    return EXIT_OK


def load_module(spec: str) -> ModuleType:
    """Import ``spec``: a ``.py`` file path (its folder goes first on ``sys.path``) or a module name."""
    path = Path(spec)
    if spec.endswith(".py") or os.sep in spec or (os.altsep and os.altsep in spec):
        if not path.is_file():
            raise CliError(EXIT_USAGE, f"no such file: {spec}")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
        mspec = importlib.util.spec_from_file_location(name, path)
        if mspec is None or mspec.loader is None:
            raise CliError(EXIT_USAGE, f"cannot import {spec}")
        module = importlib.util.module_from_spec(mspec)
        sys.modules[name] = module
        try:
            mspec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module
    return importlib.import_module(spec)


def _tables(module: ModuleType) -> list[tuple[str, str, str, Any]]:
    """The ``ALLOW_RPC``/``ALLOW_SPAWN`` entries as ``(kind, module, function, fn)``."""
    found: list[tuple[str, str, str, Any]] = []
    for attr in ("ALLOW_RPC", "ALLOW_SPAWN"):
        table = getattr(module, attr, None)
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise CliError(EXIT_SOFTWARE, f"{module.__name__}.{attr} must be a dict, not {type(table).__name__}")
        for key, fn in table.items():
            ok_key = isinstance(key, tuple) and len(key) == 2 and all(isinstance(k, str) for k in key)
            if not ok_key or not callable(fn):
                raise CliError(EXIT_SOFTWARE, f"{module.__name__}.{attr}: {key!r} must be a "
                                              "('module', 'function') pair mapped to a callable")
            found.append((attr, key[0], key[1], fn))
    return found


async def cmd_serve(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    name = str(_node_name(args.name or DEFAULT_SERVE_NAME, "--name"))
    epmd_port = _epmd_port(args)
    cookie = _cookie(args)
    module: ModuleType | None = None
    if args.module:
        try:
            module = load_module(args.module)
        except CliError:
            raise
        except Exception:
            _err(f"cannot import {args.module}:\n{traceback.format_exc().rstrip()}")
            return EXIT_SOFTWARE
    tables = _tables(module) if module is not None else []
    main_fn = getattr(module, "main", None) if module is not None else None
    if main_fn is not None and not callable(main_fn):
        raise CliError(EXIT_SOFTWARE, f"{args.module}: main must be 'async def main(node)'")

    node = Node(name, cookie=cookie, hidden=not args.visible, epmd_port=epmd_port,
                embedded_epmd=args.embedded_epmd, listen_port=args.listen_port, **_tls_options(args))
    try:
        await node.start()
    except NameTaken:
        raise CliError(EXIT_UNAVAILABLE, f"cannot start {name}: the name is already registered "
                                         f"with EPMD on port {epmd_port}") from None
    except EpmdError as exc:
        raise CliError(EXIT_UNAVAILABLE, f"cannot start {name}: {exc} (start one with "
                                         "'python -m bridge epmd', or pass --embedded-epmd)") from None
    except OSError as exc:
        raise CliError(EXIT_UNAVAILABLE, f"cannot start {name}: {exc}") from None
    log_handler = None
    try:
        if args.log_to:
            log_handler = forward_logs(node, args.log_to)
        for attr, mod, fun, fn in tables:
            (node.allow_rpc if attr == "ALLOW_RPC" else node.allow_spawn)(mod, fun, fn)
        if args.stdin_watch:
            _stop_on_stdin_eof(stop)
        if main_fn is not None and not stop.is_set():
            code = await _run_main(main_fn, node, stop, args.module)
            if code is not None:
                return code
        if not stop.is_set():
            _out(f"node {node.name} up (port {node.port})")
            await _first(stop.wait(), node.serve_forever())
        log.info("stopping node %s", node.name)
    finally:
        await node.stop()
        if log_handler is not None:
            logging.getLogger().removeHandler(log_handler)
    return EXIT_OK


async def _run_main(main_fn: Any, node: Node, stop: asyncio.Event, where: str) -> int | None:
    """Await ``main(node)``, or give up on it when asked to stop; an exit code if it failed."""

    async def run() -> None:
        result = main_fn(node)
        if inspect.isawaitable(result):
            await result

    task = asyncio.ensure_future(run())
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.cancelled():
        return None
    exc = task.exception()
    if exc is not None:
        text = "".join(traceback.format_exception(exc)).rstrip()
        _err(f"{where}: main(node) raised:\n{text}")
        return EXIT_SOFTWARE
    return None


# -- entry point ---------------------------------------------------------------------------

COMMANDS = {
    "ping": cmd_ping,
    "rpc": cmd_rpc,
    "call": cmd_call,
    "cast": cmd_cast,
    "send": cmd_send,
    "names": cmd_names,
    "upgrade": cmd_upgrade,
    "epmd": cmd_epmd,
    "serve": cmd_serve,
}


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bridge: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _prog() -> str:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m bridge" if argv0 in ("", "__main__.py", "-c", "-m") else argv0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m bridge`` with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = build_parser(_prog())
    args = parser.parse_args(argv)
    _configure_logging(int(args.verbose))
    try:
        return event_loop.run(COMMANDS[args.command](args))  # uvloop when installed
    except CliError as exc:
        _err(exc.message)
        return exc.code
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
