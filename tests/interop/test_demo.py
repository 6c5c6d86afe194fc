"""``python -m bridge.demo`` runs end to end from an installed wheel and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from bridge.demo import find_ebin
from tests.beam import REPO_ROOT

pytestmark = pytest.mark.interop

EBIN = REPO_ROOT / "_build" / "default" / "lib" / "beam_bridge" / "ebin"


def build_wheel(out: Path) -> Path:
    """``pip wheel`` of the repository (no dependencies: the package has none)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(out), str(REPO_ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("beam_bridge-*.whl")
    return wheel


def fresh_venv_with(wheel: Path, where: Path) -> Path:
    """A new virtualenv with only the wheel installed; returns its python."""
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return python


@pytest.fixture(scope="module")
def ebin() -> Path:
    if not (EBIN / "beam_bridge.beam").exists():
        subprocess.run(["rebar3", "compile"], cwd=REPO_ROOT, check=True, capture_output=True)
    return EBIN


def test_demo_runs_from_a_wheel_and_cleans_up(tmp_path: Path, ebin: Path) -> None:
    python = fresh_venv_with(build_wheel(tmp_path / "dist"), tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing of tests/ can be imported
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BEAM_BRIDGE_EBIN")}
    where = subprocess.run([str(python), "-c", "import bridge; print(bridge.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(tmp_path / "venv")), where.stdout
    out = subprocess.run([str(python), "-m", "bridge.demo", "--ebin", str(ebin)], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    for line in ("-> 42", "GenServer.call(..., :get) -> 5", "restarted as", "restarted by py_sup",
                 "node and its actors back in", "Processes left behind: none"):
        assert line in out.stdout, f"missing {line!r} in:\n{out.stdout}"


def test_demo_finds_the_erlang_application_or_says_how_to_build_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ebin: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BEAM_BRIDGE_EBIN", raising=False)
    with pytest.raises(SystemExit, match="rebar3 compile"):
        find_ebin(None)
    with pytest.raises(SystemExit, match="--ebin"):
        find_ebin(str(tmp_path))
    assert find_ebin(str(ebin)) == ebin.resolve()
    monkeypatch.setenv("BEAM_BRIDGE_EBIN", str(ebin))
    assert find_ebin(None) == ebin.resolve()
