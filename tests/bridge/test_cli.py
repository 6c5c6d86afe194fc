"""``python -m bridge`` without a BEAM: arguments, term errors, exit codes, and the
long-running commands (``epmd``, ``serve``) driven as subprocesses, Python to Python."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bridge import cli
from bridge.cli import (
    EXIT_PANG,
    EXIT_REMOTE,
    EXIT_SOFTWARE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    build_parser,
    main,
)
from tests.beam import REPO_ROOT, free_port, unique_name

COOKIE = "cli_test_cookie"

# -- helpers shared with tests/interop/test_cli_interop.py ----------------------------------


def cli_env(epmd_port: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BEAM_BRIDGE_COOKIE", None)
    env["ERL_EPMD_PORT"] = str(epmd_port)
    env.update(extra)
    return env


def run_cli(args: Sequence[str], epmd_port: int, timeout: float = 30, **extra: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bridge ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args], capture_output=True, text=True,
        env=cli_env(epmd_port, **extra), cwd=REPO_ROOT, timeout=timeout, stdin=subprocess.DEVNULL,
    )


class Running:
    """A long-running ``python -m bridge`` (``serve``, ``epmd``): waits for its ready line."""

    def __init__(self, args: Sequence[str], epmd_port: int, *, stdin: int = subprocess.DEVNULL,
                 ready: bool = True, **extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", *args], stdin=stdin, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=cli_env(epmd_port, **extra), cwd=REPO_ROOT,
        )
        self.ready_line = self.readline() if ready else ""

    def readline(self, timeout: float = 20) -> str:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not readable:
            self.kill()
            raise AssertionError(f"no line from {self.proc.args!r} in {timeout} s: {self.stderr()}")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"{self.proc.args!r} exited ({self.proc.wait(5)}): {self.stderr()}")
        return line.rstrip("\n")

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send ``sig`` and wait for the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        self.kill()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()


@contextlib.contextmanager
def running(args: Sequence[str], epmd_port: int, **kwargs: object) -> Iterator[Running]:
    proc = Running(args, epmd_port, **kwargs)  # type: ignore[arg-type]
    try:
        yield proc
    finally:
        proc.close()


SERVED_MODULE = '''
import os
from pathlib import Path

from dist_proto.terms import Atom
from python_actors import GenServer, Ok, Reply

MARK = Path(os.environ["CLI_TEST_MARK"])


class Keeper(GenServer):
    def init(self, arg):
        return Ok(arg)

    def handle_call(self, request, from_, state):
        return Reply((Atom("kept"), request), state)

    def terminate(self, reason, state):
        MARK.write_text(repr(reason))


async def hello(who):
    return (Atom("hello"), who)


ALLOW_RPC = {("pymod", "add"): lambda a, b: a + b, ("pymod", "hello"): hello}


async def main(node):
    await Keeper.start(None, name="keeper", runtime=node.runtime)
'''


def served_module(tmp_path: Path) -> tuple[Path, Path]:
    """A module file for ``serve`` and the file its GenServer's ``terminate`` writes."""
    path = tmp_path / "served_actors.py"
    path.write_text(SERVED_MODULE)
    return path, tmp_path / "terminated"


# -- arguments -----------------------------------------------------------------------------


def test_options_before_or_after_the_command() -> None:
    parser = build_parser()
    a = parser.parse_args(["--cookie", "c", "--timeout", "2", "ping", "n@h"])
    b = parser.parse_args(["ping", "n@h", "-setcookie", "c", "--timeout", "2"])
    for args in (a, b):
        assert (args.command, args.node, args.cookie, args.timeout) == ("ping", "n@h", "c", 2.0)


def test_defaults() -> None:
    args = build_parser().parse_args(["rpc", "n@h", "erlang", "node"])
    assert args.timeout == cli.DEFAULT_TIMEOUT == 5.0
    assert (args.name, args.cookie, args.epmd_port, args.verbose, args.args) == (None, None, None, 0, [])
    args = build_parser().parse_args(["-vv", "serve"])
    assert (args.verbose, args.module, args.stdin_watch) == (2, None, False)


