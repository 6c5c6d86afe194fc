"""Two visible Python nodes meet with no BEAM node: both lockers may ask first, the
names registered on each side before they met are merged, and ``global_sync``
returns on both."""

from __future__ import annotations

import asyncio

from dist_proto import Atom
from tests.beam import Epmd
from tests.interop.node_support import py_node


async def test_two_visible_python_nodes_merge_their_names(epmd: Epmd) -> None:
    async with py_node(epmd.port, prefix="pa", hidden=False) as n1, py_node(epmd.port, prefix="pb", hidden=False) as n2:
        async with n1.process() as x, n2.process() as y:
            assert await n1.global_register("x", x.pid)
            assert await n2.global_register(Atom("y"), y.pid)
            assert await n1.ping(n2.name)
            await asyncio.wait_for(n1.global_sync(), 20)
            await asyncio.wait_for(n2.global_sync(), 20)
            assert await n1.global_whereis("y") == y.pid
            assert await n2.global_whereis("x") == x.pid
            assert await n1.global_register("z", x.pid) is False, "one global name per pid"
            await n1.global_unregister("x")
            assert await n2.global_whereis("x") is None
