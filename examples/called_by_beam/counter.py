"""Be called by BEAM: a Python GenServer that Elixir and Erlang call, and a function
they may rpc.

    python examples/called_by_beam/counter.py            # node py@127.0.0.1, cookie "secret"

then, from any node of the cluster with the same cookie, see call_python.exs (Elixir)
or call_python.escript (Erlang).
"""

import asyncio
import os

from bridge import Node
from python_actors import GenServer, NoReply, Ok, Reply


class Counter(GenServer):
    def init(self, start):
        return Ok(start)

    def handle_call(self, request, from_, n):   # any request: reply with the count
        return Reply(n, n)

    def handle_cast(self, by, n):               # a number: add it
        return NoReply(n + by)


async def main() -> None:
    name = os.environ.get("PY_NODE", "py@127.0.0.1")
    async with Node(name, cookie=os.environ.get("COOKIE", "secret")) as node:
        await Counter.start(0, runtime=node.runtime, name="py_counter")
        node.allow_rpc("pymath", "add", lambda a, b: a + b)   # rpc:call(Py, pymath, add, [A, B])
        print(f"{node.name} is up: py_counter and pymath:add/2 are served", flush=True)
        await node.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
