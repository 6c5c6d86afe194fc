"""``Node(mapping=...)``: the codec options a node decodes with (docs/mapping.md)."""

from __future__ import annotations

import pytest

from bridge import Node
from dist_proto import Mapping


def test_a_node_keeps_its_mapping() -> None:
    m = Mapping(strings=True)
    assert Node("py@127.0.0.1", mapping=m).mapping == m
    assert Node("py@127.0.0.1").mapping is None


def test_a_node_refuses_a_mapping_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="Mapping"):
        Node("py@127.0.0.1", mapping={"strings": True})  # type: ignore[arg-type]
