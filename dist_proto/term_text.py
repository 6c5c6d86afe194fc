"""Read and write Erlang terms as text (the syntax of ``erl_parse:parse_term/1``).

>>> from dist_proto.term_text import format_term, parse_term
>>> from dist_proto.terms import Atom
>>> parse_term('[1, {a, <<"b">>}, "hi", #{k => 1.5}].')
[1, (Atom('a'), b'b'), [104, 105], {Atom('k'): 1.5}]
>>> format_term([1, (Atom("a"), b"b"), None, True, -0.0, "h\\u00e9"])
'[1,{a,<<"b">>},undefined,true,-0.0,<<"hé"/utf8>>]'

The Python side of the mapping is the one of :mod:`dist_proto.terms`: ``true`` and
``false`` read as ``bool``, ``undefined`` as ``None``, other atoms as
:class:`~dist_proto.terms.Atom`, a string literal ``"abc"`` as a charlist (a
``list`` of ``int``), ``<<...>>`` as ``bytes`` (or
:class:`~dist_proto.terms.BitString` when its size is not a whole number of
bytes), ``[a | b]`` as :class:`~dist_proto.terms.ImproperList`, and ``#{...}`` as
a ``dict``, or a :class:`~dist_proto.terms.TermMap` when Python would merge two
keys that Erlang keeps apart (``1`` and ``1.0``) or cannot hash a key.

:func:`parse_term` reads exactly one term, optionally followed by a ``.``, with
whitespace and ``%`` comments anywhere. It accepts what ``erl_parse:parse_term``
accepts for data: quoted and bare atoms, integers in any base (``16#FF``), digit
separators (``1_000``), character literals (``$a``), floats, strings with all of
Erlang's escapes, adjacent strings (``"ab" "cd"``), binaries with segment sizes
and types (``<<1, 2:3, "x"/utf8, 1.5:32/float>>``), tuples, lists, improper lists,
maps, and ``fun M:F/A`` (an :class:`~dist_proto.terms.ExportFun`). Nesting is
limited to :data:`MAX_DEPTH` levels; the parser is iterative, so that limit is
not a Python recursion limit.

What it rejects on purpose, with a :class:`TermSyntaxError`:

* pids, ports, references and local funs. They have no text syntax in Erlang
  either: ``<0.85.0>``, ``#Port<...>``, ``#Ref<...>`` and ``#Fun<...>`` are only
  how they are *displayed*, and the node and creation they need are not in
  that text. Build them in Python (:class:`~dist_proto.terms.Pid` etc.).
* variables, operators other than a sign on a number, records, and
  expressions in binary segment sizes.
* a character above 255 in a string segment that is stored in 8 bits
  (``<<"ā">>``): Erlang silently truncates it; this parser asks for
  ``<<"ā"/utf8>>`` instead. Integer segments do truncate like Erlang
  (``<<256>>`` is ``<<0>>``).
* floats out of range (``1.0e999``) and ``1e5`` (Erlang floats need a ``.``).

:func:`format_term` writes the ``~w``-like one-line text, which Erlang reads
back with ``erl_scan``/``erl_parse``. Differences from ``~w``: a binary that is
printable ASCII is written ``<<"text">>``, printable UTF-8 ``<<"text"/utf8>>``; a
Python ``str`` is written ``<<"text"/utf8>>`` (it reads back as ``bytes``); map
pairs keep Python's order instead of Erlang's key order; non-Latin-1 characters in quoted
atoms are written as themselves when printable; ``maybe`` and ``else`` are
quoted. Pids are written ``<node.ID.Serial>``, ports ``#Port<node.ID>``,
references ``#Ref<node.A.B.C>`` and local funs ``#Fun<module.index.uniq>``:
those forms are for display only and :func:`parse_term` rejects them.

For every term built from atoms, numbers, binaries, bitstrings, tuples, lists,
improper lists, maps, ``fun M:F/A``, booleans and ``None``,
``parse_term(format_term(t))`` equals ``t`` exactly (``=:=``), except that
``Atom("true")``, ``Atom("false")`` and ``Atom("undefined")`` read back as
``True``, ``False`` and ``None``.
"""

from __future__ import annotations

import math
import re
import struct
import sys
from decimal import Decimal
from typing import Any, Final, NoReturn

from .terms import (
    Atom,
    BitString,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    Term,
    TermMap,
    exact_key,
)

__all__ = ["MAX_DEPTH", "TermSyntaxError", "format_term", "parse_term"]

#: Deepest nesting of tuples, lists and maps that :func:`parse_term` accepts.
MAX_DEPTH: Final = 10_000

