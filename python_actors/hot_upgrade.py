r"""Hot code upgrade of Python actors: OTP's release-handler sequence on a GenServer.

Theory of operation (OTP's release_handler and "Release Handling" in the design
principles; ``sys:change_code/4``, ``gen_server:system_code_change/4``). An upgrade of
a module suspends every process running it (``sys:suspend``), changes their code
(``sys:change_code(P, Module, OldVsn, Extra)``) and resumes them (``sys:resume``).
Messages that arrive in between wait, in order, in the process and are handled by the
new code after ``resume``: no call is lost.

For a Python actor, ``Module`` is the dotted name of a Python module (as an atom from
Erlang). ``change_code`` on a *suspended* server whose class is defined in that module

1. reloads the module from disk (``importlib.reload``) unless another actor's upgrade
   already did, i.e. unless the module's class of that qualified name is no longer
   the actor's class;
2. moves the running instance to the class of the same qualified name in the reloaded
   module (``instance.__class__ = New``: identity, attributes, links, monitors,
   registered name and mailbox stay);
3. calls the new ``code_change(old_vsn, state, extra)``, which returns
   ``Ok(new_state)`` (the default keeps the state).

If any step fails the actor keeps its old class and state and the caller gets
``{error, Reason}`` (``{'EXIT', Reason}`` for an exception), as gen_server answers a
failed ``code_change``. A ``Module`` other than the actor's own is not reloaded; the
actor is moved to its class's current definition and ``code_change`` runs.

:func:`upgrade_module` runs the whole sequence on every actor of a module of a runtime;
:func:`rpc_upgrade_module` is the same for an rpc (``python -m bridge upgrade``).

>>> import asyncio, pathlib, sys, tempfile
>>> from python_actors import Runtime, call
>>> folder = tempfile.mkdtemp()
>>> sys.path.insert(0, folder)
>>> source = pathlib.Path(folder, "hot_demo.py")
>>> _ = source.write_text(
...     "from python_actors import GenServer, Reply\n"
...     "class Greeter(GenServer):\n"
...     "    def handle_call(self, name, from_, n):\n"
...     "        return Reply(f'hello {name}', n)\n")
>>> import hot_demo
>>> async def main():
...     async with Runtime() as rt:
...         pid = await hot_demo.Greeter.start(0, runtime=rt)
...         before = await call(pid, "joe", runtime=rt)
...         _ = source.write_text(source.read_text().replace("hello", "welcome"))
...         await upgrade_module(rt, "hot_demo")
...         return before, await call(pid, "joe", runtime=rt)
>>> asyncio.run(main())
('hello joe', 'welcome joe')
>>> sys.path.remove(folder)
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid, Reference

from .errors import DOWN, TIMEOUT, ActorError, reason_of
from .gen_server import GenServer, Ok
from .process import Process, current_process
from .sys_protocol import erlang_form

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["UpgradeError", "change_code", "rpc_upgrade_module", "upgrade_module"]

_OK = Atom("ok")
_ERROR = Atom("error")
_EXIT = Atom("EXIT")
_SYSTEM = Atom("system")
_SUSPEND = Atom("suspend")
_RESUME = Atom("resume")
_CHANGE_CODE = Atom("change_code")


class UpgradeError(ActorError):
    """An upgrade failed for some actors; ``failures`` maps each pid to its reason."""

    def __init__(self, failures: dict[Pid, Any], upgraded: list[Pid]) -> None:
        super().__init__(failures)
        self.failures = failures
        self.upgraded = upgraded


def _name(module: Any) -> str:
    if type(module) is Atom:
        return module.name
    if isinstance(module, bytes):
        return module.decode()
    return str(module)


def _resolve(module: Any, qualname: str) -> Any:
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _reload(module: ModuleType) -> ModuleType:
    """``importlib.reload`` from the source on disk: the cached bytecode goes first, since
    its freshness check (mtime in seconds and size) can miss a same-size edit."""
    importlib.invalidate_caches()
    source = getattr(module, "__file__", None)
    if source and source.endswith(".py"):
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            os.remove(importlib.util.cache_from_source(source))
    return importlib.reload(module)


def new_class(old: type, module_name: str) -> type:
    """The class that ``old`` becomes: reload ``module_name`` if it is ``old``'s module and
    not reloaded since ``old`` was defined, then look up ``old``'s qualified name."""
    with _RELOAD_LOCK:  # actors upgraded on several threads reload the module once
        return _new_class(old, module_name)


#: serialises reloads: the check "not reloaded since ``old`` was defined" and the
#: reload must be one step when actors are upgraded on several threads at once
_RELOAD_LOCK = threading.Lock()


def _new_class(old: type, module_name: str) -> type:
    own = sys.modules.get(old.__module__)
    if own is None:
        own = importlib.import_module(old.__module__)
    if module_name == old.__module__:
        try:
            current = _resolve(own, old.__qualname__)
        except AttributeError:
            current = None
        if current is old:
            own = _reload(own)
    elif module_name not in sys.modules:
        raise ImportError(f"module {module_name} is not loaded")
    cls = _resolve(own, old.__qualname__)
    if not (isinstance(cls, type) and issubclass(cls, GenServer)):
        raise TypeError(f"{old.__module__}.{old.__qualname__} is no longer a GenServer class")
    return cls


