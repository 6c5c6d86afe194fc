"""Cookie resolution, as BEAM does it (``auth:get_cookie/0``), plus one environment variable.

Order: the explicit argument, then ``$BEAM_BRIDGE_COOKIE``, then ``~/.erlang.cookie``
(created with mode 0400 and 20 random upper-case letters when missing, as ``erl`` does).

>>> resolve_cookie("secret")
'secret'
"""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from .errors import BridgeError

__all__ = ["COOKIE_ENV", "CookieError", "resolve_cookie"]

COOKIE_ENV = "BEAM_BRIDGE_COOKIE"


class CookieError(BridgeError, RuntimeError):
    """No usable cookie: the cookie file is unreadable, empty or too open."""


def _cookie_file(home: Path | None) -> Path:
    return (home or Path.home()) / ".erlang.cookie"


def resolve_cookie(cookie: str | None = None, *, home: Path | None = None) -> str:
    """Return the cookie to use: argument, then ``$BEAM_BRIDGE_COOKIE``, then ``~/.erlang.cookie``."""
    if cookie:
        return cookie
    from_env = os.environ.get(COOKIE_ENV)
    if from_env:
        return from_env
    path = _cookie_file(home)
    if not path.exists():
        value = "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise CookieError(f"cannot read cookie file {path}: {exc}") from exc
    value = text.strip().split("\n", 1)[0].strip() if text.strip() else ""
    if not value:
        raise CookieError(f"cookie file {path} is empty")
    if path.stat().st_mode & 0o077:
        raise CookieError(f"cookie file {path} must be accessible by owner only")
    return value
