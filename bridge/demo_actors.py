"""The Python side of ``make demo``: a ``serve`` module (``python -m bridge serve``).

It offers a ``counter`` actor that Erlang/Elixir supervisors may start
(``beam_bridge:start_link(Node, counter, N)`` / ``{PyChild, ...}``) and, in ``main``,
starts a Python supervisor owning a Python GenServer named ``py_counter`` and an
Erlang ``gen_event`` manager named ``demo_events`` on the Erlang node named by
``$DEMO_ERLANG_NODE`` (a BEAM child of a Python supervisor).
"""

from __future__ import annotations

import os
from typing import Any

from bridge.remote_spawn import beam_child
from dist_proto import Atom
from python_actors import ChildSpec, GenServer, NoReply, Ok, Reply, Supervisor

__all__ = ["ALLOW_SPAWN", "Counter", "main"]


class Counter(GenServer):
    """``get``, ``{add, N}``, ``crash`` (raises), cast ``{add, N}``."""

    def init(self, start: Any) -> Ok:
        return Ok(start if isinstance(start, int) else 0)

    def handle_call(self, request: Any, from_: Any, n: int) -> Reply:
        if request == Atom("crash"):
            raise RuntimeError("crash requested by the demo")
        if type(request) is tuple and len(request) == 2 and request[0] == Atom("add"):
            return Reply(n + request[1], n + request[1])
        return Reply(n, n)

    def handle_cast(self, request: Any, n: int) -> NoReply:
        if type(request) is tuple and len(request) == 2 and request[0] == Atom("add"):
            return NoReply(n + request[1])
        return NoReply(n)


ALLOW_SPAWN = {("counter", "start_link"): Counter}


async def main(node: Any) -> None:
    """Start ``py_sup``: ``py_counter`` (Python) and ``demo_events`` (Erlang, remote)."""
    children = [ChildSpec(id="py_counter", start=lambda: Counter.start_link(0, name="py_counter"))]
    erlang_node = os.environ.get("DEMO_ERLANG_NODE")
    if erlang_node:
        events = beam_child(
            node, erlang_node, "gen_event", "start_link", [(Atom("local"), Atom("demo_events"))]
        )
        children.append(ChildSpec(id="demo_events", start=events))
    await Supervisor.start_link(
        children, strategy="one_for_one", intensity=5, period=10, name="py_sup", runtime=node.runtime
    )
