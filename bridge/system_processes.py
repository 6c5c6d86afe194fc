"""The system processes BEAM expects on a node: ``net_kernel``, ``rex`` and the spawner.

- ``net_kernel`` answers ``{is_auth, Node}`` with ``yes``, so ``net_adm:ping/1`` gives
  ``pong`` (docs/protocol.md §7.1).
- ``rex`` serves ``rpc``'s old protocol: ``gen_server:call({rex, Node}, {call, M, F, A, GL})``,
  ``block_call``, casts, and the C-node form ``{Pid, {call, M, F, A, GL}}`` answered with
  ``{rex, Result}`` (7.3).
- The spawner answers ``SPAWN_REQUEST``: OTP 25+ ``rpc:call/4`` and ``erpc:call/4`` arrive
  as a spawn of ``erpc:execute_call/4``, and ``spawn_request/5``, ``spawn/4``,
  ``spawn_link/4``, ``spawn_monitor/4`` start allow-listed Python processes.

Only what the Python program allow-listed runs: an rpc of anything else fails as a
call of an undefined function does on BEAM (``undef``), and a spawn of anything
else is refused with ``notsup``.

Junk never takes them down, and they are supervised as kernel's are:

- ``net_kernel`` and ``rex`` run under a supervisor registered as ``kernel_sup``
  (:func:`start_system_supervisor`, one_for_one, :data:`SYSTEM_INTENSITY` restarts in
  :data:`SYSTEM_PERIOD` seconds); a crashed one is restarted under its name.
- They answer what OTP's answer and ignore the rest as OTP's do: an unknown request
  to ``net_kernel`` or ``rex`` gets no reply (the caller's ``gen_server:call`` times
  out), a request whose ``From`` is not ``{Pid, Tag}`` is dropped, other messages are
  ignored.
- A spawn request the spawner cannot serve is refused with ``badarg``; the connection
  and the node's other processes are untouched.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dist_proto import control as c
from dist_proto import encode
from dist_proto.mapping import Mapping, split_keywords
from dist_proto.terms import Atom, Pid, Reference
from python_actors import (
    ChildSpec,
    Exit,
    GenServer,
    NoReply,
    Ok,
    Process,
    Reply,
    StartError,
    Supervisor,
    current_process,
    reason_of,
    run_blocking,
)
from python_actors.supervisor import is_from

from .global_server import start_global_name_server

if TYPE_CHECKING:
    from .node import Node
    from .peer import PeerConnection

__all__ = ["SYSTEM_INTENSITY", "SYSTEM_PERIOD", "NetKernel", "Rex", "Spawner", "start_system_supervisor"]

#: Restarts of system processes tolerated in :data:`SYSTEM_PERIOD` seconds before
#: ``kernel_sup`` gives up (OTP's kernel_sup would stop the node at the first one).
SYSTEM_INTENSITY = 10
SYSTEM_PERIOD = 10.0

log = logging.getLogger("bridge.system")

_YES = Atom("yes")
_IS_AUTH = Atom("is_auth")
_CALL = Atom("call")
_BLOCK_CALL = Atom("block_call")
_CAST = Atom("cast")
_REX = Atom("rex")
_BADRPC = Atom("badrpc")
_EXIT = Atom("EXIT")
_UNDEF = Atom("undef")
_ERPC = Atom("erpc")
_EXECUTE_CALL = Atom("execute_call")
_EXECUTE_CAST = Atom("execute_cast")
_RETURN = Atom("return")
_ERROR = Atom("error")
_EXIT_CLASS = Atom("exit")
_THROW = Atom("throw")
_LINK = Atom("link")
_MONITOR = Atom("monitor")
_NOTSUP = Atom("notsup")
_GEN_CALL = Atom("$gen_call")
_FEATURES_REQUEST = Atom("features_request")
_FEATURES_REPLY = Atom("features_reply")
_BEAM_BRIDGE = Atom("beam_bridge")
_START_ACTOR = Atom("start_actor")
_START_LINK = Atom("start_link")
_INIT_FAILED = Atom("beam_bridge_init_failed")
_INIT_FAILED_ERR = Atom("init_failed")
_IGNORE = Atom("ignore")


class NetKernel(GenServer):
    """``net_kernel``: the part of it a remote node talks to (``net_kernel:handle_call/3``).

    ``{is_auth, Node}`` is answered ``yes``; any other call gets no reply, as OTP's
    catch-all clause gives none; a call with a malformed ``From`` is dropped.
    """

    placement = "loop"  # a system process: never waits for a thread

    def init(self, node: Node) -> Ok:
        return Ok(node)

    def handle_call(self, request: Any, from_: Any, node: Node) -> Reply | NoReply:
        if is_from(from_) and type(request) is tuple and len(request) == 2 and request[0] == _IS_AUTH:
            return Reply(_YES, node)
        return NoReply(node)

    def handle_cast(self, request: Any, node: Node) -> NoReply:
        log.debug("net_kernel ignoring cast %r", request)
        return NoReply(node)

    def handle_info(self, message: Any, node: Node) -> NoReply:
        log.debug("net_kernel ignoring %r", message)
        return NoReply(node)


class RpcRefused(Exception):
    """An rpc of a function the Python program did not allow-list."""


def _undef(module: Atom, function: Atom, args: list[Any]) -> Any:
    return (_UNDEF, [(module, function, list(args), [])])


async def _apply(fn: Callable[..., Any], args: list[Any], mapping: Mapping | None) -> Any:
    # A trailing keyword list becomes keyword arguments when fn takes them
    # (dist_proto.mapping.split_keywords has the exact rule).
    args, kwargs = split_keywords(fn, args)
    # A plain function runs on a thread of the runtime (it may block); a coroutine
    # function runs on the loop, like an async actor's callback.
    if inspect.iscoroutinefunction(fn):
        result = await fn(*args, **kwargs)
    else:
        result = await (
            run_blocking(functools.partial(fn, *args, **kwargs)) if kwargs else run_blocking(fn, *args)
        )
        if inspect.isawaitable(result):
            result = await result
    # A value with no Erlang form fails here, as the function's own error, rather than
    # later in the exit signal carrying it (which would leave the caller waiting).
    if mapping is None:
        encode(result)
    else:
        encode(result, mapping=mapping)
    return result


def _with_keywords(fn: Callable[..., Any], args: list[Any]) -> tuple[Callable[..., Any], list[Any]]:
    """A process body ``fn(proc, *args)`` with a trailing keyword list as keyword
    arguments, by the rule of :func:`dist_proto.mapping.split_keywords`."""
    try:
        positional, kwargs = split_keywords(functools.partial(fn, None), args)
    except (TypeError, ValueError):  # no signature to read (a builtin, a mock)
        return fn, args
    return (functools.partial(fn, **kwargs), positional) if kwargs else (fn, args)


class Rex:
    """``rex``, served by a process of the node; each call runs in its own process."""

    def __init__(self, node: Node) -> None:
        self._node = node

    async def start_link(self) -> Pid:
        """Start the ``rex`` process linked to the caller (its supervisor), registered."""
        parent = current_process()

        async def loop(proc: Process) -> None:
            while True:
                msg = await proc.receive()
                try:
                    self._handle(proc, msg)
                except Exception:  # a request we misread must not take rex down
                    log.exception("rex ignoring %r", msg)

        pid = parent.spawn_link(loop)
        parent.runtime.register(_REX, pid)
        return pid

    def _handle(self, proc: Process, msg: Any) -> None:
        if type(msg) is not tuple or not msg:
            return
        if msg[0] == _GEN_CALL and len(msg) == 3:
            from_, request = msg[1], msg[2]
            if not is_from(from_):
                return
            if type(request) is tuple and len(request) == 5 and request[0] in (_CALL, _BLOCK_CALL):
                _, m, f, a, _gl = request
                proc.spawn(self._run_call, m, f, a, from_)
            return
        if msg[0] == Atom("$gen_cast") and len(msg) == 2:
            request = msg[1]
            if type(request) is tuple and len(request) == 5 and request[0] == _CAST:
                _, m, f, a, _gl = request
                proc.spawn(self._run_cast, m, f, a)
            return
        if len(msg) == 2 and type(msg[0]) is Pid:
            sender, request = msg
            if request == _FEATURES_REQUEST:
                proc.send(sender, (_FEATURES_REPLY, self._node.atom, []))
            elif type(request) is tuple and len(request) == 5 and request[0] in (_CALL, _BLOCK_CALL):
                _, m, f, a, _gl = request
                proc.spawn(self._run_cnode_call, m, f, a, sender)

    async def _result(self, m: Any, f: Any, a: Any) -> Any:
        fn = self._node._spawner.rpc_function(m, f)
        if fn is None or type(a) is not list:
            return (_BADRPC, (_EXIT, _undef(m, f, a if type(a) is list else [])))
        try:
            return await _apply(fn, a, self._node.mapping)
        except Exit as exc:
            return (_BADRPC, (_EXIT, exc.reason))
        except Exception as exc:
            return (_BADRPC, (_EXIT, reason_of(exc)))

    async def _run_call(self, proc: Process, m: Any, f: Any, a: Any, from_: Any) -> None:
        value = await self._result(m, f, a)
        proc.runtime.reply_to(from_, value, proc.pid)

    async def _run_cast(self, proc: Process, m: Any, f: Any, a: Any) -> None:
        await self._result(m, f, a)

    async def _run_cnode_call(self, proc: Process, m: Any, f: Any, a: Any, sender: Pid) -> None:
        proc.send(sender, (_REX, await self._result(m, f, a)))


async def start_system_supervisor(node: Node) -> Pid:
    """Start ``kernel_sup`` with ``net_kernel`` and ``rex`` under it, and in visible mode
    ``global_name_server`` (:mod:`bridge.global_server`) too (OTP's kernel supervisor,
    restarting instead of stopping the node)."""
    rex = Rex(node)
    children = [
        ChildSpec(id="net_kernel", start=_named_start(NetKernel, node, Atom("net_kernel")), modules=[Atom("net_kernel")]),
        ChildSpec(id="rex", start=rex.start_link, modules=[Atom("rpc")]),
    ]
    service = node.global_service
    if service is not None:  # visible mode: BEAM's global talks to us

        async def start_global() -> Pid | None:
            return await start_global_name_server(service)

        children.append(ChildSpec(id="global_name_server", start=start_global, modules=[Atom("global")]))
    sup = await Supervisor.start_link(
        children, strategy="one_for_one", intensity=SYSTEM_INTENSITY, period=SYSTEM_PERIOD,
        name=Atom("kernel_sup"), runtime=node.runtime,
    )
    if sup is None:  # only a subclass's init can answer ignore
        raise StartError(Atom("ignore"))
    return sup


def _named_start(cls: type[GenServer], arg: Any, name: Atom) -> Callable[[], Any]:
    async def start() -> Pid | None:
        return await cls.start_link(arg, name=name)

    return start


class Spawner:
    """Serves SPAWN_REQUEST (``erlang:spawn_request/5`` and everything built on it)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._rpc: dict[tuple[Atom, Atom], Callable[..., Any]] = {}
        self._spawn: dict[tuple[Atom, Atom], Callable[..., Any]] = {}
        self._requests: dict[Reference, tuple[asyncio.Future[Any], Pid, bool, Atom]] = {}
        self._io_server: Pid | None = None

    # -- allow-lists ----------------------------------------------------------------

    def allow_rpc(self, module: str | Atom, function: str | Atom, fn: Callable[..., Any]) -> None:
        self._rpc[(Atom(str(module)), Atom(str(function)))] = fn

    def allow_spawn(self, module: str | Atom, function: str | Atom, fn: Callable[..., Any]) -> None:
        self._spawn[(Atom(str(module)), Atom(str(function)))] = fn

    def spawn_allowed(self) -> list[tuple[Atom, Atom]]:
        return list(self._spawn)

    def rpc_function(self, module: Any, function: Any) -> Callable[..., Any] | None:
        if type(module) is not Atom or type(function) is not Atom:
            return None
        return self._rpc.get((module, function))

    # -- serving requests -----------------------------------------------------------

    def handle_request(self, peer: PeerConnection, msg: c.SpawnRequest) -> None:
        """Serve one SPAWN_REQUEST; one we cannot read is refused with ``badarg``."""
        try:
            self._handle_request(peer, msg)
        except Exception:
            log.exception("refusing a spawn request from %s", peer.name.name)
            peer.send(c.SpawnReply(msg.req_id, msg.from_pid, 0, Atom("badarg")))

    def _handle_request(self, peer: PeerConnection, msg: c.SpawnRequest) -> None:
        module, function, arity = msg.mfa
        args = msg.args
        rt = self._node.runtime
        if msg.from_pid.node != peer.name:
            peer.close(Atom("bad_sender"))
            return
        if (module, function) == (_ERPC, _EXECUTE_CALL) and arity == 4:
            body: Callable[..., Any] = self._erpc_call
        elif (module, function) == (_ERPC, _EXECUTE_CAST) and arity == 3:
            body = self._erpc_cast
        elif (module, function) == (_BEAM_BRIDGE, _START_ACTOR) and arity == 2:
            self._start_actor(peer, msg)
            return
        else:
            target = self._spawn.get((module, function))
            if target is None or type(args) is not list or len(args) != arity:
                peer.send(c.SpawnReply(msg.req_id, msg.from_pid, 0, _NOTSUP))
                return
            if isinstance(target, type) and issubclass(target, GenServer):
                arg = args[0] if len(args) == 1 else args
                self._node._own(self._start_gen_server(peer, msg, target, arg, False), "spawn gen_server")
                return
            body, args = _with_keywords(target, args)
        pid = rt.spawn(body, *args)
        self._reply(peer, msg, pid)

    def _start_actor(self, peer: PeerConnection, msg: c.SpawnRequest) -> None:
        """``beam_bridge:start_link(Node, Actor, Args)``: start ``(Actor, start_link)``
        and answer after ``init``, as ``proc_lib`` does (see erl/src/beam_bridge.erl)."""
        actor, arg = msg.args if type(msg.args) is list else (None, None)
        target = self._spawn.get((actor, _START_LINK)) if type(actor) is Atom else None
        if target is None:
            peer.send(c.SpawnReply(msg.req_id, msg.from_pid, 0, _NOTSUP))
            return
        if isinstance(target, type) and issubclass(target, GenServer):
            self._node._own(self._start_gen_server(peer, msg, target, arg, True), "start actor")
            return
        body, args = _with_keywords(target, [arg])
        pid = self._node.runtime.spawn(body, *args)
        self._reply(peer, msg, pid)

    def _reply(self, peer: PeerConnection, msg: c.SpawnRequest, pid: Pid) -> None:
        rt = self._node.runtime
        flags = 0
        opts = msg.opts if type(msg.opts) is list else []
        if _LINK in opts:
            rt.deliver_link(msg.from_pid, pid)
            flags |= 1
        if _MONITOR in opts or any(type(o) is tuple and o and o[0] == _MONITOR for o in opts):
            rt.deliver_monitor(msg.from_pid, pid, msg.req_id)
            flags |= 2
        peer.send(c.SpawnReply(msg.req_id, msg.from_pid, flags, pid))

    async def _start_gen_server(
        self, peer: PeerConnection, msg: c.SpawnRequest, cls: type[GenServer], arg: Any, owned: bool
    ) -> None:
        """Start a GenServer for a spawn request and reply once ``init`` is done.

        ``owned``: started by ``beam_bridge`` for a BEAM parent (a supervisor): the
        caller is its parent and it traps exits, so ``exit(Pid, shutdown)`` runs
        ``terminate``; a failed ``init`` is reported with its reason.
        """
        rt = self._node.runtime
        try:
            pid = await cls.start(arg, runtime=rt, parent=msg.from_pid if owned else None, trap_exit=owned)
        except StartError as exc:
            log.info("start of %s for %s failed: %r", cls.__name__, msg.from_pid, exc.reason)
            if owned:
                rt.send(msg.from_pid, (_INIT_FAILED, msg.req_id, exc.reason))
                peer.send(c.SpawnReply(msg.req_id, msg.from_pid, 0, _INIT_FAILED_ERR))
            else:
                peer.send(c.SpawnReply(msg.req_id, msg.from_pid, 0, Atom("badarg")))
            return
        if pid is None:  # init returned ignore
            peer.send(c.SpawnReply(msg.req_id, msg.from_pid, 0, _IGNORE if owned else Atom("badarg")))
            return
        if peer.open:
            self._reply(peer, msg, pid)
        else:
            rt.exit(pid, Atom("kill"))

    async def _erpc_call(self, proc: Process, res_ref: Any, module: Any, function: Any, args: Any) -> None:
        """``erpc:execute_call/4``: exit with ``{Ref, return, V}`` or the exception shape."""
        fn = self.rpc_function(module, function)
        if fn is None or type(args) is not list:
            raise Exit((res_ref, _ERROR, _UNDEF, [(module, function, args if type(args) is list else [], [])]))
        try:
            value = await _apply(fn, args, self._node.mapping)
        except Exit as exc:
            raise Exit((res_ref, _EXIT_CLASS, exc.reason)) from None
        except Exception as exc:
            raise Exit((res_ref, _ERROR, reason_of(exc), [])) from None
        raise Exit((res_ref, _RETURN, value))

    async def _erpc_cast(self, proc: Process, module: Any, function: Any, args: Any) -> None:
        fn = self.rpc_function(module, function)
        if fn is not None and type(args) is list:
            await _apply(fn, args, self._node.mapping)

    # -- requests we make (bridge.remote_spawn) ----------------------------------------

    def expect_reply(self, req_id: Reference, caller: Pid, link: bool, node: Atom) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._requests[req_id] = (fut, caller, link, node)
        return fut

    def node_down(self, node: Atom) -> None:
        """Spawn requests towards a lost node get ``noconnection``, as BEAM replies."""
        for req_id, (fut, caller, _link, target) in list(self._requests.items()):
            if target == node:
                del self._requests[req_id]
                if not fut.done():
                    fut.set_result(c.SpawnReply(req_id, caller, 0, Atom("noconnection")))

    def forget(self, req_id: Reference) -> None:
        self._requests.pop(req_id, None)

    def handle_reply(self, peer: PeerConnection, msg: c.SpawnReply) -> None:
        entry = self._requests.pop(msg.req_id, None)
        if entry is None:
            return
        fut, caller, link, _node = entry
        if link and type(msg.result) is Pid:
            # Record the link now: the new process's signals may follow in this same read.
            self._node.runtime.deliver_link(msg.result, caller)
        if not fut.done():
            fut.set_result(msg)

    def group_leader(self) -> Pid:
        """The group leader we give BEAM processes we spawn: an I/O server that logs output."""
        if self._io_server is None or not self._node.runtime.is_alive(self._io_server):
            self._io_server = self._node.runtime.spawn(_io_server, self._node.name)
        return self._io_server


_IO_REQUEST = Atom("io_request")
_IO_REPLY = Atom("io_reply")
_PUT_CHARS = Atom("put_chars")
_ENOTSUP = Atom("enotsup")


async def _io_server(proc: Process, node_name: str) -> None:
    """Answer the Erlang I/O protocol for BEAM processes we spawned: output is logged,
    input is not supported (``{error, enotsup}``), so they never block on I/O."""
    io_log = logging.getLogger("bridge.io")
    while True:
        msg = await proc.receive()
        if type(msg) is not tuple or len(msg) != 4 or msg[0] != _IO_REQUEST:
            continue
        _, sender, reply_as, request = msg
        reply: Any = (Atom("error"), _ENOTSUP)
        if type(request) is tuple and request and request[0] == _PUT_CHARS:
            chars = request[-1] if len(request) in (2, 3) else None
            if isinstance(chars, (bytes, list, str)):  # str: a node decoding strings
                text = (
                    chars if isinstance(chars, str)
                    else bytes(chars).decode("utf-8", "replace") if isinstance(chars, bytes) else ""
                )
                io_log.info("%s: %s", node_name, text.rstrip("\n"))
            reply = Atom("ok")
        proc.send(sender, (_IO_REPLY, reply_as, reply))

