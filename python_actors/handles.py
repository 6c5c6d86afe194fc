"""Handles: opaque terms that stand for Python objects BEAM cannot hold (a model, a DataFrame).

An actor keeps the object in its node's :class:`HandleTable` and gives BEAM a handle
term instead::

    {'$py_handle', Ref, TypeName}      % Ref: a reference made by the Python node
                                       % TypeName: <<"module.QualName">> of the object

BEAM passes the handle back in later calls and the actor resolves it to the object.
``node(Ref)`` is the Python node, so an Erlang or Elixir process can release or
acquire a handle without knowing which node made it (``beam_bridge:release/1``).

Lifetime follows the holders, as an ETS table follows its owner. A *holder* is a
process (local or on any node) that the table monitors: the process a handle was
made for (the caller of the call whose reply carries it) and every process that
acquires it. The object is dropped from the table when its last holder dies (a
``DOWN``; a holder's node going down counts as its death, ``noconnection``) or
releases it, or when Python frees it. No handle outlives all its holders. A handle
that is used after that is *stale*: :meth:`HandleTable.resolve` raises
:class:`StaleHandle`, whose :attr:`StaleHandle.error_term` is
``{error, {stale_handle, Handle}}``, the reply :func:`catch_stale_handles` gives.

BEAM talks to the table through a process registered as ``beam_bridge_handles``
that answers ``gen_server:call`` requests ``{acquire, H}``, ``{release, H}`` and
``count``. It is started with the first handle and stopped with the runtime.

>>> import asyncio
>>> from python_actors import Runtime, GenServer, Ok, Reply
>>> class Models(GenServer):
...     def handle_call(self, request, from_, state):
...         table = handle_table(self.runtime)
...         if request == "load":
...             return Reply(table.new({"slope": 2}, holder=from_), state)
...         kind, handle, x = request
...         return Reply(table.resolve(handle)["slope"] * x, state)
>>> async def main():
...     async with Runtime() as rt:
...         pid = await Models.start(runtime=rt)
...         async def client(proc):
...             h = await rt.call(pid, "load")
...             return await rt.call(pid, ("predict", h, 21)), len(handle_table(rt))
...         return await rt.run(client)
>>> asyncio.run(main())
(42, 1)
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid, Reference

from .errors import DOWN, ActorError, BadArg
from .gen_server import GEN_CALL, Reply

if TYPE_CHECKING:
    from .process import Process
    from .runtime import Runtime

__all__ = [
    "HANDLE_TAG",
    "KEEPER_NAME",
    "HandleTable",
    "StaleHandle",
    "catch_stale_handles",
    "handle_table",
    "is_handle",
]

log = logging.getLogger("python_actors.handles")

#: The first element of a handle term.
HANDLE_TAG = Atom("$py_handle")
#: The registered name of the process that answers BEAM's acquire/release calls.
KEEPER_NAME = Atom("beam_bridge_handles")

_OK = Atom("ok")
_ERROR = Atom("error")
_STALE = Atom("stale_handle")
_NOT_HOLDER = Atom("not_holder")
_NOT_A_HANDLE = Atom("not_a_handle")
_BAD_REQUEST = Atom("bad_request")
_ACQUIRE = Atom("acquire")
_RELEASE = Atom("release")
_COUNT = Atom("count")


class StaleHandle(ActorError):
    """A handle whose object was freed (every holder died or released it)."""

    def __init__(self, term: Any) -> None:
        super().__init__(f"stale handle {term!r}: its object was freed")
        self.term = term

    @property
    def error_term(self) -> tuple[Atom, tuple[Atom, Any]]:
        """``{error, {stale_handle, Handle}}``."""
        return (_ERROR, (_STALE, self.term))


def is_handle(term: Any) -> bool:
    """Whether ``term`` has the shape of a handle ``{'$py_handle', Ref, TypeName}``."""
    return (
        type(term) is tuple
        and len(term) == 3
        and term[0] == HANDLE_TAG
        and type(term[1]) is Reference
        and type(term[2]) is bytes
    )


def _type_name(obj: Any) -> bytes:
    cls = type(obj)
    module = cls.__module__
    name = cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"
    return name.encode()


def _holder_pid(holder: Any) -> Pid:
    """A holder given as a pid or as a call's ``from_`` (``(pid, tag)``)."""
    if type(holder) is Pid:
        return holder
    if type(holder) is tuple and len(holder) == 2 and type(holder[0]) is Pid:
        return holder[0]
    raise BadArg(f"a holder is a Pid or a call's from_ (pid, tag), not {holder!r}")


@dataclass
class _Entry:
    obj: Any
    term: tuple[Atom, Reference, bytes]
    holders: set[Pid] = field(default_factory=set)
    on_free: Callable[[Any], None] | None = None


