"""Process groups: Python processes as members of OTP ``pg`` scopes.

OTP's ``pg`` (kernel, OTP 23+) keeps one *scope* process per node, registered
under the scope's name (``pg`` for the default scope). Scope processes of
different nodes find each other and exchange memberships with four messages, all
plain Erlang messages between the scope processes:

- ``{discover, Peer}``: a scope announces itself. The receiver answers with a
  ``gen_server:cast`` of ``{sync, Self, [{Group, LocalPids}]}`` (its whole local
  membership); if it did not know ``Peer`` yet it monitors it and sends
  ``{discover, Self}`` back.
- ``{join, Peer, Group, PidOrPids}`` and ``{leave, Peer, PidOrPids, Groups}``: a
  change of the sender's local membership.
- the ``'DOWN'`` of a peer scope (its node went away) drops everything that peer
  had reported.

:class:`PgScope` speaks that protocol on a Python node. Its scope process is
registered under the scope's name, so BEAM's ``pg:get_members/2``,
``pg:join/3`` and broadcasts over groups (what Phoenix.PubSub's PG2 adapter
rides on) see Python members as members like any other. On every new connection
the scope sends ``{discover, Self}`` to the scope of the same name on that node,
which also makes it work when the Python node is hidden (a BEAM scope discovers
only visible nodes by itself, but answers any discover).

``Node.pg(scope="pg")`` returns the node's scope, starting it on first use::

    scope = await node.pg()
    await scope.join("workers", proc.pid)
    members = scope.get_members("workers")     # Python and BEAM pids
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from dist_proto import encode
from dist_proto.terms import Atom, Pid, Reference
from python_actors import GenServer, NoReply, Ok, Reply

if TYPE_CHECKING:
    from .node import Node

__all__ = ["PgScope"]

log = logging.getLogger("bridge.pg")

_DISCOVER = Atom("discover")
_SYNC = Atom("sync")
_JOIN = Atom("join")
_LEAVE = Atom("leave")
_DOWN = Atom("DOWN")
_GEN_CAST = Atom("$gen_cast")
_OK = Atom("ok")
_NOT_JOINED = Atom("not_joined")


def _key(group: Any) -> bytes:
    """Groups are any Erlang term; Python cannot hash every one (lists), so the
    scope keys them by their external form."""
    return encode(group)


def _pids(pid_or_pids: Any) -> list[Pid]:
    if type(pid_or_pids) is Pid:
        return [pid_or_pids]
    if type(pid_or_pids) is list and all(type(p) is Pid for p in pid_or_pids):
        return list(pid_or_pids)
    raise ValueError(f"expected a pid or a list of pids, got {pid_or_pids!r}")


class _ScopeServer(GenServer):
    """The scope's process: receives the peers' messages and the DOWNs it asked for."""

    placement = "loop"  # a system process: bookkeeping only

    def init(self, scope: PgScope) -> Any:
        scope._attach(self)
        return Ok(scope)

    def handle_call(self, request: Any, from_: Any, scope: PgScope) -> Any:
        kind = request[0] if type(request) is tuple and request else None
        if kind in ("join", "leave") and len(request) == 3:
            try:
                if kind == "join":
                    scope._join_local(request[1], _pids(request[2]))
                    return Reply(_OK, scope)
                return Reply(_OK if scope._leave_local(request[1], _pids(request[2])) else _NOT_JOINED, scope)
            except ValueError as exc:
                return Reply((Atom("error"), str(exc)), scope)
        return Reply((Atom("error"), Atom("badarg")), scope)

    def handle_cast(self, request: Any, scope: PgScope) -> Any:
        if type(request) is tuple and len(request) == 3 and request[0] == _SYNC:
            _, peer, groups = request
            if type(peer) is Pid and type(groups) is list:
                scope._sync(peer, groups)
        return NoReply(scope)

    def handle_info(self, msg: Any, scope: PgScope) -> Any:
        if type(msg) is not tuple or not msg:
            return NoReply(scope)
        tag = msg[0]
        try:
            if tag == _DISCOVER and len(msg) in (2, 3) and type(msg[1]) is Pid:
                scope._discovered(msg[1])
            elif tag == _JOIN and len(msg) == 4 and type(msg[1]) is Pid:
                scope._remote_join(msg[1], msg[2], _pids(msg[3]))
            elif tag == _LEAVE and len(msg) == 4 and type(msg[1]) is Pid and type(msg[3]) is list:
                scope._remote_leave(msg[1], _pids(msg[2]), msg[3])
            elif tag == _DOWN and len(msg) == 5:
                scope._down(msg[1], msg[3])
        except ValueError as exc:  # a malformed message from a peer: drop it, as pg would
            log.warning("pg scope %s: dropped %r (%s)", scope.name, msg, exc)
        return NoReply(scope)


class PgScope:
    """One ``pg`` scope of a node: ``pg:join/3``, ``pg:leave/3``, ``pg:get_members/2`` ...

    Methods are for the node's event loop (as every ``Node`` method is); ``join`` and
    ``leave`` accept pids of this node only, like ``pg``.
    """

    def __init__(self, node: Node, name: str | Atom = "pg") -> None:
        self.node = node
        self.name = Atom(str(name))
        self._server: _ScopeServer | None = None
        self._pid: Pid | None = None
        #: local member -> (monitor ref, [group keys])
        self._local: dict[Pid, tuple[Reference, list[bytes]]] = {}
        #: peer scope pid -> (monitor ref, {group key: pids})
        self._remote: dict[Pid, tuple[Reference, dict[bytes, list[Pid]]]] = {}
        #: group key -> the group term
        self._groups: dict[bytes, Any] = {}
        self._unsubscribe: Any = None

    async def start(self) -> PgScope:
        """Start the scope process (registered as the scope's name) and discover peers."""
        self._pid = await _ScopeServer.start(self, runtime=self.node.runtime, name=self.name)
        self._unsubscribe = self.node.monitor_nodes(self._node_event)
        for other in self.node.nodes():
            self._send_discover(Atom(other))
        return self

    @property
    def pid(self) -> Pid:
        if self._pid is None:
            raise RuntimeError(f"pg scope {self.name} is not started")
        return self._pid

    def _attach(self, server: _ScopeServer) -> None:
        self._server = server

    def _node_event(self, node: Atom, up: bool, reason: Any) -> None:
        if up and self._server is not None and self._server.process.alive:
            self._send_discover(node)

    def _send_discover(self, node: Atom) -> None:
        assert self._server is not None
        self._server.process.send((self.name, node), (_DISCOVER, self.pid))

    # -- the public API (pg's) --------------------------------------------------------

    async def join(self, group: Any, pid_or_pids: Pid | list[Pid]) -> None:
        """``pg:join(Scope, Group, PidOrPids)``: local pids only; a pid may join a group
        more than once (it is then a member that many times, as in pg)."""
        result = await self.node.call(self.pid, ("join", group, pid_or_pids), None)
        if result != _OK:
            raise ValueError(result[1] if type(result) is tuple else result)

    async def leave(self, group: Any, pid_or_pids: Pid | list[Pid]) -> bool:
        """``pg:leave(Scope, Group, PidOrPids)``: False for ``not_joined``."""
        result = await self.node.call(self.pid, ("leave", group, pid_or_pids), None)
        if type(result) is tuple:
            raise ValueError(result[1])
        return bool(result == _OK)

    def get_members(self, group: Any) -> list[Pid]:
        """``pg:get_members(Scope, Group)``: every member, of every node."""
        key = _key(group)
        out = self.get_local_members(group)
        for _, groups in self._remote.values():
            out.extend(groups.get(key, ()))
        return out

    def get_local_members(self, group: Any) -> list[Pid]:
        """``pg:get_local_members(Scope, Group)``."""
        key = _key(group)
        return [pid for pid, (_, keys) in self._local.items() for k in keys if k == key]

    def which_groups(self) -> list[Any]:
        """``pg:which_groups(Scope)``: groups with at least one member."""
        keys = {k for _, keys in self._local.values() for k in keys}
        for _, groups in self._remote.values():
            keys.update(k for k, pids in groups.items() if pids)
        return [self._groups[k] for k in keys]

    # -- local membership -------------------------------------------------------------

    def _join_local(self, group: Any, pids: list[Pid]) -> None:
        for pid in pids:
            if not self.node.runtime.is_local(pid):
                raise ValueError(f"{pid} is not a process of this node (pg joins local pids)")
        key = _key(group)
        self._groups[key] = group
        assert self._server is not None
        for pid in pids:
            entry = self._local.get(pid)
            if entry is None:
                self._local[pid] = (self._server.process.monitor(pid), [key])
            else:
                entry[1].append(key)
        self._broadcast((_JOIN, self.pid, group, pids if len(pids) != 1 else pids[0]))

    def _leave_local(self, group: Any, pids: list[Pid]) -> bool:
        key = _key(group)
        left = []
        assert self._server is not None
        for pid in pids:
            entry = self._local.get(pid)
            if entry is None or key not in entry[1]:
                continue
            entry[1].remove(key)
            if not entry[1]:
                self._server.process.demonitor(entry[0], flush=True)
                del self._local[pid]
            left.append(pid)
        if not left:
            return False
        self._broadcast((_LEAVE, self.pid, left if len(left) != 1 else left[0], [group]))
        return True

    def _broadcast(self, msg: Any) -> None:
        assert self._server is not None
        for peer in list(self._remote):
            self._server.process.send(peer, msg)

    # -- the peers --------------------------------------------------------------------

    def _discovered(self, peer: Pid) -> None:
        assert self._server is not None
        proc = self._server.process
        proc.send(peer, (_GEN_CAST, (_SYNC, self.pid, self._local_groups())))
        if peer not in self._remote:
            self._remote[peer] = (proc.monitor(peer), {})
            proc.send(peer, (_DISCOVER, self.pid))

    def _local_groups(self) -> list[tuple[Any, list[Pid]]]:
        by_key: dict[bytes, list[Pid]] = {}
        for pid, (_, keys) in self._local.items():
            for k in keys:
                by_key.setdefault(k, []).append(pid)
        return [(self._groups[k], pids) for k, pids in by_key.items()]

    def _sync(self, peer: Pid, groups: list[Any]) -> None:
        entry = self._remote.get(peer)
        if entry is None:
            assert self._server is not None
            entry = (self._server.process.monitor(peer), {})
        table: dict[bytes, list[Pid]] = {}
        for item in groups:
            if type(item) is not tuple or len(item) != 2:
                raise ValueError(f"bad sync entry {item!r}")
            group, pids = item
            key = _key(group)
            self._groups[key] = group
            table[key] = _pids(pids)
        self._remote[peer] = (entry[0], table)

    def _remote_join(self, peer: Pid, group: Any, pids: list[Pid]) -> None:
        entry = self._remote.get(peer)
        if entry is None:
            return  # a join from outside the overlay, or after its node left: ignored, as pg
        key = _key(group)
        self._groups[key] = group
        entry[1][key] = pids + entry[1].get(key, [])

    def _remote_leave(self, peer: Pid, pids: list[Pid], groups: Iterable[Any]) -> None:
        entry = self._remote.get(peer)
        if entry is None:
            return
        for group in groups:
            key = _key(group)
            members = entry[1].get(key)
            if members is None:
                continue
            for pid in pids:
                if pid in members:
                    members.remove(pid)
            if not members:
                del entry[1][key]

    def _down(self, ref: Any, pid: Any) -> None:
        entry = self._local.get(pid)
        if entry is not None and entry[0] == ref:
            del self._local[pid]
            groups = [self._groups[k] for k in entry[1]]  # once per membership, as pg
            self._broadcast((_LEAVE, self.pid, pid, groups))
            return
        remote = self._remote.get(pid)
        if remote is not None and remote[0] == ref:
            del self._remote[pid]

    async def aclose(self) -> None:
        """Stop following connections (the scope process stops with the node)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