#: Longest atom Erlang can hold, in characters.
MAX_ATOM_LENGTH: Final = 255


class TermSyntaxError(ValueError):
    """Text that is not one Erlang term.

    ``line`` and ``column`` (both from 1, the column counted in characters) say
    where; ``reason`` is the message without the position, and ``expected``
    names what would have been valid there, when that is known.
    """

    def __init__(self, reason: str, line: int, column: int, expected: str | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        self.expected = expected
        super().__init__(f"line {line}, column {column}: {reason}")


# ---------------------------------------------------------------------------
# Character classes (Erlang's, Latin-1 based)

_RESERVED: Final = frozenset(
    "after and andalso band begin bnot bor bsl bsr bxor case catch cond div end fun if "
    "let not of or orelse receive rem try when xor".split()
)
# Reserved when the ``maybe`` feature is on (the default from OTP 27): always quoted
# on output, accepted bare on input.
_SOFT_RESERVED: Final = frozenset(("maybe", "else"))

_NAMED_ESCAPES: Final = {
    "n": 10, "r": 13, "t": 9, "v": 11, "b": 8, "f": 12, "e": 27, "s": 32, "d": 127,
}  # fmt: skip
_ESCAPE_OUT: Final = {
    8: "\\b",
    9: "\\t",
    10: "\\n",
    11: "\\v",
    12: "\\f",
    13: "\\r",
    27: "\\e",
    127: "\\d",
}
_PRINTABLE_CONTROLS: Final = frozenset((8, 9, 10, 11, 12, 13, 27))


def _is_name_char(c: str) -> bool:
    return (
        "a" <= c <= "z"
        or "A" <= c <= "Z"
        or "0" <= c <= "9"
        or c == "_"
        or c == "@"
        or ("\xc0" <= c <= "\xff" and c != "\xd7" and c != "\xf7")
    )


def _is_space(c: str) -> bool:
    o = ord(c)
    return o <= 32 or 128 <= o <= 160


# ---------------------------------------------------------------------------
# Tokenizer

# token kinds
_ATOM: Final = "atom"
_VAR: Final = "variable"
_INT: Final = "integer"
_CHAR: Final = "character"
_FLOAT: Final = "float"
_STRING: Final = "string"
_PUNCT: Final = "punct"
_RESERVED_WORD: Final = "reserved"
_DOT: Final = "dot"
_EOF: Final = "eof"

_DEC = r"[0-9]+(?:_[0-9]+)*"
_NUMBER_RE: Final = re.compile(
    rf"(?P<base>[0-9]+)#(?P<based>[0-9a-zA-Z]+(?:_[0-9a-zA-Z]+)*)"
    rf"|(?P<float>{_DEC}\.{_DEC}(?:[eE][+-]?{_DEC})?)"
    rf"|(?P<int>{_DEC})"
)
_PUNCTS2: Final = ("<<", ">>", "=>", ":=")
_PUNCTS1: Final = frozenset("{}[]()|,#<>/:-+=")
# Erlang's white space: codes 0..32 and 128..160; comments run to the end of the line.
_SPACE_RE: Final = re.compile(r"(?:[\x00-\x20\x80-\xa0]+|%[^\n]*)*")
_NAME_CHARS = r"[a-zA-Z0-9_@\xc0-\xd6\xd8-\xf6\xf8-\xff]*"
_BARE_ATOM_RE: Final = re.compile(rf"[a-z\xdf-\xf6\xf8-\xff]{_NAME_CHARS}")
_NAME_RE: Final = re.compile(
    rf"(?P<atom>[a-z\xdf-\xf6\xf8-\xff]{_NAME_CHARS})|(?P<var>[A-Z_\xc0-\xd6\xd8-\xde]{_NAME_CHARS})"
)

# (kind, value, position)
_Token = tuple[str, Any, int]


def _int_from_digits(digits: str, base: int) -> int:
    """``int(digits, base)`` without Python's limit on long decimal strings."""
    if len(digits) <= 4000 or base in (2, 4, 8, 16, 32):
        return int(digits, base)
    n = 0
    for i in range(0, len(digits), 4000):
        chunk = digits[i : i + 4000]
        n = n * base ** len(chunk) + int(chunk, base)
    return n


class _Lexer:
    __slots__ = ("text", "pos", "_peeked")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._peeked: _Token | None = None

    # -- errors --------------------------------------------------------------

    def error(self, reason: str, pos: int, expected: str | None = None) -> NoReturn:
        text = self.text
        pos = min(pos, len(text))
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        raise TermSyntaxError(reason, line, column, expected)

    # -- token stream --------------------------------------------------------

    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> _Token:
        tok = self._peeked
        if tok is not None:
            self._peeked = None
            return tok
        return self._scan()

    def _scan(self) -> _Token:
        text = self.text
        space = _SPACE_RE.match(text, self.pos)
        pos = space.end() if space is not None else self.pos
        if pos >= len(text):
            self.pos = pos
            return (_EOF, None, pos)
        c = text[pos]
        if c in _PUNCTS1:
            two = text[pos : pos + 2]
            if two in _PUNCTS2:
                self.pos = pos + 2
                return (_PUNCT, two, pos)
            self.pos = pos + 1
            return (_PUNCT, c, pos)
        if "0" <= c <= "9":
            return self._number(pos)
        m = _NAME_RE.match(text, pos)
        if m is not None:
            name = m.group()
            self.pos = m.end()
            if m.lastgroup == "var":
                return (_VAR, name, pos)
            if name in _RESERVED:
                return (_RESERVED_WORD, name, pos)
            self._check_atom_length(name, pos)
            return (_ATOM, name, pos)
        if c == "'":
            name = self._quoted(pos, "'", "quoted atom")
            self._check_atom_length(name, pos)
            return (_ATOM, name, pos)
        if c == '"':
            return (_STRING, self._quoted(pos, '"', "string"), pos)
        if c == "$":
            return self._char(pos)
        if c == ".":
            nxt = text[pos + 1 : pos + 2]
            if nxt == "" or nxt == "%" or _is_space(nxt):
                self.pos = pos + 1
                return (_DOT, ".", pos)
            self.error("unexpected '.'", pos)
        if c.isalpha():
            self.error(
                f"unexpected character {c!r}: atoms with characters outside Latin-1 "
                "must be quoted, as in 'привет'",
                pos,
            )
        self.error(f"unexpected character {c!r}", pos)

    def _check_atom_length(self, name: str, pos: int) -> None:
        if len(name) > MAX_ATOM_LENGTH:
            self.error(f"atom too long ({len(name)} characters, at most {MAX_ATOM_LENGTH})", pos)

    def _number(self, pos: int) -> _Token:
        text = self.text
        m = _NUMBER_RE.match(text, pos)
        assert m is not None  # called on a digit
        end = m.end()
        if end < len(text) and (_is_name_char(text[end]) or text[end] == "#"):
            bad = text[end]
            if bad == "_":
                self.error("a digit separator '_' must stand between two digits", end)
            if m.group("int") is not None and bad in "eE":
                self.error(
                    "a float needs a '.' and digits before its exponent (1.0e5, not 1e5)", pos
                )
            self.error(f"unexpected {bad!r} after a number", end)
        self.pos = end
        if m.group("base") is not None:
            base = int(m.group("base"))
            if not 2 <= base <= 36:
                self.error(f"integer base must be 2..36, not {base}", pos)
            digits = m.group("based").replace("_", "")
            for i, d in enumerate(digits):
                if int(d, 36) >= base:
                    self.error(f"digit {d!r} is not valid in base {base}", m.start("based") + i)
            return (_INT, _int_from_digits(digits, base), pos)
        if m.group("float") is not None:
            value = float(m.group("float").replace("_", ""))
            if math.isinf(value):
                self.error("float out of range", pos)
            return (_FLOAT, value, pos)
        return (_INT, _int_from_digits(m.group("int").replace("_", ""), 10), pos)

    def _char(self, pos: int) -> _Token:
        text = self.text
        if pos + 1 >= len(text):
            self.error("a character literal needs a character after '$'", pos)
        c = text[pos + 1]
        if c == "\\":
            value, end = self._escape(pos + 1)
        else:
            value, end = ord(c), pos + 2
        self.pos = end
        return (_CHAR, value, pos)

    def _escape(self, pos: int) -> tuple[int, int]:
        """Read the escape whose backslash is at ``pos``: (code point, end)."""
        text = self.text
        if pos + 1 >= len(text):
            self.error("unterminated escape sequence", pos)
        c = text[pos + 1]
        if "0" <= c <= "7":
            end = pos + 2
            while end < pos + 4 and end < len(text) and "0" <= text[end] <= "7":
                end += 1
            return int(text[pos + 1 : end], 8), end
        if c == "x":
            if text[pos + 2 : pos + 3] == "{":
                close = text.find("}", pos + 3)
                digits = text[pos + 3 : close] if close >= 0 else ""
                if not digits or any(d not in "0123456789abcdefABCDEF" for d in digits):
                    self.error("expected hexadecimal digits and '}' in \\x{...}", pos)
                value = int(digits, 16)
                if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                    self.error(f"\\x{{{digits}}} is not a Unicode character", pos)
                return value, close + 1
            digits = text[pos + 2 : pos + 4]
            if len(digits) != 2 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                self.error("expected two hexadecimal digits after \\x (or \\x{...})", pos)
            return int(digits, 16), pos + 4
        if c == "^":
            if pos + 2 >= len(text):
                self.error("unterminated escape sequence", pos)
            return ord(text[pos + 2]) & 31, pos + 3
        named = _NAMED_ESCAPES.get(c)
        if named is not None:
            return named, pos + 2
        return ord(c), pos + 2

    def _quoted(self, pos: int, quote: str, what: str) -> str:
        text = self.text
        out: list[str] = []
        i = pos + 1
        n = len(text)
        while True:
            j = i
            while j < n and text[j] != quote and text[j] != "\\":
                j += 1
            out.append(text[i:j])
            if j >= n:
                self.error(f"unterminated {what}", pos, f"closing {quote}")
            if text[j] == quote:
                self.pos = j + 1
                return "".join(out)
            value, i = self._escape(j)
            out.append(chr(value))


# ---------------------------------------------------------------------------
# Parser

_TUPLE: Final = 0
_LIST: Final = 1
_LIST_TAIL: Final = 2
_MAP_KEY: Final = 3
_MAP_VALUE: Final = 4

_CLOSER: Final = {_TUPLE: "}", _LIST: "]", _LIST_TAIL: "]", _MAP_KEY: "}", _MAP_VALUE: "}"}


def _describe(tok: _Token) -> str:
    kind, value, _ = tok
    if kind == _EOF:
        return "end of input"
    if kind in (_PUNCT, _DOT):
        return repr(value)
    if kind == _RESERVED_WORD:
        return f"reserved word {value!r}"
    if kind == _STRING:
        return "a string"
    if kind == _ATOM:
        return f"atom {value!r}"
    return f"{kind} {value!r}"


def _atom_value(name: str) -> Term:
    if name == "true":
        return True
    if name == "false":
        return False
    if name == "undefined":
        return None
    return Atom(name)


def _make_map(pairs: list[tuple[Term, Term]]) -> Term:
    d: dict[Term, Term] = {}
    try:
        for k, v in pairs:
            d[k] = v
    except TypeError:  # a key Python cannot hash
        return TermMap(pairs)
    if len(pairs) > 1 and len({exact_key(k) for k, _ in pairs}) != len(d):
        return TermMap(pairs)
    return d


def _make_improper(items: list[Term], tail: Term) -> Term:
    if type(tail) is list:
        return items + tail
    if type(tail) is ImproperList:
        return ImproperList(items + list(tail.items), tail.tail)
    return ImproperList(items, tail)


class _Parser:
    __slots__ = ("lex",)

    def __init__(self, text: str) -> None:
        self.lex = _Lexer(text)

    def expected(self, tok: _Token, what: str) -> NoReturn:
        self.lex.error(f"expected {what}, found {_describe(tok)}", tok[2], what)

    def parse(self) -> Term:
        lex = self.lex
        value = self.value()
        tok = lex.next()
        if tok[0] == _DOT:
            tok = lex.next()
            if tok[0] != _EOF:
                self.expected(tok, "end of input after '.'")
        elif tok[0] != _EOF:
            self.expected(tok, "end of input or '.'")
        return value

    def value(self) -> Term:
        lex = self.lex
        # Each frame: [kind, items, open position, pending map key]
        stack: list[list[Any]] = []
        value: Term
        while True:
            tok = lex.next()
            kind, tv, pos = tok
            if kind == _PUNCT and tv in ("{", "[", "#"):
                if tv == "#":
                    self.hash(lex.next(), pos)
                    closer, fkind = "}", _MAP_KEY
                else:
                    closer, fkind = ("}", _TUPLE) if tv == "{" else ("]", _LIST)
                nxt = lex.peek()
                if nxt[0] == _PUNCT and nxt[1] == closer:
                    lex.next()
                    value = () if fkind == _TUPLE else [] if fkind == _LIST else {}
                else:
                    if len(stack) >= MAX_DEPTH:
                        lex.error(f"terms nested deeper than {MAX_DEPTH} levels", pos)
                    stack.append([fkind, [], pos, None])
                    continue
            else:
                value = self.scalar(tok)
            # Reduce: hand the finished value to the enclosing containers.
            while stack:
                frame = stack[-1]
                fkind = frame[0]
                if fkind == _MAP_KEY:
                    frame[3] = value
                    frame[0] = _MAP_VALUE
                    tok = lex.next()
                    if tok[0] == _PUNCT and tok[1] == "=>":
                        break
                    if tok[0] == _PUNCT and tok[1] == ":=":
                        lex.error("':=' only updates a map; build one with '=>'", tok[2], "'=>'")
                    self.expected(tok, "'=>'")
                if fkind == _LIST_TAIL:
                    tok = lex.next()
                    if tok[0] != _PUNCT or tok[1] != "]":
                        self.expected(tok, "']' after the tail of a list")
                    stack.pop()
                    value = _make_improper(frame[1], value)
                    continue
                if fkind == _MAP_VALUE:
                    frame[1].append((frame[3], value))
                    frame[0] = _MAP_KEY
                else:
                    frame[1].append(value)
                tok = lex.next()
                tk, tv = tok[0], tok[1]
                if tk == _PUNCT:
                    if tv == ",":
                        break
                    if tv == _CLOSER[fkind]:
                        stack.pop()
                        items = frame[1]
                        if fkind == _TUPLE:
                            value = tuple(items)
                        elif fkind == _LIST:
                            value = items
                        else:
                            value = _make_map(items)
                        continue
                    if tv == "|" and fkind == _LIST:
                        frame[0] = _LIST_TAIL
                        break
                if fkind == _LIST:
                    self.expected(tok, "',', '|' or ']'")
                self.expected(tok, f"',' or {_CLOSER[fkind]!r}")
            else:
                return value

    def hash(self, tok: _Token, pos: int) -> None:
        """Check what follows a ``#``: only ``#{`` (a map) is a term."""
        kind, tv, _ = tok
        if kind == _PUNCT and tv == "{":
            return
        if kind == _VAR and tv in ("Ref", "Port", "Fun"):
            what = {"Ref": "references", "Port": "ports", "Fun": "local funs"}[tv]
            self.lex.error(
                f"{what} cannot be written as term text (#{tv}<...> is for display only)", pos
            )
        if kind in (_ATOM, _VAR):
            self.lex.error("records are not terms; write a tuple instead", pos)
        self.expected(tok, "'{' after '#'")

    def scalar(self, tok: _Token) -> Term:
        lex = self.lex
        kind, tv, pos = tok
        if kind == _ATOM:
            return _atom_value(tv)
        if kind == _INT or kind == _CHAR or kind == _FLOAT:
            return tv
        if kind == _STRING:
            return [ord(c) for c in self.strings(tv)]
        if kind == _PUNCT:
            if tv == "-" or tv == "+":
                num = lex.next()
                if num[0] not in (_INT, _CHAR, _FLOAT):
                    self.expected(num, f"a number after {tv!r}")
                return -num[1] if tv == "-" else num[1]
            if tv == "<<":
                return self.binary()
            if tv == "<":
                lex.error("pids cannot be written as term text (<0.85.0> is for display only)", pos)
        if kind == _RESERVED_WORD and tv == "fun":
            return self.fun()
        if kind == _VAR:
            lex.error(f"variables are not terms: {tv} (quote it to make an atom: '{tv}')", pos)
        if kind == _RESERVED_WORD:
            lex.error(f"{tv!r} is a reserved word; quote it to make an atom: '{tv}'", pos)
        self.expected(tok, "a term")

    def strings(self, first: str) -> str:
        """A string token plus any adjacent ones (``"ab" "cd"``)."""
        lex = self.lex
        if lex.peek()[0] != _STRING:
            return first
        parts = [first]
        while lex.peek()[0] == _STRING:
            parts.append(lex.next()[1])
        return "".join(parts)

    def fun(self) -> ExportFun:
        lex = self.lex
        names: list[str] = []
        for sep in (":", "/"):
            tok = lex.next()
            if tok[0] != _ATOM:
                if sep == ":":
                    self.expected(tok, "a module name: only fun Module:Function/Arity is a term")
                self.expected(tok, "a function name")
            names.append(tok[1])
            tok = lex.next()
            if tok[0] != _PUNCT or tok[1] != sep:
                if sep == ":":
                    lex.error("local funs cannot be written as term text", tok[2], "':'")
                self.expected(tok, "'/'")
        tok = lex.next()
        if tok[0] != _INT or not 0 <= tok[1] <= 255:
            self.expected(tok, "an arity (0..255)")
        return ExportFun(Atom(names[0]), Atom(names[1]), tok[1])

    # -- binaries --------------------------------------------------------------

    def binary(self) -> bytes | BitString:
        lex = self.lex
        out = _BitWriter()
        tok = lex.peek()
        if tok[0] == _PUNCT and tok[1] == ">>":
            lex.next()
            return b""
        while True:
            self.segment(out)
            tok = lex.next()
            if tok[0] == _PUNCT and tok[1] == ">>":
                return out.result()
            if not (tok[0] == _PUNCT and tok[1] == ","):
                self.expected(tok, "',' or '>>'")

    def segment(self, out: _BitWriter) -> None:
        lex = self.lex
        tok = lex.next()
        kind, tv, pos = tok
        value: int | float | str
        if kind in (_INT, _CHAR, _FLOAT):
            value = tv
        elif kind == _PUNCT and tv in ("-", "+"):
            num = lex.next()
            if num[0] not in (_INT, _CHAR, _FLOAT):
                self.expected(num, f"a number after {tv!r}")
            value = -num[1] if tv == "-" else num[1]
        elif kind == _STRING:
            value = self.strings(tv)
        elif kind == _PUNCT and tv == "<<":
            lex.error("nested binaries cannot be written as term text; flatten them", pos)
        else:
            self.expected(tok, "an integer, float or string in a binary")
        # size
        size: int | None = None
        tok = lex.peek()
        if tok[0] == _PUNCT and tok[1] == ":":
            lex.next()
            tok = lex.next()
            if tok[0] != _INT:
                self.expected(tok, "a segment size (a non-negative integer)")
            size = tok[1]
        # type specifiers
        seg_type, signed, little, unit = "", False, False, None
        tok = lex.peek()
        if tok[0] == _PUNCT and tok[1] == "/":
            lex.next()
            while True:
                tok = lex.next()
                if tok[0] != _ATOM:
                    self.expected(tok, "a type specifier")
                name = tok[1]
                if name in ("integer", "float", "utf8", "utf16", "utf32"):
                    seg_type = name
                elif name in ("signed", "unsigned"):
                    signed = name == "signed"
                elif name in ("big", "little", "native"):
                    little = name == "little" or (name == "native" and sys.byteorder == "little")
                elif name == "unit":
                    colon = lex.next()
                    num = lex.next()
                    if not (colon[0] == _PUNCT and colon[1] == ":") or num[0] != _INT:
                        self.expected(num, "unit:N with N in 1..256")
                    if not 1 <= num[1] <= 256:
                        lex.error("unit must be 1..256", num[2])
                    unit = num[1]
                elif name in ("binary", "bytes", "bitstring", "bits"):
                    lex.error(f"{name} segments cannot be written as term text", tok[2])
                else:
                    lex.error(f"unknown type specifier {name!r}", tok[2])
                sep = lex.peek()
                if not (sep[0] == _PUNCT and sep[1] == "-"):
                    break
                lex.next()
        del signed  # only matters when matching
        if seg_type.startswith("utf"):
            if size is not None or unit is not None:
                lex.error(f"a {seg_type} segment takes no size or unit", pos)
            codes = [ord(c) for c in value] if isinstance(value, str) else [value]
            for code in codes:
                if type(code) is not int or not (0 <= code <= 0x10FFFF) or 0xD800 <= code <= 0xDFFF:
                    lex.error(f"{code!r} is not a Unicode character", pos)
                out.put_bytes(chr(code).encode(_CODECS[seg_type, little]))
            return
        if seg_type == "float" or (seg_type == "" and isinstance(value, float)):
            bits = (64 if size is None else size) * (unit or 1)
            if isinstance(value, str):
                lex.error("a string cannot be a float segment", pos)
            fmt = {16: "e", 32: "f", 64: "d"}.get(bits)
            if fmt is None:
                lex.error(f"a float segment must be 16, 32 or 64 bits, not {bits}", pos)
            try:
                out.put_bytes(struct.pack(("<" if little else ">") + fmt, float(value)))
            except (OverflowError, struct.error):
                lex.error(f"{value!r} does not fit in a {bits}-bit float", pos)
            return
        bits = (8 if size is None else size) * (unit or 1)
        if little and bits % 8:
            lex.error("little-endian segments must be a whole number of bytes", pos)
        if isinstance(value, str):
            for c in value:
                code = ord(c)
                if code >> bits:
                    lex.error(
                        f"character {c!r} does not fit in {bits} bits; "
                        'write the string as "..."/utf8',
                        pos,
                    )
                out.put_int(code, bits, little)
            return
        if isinstance(value, float):
            lex.error("a float needs the segment type float", pos)
        out.put_int(value, bits, little)


_CODECS: Final = {
    ("utf8", False): "utf-8",
    ("utf8", True): "utf-8",
    ("utf16", False): "utf-16-be",
    ("utf16", True): "utf-16-le",
    ("utf32", False): "utf-32-be",
    ("utf32", True): "utf-32-le",
}


class _BitWriter:
    """Accumulates whole bytes plus up to 7 pending bits."""

    __slots__ = ("buf", "pend", "nbits")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pend = 0
        self.nbits = 0

    def put_int(self, value: int, bits: int, little: bool = False) -> None:
        value &= (1 << bits) - 1
        if little and bits:
            value = int.from_bytes(value.to_bytes(bits // 8, "little"), "big")
        total = self.nbits + bits
        combined = (self.pend << bits) | value
        rem = total & 7
        if total >= 8:
            self.buf += (combined >> rem).to_bytes(total >> 3, "big")
        self.pend = combined & ((1 << rem) - 1)
        self.nbits = rem

    def put_bytes(self, data: bytes) -> None:
        if self.nbits:
            self.put_int(int.from_bytes(data, "big"), len(data) * 8)
        else:
            self.buf += data

    def result(self) -> bytes | BitString:
        if not self.nbits:
            return bytes(self.buf)
        last = self.pend << (8 - self.nbits)
        return BitString(bytes(self.buf) + bytes((last,)), self.nbits)


def parse_term(text: str) -> Term:
    """Parse one Erlang term, optionally followed by ``.``.

    Raises :class:`TermSyntaxError` (a ``ValueError``) with the line and column
    of the first problem.

    >>> parse_term("{ok, [1 | tail], 'hello world', $a, 16#FF, -1.5e3}.")
    (Atom('ok'), ImproperList(items=(1,), tail=Atom('tail')), Atom('hello world'), 97, 255, -1500.0)
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_term() needs a str, not {type(text).__name__}")
    return _Parser(text).parse()


# ---------------------------------------------------------------------------
# Printer


def _atom_text(name: str) -> str:
    if _BARE_ATOM_RE.fullmatch(name) and name not in _RESERVED and name not in _SOFT_RESERVED:
        return name
    return _quote(name, "'")


def _quote(s: str, q: str) -> str:
    out = [q]
    for c in s:
        o = ord(c)
        if 32 <= o < 127:
            if c == q or c == "\\":
                out.append("\\" + c)
            else:
                out.append(c)
        elif o in _ESCAPE_OUT:
            out.append(_ESCAPE_OUT[o])
        elif o < 160:
            out.append(f"\\{o:03o}")
        elif o < 256 or (c.isprintable() and not 0xD800 <= o <= 0xDFFF):
            out.append(c)
        else:
            out.append(f"\\x{{{o:X}}}")
    out.append(q)
    return "".join(out)


def _is_printable_char(o: int) -> bool:
    if 32 <= o < 127 or o in _PRINTABLE_CONTROLS:
        return True
    if o < 160 or o > 0x10FFFF or 0xD800 <= o <= 0xDFFF:
        return False
    return chr(o).isprintable()


def _int_text(n: int) -> str:
    try:
        return str(n)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        pass
    sign, n = ("-", -n) if n < 0 else ("", n)
    chunk = 10**4000
    parts: list[str] = []
    while n:
        n, r = divmod(n, chunk)
        parts.append(f"{r:04000d}")
    return sign + "".join(reversed(parts)).lstrip("0")


def _float_text(x: float) -> str:
    """Shortest text that reads back as ``x``, chosen like Erlang's ``~w``."""
    if not math.isfinite(x):
        raise ValueError(f"Erlang has no float {x!r}")
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign, digit_tuple, exp = Decimal(repr(x)).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exp += len(digits) - len(stripped)
    digits = stripped
    n = len(digits)
    sci = f"{digits[0]}.{digits[1:] or '0'}e{exp + n - 1}"
    if exp >= 0:
        plain = digits + "0" * exp + ".0"
    elif -exp < n:
        plain = digits[: n + exp] + "." + digits[n + exp :]
    else:
        plain = "0." + "0" * (-exp - n) + digits
    # Like float_to_list(X, [short]): the shorter form, the plain one on a tie,
    # but never plain from 2**53 up.
    use_plain = len(plain) <= len(sci) and abs(x) < 9007199254740992.0
    return ("-" if sign else "") + (plain if use_plain else sci)


def _binary_text(data: bytes) -> str:
    if not data:
        return "<<>>"
    if all(32 <= b < 127 or b in _PRINTABLE_CONTROLS for b in data):
        return "<<" + _quote(data.decode("ascii"), '"') + ">>"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if all(_is_printable_char(ord(c)) for c in text):
            return "<<" + _quote(text, '"') + "/utf8>>"
    return "<<" + ",".join(map(str, data)) + ">>"


def _bitstring_text(b: BitString) -> str:
    if b.bits == 8:
        return _binary_text(b.data)
    parts = [str(x) for x in b.data[:-1]]
    parts.append(f"{b.data[-1] >> (8 - b.bits)}:{b.bits}")
    return "<<" + ",".join(parts) + ">>"


def _charlist_text(items: list[Any]) -> str | None:
    """The ``"..."`` form of a printable charlist, else None."""
    if not items:
        return None
    for x in items:
        if type(x) is not int or not _is_printable_char(x):
            return None
    return _quote("".join(map(chr, items)), '"')


class _Raw:
    """Literal output text on the printer's work stack."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_COMMA: Final = _Raw(",")
_ARROW: Final = _Raw(" => ")
_BAR: Final = _Raw("|")
_CLOSE_TUPLE: Final = _Raw("}")
_CLOSE_LIST: Final = _Raw("]")


def format_term(term: Term, *, strings: bool = False) -> str:
    """Write ``term`` as one line of Erlang term text.

    With ``strings=True``, a non-empty list of printable character codes is
    written as a string literal (``"abc"``) instead of ``[97,98,99]``.

    Raises ``TypeError`` for a Python value with no Erlang form and
    ``ValueError`` for a NaN or infinite float or a ``str`` holding a surrogate.

    >>> format_term({Atom("Elixir.Foo"): [1, 2, ImproperList([3], Atom("t"))]})
    "#{'Elixir.Foo' => [1,2,[3|t]]}"
    >>> format_term([104, 105], strings=True)
    '"hi"'
    """
    out: list[str] = []
    stack: list[Any] = [term]
    push = stack.append
    emit = out.append
    while stack:
        t = stack.pop()
        tt = type(t)
        if tt is _Raw:
            emit(t.text)
        elif tt is Atom:
            emit(_atom_text(t.name))
        elif tt is bool:
            emit("true" if t else "false")
        elif tt is int:
            emit(_int_text(t))
        elif t is None:
            emit("undefined")
        elif tt is float:
            emit(_float_text(t))
        elif tt is bytes or tt is bytearray:
            emit(_binary_text(bytes(t)))
        elif tt is str:
            try:
                t.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a str with a lone surrogate has no UTF-8 form") from None
            emit("<<" + _quote(t, '"') + "/utf8>>")
        elif tt is tuple:
            emit("{")
            push(_CLOSE_TUPLE)
            for i in range(len(t) - 1, -1, -1):
                push(t[i])
                if i:
                    push(_COMMA)
        elif tt is list:
            text = _charlist_text(t) if strings else None
            if text is not None:
                emit(text)
                continue
            emit("[")
            push(_CLOSE_LIST)
            for i in range(len(t) - 1, -1, -1):
                push(t[i])
                if i:
                    push(_COMMA)
        elif tt is ImproperList:
            items = list(t.items)
            tail = t.tail
            while type(tail) is ImproperList:
                items.extend(tail.items)
                tail = tail.tail
            emit("[")
            push(_CLOSE_LIST)
            push(tail)
            push(_BAR)
            for i in range(len(items) - 1, -1, -1):
                push(items[i])
                if i:
                    push(_COMMA)
        elif tt is dict or tt is TermMap:
            emit("#{")
            push(_CLOSE_TUPLE)
            pairs = list(t.items())
            for i in range(len(pairs) - 1, -1, -1):
                k, v = pairs[i]
                push(v)
                push(_ARROW)
                push(k)
                if i:
                    push(_COMMA)
        elif tt is BitString:
            emit(_bitstring_text(t))
        elif tt is ExportFun:
            emit(f"fun {_atom_text(t.module.name)}:{_atom_text(t.function.name)}/{t.arity}")
        elif tt is Pid or tt is Port or tt is Reference:
            emit(str(t))
        elif tt is Fun:
            emit(f"#Fun<{t.module.name}.{t.index}.{int.from_bytes(t.uniq, 'big')}>")
        elif isinstance(t, bool):
            emit("true" if t else "false")
        elif isinstance(t, int):
            emit(_int_text(int(t)))
        elif isinstance(t, float):
            emit(_float_text(float(t)))
        else:
            raise TypeError(f"cannot write a {tt.__name__} as an Erlang term")
    return "".join(out)
