"""``python -m bridge`` against real BEAM nodes (OTP 25 and OTP 28), run as a subprocess
with ``ERL_EPMD_PORT`` pointing at the private test EPMD."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.cli import EXIT_PANG, EXIT_REMOTE, EXIT_UNAVAILABLE
from dist_proto.terms import Atom
from tests.beam import REPO_ROOT, TEST_COOKIE, BeamNode, Epmd, unique_name
from tests.bridge.test_cli import run_cli, running, served_module

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def inbox(beam: BeamNode) -> Iterator[None]:
    """``cli_inbox``: stores every message it gets in the ETS set ``cli_got``;
    ``cli_server``: answers gen_server calls ``Req`` with ``{echo, Req}``, by hand."""
    beam.check(
        "cli_got = ets:new(cli_got, [set, public, named_table]),"
        "Inbox = spawn(fun Loop() -> receive M -> ets:insert(cli_got, {M}), Loop() end end),"
        "register(cli_inbox, Inbox),"
        "Server = spawn(fun Serve() ->"
        "  receive {'$gen_call', {From, Tag}, Req} -> From ! {Tag, {echo, Req}}, Serve() end"
        " end),"
        "register(cli_server, Server)"
    )
    yield


def cli(beam: BeamNode, epmd: Epmd, *args: str, cookie: str = TEST_COOKIE) -> Any:
    return run_cli(["--cookie", cookie, *args], epmd.port)


def eventually(cond: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_ping(beam: BeamNode, epmd: Epmd) -> None:
    done = cli(beam, epmd, "ping", beam.name)
    assert (done.returncode, done.stdout) == (0, "pong\n"), done.stderr
    done = cli(beam, epmd, "ping", f"{unique_name('absent')}@127.0.0.1")
    assert (done.returncode, done.stdout) == (EXIT_PANG, "pang\n")
    assert "not registered with EPMD" in done.stderr
    done = cli(beam, epmd, "ping", beam.name, cookie="not_the_cookie")
    assert (done.returncode, done.stdout) == (EXIT_PANG, "pang\n")


def test_rpc(beam: BeamNode, epmd: Epmd) -> None:
    done = cli(beam, epmd, "rpc", beam.name, "erlang", "node")
    assert (done.returncode, done.stdout) == (0, f"'{beam.name}'\n"), done.stderr
    done = cli(beam, epmd, "rpc", beam.name, "lists", "reverse", "[1,2,3]")
    assert (done.returncode, done.stdout) == (0, "[3,2,1]\n"), done.stderr
    done = cli(beam, epmd, "rpc", beam.name, "erlang", "list_to_tuple", '[a, <<"b">>, 1.5, #{k => "str"}]',
               "--strings")
    assert (done.returncode, done.stdout) == (0, '{a,<<"b">>,1.5,#{k => "str"}}\n'), done.stderr


def test_rpc_errors(beam: BeamNode, epmd: Epmd) -> None:
    done = cli(beam, epmd, "rpc", beam.name, "erlang", "error", "boom")
    assert done.returncode == EXIT_REMOTE
    assert "{badrpc,{'EXIT',{boom," in done.stderr and done.stdout == ""
    done = cli(beam, epmd, "rpc", beam.name, "no_such_module", "f")
    assert done.returncode == EXIT_REMOTE and "undef" in done.stderr
    done = cli(beam, epmd, "rpc", beam.name, "erlang", "node", cookie="not_the_cookie")
    assert done.returncode == EXIT_UNAVAILABLE
    assert f"cannot connect to {beam.name}" in done.stderr


def test_names_lists_the_beam_node(beam: BeamNode, epmd: Epmd) -> None:
    _, port, _ = beam.eval_term(f'erl_epmd:port_please("{beam.alive}", {{127,0,0,1}})')
    done = run_cli(["names"], epmd.port)
    assert done.returncode == 0
    assert f"name {beam.alive} at port {port}" in done.stdout.splitlines()


def test_send_and_cast(beam: BeamNode, epmd: Epmd, inbox: None) -> None:
    done = cli(beam, epmd, "send", beam.name, "cli_inbox", '{hello, [1, <<"two">>], 3.0}')
    assert done.returncode == 0, done.stderr
    eventually(lambda: beam.eval_term("ets:member(cli_got, {hello, [1, <<\"two\">>], 3.0})"))
    done = cli(beam, epmd, "cast", beam.name, "cli_inbox", "please")
    assert done.returncode == 0, done.stderr
    eventually(lambda: beam.eval_term("ets:member(cli_got, {'$gen_cast', please})"))


def test_call(beam: BeamNode, epmd: Epmd, inbox: None) -> None:
    done = cli(beam, epmd, "call", beam.name, "cli_server", "{get, 42}")
    assert (done.returncode, done.stdout) == (0, "{echo,{get,42}}\n"), done.stderr
    done = cli(beam, epmd, "call", beam.name, "nobody_here", "hi")
    assert done.returncode == EXIT_REMOTE and "noproc" in done.stderr


def test_serve_for_the_beam(beam: BeamNode, epmd: Epmd, tmp_path: Path) -> None:
    module, mark = served_module(tmp_path)
    name = f"{unique_name('pyserve')}@127.0.0.1"
    with running(["--name", name, "--cookie", TEST_COOKIE, "serve", str(module)], epmd.port,
                 CLI_TEST_MARK=str(mark)) as served:
        assert served.ready_line.startswith(f"node {name} up (port ")
        assert beam.eval_term(f"rpc:call('{name}', pymod, add, [1, 2])") == 3
        assert beam.eval_term(f"rpc:call('{name}', pymod, hello, [<<\"joe\">>])") == (Atom("hello"), b"joe")
        assert beam.eval_term(f"gen_server:call({{keeper, '{name}'}}, ping)") == (Atom("kept"), Atom("ping"))
        assert served.terminate() == 0
        assert mark.read_text() == "Atom('shutdown')"
    assert beam.eval_term(f"net_adm:ping('{name}')") == Atom("pang")


def test_serve_as_a_beam_port_stops_with_its_owner(beam: BeamNode, epmd: Epmd) -> None:
    """The BEAM runs ``python -m bridge serve --stdin-watch`` as a port; closing the port
    (its owner going away) closes the program's stdin, and the node stops: no orphan."""
    name = f"{unique_name('pyport')}@127.0.0.1"
    args = ["-m", "bridge", "--name", name, "--cookie", TEST_COOKIE, "serve", "--stdin-watch"]
    erl_args = "[" + ",".join(f'"{a}"' for a in args) + "]"
    os_pid, line = beam.eval_term(
        f'Port = open_port({{spawn_executable, "{sys.executable}"}},'
        f'  [{{args, {erl_args}}}, {{cd, "{REPO_ROOT}"}}, {{line, 512}}, use_stdio]),'
        "put(cli_port, Port),"
        "{os_pid, OsPid} = erlang:port_info(Port, os_pid),"
        "receive {Port, {data, {eol, Line}}} -> {OsPid, list_to_binary(Line)}"
        " after 30000 -> {OsPid, timeout} end"
    )
    assert line.startswith(f"node {name} up (port ".encode()), beam.output()
    assert beam.eval_term(f"net_adm:ping('{name}')") == Atom("pong")
    beam.check("port_close(get(cli_port))")
    eventually(lambda: not _alive(os_pid))
    eventually(lambda: beam.eval_term(f"net_adm:ping('{name}')") == Atom("pang"))


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
