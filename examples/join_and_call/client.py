"""Join a cluster and call an Elixir GenServer (the node of counter.exs).

    python examples/join_and_call/client.py [app@127.0.0.1]
"""

import asyncio
import os
import sys

from bridge import Node
from dist_proto import Atom


async def main(app: str) -> None:
    async with Node("client@127.0.0.1", cookie=os.environ.get("COOKIE", "secret")) as node:
        print("ping:", await node.ping(app))                                 # True (pong)
        print("rpc erlang:node():", await node.rpc(app, "erlang", "node", []))
        counter = ("Elixir.MyApp.Counter", app)                               # {MyApp.Counter, app}
        print("GenServer.call(MyApp.Counter, :get):", await node.call(counter, Atom("get")))
        print("GenServer.call(MyApp.Counter, {:add, 1}):",
              await node.call(counter, (Atom("add"), 1), timeout=5.0))
        await node.send(counter, (Atom("log"), "hello"))                     # handle_info({:log, "hello"})
        print("sent {:log, \"hello\"} to MyApp.Counter")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "app@127.0.0.1"))
