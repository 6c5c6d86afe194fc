"""The Python side of "supervise across languages": actors BEAM supervisors may start.

    python -m bridge --name py@127.0.0.1 --cookie secret serve examples/supervise/actors.py

``ALLOW_SPAWN`` lets ``beam_bridge:child_spec(#{actor => counter, ...})``,
``{PyChild, actor: :counter, ...}`` and ``{BeamBridge, actor: :counter, ...}`` start a
``Counter``; their ``args`` is the argument of ``init``.
"""

from dist_proto import Atom
from python_actors import GenServer, NoReply, Ok, Reply


class Counter(GenServer):
    def init(self, n):
        return Ok(n)

    def handle_call(self, request, from_, n):
        if request == Atom("crash"):
            raise RuntimeError("asked to crash")
        return Reply(n, n)

    def handle_cast(self, by, n):
        return NoReply(n + by)


ALLOW_SPAWN = {("counter", "start_link"): Counter}
