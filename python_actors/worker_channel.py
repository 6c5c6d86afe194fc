"""The channel between a node and one of its worker OS processes.

Both ends are this package, so a frame is a pickled tuple ``(kind, *fields)``
behind a 4-byte big-endian length. The node writes to the worker's stdin and reads
its stdout (the worker moves its own ``print`` output to stderr first, see
:mod:`python_actors.worker_main`).

Node to worker: ``preload`` (modules a spare imports while idle), ``init``, ``msg`` (a pickled message, unpickled by the worker so
a message it cannot load is dropped on its side, not a broken stream),
``timeout``, ``continue``, ``stop``. Worker to node: ``ready``, ``preloaded``, the effects of a
callback in the order it made them (``send``, ``reply``, ``exit2``, ``link``,
``unlink``, ``trap``, ``arm``), the outcome of ``init`` (``init_ok``,
``init_ignore``, ``init_stop``, ``init_crash``), ``exit`` and ``done``.

>>> frame = pack(("msg", b"x"))
>>> len(frame) - HEADER.size == HEADER.unpack(frame[:4])[0]
True
"""

from __future__ import annotations

import asyncio
import os
import pickle
import struct
from typing import Any

__all__ = ["HEADER", "MAX_FRAME", "ChannelError", "pack", "read_frame", "write_frame_blocking"]

HEADER = struct.Struct(">I")
#: a larger length from the other end is a broken worker, not a big message
MAX_FRAME = 1 << 30

# frame kinds, node -> worker
INIT = "init"
MSG = "msg"
TIMEOUT = "timeout"
CONTINUE = "continue"
STOP = "stop"
PRELOAD = "preload"
# worker -> node
READY = "ready"
PRELOADED = "preloaded"
SEND = "send"
REPLY = "reply"
EXIT2 = "exit2"
LINK = "link"
UNLINK = "unlink"
TRAP = "trap"
ARM = "arm"
INIT_OK = "init_ok"
INIT_IGNORE = "init_ignore"
INIT_STOP = "init_stop"
INIT_CRASH = "init_crash"
EXIT = "exit"
DONE = "done"


class ChannelError(Exception):
    """The other end broke the framing (a length over :data:`MAX_FRAME`, bad pickle)."""


def pack(frame: tuple[Any, ...]) -> bytes:
    """One frame as bytes; raises (``pickle.PicklingError``, ``TypeError``...) before
    anything is written if a field cannot be pickled."""
    body = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > MAX_FRAME:
        raise ChannelError(f"frame of {len(body)} bytes is over the limit of {MAX_FRAME}")
    return HEADER.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next frame, or None at end of stream (also mid-frame: the peer is gone)."""
    try:
        head = await reader.readexactly(HEADER.size)
        (size,) = HEADER.unpack(head)
        if size > MAX_FRAME:
            raise ChannelError(f"frame length {size} over the limit of {MAX_FRAME}")
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    try:
        frame = pickle.loads(body)
    except Exception as exc:
        raise ChannelError(f"undecodable frame: {exc!r}") from exc
    if type(frame) is not tuple or not frame or type(frame[0]) is not str:
        raise ChannelError(f"not a frame: {type(frame).__name__}")
    return frame


def write_frame_blocking(fd: int, data: bytes) -> None:
    """Write a packed frame to a blocking file descriptor (the worker's side)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
