"""Every example in examples/ run as a user runs it, against real nodes; Erlang examples on
OTP 25 and 28, Elixir ones on OTP 25 (Elixir 1.14 runs there only).

Each test has its own EPMD, so the examples keep their plain names (py@127.0.0.1,
app@127.0.0.1); every process a test starts is stopped by its pid.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.beam import REPO_ROOT, BeamNode, Runtime
from tests.beam import runtime as find_runtime
from tests.interop.erl_build import rebar3_ebin

pytestmark = pytest.mark.interop

EXAMPLES = REPO_ROOT / "examples"
PY = "py@127.0.0.1"
APP = "app@127.0.0.1"


class Running:
    """A long-running example process: its output is collected, it is stopped by pid."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> None:
        self.proc = subprocess.Popen(list(argv), cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                raise AssertionError(f"{text!r} not printed in {timeout} s; output:\n"
                                     + "\n".join(self.seen)) from None

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(10)


@contextlib.contextmanager
def running(argv: Sequence[str], env: dict[str, str], ready: str, cwd: Path = REPO_ROOT) -> Iterator[Running]:
    proc = Running(argv, env, cwd)
    try:
        proc.wait_for(ready)
        yield proc
    finally:
        proc.stop()


def run(argv: Sequence[str], env: dict[str, str], cwd: Path = REPO_ROOT, timeout: float = 120) -> str:
    out = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{argv} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def escript(runtime: Runtime) -> str:
    return str(runtime.bin_dir / "escript")


def elixir() -> str:
    found = shutil.which("elixir")
    assert found, "Elixir is part of the test set-up (make deps)"
    return found


def serve_actors(env: dict[str, str]) -> contextlib.AbstractContextManager[Running]:
    return running([sys.executable, "-m", "bridge", "--name", PY, "--cookie", "secret", "serve",
                    "examples/supervise/actors.py"], env, ready=f"node {PY} up")


def assert_lines(output: str, *expected: str) -> None:
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output}"


def test_join_a_cluster_and_call_an_elixir_genserver(epmd_env: dict[str, str]) -> None:
    with running([elixir(), "--name", APP, "--cookie", "secret", "examples/join_and_call/counter.exs"],
                 epmd_env, ready="MyApp.Counter is registered") as app:
        out = run([sys.executable, "examples/join_and_call/client.py", APP], epmd_env)
        assert_lines(out, "ping: True", "rpc erlang:node(): app@127.0.0.1\n",
                     "GenServer.call(MyApp.Counter, :get): 41", "GenServer.call(MyApp.Counter, {:add, 1}): 42",
                     'sent {:log, "hello"} to MyApp.Counter')
        app.wait_for("MyApp.Counter got a message from Python: hello", timeout=10)


def test_be_called_by_elixir(epmd_env: dict[str, str]) -> None:
    with running([sys.executable, "examples/called_by_beam/counter.py"], epmd_env, ready=f"{PY} is up"):
        out = run([elixir(), "--name", APP, "--cookie", "secret", "examples/called_by_beam/call_python.exs"],
                  epmd_env)
    assert_lines(out, "ping: :pong", "GenServer.call(py_counter, :get): 5",
                 ":rpc.call(pymath, add, [1, 2]): 3", ":erpc.call(pymath, nope, []) raised: :undef",
                 f'hidden nodes seen from Elixir: [:"{PY}"]')


@pytest.mark.parametrize("otp", ["otp25", "otp28"])
def test_be_called_by_erlang(epmd_env: dict[str, str], otp: str) -> None:
    rt = find_runtime(otp)
    with running([sys.executable, "examples/called_by_beam/counter.py"], epmd_env, ready=f"{PY} is up"):
        out = run([escript(rt), "examples/called_by_beam/call_python.escript", PY], rt.environ(epmd_env))
    assert_lines(out, "ping: pong", "gen_server:call(py_counter, get): 5", "rpc:call(pymath, add, [1, 2]): 3",
                 "erpc:call(pymath, nope, []) raised: undef", f"nodes(hidden): ['{PY}']")


@pytest.mark.parametrize("otp", ["otp25", "otp28"])
def test_supervise_a_python_actor_from_erlang(epmd_env: dict[str, str], otp: str) -> None:
    rt = find_runtime(otp)
    with serve_actors(epmd_env):
        out = run([escript(rt), "examples/supervise/supervise.escript", PY, str(rebar3_ebin())],
                  rt.environ(epmd_env))
    assert_lines(out, f"child started on '{PY}'", "after cast 5, get: 15",
                 "the Python child crashed with a RuntimeError", "restarted as", ", get: 10", "supervisor stopped")


def test_supervise_python_actors_from_elixir(epmd_env: dict[str, str]) -> None:
    with serve_actors(epmd_env):
        out = run([elixir(), "--name", APP, "--cookie", "secret", "-pa", str(rebar3_ebin()),
                   "examples/supervise/supervise.exs", PY], epmd_env)
    assert_lines(out, f"counter runs on {PY}: get -> 10", f"second runs on {PY}: get -> 20", "supervisor stopped")


