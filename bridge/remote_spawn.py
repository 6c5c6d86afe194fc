"""Starting processes on BEAM nodes from Python: ``erlang:spawn_request/5`` and BEAM
children of Python supervisors.

Inside a coroutine, with ``node`` a running :class:`bridge.Node` and the BEAM node
``app@127.0.0.1`` running the beam_bridge application::

    from python_actors import ChildSpec, Supervisor

    spec = ChildSpec(id="cache",
                     start=beam_child(node, "app@127.0.0.1", "my_cache", "start_link", []))
    await Supervisor.start_link([spec], runtime=node.runtime)

:func:`spawn_request` sends ``SPAWN_REQUEST`` as the calling process (so ``link``
links that process to the new BEAM process) and waits for ``SPAWN_REPLY``.
:func:`beam_child` builds a start function for a :class:`python_actors.Supervisor`
child: it spawns ``beam_bridge:bridge_child/5`` (erl/src/beam_bridge.erl) linked to the
supervisor, which runs the BEAM start function (``gen_server:start_link`` style) and
then stands for the child, as OTP's ``supervisor_bridge`` does: the child's exit is
the bridge's exit, and the supervisor's ``shutdown`` is passed on to the child.
The BEAM node needs the beam_bridge application on its code path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dist_proto import control as c
from dist_proto.terms import Atom, Pid
from python_actors import StartError, current_process

from .errors import BridgeError
from .naming import as_atom

if TYPE_CHECKING:
    from .node import Node

__all__ = ["SpawnError", "beam_child", "spawn_request"]

_LINK = Atom("link")
_MONITOR = Atom("monitor")
_BEAM_BRIDGE = Atom("beam_bridge")
_BRIDGE_CHILD = Atom("bridge_child")
_STARTED = Atom("beam_bridge_started")
_OK = Atom("ok")
_ERROR = Atom("error")
_IGNORE = Atom("ignore")


class SpawnError(BridgeError):
    """``spawn_request`` was refused: ``reason`` is BEAM's error atom (``badarg``, ``noconnection``...)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"spawn_request failed: {reason!r}")
        self.reason = reason




async def spawn_request(
    node: Node,
    remote: str | Atom,
    module: str | Atom,
    function: str | Atom,
    args: list[Any],
    *,
    link: bool = False,
    monitor: bool = False,
    timeout: float | None = 5.0,
) -> Pid:
    """``erlang:spawn_request(Node, M, F, A, [link | monitor])`` from the calling process.

    Returns the new pid. With ``link`` the calling process is linked to it (set up
    before any signal of the new process can arrive); with ``monitor`` a monitor
    is added right after. Raises :class:`SpawnError` when BEAM refuses, ``TimeoutError``.
    """
    proc = current_process()
    if proc.runtime is not node.runtime:
        raise BridgeError("spawn_request must run in a process of this node")
    target = as_atom(remote)
    rt = node.runtime
    req_id = rt.make_ref()
    opts: list[Any] = [_LINK] if link else []
    fut = node._spawner.expect_reply(req_id, proc.pid, link, target)
    request = c.SpawnRequest(
        req_id, proc.pid, node._spawner.group_leader(), (as_atom(module), as_atom(function), len(args)), opts, list(args)
    )
    node.router._control(target, request)
    try:
        reply: c.SpawnReply = await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        node._spawner.forget(req_id)
        raise TimeoutError(f"no SPAWN_REPLY from {target.name} in {timeout}s") from None
    if type(reply.result) is not Pid:
        raise SpawnError(reply.result)
    if monitor:
        proc.monitor(reply.result)
    return reply.result


def beam_child(
    node: Node,
    remote: str | Atom,
    module: str | Atom,
    function: str | Atom,
    args: list[Any],
    *,
    timeout: float | None = 5.0,
) -> Callable[[], Awaitable[Pid | None]]:
    """A start function for a Python supervisor's BEAM child: ``apply(M, F, A)`` on ``remote``.

    The pid the supervisor sees is the bridge process (see the module docstring); it
    exits with the child's reason and passes ``shutdown`` on.
    """

    async def start() -> Pid | None:
        proc = current_process()
        ref = node.runtime.make_ref()
        bridge_pid = await spawn_request(
            node, remote, _BEAM_BRIDGE, _BRIDGE_CHILD,
            [proc.pid, ref, as_atom(module), as_atom(function), list(args)],
            link=True, timeout=timeout,
        )
        started = await proc.receive(
            lambda m: type(m) is tuple and len(m) == 3 and m[0] == _STARTED and m[1] == ref,
            timeout,
        )
        result = started[2]
        if result == _IGNORE:
            return None
        if type(result) is tuple and len(result) == 2 and result[0] == _OK:
            return bridge_pid
        if type(result) is tuple and len(result) == 2 and result[0] == _ERROR:
            raise StartError(result[1])
        raise StartError((Atom("bad_return_value"), result))

    return start
