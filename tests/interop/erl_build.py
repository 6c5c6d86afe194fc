"""The beam_bridge application built as a user builds it (``rebar3 compile``), with its
docs embedded in the .beam files by the compile hook (not collected by pytest)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from tests.beam import REPO_ROOT


@functools.cache
def rebar3_ebin() -> Path:
    """``rebar3 compile`` at the repository root (a no-op when up to date); its ebin folder."""
    out = subprocess.run(["rebar3", "compile"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"rebar3 compile failed:\n{out.stdout}\n{out.stderr}")
    return REPO_ROOT / "_build" / "default" / "lib" / "beam_bridge" / "ebin"
