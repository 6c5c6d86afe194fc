"""Fixtures shared by the interop tests that run programs as a user would."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.beam import REPO_ROOT, Epmd


@pytest.fixture
def epmd_env() -> Iterator[dict[str, str]]:
    """The environment of a user's shell, with an EPMD of this test's own."""
    with Epmd() as epmd:
        env = {k: v for k, v in os.environ.items() if k not in ("BEAM_BRIDGE_COOKIE", "PYTHONPATH")}
        env["ERL_EPMD_PORT"] = str(epmd.port)
        env["PYTHONPATH"] = str(REPO_ROOT)  # the package as installed in development (pip install -e)
        yield env