class HandleTable:
    """The handles of one runtime (one node); get it with :func:`handle_table`.

    Every method may be called from any thread (an actor placed in a thread): the
    work runs on the runtime's loop."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._entries: dict[Reference, _Entry] = {}
        # holder pid -> (its monitor, the handles it holds)
        self._holders: dict[Pid, tuple[Reference, set[Reference]]] = {}
        self._monitored: dict[Reference, Pid] = {}
        self._keeper: Process | None = None
        self._closed = False

    def __len__(self) -> int:
        """The number of live handles."""
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<HandleTable {self._runtime.node.name} handles={len(self._entries)}>"

    # -- the Python API -------------------------------------------------------------

    def new(
        self, obj: Any, holder: Any, *, on_free: Callable[[Any], None] | None = None
    ) -> tuple[Atom, Reference, bytes]:
        """Keep ``obj`` and return its handle term, held (monitored) by ``holder``: a
        pid, or the ``from_`` of the call whose reply will carry the handle.
        ``on_free(obj)`` runs on the loop when the object is dropped."""
        term = self._runtime.call_on_loop(self._new, obj, _holder_pid(holder), on_free)
        return term  # type: ignore[no-any-return]

    def resolve(self, term: Any) -> Any:
        """The object of a handle; raises :class:`StaleHandle` if it was freed and
        :class:`~python_actors.BadArg` if ``term`` is not a handle of this node."""
        entry = self._entries.get(self._ref_of(term))
        if entry is None:
            raise StaleHandle(term)
        return entry.obj

    def acquire(self, term: Any, holder: Any) -> None:
        """Add ``holder`` (a pid) to the handle's holders; :class:`StaleHandle` if freed."""
        result = self._runtime.call_on_loop(self._acquire, self._ref_of(term), _holder_pid(holder))
        if result is not _OK:
            raise StaleHandle(term)

    def release(self, term: Any, holder: Any) -> bool:
        """Drop ``holder``'s hold (the object goes with the last one). False if the
        handle is stale or ``holder`` did not hold it."""
        return self._runtime.call_on_loop(self._release, self._ref_of(term), _holder_pid(holder)) is _OK

    def free(self, term: Any) -> bool:
        """Drop the object now, whoever holds it. False if it was already freed."""
        return self._runtime.call_on_loop(self._free, self._ref_of(term)) is not None

    def holders(self, term: Any) -> list[Pid]:
        """The processes holding a handle (empty once it is freed)."""
        entry = self._entries.get(self._ref_of(term))
        return sorted(entry.holders, key=repr) if entry is not None else []

    def handles(self) -> list[tuple[Atom, Reference, bytes]]:
        """Every live handle term."""
        return [e.term for e in self._entries.values()]

    @property
    def keeper(self) -> Pid | None:
        """The pid of ``beam_bridge_handles`` (None until the first handle)."""
        return self._keeper.pid if self._keeper is not None else None

    def _ref_of(self, term: Any) -> Reference:
        if not is_handle(term) or not self._runtime.is_local(term[1]):
            raise BadArg(f"not a handle of node {self._runtime.node.name}: {term!r}")
        ref: Reference = term[1]
        return ref

    # -- on the loop ----------------------------------------------------------------

    def _new(
        self, obj: Any, holder: Pid, on_free: Callable[[Any], None] | None
    ) -> tuple[Atom, Reference, bytes]:
        if self._closed:
            raise ActorError("the runtime is stopping: no new handles")
        self._ensure_keeper()
        ref = self._runtime.make_ref()
        term = (HANDLE_TAG, ref, _type_name(obj))
        self._entries[ref] = _Entry(obj, term, on_free=on_free)
        self._hold(ref, holder)
        return term

    def _hold(self, ref: Reference, holder: Pid) -> None:
        entry = self._entries[ref]
        if holder in entry.holders:
            return
        entry.holders.add(holder)
        held = self._holders.get(holder)
        if held is None:
            assert self._keeper is not None
            mref = self._keeper.monitor(holder)  # a dead holder gives DOWN at once
            held = self._holders[holder] = (mref, set())
            self._monitored[mref] = holder
        held[1].add(ref)

    def _acquire(self, ref: Reference, holder: Pid) -> Atom:
        if ref not in self._entries:
            return _STALE
        self._hold(ref, holder)
        return _OK

    def _release(self, ref: Reference, holder: Pid) -> Atom:
        entry = self._entries.get(ref)
        if entry is None:
            return _STALE
        if holder not in entry.holders:
            return _NOT_HOLDER
        self._unhold(ref, holder)
        entry.holders.discard(holder)
        if not entry.holders:
            self._free(ref)
        return _OK

    def _unhold(self, ref: Reference, holder: Pid) -> None:
        held = self._holders.get(holder)
        if held is None:
            return
        mref, refs = held
        refs.discard(ref)
        if not refs:
            del self._holders[holder]
            self._monitored.pop(mref, None)
            if self._keeper is not None and self._keeper.alive:
                self._keeper.demonitor(mref, flush=True)

    def _free(self, ref: Reference) -> _Entry | None:
        entry = self._entries.pop(ref, None)
        if entry is None:
            return None
        for holder in list(entry.holders):
            self._unhold(ref, holder)
        entry.holders.clear()
        if entry.on_free is not None:
            try:
                entry.on_free(entry.obj)
            except Exception:
                log.exception("on_free of handle %r failed", entry.term)
        return entry

    def _on_down(self, mref: Reference) -> None:
        holder = self._monitored.pop(mref, None)
        if holder is None:
            return
        _, refs = self._holders.pop(holder)
        for ref in refs:
            entry = self._entries.get(ref)
            if entry is not None:
                entry.holders.discard(holder)
                if not entry.holders:
                    self._free(ref)

    def _ensure_keeper(self) -> None:
        if self._keeper is not None:
            if self._keeper.alive:
                return
            self._keeper_gone()  # killed, and its task not finished yet: same as finished
        rt = self._runtime
        pid = rt.spawn(_keeper_main, self)
        proc = rt.process(pid)
        assert proc is not None and proc.task is not None
        self._keeper = proc
        rt.register(KEEPER_NAME, pid)
        # Even a keeper killed before its first step (whose body never ran) is seen.
        proc.task.add_done_callback(lambda _task: self._keeper_ended(proc))

    def _keeper_ended(self, proc: Process) -> None:
        if self._keeper is proc:
            self._keeper_gone()

    def _keeper_gone(self) -> None:
        """The keeper ended (the runtime stops, or someone killed it): its monitors
        are gone, so every object goes too."""
        self._keeper = None
        self._holders.clear()
        self._monitored.clear()
        for ref in list(self._entries):
            self._free(ref)

    def _serve(self, from_: Any, request: Any) -> Any:
        """The reply to a ``gen_server:call`` from BEAM."""
        if request == _COUNT:
            return len(self._entries)
        if type(request) is tuple and len(request) == 2 and request[0] in (_ACQUIRE, _RELEASE):
            term = request[1]
            if not is_handle(term) or not self._runtime.is_local(term[1]):
                return (_ERROR, (_NOT_A_HANDLE, term))
            caller = from_[0]
            status = (self._acquire if request[0] == _ACQUIRE else self._release)(term[1], caller)
            if status is _OK:
                return _OK
            return (_ERROR, (_STALE, term)) if status is _STALE else (_ERROR, _NOT_HOLDER)
        return (_ERROR, (_BAD_REQUEST, request))

    async def aclose(self) -> None:
        """Runtime stop (a runtime service): drop every object."""
        self._closed = True
        self._keeper_gone()


