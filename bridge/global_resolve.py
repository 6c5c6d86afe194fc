"""Name clashes when two ``global`` partitions meet (``exchange_names/4``, ``resolve_it/4``).

Both partitions hold ``global``'s lock; each server sends its names to the other.
For each name received:

- the same pid is registered here: nothing to do;
- another pid is registered here and this node's name is the smaller of the two
  nodes: this side resolves the clash by calling the resolve method of *our*
  registration on the node of our pid, ``Method(Name, TheirPid, OurPid)``
  (``rpc:call(Node2, global, resolve_it, [Method, Name, Pid, Pid2])``); the winner
  is registered everywhere, ``none`` or anything else removes the name;
- another pid is registered here and the other node is the smaller: it resolves;
- the name is new here: it is inserted.

The resolve methods OTP exports are served here for Python-registered names:
``random_exit_name`` (the default of ``global:register_name/2``: the pid of the
greater node is killed, the other keeps the name), ``random_notify_name`` (the
loser gets ``{global_name_conflict, Name}``) and ``notify_all_name`` (both are told
``{global_name_conflict, Name, OtherPid}`` and the name is removed). BEAM nodes
reach them through ``rpc`` of ``global:resolve_it/4`` on this node.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, ExportFun, Pid
from python_actors import Process

from .errors import RpcError

if TYPE_CHECKING:
    from .global_tables import NameTable
    from .node import Node

__all__ = ["RESOLVE_METHODS", "exchange_names", "resolve_it"]

log = logging.getLogger("bridge.global")

_GLOBAL = Atom("global")
_NONE = Atom("none")
_KILL = Atom("kill")
_INSERT = Atom("insert")
_DELETE = Atom("delete")
_CONFLICT = Atom("global_name_conflict")
_GEN_CAST = Atom("$gen_cast")
_EXCHANGE_OPS = Atom("exchange_ops")
#: rpc:call waits forever for a resolve method; a resolver must not
RESOLVE_TIMEOUT = 60.0
RESOLVE_METHODS = ("random_exit_name", "random_notify_name", "notify_all_name")


def _minmax(p1: Pid, p2: Pid) -> tuple[Pid, Pid]:
    return (p1, p2) if p1.node.name < p2.node.name else (p2, p1)


def _method_name(method: Any) -> str | None:
    if type(method) is ExportFun and method.module == _GLOBAL and method.arity == 3:
        return method.function.name
    if type(method) is tuple and len(method) == 2 and method[0] == _GLOBAL and type(method[1]) is Atom:
        return method[1].name  # the legacy {M, F} form
    return None


def resolve_it(node: Node, method: Any, name: Any, pid1: Any, pid2: Any) -> Any:
    """``global:resolve_it/4`` for the methods ``global`` exports; anything else is
    answered as a fun that cannot run here (``{'EXIT', undef}``): the name is removed."""
    which = _method_name(method)
    if which not in RESOLVE_METHODS or type(pid1) is not Pid or type(pid2) is not Pid:
        return (Atom("EXIT"), Atom("undef"))
    winner, loser = _minmax(pid1, pid2)
    rt = node.runtime
    if which == "random_exit_name":
        log.info("global: Name conflict terminating %r", (name, loser))
        rt.exit(loser, _KILL)
        return winner
    if which == "random_notify_name":
        rt.send(loser, (_CONFLICT, name))
        return winner
    rt.send(pid1, (_CONFLICT, name, pid2))
    rt.send(pid2, (_CONFLICT, name, pid1))
    return _NONE


async def _resolve(node: Node, method: Any, name: Any, theirs: Pid, ours: Pid) -> Any:
    if ours.node == node.atom:
        return resolve_it(node, method, name, theirs, ours)
    try:
        return await node.rpc(ours.node, _GLOBAL, Atom("resolve_it"), [method, name, theirs, ours],
                              timeout=RESOLVE_TIMEOUT)
    except RpcError as exc:
        return (Atom("badrpc"), exc.reason)


async def exchange_names(
    proc: Process, node: Node, names: NameTable, name_list: list[Any], other: Atom, tag: Any
) -> None:
    """The resolver process: compute the operations for ``other``'s names and cast
    ``{exchange_ops, Node, Tag, Ops, Resolved}`` to our server."""
    ops: list[Any] = []
    resolved: list[Any] = []
    for item in name_list:
        if type(item) is not tuple or len(item) != 3 or type(item[1]) is not Pid:
            continue
        name, pid, method = item
        entry = names.lookup(name)
        if entry is None:
            ops.append((_INSERT, (name, pid, method)))
            continue
        if entry.pid == pid or not node.atom.name < other.name:
            continue  # the same registration, or the other node resolves
        result = await _resolve(node, entry.method, name, pid, entry.pid)
        if result == pid:
            ops.append((_INSERT, (name, pid, method)))
        elif result == entry.pid:
            resolved.append((_INSERT, (name, entry.pid, entry.method)))
        elif type(result) is tuple and len(result) == 2 and result[0] == Atom("badrpc"):
            log.info("global: badrpc %r received when conflicting name %r was found", result[1], name)
            ops.append((_INSERT, (name, pid, method)))
        else:
            if result != _NONE:
                log.info("global: Resolve method %r for conflicting name %r returned %r", entry.method, name, result)
            ops.append((_DELETE, name))
            resolved.append((_DELETE, name))
    proc.send(Atom("global_name_server"), (_GEN_CAST, (_EXCHANGE_OPS, other, tag, ops, resolved)))
