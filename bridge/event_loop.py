"""The event loop the project creates for itself: uvloop when installed, asyncio's otherwise.

Used only where beam-bridge makes its own loop (the CLI, :class:`bridge.BlockingNode`,
the demo); a library user's loop is never replaced. ``pip install beam-bridge[fast]``
installs uvloop. The environment variable ``BEAM_BRIDGE_LOOP`` chooses explicitly:
``asyncio`` (the standard loop) or ``uvloop`` (an error when it is not installed);
unset or ``auto`` means uvloop when importable.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LOOP_ENV", "loop_factory", "loop_name", "new_event_loop", "run"]

T = TypeVar("T")

#: The environment variable that picks the loop: ``auto`` (default), ``asyncio`` or ``uvloop``.
LOOP_ENV = "BEAM_BRIDGE_LOOP"


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """The function that makes a new loop of the chosen kind (read from the environment now)."""
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "asyncio", "uvloop"):
        raise ValueError(f"{LOOP_ENV} must be auto, asyncio or uvloop, not {choice!r}")
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError(
                f"{LOOP_ENV}=uvloop but uvloop is not installed (pip install beam-bridge[fast])"
            ) from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the chosen kind (``asyncio.new_event_loop`` or ``uvloop.new_event_loop``)."""
    return loop_factory()()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: which kind ``loop`` is (for logs and benchmarks)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop of the chosen kind."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
