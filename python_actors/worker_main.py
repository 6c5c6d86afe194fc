"""The main of a worker OS process: ``python -m python_actors.worker_main``.

A worker hosts exactly one process-placed GenServer (see
:mod:`python_actors.worker_placement`). Theory of operation:

1. It arranges to die with its node: ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` on Linux,
   a check that the node (``PYTHON_ACTORS_NODE_PID``) is still its parent, and exit
   at end of input. Its stdin/stdout become the channel and fd 1 is pointed at
   stderr, so a ``print`` in user code cannot corrupt a frame.
2. It says ``ready`` and waits, warm, for ``init``: the GenServer class (pickled by
   reference; a class of the node's ``__main__`` is found by loading that script as
   ``__mp_main__``, as :mod:`multiprocessing` does) and its ``init`` argument.
3. It runs the actor with :class:`~python_actors.GenServer`'s own code
   (``_handle``, ``_after``, ``_stop``), so return shapes, ``Continue``, ``Stop``
   with a reply, ``bad_return_value``, crash reasons and ``terminate`` mean exactly
   what they mean on the event loop. The runtime the actor sees is a stand-in that
   turns its effects (``send``, ``gen_server:reply``, ``cast``, ``exit/2``,
   ``link``, a timeout, its end) into frames to the node, written in the order
   they happen. One message at a time: the node sends the next only after ``done``.

Not available in a worker (a clear :class:`WorkerPlacementError`): calling or
monitoring other processes, spawning, the registry. Those need the node's tables.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import inspect
import logging
import os
import pickle
import runpy
import signal
import sys
from typing import Any

from dist_proto.terms import Atom, Pid

from . import worker_channel as ch
from .errors import reason_of
from .gen_server import HIBERNATE, IGNORE, Continue, GenServer, Ok, Stop, _Internal
from .process import Process, _current

__all__ = ["NODE_PID_ENV", "WorkerPlacementError", "main"]

log = logging.getLogger("python_actors.worker")

#: environment variable naming the node's OS pid (the worker's expected parent)
NODE_PID_ENV = "PYTHON_ACTORS_NODE_PID"
_PR_SET_PDEATHSIG = 1
_BAD_RETURN = Atom("bad_return_value")
_SYSTEM = Atom("system")


class WorkerPlacementError(Exception):
    """An operation that a process-placed actor cannot do from its worker process."""


def _die_with_parent() -> None:
    parent = int(os.environ.get(NODE_PID_ENV, "0") or 0)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if parent and os.getppid() != parent:  # the node died before prctl took effect
        os._exit(1)


def _take_channel() -> tuple[int, int]:
    """Move stdin/stdout to private fds for the channel; user prints go to stderr."""
    rfd, wfd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return rfd, wfd


class _Timers:
    """What ``GenServer._set_timeout`` sees as the loop: a timeout becomes an ``arm``
    frame; the node owns the timer and sends ``timeout`` when it fires."""

    __slots__ = ("_host",)

    def __init__(self, host: _Host) -> None:
        self._host = host

    def call_later(self, delay: float, fn: Any, *args: Any) -> Any:
        if getattr(fn, "__name__", None) != "_deliver":  # send_after and the like
            return asyncio.get_running_loop().call_later(delay, fn, *args)
        self._host.timeout_msg = args[1]
        self._host.emit((ch.ARM, float(delay)))
        return _NoTimer()


class _NoTimer:
    __slots__ = ()

    def cancel(self) -> None:
        """The node cancels its own timer whenever it hands over a message."""


class _WorkerRuntime:
    """The runtime as seen by an actor inside its worker: effects become frames."""

    def __init__(self, host: _Host, node: Atom) -> None:
        self._host = host
        self._timers = _Timers(host)
        self.node = node

    def is_local(self, pid: Any) -> bool:
        return bool(pid.node == self.node)

    def _send(self, dest: Any, message: Any, sender: Pid) -> None:
        self._host.emit((ch.SEND, dest, message))

    def reply_to(self, tag_from: Any, message: Any, sender: Pid | None = None) -> None:
        self._host.emit((ch.REPLY, tag_from, message))

    def _exit2_from(self, proc: Process, pid: Any, reason: Any) -> None:
        self._host.emit((ch.EXIT2, pid, reason))

    def _link(self, proc: Process, pid: Pid) -> None:
        self._host.emit((ch.LINK, pid))

    def _unlink(self, proc: Process, pid: Pid) -> None:
        self._host.emit((ch.UNLINK, pid))

    def _exit_process(self, proc: Process, reason: Any) -> None:
        if proc.alive:
            self._host.emit((ch.EXIT, reason))
            proc.alive = False

    def _loop_(self) -> _Timers:
        return self._timers

    def on_loop(self) -> bool:
        """The worker's actor runs on the worker's one thread."""
        return True

    def from_thread(self, fn: Any, *args: Any) -> None:
        fn(*args)

    def call_on_loop(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    def _deliver(self, proc: Process, msg: Any) -> None:
        """Named by ``GenServer._set_timeout``; the node's timer delivers instead."""

    def __getattr__(self, name: str) -> Any:
        raise WorkerPlacementError(
            f"runtime.{name.lstrip('_')} is not available to an actor placed in a worker "
            "process (placement='process'); use placement 'loop' or 'thread' for it"
        )


