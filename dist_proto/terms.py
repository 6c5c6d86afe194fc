"""Python types for Erlang terms that have no native Python counterpart.

The mapping (see the README table) is:

==========================  ===============================================
Erlang                      Python
==========================  ===============================================
atom ``ok``                 :class:`Atom` (``Atom("ok")``), never a ``str``
``true`` / ``false``        ``True`` / ``False``
``undefined``               ``None``
integer                     ``int``
float                       ``float`` (finite only)
binary                      ``bytes`` (``str`` encodes to a UTF-8 binary;
                            ``str`` with ``Mapping(strings=True)``, see
                            :mod:`dist_proto.mapping` for structs too)
bitstring                   :class:`BitString`
tuple                       ``tuple``
proper list, charlist       ``list`` (a charlist is a list of ``int``;
                            :class:`Charlist` with ``Mapping(charlists=True)``)
improper list               :class:`ImproperList`
map                         ``dict``, or :class:`TermMap` when Python would
                            merge or cannot hash its keys
pid / reference / port      :class:`Pid` / :class:`Reference` / :class:`Port`
``fun M:F/A``               :class:`ExportFun`
local fun                   :class:`Fun` (opaque, re-emitted byte-exact)
==========================  ===============================================

Every type here is immutable and hashable (as long as its contents are).

>>> Atom("ok") == Atom("ok"), Atom("ok") == "ok"
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "Atom",
    "BitString",
    "Charlist",
    "ExportFun",
    "Fun",
    "ImproperList",
    "Pid",
    "Port",
    "Reference",
    "Term",
    "TermMap",
    "exact_key",
]

#: Any value the codec produces or accepts.
Term = Any


class Atom:
    """An Erlang atom. Compares equal only to another atom with the same name.

    >>> Atom("ok")
    Atom('ok')
    >>> str(Atom("ok"))
    'ok'
    """

    __slots__ = ("name", "_hash", "_ext")

    name: str
    _hash: int
    _ext: bytes | None

    def __init__(self, name: str) -> None:
        if type(name) is not str:
            raise TypeError(f"atom name must be str, not {type(name).__name__}")
        _set_atom_name(self, name)
        _set_atom_hash(self, hash(name) ^ _ATOM_SALT)
        _set_atom_ext(self, None)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("Atom is immutable")

    def __eq__(self, other: object) -> bool:
        return self is other or (type(other) is Atom and other.name == self.name)

    def __ne__(self, other: object) -> bool:
        return not (self is other or (type(other) is Atom and other.name == self.name))

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"Atom({self.name!r})"

    def __str__(self) -> str:
        return self.name

    def __reduce__(self) -> tuple[type[Atom], tuple[str]]:
        return (Atom, (self.name,))


# Slot setters that bypass Atom.__setattr__ (which forbids mutation). ``_ext``
# caches the atom's encoded form (filled in by the ETF codec, never compared).
_ATOM_SALT = 0x5BD1E995
_set_atom_name = Atom.__dict__["name"].__set__
_set_atom_hash = Atom.__dict__["_hash"].__set__
_set_atom_ext = Atom.__dict__["_ext"].__set__


class _Frozen:
    """Base of the small immutable record types below (slots, value equality)."""

    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, s) for s in self.__slots__)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key() == self._key()  # type: ignore[attr-defined,unused-ignore]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        args = ", ".join(f"{s}={getattr(self, s)!r}" for s in self.__slots__ if s[0] != "_")
        return f"{type(self).__name__}({args})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (type(self), self._key())


class Pid(_Frozen):
    """An Erlang pid: ``<node.id.serial>`` plus the node's creation.

    ID and serial are 32-bit values on OTP 26+ (``V4_NC``); treat them as opaque.
    """

    __slots__ = ("node", "id", "serial", "creation")

    node: Atom
    id: int
    serial: int
    creation: int

    def __init__(self, node: Atom, id: int, serial: int = 0, creation: int = 0) -> None:
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "serial", serial)
        object.__setattr__(self, "creation", creation)

    def _key(self) -> tuple[Any, ...]:
        return (self.node, self.id, self.serial, self.creation)

    def __eq__(self, other: object) -> bool:
        # spelled out: pids are compared on every call reply and link/monitor lookup
        return self is other or (
            type(other) is Pid
            and self.id == other.id
            and self.serial == other.serial
            and self.creation == other.creation
            and self.node == other.node
        )

    def __hash__(self) -> int:
        return hash(("Pid", (self.node, self.id, self.serial, self.creation)))

    def __str__(self) -> str:
        return f"<{self.node.name}.{self.id}.{self.serial}>"


class Port(_Frozen):
    """An Erlang port: node, id (up to 64 bits on OTP 26+) and creation."""

    __slots__ = ("node", "id", "creation")

    node: Atom
    id: int
    creation: int

    def __init__(self, node: Atom, id: int, creation: int = 0) -> None:
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "creation", creation)

    def _key(self) -> tuple[Any, ...]:
        return (self.node, self.id, self.creation)

    def __str__(self) -> str:
        return f"#Port<{self.node.name}.{self.id}>"


class Reference(_Frozen):
    """An Erlang reference: node, creation and 1 to 5 opaque 32-bit ID words."""

    # _hash: filled in by the first __hash__ (references are dict keys in the monitor,
    # alias and call tables; the C codec builds them without it)
    __slots__ = ("node", "creation", "ids", "_hash")

    node: Atom
    creation: int
    ids: tuple[int, ...]
    _hash: int

    def __init__(self, node: Atom, creation: int, ids: tuple[int, ...]) -> None:
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "creation", creation)
        object.__setattr__(self, "ids", tuple(ids))

    def _key(self) -> tuple[Any, ...]:
        return (self.node, self.creation, self.ids)

    def __eq__(self, other: object) -> bool:
        # spelled out: a call's reply tag is compared with every message it sees
        return self is other or (
            type(other) is Reference
            and self.ids == other.ids
            and self.creation == other.creation
            and self.node == other.node
        )

    def __hash__(self) -> int:
        try:
            return self._hash
        except AttributeError:
            h = hash(("Reference", (self.node, self.creation, self.ids)))
            object.__setattr__(self, "_hash", h)
            return h

    def __str__(self) -> str:
        return "#Ref<" + self.node.name + "." + ".".join(str(i) for i in reversed(self.ids)) + ">"


class ExportFun(_Frozen):
    """``fun Module:Function/Arity`` (``EXPORT_EXT``)."""

    __slots__ = ("module", "function", "arity")

    module: Atom
    function: Atom
    arity: int

    def __init__(self, module: Atom, function: Atom, arity: int) -> None:
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "arity", arity)


class Fun(_Frozen):
    """A local fun (``NEW_FUN_EXT``), kept opaque.

    ``data`` is the whole encoded fun starting at its tag byte (112); encoding a
    :class:`Fun` emits those bytes unchanged. The decoded fields are exposed for
    inspection only.
    """

    __slots__ = ("data", "module", "arity", "index", "uniq", "free_vars")

    data: bytes
    module: Atom
    arity: int
    index: int
    uniq: bytes
    free_vars: tuple[Any, ...]

    def __init__(
        self,
        data: bytes,
        module: Atom,
        arity: int,
        index: int,
        uniq: bytes,
        free_vars: tuple[Any, ...] = (),
    ) -> None:
        object.__setattr__(self, "data", bytes(data))
        object.__setattr__(self, "module", module)
        object.__setattr__(self, "arity", arity)
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "uniq", bytes(uniq))
        object.__setattr__(self, "free_vars", tuple(free_vars))

    def _key(self) -> tuple[Any, ...]:
        return (self.data,)

    def __repr__(self) -> str:
        return f"Fun(module={self.module!r}, arity={self.arity}, index={self.index})"


class BitString(_Frozen):
    """A bitstring whose length is not a multiple of 8.

    ``data`` holds the bytes; ``bits`` (1..8) is how many high bits of the last
    byte belong to the value. Unused low bits are zeroed on construction.

    >>> BitString(b"\\xff", 3)
    BitString(data=b'\\xe0', bits=3)
    """

    __slots__ = ("data", "bits")

    data: bytes
    bits: int

    def __init__(self, data: bytes, bits: int) -> None:
        data = bytes(data)
        if not data:
            raise ValueError("BitString needs at least one byte")
        if not 1 <= bits <= 8:
            raise ValueError(f"BitString bits must be 1..8, got {bits}")
        if bits != 8:
            mask = (0xFF << (8 - bits)) & 0xFF
            last = data[-1] & mask
            if last != data[-1]:
                data = data[:-1] + bytes((last,))
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "bits", bits)

    @property
    def bit_size(self) -> int:
        """Total length in bits (``bit_size/1``)."""
        return (len(self.data) - 1) * 8 + self.bits


class Charlist(str):
    """A charlist (``~c"abc"`` in Elixir, ``"abc"`` in Erlang) decoded as text.

    Decoding with ``Mapping(charlists=True)`` (:mod:`dist_proto.mapping`) turns a
    ``STRING_EXT`` into a ``Charlist``; it is a ``str`` (it compares, hashes and
    prints like one) that encodes back to the same charlist, where a plain ``str``
    encodes to a binary.

    >>> from dist_proto.etf import encode
    >>> encode(Charlist("ab")) == encode([97, 98])
    True
    >>> Charlist("ab") == "ab"
    True
    """

    __slots__ = ()

    def code_points(self) -> list[int]:
        """The list of integers BEAM holds for this charlist."""
        return [ord(c) for c in self]


class ImproperList(_Frozen):
    """A list whose tail is not ``[]``: ``[a, b | tail]``.

    >>> ImproperList((1, 2), Atom("t"))
    ImproperList(items=(1, 2), tail=Atom('t'))
    """

    __slots__ = ("items", "tail")

    items: tuple[Any, ...]
    tail: Any

    def __init__(self, items: Any, tail: Any) -> None:
        items = tuple(items)
        if not items:
            raise ValueError("an improper list needs at least one element")
        if type(tail) is list:
            raise ValueError("the tail of an ImproperList must not be a list")
        object.__setattr__(self, "items", items)
        object.__setattr__(self, "tail", tail)

    def _key(self) -> tuple[Any, ...]:
        return (self.items, self.tail)

    def __eq__(self, other: object) -> bool:
        # spelled out: a gen:call's reply tag [alias | Mref] is compared with every reply
        return self is other or (
            type(other) is ImproperList and self.tail == other.tail and self.items == other.items
        )

    __hash__ = _Frozen.__hash__


def exact_key(term: Any) -> Any:
    """Return a hashable key that is equal for two terms exactly when they are ``=:=``.

    Python merges ``1``, ``1.0`` and ``True`` as dict keys and cannot hash lists or
    dicts; this key keeps every Erlang-distinct term distinct, and gives the same key
    to Python values that encode to the same term (``True`` and ``Atom("true")``,
    ``None`` and ``Atom("undefined")``, ``str`` and its UTF-8 ``bytes``, ``[1 | [2]]``
    written as an :class:`ImproperList` and ``[1, 2]``). Iterative, so any depth works.

    >>> exact_key(1) == exact_key(1.0), exact_key(True) == exact_key(Atom("true"))
    (False, True)
    """
    t = type(term)
    if t is Atom:
        return ("a", term.name)
    if t is int:
        return ("i", term)
    if t is bytes:
        return ("y", term)
    if t is float:
        return ("f", term.hex())  # keeps 0.0 and -0.0 apart
    # General case: post-order iterative conversion.
    out: list[Any] = []
    stack: list[Any] = [term]
    while stack:
        node = stack.pop()
        nt = type(node)
        if nt is _Build:
            kind, n = node.kind, node.n
            children = tuple(out[len(out) - n :]) if n else ()
            if n:
                del out[len(out) - n :]
            if kind == "m":
                out.append(("m", frozenset(zip(children[::2], children[1::2], strict=True))))
            else:
                out.append((kind, children))
        elif nt is Atom:
            out.append(("a", node.name))
        elif nt is int:
            out.append(("i", node))
        elif nt is float:
            out.append(("f", node.hex()))
        elif nt is bool:
            out.append(("a", "true" if node else "false"))
        elif node is None:
            out.append(("a", "undefined"))
        elif nt is bytes:
            out.append(("y", node))
        elif nt is str:
            out.append(("y", node.encode("utf-8", "surrogatepass")))
        elif nt is bytearray or nt is memoryview:
            out.append(("y", bytes(node)))
        elif nt is tuple:
            stack.append(_Build("t", len(node)))
            stack.extend(reversed(node))
        elif nt is list or nt is ImproperList:
            # flatten [a | [b | T]] so every spelling of one list gets one key
            items: list[Any] = []
            tail: Any = node
            while True:
                if type(tail) is list:
                    items.extend(tail)
                    tail = None
                    break
                if type(tail) is ImproperList:
                    items.extend(tail.items)
                    tail = tail.tail
                    continue
                break
            if tail is None:
                stack.append(_Build("l", len(items)))
            else:
                stack.append(_Build("il", len(items) + 1))
                stack.append(tail)
            stack.extend(reversed(items))
        elif nt is dict or nt is TermMap:
            pairs = list(node.items())
            stack.append(_Build("m", len(pairs) * 2))
            for k, v in reversed(pairs):
                stack.append(v)
                stack.append(k)
        elif isinstance(node, int):  # int subclasses other than bool
            out.append(("i", int(node)))
        elif isinstance(node, float):
            out.append(("f", float(node).hex()))
        else:
            out.append((nt.__name__, node))
    return out[0]


class _Build:
    """A marker on :func:`exact_key`'s stack: combine the last ``n`` keys."""

    __slots__ = ("kind", "n")

    def __init__(self, kind: str, n: int) -> None:
        self.kind = kind
        self.n = n


