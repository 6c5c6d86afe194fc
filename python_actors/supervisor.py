"""Supervisor: OTP's ``supervisor`` behaviour (one_for_one, one_for_all, rest_for_one).

Theory of operation (OTP's supervisor.erl and design principles, "Supervisor
Behaviour"). A supervisor is a GenServer that traps exits. ``init`` starts the
children left to right, each with its ``start`` function called *inside* the
supervisor's process so that ``start_link`` links the child to it; a failure stops
the others (right to left) and the supervisor fails with
``{shutdown, {failed_to_start_child, Id, Reason}}``. An ``{'EXIT', Child, Reason}``
is then handled by the child's ``restart`` type (``permanent`` always restarted,
``transient`` unless ``normal``/``shutdown``/``{shutdown, _}``, ``temporary``
never, and forgotten) and by the strategy. Each restart is counted; more than
``intensity`` restarts in ``period`` seconds and the supervisor stops all children
and exits with ``shutdown``. Stopping a child: monitor, unlink, ``exit(Child,
shutdown)``, wait ``shutdown`` seconds for the DOWN, then ``exit(Child, kill)``;
``brutal_kill`` kills at once; ``infinity`` waits. Only pids are handled and only
through the runtime's link/monitor/exit operations, so a child may be a process of
another node. Requests and replies use OTP's terms (``which_children``,
``{start_child, Spec}``, ``{ok, Pid}``, ``{error, R}``...), so BEAM's
``supervisor:which_children/1`` works on a Python supervisor too.

>>> import asyncio
>>> from python_actors import Runtime, GenServer
>>> class Worker(GenServer):
...     pass
>>> async def main():
...     async with Runtime() as rt:
...         sup = await Supervisor.start_link(
...             [{"id": "w1", "start": (Worker.start_link, (1,))}, (Worker, 2)],
...             strategy="one_for_all", runtime=rt)
...         return [c.id for c in await Supervisor.which_children(sup, runtime=rt)]
>>> asyncio.run(main())
['w1', 'Worker']
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from dist_proto import encode
from dist_proto.terms import Atom, Pid

from .errors import (
    DOWN,
    EXIT,
    KILL,
    SHUTDOWN,
    ActorError,
    StartError,
    is_clean_exit,
    reason_of,
)
from .gen_server import GenServer, NoReply, Ok, Reply, Stop, call
from .process import Process, current_process

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = [
    "ChildInfo",
    "ChildSpec",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "child_spec",
]

_OK = Atom("ok")
_ERROR = Atom("error")
_INFINITY = Atom("infinity")
_UNDEFINED = Atom("undefined")
_RESTARTING = Atom("restarting")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
RESTARTS = ("permanent", "transient", "temporary")


class SupervisorError(ActorError):
    """A supervisor request failed; ``reason`` is OTP's (``not_found``, ``running``...)."""

    def __init__(self, reason: Any) -> None:
        super().__init__(reason)
        self.reason = reason


def _name(x: Any) -> str:
    return x.name if type(x) is Atom else str(x)


@dataclass(slots=True)
class ChildSpec:
    """OTP's child specification (``#{id, start, restart, shutdown, type}``).

    ``start`` is ``(callable, args)`` or a callable; it runs inside the supervisor
    and returns the new, linked pid (``None`` for ``ignore``), or raises
    :class:`StartError`. ``shutdown`` is seconds, ``"brutal_kill"`` or
    ``"infinity"``; the default is 5 for a worker and infinity for a supervisor.
    """

    id: Any
    start: Any
    restart: str = "permanent"
    shutdown: float | str | None = None
    type: str = "worker"
    modules: Any = field(default=None)

    def __post_init__(self) -> None:
        self.restart = _name(self.restart)
        self.type = _name(self.type)
        if self.restart not in RESTARTS:
            raise ValueError(f"bad restart type {self.restart!r}")
        if self.type not in ("worker", "supervisor"):
            raise ValueError(f"bad child type {self.type!r}")
        if self.shutdown is None:
            self.shutdown = "infinity" if self.type == "supervisor" else 5.0
        elif not isinstance(self.shutdown, (int, float)):
            self.shutdown = _name(self.shutdown)
            if self.shutdown not in ("brutal_kill", "infinity"):
                raise ValueError(f"bad shutdown {self.shutdown!r}")
        if not (callable(self.start) or (type(self.start) is tuple and len(self.start) == 2)):
            raise ValueError(f"bad start {self.start!r}")


