"""Internal: the BEAM nodes that ``python -m bridge.demo`` starts and stops.

Not public API. It finds Erlang/OTP (``erl``, ``epmd``) and Elixir on ``PATH``, runs a
private EPMD on a free loopback port, and starts real nodes that read Erlang
expressions on their standard input and answer ``term_to_binary`` of the result (the
same idea as the test suite's ``tests/beam.py``, kept here so that the demo runs from
an installed wheel, where ``tests/`` does not exist). Every OS process it starts is
owned by a context manager that stops it by its pid.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

from dist_proto import Pid, decode, format_term

__all__ = ["BeamError", "BeamNode", "Epmd", "EvalNode", "elixir_ebin_dirs", "find_erl", "pid_expr"]


class BeamError(RuntimeError):
    """An expression raised on the BEAM node, or the node is gone."""


def find_erl() -> Path:
    """``erl`` on ``PATH``; ``SystemExit`` with what to install when there is none."""
    erl = shutil.which("erl")
    if erl is None:
        raise SystemExit("the demo needs Erlang/OTP: `erl` is not on PATH "
                         "(Debian: apt-get install erlang-nox)")
    return Path(erl)


def elixir_ebin_dirs() -> list[Path]:
    """The ``ebin`` folders of the Elixir found on ``PATH`` (to load it into a plain ``erl``)."""
    elixir = shutil.which("elixir")
    if elixir is None:
        raise SystemExit("the demo needs Elixir: `elixir` is not on PATH "
                         "(Debian: apt-get install elixir)")
    lib = Path(elixir).resolve().parent.parent / "lib"
    dirs = sorted(lib.glob("*/ebin"))
    if not (lib / "elixir" / "ebin").exists():
        raise SystemExit(f"cannot find Elixir's ebin folders next to {elixir}")
    return dirs


def pid_expr(pid: Pid) -> str:
    """Erlang expression text that rebuilds ``pid`` (``NEW_PID_EXT``) on any node."""
    return (f"binary_to_term(<<131,88,119,{len(pid.node.name.encode())},\"{pid.node.name}\"/utf8,"
            f"{pid.id}:32,{pid.serial}:32,{pid.creation}:32>>)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    """Wait until something listens on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM ``proc`` (by its pid), then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(grace)


