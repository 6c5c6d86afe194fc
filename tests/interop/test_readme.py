"""The README's quick starts, run exactly as written, against real nodes.

Each program block is taken out of README.md as it stands and run as a user would run
it: the Python blocks as scripts, the Elixir and Erlang lines on a node, each line's
``# => value`` / ``%% => value`` comment checked. The nodes keep the README's plain
names (``py@127.0.0.1``, ``app@127.0.0.1``, cookie ``secret``): each test has an EPMD
of its own (``ERL_EPMD_PORT``), and stops what it starts by pid.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.beam import REPO_ROOT, Runtime
from tests.beam import runtime as find_runtime
from tests.interop.erl_build import rebar3_ebin
from tests.interop.test_examples import APP, Running, elixir, run, running
from tests.tls_certs import make_pki, ssl_code_path, write_optfile

pytestmark = pytest.mark.interop

README = REPO_ROOT / "README.md"


def section(heading: str) -> str:
    """The README text under the heading that starts with ``heading``, up to the next heading."""
    text = README.read_text()
    match = re.search(rf"^#+ {re.escape(heading)}.*?$(.*?)(?=^#+ )", text, re.M | re.S)
    assert match, f"README has no heading {heading!r}"
    return match.group(1)


def blocks(heading: str, language: str) -> list[str]:
    """The ``language`` code blocks of a README section, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", section(heading), re.M | re.S)


def script(tmp_path: Path, code: str, name: str = "quickstart.py") -> Path:
    path = tmp_path / name
    path.write_text(code)
    return path


def comment_values(code: str, marker: str = "# =>") -> list[tuple[str, str]]:
    """(expression, expected) for each line of ``code`` that ends with ``marker value``."""
    pairs = []
    for line in code.splitlines():
        if marker in line:
            expr, expected = line.split(marker, 1)
            pairs.append((expr.strip(), expected.strip()))
    return pairs


def beam_app(rt: Runtime, env: dict[str, str], *extra: str) -> list[str]:
    """``erl -name app@127.0.0.1 -setcookie secret`` staying up until its stdin closes."""
    return [str(rt.erl), "-noshell", "-name", APP, "-setcookie", "secret", *extra, "-eval",
            'io:format("app up~n"), io:get_line(""), halt().']


def test_quick_start_1_join_and_call(epmd_env: dict[str, str], tmp_path: Path) -> None:
    program, blocking = blocks("1. Join a cluster", "python")
    counter = REPO_ROOT / "examples" / "join_and_call" / "counter.exs"
    assert f"elixir --name {APP} --cookie secret examples/join_and_call/counter.exs" in section("1. Join a cluster")
    with running([elixir(), "--name", APP, "--cookie", "secret", str(counter)], epmd_env,
                 ready="MyApp.Counter is registered") as app:
        out = run([sys.executable, str(script(tmp_path, program))], epmd_env, cwd=tmp_path)
        assert out.splitlines() == ["True", "app@127.0.0.1", "41"]
        app.wait_for("MyApp.Counter got a message from Python: hello", timeout=10)
        run([sys.executable, str(script(tmp_path, blocking, "blocking.py"))], epmd_env, cwd=tmp_path)


def test_quick_start_2_be_called_by_elixir(epmd_env: dict[str, str], tmp_path: Path) -> None:
    (program,) = blocks("2. Be called by BEAM", "python")
    (calls,) = blocks("2. Be called by BEAM", "elixir")
    cast, *_ = calls.splitlines()
    checks = comment_values(calls)
    assert cast.startswith("GenServer.cast") and len(checks) == 2
    # Wait until the Python node has registered py_counter, then run the cast as written
    # and each checked line, comparing it with its comment.
    wait = (
        'Enum.find_value(1..500, fn _ -> is_pid(try do :erpc.call(:"py@127.0.0.1", :erlang, :whereis, '
        '[:py_counter]) catch _, _ -> nil end) || (Process.sleep(20); nil) end)'
    )
    lines = [
        f'IO.puts(case {expr} do {expected} -> "ok"; other -> "line {n}: #{{inspect(other)}}" end)'
        for n, (expr, expected) in enumerate(checks, 1)
    ]
    elixir_script = script(tmp_path, "\n".join([wait, cast, *lines]) + "\n", "calls.exs")
    python = Running([sys.executable, str(script(tmp_path, program))], epmd_env, cwd=tmp_path)
    try:
        out = run([elixir(), "--name", APP, "--cookie", "secret", str(elixir_script)], epmd_env, cwd=tmp_path)
    finally:
        python.stop()
    assert out.splitlines() == ["ok", "ok"], out