def child_spec(spec: Any) -> ChildSpec:
    """Normalize a child spec: a :class:`ChildSpec`, a dict with its keys (string or
    atom keys), a GenServer class or ``(class, arg)`` (Elixir's shorthand: id is the
    class name, start ``class.start_link(arg)``, supervisors get type supervisor)."""
    if isinstance(spec, ChildSpec):
        return spec
    if isinstance(spec, dict):
        return ChildSpec(**{_name(k): v for k, v in spec.items()})
    cls, arg = (spec, None) if isinstance(spec, type) else spec
    if isinstance(cls, type) and issubclass(cls, GenServer):
        is_sup = issubclass(cls, (Supervisor,)) or getattr(cls, "_is_supervisor", False)
        return ChildSpec(
            id=cls.__name__,
            start=(cls.start_link, (arg,)),
            type="supervisor" if is_sup else "worker",
        )
    raise ValueError(f"not a child spec: {spec!r}")


class ChildInfo(NamedTuple):
    """An entry of ``which_children``: pid None when not running."""

    id: Any
    pid: Pid | None
    type: str
    modules: Any


@dataclass(slots=True)
class SupervisorSpec:
    """What a supervisor's ``init`` returns: ``{ok, {SupFlags, ChildSpecs}}``."""

    children: list[Any]
    strategy: str = "one_for_one"
    intensity: int = 1
    period: float = 5.0


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    pid: Pid | None = None


class _State:
    __slots__ = ("strategy", "intensity", "period", "children", "restarts")

    def __init__(self, spec: SupervisorSpec) -> None:
        self.strategy = _name(spec.strategy)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"bad strategy {spec.strategy!r}")
        self.intensity = spec.intensity
        self.period = spec.period
        self.children: list[_Child] = []
        self.restarts: deque[float] = deque()

    def find(self, key: Any) -> _Child | None:
        """The child with pid or id ``key``; an id may be spelled as Erlang sends it."""
        if type(key) is Pid:
            return next((c for c in self.children if c.pid == key), None)
        for c in self.children:
            if type(c.spec.id) is type(key) and c.spec.id == key:
                return c
        text = id_text(key)
        if text is None:
            return None
        return next((c for c in self.children if id_text(c.spec.id) == text), None)


def is_from(from_: Any) -> bool:
    """A caller's ``From`` as ``gen_server`` sends it: ``{Pid, Tag}``. A request with
    any other ``From`` is dropped unread: it cannot be answered."""
    return type(from_) is tuple and len(from_) == 2 and type(from_[0]) is Pid


def id_text(child_id: Any) -> str | None:
    """The text of a child id in any spelling Erlang may use for it.

    ``which_children`` sends a Python ``str`` id as a binary, so an Erlang caller
    names the child ``<<"w1">>``, ``w1`` or ``"w1"`` (a charlist): all three, and the
    Python ``str``, have the text ``"w1"``. Other ids (tuples, numbers...) have none
    and match only themselves.
    """
    if type(child_id) is str:
        return child_id
    if type(child_id) is Atom:
        return child_id.name
    if type(child_id) is bytes:
        try:
            return child_id.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if type(child_id) is list and child_id and all(type(i) is int and 0 <= i <= 0x10FFFF for i in child_id):
        try:
            return "".join(map(chr, child_id))
        except ValueError:
            return None
    return None


def spec_map(spec: ChildSpec) -> dict[Atom, Any]:
    """``supervisor:get_childspec/2``'s map for a child spec.

    ``start`` is ``{Module, Function, Args}`` naming the Python callable (its module and
    qualified name as atoms); arguments with no Erlang form are shown as their
    ``repr`` (a binary). ``shutdown`` is in milliseconds, as OTP gives it.
    """
    fn, args = (spec.start, ()) if callable(spec.start) else spec.start
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type):  # a classmethod such as Worker.start_link
        module, qualname = owner.__module__, f"{owner.__qualname__}.{getattr(fn, '__name__', '?')}"
    else:
        module = getattr(fn, "__module__", None) or type(fn).__module__
        qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    start = (Atom(module), Atom(qualname), [_erlang_form(a) for a in args])
    shutdown = spec.shutdown
    if isinstance(shutdown, (int, float)):
        shutdown_term: Any = int(round(shutdown * 1000))
    else:
        shutdown_term = Atom(str(shutdown))
    if spec.modules is not None:
        modules = spec.modules
    else:
        modules = [Atom(module)]
    return {
        Atom("id"): spec.id,
        Atom("start"): start,
        Atom("restart"): Atom(spec.restart),
        Atom("shutdown"): shutdown_term,
        Atom("type"): Atom(spec.type),
        Atom("modules"): modules,
    }


