"""bridge.event_loop: uvloop for the loops the project creates, chosen by BEAM_BRIDGE_LOOP."""

from __future__ import annotations

import asyncio
import importlib.util
import sys

import pytest

from bridge import event_loop

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def test_asyncio_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "asyncio")
    loop = event_loop.new_event_loop()
    try:
        assert event_loop.loop_name(loop) == "asyncio"
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_auto_uses_uvloop_exactly_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.LOOP_ENV, raising=False)

    async def which() -> str:
        return event_loop.loop_name(asyncio.get_running_loop())

    assert event_loop.run(which()) == ("uvloop" if HAS_UVLOOP else "asyncio")


def test_uvloop_demanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "uvloop")
    if HAS_UVLOOP:
        loop = event_loop.new_event_loop()
        try:
            assert event_loop.loop_name(loop) == "uvloop"
        finally:
            loop.close()
    else:
        with pytest.raises(RuntimeError, match="not installed"):
            event_loop.new_event_loop()


def test_bad_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "trio")
    with pytest.raises(ValueError, match="auto, asyncio or uvloop"):
        event_loop.loop_factory()


def test_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where uvloop is absent (as on the 3.12/3.13 unit venvs): auto falls back, a demand fails."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes the import raise ImportError
    monkeypatch.setenv(event_loop.LOOP_ENV, "auto")
    loop = event_loop.new_event_loop()
    try:
        assert event_loop.loop_name(loop) == "asyncio"
    finally:
        loop.close()
    monkeypatch.setenv(event_loop.LOOP_ENV, "uvloop")
    with pytest.raises(RuntimeError, match="not installed"):
        event_loop.new_event_loop()
