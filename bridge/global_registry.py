"""The name and lock operations of ``global_name_server`` (``ins_name``, ``do_ops``,
``handle_set_lock``, ``handle_del_lock``, the ``'DOWN'`` clause).

A mixin of :class:`bridge.global_server.GlobalNameServer`: it works on the server's
tables (:mod:`bridge.global_tables`) and takes and drops the server process's
monitors on the pids that hold a name or a lock, as ``global`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid

from .global_tables import GLOBAL_RESOURCE, LockTable, NameTable, term_key

if TYPE_CHECKING:
    from python_actors import Process

__all__ = ["NamesAndLocks"]

_INSERT, _DELETE, _LOCK = Atom("insert"), Atom("delete"), Atom("lock")


class NamesAndLocks:
    """Registered names and locks of one ``global_name_server``."""

    names: NameTable
    locks: LockTable
    global_lock_down: bool

    if TYPE_CHECKING:
        @property
        def process(self) -> Process: ...

    def _ins_name(self, name: Any, pid: Pid, method: Any, from_: Any, extra_info: Any) -> None:
        """``ins_name/6``: (re)register, then drop it again if the lock that covered the
        registration is already gone (the registering node went down meanwhile)."""
        self._delete_name(name)
        ref = self.process.monitor(pid)
        self.names.insert(name, pid, method, ref)
        if not self._lock_still_set(from_, extra_info):
            self._delete_name(name)

    def _lock_still_set(self, from_: Any, extra_info: Any) -> bool:
        entry = self.locks.get(GLOBAL_RESOURCE)
        if entry is None:
            return not self.global_lock_down
        if type(from_) is Pid:
            return any(p == from_ for p, _ in entry.holders)
        if type(from_) is Atom:
            lock = next((i[1] for i in extra_info if type(i) is tuple and len(i) == 2 and i[0] == _LOCK),
                        None) if type(extra_info) is list else None
            return type(lock) is tuple and len(lock) == 2 and lock[1] == entry.requester
        return True

    def _delete_name(self, name: Any) -> None:
        entry = self.names.remove(name)
        if entry is not None:
            self.process.demonitor(entry.ref, flush=True)

    def _do_ops(self, ops: Any, conn_node: Any, names_ext: Any, extra_info: Any) -> None:
        if type(ops) is not list:
            return
        ext = {(term_key(x[0]), x[1]): x[2] for x in names_ext if type(x) is tuple and len(x) == 3} \
            if type(names_ext) is list else {}
        for op in ops:
            if type(op) is not tuple or len(op) != 2:
                continue
            if op[0] == _INSERT and type(op[1]) is tuple and len(op[1]) == 3 and type(op[1][1]) is Pid:
                name, pid, method = op[1]
                reg_node = ext.get((term_key(name), pid))
                if reg_node is not None:
                    self.names.insert_ext(name, pid, reg_node)
                self._ins_name(name, pid, method, conn_node, extra_info)
        for op in ops:
            if type(op) is tuple and len(op) == 2 and op[0] == _DELETE:
                self._delete_name(op[1])

    def _set_lock(self, lock_id: tuple[Any, Any], pid: Pid) -> bool:
        resource, requester = lock_id
        holders = self.locks.can_set(resource, requester)
        if holders is None:
            return False
        if not any(p == pid for p, _ in holders):
            self.locks.add_holder(resource, requester, pid, self.process.monitor(pid))
        return True

    def _del_lock(self, lock_id: tuple[Any, Any], pid: Pid) -> None:
        resource, requester = lock_id
        entry = self.locks.get(resource)
        last = entry is not None and len(entry.holders) == 1
        ref = self.locks.remove_holder(resource, requester, pid)
        if ref is not None:
            self.process.demonitor(ref, flush=True)
            if last and resource == GLOBAL_RESOURCE:
                self.global_lock_down = False

    def _down(self, ref: Any) -> None:
        entry = self.locks.remove_ref(ref)
        if entry is not None and not entry.holders and entry.resource == GLOBAL_RESOURCE:
            self.global_lock_down = True
        name_entry = self.names.name_of_ref(ref)
        if name_entry is not None:
            self.names.remove(name_entry.name)


