"""Handles: a Python model that BEAM holds by reference (see predict.exs).

    python examples/handles/models.py            # node py@127.0.0.1, cookie "secret"

``{:fit, xs, ys, degree}`` fits a numpy polynomial and replies ``{:ok, handle}``: the
model stays in Python, Elixir holds ``{:"$py_handle", ref, "numpy.polynomial..."}``.
``{:predict, handle, x}`` evaluates it; ``{:predict_many, handle, xs}`` replies a numpy
array, which arrives as ``{:"$nd", {:f, 64}, {n}, binary}``. The model is freed when
the Elixir process that fitted it exits or calls ``BeamBridge.release(handle)``.
Needs numpy (``pip install 'beam-bridge[arrays]'``).
"""

import asyncio
import os

import numpy as np

from bridge import Node
from dist_proto import Atom
from python_actors import GenServer, Reply
from python_actors.handles import catch_stale_handles, handle_table


class Models(GenServer):
    @catch_stale_handles            # a released model replies {:error, {:stale_handle, h}}
    def handle_call(self, request, from_, state):
        table = handle_table(self.runtime)
        match request:
            case (tag, xs, ys, degree) if tag.name == "fit":
                model = np.polynomial.Polynomial.fit(xs, ys, degree)
                return Reply((Atom("ok"), table.new(model, holder=from_)), state)  # from_: the caller holds it
            case (tag, handle, xs) if tag.name == "predict_many":
                return Reply(table.resolve(handle)(np.asarray(xs, dtype=np.float64)), state)
            case (tag, handle, x) if tag.name == "predict":
                return Reply(float(table.resolve(handle)(x)), state)
        return Reply((Atom("error"), Atom("unknown_request")), state)


async def main() -> None:
    name = os.environ.get("PY_NODE", "py@127.0.0.1")
    async with Node(name, cookie=os.environ.get("COOKIE", "secret")) as node:
        await Models.start(runtime=node.runtime, name="py_models")
        print(f"{node.name} is up: py_models serves fit/predict", flush=True)
        await node.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
