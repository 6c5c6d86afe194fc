"""DynamicSupervisor: Elixir's ``DynamicSupervisor`` (OTP's simple_one_for_one idea).

Starts with no children; :meth:`DynamicSupervisor.start_child` adds one from a child
spec at a time (``extra_arguments`` are prepended to its start arguments); children
are known by pid only and restarted one_for_one by their restart type. Defaults are
Elixir's: ``max_restarts=3`` in ``max_seconds=5``, ``max_children`` unlimited.
Exceeding the intensity stops every child and the supervisor with ``shutdown``. On
shutdown all children are stopped concurrently (each honours its ``shutdown``).

>>> import asyncio
>>> from python_actors import Runtime, GenServer
>>> class Worker(GenServer):
...     pass
>>> async def main():
...     async with Runtime() as rt:
...         sup = await DynamicSupervisor.start_link(runtime=rt)
...         await DynamicSupervisor.start_child(sup, (Worker, 1), runtime=rt)
...         return await DynamicSupervisor.count_children(sup, runtime=rt)
>>> asyncio.run(main())
{'specs': 1, 'active': 1, 'supervisors': 0, 'workers': 1}
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid

from .errors import EXIT, SHUTDOWN, StartError, is_clean_exit
from .gen_server import GenServer, NoReply, Ok, Reply, Stop, call
from .process import current_process
from .supervisor import (
    ChildInfo,
    ChildSpec,
    _count,
    _ok,
    _ok_pid,
    add_restart,
    child_spec,
    is_from,
    shutdown_children,
    spec_map,
    start_child_process,
)

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["DynamicSupervisor"]

_OK = Atom("ok")
_ERROR = Atom("error")


class _State:
    __slots__ = ("children", "restarts", "max_restarts", "max_seconds", "max_children", "extra")

    def __init__(
        self,
        max_restarts: int,
        max_seconds: float,
        max_children: int | None,
        extra: tuple[Any, ...],
    ) -> None:
        self.children: dict[Pid, ChildSpec] = {}
        self.restarts: deque[float] = deque()
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.max_children = max_children
        self.extra = extra


class DynamicSupervisor(GenServer):
    """A supervisor of children started on demand (``DynamicSupervisor``)."""

    placement = "loop"  # its callbacks only bookkeep; they never block

    __slots__ = ()
    _is_supervisor = True

    @classmethod
    async def start_link(  # type: ignore[override]
        cls,
        args: Any = None,
        *,
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        max_children: int | None = None,
        extra_arguments: tuple[Any, ...] | list[Any] = (),
        name: Atom | str | None = None,
        runtime: Runtime | None = None,
    ) -> Pid | None:
        """``DynamicSupervisor.start_link(opts)``."""
        state = _State(max_restarts, max_seconds, max_children, tuple(extra_arguments))
        return await cls._start(state, name, runtime, True, None)

    def init(self, args: Any) -> Any:
        current_process().trap_exit = True
        return Ok(args)

    async def handle_call(self, request: Any, from_: Any, state: _State) -> Any:
        if not is_from(from_):
            return NoReply(state)
        if request == Atom("which_children"):
            out = [
                (_UNDEF, pid, Atom(s.type), s.modules if s.modules is not None else [])
                for pid, s in state.children.items()
            ]
            return Reply(out, state)
        if request == Atom("count_children"):
            return Reply(_count([(s.type, p) for p, s in state.children.items()]), state)
        if type(request) is tuple and len(request) == 2:
            op, arg = request
            if op == Atom("start_child"):
                return Reply(await self._start_new(arg, state), state)
            if op == Atom("terminate_child"):
                spec = state.children.pop(arg, None) if type(arg) is Pid else None
                if spec is None:
                    return Reply((_ERROR, Atom("not_found")), state)
                await shutdown_children(self.process, [(arg, spec.shutdown)])
                return Reply(_OK, state)
            if op == Atom("get_childspec"):
                spec = state.children.get(arg) if type(arg) is Pid else None
                if spec is None:
                    return Reply((_ERROR, Atom("not_found")), state)
                return Reply((_OK, spec_map(spec)), state)
            if op in (Atom("restart_child"), Atom("delete_child")):
                # OTP's simple_one_for_one answer: children are known by pid only.
                return Reply((_ERROR, Atom("simple_one_for_one")), state)
        return Reply((_ERROR, Atom("badarg")), state)

    async def _start_new(self, spec: Any, state: _State) -> Any:
        if state.max_children is not None and len(state.children) >= state.max_children:
            return (_ERROR, Atom("max_children"))
        try:
            cs = child_spec(spec)
        except (ValueError, TypeError) as exc:
            return (_ERROR, (Atom("invalid_child_spec"), str(exc).encode()))
        try:
            pid = await start_child_process(cs, state.extra)
        except StartError as err:
            return (_ERROR, err.reason)
        if pid is None:
            return (_OK, _UNDEF)
        state.children[pid] = cs
        return (_OK, pid)

    async def handle_info(self, message: Any, state: _State) -> Any:
        if not (type(message) is tuple and len(message) == 3 and message[0] == EXIT):
            return NoReply(state)
        spec = state.children.pop(message[1], None)
        if spec is None:
            return NoReply(state)
        reason = message[2]
        if spec.restart == "temporary" or (spec.restart == "transient" and is_clean_exit(reason)):
            return NoReply(state)
        while True:
            if not add_restart(state.restarts, state.max_restarts, state.max_seconds):
                return Stop(SHUTDOWN, state)
            try:
                pid = await start_child_process(spec, state.extra)
            except StartError:
                continue
            if pid is not None:
                state.children[pid] = spec
            return NoReply(state)

    async def terminate(self, reason: Any, state: Any) -> None:
        if isinstance(state, _State) and state.children:
            children = [(p, s.shutdown) for p, s in state.children.items()]
            state.children.clear()
            await shutdown_children(self.process, children)

    # -- client API ------------------------------------------------------------------

    @staticmethod
    async def start_child(sup: Any, spec: Any, *, runtime: Runtime | None = None) -> Pid | None:
        """``DynamicSupervisor.start_child``: the pid (None if ignored); StartError."""
        return _ok_pid(await call(sup, (Atom("start_child"), spec), None, runtime=runtime))

    @staticmethod
    async def terminate_child(sup: Any, pid: Pid, *, runtime: Runtime | None = None) -> None:
        """``DynamicSupervisor.terminate_child``; SupervisorError ``not_found``."""
        _ok(await call(sup, (Atom("terminate_child"), pid), None, runtime=runtime))

    @staticmethod
    async def get_childspec(sup: Any, pid: Pid, *, runtime: Runtime | None = None) -> dict[str, Any]:
        """``supervisor:get_childspec(Sup, Pid)``; SupervisorError ``not_found``."""
        res = await call(sup, (Atom("get_childspec"), pid), None, runtime=runtime)
        _ok(res)
        return {k.name: v for k, v in res[1].items()}

    @staticmethod
    async def which_children(sup: Any, *, runtime: Runtime | None = None) -> list[ChildInfo]:
        """``DynamicSupervisor.which_children``: ids are ``undefined`` (None here)."""
        res = await call(sup, Atom("which_children"), None, runtime=runtime)
        return [ChildInfo(None, p, t.name, m) for _, p, t, m in res]

    @staticmethod
    async def count_children(sup: Any, *, runtime: Runtime | None = None) -> dict[str, int]:
        """``DynamicSupervisor.count_children``."""
        res = await call(sup, Atom("count_children"), None, runtime=runtime)
        return {k.name: v for k, v in res}


_UNDEF = Atom("undefined")
