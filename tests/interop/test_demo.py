"""`make demo` runs end to end and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.beam import REPO_ROOT

pytestmark = pytest.mark.interop


def test_demo_runs_and_cleans_up() -> None:
    if not (REPO_ROOT / "_build" / "default" / "lib" / "beam_bridge" / "ebin" / "beam_bridge.beam").exists():
        subprocess.run(["rebar3", "compile"], cwd=REPO_ROOT, check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-m", "bridge.demo"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    for line in ("-> 42", "GenServer.call(..., :get) -> 5", "restarted as", "restarted by py_sup",
                 "node and its actors back in", "Processes left behind: none"):
        assert line in out.stdout, f"missing {line!r} in:\n{out.stdout}"
