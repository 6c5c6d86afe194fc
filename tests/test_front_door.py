"""The package's front door: one version for the three packages, the CLI's global options."""

from __future__ import annotations

import importlib
import tomllib

import pytest

from bridge.cli import build_parser
from tests.beam import REPO_ROOT


@pytest.mark.parametrize("package", ["dist_proto", "python_actors", "bridge"])
def test_version_is_the_one_in_pyproject(package: str) -> None:
    with open(REPO_ROOT / "pyproject.toml", "rb") as fh:
        expected = tomllib.load(fh)["project"]["version"]
    assert importlib.import_module(package).__version__ == expected


@pytest.mark.parametrize("command", [["rpc", "n@h", "m", "f"], ["call", "n@h", "srv", "get"]])
def test_strings_before_or_after_the_command(command: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["--strings", *command]).strings is True
    assert parser.parse_args([*command, "--strings"]).strings is True
    assert parser.parse_args(command).strings is False


def test_strings_is_accepted_before_any_command() -> None:
    assert build_parser().parse_args(["--strings", "ping", "n@h"]).strings is True
