"""The node's handle on its ``global_name_server`` (visible mode only).

:class:`GlobalService` belongs to the :class:`~bridge.node.Node` and outlives restarts of
the server process (:mod:`bridge.global_server`): the Python API
(:mod:`bridge.global_names`), ``{global, Name}`` resolution (:mod:`bridge.registry`) and
the locker read the current server's tables through it.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid

from .global_tables import GLOBAL_RESOURCE

if TYPE_CHECKING:
    from .global_server import GlobalNameServer
    from .node import Node

__all__ = ["GlobalService"]

_MIN_64BIT_SMALL_INT = -(1 << 59)


class GlobalService:
    """The node's handle on its ``global_name_server`` (visible mode only)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.server: GlobalNameServer | None = None
        self._xcreation = secrets.randbelow(1 << 30)

    def _live(self) -> GlobalNameServer | None:
        s = self.server
        return s if s is not None and s.process.alive else None

    def where(self, name: Any) -> Pid | None:
        """``global:whereis_name/1`` from this node's table."""
        s = self._live()
        if s is None:
            return None
        entry = s.names.lookup(name)
        if entry is None:
            return None
        if self.node.runtime.is_local(entry.pid) and not self.node.runtime.is_alive(entry.pid):
            return None
        return entry.pid

    def names_of(self, pid: Pid) -> list[Any]:
        """The global names ``pid`` holds (``global_pid_names``)."""
        s = self._live()
        return [] if s is None else s.names.names_of(pid)

    def registered_names(self) -> list[Any]:
        s = self._live()
        return [] if s is None else s.names.names()

    def can_set_lock(self, lock_id: Any) -> bool:
        s = self._live()
        return s is not None and s.locks.can_set(lock_id[0], lock_id[1]) is not None

    def is_global_lock_set(self) -> bool:
        s = self._live()
        return s is not None and s.locks.is_set(GLOBAL_RESOURCE)

    def known(self) -> list[Atom]:
        s = self._live()
        return [] if s is None else list(s.known)

    def synced(self) -> list[Atom]:
        s = self._live()
        return [] if s is None else list(s.synced)

    def extended_creation(self) -> int:
        return self._xcreation + self.node.creation - _MIN_64BIT_SMALL_INT
