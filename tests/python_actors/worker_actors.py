"""Process-placed GenServers for the worker-placement tests (importable by a worker).

A worker process loads the actor's class by module and name, so the classes live
here rather than in a test module (which would import pytest into every worker).
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from typing import Any

from dist_proto.terms import Atom, Pid
from python_actors import IGNORE, Continue, GenServer, NoReply, Ok, Reply, Stop, cast

TIMEOUT = Atom("timeout")
NORMAL = Atom("normal")


class Worker(GenServer):
    """``init((mode, report_to))``; reports ``terminate`` to ``report_to``."""

    placement = "process"

    def init(self, args: Any) -> Any:
        mode, self.report_to = args
        if mode == "ignore":
            return IGNORE
        if mode == "stop":
            return Stop(Atom("no_way"))
        if mode == "crash":
            raise ValueError("bad init")
        if mode == "bad":
            return "not a shape"
        if mode == "continue":
            return Ok(0, Continue("boot"))
        if mode == "timeout":
            return Ok(0, 0.05)
        if mode == "trap":
            self.process.trap_exit = True
            return Ok(0)
        if mode == "lock":
            return Ok(threading.Lock())  # cannot be pickled: stays in the worker
        if mode == "hang":
            time.sleep(3600)
        if mode == "os_exit":
            os._exit(7)
        return Ok(mode if isinstance(mode, int) else 0)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        tag = request[0] if type(request) is tuple else request
        if tag == "get":
            return Reply(state, state)
        if tag == "whoami":
            return Reply((os.getpid(), self.pid, self.process.self()), state)
        if tag == "stop":
            return Stop(NORMAL, state, reply="bye")
        if tag == "crash":
            raise RuntimeError("crash in call")
        if tag == "bad":
            return "not a shape"
        if tag == "defer":
            self.reply(from_, "deferred")
            return NoReply(state)
        if tag == "spin":
            while True:
                pass
        if tag == "sleep":
            time.sleep(3600)
        if tag == "os_exit":
            os._exit(request[1])
        if tag == "segfault":
            ctypes.string_at(0)
        if tag == "send_many":
            _, dest, n = request
            for i in range(n):
                self.process.send(dest, ("n", i))
            cast(dest, "cast from worker")
            return Reply("sent", state)
        if tag == "send_after":
            self.process.send_after(0.05, request[1], "later")
            return Reply("armed", state)
        if tag == "arm":
            return Reply("armed", state, request[1])
        if tag == "continue":
            return Reply("later", state, Continue("more"))
        if tag == "exit":
            self.process.exit(request[1], request[2])
            return Reply("sent", state)
        if tag == "link":
            self.process.link(request[1])
            return Reply("linked", state)
        if tag == "lock_type":
            return Reply(type(state).__name__, state)
        if tag == "unpicklable_reply":
            return Reply(threading.Lock(), state)
        if tag == "monitor":
            self.process.monitor(request[1])
            return Reply("monitored", state)
        if tag == "burn":
            return Reply(burn(request[1]), state)
        return super().handle_call(request, from_, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        if request == "spin":
            while True:
                pass
        return NoReply(state + request)

    def handle_info(self, message: Any, state: Any) -> Any:
        if message == TIMEOUT:
            return NoReply(("timed out", state))
        if type(message) is tuple and message[0] == Atom("EXIT"):
            self.process.send(self.report_to, ("got exit", message[2]))
            return NoReply(state)
        return NoReply(state + 100)

    def handle_continue(self, arg: Any, state: Any) -> Any:
        return NoReply(state + (1000 if arg == "more" else 1))

    def terminate(self, reason: Any, state: Any) -> Any:
        if isinstance(self.report_to, Pid):
            self.process.send(self.report_to, ("terminated", reason))
        elif isinstance(self.report_to, str):  # a file: outlives the node's processes
            with open(self.report_to, "a") as fh:
                fh.write(f"terminated {reason}\n")


class AsyncWorker(GenServer):
    """Async callbacks in a worker: awaited on the worker's own event loop."""

    placement = "process"

    async def init(self, args: Any) -> Any:
        import asyncio

        await asyncio.sleep(0)
        return Ok([])

    async def handle_call(self, request: Any, from_: Any, log: Any) -> Any:
        import asyncio

        await asyncio.sleep(0.001)
        if request == "log":
            return Reply(log, log)
        return Reply(request, [*log, request])


def burn(n: int) -> int:
    """A pure-Python CPU-bound loop."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


class Spinner(GenServer):
    """For Erlang callers: ``get``, ``os_pid``; the cast ``spin`` never returns."""

    placement = "process"

    def init(self, start: Any) -> Any:
        return Ok(start)

    def handle_call(self, request: Any, from_: Any, state: Any) -> Any:
        if request == Atom("os_pid"):
            return Reply(os.getpid(), state)
        return Reply(state, state)

    def handle_cast(self, request: Any, state: Any) -> Any:
        while request == Atom("spin"):
            pass
        return NoReply(state)