def change_code(
    server: GenServer, module: Any, old_vsn: Any, extra: Any, answer: Callable[[Any], None]
) -> Any:
    """``gen_server:system_code_change/4`` for a suspended server; ``answer`` gets
    ``ok`` or ``{error, Reason}``. Returns None or an awaitable (async ``code_change``)."""
    old_cls = type(server)
    try:
        cls = new_class(old_cls, _name(module))
        server.__class__ = cls
    except Exception as exc:
        answer((_ERROR, (_EXIT, reason_of(exc))))
        return None
    try:
        res = server.code_change(old_vsn, server._state, extra)
    except Exception as exc:
        server.__class__ = old_cls
        answer((_ERROR, (_EXIT, reason_of(exc))))
        return None
    if inspect.isawaitable(res):
        return _finish_async(server, old_cls, res, answer)
    _finish(server, old_cls, res, answer)
    return None


def _finish(server: GenServer, old_cls: type, res: Any, answer: Callable[[Any], None]) -> None:
    if type(res) is Ok:
        server._state = res.state
        server._refresh_placement()
        answer(_OK)
        return
    server.__class__ = old_cls
    answer((_ERROR, res))


async def _finish_async(server: GenServer, old_cls: type, coro: Any, answer: Callable[[Any], None]) -> None:
    try:
        res = await coro
    except Exception as exc:
        server.__class__ = old_cls
        answer((_ERROR, (_EXIT, reason_of(exc))))
        return
    _finish(server, old_cls, res, answer)


def actors_of(runtime: Runtime, module: str) -> list[Pid]:
    """The live GenServers of ``runtime`` whose class is defined in ``module``."""
    out = []
    for pid in runtime.processes():
        proc = runtime.process(pid)
        beh = proc.behaviour if proc is not None else None
        if isinstance(beh, GenServer) and type(beh).__module__ == module:
            out.append(pid)
    return out


async def upgrade_module(
    runtime: Runtime,
    module: str | Atom,
    *,
    old_vsn: Any = None,
    extra: Any = None,
    timeout: float = 5.0,
) -> list[Pid]:
    """Upgrade every actor of ``module``: suspend them all, ``change_code`` each (the
    first reloads the module from disk), resume them all. Returns the pids upgraded.

    Raises :class:`UpgradeError` if some failed (those keep their old code; every
    actor is resumed either way)."""
    name = _name(module)
    pids = actors_of(runtime, name)
    failures: dict[Pid, Any] = {}

    def accepted(answers: dict[Pid, Any]) -> list[Pid]:
        ok = []
        for pid, answer in answers.items():
            if answer == _OK:
                ok.append(pid)
            else:
                failures.setdefault(pid, answer[1] if type(answer) is tuple and len(answer) == 2 else answer)
        return ok

    async def sequence(proc: Process) -> list[Pid]:
        suspended = accepted(await _sys_all(proc, pids, _SUSPEND, timeout))
        try:
            change = (_CHANGE_CODE, Atom(name), old_vsn, extra)
            return accepted(await _sys_all(proc, suspended, change, timeout))
        finally:
            accepted(await _sys_all(proc, suspended, _RESUME, timeout))

    upgraded: list[Pid] = await runtime.run(sequence)
    if failures:
        raise UpgradeError(failures, upgraded)
    return upgraded


async def _sys_all(proc: Process, pids: list[Pid], request: Any, timeout: float) -> dict[Pid, Any]:
    """``sys``'s ``request`` to every pid at once from ``proc`` (one request each, as
    ``gen:call`` makes it); each pid's answer, or ``{error, Why}`` for a pid that ended
    (``Why`` its exit reason) or did not answer in time (``timeout``)."""
    pending: dict[Reference, Pid] = {}
    for pid in pids:
        mref = proc.monitor(pid)
        pending[mref] = pid
        proc.send(pid, (_SYSTEM, (proc.pid, mref), request))

    def match(m: Any) -> bool:
        if type(m) is not tuple:
            return False
        if len(m) == 2:
            return m[0] in pending
        return len(m) == 5 and m[0] == DOWN and m[1] in pending

    answers: dict[Pid, Any] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        msg = await proc.receive(match, max(0.0, deadline - loop.time()), None)
        if msg is None:
            break
        if len(msg) == 2:
            pid = pending.pop(msg[0])
            proc.demonitor(msg[0])  # a DOWN that raced in dies with the temporary process
            answers[pid] = msg[1]
        else:
            answers[pending.pop(msg[1])] = (_ERROR, msg[4])
    for mref, pid in pending.items():
        proc.demonitor(mref, flush=True)
        answers[pid] = (_ERROR, TIMEOUT)
    return answers


async def rpc_upgrade_module(module: Any, extra: Any = None) -> Any:
    """For ``node.allow_rpc("python_actors", "upgrade_module", rpc_upgrade_module)``:
    :func:`upgrade_module` on the runtime of the calling process. Returns ``{ok, Pids}``
    or ``{error, {upgrade_failed, [{Pid, Reason}], Upgraded}}``."""
    runtime = current_process().runtime
    try:
        pids = await upgrade_module(runtime, _name(module), extra=extra)
    except UpgradeError as exc:
        failures = [(pid, erlang_form(why)) for pid, why in exc.failures.items()]
        return (_ERROR, (Atom("upgrade_failed"), failures, exc.upgraded))
    return (_OK, pids)