class Epmd:
    """A private ``epmd -port P -address 127.0.0.1`` on a free port, stopped by pid."""

    def __init__(self, erl: Path) -> None:
        self.port = free_port()
        binary = erl.parent / "epmd"
        command = str(binary) if binary.exists() else (shutil.which("epmd") or "epmd")
        self.proc = subprocess.Popen(
            [command, "-port", str(self.port), "-address", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_port(self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> Epmd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Reads "ID BASE64(expr)" lines; answers "@@ID ok|error BASE64(term_to_binary(...))".
# Bindings are kept from one expression to the next, as in the shell.
EVAL_LOOP = r"""
Loop = fun Loop(Bs) ->
  case io:get_line('') of
    eof -> erlang:halt(0);
    {error, _} -> erlang:halt(0);
    Line ->
      [Id, B64] = string:split(string:trim(Line), " "),
      Src0 = string:trim(unicode:characters_to_list(base64:decode(B64))),
      Src = case lists:last(Src0) of $. -> Src0; _ -> Src0 ++ "." end,
      {Reply, Bs1} =
        try
          {ok, Toks, _} = erl_scan:string(Src),
          {ok, Exprs} = erl_parse:parse_exprs(Toks),
          {value, V, NewBs} = erl_eval:exprs(Exprs, Bs),
          {[<<"ok ">>, base64:encode(term_to_binary(V))], NewBs}
        catch C:R:St ->
          {[<<"error ">>, base64:encode(term_to_binary({C, R, St}))], Bs}
        end,
      io:put_chars(standard_io, [<<"@@">>, Id, <<" ">>, Reply, <<"\n">>]),
      Loop(Bs1)
  end
end,
io:put_chars(standard_io, <<"@@READY\n">>),
Loop(erl_eval:new_bindings()).
"""


class EvalNode:
    """An ``erl`` OS process running :data:`EVAL_LOOP`: started by :meth:`_launch`,
    its output kept, expressions evaluated in order, stopped by its pid.

    The base of the demo's :class:`BeamNode` and of the test suite's (``tests/beam.py``),
    which differ only in how they build the command line and what ``eval`` returns.
    """

    name: str

    def _launch(self, argv: Sequence[str], env: dict[str, str], ready_timeout: float = 60) -> None:
        self.proc = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.log: list[str] = []
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, name=f"{self.name} output", daemon=True)
        self._reader.start()
        try:
            if self._replies.get(timeout=ready_timeout) != "READY":
                raise BeamError(f"node {self.name} did not start:\n{self.output()}")
        except queue.Empty:
            self.stop()
            raise BeamError(f"node {self.name} did not start in time:\n{self.output()}") from None
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                self._replies.put(line[2:].rstrip("\n"))
            else:
                self.log.append(line.rstrip("\n"))
        self._replies.put(None)

    def output(self) -> str:
        """The node's last lines of output (for error messages)."""
        return "\n".join(self.log[-50:])

    def _evaluate(self, expr: str, timeout: float) -> tuple[bool, bytes]:
        """Evaluate Erlang expression text: ``(True, term_to_binary(Value))``, or
        ``(False, term_to_binary({Class, Reason, Stack}))`` when it raised."""
        with self._lock:
            if self.proc.poll() is not None or self.proc.stdin is None:
                raise BeamError(f"node {self.name} is not running:\n{self.output()}")
            request = str(next(self._ids))
            self.proc.stdin.write(f"{request} {base64.b64encode(expr.encode()).decode()}\n")
            self.proc.stdin.flush()
            deadline = time.monotonic() + timeout
            while True:
                try:
                    line = self._replies.get(timeout=max(deadline - time.monotonic(), 0.001))
                except queue.Empty:
                    raise TimeoutError(f"{self.name}: no answer to {expr!r} in {timeout} s") from None
                if line is None:
                    raise BeamError(f"node {self.name} exited while evaluating {expr!r}:\n{self.output()}")
                answer_id, _, rest = line.partition(" ")
                if answer_id == request:
                    status, _, payload = rest.partition(" ")
                    return status == "ok", base64.b64decode(payload)

    def stop(self) -> None:
        """Close the node's standard input (it halts) and stop it by pid."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.close()
        stop_process(self.proc)
        self._reader.join(5)
        if self.proc.stdout is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdout.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BeamNode(EvalNode):
    """A real node ``PREFIX_<random>@127.0.0.1`` registered with the private EPMD.

    A context manager: leaving it stops the BEAM by its pid (the BEAM is exec'd by
    ``erl``, so the pid held is the BEAM's).
    """

    def __init__(self, erl: Path, *, epmd_port: int, prefix: str, cookie: str,
                 elixir: bool = False, extra_args: Sequence[str] = ()) -> None:
        self.name = f"{prefix}_{secrets.token_hex(3)}@127.0.0.1"
        args = list(extra_args)
        boot = ""
        if elixir:
            for ebin in elixir_ebin_dirs():
                args += ["-pa", str(ebin)]
            boot = "{ok, _} = application:ensure_all_started(elixir), "
        argv = [str(erl), "-noshell", "-name", self.name, "-setcookie", cookie,
                "-start_epmd", "false", "-kernel", "inet_dist_use_interface", "{127,0,0,1}",
                *args, "-eval", boot + EVAL_LOOP]
        self._launch(argv, dict(os.environ, ERL_EPMD_PORT=str(epmd_port)))

    def eval(self, expr: str, timeout: float = 60) -> Any:
        """Evaluate Erlang expression text on the node; return the value, decoded."""
        ok, data = self._evaluate(expr, timeout)
        value = decode(data)
        if not ok:
            raise BeamError(f"{self.name}: {expr!r} raised {format_term(value)[:2000]}")
        return value
