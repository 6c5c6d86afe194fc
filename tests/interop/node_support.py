"""Helpers shared by the ``test_node_*`` interop suites (not collected by pytest).

A Python :class:`bridge.Node` runs on the test's event loop; the BEAM is driven
through :class:`tests.beam.BeamNode`, whose calls block, so they go through
:func:`ev` (a worker thread) and the Python node keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from bridge import Node
from dist_proto.terms import Atom
from tests.beam import TEST_COOKIE, BeamNode, unique_name


def py_name(prefix: str = "py", host: str = "127.0.0.1") -> str:
    """A node name no other test uses."""
    return f"{unique_name(prefix)}@{host}"


def py_node(epmd_port: int, *, prefix: str = "py", cookie: str = TEST_COOKIE, **options: Any) -> Node:
    """A Python node registered with the private EPMD (enter it with ``async with``)."""
    return Node(py_name(prefix), cookie=cookie, epmd_port=epmd_port, **options)


def scoped(expr: str) -> str:
    """``expr`` inside a fun, so its variables do not stay bound in the BEAM's
    evaluation loop (whose bindings persist from one eval to the next)."""
    return f"(fun() -> {expr} end)()"


async def ev(beam: BeamNode, expr: str, timeout: float = 60) -> Any:
    """``beam.eval_term(expr)`` off the event loop, variables scoped to this eval."""
    return await asyncio.to_thread(beam.eval_term, scoped(expr), timeout)


async def check(beam: BeamNode, expr: str, timeout: float = 60) -> None:
    """``beam.check(expr)`` off the event loop, variables scoped to this eval."""
    await asyncio.to_thread(beam.check, scoped(expr), timeout)


async def start_beam(runtime: Any, epmd_port: int | None, **kwargs: Any) -> BeamNode:
    """Start a BeamNode off the event loop (so an embedded EPMD keeps answering)."""
    return await asyncio.to_thread(BeamNode, runtime, epmd_port=epmd_port, **kwargs)


async def stop_beam(beam: BeamNode) -> None:
    await asyncio.to_thread(beam.stop)


async def eventually(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``cond`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.02)


def atom(text: str) -> Atom:
    return Atom(text)


def q(name: str) -> str:
    """An Erlang quoted atom for a node or process name."""
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"