async def _keeper_main(proc: Process, table: HandleTable) -> None:
    """``beam_bridge_handles``: DOWNs of holders, and BEAM's calls."""
    while True:
        msg = await proc.receive()
        if type(msg) is not tuple or not msg:
            continue
        if msg[0] == DOWN and len(msg) == 5:
            table._on_down(msg[1])
        elif msg[0] == GEN_CALL and len(msg) == 3 and type(msg[1]) is tuple and len(msg[1]) == 2:
            proc.runtime.reply_to(msg[1], table._serve(msg[1], msg[2]), proc.pid)


def handle_table(runtime: Runtime) -> HandleTable:
    """The handle table of ``runtime`` (created on first use, dropped at its stop)."""
    table: HandleTable = runtime.service("handles", lambda: HandleTable(runtime))
    return table


def catch_stale_handles(handle_call: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate ``handle_call`` so that a :class:`StaleHandle` raised inside it
    replies ``{error, {stale_handle, Handle}}`` and keeps the state, instead of
    crashing the server. Works on plain and ``async`` callbacks."""
    if inspect.iscoroutinefunction(handle_call):

        @functools.wraps(handle_call)
        async def wrapped_async(self: Any, request: Any, from_: Any, state: Any) -> Any:
            try:
                return await handle_call(self, request, from_, state)
            except StaleHandle as exc:
                return Reply(exc.error_term, state)

        return wrapped_async

    @functools.wraps(handle_call)
    def wrapped(self: Any, request: Any, from_: Any, state: Any) -> Any:
        try:
            return handle_call(self, request, from_, state)
        except StaleHandle as exc:
            return Reply(exc.error_term, state)

    return wrapped