class TermMap(Mapping[Any, Any]):
    """An Erlang map that a Python ``dict`` cannot hold losslessly.

    The decoder returns a plain ``dict`` whenever it can; it returns a
    ``TermMap`` when two keys are equal in Python but distinct in Erlang
    (``#{1 => a, 1.0 => b}``, ``0.0`` and ``-0.0``) or when a key is not hashable
    in Python (a list or a map). Lookups use Erlang's exact equality (``=:=``).

    >>> m = TermMap([(1, Atom("a")), (1.0, Atom("b"))])
    >>> m[1.0]
    Atom('b')
    """

    __slots__ = ("_pairs", "_index")

    def __init__(self, pairs: Any = ()) -> None:
        if isinstance(pairs, Mapping):
            pairs = pairs.items()
        index: dict[Any, int] = {}
        kept: list[tuple[Any, Any]] = []
        for k, v in pairs:
            ek = exact_key(k)
            if ek in index:
                kept[index[ek]] = (k, v)
            else:
                index[ek] = len(kept)
                kept.append((k, v))
        self._pairs: tuple[tuple[Any, Any], ...] = tuple(kept)
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        return self._pairs[self._index[exact_key(key)]][1]

    def __iter__(self) -> Iterator[Any]:
        return (k for k, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, key: object) -> bool:
        return exact_key(key) in self._index

    def items(self) -> Any:
        """The ``(key, value)`` pairs, in decode order."""
        return list(self._pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (TermMap, dict)):
            return len(self) == len(other) and exact_key(self) == exact_key(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(exact_key(self))

    def __repr__(self) -> str:
        return "TermMap([" + ", ".join(f"({k!r}, {v!r})" for k, v in self._pairs) + "])"
