"""Codec options: how Erlang data maps to Python beyond the lossless default.

>>> from dataclasses import dataclass
>>> from dist_proto.etf import decode, encode
>>> from dist_proto.terms import Atom
>>> @dataclass
... class User:
...     name: str
...     age: int = 0
>>> m = Mapping(strings=True, structs={"Elixir.MyApp.User": User})
>>> struct = {Atom("__struct__"): Atom("Elixir.MyApp.User"), Atom("name"): b"Jos\\xc3\\xa9", Atom("age"): 3}
>>> decode(encode(struct), mapping=m)
User(name='José', age=3)
>>> decode(encode(User("José", 3), mapping=m)) == struct
True

A :class:`Mapping` is immutable and hashable; pass it as ``mapping=`` to
:func:`dist_proto.etf.decode` / ``decode_from`` / ``dist_context`` / ``encode`` /
``encode_body`` (both codecs honour it), to ``bridge.Node(mapping=...)`` for every
message a node receives, or per call (``node.call(..., mapping=...)``). The options:

- ``strings``: a binary that is valid UTF-8 decodes as ``str``; any other stays
  ``bytes`` (or a ``memoryview`` with ``zero_copy``). ``str`` always encodes to a
  binary, so a string round-trips to the same binary.
- ``charlists``: a ``STRING_EXT`` (the form BEAM gives a list of integers 0..255
  of length < 65 536, such as ``'José'``) decodes as :class:`~dist_proto.terms.Charlist`,
  a ``str`` that encodes back to the same list. Lists holding code points above 255
  (``~c"日本"``) arrive as ``LIST_EXT`` and stay lists of ``int``: BEAM cannot tell a
  charlist from a list of integers, and neither can we, so only the compact form is
  converted. ``[]`` stays ``[]``.
- ``structs``: ``{module: dataclass}``. A map whose ``__struct__`` is a registered
  module becomes that dataclass, fields by name; a map that does not fit (a key the
  class does not have, a field without a default that is missing, a non-atom key, or
  a constructor that raises) stays the ``dict`` it is by default: nothing is lost and
  a peer adding a field to its struct cannot break decoding. A registered dataclass
  instance encodes as the struct map (every field); an unregistered dataclass cannot
  be encoded (``TypeError``), as without a mapping.

The default ``Mapping()`` is the lossless default mapping; :data:`DEFAULT` is it.
Keyword lists and keyword arguments (:func:`keyword_list`, :func:`split_keywords`)
are decided per call, not by an option: see ``docs/mapping.md``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from collections.abc import Mapping as _AbcMapping
from typing import Any

from .terms import Atom, Term

__all__ = [
    "DEFAULT",
    "STRUCT_KEY",
    "Mapping",
    "keyword_list",
    "keywords_of",
    "split_keywords",
]

#: The key that names an Elixir struct's module.
STRUCT_KEY = Atom("__struct__")


def _module_atom(module: Atom | str) -> Atom:
    if type(module) is Atom:
        return module
    if isinstance(module, str) and module:
        return Atom(module)
    raise TypeError(f"a struct module is an Atom or a non-empty str, not {module!r}")


class Mapping:
    """The codec options (immutable). See the module docstring for each option.

    ``structs`` maps a module (``Atom`` or ``str``, e.g. ``"Elixir.MyApp.User"``)
    to a dataclass; each class may be registered once.
    """

    __slots__ = ("_by_class", "_by_module", "_hash", "charlists", "strings")

    strings: bool
    charlists: bool
    _by_module: dict[Atom, type]
    _by_class: dict[type, tuple[Atom, tuple[str, ...]]]
    _hash: int

    def __init__(
        self,
        *,
        strings: bool = False,
        charlists: bool = False,
        structs: _AbcMapping[Atom | str, type] | Iterable[tuple[Atom | str, type]] | None = None,
    ) -> None:
        by_module: dict[Atom, type] = {}
        by_class: dict[type, tuple[Atom, tuple[str, ...]]] = {}
        items = structs.items() if isinstance(structs, _AbcMapping) else (structs or ())
        for module, cls in items:
            atom = _module_atom(module)
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
                raise TypeError(f"struct {atom.name} must map to a dataclass, not {cls!r}")
            fields = dataclasses.fields(cls)
            for f in fields:
                if not f.init:
                    raise TypeError(f"{cls.__name__}.{f.name} is init=False: a struct field must be settable")
                if f.name == STRUCT_KEY.name:
                    raise TypeError(f"{cls.__name__} has a field named __struct__")
            if cls in by_class:
                raise ValueError(f"{cls.__name__} is registered for two modules")
            by_module[atom] = cls
            by_class[cls] = (atom, tuple(f.name for f in fields))
        object.__setattr__(self, "strings", bool(strings))
        object.__setattr__(self, "charlists", bool(charlists))
        object.__setattr__(self, "_by_module", by_module)
        object.__setattr__(self, "_by_class", by_class)
        object.__setattr__(
            self, "_hash", hash((self.strings, self.charlists, tuple(by_module.items())))
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Mapping is immutable")

    def __repr__(self) -> str:
        parts = [f"{k}=True" for k in ("strings", "charlists") if getattr(self, k)]
        if self._by_module:
            inner = ", ".join(f"{a.name!r}: {c.__name__}" for a, c in self._by_module.items())
            parts.append(f"structs={{{inner}}}")
        return f"Mapping({', '.join(parts)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return (
            self.strings == other.strings
            and self.charlists == other.charlists
            and self._by_module == other._by_module
        )

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.strings, self.charlists, tuple(self._by_module.items())))

    @property
    def structs(self) -> dict[Atom, type]:
        """A copy of the struct registry, ``{module: dataclass}``."""
        return dict(self._by_module)

    @property
    def is_default(self) -> bool:
        """True when decoding and encoding with this mapping is the lossless default."""
        return not (self.strings or self.charlists or self._by_module)

    def replace(self, **changes: Any) -> Mapping:
        """A copy with some options changed (``m.replace(strings=False)``)."""
        options: dict[str, Any] = {
            "strings": self.strings, "charlists": self.charlists, "structs": self._by_module,
        }
        options.update(changes)
        return Mapping(**options)

    # -- hooks the codecs call (only when structs are registered) ---------------------

    @property
    def struct_hook(self) -> Callable[[dict[Any, Any], int], Any] | None:
        """``hook(map, offset)`` -> the dataclass, or the map unchanged; None without structs.

        Both codecs call it for each decoded ``dict`` that has a ``__struct__`` key.
        """
        return self._decode_struct if self._by_module else None

    @property
    def struct_encoder(self) -> Callable[[Any], dict[Any, Any] | None] | None:
        """``encoder(value)`` -> the struct map of a registered dataclass instance, or None.

        Both encoders call it for a value of no built-in Erlang form; None without structs.
        """
        return self._encode_struct if self._by_module else None

    def _decode_struct(self, term: dict[Any, Any], offset: int) -> Any:
        module = term[STRUCT_KEY]
        cls = self._by_module.get(module) if type(module) is Atom else None
        if cls is None:
            return term
        names = self._by_class[cls][1]
        kwargs: dict[str, Any] = {}
        for key, value in term.items():
            if type(key) is not Atom:
                return term
            name = key.name
            if name == "__struct__":
                continue
            if name not in names:
                return term
            kwargs[name] = value
        try:
            return cls(**kwargs)
        except Exception:  # a missing field, or the class refuses the values: keep the map
            return term

    def _encode_struct(self, value: Any) -> dict[Any, Any] | None:
        entry = self._by_class.get(type(value))
        if entry is None:
            return None
        module, names = entry
        out: dict[Any, Any] = {STRUCT_KEY: module}
        for name in names:
            out[Atom(name)] = getattr(value, name)
        return out


def _rebuild(strings: bool, charlists: bool, structs: tuple[tuple[Atom, type], ...]) -> Mapping:
    return Mapping(strings=strings, charlists=charlists, structs=structs)


#: The lossless default mapping.
DEFAULT = Mapping()


# --------------------------------------------------------------------------- keyword lists


def keyword_list(kwargs: _AbcMapping[str, Term]) -> list[tuple[Atom, Term]]:
    """A keyword list (``[timeout: 5]``) from keyword arguments.

    >>> keyword_list({"timeout": 5})
    [(Atom('timeout'), 5)]
    """
    return [(Atom(k), v) for k, v in kwargs.items()]


def keywords_of(term: Any) -> dict[str, Any] | None:
    """The keyword arguments a proper, non-empty keyword list stands for, else None.

    A keyword list is a list of 2-tuples whose first elements are atoms naming valid
    Python identifiers, each at most once.

    >>> keywords_of([(Atom("timeout"), 5)])
    {'timeout': 5}
    >>> keywords_of([(Atom("a"), 1), (Atom("a"), 2)]) is None
    True
    """
    if type(term) is not list or not term:
        return None
    out: dict[str, Any] = {}
    for item in term:
        if type(item) is not tuple or len(item) != 2 or type(item[0]) is not Atom:
            return None
        name = item[0].name
        if not name.isidentifier() or name in out:
            return None
        out[name] = item[1]
    return out


def split_keywords(fn: Callable[..., Any], args: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments to call ``fn`` with for the Erlang ``args``.

    The last argument becomes keyword arguments only when all of these hold:
    it is a proper keyword list (:func:`keywords_of`); ``fn`` takes ``**kwargs`` or
    every key names one of its keyword-only parameters (after ``*``); and the call
    binds that way (``inspect.signature(fn).bind(*args[:-1], **kw)``). Otherwise
    the list is passed as it is, so a function that takes a genuine list of tuples
    keeps it.

    >>> def f(x, *, timeout=1): return x, timeout
    >>> split_keywords(f, [1, [(Atom("timeout"), 5)]])
    ([1], {'timeout': 5})
    >>> def g(x, pairs): return pairs
    >>> split_keywords(g, [1, [(Atom("timeout"), 5)]])
    ([1, [(Atom('timeout'), 5)]], {})
    """
    if not args:
        return args, {}
    kw = keywords_of(args[-1])
    if kw is None:
        return args, {}
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return args, {}
    params = sig.parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for name in kw:
            p = params.get(name)
            if p is None or p.kind is not p.KEYWORD_ONLY:
                return args, {}
    positional = args[:-1]
    try:
        sig.bind(*positional, **kw)
    except TypeError:
        return args, {}
    return positional, kw