@pytest.mark.parametrize("otp", ["otp25", "otp28"])
def test_the_command_line(epmd_env: dict[str, str], otp: str) -> None:
    rt = find_runtime(otp)
    erl = [str(rt.erl), "-noshell", "-name", APP, "-setcookie", "secret"]
    with running([*erl, "-eval", 'io:format("up~n")'], rt.environ(epmd_env), ready="up"):
        out = run(["sh", "examples/cli/session.sh", APP], {**epmd_env, "PYTHON": sys.executable})
    assert_lines(out, "pong\n", "'app@127.0.0.1'\n", "[72,69,76,76,79]\n", '"HELLO"\n',
                 '{kernel,"ERTS  CXC 138 10",', "pang\n", "exit code 1\n", "name app at port")


def test_mix_project_with_a_path_dependency(epmd_env: dict[str, str], tmp_path: Path) -> None:
    """The mix recipe of the README, offline: MIX_REBAR3 names the rebar3 to build beam_bridge."""
    project = tmp_path / "elixir_app"
    shutil.copytree(EXAMPLES / "elixir_app", project, ignore=shutil.ignore_patterns("_build", "deps"))
    rebar3 = shutil.which("rebar3")
    assert rebar3, "rebar3 is part of the test set-up (make deps)"
    env = {**epmd_env, "BEAM_BRIDGE_PATH": str(REPO_ROOT), "MIX_REBAR3": rebar3}
    run(["mix", "compile"], env, cwd=project, timeout=300)
    assert (project / "_build" / "dev" / "lib" / "beam_bridge" / "ebin" / "Elixir.BeamBridge.beam").exists()
    with serve_actors(epmd_env):
        out = run([elixir(), "--name", APP, "--cookie", "secret", "-S", "mix", "run", "-e",
                   f'ElixirApp.main(:"{PY}")'], env, cwd=project, timeout=300)
    assert_lines(out, f"counter on {PY}: 15", "ping: :pong",
                 "rpc of a function actors.py does not allow-list raises :undef",
                 "docs of PyChild and BeamBridge are available in IEx")


def cli_md_serve_module() -> str:
    """The ``actors.py`` of docs/cli.md, exactly as the page shows it."""
    text = (REPO_ROOT / "docs" / "cli.md").read_text()
    start = text.index("```python\n# actors.py\n") + len("```python\n")
    return text[start:text.index("```", start)]


@pytest.mark.parametrize("otp", ["otp25", "otp28"])
def test_the_serve_module_of_cli_md_as_written(epmd_env: dict[str, str], otp: str, tmp_path: Path) -> None:
    """Its ALLOW_SPAWN entry is one beam_bridge (and so PyChild) can start; ALLOW_RPC and
    main work as the page says."""
    module = tmp_path / "actors.py"
    module.write_text(cli_md_serve_module())
    port = int(epmd_env["ERL_EPMD_PORT"])
    with running([sys.executable, "-m", "bridge", "--name", PY, "--cookie", "secret", "serve", str(module)],
                 epmd_env, ready=f"node {PY} up"), \
         BeamNode(find_runtime(otp), epmd_port=port, prefix="app", cookie="secret",
                  extra_args=["-pa", str(rebar3_ebin())]) as app:
        started = app.eval_term(f"{{ok, P}} = beam_bridge:start_link('{PY}', counter, 0), "
                                "R = gen_server:call(P, hello), unlink(P), exit(P, shutdown), R")
        assert started == 1
        assert app.eval_term(f"rpc:call('{PY}', py, add, [1, 2])") == 3
        assert app.eval_term(f"gen_server:call({{counter, '{PY}'}}, hello)") == 1


def test_blocking_code_and_kill() -> None:
    """README quick start 3: a blocked plain handler stalls only its own actor; kill is
    immediate and the stuck call exits ``killed``. No BEAM node needed."""
    out = run([sys.executable, "examples/blocking/blocking.py"], dict(os.environ), timeout=60)
    assert_lines(out, "499500", "False", "killed")


def test_a_model_handle_used_from_elixir(epmd_env: dict[str, str]) -> None:
    """examples/handles: Elixir fits a numpy model in Python, predicts with its handle,
    reads a numpy array reply with bit syntax, releases the handle."""
    with running([sys.executable, "examples/handles/models.py"], epmd_env, ready=f"{PY} is up"):
        out = run([elixir(), "--name", APP, "--cookie", "secret", "-pa", str(rebar3_ebin()),
                   "examples/handles/predict.exs", PY], epmd_env)
    assert_lines(out, f"handle from {PY}: a numpy.polynomial.polynomial.Polynomial",
                 "1000 predictions, f(10.0) = 201.0",
                 "predict_many: type {:f, 64}, shape {3}, values [1.0, 3.0, 9.0]",
                 f"handles on {PY}: 1", f"released; handles on {PY}: 0",
                 "predict after release: {:error, {:stale_handle, handle}}")
