"""Resolving ``{global, Name}`` and ``{via, Module, Name}`` call targets (``gen:where/1``).

A visible node looks ``{global, Name}`` up in its own ``global_name_server``
(:mod:`bridge.global_server`). A hidden node has none, so these names are resolved by
asking a BEAM node (``global:whereis_name/1`` or ``Module:whereis_name/1`` over rpc), as
docs/protocol.md §7.4 recommends; the call then goes to the pid found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dist_proto.terms import Atom, Pid

if TYPE_CHECKING:
    from .node import Node

__all__ = ["is_global_or_via", "resolve_name"]

_GLOBAL = Atom("global")
_VIA = Atom("via")


def is_global_or_via(dest: Any) -> bool:
    """``{global, Name}`` or ``{via, Module, Name}`` (atoms or strings for the tags)."""
    if type(dest) is not tuple or not dest:
        return False
    tag = Atom(dest[0]) if type(dest[0]) is str else dest[0]
    return (tag == _GLOBAL and len(dest) == 2) or (tag == _VIA and len(dest) == 3)


async def resolve_name(node: Node, dest: tuple[Any, ...], via: str | Atom | None, timeout: float | None) -> Pid | None:
    """The pid registered under a global or via name, or None (``undefined``)."""
    tag = Atom(dest[0]) if type(dest[0]) is str else dest[0]
    service = node.global_service
    if tag == _GLOBAL and service is not None and via is None:
        # a visible node has its own global_name_server: look the name up here
        return service.where(dest[1])
    ask = via
    if ask is None:
        connected = node.nodes()
        if len(connected) != 1:
            raise ValueError(
                "resolving a global/via name needs via='node@host' (a BEAM node to ask) "
                f"when connected to {len(connected)} nodes"
            )
        ask = connected[0]
    if tag == _GLOBAL:
        found = await node.rpc(ask, "global", "whereis_name", [dest[1]], timeout=timeout)
    else:
        module = dest[1] if type(dest[1]) is Atom else Atom(str(dest[1]))
        found = await node.rpc(ask, module, "whereis_name", [dest[2]], timeout=timeout)
    return found if type(found) is Pid else None
