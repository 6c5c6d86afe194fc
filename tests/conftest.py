"""Shared fixtures: real BEAM runtimes (OTP 25 and OTP 28), a private EPMD, test nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.beam import BeamNode, Epmd, Runtime, available_runtimes
from tests.beam import runtime as find_runtime

RUNTIMES = available_runtimes()
REQUIRED_RUNTIMES = ["otp25", "otp28"]


def pytest_report_header(config: pytest.Config) -> str:
    found = ", ".join(f"{rt.label} ({rt.bin_dir})" for rt in RUNTIMES) or "none"
    return f"BEAM runtimes: {found}"


@pytest.fixture(scope="session")
def epmd() -> Iterator[Epmd]:
    """A private EPMD on a free loopback port for the whole run."""
    with Epmd() as server:
        yield server


@pytest.fixture(scope="module", params=REQUIRED_RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    """Each interop test runs on every required OTP major; a missing one is an error, not a skip."""
    return find_runtime(request.param)


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd) -> Iterator[BeamNode]:
    """A running node of the current runtime, shared by a module's tests."""
    with BeamNode(runtime, epmd_port=epmd.port, prefix="m") as node:
        yield node