class _Host:
    """The worker's side of one actor: reads frames, runs callbacks, emits effects."""

    def __init__(self, wfd: int) -> None:
        self._wfd = wfd
        self.timeout_msg: Any = None
        self._inst: GenServer | None = None
        self._proc: Process | None = None
        self._continue: Any = None
        self._trap = False
        self._batch: list[bytes] | None = None

    def emit(self, frame: tuple[Any, ...]) -> None:
        """Send one effect: batched while a callback runs synchronously (one write
        per message handled), written at once otherwise (an async callback, a
        reply deferred with ``call_later``)."""
        data = ch.pack(frame)
        if self._batch is not None:
            self._batch.append(data)
        else:
            ch.write_frame_blocking(self._wfd, data)

    def flush(self) -> None:
        """Write the batched effects and stop batching."""
        batch, self._batch = self._batch, None
        if batch:
            ch.write_frame_blocking(self._wfd, b"".join(batch))

    async def serve(self, reader: asyncio.StreamReader) -> None:
        self.emit((ch.READY, os.getpid()))
        while True:
            frame = await ch.read_frame(reader)
            if frame is None:
                return
            if frame[0] == ch.PRELOAD:
                _preload(frame[1])
                self.emit((ch.PRELOADED,))
                continue
            self._batch = []
            try:
                if frame[0] == ch.INIT:
                    going = await self._init(*frame[1:])
                else:
                    await self._step(frame)
                    proc = self._proc
                    going = proc is not None and proc.alive
                    if going:
                        self._sync_trap()
                        self.emit((ch.DONE,))
            finally:
                self.flush()
            if not going:
                return

    def _sync_trap(self) -> None:
        proc = self._proc
        if proc is not None and proc.trap != self._trap:
            self._trap = proc.trap
            self.emit((ch.TRAP, proc.trap))

    async def _init(
        self, main_ref: tuple[str, str] | None, payload: bytes, pid: Pid, parent: Pid, trap: bool
    ) -> bool:
        try:
            if main_ref is not None and "__mp_main__" not in sys.modules:
                _load_main(*main_ref)
            cls, args = pickle.loads(payload)
            inst = cls()
            rt = _WorkerRuntime(self, pid.node)
            proc = Process(rt, pid, parent)  # type: ignore[arg-type]
            proc.trap = self._trap = trap
            proc.behaviour = inst
            _prepare(inst, proc, parent)
            self._inst, self._proc = inst, proc
            _current.set(proc)
            res = inst._init_(args)
            if inspect.isawaitable(res):
                self.flush()
                res = await res
        except Exception as exc:
            self.emit((ch.INIT_CRASH, reason_of(exc)))
            return False
        self._sync_trap()
        t = type(res)
        if t is Ok:
            inst._state = res.state
            action = res.action
            if type(action) is Continue:
                self._continue = _Internal("continue", action.arg)
            elif isinstance(action, (int, float)) and not isinstance(action, bool):
                inst._set_timeout(action)
            elif action is not None and action != HIBERNATE:
                self._emit_init_end(ch.INIT_STOP, (_BAD_RETURN, res))
                return False
            self.emit((ch.INIT_OK, self._continue is not None))
            return True
        if res == IGNORE:
            self.emit((ch.INIT_IGNORE,))
        elif t is Stop:
            self._emit_init_end(ch.INIT_STOP, res.reason)
        else:
            self._emit_init_end(ch.INIT_STOP, (_BAD_RETURN, res))
        return False

    def _emit_init_end(self, kind: str, reason: Any) -> None:
        try:
            self.emit((kind, reason))
        except Exception as exc:  # a reason that cannot be pickled
            self.emit((ch.INIT_CRASH, reason_of(exc)))

    async def _step(self, frame: tuple[Any, ...]) -> None:
        inst, proc = self._inst, self._proc
        if inst is None or proc is None:
            raise ch.ChannelError(f"{frame[0]} before init")
        kind = frame[0]
        try:
            if kind == ch.MSG:
                try:
                    msg = pickle.loads(frame[1])
                except Exception as exc:
                    log.error("%s dropped a message it cannot load here: %r", proc.pid, exc)
                    return
                if _is_system(msg):
                    pending = self._system(inst, msg[1], msg[2])
                else:
                    pending = inst._handle(msg)
            elif kind == ch.TIMEOUT:
                pending = inst._handle(self.timeout_msg)
            elif kind == ch.CONTINUE:
                pending, self._continue = inst._handle(self._continue), None
            elif kind == ch.STOP:
                pending = inst._stop(frame[1], inst._state)
            else:
                raise ch.ChannelError(f"unknown frame {kind!r}")
            if pending is not None:
                self.flush()
                await pending
        except ch.ChannelError:
            raise
        except BaseException as exc:  # sys.exit() or a bug: end the actor like the runtime
            if proc.alive:
                self._end(reason_of(exc))

    def _system(self, inst: GenServer, from_: Any, request: Any) -> Any:
        """``{system, From, Request}`` (``sys``) as on the loop; what needs the node's
        tables, or a state that cannot be pickled, is an error answer, not a crash."""
        batch = self._batch
        mark = len(batch) if batch is not None else 0
        try:
            return inst._system(from_, request)
        except (WorkerPlacementError, TypeError, pickle.PicklingError, AttributeError) as exc:
            if self._batch is not None:
                del self._batch[mark:]  # a half-made answer
            why = (Atom("not_available_in_worker"), repr(exc).encode())
            self.emit((ch.REPLY, from_, (Atom("error"), why)))
            return None

    def _end(self, reason: Any) -> None:
        proc = self._proc
        assert proc is not None
        try:
            proc.runtime._exit_process(proc, reason)
        except Exception as exc:
            proc.runtime._exit_process(proc, reason_of(exc))


