"""The locker of a ``global_name_server`` (``global``'s ``the_locker`` process).

When two partitions of ``global`` meet (a node comes up), each side must hold
``global``'s lock on every node it knows before the two exchange their names, so
that no registration runs while names are merged. The locker takes that lock. It
works as OTP's does (protocol version 6 and later: lockers never write to each
other directly, every message travels through the name servers):

- The name server tells it about a node being connected (``his_the_locker``: the
  other side's locker pid, protocol version and the two session tags) and about
  the nodes it knows (``add_to_known``/``remove_from_known``).
- When it is idle with candidates waiting (after 0.2 to 3 s, as OTP waits), it
  picks one and locks ``global`` with the lock id ``{global, lists:sort([Self,
  HisLocker])}`` on the boss (the greatest known node) first, then on itself and
  the other node, then on every node it knows. Then it sends ``{lock_set, Self,
  true, Known, HisTag}`` to the other side and waits for the other locker's
  answer.
- When the other side's locker asks first (a spontaneous ``lock_set`` with
  ``true``), it locks its own partition with the same id and answers ``true`` or
  ``false``.
- With both partitions locked it casts ``{lock_is_set, Node, MyTag, LockId}`` to
  its name server and keeps the lock until the server sends ``cancel`` (after the
  names were exchanged, or when the node went down); the cancel may carry a
  function to run before the lock is released (the ``new_nodes`` broadcast).

Locks are set with ``gen_server:multi_call(Nodes, global_name_server, {set_lock,
LockId})`` semantics: a node that does not answer is left out; one ``false``
releases what was taken.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid, Reference
from python_actors import CallError, Process, current_process

from .global_tables import GLOBAL_RESOURCE

if TYPE_CHECKING:
    from .node import Node

__all__ = [
    "Cancel", "HisTheLocker", "KnownChange", "Locker", "del_lock_on_nodes", "delete_global_lock",
    "multi_call", "pid_sort_key", "set_lock_on_nodes", "the_boss",
]

log = logging.getLogger("bridge.global")

GNS = Atom("global_name_server")
_GEN_CAST = Atom("$gen_cast")
_GEN_CALL = Atom("$gen_call")
_DOWN = Atom("DOWN")
_LOCK_SET = Atom("lock_set")
_LOCK_IS_SET = Atom("lock_is_set")
_SET_LOCK = Atom("set_lock")
_DEL_LOCK = Atom("del_lock")
#: gen_server:multi_call waits forever; a locker must not, so a silent node is left out
MULTI_CALL_TIMEOUT = 60.0
VERIFY_CONNECT_VSN = 8


@dataclass(frozen=True)
class HisTheLocker:
    """``{his_the_locker, HisTheLocker, {HisVsn, _}, HisTag, MyTag}`` from the server."""

    node: Atom
    locker: Pid
    vsn: int
    his_tag: Any
    my_tag: Any


@dataclass(frozen=True)
class Cancel:
    """``{cancel, Node, Tag, Fun}``: stop negotiating with ``node`` (session ``tag``);
    ``fun`` runs before the lock is released."""

    node: Atom
    tag: Any
    fun: Callable[[], None] | None = None


@dataclass(frozen=True)
class KnownChange:
    """``{add_to_known, Nodes}`` / ``{remove_from_known, Node}``."""

    add: tuple[Atom, ...] = ()
    remove: Atom | None = None


def pid_sort_key(pid: Pid) -> tuple[int, int, str, int]:
    """Erlang's term order of pids (as ``lists:sort/1`` sees them on OTP 25 and 28):
    serial first, then id, then the node's name; both lockers must build the same
    lock id from the same two pids."""
    return (pid.serial, pid.id, pid.node.name, pid.creation)


class Locker:
    """The locker's state and loop; :meth:`run` is the body of its process."""

    def __init__(self, node: Node, is_global_lock_set: Callable[[], bool], known: list[Atom]) -> None:
        self._node = node
        self._is_global_lock_set = is_global_lock_set
        self.known: list[Atom] = list(known)
        self._hims: list[HisTheLocker] = []
        self._just_synced = False
        self._proc: Process | None = None

    # -- the loop (loop_the_locker) ------------------------------------------------------

    async def run(self, proc: Process) -> None:
        self._proc = proc
        while True:
            msg = await proc.receive(timeout=self._timeout(), default=None)
            self._just_synced = False
            if msg is None:
                if not self._is_global_lock_set():
                    await self._select_node()
                continue
            try:
                await self._message(msg)
            except (CallError, ValueError, TypeError) as exc:
                log.warning("global locker: %r while handling %r", exc, msg)

    def _timeout(self) -> float | None:
        if not self._hims:
            return None
        if self._just_synced:
            return 0.0
        if not self.known:
            return 0.2
        return min(1.0 + 0.1 * len(self.known), 3.0)

    async def _message(self, msg: Any) -> None:
        if isinstance(msg, HisTheLocker):
            self._hims.append(msg)
        elif isinstance(msg, Cancel):
            if msg.tag is not None:
                self._remove(msg.node, msg.tag)
        elif isinstance(msg, KnownChange):
            self._update_known(msg)
        elif type(msg) is tuple and len(msg) in (4, 5) and msg[0] == _LOCK_SET and type(msg[1]) is Pid:
            if msg[2] is True:
                await self._spontaneous(msg[1], msg[4] if len(msg) == 5 else None)
        else:
            log.warning("The global_name_server locker process received an unexpected message: %r", msg)

    def _update_known(self, change: KnownChange) -> None:
        self.known = list(change.add) + self.known
        if change.remove is not None and change.remove in self.known:
            self.known.remove(change.remove)

    async def _drain_known(self) -> None:
        """``update_locker_known/1``: apply the known-node changes already queued."""
        assert self._proc is not None
        while True:
            msg = await self._proc.receive(lambda m: isinstance(m, KnownChange), timeout=0, default=None)
            if msg is None:
                return
            self._update_known(msg)

    def _find(self, node: Atom) -> HisTheLocker | None:
        for him in self._hims:
            if him.node == node:
                return him
        return None

    def _remove(self, node: Atom, tag: Any) -> None:
        for i, him in enumerate(self._hims):
            if him.node == node and him.my_tag == tag:
                del self._hims[i]
                return

    @property
    def _me(self) -> Atom:
        return self._node.atom

    def _lock_id(self, his_locker: Pid) -> tuple[Atom, list[Pid]]:
        assert self._proc is not None
        return (GLOBAL_RESOURCE, sorted([self._proc.pid, his_locker], key=pid_sort_key))

    # -- the other side asked first -------------------------------------------------------

    async def _spontaneous(self, his_locker: Pid, my_tag: Any) -> None:
        node = his_locker.node
        him = self._find(node)
        if him is None or (my_tag is not None and him.my_tag != my_tag):
            self._send_lock_set(False, his_locker, 5, 0)
            return
        lock_id = self._lock_id(his_locker)
        is_set = await self._lock_nodes_safely(lock_id, [])
        self._send_lock_set(is_set, his_locker, him.vsn, him.his_tag)
        if is_set:
            self._cast_server((_LOCK_IS_SET, node, him.my_tag, lock_id))
            await self._wait_cancel(node, lock_id, him.my_tag, [self._me, *self.known])
            self._just_synced = True
            self._remove(node, him.my_tag)

    # -- we ask (select_node) -------------------------------------------------------------

    async def _select_node(self) -> None:
        candidates = [h for h in self._hims if h.node not in self.known]
        self._hims = [h for h in self._hims if h.node not in self.known]
        if not candidates:
            return
        him = random.choice(candidates)
        lock_id = self._lock_id(him.locker)
        if not await self._lock_nodes_safely(lock_id, [him.node]):
            return
        known1 = [self._me, him.node, *self.known]
        self._send_lock_set(True, him.locker, him.vsn, him.his_tag)
        await self._lock_is_set(him, known1, lock_id)

    async def _lock_is_set(self, him: HisTheLocker, known1: list[Atom], lock_id: Any) -> None:
        """Wait for the other locker's answer (``lock_is_set/5``)."""
        assert self._proc is not None
        node = him.node

        def answer(m: Any) -> bool:
            if isinstance(m, Cancel):
                return m.node == node and m.tag == him.my_tag
            return (
                type(m) is tuple and len(m) in (4, 5) and m[0] == _LOCK_SET
                and type(m[1]) is Pid and m[1].node == node
            )

        while True:
            msg = await self._proc.receive(answer)
            if isinstance(msg, Cancel):
                self._run(msg.fun)
                await self._delete_global_lock(lock_id, known1)
                self._remove(node, him.my_tag)
                return
            if len(msg) == 5 and msg[4] != him.my_tag:
                continue  # an answer from an older session
            if msg[2] is True:
                self._cast_server((_LOCK_IS_SET, node, him.my_tag, lock_id))
                await self._wait_cancel(node, lock_id, him.my_tag, known1)
                self._just_synced = True
                self._hims = [h for h in self._hims if h != him]
            else:
                await self._delete_global_lock(lock_id, known1)
            return

    async def _wait_cancel(self, node: Atom, lock_id: Any, my_tag: Any, known: list[Atom]) -> None:
        assert self._proc is not None
        msg = await self._proc.receive(lambda m: isinstance(m, Cancel) and m.node == node and m.tag == my_tag)
        self._run(msg.fun)
        await self._delete_global_lock(lock_id, known)

    @staticmethod
    def _run(fun: Callable[[], None] | None) -> None:
        if fun is not None:
            try:
                fun()
            except Exception:  # the broadcast is best effort, as OTP's casts are
                log.exception("global locker: cancel function failed")

    # -- locking ----------------------------------------------------------------------------

    async def _lock_nodes_safely(self, lock_id: Any, extra: list[Atom]) -> bool:
        """``lock_nodes_safely/3``: the boss first, then us and ``extra``, then the rest."""
        first = [the_boss([self._me, *self.known])]
        if first != [self._me] and not await self._set_lock(lock_id, [self._me], probe=True):
            return False
        if not await self._set_lock(lock_id, first):
            return False
        await self._drain_known()
        second = [n for n in [self._me, *extra] if n not in first]
        if not await self._set_lock(lock_id, second):
            await self._del_lock(lock_id, first)
            return False
        rest = [n for n in self.known if n not in first]
        if not await self._set_lock(lock_id, rest):
            await self._del_lock(lock_id, first + second)
            return False
        return True

    async def _set_lock(self, lock_id: Any, nodes: list[Atom], *, probe: bool = False) -> bool:
        """``set_lock_on_nodes/2``; ``probe`` only asks whether we could (``can_set_lock``)."""
        if probe:
            service = self._node.global_service
            return service is not None and service.can_set_lock(lock_id)
        return await set_lock_on_nodes(lock_id, nodes)

    async def _del_lock(self, lock_id: Any, nodes: list[Atom]) -> None:
        await del_lock_on_nodes(lock_id, nodes)

    async def _delete_global_lock(self, lock_id: Any, nodes: list[Atom]) -> None:
        await delete_global_lock(lock_id, nodes)

    # -- sending ------------------------------------------------------------------------------

    def _send_lock_set(self, is_set: bool, his_locker: Pid, vsn: int, his_tag: Any) -> None:
        """``send_lock_set/5``: through the other side's name server (vsn 6+)."""
        assert self._proc is not None
        known = list(self.known)
        if vsn < VERIFY_CONNECT_VSN:
            message: tuple[Any, ...] = (_LOCK_SET, self._proc.pid, is_set, known)
        else:
            message = (_LOCK_SET, self._proc.pid, is_set, known, his_tag)
        if vsn < 6:
            self._proc.send(his_locker, message)
        else:
            self._proc.send((GNS, his_locker.node), (_GEN_CAST, message))

    def _cast_server(self, message: Any) -> None:
        assert self._proc is not None
        self._proc.send(GNS, (_GEN_CAST, message))


