"""Cookie resolution (argument, $BEAM_BRIDGE_COOKIE, ~/.erlang.cookie) and node names."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bridge.cookie import COOKIE_ENV, CookieError, resolve_cookie
from bridge.naming import NodeNameError, parse_node_name


def test_argument_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(COOKIE_ENV, "from_env")
    assert resolve_cookie("arg", home=tmp_path) == "arg"


def test_environment_before_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".erlang.cookie").write_text("from_file")
    monkeypatch.setenv(COOKIE_ENV, "from_env")
    assert resolve_cookie(None, home=tmp_path) == "from_env"


def test_file_is_created_0400_like_erl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(COOKIE_ENV, raising=False)
    cookie = resolve_cookie(None, home=tmp_path)
    path = tmp_path / ".erlang.cookie"
    assert len(cookie) == 20 and cookie.isupper() and cookie.isalpha()
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert resolve_cookie(None, home=tmp_path) == cookie


def test_open_cookie_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(COOKIE_ENV, raising=False)
    path = tmp_path / ".erlang.cookie"
    path.write_text("SECRET\n")
    path.chmod(0o644)
    with pytest.raises(CookieError, match="owner only"):
        resolve_cookie(None, home=tmp_path)
    path.chmod(0o600)
    assert resolve_cookie(None, home=tmp_path) == "SECRET"


def test_empty_cookie_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(COOKIE_ENV, raising=False)
    path = tmp_path / ".erlang.cookie"
    path.write_text("\n")
    path.chmod(0o400)
    with pytest.raises(CookieError, match="empty"):
        resolve_cookie(None, home=tmp_path)


@pytest.mark.parametrize(
    ("name", "long"),
    [("py@127.0.0.1", True), ("py@host.example.com", True), ("py@host", False), ("py@::1", True)],
)
def test_long_and_short_names(name: str, long: bool) -> None:
    assert parse_node_name(name).is_long is long


@pytest.mark.parametrize("bad", ["@host", "py@", "a@b@c", "py@\x00"])
def test_bad_names(bad: str) -> None:
    with pytest.raises(NodeNameError):
        parse_node_name(bad)


def test_bare_name_takes_default_host() -> None:
    assert str(parse_node_name("py", default_host="box")) == "py@box"
