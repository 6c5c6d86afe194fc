"""Blocking code in actors: a plain handler blocks only its own actor, and kill takes
effect at once (README, Quick start 3). Run: python examples/blocking/blocking.py"""

import asyncio
import time

from dist_proto import Atom
from python_actors import CallError, GenServer, Reply, Runtime, call, run_blocking


class Slow(GenServer):
    def handle_call(self, seconds, from_, state):     # a plain def: runs on a thread
        time.sleep(seconds)                             # blocks that thread only
        return Reply("done", state)


class Quick(GenServer):
    async def handle_call(self, n, from_, state):     # an async def runs on the loop...
        total = await run_blocking(sum, range(n))      # ...and one blocking call off it
        return Reply(total, state)


async def main():
    async with Runtime() as rt:
        slow = await Slow.start(runtime=rt)
        quick = await Quick.start(runtime=rt)
        stuck = asyncio.ensure_future(call(slow, 30, None, runtime=rt))
        await asyncio.sleep(0.1)
        print(await call(quick, 1000, runtime=rt))     # 499500, while Slow sleeps
        rt.exit(slow, Atom("kill"))                     # takes effect at once
        print(rt.is_alive(slow))                        # False
        try:
            await stuck
        except CallError as exc:
            print(exc.why)                              # killed


asyncio.run(main())
