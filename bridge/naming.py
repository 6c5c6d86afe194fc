"""Node names: ``alive@host``, short and long names as ``net_kernel`` understands them.

>>> parse_node_name("py@127.0.0.1")
NodeName(alive='py', host='127.0.0.1')
>>> parse_node_name("py@127.0.0.1").is_long
True
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any

from dist_proto.terms import Atom

from .errors import BridgeError

__all__ = ["NodeName", "NodeNameError", "as_atom", "parse_node_name"]


class NodeNameError(BridgeError, ValueError):
    """A node name that is not ``alive@host`` with both parts non-empty."""


@dataclass(frozen=True)
class NodeName:
    """A parsed node name."""

    alive: str
    host: str

    def __str__(self) -> str:
        return f"{self.alive}@{self.host}"

    @property
    def is_long(self) -> bool:
        """Long names (``-name``) have a dotted host or an IP address; short ones (``-sname``) do not."""
        if "." in self.host:
            return True
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def resolve(self) -> str:
        """The IP address the host part names (what the node listens on)."""
        try:
            return str(ipaddress.ip_address(self.host))
        except ValueError:
            pass
        infos = socket.getaddrinfo(self.host, None, socket.AF_INET, socket.SOCK_STREAM)
        if not infos:
            raise NodeNameError(f"cannot resolve host {self.host!r}")
        return str(infos[0][4][0])


def parse_node_name(name: str, *, default_host: str | None = None) -> NodeName:
    """Split ``alive@host``; a bare ``alive`` takes ``default_host`` (or this host's short name)."""
    if not isinstance(name, str):
        name = str(name)
    if name.count("@") > 1:
        raise NodeNameError(f"node name {name!r} has more than one '@'")
    alive, sep, host = name.partition("@")
    if not sep:
        host = default_host or socket.gethostname().split(".", 1)[0]
    if not alive or not host:
        raise NodeNameError(f"node name {name!r} must be alive@host with both parts non-empty")
    if len(alive) > 255 or "\x00" in name:
        raise NodeNameError(f"node name {name!r} is not a valid atom")
    return NodeName(alive, host)


def as_atom(x: Any) -> Atom:
    """An :class:`Atom` as given, or made from a string (node, module and process names)."""
    return x if type(x) is Atom else Atom(str(x))