def _load_main(kind: str, where: str) -> None:
    """Let classes of the node's ``__main__`` be unpickled here: run its module or
    script as ``__mp_main__`` (its ``if __name__ == "__main__"`` block does not run)."""
    import types

    module = types.ModuleType("__mp_main__")
    sys.modules["__mp_main__"] = module
    try:
        if kind == "module":
            namespace = runpy.run_module(where, run_name="__mp_main__", alter_sys=False)
        else:
            namespace = runpy.run_path(where, run_name="__mp_main__")
    except BaseException:
        del sys.modules["__mp_main__"]
        raise
    module.__dict__.update(namespace)
    sys.modules["__main__"] = module


def _is_system(msg: Any) -> bool:
    return type(msg) is tuple and len(msg) == 3 and msg[0] == _SYSTEM


#: what ``GenServer._start`` sets on an instance, for a worker: every callback
#: inline (the worker is the isolation), no sys state yet
_INSTANCE_DEFAULTS: dict[str, Any] = {
    "_state": None, "_timer": None, "_token": None, "_sys": None, "_off": frozenset(),
    "_drain": False, "_done": False, "_thread": None,
}


def _prepare(inst: GenServer, proc: Process, parent: Pid) -> None:
    inst._proc = proc
    inst._parent = parent
    for name, value in _INSTANCE_DEFAULTS.items():
        try:
            setattr(inst, name, value)
        except AttributeError:  # an older GenServer without that slot
            pass
    try:
        inst._front = []
    except AttributeError:
        pass


def _preload(refs: list[tuple[str, tuple[str, str] | None]]) -> None:
    """Import the modules of the classes the node has started before (a spare's
    idle time); a failure here is left for ``init`` to report."""
    for module, ref in refs:
        try:
            if ref is not None:
                if "__mp_main__" not in sys.modules:
                    _load_main(*ref)
            else:
                importlib.import_module(module)
        except Exception as exc:
            log.debug("preload of %s failed: %r", module, exc)


async def _serve(rfd: int, wfd: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    pipe = os.fdopen(rfd, "rb", buffering=0)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), pipe
    )
    try:
        await _Host(wfd).serve(reader)
    finally:
        transport.close()


def main() -> None:
    """Run one worker until the node closes the channel or the actor ends."""
    _die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group: the node decides
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rfd, wfd = _take_channel()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    asyncio.run(_serve(rfd, wfd))


if __name__ == "__main__":
    # run as the importable module, so its classes (WorkerPlacementError) carry
    # their real module name rather than __main__'s
    from python_actors.worker_main import main as _main

    _main()
