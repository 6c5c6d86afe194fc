"""``global_name_server`` for a visible Python node (kernel's ``global``, protocol 8).

A visible node is met by every BEAM node's ``global``: on nodeup each side casts
``init_connect`` to the other's ``global_name_server``, the two lockers lock their
partitions (:mod:`bridge.global_locker`), the servers exchange their names, resolve
clashes and tell every node they know about the other side (``new_nodes``), which
then connect to the newcomers and report ``in_sync``. ``global:sync()`` on a BEAM
node returns once every visible node it is connected to is in sync with it, so a
visible node that does not answer hangs it; this module answers. docs/global.md
has the protocol digest; the message names below are OTP's.

Theory of operation
-------------------
:class:`~bridge.global_service.GlobalService` belongs to the node and outlives restarts of the server
process; :class:`GlobalNameServer` is the process (a ``GenServer`` registered as
``global_name_server``, started under ``kernel_sup`` in visible mode). The server
holds the tables (:mod:`bridge.global_tables`), the session state of each node being
synced (``sync_tag_my``, ``sync_tag_his``, ``wait_lock``, ``save_ops``, ``pre_connect``,
``prot_vsn``, ``lock_id``: OTP keeps them in the process dictionary) and starts
the locker linked to itself. Name resolution (``exchange_names``) runs in a process
of its own, as OTP's resolver does, because a clash may need an rpc.

Requests from other nodes are answered as OTP answers them: ``{set_lock, Id}``,
``{del_lock, Id}``, ``{register, Name, Pid, Method}``, ``{unregister, Name}``,
``get_known``, ``get_synced``, ``get_protocol_version``, ``get_names_ext`` ...;
anything else is logged at WARNING and gets no reply (OTP's catch-all clauses),
and a malformed message never stops the server.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid
from python_actors import GenServer, NoReply, Ok, Process, Reply, Stop

from .errors import RpcError
from .global_locker import GNS, Cancel, HisTheLocker, KnownChange, Locker
from .global_registry import NamesAndLocks
from .global_resolve import exchange_names, resolve_it
from .global_tables import LockTable, NameTable

if TYPE_CHECKING:
    from .global_service import GlobalService
    from .node import Node

__all__ = ["GlobalNameServer", "PROTOCOL_VSN", "start_global_name_server"]

log = logging.getLogger("bridge.global")

#: ``global``'s protocol version (OTP 25 to 28 speak 8)
PROTOCOL_VSN = 8
_POP_VSN = 7  # lost_connection / remove_connection (prevent_overlapping_partitions)
_PGPV_VSN = 7  # known nodes carry their protocol version
_LOST_CONNECTION_MEMORY = 3600.0  # seconds a lost_connection report is remembered

_GEN_CAST = Atom("$gen_cast")
_A = Atom  # short constructor for the many protocol atoms below
_YES, _OK, _TRUE = _A("yes"), _A("ok"), True
_INIT_CONNECT, _INIT_CONNECT_ACK, _CANCEL_CONNECT = _A("init_connect"), _A("init_connect_ack"), _A("cancel_connect")
_LOCK_IS_SET, _EXCHANGE, _EXCHANGE_OPS, _RESOLVED = _A("lock_is_set"), _A("exchange"), _A("exchange_ops"), _A("resolved")
_NEW_NODES, _IN_SYNC, _LOCK_SET = _A("new_nodes"), _A("in_sync"), _A("lock_set")
_LOST_CONNECTION, _REMOVE_CONNECTION = _A("lost_connection"), _A("remove_connection")
_VSN, _LOCK = _A("vsn"), _A("lock")
_LOCKER, _NO_LONGER_A_PID = _A("locker"), _A("no_longer_a_pid")
_DOWN, _WHEREIS, _PREPARE_SHUTDOWN = _A("DOWN"), _A("whereis"), _A("prepare_shutdown")


@dataclass(frozen=True)
class _NodeEvent:
    """nodeup/nodedown from the node (never from the wire, so it cannot be forged)."""

    node: Atom
    up: bool


@dataclass(frozen=True)
class _Refill:
    """The ``global_names`` rows of a node we rejoined after a restart."""

    rows: list[Any]


@dataclass(frozen=True)
class _ExtraNodedown:
    """``{extra_nodedown, Node}``: a node we were told about could not be reached."""

    node: Atom


async def start_global_name_server(service: GlobalService) -> Pid | None:
    """Start the server registered as ``global_name_server`` (a child of ``kernel_sup``)."""
    return await GlobalNameServer.start_link(service, name=GNS)


class GlobalNameServer(NamesAndLocks, GenServer):
    """``global_name_server``: the process; see the module docstring."""

    placement = "loop"  # a system process: bookkeeping only, never blocks

    def init(self, service: GlobalService) -> Ok:
        self.service = service
        self.node = service.node
        self.names = NameTable()
        self.locks = LockTable()
        self.known: dict[Atom, int] = {}
        self.pending: dict[Atom, int] = {}
        self.removing: set[Atom] = set()
        self.synced: list[Atom] = []
        #: node -> (my tag, resolver pid or None until the exchange starts)
        self.resolvers: dict[Atom, tuple[Any, Pid | None]] = {}
        self.sessions: dict[Atom, dict[str, Any]] = {}
        self.sync_waiters: list[tuple[Any, set[Atom]]] = []
        self.lost: dict[tuple[Atom, Atom], tuple[Any, Any, Any]] = {}
        self.global_lock_down = False
        self.prevent_overlapping_partitions = True
        self._tags = itertools.count(1)
        self._op_ids = itertools.count(1)
        service.server = self
        # Connected already: this is a restart under kernel_sup. The other nodes still
        # count us as known and synced, so rejoin as such and refill the names from one
        # of them, rather than start a merge they would never finish.
        rejoin = [Atom(n) for n in self.node.visible_nodes()]
        self.known = {n: PROTOCOL_VSN for n in rejoin}
        self.synced = list(rejoin)
        #: visible nodes we have seen come up (nodeup/nodedown of hidden ones are ignored,
        #: as net_kernel:monitor_nodes/1 never reports them to global)
        self.up: set[Atom] = set(rejoin)
        locker = Locker(self.node, service.is_global_lock_set, rejoin)
        self.locker = self.process.spawn_link(locker.run)
        self.node.allow_rpc("global", "resolve_it", self._resolve_it_rpc)
        # a node configured with global groups asks each newcomer for its group:
        # this node has none (global_group:get_own_nodes() of an unconfigured node)
        self.node.allow_rpc("global_group", "get_own_nodes", _no_global_groups)
        proc = self.process
        gns_pid = proc.pid

        def on_node(node: Atom, up: bool, _reason: Any) -> None:
            if not proc.alive:  # killed: terminate did not run
                self._unsubscribe()
                return
            if not up or self.node.is_visible(node):
                proc.runtime.send(gns_pid, _NodeEvent(node, up))

        self._stop_watching: Callable[[], None] | None = self.node.monitor_nodes(on_node)
        if rejoin:
            log.warning("global_name_server restarted; refilling names from %s", [n.name for n in rejoin])
            proc.spawn(_refill_names, self.node, rejoin, gns_pid)
        return Ok(None)

    def terminate(self, reason: Any, state: Any) -> None:
        self._unsubscribe()

    def _unsubscribe(self) -> None:
        stop, self._stop_watching = self._stop_watching, None
        if stop is not None:
            stop()

    # -- helpers -----------------------------------------------------------------------

    @property
    def me(self) -> Atom:
        return self.node.atom

    def _session(self, node: Atom) -> dict[str, Any]:
        return self.sessions.setdefault(node, {})

    def _get(self, node: Atom, key: str) -> Any:
        return self.sessions.get(node, {}).get(key)

    def _cast(self, node: Atom, message: Any) -> None:
        self.process.send((GNS, node), (_GEN_CAST, message))

    def _volatile_send(self, node: Atom, message: Any) -> None:
        """``gns_volatile_send/2``: only over an existing connection."""
        if self.node.is_connected(node):
            self.process.send((GNS, node), message)

    def _node_vsn(self, node: Atom) -> int:
        if node == self.me:
            return PROTOCOL_VSN
        return self.known.get(node, self.pending.get(node, 0))

    def _known_list(self, vsn: int) -> list[Any]:
        """``mk_known_list/2``: ``[{Node, Vsn}]`` for protocol 7+, bare nodes before."""
        if vsn < _PGPV_VSN:
            return list(self.known)
        return [(n, v) for n, v in self.known.items()]

    def _resolve_it_rpc(self, method: Any, name: Any, pid1: Any, pid2: Any) -> Any:
        return resolve_it(self.node, method, name, pid1, pid2)

    # -- calls -------------------------------------------------------------------------

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        log.debug("global_name_server call %r from %r", request, from_)
        try:
            return self._call(request, from_, state)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            log.warning("The global_name_server could not serve %r: %r", request, exc)
            return NoReply(state)

    def _call(self, request: Any, from_: Any, state: Any) -> Any:
        caller = from_[0] if type(from_) is tuple and from_ else None
        kind = request[0] if type(request) is tuple and request else request
        n = len(request) if type(request) is tuple else 0
        if kind == _A("register") and n == 4 and type(request[2]) is Pid:
            self._ins_name(request[1], request[2], request[3], caller, [])
            return Reply(_YES, state)
        if kind == _A("register_ext") and n == 5 and type(request[2]) is Pid:
            self.names.insert_ext(request[1], request[2], request[4])
            self._ins_name(request[1], request[2], request[3], caller, [])
            return Reply(_YES, state)
        if kind == _A("unregister") and n == 2:
            self._delete_name(request[1])
            return Reply(_OK, state)
        if kind == _A("set_lock") and n == 2 and _is_lock_id(request[1]) and type(caller) is Pid:
            return Reply(self._set_lock(request[1], caller), state)
        if kind == _A("del_lock") and n == 2 and _is_lock_id(request[1]) and type(caller) is Pid:
            self._del_lock(request[1], caller)
            return Reply(_TRUE, state)
        if request == _A("get_known"):
            return Reply(self._known_list(0), state)
        if request == _A("get_synced"):
            return Reply(list(self.synced), state)
        if kind == _A("sync") and n == 2 and type(request[1]) is list:
            # a node that is not connected counts as gone at once (the syncer's nodedown)
            waiting = {x for x in request[1] if type(x) is Atom and x in self.up} - set(self.synced)
            if not waiting:
                return Reply(_OK, state)
            self.sync_waiters.append((from_, waiting))
            return NoReply(state)
        if request == _A("get_protocol_version"):
            return Reply(PROTOCOL_VSN, state)
        if request == _A("get_names_ext"):
            return Reply(self.names.ext_list(), state)
        if request == _A("stop"):
            return Stop(Atom("normal"), state, reply=_A("stopped"))
        log.warning("The global_name_server received an unexpected message: handle_call(%r, %r, _)", request, from_)
        return NoReply(state)

    # -- casts -------------------------------------------------------------------------

    def handle_cast(self, request: Any, state: Any) -> Any:
        log.debug("global_name_server cast %r", request)
        try:
            if not self._cast_message(request):
                log.warning("The global_name_server received an unexpected message: handle_cast(%r, _)", request)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            log.warning("The global_name_server dropped %r: %r", request, exc)
        return NoReply(state)

    def _cast_message(self, m: Any) -> bool:  # noqa: C901 - one branch per OTP clause
        if type(m) is not tuple or not m:
            return False
        tag, n = m[0], len(m)
        if tag == _INIT_CONNECT and n == 4 and type(m[2]) is Atom:
            self._init_connect(m[1], m[2], m[3])
        elif tag == _LOCK_IS_SET and n == 4:
            node, my_tag = m[1], m[2]
            if self._get(node, "sync_tag_my") == my_tag:
                self._lock_is_set(node, m[3])
            else:
                self._cancel_locker(node, my_tag)
        elif tag == _EXCHANGE and n == 5 and type(m[1]) is Atom and type(m[2]) is list:
            if self._get(m[1], "sync_tag_my") == m[4]:
                self._exchange(m[1], m[2])
            else:
                self._cancel_locker(m[1], m[4])
        elif tag == _EXCHANGE_OPS and n == 5:
            self._exchange_ops(m[1], m[2], m[3], m[4])
        elif tag == _RESOLVED and n == 7 and type(m[1]) is Atom:
            node, his_resolved, his_known, names_ext, my_tag = m[1], m[2], m[3], m[5], m[6]
            if self._get(node, "sync_tag_my") != my_tag:
                self._cancel_locker(node, my_tag)
            elif type(self._get(node, "save_ops")) is list:
                self._resolved(node, his_resolved, his_known, names_ext)
            else:
                self._session(node)["save_ops"] = ("resolved", his_known, names_ext, his_resolved)
        elif tag == _NEW_NODES and n == 6 and type(m[4]) is list:
            added = self._add_to_known(m[4])
            self._sync_others(added)
            self._do_ops(m[2], m[1], m[3], m[5])
            self.process.send(self.locker, KnownChange(add=tuple(added)))
        elif tag == _IN_SYNC and n == 3 and type(m[1]) is Atom:
            self._in_sync(m[1])
        elif tag in (_A("async_del_name"), _A("async_del_lock")) and n == 3:
            pass  # pre-R14 nodes; the DOWN removes the name or lock
        elif tag == _LOCK_SET and n == 5 and type(m[1]) is Pid:
            if self._get(m[1].node, "sync_tag_my") == m[4]:
                self.process.send(self.locker, m)
        elif tag == _LOCK_SET and n == 4 and type(m[1]) is Pid:
            self.process.send(self.locker, m)
        else:
            return False
        return True

    # -- info --------------------------------------------------------------------------

    def handle_info(self, msg: Any, state: Any) -> Any:
        log.debug("global_name_server info %r", msg)
        try:
            if not self._info(msg):
                log.warning("The global_name_server received an unexpected message: handle_info(%r, _)", msg)
        except (ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            log.warning("The global_name_server dropped %r: %r", msg, exc)
        return NoReply(state)

    def _info(self, m: Any) -> bool:  # noqa: C901 - one branch per OTP clause
        if isinstance(m, _NodeEvent):
            if m.up:
                self.up.add(m.node)
                self._handle_nodeup(m.node)
            elif m.node in self.up:
                self.up.discard(m.node)
                self._handle_nodedown(m.node, "disconnected")
                self._tell_waiters(m.node)
            return True
        if isinstance(m, _ExtraNodedown):
            self._tell_waiters(m.node)
            self._handle_nodedown(m.node, "disconnected")
            return True
        if isinstance(m, _Refill):
            for row in m.rows:
                if type(row) is tuple and len(row) == 4 and type(row[1]) is Pid and self.names.lookup(row[0]) is None:
                    self.names.insert(row[0], row[1], row[2], self.process.monitor(row[1]))
            return True
        if isinstance(m, _LostConnectionExpired):
            if self.lost.get(m.key, (None, None, None))[2] is m:
                del self.lost[m.key]
            return True
        if type(m) is not tuple or not m:
            return False
        tag, n = m[0], len(m)
        if tag == _DOWN and n == 5:
            self._down(m[1])
        elif tag == _WHEREIS and n == 3:
            self.reply(m[2], self.service.where(m[1]))
        elif tag == _LOST_CONNECTION and n == 5 and type(m[1]) is Atom and type(m[4]) is Atom:
            self._lost_connection(m)
        elif tag == _REMOVE_CONNECTION and n == 2 and type(m[1]) is Atom:
            if self._potentially_known(m[1]):
                self.node.disconnect(m[1])
                self._handle_nodedown(m[1], "remove_connection")
                log.warning("'global' at node %s disconnected node %s in order to prevent overlapping partitions",
                            self.me.name, m[1].name)
        elif tag == _CANCEL_CONNECT and n == 3 and type(m[1]) is Atom:
            node, my_tag = m[1], m[2]
            if self._get(node, "sync_tag_my") == my_tag:
                self._cancel_locker(node, my_tag)
                self.sessions.pop(node, None)
                self.pending.pop(node, None)
                self._restart_connect(node, my_tag)
        elif tag == _INIT_CONNECT_ACK and n == 4 and type(m[1]) is Atom:
            node = m[1]
            if not (self._get(node, "sync_tag_my") == m[2] and self._get(node, "sync_tag_his") == m[3]):
                self._volatile_send(node, (_CANCEL_CONNECT, self.me, m[3]))
                self._restart_connect(node, self._get(node, "sync_tag_my"))
        elif tag == _PREPARE_SHUTDOWN and n == 3 and type(m[1]) is Pid:
            self.prevent_overlapping_partitions = False
            self.process.send(m[1], (m[2], _OK))
        else:
            return False
        return True

    # -- connecting partitions ---------------------------------------------------------

    def _handle_nodeup(self, node: Atom) -> None:
        """``handle_nodeup/2``: make ourselves known to ``node``."""
        if node in self.known or node in self.resolvers:
            return
        pre = self._get(node, "pre_connect")
        my_tag = next(self._tags)
        self.sessions[node] = {"sync_tag_my": my_tag}
        known_map = {**{n: v for n, v in self.known.items()}}
        init = (_INIT_CONNECT, (PROTOCOL_VSN, my_tag), self.me, (_LOCKER, _NO_LONGER_A_PID, known_map, self.locker))
        self._cast(node, init)
        self.resolvers[node] = (my_tag, None)
        if pre is not None:  # resend_pre_connect: an init_connect that came first
            vsn, init_msg, his_tag = pre
            self._init_connect((vsn, his_tag), node, init_msg)

    def _init_connect(self, vsn_tag: Any, node: Atom, init_msg: Any) -> None:
        if type(vsn_tag) is not tuple or len(vsn_tag) < 2 or type(vsn_tag[0]) is not int:
            log.info("Illegal global protocol version %r Node: %r", vsn_tag, node)
            return
        his_vsn, his_tag = vsn_tag[0], vsn_tag[1]
        vsn = min(his_vsn, PROTOCOL_VSN)
        if node in self.pending:
            # a second connection attempt while one is under way: start over
            self._volatile_send(node, (_CANCEL_CONNECT, self.me, his_tag))
            self._restart_connect(node, self._get(node, "sync_tag_my"))
        session = self._session(node)
        session["prot_vsn"] = vsn
        session["sync_tag_his"] = his_tag
        resolver = self.resolvers.get(node)
        if resolver is None:
            session["pre_connect"] = (vsn, init_msg, his_tag)
            return
        my_tag = resolver[0]
        if type(init_msg) is not tuple or len(init_msg) != 4 or type(init_msg[3]) is not Pid:
            log.info("global: bad init_connect from %s: %r", node.name, init_msg)
            return
        self.process.send(self.locker, HisTheLocker(node, init_msg[3], vsn, his_tag, my_tag))
        if his_vsn >= 8:
            self._volatile_send(node, (_INIT_CONNECT_ACK, self.me, his_tag, my_tag))
        self.pending[node] = his_vsn

    def _restart_connect(self, node: Atom, my_tag: Any) -> None:
        self._cancel_locker(node, my_tag)
        self.sessions.pop(node, None)
        self.pending.pop(node, None)
        if type(my_tag) is int and self.node.is_connected(node):
            self._handle_nodeup(node)

    def _lock_is_set(self, node: Atom, lock_id: Any) -> None:
        session = self._session(node)
        self._cast(node, (_EXCHANGE, self.me, self.names.exchange_list(), [], session.get("sync_tag_his")))
        session["lock_id"] = lock_id
        waiting = session.get("wait_lock")
        session["wait_lock"] = "lock_is_set"
        if type(waiting) is tuple:
            self._exchange(node, waiting[1])

    def _exchange(self, node: Atom, name_list: list[Any]) -> None:
        session = self._session(node)
        if session.pop("wait_lock", None) == "lock_is_set":
            my_tag = session.get("sync_tag_my")
            pid = self.process.spawn(exchange_names, self.node, self.names, name_list, node, my_tag)
            self.resolvers[node] = (my_tag, pid)
        else:
            session["wait_lock"] = ("exchange", name_list)

    def _exchange_ops(self, node: Any, my_tag: Any, ops: Any, resolved: Any) -> None:
        if type(node) is not Atom or self._get(node, "sync_tag_my") != my_tag:
            if type(node) is Atom:
                self._cancel_locker(node, my_tag)
            return
        session = self._session(node)
        known = self._known_list(self._node_vsn(node))
        self._cast(node, (_RESOLVED, self.me, resolved, known, Atom("unused"), self.names.ext_list(),
                          session.get("sync_tag_his")))
        saved = session.get("save_ops")
        session["save_ops"] = list(ops)
        if type(saved) is tuple:
            _, his_known, names_ext, his_resolved = saved
            self._resolved(node, his_resolved, his_known, names_ext)

    def _resolved(self, node: Atom, his_resolved: list[Any], his_known: list[Any], names_ext: list[Any]) -> None:
        """``resolved/5``: both sides have their operations; apply them and tell everyone."""
        session = self._session(node)
        ops = list(session.pop("save_ops", [])) + list(his_resolved)
        known_before = dict(self.known)
        new_nodes = self._node_vsn_list([node, *his_known])
        his_known_nodes = [_node_of(x) for x in his_known]
        self._sync_others(his_known_nodes)
        extra_info = [(_VSN, session.get("prot_vsn")), (_LOCK, session.get("lock_id"))]
        self._do_ops(ops, self.me, names_ext, extra_info)
        self._tell_synced(node)
        for other in his_known_nodes:
            self._cancel_resolved_locker(other, None)
        message = (_NEW_NODES, self.me, ops, names_ext, new_nodes, extra_info)
        old_message = (_NEW_NODES, self.me, ops, names_ext, [n for n, _ in new_nodes], extra_info)

        def broadcast_new_nodes() -> None:
            for known_node, vsn in known_before.items():
                self._cast(known_node, message if vsn >= _PGPV_VSN else old_message)

        self._cancel_resolved_locker(node, broadcast_new_nodes)
        added = self._add_to_known(new_nodes)
        self.process.send(self.locker, KnownChange(add=tuple(added)))
        if node not in self.synced:
            self.synced.insert(0, node)

    def _cancel_resolved_locker(self, node: Atom, fun: Callable[[], None] | None) -> None:
        tag = self._get(node, "sync_tag_my")
        self.pending.pop(node, None)
        self._cancel_locker(node, tag, fun)
        self.sessions.pop(node, None)

    def _in_sync(self, node: Atom) -> None:
        self._tell_synced(node)
        if node not in self.synced:
            self.synced.insert(0, node)
        self.pending.pop(node, None)
        self._cancel_locker(node, self._get(node, "sync_tag_my"))
        self.sessions.pop(node, None)

    def _cancel_locker(self, node: Atom, tag: Any, fun: Callable[[], None] | None = None) -> None:
        self.process.send(self.locker, Cancel(node, tag, fun))
        vsn = self.pending.get(node)
        if vsn is not None and vsn >= 8 and self._get(node, "sync_tag_my") == tag:
            self._volatile_send(node, (_CANCEL_CONNECT, self.me, self._get(node, "sync_tag_his")))
        resolver = self.resolvers.get(node)
        if resolver is not None and resolver[0] == tag:
            del self.resolvers[node]
            if resolver[1] is not None:
                self.process.exit(resolver[1], Atom("kill"))

    def _sync_others(self, nodes: list[Atom]) -> None:
        """``sync_others/1``: connect to each node and tell it we are in sync."""
        for node in nodes:
            if node != self.me:
                self.process.spawn(_sync_other, self.node, node, self.process.pid)

    def _node_vsn_list(self, nodes: list[Any]) -> list[tuple[Atom, int]]:
        out = []
        for x in nodes:
            if type(x) is Atom:
                out.append((x, self._node_vsn(x)))
            elif type(x) is tuple and len(x) == 2 and type(x[0]) is Atom and type(x[1]) is int:
                out.append((x[0], x[1] if x[1] != 0 else self._node_vsn(x[0])))
        return out

    def _add_to_known(self, nodes: list[Any]) -> list[Atom]:
        added = []
        for x in nodes:
            node, vsn = (x, 0) if type(x) is Atom else (x[0], x[1])
            if type(node) is not Atom or node == self.me:
                continue
            if node not in self.known:
                self.known[node] = vsn if type(vsn) is int else 0
                added.append(node)
            elif self.known[node] < 0:
                self.known[node] = vsn
        return added

    # -- nodes going away --------------------------------------------------------------

    def _handle_nodedown(self, node: Atom, what: str) -> None:
        self._cancel_locker(node, self._get(node, "sync_tag_my"))
        self.process.send(self.locker, KnownChange(remove=node))
        self.sessions.pop(node, None)
        if what == "remove_connection":
            self.removing.add(node)
        elif what == "disconnected":
            if node in self.removing:
                self.removing.discard(node)
            else:
                self._inform_connection_loss(node)
        self.pending.pop(node, None)
        self.known.pop(node, None)
        if node in self.synced:
            self.synced.remove(node)

    def _inform_connection_loss(self, node: Atom) -> None:
        if not self.prevent_overlapping_partitions:
            return
        message = (_LOST_CONNECTION, self.me, self.service.extended_creation(), next(self._op_ids), node)
        self._multicast(message, node)

    def _multicast(self, message: Any, ignore: Atom) -> None:
        for other, vsn in [*self.known.items(), *self.pending.items()]:
            if other != ignore and vsn >= _POP_VSN:
                self._volatile_send(other, message)

    def _potentially_known(self, node: Atom) -> bool:
        return node in self.known or node in self.pending

    def _lost_connection(self, m: tuple[Any, ...]) -> None:
        """``{lost_connection, NodeA, XCreationA, OpIdA, NodeB}``: NodeA lost NodeB; a node
        connected to both disconnects one of them (prevent_overlapping_partitions)."""
        if not self.prevent_overlapping_partitions:
            return
        _, node_a, xcreation, op_id, node_b = m
        key = (node_a, node_b)
        old = self.lost.get(key)
        if old is not None and old[0] == xcreation and type(op_id) is int and op_id <= old[1]:
            return
        self._multicast(m, node_a)
        expiry = _LostConnectionExpired(key)
        self.process.send_after(_LOST_CONNECTION_MEMORY, self.process.pid, expiry)
        self.lost[key] = (xcreation, op_id, expiry)
        remove = node_a if node_b == self.me else node_b
        if not self._potentially_known(remove):
            return
        if self._node_vsn(remove) < _POP_VSN:
            self.node.disconnect(remove)
        else:
            self._volatile_send(remove, (_REMOVE_CONNECTION, self.me))
        log.warning("'global' at node %s requested disconnect from node %s in order to prevent overlapping partitions",
                    self.me.name, remove.name)
        self._handle_nodedown(remove, "remove_connection")

    def _tell_synced(self, node: Atom) -> None:
        self._tell_waiters(node)

    def _tell_waiters(self, node: Atom) -> None:
        still = []
        for from_, waiting in self.sync_waiters:
            waiting.discard(node)
            if waiting:
                still.append((from_, waiting))
            else:
                self.reply(from_, _OK)
        self.sync_waiters = still


@dataclass(eq=False)
class _LostConnectionExpired:
    """The hour after which a ``lost_connection`` record is forgotten (the latest
    record's own timer only: records are compared by identity)."""

    key: tuple[Atom, Atom]


def _no_global_groups() -> list[Atom]:
    return []


def _is_lock_id(x: Any) -> bool:
    return type(x) is tuple and len(x) == 2


def _node_of(x: Any) -> Atom:
    if type(x) is Atom:
        return x
    if type(x) is tuple and len(x) == 2 and type(x[0]) is Atom:
        return x[0]
    raise ValueError(f"not a node or {{Node, Vsn}}: {x!r}")


async def _sync_other(proc: Process, node: Node, other: Atom, server: Pid) -> None:
    """``sync_other/2``: connect to ``other`` and cast ``{in_sync, Me, true}``; a node
    that cannot be reached is reported as ``extra_nodedown``."""
    log.debug("global: syncing with %s", other.name)
    if not await node.connect(other):
        log.warning("'global' at %s failed to connect to %s", node.name, other.name)
        proc.send(server, _ExtraNodedown(other))
        return
    proc.send((GNS, other), (_GEN_CAST, (_IN_SYNC, node.atom, True)))


async def _refill_names(proc: Process, node: Node, nodes: list[Atom], server: Pid) -> None:
    """Read the names of the first node that answers (its ``global_names`` table)."""
    for other in nodes:
        try:
            rows = await node.rpc(other, "ets", "tab2list", [Atom("global_names")], timeout=10.0)
        except RpcError as exc:
            log.info("global: no names from %s: %r", other.name, exc.reason)
            continue
        if type(rows) is list:
            proc.send(server, _Refill(rows))
            return