def test_rpc_args_keep_their_text_including_negative_numbers() -> None:
    args = build_parser().parse_args(["rpc", "n@h", "erlang", "abs", "-5"])
    assert args.args == ["-5"]
    args = build_parser().parse_args(["rpc", "n@h", "m", "f", "--", "-1.5e3", "[1, {a, <<\"b\">>}]"])
    assert args.args == ["-1.5e3", '[1, {a, <<"b">>}]']


@pytest.mark.parametrize("argv", [
    [],
    ["ping"],
    ["frobnicate"],
    ["rpc", "n@h", "m"],
    ["--timeout", "0", "ping", "n@h"],
    ["--timeout", "soon", "ping", "n@h"],
    ["--epmd-port", "70000", "names"],
    ["epmd", "--port", "-1"],
])
def test_bad_usage_exits_64(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == EXIT_USAGE
    assert "error:" in capsys.readouterr().err


def test_help_mentions_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for line in ("exit codes:", "1    pang", "2    the remote side failed", "64   usage"):
        assert line in out


@pytest.mark.parametrize(("argv", "what"), [
    (["rpc", "a@127.0.0.1", "m", "f", "ok", "[1, {a, <<\"b\">>"], "argument 2"),
    (["call", "a@127.0.0.1", "srv", "{get, X}"], "REQUEST"),
    (["cast", "a@127.0.0.1", "srv", "'unterminated"], "REQUEST"),
    (["send", "a@127.0.0.1", "inbox", "<0.85.0>"], "TERM"),
])
def test_terms_that_do_not_parse_exit_64_with_the_position(
    argv: list[str], what: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No EPMD, no node: the terms are read before anything touches the network.
    assert main(["--epmd-port", str(free_port()), *argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert f"{what} is not an Erlang term: line 1, column" in err
    assert err.rstrip().endswith("^")


def test_bad_node_names_exit_64(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ping", "a@b@c"]) == EXIT_USAGE
    assert main(["--name", "@nohost", "rpc", "x@127.0.0.1", "erlang", "node"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "bad node name" in err and "bad --name" in err


def test_bad_erl_epmd_port_exits_64(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ERL_EPMD_PORT", "lots")
    assert main(["names"]) == EXIT_USAGE
    assert "ERL_EPMD_PORT" in capsys.readouterr().err


# -- exit codes without anything to talk to --------------------------------------------


def test_no_epmd(capsys: pytest.CaptureFixture[str]) -> None:
    port = str(free_port())
    assert main(["--epmd-port", port, "names"]) == EXIT_UNAVAILABLE
    assert f"no EPMD listens on 127.0.0.1:{port}" in capsys.readouterr().err

    assert main(["--epmd-port", port, "--cookie", COOKIE, "ping", "app@127.0.0.1"]) == EXIT_PANG
    out, err = capsys.readouterr()
    assert out == "pang\n"
    assert "cannot connect to app@127.0.0.1" in err

    for argv in (["rpc", "app@127.0.0.1", "erlang", "node"], ["call", "app@127.0.0.1", "srv", "hi"],
                 ["cast", "app@127.0.0.1", "srv", "hi"], ["send", "app@127.0.0.1", "srv", "hi"]):
        assert main(["--epmd-port", port, "--cookie", COOKIE, *argv]) == EXIT_UNAVAILABLE
        out, err = capsys.readouterr()
        assert out == ""
        assert "bridge: cannot connect to app@127.0.0.1: no EPMD listens" in err


def test_unusable_cookie_file_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("BEAM_BRIDGE_COOKIE", raising=False)
    cookie = tmp_path / ".erlang.cookie"
    cookie.write_text("OPEN")
    cookie.chmod(0o644)
    port = str(free_port())
    assert main(["--epmd-port", port, "rpc", "app@127.0.0.1", "erlang", "node"]) == EXIT_UNAVAILABLE
    assert main(["--epmd-port", port, "ping", "app@127.0.0.1"]) == EXIT_UNAVAILABLE
    assert main(["--epmd-port", port, "serve"]) == EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.count("no usable cookie") == 3 and "owner only" in err


def test_load_module_by_file_and_by_name(tmp_path: Path) -> None:
    path = tmp_path / "cli_mod_by_file.py"
    path.write_text("X = 1\n")
    assert cli.load_module(str(path)).X == 1
    assert cli.load_module("bridge.naming").__name__ == "bridge.naming"
    with pytest.raises(cli.CliError) as info:
        cli.load_module(str(tmp_path / "missing.py"))
    assert info.value.code == EXIT_USAGE


# -- epmd and serve, as subprocesses, Python to Python ----------------------------------


@pytest.fixture(scope="module")
def cli_epmd() -> Iterator[int]:
    """``python -m bridge epmd --port 0`` for this module; yields its port."""
    with running(["epmd", "--port", "0"], 0) as epmd:
        assert epmd.ready_line.startswith("epmd up on 127.0.0.1:")
        yield int(epmd.ready_line.rsplit(":", 1)[1])
        assert epmd.terminate(signal.SIGINT) == 0


def test_epmd_port_in_use_exits_3(cli_epmd: int) -> None:
    done = run_cli(["epmd", "--port", str(cli_epmd)], cli_epmd)
    assert done.returncode == EXIT_UNAVAILABLE
    assert f"cannot listen on 127.0.0.1:{cli_epmd}" in done.stderr


def test_epmd_stdin_watch(cli_epmd: int) -> None:
    with running(["epmd", "--port", "0", "--stdin-watch"], cli_epmd, stdin=subprocess.PIPE) as epmd:
        assert epmd.proc.stdin is not None
        epmd.proc.stdin.close()
        assert epmd.proc.wait(10) == 0


def test_serve_rpc_names_and_sigterm(cli_epmd: int, tmp_path: Path) -> None:
    module, mark = served_module(tmp_path)
    name = f"{unique_name('pyserve')}@127.0.0.1"
    alive = name.split("@")[0]
    with running(["--name", name, "--cookie", COOKIE, "serve", str(module)], cli_epmd,
                 CLI_TEST_MARK=str(mark)) as served:
        assert served.ready_line.startswith(f"node {name} up (port ")
        port = int(served.ready_line.rsplit(" ", 1)[1].rstrip(")"))

        listing = run_cli(["names"], cli_epmd)
        assert listing.returncode == 0
        assert f"name {alive} at port {port}" in listing.stdout.splitlines()
        assert listing.stdout.startswith(f"epmd: up and running on port {cli_epmd} with data:\n")

        base = ["--cookie", COOKIE]
        assert run_cli([*base, "ping", name], cli_epmd).stdout == "pong\n"
        done = run_cli([*base, "rpc", name, "pymod", "add", "40", "2"], cli_epmd)
        assert (done.returncode, done.stdout) == (0, "42\n"), done.stderr
        done = run_cli([*base, "rpc", name, "pymod", "hello", '<<"joe">>'], cli_epmd)
        assert (done.returncode, done.stdout) == (0, '{hello,<<"joe">>}\n'), done.stderr
        done = run_cli([*base, "call", name, "keeper", "[1, 2]"], cli_epmd)
        assert (done.returncode, done.stdout) == (0, "{kept,[1,2]}\n"), done.stderr

        done = run_cli([*base, "rpc", name, "pymod", "nope"], cli_epmd)
        assert done.returncode == EXIT_REMOTE
        assert "{badrpc,{'EXIT',{undef," in done.stderr
        done = run_cli([*base, "call", name, "nobody", "hi"], cli_epmd)
        assert done.returncode == EXIT_REMOTE and "noproc" in done.stderr

        # a wrong cookie: pang for ping, 3 naming the node for the others
        done = run_cli(["--cookie", "wrong", "ping", name], cli_epmd)
        assert (done.returncode, done.stdout) == (EXIT_PANG, "pang\n")
        done = run_cli(["--cookie", "wrong", "rpc", name, "erlang", "node"], cli_epmd)
        assert done.returncode == EXIT_UNAVAILABLE and f"cannot connect to {name}" in done.stderr

        # the name is taken while it serves
        done = run_cli(["--name", name, "--cookie", COOKIE, "serve"], cli_epmd)
        assert done.returncode == EXIT_UNAVAILABLE and "already registered" in done.stderr

        assert served.terminate() == 0
        assert mark.read_text() == "Atom('shutdown')"  # the GenServer's terminate ran
    listing = run_cli(["names"], cli_epmd)
    assert f"name {alive} " not in listing.stdout


def test_serve_without_module_and_sigint(cli_epmd: int) -> None:
    name = f"{unique_name('pyserve')}@127.0.0.1"
    with running(["--name", name, "--cookie", COOKIE, "serve"], cli_epmd) as served:
        assert run_cli(["--cookie", COOKIE, "ping", name], cli_epmd).returncode == 0
        assert served.terminate(signal.SIGINT) == 0


def test_serve_stdin_watch(cli_epmd: int) -> None:
    name = f"{unique_name('pyserve')}@127.0.0.1"
    with running(["--name", name, "--cookie", COOKIE, "serve", "--stdin-watch"], cli_epmd,
                 stdin=subprocess.PIPE) as served:
        assert served.proc.stdin is not None
        served.proc.stdin.write("ignored\n")
        served.proc.stdin.flush()
        time.sleep(0.2)
        assert served.proc.poll() is None
        served.proc.stdin.close()
        assert served.proc.wait(10) == 0


@pytest.mark.parametrize(("source", "code", "message"), [
    ("raise ImportError('no such thing')\n", EXIT_SOFTWARE, "ImportError: no such thing"),
    ("ALLOW_RPC = [1]\n", EXIT_SOFTWARE, "ALLOW_RPC must be a dict"),
    ("ALLOW_SPAWN = {'mod': print}\n", EXIT_SOFTWARE, "must be a ('module', 'function') pair"),
    ("async def main(node):\n    raise RuntimeError('boom')\n", EXIT_SOFTWARE, "RuntimeError: boom"),
])
def test_serve_module_failures(cli_epmd: int, tmp_path: Path, source: str, code: int, message: str) -> None:
    path = tmp_path / "broken_actors.py"
    path.write_text(textwrap.dedent(source))
    name = f"{unique_name('pyserve')}@127.0.0.1"
    done = run_cli(["--name", name, "--cookie", COOKIE, "serve", str(path)], cli_epmd)
    assert done.returncode == code, done.stderr
    assert message in done.stderr
    assert done.stdout == ""  # no ready line


def test_serve_missing_file_exits_64(cli_epmd: int, tmp_path: Path) -> None:
    done = run_cli(["--cookie", COOKIE, "serve", str(tmp_path / "nope.py")], cli_epmd)
    assert done.returncode == EXIT_USAGE and "no such file" in done.stderr


def test_serve_without_epmd_exits_3_or_embeds_one(tmp_path: Path) -> None:
    port = free_port()
    name = f"{unique_name('pyserve')}@127.0.0.1"
    done = run_cli(["--name", name, "--cookie", COOKIE, "serve"], port)
    assert done.returncode == EXIT_UNAVAILABLE and "--embedded-epmd" in done.stderr
    with running(["--name", name, "--cookie", COOKIE, "serve", "--embedded-epmd"], port) as served:
        assert run_cli(["--cookie", COOKIE, "ping", name], port).stdout == "pong\n"
        assert served.terminate() == 0
