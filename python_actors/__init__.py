"""python_actors: an OTP-style actor runtime on asyncio (pids, links, monitors,
GenServer, Supervisor), with no sockets. See ``Runtime`` to begin.

>>> import asyncio
>>> from python_actors import Runtime, GenServer, Ok, Reply
>>> class Hello(GenServer):
...     def handle_call(self, name, from_, state):
...         return Reply(f"hello {name}", state)
>>> async def main():
...     async with Runtime() as rt:
...         pid = await Hello.start(runtime=rt)
...         return await rt.call(pid, "joe")
>>> asyncio.run(main())
'hello joe'
"""

from dist_proto import (
    __version__ as __version__,  # one version for the three packages of beam-bridge
)

from .dynamic_supervisor import DynamicSupervisor
from .errors import (
    ActorError,
    BadArg,
    CallError,
    Exit,
    NotInProcess,
    ReceiveTimeout,
    StartError,
    is_clean_exit,
    reason_of,
)
from .gen_server import (
    HIBERNATE,
    IGNORE,
    Continue,
    GenServer,
    NoReply,
    Ok,
    Reply,
    Stop,
    call,
    cast,
    reply,
    stop,
)
from .handles import HandleTable, StaleHandle, catch_stale_handles, handle_table
from .hot_upgrade import UpgradeError, upgrade_module
from .mailbox import ANY, pattern
from .placement import call_blocking, run_blocking
from .pool import Pool, PoolCallError
from .process import Process, current_process
from .router import Inbound, LocalRouter, Router
from .runtime import Runtime
from .supervisor import (
    ChildInfo,
    ChildSpec,
    Supervisor,
    SupervisorError,
    SupervisorSpec,
    child_spec,
)
from .sys_protocol import SysError

__all__ = [
    "ANY",
    "HIBERNATE",
    "IGNORE",
    "ActorError",
    "BadArg",
    "CallError",
    "ChildInfo",
    "ChildSpec",
    "Continue",
    "DynamicSupervisor",
    "Exit",
    "GenServer",
    "HandleTable",
    "Inbound",
    "LocalRouter",
    "NoReply",
    "NotInProcess",
    "Ok",
    "Pool",
    "PoolCallError",
    "Process",
    "ReceiveTimeout",
    "Reply",
    "Router",
    "Runtime",
    "StartError",
    "Stop",
    "Supervisor",
    "SupervisorError",
    "SupervisorSpec",
    "StaleHandle",
    "SysError",
    "UpgradeError",
    "call",
    "call_blocking",
    "catch_stale_handles",
    "cast",
    "child_spec",
    "current_process",
    "handle_table",
    "is_clean_exit",
    "pattern",
    "reason_of",
    "reply",
    "run_blocking",
    "stop",
    "upgrade_module",
]
