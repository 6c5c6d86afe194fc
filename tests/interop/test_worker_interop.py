"""A process-placed actor under an Erlang supervisor (OTP 25 and 28): ``brutal_kill``
of one spinning in an infinite loop ends its worker OS process, and the restarted
child runs in a new worker and answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dist_proto import Atom, Pid
from tests.beam import BeamNode, Epmd, Runtime, pid_expr, unique_name
from tests.interop.node_support import ev, eventually, py_node
from tests.interop.test_erl_app import erl_ebin  # noqa: F401  (session fixture)
from tests.python_actors.test_worker_placement import gone, os_alive
from tests.python_actors.worker_actors import Spinner

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def beam(runtime: Runtime, epmd: Epmd, erl_ebin: Path) -> Iterator[BeamNode]:  # noqa: F811
    with BeamNode(runtime, epmd_port=epmd.port, prefix="wk", extra_args=["-pa", str(erl_ebin)]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


async def test_brutal_kill_of_a_spinning_worker_actor(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port, prefix="pyw") as node:
        node.allow_spawn("spinner", Spinner)
        sup = unique_name("wsup")
        await ev(beam, f"{{ok, S}} = beam_bridge_sup:start_link(#{{}}, [beam_bridge:child_spec("
                       f"#{{id => w, node => '{node.name}', actor => spinner, args => 7, shutdown => brutal_kill}})]), "
                       f"register({sup}, S)")
        # the supervisor's child is a local proxy of the Python actor (beam_bridge_proxy)
        child, os_pid = await ev(beam, f"[{{w, P, worker, _}}] = supervisor:which_children({sup}), "
                                       "{beam_bridge:actor(P), gen_server:call(P, os_pid)}")
        assert isinstance(child, Pid) and child.node == node.atom
        assert os_pid != os.getpid() and os_alive(os_pid)

        # stuck for good: the cast never returns and a call times out
        await ev(beam, f"gen_server:cast({sup_child(sup)}, spin)")
        got = await ev(beam, f"catch gen_server:call({sup_child(sup)}, get, 300)")
        assert got[0] == Atom("EXIT") and got[1][0] == Atom("timeout")

        assert await ev(beam, f"supervisor:terminate_child({sup}, w)") == Atom("ok")
        await eventually(lambda: not node.runtime.is_alive(child), what="the actor killed")
        assert await gone(os_pid), "the worker OS process outlived brutal_kill"

        res = await ev(beam, f"{{ok, P2}} = supervisor:restart_child({sup}, w), {{beam_bridge:actor(P2), "
                             "gen_server:call(P2, get), gen_server:call(P2, os_pid)}")
        new_child, value, new_os_pid = res
        assert isinstance(new_child, Pid) and new_child != child and value == 7
        assert new_os_pid != os_pid and os_alive(new_os_pid)
        await ev(beam, f"S = whereis({sup}), unlink(S), exit(S, shutdown)")
        assert await gone(new_os_pid)


def sup_child(sup: str) -> str:
    """An Erlang expression: the pid of child ``w`` of supervisor ``sup``."""
    return f"element(2, hd(supervisor:which_children({sup})))"


async def test_node_stop_ends_every_worker(beam: BeamNode, epmd: Epmd) -> None:
    async with py_node(epmd.port, prefix="pyw") as node:
        node.allow_spawn("spinner", Spinner)
        pid = await ev(beam, f"{{ok, P}} = beam_bridge:start('{node.name}', spinner, 1), P")
        os_pid = await ev(beam, f"gen_server:call({pid_expr(pid)}, os_pid)")
        await ev(beam, f"gen_server:cast({pid_expr(pid)}, spin)")
        assert os_alive(os_pid)
    assert not os_alive(os_pid)  # Node.stop -> Runtime.stop reaped it
