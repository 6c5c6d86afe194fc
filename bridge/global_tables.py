"""The tables of a ``global_name_server``: registered names and locks.

OTP's ``global`` keeps them in ETS tables (``global_names``, ``global_names_ext``,
``global_locks`` and the two reverse indexes ``global_pid_names`` and
``global_pid_ids``). Here they are two small classes owned by the name server
process (:mod:`bridge.global_server`); only that process changes them, so they need
no locking of their own. Each entry holds the monitor reference the server took
on its pid, and the reference indexes the entry back, as ``global`` does, so a
``'DOWN'`` (the process died or its node went away) removes exactly what it
guarded.

Terms are keyed by their external form: Erlang's equality is exact (``1`` and
``1.0`` are different names) and Python cannot hash every term (lists).

>>> from dist_proto import Atom, Pid, Reference
>>> names = NameTable()
>>> p = Pid(Atom("a@h"), 1, 0, 1)
>>> names.insert(Atom("db"), p, None, Reference(Atom("a@h"), 1, (1, 2, 3)))
>>> names.lookup(Atom("db")).pid == p
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dist_proto import encode
from dist_proto.terms import Atom, Pid, Reference

__all__ = ["GLOBAL_RESOURCE", "LockEntry", "LockTable", "NameEntry", "NameTable", "term_key"]

#: The resource ``global`` locks while it changes names (``?GLOBAL_RID``).
GLOBAL_RESOURCE = Atom("global")


def term_key(term: Any) -> bytes:
    """A hashable key with Erlang's exact equality (``=:=``)."""
    return encode(term)


@dataclass
class NameEntry:
    """A row of ``global_names``: ``{Name, Pid, Method, Ref}``."""

    name: Any
    pid: Pid
    method: Any
    ref: Reference


class NameTable:
    """Registered names (``global_names`` with ``global_pid_names``) and the names
    registered for other nodes' external processes (``global_names_ext``)."""

    def __init__(self) -> None:
        self._by_name: dict[bytes, NameEntry] = {}
        self._by_ref: dict[Reference, bytes] = {}
        self._by_pid: dict[Pid, set[bytes]] = {}
        #: name key -> (Name, Pid, RegNode), for ``register_name_external``
        self._ext: dict[bytes, tuple[Any, Pid, Atom]] = {}

    def lookup(self, name: Any) -> NameEntry | None:
        return self._by_name.get(term_key(name))

    def insert(self, name: Any, pid: Pid, method: Any, ref: Reference) -> None:
        key = term_key(name)
        self._by_name[key] = NameEntry(name, pid, method, ref)
        self._by_ref[ref] = key
        self._by_pid.setdefault(pid, set()).add(key)

    def insert_ext(self, name: Any, pid: Pid, reg_node: Atom) -> None:
        self._ext[term_key(name)] = (name, pid, reg_node)

    def remove(self, name: Any) -> NameEntry | None:
        """Delete ``name``; returns the entry (its monitor is the caller's to drop)."""
        key = term_key(name)
        entry = self._by_name.pop(key, None)
        self._ext.pop(key, None)
        if entry is None:
            return None
        self._by_ref.pop(entry.ref, None)
        keys = self._by_pid.get(entry.pid)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_pid[entry.pid]
        return entry

    def name_of_ref(self, ref: Any) -> Any:
        """The name whose monitor is ``ref`` (``del_name/2``), or None."""
        key = self._by_ref.get(ref) if type(ref) is Reference else None
        entry = None if key is None else self._by_name.get(key)
        return None if entry is None or entry.ref != ref else entry

    def has_pid(self, pid: Pid) -> bool:
        return pid in self._by_pid

    def names_of(self, pid: Pid) -> list[Any]:
        return [self._by_name[k].name for k in self._by_pid.get(pid, ())]

    def entries(self) -> list[NameEntry]:
        return list(self._by_name.values())

    def exchange_list(self) -> list[tuple[Any, Pid, Any]]:
        """``get_names()``: ``[{Name, Pid, Method}]`` as sent in ``exchange``."""
        return [(e.name, e.pid, e.method) for e in self._by_name.values()]

    def ext_list(self) -> list[tuple[Any, Pid, Atom]]:
        """``get_names_ext()``: ``[{Name, Pid, RegNode}]``."""
        return list(self._ext.values())

    def names(self) -> list[Any]:
        return [e.name for e in self._by_name.values()]


@dataclass
class LockEntry:
    """A row of ``global_locks``: ``{ResourceId, LockRequesterId, [{Pid, Ref}]}``."""

    resource: Any
    requester: Any
    holders: list[tuple[Pid, Reference]] = field(default_factory=list)


class LockTable:
    """``global_locks`` with ``global_pid_ids``: who holds which resource."""

    def __init__(self) -> None:
        self._locks: dict[bytes, LockEntry] = {}
        self._by_ref: dict[Reference, bytes] = {}

    def can_set(self, resource: Any, requester: Any) -> list[tuple[Pid, Reference]] | None:
        """``can_set_lock/1``: the current holders if ``requester`` may take the lock
        (free, or held under the same requester id), else None."""
        entry = self._locks.get(term_key(resource))
        if entry is None:
            return []
        if term_key(entry.requester) == term_key(requester):
            return entry.holders
        return None

    def add_holder(self, resource: Any, requester: Any, pid: Pid, ref: Reference) -> None:
        key = term_key(resource)
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = LockEntry(resource, requester)
        entry.holders.insert(0, (pid, ref))
        self._by_ref[ref] = key

    def get(self, resource: Any) -> LockEntry | None:
        return self._locks.get(term_key(resource))

    def is_set(self, resource: Any) -> bool:
        return term_key(resource) in self._locks

    def remove_holder(self, resource: Any, requester: Any, pid: Pid) -> Reference | None:
        """``handle_del_lock``: ``pid`` gives up ``{resource, requester}``; returns the
        monitor reference to drop, or None if it held nothing."""
        key = term_key(resource)
        entry = self._locks.get(key)
        if entry is None or term_key(entry.requester) != term_key(requester):
            return None
        for i, (holder, ref) in enumerate(entry.holders):
            if holder == pid:
                del entry.holders[i]
                self._by_ref.pop(ref, None)
                if not entry.holders:
                    del self._locks[key]
                return ref
        return None

    def remove_ref(self, ref: Any) -> LockEntry | None:
        """A holder's monitor fired: drop its hold; returns the lock it was in."""
        key = self._by_ref.pop(ref, None) if type(ref) is Reference else None
        if key is None:
            return None
        entry = self._locks.get(key)
        if entry is None:
            return None
        entry.holders = [(p, r) for p, r in entry.holders if r != ref]
        if not entry.holders:
            del self._locks[key]
        return entry

    def __len__(self) -> int:
        return len(self._locks)