@pytest.mark.parametrize("otp", ["otp25", "otp28"])
def test_quick_start_9_tls(epmd_env: dict[str, str], tmp_path: Path, otp: str) -> None:
    rt = find_runtime(otp)
    (program,) = blocks("9. TLS distribution", "python")
    (console,) = blocks("9. TLS distribution", "console")
    pki = make_pki(tmp_path / "pki", ("app", "py"))
    opts = {"verify": ":verify_peer", "cacertfile": str(pki.cacertfile)}
    write_optfile(tmp_path / "ssl_dist.conf",
                  {**opts, "certfile": str(pki.nodes["py"].certfile), "keyfile": str(pki.nodes["py"].keyfile)},
                  {**opts, "certfile": str(pki.nodes["py"].certfile), "keyfile": str(pki.nodes["py"].keyfile)})
    app_conf = write_optfile(
        tmp_path / "app.conf",
        {**opts, "certfile": str(pki.nodes["app"].certfile), "keyfile": str(pki.nodes["app"].keyfile)},
        {**opts, "certfile": str(pki.nodes["app"].certfile), "keyfile": str(pki.nodes["app"].keyfile)})
    tls = [*ssl_code_path(rt.bin_dir), "-proto_dist", "inet_tls", "-ssl_dist_optfile", str(app_conf)]
    with running(beam_app(rt, epmd_env, *tls), rt.environ(epmd_env), ready="app up", cwd=tmp_path):
        out = run([sys.executable, str(script(tmp_path, program))], epmd_env, cwd=tmp_path)
        assert out.splitlines() == ["True"]
        command, expected = console.strip().splitlines()
        argv = command.removeprefix("$ ").split()
        assert argv[:3] == ["python", "-m", "bridge"]
        out = run([sys.executable, *argv[1:]], epmd_env, cwd=tmp_path)
        assert out.strip() == expected


@pytest.mark.parametrize("otp", ["otp25", "otp28"])
def test_quick_start_10_global_names(epmd_env: dict[str, str], tmp_path: Path, otp: str) -> None:
    rt = find_runtime(otp)
    heading = "10. Global names"
    (program,) = blocks(heading, "python")
    assert f"`erl -name {APP} -setcookie secret`" in section(heading)
    with running(beam_app(rt, epmd_env), rt.environ(epmd_env), ready="app up", cwd=tmp_path):
        out = run([sys.executable, str(script(tmp_path, program))], epmd_env, cwd=tmp_path)
    assert out.splitlines() == ["hi", "True"]


def test_quick_start_11_handles_and_arrays(epmd_env: dict[str, str], tmp_path: Path) -> None:
    heading = "11. Python objects and numpy arrays"
    (program,) = blocks(heading, "python")
    (elixir_side,) = blocks(heading, "elixir")
    wait = ('Enum.find_value(1..500, fn _ -> is_pid(try do :erpc.call(:"py@127.0.0.1", :erlang, :whereis, '
            '[:py_models]) catch _, _ -> nil end) || (Process.sleep(20); nil) end)\n')
    exs = script(tmp_path, wait + elixir_side, "models.exs")
    python = Running([sys.executable, str(script(tmp_path, program))], epmd_env, cwd=tmp_path)
    try:
        out = run([elixir(), "--name", APP, "--cookie", "secret", "-pa", str(rebar3_ebin()), str(exs)],
                  epmd_env, cwd=tmp_path)
    finally:
        python.stop()
    assert out.splitlines() == ["[201.0, 1.5]"], out