def _erlang_form(value: Any) -> Any:
    try:
        encode(value)
    except Exception:
        return repr(value).encode()
    return value


# -- helpers shared with DynamicSupervisor -------------------------------------------------


async def start_child_process(spec: ChildSpec, extra: tuple[Any, ...] = ()) -> Pid | None:
    """Run a child's start function in the current process; StartError on failure."""
    if callable(spec.start):
        fn, args = spec.start, ()
    else:
        fn, args = spec.start
    try:
        res = fn(*extra, *args)
        if inspect.isawaitable(res):
            res = await res
    except StartError:
        raise
    except Exception as exc:
        raise StartError(reason_of(exc)) from exc
    if res is None or type(res) is Pid:
        return res
    if type(res) is tuple and len(res) == 2 and res[0] == _OK:
        return res[1] if type(res[1]) is Pid else None
    if type(res) is tuple and len(res) == 2 and res[0] == _ERROR:
        raise StartError(res[1])
    raise StartError((Atom("bad_return_value"), res))


def add_restart(restarts: deque[float], intensity: int, period: float) -> bool:
    """Record a restart; False when the intensity is exceeded."""
    now = time.monotonic()
    restarts.append(now)
    while restarts and restarts[0] < now - period:
        restarts.popleft()
    return len(restarts) <= intensity


def _is_exit_from(pid: Pid) -> Callable[[Any], bool]:
    return lambda m: type(m) is tuple and len(m) == 3 and m[0] == EXIT and m[1] == pid


async def shutdown_children(proc: Process, children: list[tuple[Pid, Any]]) -> None:
    """Stop ``(pid, shutdown)`` children concurrently (one at a time for a list of one):
    monitor, unlink, exit ``shutdown`` (or ``kill``), wait, then kill."""
    waiting: dict[Any, tuple[Pid, Any]] = {}
    for pid, shutdown in children:
        ref = proc.monitor(pid)
        proc.unlink(pid)
        proc.mailbox.remove_all(_is_exit_from(pid))
        proc.exit(pid, KILL if shutdown == "brutal_kill" else SHUTDOWN)
        waiting[ref] = (pid, shutdown)
    loop_start = time.monotonic()
    killed = False
    while waiting:
        limits = [s for _, s in waiting.values() if isinstance(s, (int, float))]
        if killed or len(limits) < len(waiting):
            timeout = None
        else:
            timeout = max(0.0, max(limits) - (time.monotonic() - loop_start))

        def is_down(m: Any) -> bool:
            return type(m) is tuple and len(m) == 5 and m[0] == DOWN and m[1] in waiting

        msg = await proc.receive(is_down, timeout=timeout, default=None)
        if msg is None:
            for pid, _ in waiting.values():
                proc.exit(pid, KILL)
            killed = True
            continue
        waiting.pop(msg[1], None)


