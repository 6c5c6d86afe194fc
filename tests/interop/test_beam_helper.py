"""The test harness itself: both runtimes start, evaluate and stop."""

from __future__ import annotations

import os

import pytest

from tests.beam import BeamError, BeamNode


def test_eval_returns_term_to_binary(beam: BeamNode) -> None:
    assert beam.eval("1 + 2") == b"\x83a\x03"


def test_bindings_persist(beam: BeamNode) -> None:
    beam.eval("X = 21")
    assert beam.eval("X * 2.") == b"\x83a\x2a"


def test_errors_are_raised(beam: BeamNode) -> None:
    with pytest.raises(BeamError):
        beam.eval("erlang:error(boom)")


def test_runtime_major(beam: BeamNode, runtime) -> None:  # type: ignore[no-untyped-def]
    release = beam.eval("list_to_integer(erlang:system_info(otp_release))")
    assert release == bytes([131, 97, runtime.major])


def test_node_is_distributed_and_stopped_by_pid(runtime, epmd) -> None:  # type: ignore[no-untyped-def]
    node = BeamNode(runtime, epmd_port=epmd.port)
    try:
        name = node.eval("atom_to_binary(node(), utf8)")
        assert node.name.encode() in name
        assert node.eval("list_to_integer(os:getpid())") == node.eval(f"{node.pid}")
    finally:
        node.stop()
    assert node.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(node.pid, 0)


def test_elixir_node(epmd) -> None:  # type: ignore[no-untyped-def]
    from tests.beam import runtime

    with BeamNode(runtime("otp25"), epmd_port=epmd.port, elixir=True) as node:
        assert node.eval("'Elixir.String':upcase(<<\"abc\">>)") == b"\x83m\x00\x00\x00\x03ABC"
