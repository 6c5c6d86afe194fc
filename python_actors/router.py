"""The seam between the local runtime and the network.

The runtime owns local processes only. Whenever an operation involves a pid,
reference or ``{Name, Node}`` of *another* node, it calls the :class:`Router`
attached to it (``Runtime(router=...)`` or :meth:`Runtime.set_router`). The
``bridge`` package implements the router with one distribution connection per
node; each method maps to one control message of the distribution protocol
(docs/protocol.md §5), named in its docstring. Router methods must not
block and must not raise for an unreachable node: like BEAM, signals to a node
that cannot be reached are dropped, and the links and monitors involved are
fired with ``noconnection`` (the bridge calls :meth:`Inbound.node_down`).

The inbound half, :class:`Inbound`, is implemented by
:class:`python_actors.Runtime`; the bridge calls it when control messages
arrive. Inbound methods are synchronous and must be called on the runtime's
event loop thread.

Link protocol state (UNLINK_ID, mandatory in OTP 26): for each link between a
local and a remote pid the runtime keeps ``0`` (active) or the id of its pending
unlink. ``unlink`` sends UNLINK_ID(id) and marks the link inactive; the runtime
answers every inbound UNLINK_ID with :meth:`Router.unlink_ack`; an inbound
ack removes the inactive entry with that id; link and exit signals arriving on an
inactive entry are ignored.

Without a node (``nonode@nohost``) the runtime uses :class:`LocalRouter`, which
behaves like a non-distributed BEAM: messages to other nodes are dropped, and
links and monitors to them fire at once with ``noconnection``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from dist_proto.terms import Atom, Pid, Reference

from .errors import NOCONNECTION

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["Inbound", "LocalRouter", "Router", "Target"]

#: A monitor/send target on another node: a pid or ``(name, node)``.
Target = Pid | tuple[Atom, Atom]


@runtime_checkable
class Router(Protocol):
    """Outbound half: what the runtime asks of the network layer."""

    def send(self, from_pid: Pid, to: Target, message: Any) -> None:
        """SEND / SEND_SENDER to a pid, REG_SEND to ``(name, node)``."""

    def send_alias(self, from_pid: Pid, alias: Reference, message: Any) -> None:
        """ALIAS_SEND (or ALTACT_SIG_SEND with the alias flag); dropped if unsupported."""

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        """LINK. If ``to_pid`` is dead the peer answers with an exit ``noproc``."""

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """UNLINK_ID with ``unlink_id`` (1 .. 2**64-1)."""

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        """UNLINK_ID_ACK, answering an UNLINK_ID that the peer sent."""

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """EXIT / PAYLOAD_EXIT: the link from ``from_pid`` broke with ``reason``."""

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        """EXIT2 / PAYLOAD_EXIT2: ``exit(ToPid, Reason)`` called by ``from_pid``."""

    def monitor(self, watcher: Pid, target: Target, ref: Reference) -> None:
        """MONITOR_P; target is a pid or ``(name, node)`` (the wire carries the name)."""

    def demonitor(self, watcher: Pid, target: Target, ref: Reference) -> None:
        """DEMONITOR_P."""

    def down(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """MONITOR_P_EXIT: a local process watched by remote ``watcher`` ended.

        ``target`` is what the watcher monitored: the local pid or the registered name.
        """

    def supports_alias(self, node: Atom) -> bool:
        """Whether ``node`` is connected and offered ALIAS (so ``gen:call`` may tag its
        requests ``[alias | Ref]``); False for a node not connected yet."""


class Inbound(Protocol):
    """Inbound half: what the network layer tells the runtime (implemented by Runtime)."""

    def deliver(self, to: Pid | Atom, message: Any) -> None:
        """A message for a local pid or registered name; unknown targets are dropped."""

    def deliver_alias(self, alias: Reference, message: Any) -> None:
        """A message sent to a local alias; dropped if the alias is inactive."""

    def deliver_exit(self, from_pid: Pid, to: Pid, reason: Any) -> None:
        """EXIT: the link between remote ``from_pid`` and local ``to`` broke."""

    def deliver_exit2(self, from_pid: Pid, to: Pid, reason: Any) -> None:
        """EXIT2: remote ``from_pid`` called ``exit(To, Reason)``."""

    def deliver_link(self, from_pid: Pid, to: Pid) -> None:
        """LINK from a remote pid; answered with ``exit noproc`` if ``to`` is dead."""

    def deliver_unlink(self, from_pid: Pid, to: Pid, unlink_id: int) -> None:
        """UNLINK_ID; always answered with :meth:`Router.unlink_ack`."""

    def deliver_unlink_ack(self, from_pid: Pid, to: Pid, unlink_id: int) -> None:
        """UNLINK_ID_ACK for an unlink this side started."""

    def deliver_monitor(self, watcher: Pid, target: Pid | Atom, ref: Reference) -> bool:
        """MONITOR_P. Returns False when the target does not exist (send ``noproc``)."""

    def deliver_demonitor(self, watcher: Pid, target: Pid | Atom, ref: Reference) -> None:
        """DEMONITOR_P."""

    def deliver_down(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        """MONITOR_P_EXIT for a monitor a local process holds on a remote target."""

    def node_down(self, node: Atom) -> None:
        """The connection to ``node`` is gone: fire its links and monitors (noconnection)."""


class LocalRouter:
    """Router of a runtime with no distribution: every other node is unreachable.

    Sends are dropped silently (as BEAM drops a message it cannot deliver); a link
    or monitor to a remote pid fires at once (on the next loop iteration) with
    ``noconnection``; exit signals and demonitors are dropped.
    """

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def send(self, from_pid: Pid, to: Target, message: Any) -> None:
        return None

    def send_alias(self, from_pid: Pid, alias: Reference, message: Any) -> None:
        return None

    def link(self, from_pid: Pid, to_pid: Pid) -> None:
        self._runtime._later(self._runtime.deliver_exit, to_pid, from_pid, NOCONNECTION)

    def unlink(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        self._runtime._later(self._runtime.deliver_unlink_ack, to_pid, from_pid, unlink_id)

    def unlink_ack(self, from_pid: Pid, to_pid: Pid, unlink_id: int) -> None:
        return None

    def exit(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        return None

    def exit2(self, from_pid: Pid, to_pid: Pid, reason: Any) -> None:
        return None

    def monitor(self, watcher: Pid, target: Target, ref: Reference) -> None:
        wire_target = target if isinstance(target, Pid) else target[0]
        self._runtime._later(self._runtime.deliver_down, wire_target, watcher, ref, NOCONNECTION)

    def demonitor(self, watcher: Pid, target: Target, ref: Reference) -> None:
        return None

    def down(self, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any) -> None:
        return None

    def supports_alias(self, node: Atom) -> bool:
        return False