class Supervisor(GenServer):
    """A supervisor. Either start one directly::

        await Supervisor.start_link(children, strategy="one_for_one", name="sup")

    or subclass it and return a :class:`SupervisorSpec` (or ``IGNORE``) from
    ``init(args)``. Defaults: one_for_one, intensity 1, period 5 s (OTP's).
    """

    placement = "loop"  # its callbacks only bookkeep; they never block

    __slots__ = ()

    def init(self, args: Any) -> Any:
        """Return ``SupervisorSpec(children, strategy, intensity, period)``."""
        return args

    @classmethod
    async def start_link(
        cls,
        args: Any = None,
        *,
        strategy: str = "one_for_one",
        intensity: int = 1,
        period: float = 5.0,
        name: Atom | str | None = None,
        runtime: Runtime | None = None,
        timeout: float | None = None,
    ) -> Pid | None:
        """``supervisor:start_link``. For :class:`Supervisor` itself ``args`` is the
        list of child specs; for a subclass it goes to ``init``."""
        if cls.init is Supervisor.init:
            args = SupervisorSpec(list(args or []), strategy, intensity, period)
        return await cls._start(args, name, runtime, True, timeout)

    async def _init_(self, args: Any) -> Any:
        spec = self.init(args)
        if inspect.isawaitable(spec):
            spec = await spec
        if type(spec) is not SupervisorSpec:
            return spec  # IGNORE, Stop, or a bad value
        proc = current_process()
        proc.trap_exit = True
        try:
            state = _State(spec)
            specs = [child_spec(c) for c in spec.children]
        except (ValueError, TypeError) as exc:
            return Stop((Atom("bad_specs"), str(exc).encode()))
        ids = [s.id for s in specs]
        if len(set(map(repr, ids))) != len(ids):
            return Stop((Atom("bad_specs"), Atom("duplicate_child_id")))
        for s in specs:
            child = _Child(s)
            try:
                child.pid = await start_child_process(s)
            except StartError as err:
                await self._terminate_all(state)
                return Stop((SHUTDOWN, (Atom("failed_to_start_child"), s.id, err.reason)))
            if child.pid is not None or s.restart != "temporary":
                state.children.append(child)
        return Ok(state)

    # -- exits and restarts ----------------------------------------------------------

    async def handle_info(self, message: Any, state: _State) -> Any:
        if type(message) is tuple and len(message) == 3 and message[0] == EXIT:
            return await self._child_exited(message[1], message[2], state)
        if type(message) is tuple and len(message) == 2 and message[0] == Atom("$restart"):
            child = state.find(message[1])
            if child is not None and child.pid is None:
                return await self._restart(child, state)
        return NoReply(state)

    async def _child_exited(self, pid: Pid, reason: Any, state: _State) -> Any:
        child = state.find(pid)
        if child is None:
            return NoReply(state)
        child.pid = None
        restart = child.spec.restart
        if restart == "temporary":
            state.children.remove(child)
            return NoReply(state)
        if restart == "transient" and is_clean_exit(reason):
            return NoReply(state)
        return await self._restart(child, state)

    async def _restart(self, child: _Child, state: _State) -> Any:
        if not add_restart(state.restarts, state.intensity, state.period):
            return Stop(SHUTDOWN, state)
        proc = self.process
        if state.strategy == "one_for_one":
            group = [child]
        else:
            i = state.children.index(child)
            group = state.children if state.strategy == "one_for_all" else state.children[i:]
            others = [c for c in group if c is not child and c.pid is not None]
            if others:
                await shutdown_children_in_order(proc, others[::-1])
            for c in [c for c in group if c.spec.restart == "temporary" and c is not child]:
                state.children.remove(c)
            group = [c for c in group if c in state.children]
        for c in group:
            try:
                c.pid = await start_child_process(c.spec)
            except StartError:
                c.pid = None
                # OTP's try_again_restart: counts as another restart
                proc.send(proc.pid, (Atom("$restart"), c.spec.id))
                break
        return NoReply(state)

    async def terminate(self, reason: Any, state: Any) -> None:
        if isinstance(state, _State):
            await self._terminate_all(state)

    async def _terminate_all(self, state: _State) -> None:
        running = [c for c in state.children if c.pid is not None]
        await shutdown_children_in_order(self.process, running[::-1])

    # -- requests (OTP terms) ----------------------------------------------------------

    async def handle_call(self, request: Any, from_: Any, state: _State) -> Any:
        if not is_from(from_):
            return NoReply(state)  # junk: nobody to answer, and nothing is changed
        r = request
        if r == Atom("which_children"):
            out = [
                (
                    c.spec.id,
                    c.pid if c.pid is not None else _UNDEFINED,
                    Atom(c.spec.type),
                    c.spec.modules if c.spec.modules is not None else [],
                )
                for c in state.children
            ]
            return Reply(out, state)
        if r == Atom("count_children"):
            return Reply(_count([(c.spec.type, c.pid) for c in state.children]), state)
        if type(r) is not tuple or len(r) != 2:
            return Reply((_ERROR, Atom("badarg")), state)
        op, arg = r[0], r[1]
        if op == Atom("start_child"):
            return Reply(await self._start_new(arg, state), state)
        child = state.find(arg)
        if child is None:
            return Reply((_ERROR, Atom("not_found")), state)
        if op == Atom("terminate_child"):
            if child.pid is not None:
                await shutdown_children_in_order(self.process, [child])
            if child.spec.restart == "temporary":
                state.children.remove(child)
            return Reply(_OK, state)
        if op == Atom("restart_child"):
            if child.pid is not None:
                return Reply((_ERROR, Atom("running")), state)
            try:
                child.pid = await start_child_process(child.spec)
            except StartError as err:
                return Reply((_ERROR, err.reason), state)
            return Reply((_OK, child.pid if child.pid is not None else _UNDEFINED), state)
        if op == Atom("delete_child"):
            if child.pid is not None:
                return Reply((_ERROR, Atom("running")), state)
            state.children.remove(child)
            return Reply(_OK, state)
        if op == Atom("get_childspec"):
            return Reply((_OK, spec_map(child.spec)), state)
        return Reply((_ERROR, Atom("badarg")), state)

    async def _start_new(self, spec: Any, state: _State) -> Any:
        try:
            cs = child_spec(spec)
        except (ValueError, TypeError) as exc:
            return (_ERROR, (Atom("invalid_child_spec"), str(exc).encode()))
        old = state.find(cs.id)
        if old is not None:
            if old.pid is not None:
                return (_ERROR, (Atom("already_started"), old.pid))
            return (_ERROR, Atom("already_present"))
        child = _Child(cs)
        try:
            child.pid = await start_child_process(cs)
        except StartError as err:
            return (_ERROR, err.reason)
        if child.pid is not None or cs.restart != "temporary":
            state.children.append(child)
        return (_OK, child.pid if child.pid is not None else _UNDEFINED)

    # -- client API (supervisor:*) ---------------------------------------------------

    @staticmethod
    async def start_child(sup: Any, spec: Any, *, runtime: Runtime | None = None) -> Pid | None:
        """``supervisor:start_child``: the new pid (None if ignored); raises StartError."""
        return _ok_pid(await call(sup, (Atom("start_child"), spec), None, runtime=runtime))

    @staticmethod
    async def terminate_child(sup: Any, child_id: Any, *, runtime: Runtime | None = None) -> None:
        """``supervisor:terminate_child``; :class:`SupervisorError` ``not_found``."""
        _ok(await call(sup, (Atom("terminate_child"), child_id), None, runtime=runtime))

    @staticmethod
    async def restart_child(
        sup: Any, child_id: Any, *, runtime: Runtime | None = None
    ) -> Pid | None:
        """``supervisor:restart_child``; SupervisorError ``running``/``not_found``."""
        res = await call(sup, (Atom("restart_child"), child_id), None, runtime=runtime)
        if type(res) is tuple and res[0] == _ERROR:
            raise SupervisorError(res[1])
        return res[1] if type(res[1]) is Pid else None

    @staticmethod
    async def delete_child(sup: Any, child_id: Any, *, runtime: Runtime | None = None) -> None:
        """``supervisor:delete_child``; SupervisorError ``running``/``not_found``."""
        _ok(await call(sup, (Atom("delete_child"), child_id), None, runtime=runtime))

    @staticmethod
    async def get_childspec(sup: Any, child_id: Any, *, runtime: Runtime | None = None) -> dict[str, Any]:
        """``supervisor:get_childspec``: the child's spec as OTP's map, keys as strings;
        :class:`SupervisorError` ``not_found``."""
        res = await call(sup, (Atom("get_childspec"), child_id), None, runtime=runtime)
        _ok(res)
        return {k.name: v for k, v in res[1].items()}

    @staticmethod
    async def which_children(sup: Any, *, runtime: Runtime | None = None) -> list[ChildInfo]:
        """``supervisor:which_children``."""
        res = await call(sup, Atom("which_children"), None, runtime=runtime)
        return [
            ChildInfo(i, p if type(p) is Pid else None, t.name if type(t) is Atom else t, m)
            for i, p, t, m in res
        ]

    @staticmethod
    async def count_children(sup: Any, *, runtime: Runtime | None = None) -> dict[str, int]:
        """``supervisor:count_children``: specs, active, supervisors, workers."""
        res = await call(sup, Atom("count_children"), None, runtime=runtime)
        return {k.name: v for k, v in res}


async def shutdown_children_in_order(proc: Process, children: list[_Child]) -> None:
    """Stop children one after the other, in the given order."""
    for c in children:
        if c.pid is not None:
            await shutdown_children(proc, [(c.pid, c.spec.shutdown)])
            c.pid = None


def _count(children: list[tuple[str, Pid | None]]) -> list[tuple[Atom, int]]:
    return [
        (Atom("specs"), len(children)),
        (Atom("active"), sum(1 for _, p in children if p is not None)),
        (Atom("supervisors"), sum(1 for t, _ in children if t == "supervisor")),
        (Atom("workers"), sum(1 for t, _ in children if t == "worker")),
    ]


def _ok(res: Any) -> None:
    if type(res) is tuple and res[0] == _ERROR:
        raise SupervisorError(res[1])


def _ok_pid(res: Any) -> Pid | None:
    if type(res) is tuple and res[0] == _ERROR:
        raise StartError(res[1])
    return res[1] if type(res[1]) is Pid else None