# -- locks on a set of nodes, from the calling process (global's set_lock helpers) -----


def the_boss(nodes: list[Atom]) -> Atom:
    """``the_boss/1``: the greatest node, locked first and released last."""
    return max(nodes, key=lambda n: n.name)


async def multi_call(nodes: list[Atom], request: Any) -> list[tuple[Atom, Any]]:
    """``gen_server:multi_call(Nodes, global_name_server, Request)`` from the calling
    process (it is the ``From`` every server sees, so it is the lock holder): the
    requests go out at once, each under a monitor; the replies come back in any
    order. Nodes that are down, or silent for :data:`MULTI_CALL_TIMEOUT`, are left
    out, as multi_call lists them as bad nodes."""
    proc = current_process()
    pending: dict[Reference, Atom] = {}
    for node in nodes:
        mref = proc.monitor((GNS, node))
        pending[mref] = node
        proc.send((GNS, node), (_GEN_CALL, (proc.pid, mref), request))
    replies: list[tuple[Atom, Any]] = []

    def answer(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        if len(m) == 2:
            return type(m[0]) is Reference and m[0] in pending
        return len(m) == 5 and m[0] == _DOWN and type(m[1]) is Reference and m[1] in pending

    try:
        while pending:
            msg = await proc.receive(answer, timeout=MULTI_CALL_TIMEOUT, default=None)
            if msg is None:
                log.warning("global: no answer to %r from %s", request, [n.name for n in pending.values()])
                return replies
            if len(msg) == 2:
                node = pending.pop(msg[0])
                proc.demonitor(msg[0], flush=True)
                replies.append((node, msg[1]))
            else:
                log.debug("global: %s did not answer %r: %r", pending.pop(msg[1]).name, request, msg[4])
    finally:
        for mref in pending:
            proc.demonitor(mref, flush=True)
    return replies


async def set_lock_on_nodes(lock_id: Any, nodes: list[Atom]) -> bool:
    """``set_lock_on_nodes/2``: all or nothing; one ``false`` releases what was taken."""
    if not nodes:
        return True
    replies = await multi_call(nodes, (_SET_LOCK, lock_id))
    if all(r is True for _, r in replies):
        return True
    if len(replies) > 1:
        await multi_call([n for n, r in replies if r is True], (_DEL_LOCK, lock_id))
    return False


async def del_lock_on_nodes(lock_id: Any, nodes: list[Atom]) -> None:
    if nodes:
        await multi_call(nodes, (_DEL_LOCK, lock_id))


async def delete_global_lock(lock_id: Any, nodes: list[Atom]) -> None:
    """``delete_global_lock/2``: the boss's lock goes last."""
    if not nodes:
        return
    boss = the_boss(nodes)
    await del_lock_on_nodes(lock_id, [n for n in nodes if n != boss])
    await del_lock_on_nodes(lock_id, [boss])
