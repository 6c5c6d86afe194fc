"""The inbound half of the router seam, implemented by :class:`Runtime`.

The bridge calls these when control messages arrive from another node (see
router.py for the protocol). Kept apart from runtime.py for size only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid, Reference

from .errors import DOWN, NOCONNECTION, NOPROC

if TYPE_CHECKING:
    pass

__all__ = ["InboundMixin"]

_PROCESS = Atom("process")


def _as_atom(name: Any) -> Atom:
    return name if type(name) is Atom else Atom(name)


class InboundMixin:
    """Router.Inbound methods of the runtime."""

    __slots__ = ()

    def deliver(self: Any, to: Pid | Atom, message: Any) -> None:
        if type(to) is Pid:
            p = self._get(to) if self.is_local(to) else None
        else:
            p = self._names.get(_as_atom(to))
        if p is not None:
            self._deliver(p, message)

    def deliver_alias(self: Any, alias: Reference, message: Any) -> None:
        p = self._aliases.get(alias)
        if p is not None:
            self._deliver(p, message)

    def deliver_exit(self: Any, from_pid: Pid, to: Pid, reason: Any) -> None:
        p = self._get(to)
        if p is None or not p.links or p.links.get(from_pid) != 0:
            return
        del p.links[from_pid]
        self._link_signal(p, from_pid, reason)

    def deliver_exit2(self: Any, from_pid: Pid, to: Pid, reason: Any) -> None:
        p = self._get(to)
        if p is not None:
            self._exit2_signal(p, from_pid, reason)

    def deliver_link(self: Any, from_pid: Pid, to: Pid) -> None:
        p = self._get(to)
        if p is None:
            self._router.exit(to, from_pid, NOPROC)
            return
        if p.links is None:
            p.links = {}
        if from_pid not in p.links:
            p.links[from_pid] = 0
            self._track_remote(p, from_pid.node)

    def deliver_unlink(self: Any, from_pid: Pid, to: Pid, unlink_id: int) -> None:
        p = self._get(to)
        if p is not None and p.links and p.links.get(from_pid) == 0:
            del p.links[from_pid]
        self._router.unlink_ack(to, from_pid, unlink_id)

    def deliver_unlink_ack(self: Any, from_pid: Pid, to: Pid, unlink_id: int) -> None:
        p = self._get(to)
        if p is not None and p.links and p.links.get(from_pid) == unlink_id:
            del p.links[from_pid]

    def deliver_monitor(self: Any, watcher: Pid, target: Pid | Atom, ref: Reference) -> bool:
        if type(target) is Pid:
            o = self._get(target) if self.is_local(target) else None
        else:
            o = self._names.get(_as_atom(target))
        if o is None:
            return False
        if o.watchers is None:
            o.watchers = {}
        o.watchers[ref] = (watcher, target)
        self._track_remote(o, watcher.node)
        return True

    def deliver_demonitor(self: Any, watcher: Pid, target: Pid | Atom, ref: Reference) -> None:
        if type(target) is Pid:
            o = self._get(target) if self.is_local(target) else None
        else:
            o = self._names.get(_as_atom(target))
        if o is not None and o.watchers:
            o.watchers.pop(ref, None)

    def deliver_down(
        self: Any, target: Pid | Atom, watcher: Pid, ref: Reference, reason: Any
    ) -> None:
        p = self._get(watcher)
        if p is None or not p.monitors:
            return
        item = p.monitors.pop(ref, None)
        if item is not None:
            self._deliver(p, (DOWN, ref, _PROCESS, item, reason))

    def node_down(self: Any, node: Atom) -> None:
        procs = self._remote.pop(node, None)
        if not procs:
            return
        for p in list(procs):
            if not p.alive:
                continue
            if p.watchers:
                for ref in [r for r, (w, _) in p.watchers.items() if w.node == node]:
                    del p.watchers[ref]
            if p.monitors:
                gone = [
                    (r, t)
                    for r, t in p.monitors.items()
                    if (t.node if type(t) is Pid else t[1]) == node
                ]
                for ref, item in gone:
                    del p.monitors[ref]
                    self._deliver(p, (DOWN, ref, _PROCESS, item, NOCONNECTION))
            if p.links:
                for other in [o for o in p.links if o.node == node]:
                    active = p.links.pop(other) == 0
                    if active and p.alive:
                        self._link_signal(p, other, NOCONNECTION)
