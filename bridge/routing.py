"""Routing between the actor runtime and the distribution connections.

:class:`NodeRouter` is the ``bridge`` implementation of :class:`python_actors.Router`
(the outbound half: one control message per signal, docs/protocol.md §5) and
the dispatcher of inbound control messages into the runtime's inbound half.

Signals to a node without a connection are queued while the node dials it (BEAM's
auto-connect); if the connection cannot be made the queue is dropped and every link
and monitor towards that node fires ``noconnection``, as BEAM does.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto import control as c
from dist_proto.flags import DFlag
from dist_proto.terms import Atom, Pid, Reference

from .arrays import encode_or_write, write_chunked

if TYPE_CHECKING:
    from python_actors import Runtime

    from .node import Node
    from .peer import PeerConnection

__all__ = ["NodeRouter"]

log = logging.getLogger("bridge.routing")

# plain ints: a peer's flags are an int, and ``int & IntFlag`` runs enum code in Python
_MONITOR_FLAGS = int(DFlag.DIST_MONITOR | DFlag.DIST_MONITOR_NAME)
_ALIAS = int(DFlag.ALIAS)
_NOPROC = Atom("noproc")
_PYTHON_EXCEPTION = Atom("python_exception")


class NodeRouter:
    """Outbound: runtime signals to control messages. Inbound: control messages to the runtime."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._handlers: dict[type, Callable[[PeerConnection, Any], None]] = {
            c.Send: self._on_send,
            c.SendSender: self._on_send_sender,
            c.RegSend: self._on_reg_send,
            c.AliasSend: self._on_alias_send,
            c.Link: self._on_link,
            c.UnlinkId: self._on_unlink_id,
            c.UnlinkIdAck: self._on_unlink_id_ack,
            c.Unlink: self._on_old_unlink,
            c.Exit: self._on_exit,
            c.Exit2: self._on_exit2,
            c.Monitor: self._on_monitor,
            c.Demonitor: self._on_demonitor,
            c.MonitorExit: self._on_monitor_exit,
            c.SpawnRequest: self._on_spawn_request,
            c.SpawnReply: self._on_spawn_reply,
            c.GroupLeader: self._ignore,
        }

    @property
    def runtime(self) -> Runtime:
        return self._node.runtime

    # -- outbound (python_actors.Router) ----------------------------------------------

    def _emit(self, node: Atom, make: Callable[[PeerConnection], bytes | None]) -> None:
        self._node._emit(node, make)

    def send(self, from_pid: Pid, to: Any, message: Any) -> None:
        """SEND / SEND_SENDER to a pid, REG_SEND to ``(name, node)``.

        The hot path: on an open connection the frame is encoded and queued at once,
        with no closure; only a send that must wait for a connection is deferred.
        """
        peers = self._node._peers
        if type(to) is Pid:
            peer = peers.get(to.node)
            if peer is not None and peer.open:
                try:
                    frame = peer.conn.encode_send(to, message, from_pid)
                except TypeError:  # an array or buffer object: written as chunks, or re-raised
                    conn = peer.conn
                    if not write_chunked(peer, lambda m: conn.encode_send(to, m, from_pid), message):
                        raise
                else:
                    peer.write(frame, now=True)
            else:
                self._emit(to.node, lambda p: encode_or_write(
                    p, lambda m: p.conn.encode_send(to, m, from_pid), message))
            return
        name, node = to
        peer = peers.get(node)
        if peer is not None and peer.open:
            try:
                frame = peer.conn.encode_reg_send(from_pid, name, message)
            except TypeError:
                conn = peer.conn
                if not write_chunked(peer, lambda m: conn.encode_reg_send(from_pid, name, m), message):
                    raise
            else:
                peer.write(frame, now=True)
        else:
            self._emit(node, lambda p: encode_or_write(
                p, lambda m: p.conn.encode_reg_send(from_pid, name, m), message))

    def send_alias(self, from_pid: Pid, alias: Reference, message: Any) -> None:
        """ALIAS_SEND; dropped when the peer did not negotiate ALIAS (BEAM does the same).
        The hot path of a reply to a BEAM caller: encoded and written at once."""
        peer = self._node._peers.get(alias.node)
        if peer is not None and peer.open:
            if peer.flags & _ALIAS:
                try:
                    frame = peer.conn.encode_alias_send(from_pid, alias, message)
                except TypeError:
                    conn = peer.conn
                    if not write_chunked(peer, lambda m: conn.encode_alias_send(from_pid, alias, m), message):
                        raise
                else:
                    peer.write(frame, now=True)
            return

        def make(p: PeerConnection) -> bytes | None:
            if p.flags & _ALIAS:
                return encode_or_write(p, lambda m: p.conn.encode_alias_send(from_pid, alias, m), message)
            return None

        self._emit(alias.node, make)

    def _control(self, node: Atom, msg: Any, need: int = 0) -> None:
        def make(p: PeerConnection) -> bytes | None:
            if need and (p.flags & need) != need:
                return None
            try:
                return p.conn.send(msg)
            except (TypeError, ValueError) as exc:
                # A reason with no Erlang form (a Python object): the signal must still
                # go out, or the remote link/monitor would never fire.
                if not hasattr(msg, "reason"):
                    raise
                log.warning("exit reason for %s cannot be encoded (%s); sending a description", node.name, exc)
                reason = (_PYTHON_EXCEPTION, b"TypeError", str(exc).encode(), repr(msg.reason).encode())
                return p.conn.send(dataclasses.replace(msg, reason=reason))

        self._emit(node, make)

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        """LINK."""
        self._control(to_pid.node, c.Link(from_pid, to_pid))

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """UNLINK_ID."""
        self._control(to_pid.node, c.UnlinkId(unlink_id, from_pid, to_pid))

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """UNLINK_ID_ACK."""
        self._control(to_pid.node, c.UnlinkIdAck(unlink_id, from_pid, to_pid))

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """EXIT: a link broke."""
        self._control(to_pid.node, c.Exit(from_pid, to_pid, reason))

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """EXIT2: ``exit(Pid, Reason)``."""
        self._control(to_pid.node, c.Exit2(from_pid, to_pid, reason))

    def monitor(self, watcher: Pid, target: Any, ref: Reference) -> None:
        """MONITOR_P (needs both monitor flags; without them only ``noconnection`` fires)."""
        if type(target) is Pid:
            node, wire = target.node, target
        else:
            wire, node = target
        if not self._monitor_now(node, (19, watcher, wire, ref)):
            self._control(node, c.Monitor(watcher, wire, ref), _MONITOR_FLAGS)

    def demonitor(self, watcher: Pid, target: Any, ref: Reference) -> None:
        """DEMONITOR_P."""
        if type(target) is Pid:
            node, wire = target.node, target
        else:
            wire, node = target
        if not self._monitor_now(node, (20, watcher, wire, ref)):
            self._control(node, c.Demonitor(watcher, wire, ref), _MONITOR_FLAGS)

    def _monitor_now(self, node: Atom, control: tuple[Any, ...]) -> bool:
        """A ``gen:call``'s MONITOR_P / DEMONITOR_P on an open connection: the control
        tuple encoded and queued at once (no dataclass, no closure). False: not connected,
        take the general path."""
        peer = self._node._peers.get(node)
        if peer is None or not peer.open:
            return False
        if peer.flags & _MONITOR_FLAGS == _MONITOR_FLAGS:
            peer.write(peer.conn.send_term(control))
        return True

    def down(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """MONITOR_P_EXIT to a remote watcher."""
        self._control(watcher.node, c.MonitorExit(target, watcher, ref, reason), _MONITOR_FLAGS)

    def supports_alias(self, node: Atom) -> bool:
        """Whether ``node`` is connected with ALIAS negotiated (OTP 24+ peers)."""
        peer = self._node._peers.get(node)
        return peer is not None and peer.open and bool(peer.flags & _ALIAS)

    # -- inbound --------------------------------------------------------------------

    def dispatch(self, peer: PeerConnection, msg: Any) -> None:
        """Route one control message received from ``peer``."""
        handler = self._handlers.get(type(msg))
        if handler is None:
            msg = c.normalize(msg)
            handler = self._handlers.get(type(msg))
            if handler is None:
                log.debug("ignoring %s from %s", type(msg).__name__, peer.name.name)
                return
        handler(peer, msg)

    def _from_peer(self, peer: PeerConnection, pid: Pid) -> bool:
        """BEAM kills a connection whose sender pids are not of the peer's node."""
        if pid.node == peer.name:
            return True
        log.warning("%s sent a signal from foreign pid %s; closing", peer.name.name, pid)
        peer.close(Atom("bad_sender"))
        return False

    def _ignore(self, peer: PeerConnection, msg: Any) -> None:
        return None

    def _on_send(self, peer: PeerConnection, msg: c.Send) -> None:
        self.runtime.deliver(msg.to_pid, msg.message)

    def _on_send_sender(self, peer: PeerConnection, msg: c.SendSender) -> None:
        self.runtime.deliver(msg.to_pid, msg.message)

    def _on_reg_send(self, peer: PeerConnection, msg: c.RegSend) -> None:
        self.runtime.deliver(msg.to_name, msg.message)

    def _on_alias_send(self, peer: PeerConnection, msg: c.AliasSend) -> None:
        alias = msg.alias
        if self.runtime.is_local(alias):
            self.runtime.deliver_alias(alias, msg.message)

    def _on_link(self, peer: PeerConnection, msg: c.Link) -> None:
        if self._from_peer(peer, msg.from_pid):
            self.runtime.deliver_link(msg.from_pid, msg.to_pid)

    def _on_unlink_id(self, peer: PeerConnection, msg: c.UnlinkId) -> None:
        if self._from_peer(peer, msg.from_pid):
            self.runtime.deliver_unlink(msg.from_pid, msg.to_pid, msg.id)

    def _on_unlink_id_ack(self, peer: PeerConnection, msg: c.UnlinkIdAck) -> None:
        if self._from_peer(peer, msg.from_pid):
            self.runtime.deliver_unlink_ack(msg.from_pid, msg.to_pid, msg.id)

    def _on_old_unlink(self, peer: PeerConnection, msg: c.Unlink) -> None:
        # Pre-OTP 26 UNLINK: treat as an unlink whose ack nobody waits for.
        if self._from_peer(peer, msg.from_pid):
            self.runtime.deliver_unlink(msg.from_pid, msg.to_pid, 0)

    def _on_exit(self, peer: PeerConnection, msg: c.Exit) -> None:
        if self._from_peer(peer, msg.from_pid):
            self.runtime.deliver_exit(msg.from_pid, msg.to_pid, msg.reason)

    def _on_exit2(self, peer: PeerConnection, msg: c.Exit2) -> None:
        if self._from_peer(peer, msg.from_pid):
            self.runtime.deliver_exit2(msg.from_pid, msg.to_pid, msg.reason)

    def _on_monitor(self, peer: PeerConnection, msg: c.Monitor) -> None:
        if not self._from_peer(peer, msg.from_pid):
            return
        if not self.runtime.deliver_monitor(msg.from_pid, msg.target, msg.ref):
            peer.send(c.MonitorExit(msg.target, msg.from_pid, msg.ref, _NOPROC))

    def _on_demonitor(self, peer: PeerConnection, msg: c.Demonitor) -> None:
        self.runtime.deliver_demonitor(msg.from_pid, msg.target, msg.ref)

    def _on_monitor_exit(self, peer: PeerConnection, msg: c.MonitorExit) -> None:
        self.runtime.deliver_down(msg.from_proc, msg.to_pid, msg.ref, msg.reason)

    def _on_spawn_request(self, peer: PeerConnection, msg: c.SpawnRequest) -> None:
        self._node._spawner.handle_request(peer, msg)

    def _on_spawn_reply(self, peer: PeerConnection, msg: c.SpawnReply) -> None:
        self._node._spawner.handle_reply(peer, msg)
