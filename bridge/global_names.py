"""Global names for Python processes: ``global:register_name/2,3``, ``unregister_name/1``,
``whereis_name/1``, ``send/2``, ``registered_names/0`` and ``sync/0``.

One API for both kinds of node (``Node.global_register`` and friends call these):

- **Visible** (``Node(..., hidden=False)``): the node runs its own
  ``global_name_server`` (:mod:`bridge.global_server`). A registration takes
  ``global``'s lock on every known node, checks the name is free, registers it
  everywhere with ``{register, Name, Pid, Method}`` and releases the lock, exactly
  as ``global``'s registrar does; a lookup reads the node's own table.
- **Hidden** (the default): BEAM's ``global`` ignores hidden nodes, so each
  function is an ``rpc`` of the same ``global`` function on a BEAM node (``via``,
  by default the only connected node). A name registered that way is removed
  when the Python process dies or the node disconnects (``global`` monitors it).

A name given as ``str`` is an atom (as ``register/2`` takes it); any other term
is used as it is.

>>> # async with Node("py@127.0.0.1", cookie="secret", hidden=False) as node:
>>> #     assert await node.global_register("jobs", pid)
>>> #     await node.global_whereis("jobs")   # == pid, on every node of the cluster
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, ExportFun, Pid
from python_actors import Process

from .global_locker import (
    GNS,
    del_lock_on_nodes,
    delete_global_lock,
    multi_call,
    set_lock_on_nodes,
    the_boss,
)
from .global_resolve import RESOLVE_METHODS
from .global_tables import GLOBAL_RESOURCE

if TYPE_CHECKING:
    from .node import Node

__all__ = ["register_name", "registered_names", "send", "sync", "unregister_name", "whereis_name"]

_GLOBAL = Atom("global")
_YES = Atom("yes")


def name_term(name: Any) -> Any:
    """A ``str`` is the atom of that name; other terms are names as they are."""
    return Atom(name) if type(name) is str else name


def _method(method: str) -> ExportFun:
    if method not in RESOLVE_METHODS:
        raise ValueError(f"method must be one of {', '.join(RESOLVE_METHODS)}, not {method!r}")
    return ExportFun(_GLOBAL, Atom(method), 3)


def _ask(node: Node, via: str | Atom | None) -> str | Atom:
    if via is not None:
        return via
    connected = node.nodes()
    if len(connected) != 1:
        raise ValueError(
            f"a hidden node asks a BEAM node's global: pass via='node@host' (connected to {len(connected)} nodes)"
        )
    return connected[0]


async def _in_process(node: Node, body: Any) -> Any:
    """Run ``await body(proc)`` in a new process of the node (it holds the locks) and
    return its result; the process ends with it."""
    done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def run(proc: Process) -> None:
        try:
            result = await body(proc)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            raise
        if not done.done():
            done.set_result(result)

    node.runtime.spawn(run)
    return await done


async def _trans_all_known(node: Node, proc: Process, fun: Any) -> Any:
    """``trans_all_known/1``: hold ``{global, Self}`` on every known node (the boss
    first; retried with OTP's random back-off while known nodes change) and run
    ``fun(Nodes)``."""
    service = node.global_service
    assert service is not None
    lock_id = (GLOBAL_RESOURCE, proc.pid)
    times = 0
    while True:
        known = service.known()
        nodes = [node.atom, *known]
        boss = the_boss(nodes)
        if await set_lock_on_nodes(lock_id, [boss]):
            if await set_lock_on_nodes(lock_id, nodes) and not set(service.known()) - set(known):
                break
            await del_lock_on_nodes(lock_id, [boss])
        await asyncio.sleep(random.uniform(0, (8000 if times > 5 else (1 << times) * 1000 // 8)) / 1000)
        times += 1
    try:
        return await fun(nodes)
    finally:
        await delete_global_lock(lock_id, nodes)


async def register_name(
    node: Node, name: Any, pid: Pid, *, method: str = "random_exit_name", via: str | Atom | None = None
) -> bool:
    """``global:register_name(Name, Pid, Method)``: True for ``yes``, False for ``no``
    (the name is taken, or the pid already has a global name)."""
    if type(pid) is not Pid:
        raise TypeError(f"global_register needs a Pid, not {pid!r}")
    name = name_term(name)
    fun = _method(method)
    service = node.global_service
    if service is None:
        return bool(await node.rpc(_ask(node, via), _GLOBAL, Atom("register_name"), [name, pid, fun]) == _YES)

    async def register(nodes: list[Atom]) -> bool:
        if service.where(name) is not None or service.names_of(pid):
            return False
        await multi_call(nodes, (Atom("register"), name, pid, fun))
        return True

    return bool(await _in_process(node, lambda proc: _trans_all_known(node, proc, register)))


async def unregister_name(node: Node, name: Any, *, via: str | Atom | None = None) -> None:
    """``global:unregister_name(Name)``."""
    name = name_term(name)
    service = node.global_service
    if service is None:
        await node.rpc(_ask(node, via), _GLOBAL, Atom("unregister_name"), [name])
        return
    if service.where(name) is None:
        return

    async def unregister(nodes: list[Atom]) -> None:
        await multi_call(nodes, (Atom("unregister"), name))

    await _in_process(node, lambda proc: _trans_all_known(node, proc, unregister))


async def whereis_name(node: Node, name: Any, *, via: str | Atom | None = None) -> Pid | None:
    """``global:whereis_name(Name)``: the pid, or None for ``undefined``."""
    name = name_term(name)
    service = node.global_service
    if service is None:
        found = await node.rpc(_ask(node, via), _GLOBAL, Atom("whereis_name"), [name])
        return found if type(found) is Pid else None
    return service.where(name)


async def send(node: Node, name: Any, message: Any, *, via: str | Atom | None = None) -> Pid:
    """``global:send(Name, Msg)``: the pid the message went to; an unknown name raises
    ``ValueError`` (``global:send`` exits with ``{badarg, {Name, Msg}}``)."""
    pid = await whereis_name(node, name, via=via)
    if pid is None:
        raise ValueError(f"badarg: no global name {name_term(name)!r}")
    await node.send(pid, message)
    return pid


async def registered_names(node: Node, *, via: str | Atom | None = None) -> list[Any]:
    """``global:registered_names()``."""
    service = node.global_service
    if service is None:
        names = await node.rpc(_ask(node, via), _GLOBAL, Atom("registered_names"), [])
        return list(names) if type(names) is list else []
    return service.registered_names()


async def sync(node: Node, timeout: float | None = None) -> None:
    """``global:sync()``: wait until this node's ``global`` is in sync with every
    visible node it is connected to. A hidden node has nothing to sync."""
    if node.global_service is None:
        return
    nodes = [Atom(n) for n in node.visible_nodes()]
    await node.call(GNS, (Atom("sync"), nodes), timeout)
