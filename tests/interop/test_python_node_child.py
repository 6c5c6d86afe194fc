"""A whole Python node under an Erlang supervisor (beam_bridge_node), OTP 25 and 28.

The mixed tree: an Erlang rest_for_one supervisor owns the Python node process and,
after it, a Python actor on that node. Killing the Python node (kill -9) makes the
actor fail with noconnection; the supervisor restarts the node, then the actor.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dist_proto import Atom, Pid
from tests.beam import REPO_ROOT, BeamNode, Epmd, Runtime, pid_expr, unique_name
from tests.interop.test_erl_app import erl_ebin  # noqa: F401  (session fixture)

pytestmark = pytest.mark.interop

FIXTURE = REPO_ROOT / "tests" / "interop" / "fixtures" / "py_actors.py"


@pytest.fixture
def beam(runtime: Runtime, epmd: Epmd, erl_ebin: Path) -> Iterator[BeamNode]:  # noqa: F811
    with BeamNode(runtime, epmd_port=epmd.port, prefix="own", extra_args=["-pa", str(erl_ebin)]) as node:
        node.eval("process_flag(trap_exit, true)")
        yield node


def _os_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_python_node_restarts_under_erlang_supervisor(beam: BeamNode, sig: signal.Signals) -> None:
    """The node's death costs the tree ONE restart: with intensity 1 the supervisor
    survives (a second restart in the period would take it down)."""
    py = f"{unique_name('pyn')}@127.0.0.1"
    opts = (f"#{{name => '{py}', module => \"{FIXTURE}\", python => \"{sys.executable}\", "
            f"cd => \"{REPO_ROOT}\", stop_timeout => 3000}}")
    beam.eval(f"{{ok, Sup}} = beam_bridge_sup:start_link(#{{strategy => rest_for_one, intensity => 1, period => 60}}, "
              f"[beam_bridge_node:child_spec({opts}), "
              f"beam_bridge:child_spec(#{{id => counter, node => '{py}', actor => counter, args => 3}})]), "
              "SupRef = monitor(process, Sup)", timeout=60)
    kids = beam.eval_term("supervisor:which_children(Sup)")
    node_pid = next(k[1] for k in kids if k[0] == (Atom("python_node"), Atom(py)))
    counter = next(k[1] for k in kids if k[0] == Atom("counter"))
    assert isinstance(counter, Pid)
    assert beam.eval_term(f"node(beam_bridge:actor({pid_expr(counter)}))") == Atom(py)
    assert beam.eval_term("[{counter, C1, _, _} | _] = supervisor:which_children(Sup), gen_server:call(C1, get)") == 3
    os_pid = beam.eval_term(f"beam_bridge_node:os_pid({pid_expr(node_pid)})")
    assert isinstance(os_pid, int) and _os_alive(os_pid)

    os.kill(os_pid, sig)

    restarted = None
    for _ in range(300):
        kids = beam.eval_term("case is_process_alive(Sup) of true -> supervisor:which_children(Sup); false -> dead end")
        assert kids != Atom("dead"), beam.eval_term("receive {'DOWN', SupRef, _, _, R} -> R after 0 -> none end")
        c = next(k[1] for k in kids if k[0] == Atom("counter"))
        if isinstance(c, Pid) and c != counter:
            restarted = c
            break
        asyncio.run(asyncio.sleep(0.1))
    assert restarted is not None, "the counter was not restarted on a new Python node"
    assert beam.eval_term("[{counter, C2, _, _} | _] = supervisor:which_children(Sup), gen_server:call(C2, get)") == 3
    new_os_pid = beam.eval_term("[_, {_, NP, _, _}] = supervisor:which_children(Sup), beam_bridge_node:os_pid(NP)")
    assert new_os_pid != os_pid and _os_alive(new_os_pid)
    # Every supervisor function works on the restarted tree (its children are local).
    counts = beam.eval_term("supervisor:count_children(Sup)")
    assert dict((k.name, v) for k, v in counts) == {"specs": 2, "active": 2, "supervisors": 0, "workers": 2}
    # Nothing is still on its way: the supervisor is alive after the dust settles.
    asyncio.run(asyncio.sleep(1.0))
    assert beam.eval_term("is_process_alive(Sup)") is True

    # Stopping the tree stops the Python node process: no orphan.
    beam.eval("demonitor(SupRef, [flush]), unlink(Sup), exit(Sup, shutdown), timer:sleep(100)")
    for _ in range(100):
        if not _os_alive(new_os_pid):
            break
        asyncio.run(asyncio.sleep(0.1))
    assert not _os_alive(new_os_pid)
