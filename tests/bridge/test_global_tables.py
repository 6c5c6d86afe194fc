"""The ``global_name_server``'s tables and the lock id order, with no sockets."""

from __future__ import annotations

import asyncio
from typing import Any

from bridge.global_locker import pid_sort_key
from bridge.global_resolve import _minmax, resolve_it
from bridge.global_tables import GLOBAL_RESOURCE, LockTable, NameTable
from dist_proto import Atom, ExportFun, Pid, Reference
from python_actors import Process, Runtime

A = Atom("a@h")
Z = Atom("z@h")


def ref(n: int) -> Reference:
    return Reference(A, 1, (n, 0, 0))


def test_a_name_is_found_by_exact_term_and_removed_by_its_monitor() -> None:
    names = NameTable()
    p = Pid(A, 1)
    names.insert(1, p, None, ref(1))
    assert names.lookup(1) is not None
    assert names.lookup(1.0) is None, "1 and 1.0 are different names, as =:= says"
    names.insert([1, 2], p, None, ref(2))  # unhashable terms are names too
    assert sorted(map(repr, names.names_of(p))) == ["1", "[1, 2]"]
    found = names.name_of_ref(ref(2))
    assert found is not None and found.name == [1, 2]
    assert names.name_of_ref(ref(9)) is None
    names.remove([1, 2])
    names.remove(1)
    assert not names.has_pid(p) and names.entries() == []


def test_exchange_lists_carry_the_method_and_external_names() -> None:
    names = NameTable()
    p = Pid(A, 1)
    names.insert(Atom("x"), p, Atom("m"), ref(1))
    names.insert_ext(Atom("x"), p, A)
    assert names.exchange_list() == [(Atom("x"), p, Atom("m"))]
    assert names.ext_list() == [(Atom("x"), p, A)]
    names.remove(Atom("x"))
    assert names.ext_list() == []


def test_a_lock_is_shared_only_under_the_same_requester_id() -> None:
    locks = LockTable()
    p1, p2 = Pid(A, 1), Pid(A, 2)
    req = [p1, p2]
    assert locks.can_set(GLOBAL_RESOURCE, req) == []
    locks.add_holder(GLOBAL_RESOURCE, req, p1, ref(1))
    assert locks.can_set(GLOBAL_RESOURCE, [p1, p2]) == [(p1, ref(1))]
    assert locks.can_set(GLOBAL_RESOURCE, [p2]) is None, "another requester is refused"
    locks.add_holder(GLOBAL_RESOURCE, req, p2, ref(2))
    assert locks.remove_holder(GLOBAL_RESOURCE, [p2], p2) is None, "wrong requester id: nothing removed"
    assert locks.remove_holder(GLOBAL_RESOURCE, req, p2) == ref(2)
    assert locks.is_set(GLOBAL_RESOURCE)
    entry = locks.remove_ref(ref(1))  # p1's monitor fired
    assert entry is not None and entry.holders == []
    assert not locks.is_set(GLOBAL_RESOURCE) and len(locks) == 0


def test_pids_sort_as_erlang_sorts_them() -> None:
    # what lists:sort/1 answers on OTP 25 and 28 for these pids: serial, then id, then node
    pids = [Pid(Z, 5), Pid(A, 1, 2), Pid(A, 7), Pid(Z, 1, 1), Pid(A, 5)]
    assert sorted(pids, key=pid_sort_key) == [Pid(A, 5), Pid(Z, 5), Pid(A, 7), Pid(Z, 1, 1), Pid(A, 1, 2)]


def test_the_pid_of_the_smaller_node_wins_a_clash() -> None:
    assert _minmax(Pid(Z, 1), Pid(A, 9)) == (Pid(A, 9), Pid(Z, 1))


class _NodeStub:
    """What resolve_it uses of a node: its runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


def _method(name: str) -> ExportFun:
    return ExportFun(Atom("global"), Atom(name), 3)


async def _inbox(proc: Process, box: asyncio.Queue[Any]) -> None:
    while True:
        box.put_nowait(await proc.receive())


async def test_resolve_methods_as_global_exports_them() -> None:
    async with Runtime() as rt:
        node: Any = _NodeStub(rt)
        box1: asyncio.Queue[Any] = asyncio.Queue()
        box2: asyncio.Queue[Any] = asyncio.Queue()
        p1, p2 = rt.spawn(_inbox, box1), rt.spawn(_inbox, box2)
        # same node: minmax gives {P2, P1}, so P2 wins, as global:minmax/2 does
        assert resolve_it(node, _method("random_notify_name"), Atom("n"), p1, p2) == p2
        assert await asyncio.wait_for(box1.get(), 1) == (Atom("global_name_conflict"), Atom("n"))
        assert resolve_it(node, _method("notify_all_name"), Atom("n"), p1, p2) == Atom("none")
        assert await asyncio.wait_for(box1.get(), 1) == (Atom("global_name_conflict"), Atom("n"), p2)
        assert await asyncio.wait_for(box2.get(), 1) == (Atom("global_name_conflict"), Atom("n"), p1)
        assert resolve_it(node, (Atom("global"), Atom("random_exit_name")), Atom("n"), p1, p2) == p2
        await rt.join(p1, 1)
        assert not rt.is_alive(p1) and rt.is_alive(p2)
        assert resolve_it(node, ExportFun(Atom("m"), Atom("f"), 3), Atom("n"), p1, p2) == (Atom("EXIT"), Atom("undef"))
