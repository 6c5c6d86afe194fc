"""Tests for dist_proto.term_text: the Erlang term text parser and printer."""

from __future__ import annotations

import doctest
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dist_proto.term_text as term_text
from dist_proto.term_text import MAX_DEPTH, TermSyntaxError, format_term, parse_term
from dist_proto.terms import (
    Atom,
    BitString,
    ExportFun,
    Fun,
    ImproperList,
    Pid,
    Port,
    Reference,
    TermMap,
    exact_key,
)

A = Atom

# The recursive term strategy has a long repr; Hypothesis warns when it builds it.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def same(a: Any, b: Any) -> bool:
    """Erlang's exact equality (=:=): 1 /= 1.0, 0.0 /= -0.0, true /= 1."""
    return bool(exact_key(a) == exact_key(b))


def test_doctests() -> None:
    result = doctest.testmod(term_text)
    assert result.failed == 0 and result.attempted > 0


# ---------------------------------------------------------------------------
# Parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # atoms
        ("ok", A("ok")),
        ("ok.", A("ok")),
        ("  ok  .  ", A("ok")),
        ("nonode@nohost", A("nonode@nohost")),
        ("a_B9@x", A("a_B9@x")),
        ("'hello world'", A("hello world")),
        ("'Elixir.Foo'", A("Elixir.Foo")),
        ("''", A("")),
        ("'case'", A("case")),
        ("maybe", A("maybe")),
        ("ñandú", A("ñandú")),
        ("'привет'", A("привет")),
        ("'a\\'b\\\\c\\\"d'", A("a'b\\c\"d")),
        ("'\\n\\r\\t\\v\\b\\f\\e\\s\\d'", A("\n\r\t\v\b\f\x1b \x7f")),
        ("'\\x41\\x{1F600}\\101\\0\\^A\\z'", A("A\U0001f600A\x00\x01z")),
        ("'\\1234'", A("S4")),
        ("true", True),
        ("false", False),
        ("'true'", True),
        ("undefined", None),
        # integers
        ("0", 0),
        ("42", 42),
        ("-42", -42),
        ("- 42", -42),
        ("+7", 7),
        ("1_000_000", 1_000_000),
        ("16#FF", 255),
        ("16#ff", 255),
        ("-16#F_F", -255),
        ("2#1010", 10),
        ("36#zz", 1295),
        ("$a", 97),
        ("$ ", 32),
        ("$\\n", 10),
        ("$\\x{1F600}", 0x1F600),
        ("$\\^A", 1),
        ("-$a", -97),
        ("$é", 233),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        # floats
        ("1.0", 1.0),
        ("-1.5", -1.5),
        ("1.0e10", 1.0e10),
        ("1.0E+3", 1000.0),
        ("2.5e-3", 0.0025),
        ("1_0.0_1e1_0", 1.001e11),
        ("1.0e-999", 0.0),
        # strings are charlists
        ('"abc"', [97, 98, 99]),
        ('""', []),
        ('"a" "b"  "c"', [97, 98, 99]),
        ('"\\n\\t\\\\\\"\\x{100}\\xff\\101"', [10, 9, 92, 34, 256, 255, 65]),
        ('"é€"', [233, 0x20AC]),
        ('"it\'s"', [105, 116, 39, 115]),
        # binaries
        ("<<>>", b""),
        ("<< >>", b""),
        ('<<"text">>', b"text"),
        ('<<"héllo">>', b"h\xe9llo"),
        ('<<"héllo"/utf8>>', "héllo".encode()),
        ("<<1,2,3>>", b"\x01\x02\x03"),
        ('<<1, "ab", $c>>', b"\x01abc"),
        ('<<"a" "b">>', b"ab"),
        ("<<256, -1>>", b"\x00\xff"),
        ("<<1:16>>", b"\x00\x01"),
        ("<<1:16/little>>", b"\x01\x00"),
        ("<<-2:16/signed-little>>", b"\xfe\xff"),
        ("<<1:3/unit:8>>", b"\x00\x00\x01"),
        ('<<"a":16>>', b"\x00a"),
        ("<<1.5/float>>", b"?\xf8\x00\x00\x00\x00\x00\x00"),
        ("<<1.5:32/float>>", b"?\xc0\x00\x00"),
        ("<<1.5:32/float-little>>", b"\x00\x00\xc0?"),
        ("<<1:16/float>>", b"<\x00"),
        ('<<"ab"/utf16>>', b"\x00a\x00b"),
        ('<<"ab"/utf16-little>>', b"a\x00b\x00"),
        ('<<"a"/utf32>>', b"\x00\x00\x00a"),
        ("<<16#1F600/utf8>>", "\U0001f600".encode()),
        ("<<1,2:3>>", BitString(b"\x01\x40", 3)),
        ("<<1:1>>", BitString(b"\x80", 1)),
        ("<<0:0>>", b""),
        ("<<-1:4, 3:2>>", BitString(b"\xfc", 6)),
        ('<<"a"/utf8, 1:1, 2/little-signed>>', BitString(b"a\x81\x00", 1)),
        # containers
        ("{}", ()),
        ("{a}", (A("a"),)),
        ("{ok, 1, {}}", (A("ok"), 1, ())),
        ("[]", []),
        ("[1, [2], []]", [1, [2], []]),
        ("[1 | 2]", ImproperList([1], 2)),
        ("[a, b | c]", ImproperList([A("a"), A("b")], A("c"))),
        ("[1 | [2, 3]]", [1, 2, 3]),
        ("[1 | [2 | x]]", ImproperList([1, 2], A("x"))),
        ("[1 | []]", [1]),
        ('[1 | "ab"]', [1, 97, 98]),
        ("[1 | {}]", ImproperList([1], ())),
        ("#{}", {}),
        ('#{a => 1, <<"k">> => [2]}', {A("a"): 1, b"k": [2]}),
        ("#{a => 1, a => 2}", {A("a"): 2}),
        ("#{#{} => {}}", TermMap([({}, ())])),
        ("#{[1] => 2}", TermMap([([1], 2)])),
        ("#{1 => a, 1.0 => b}", TermMap([(1, A("a")), (1.0, A("b"))])),
        ("#{true => a, 1 => b}", TermMap([(True, A("a")), (1, A("b"))])),
        ("fun lists:reverse/1", ExportFun(A("lists"), A("reverse"), 1)),
        ("fun 'Elixir.Enum':'map'/2", ExportFun(A("Elixir.Enum"), A("map"), 2)),
        # whitespace and comments
        ("% leading\n[1, % one\n 2] % trailing\n. % after", [1, 2]),
        ("\t{\r\na\f}\v", (A("a"),)),
        ("{a,\u00a0b}", (A("a"), A("b"))),
        ("1.", 1),
        ("1.%c", 1),
        # the CLI's example
        ('[1, {a, <<"b">>}]', [1, (A("a"), b"b")]),
    ],
)
def test_parse(text: str, expected: Any) -> None:
    got = parse_term(text)
    assert same(got, expected), (got, expected)
    assert type(got) is type(expected)


def test_parse_negative_zero() -> None:
    z = parse_term("-0.0")
    assert z == 0.0 and str(z) == "-0.0"


def test_parse_huge_integers() -> None:
    n = 7**20000  # more digits than Python's default int/str limit
    assert parse_term(format_term(n)) == n
    assert parse_term("-" + format_term(n)) == -n
    assert parse_term(f"16#{n:X}") == n
    assert parse_term("1" + "0" * 5000) == 10**5000
    assert parse_term("36#" + "z" * 6000) == 36**6000 - 1


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("", 1, 1, "expected a term, found end of input"),
        (".", 1, 1, "expected a term, found '.'"),
        ("   % only a comment", 1, 20, "expected a term"),
        ("{a,}", 1, 4, "expected a term, found '}'"),
        ("{a b}", 1, 4, "expected ',' or '}', found atom 'b'"),
        ("[1,2", 1, 5, "expected ',', '|' or ']', found end of input"),
        ("[1 | 2, 3]", 1, 7, "expected ']' after the tail of a list"),
        ("[| 2]", 1, 2, "expected a term, found '|'"),
        ("{a,\n  b c}", 2, 5, "expected ',' or '}'"),
        ("a b", 1, 3, "expected end of input or '.'"),
        ("a. b", 1, 4, "expected end of input after '.'"),
        ("a.b", 1, 2, "unexpected '.'"),
        ("#{a := 1}", 1, 5, "':=' only updates a map"),
        ("#{a}", 1, 4, "expected '=>'"),
        ("#{a => }", 1, 8, "expected a term"),
        ("#rec{a = 1}", 1, 1, "records are not terms"),
        ("#", 1, 2, "expected '{' after '#'"),
        ("<0.85.0>", 1, 1, "pids cannot be written as term text"),
        ("{<0.85.0>}", 1, 2, "pids cannot be written as term text"),
        ("#Ref<0.1.2.3>", 1, 1, "references cannot be written as term text"),
        ("#Port<0.5>", 1, 1, "ports cannot be written as term text"),
        ("#Fun<erl_eval.6.1234>", 1, 1, "local funs cannot be written as term text"),
        ("fun f/1", 1, 6, "local funs cannot be written as term text"),
        ("fun (X) -> X end", 1, 5, "expected a module name"),
        ("fun m:f/256", 1, 9, "expected an arity (0..255)"),
        ("X", 1, 1, "variables are not terms"),
        ("_", 1, 1, "variables are not terms"),
        ("[ok, Foo]", 1, 6, "variables are not terms"),
        ("case", 1, 1, "'case' is a reserved word"),
        ("{1 + 2}", 1, 4, "expected ',' or '}', found '+'"),
        ("-a", 1, 2, "expected a number after '-'"),
        ("- -1", 1, 3, "expected a number after '-'"),
        ("привет", 1, 1, "must be quoted"),
        ("'abc", 1, 1, "unterminated quoted atom"),
        ('"abc', 1, 1, "unterminated string"),
        ('"\\', 1, 2, "unterminated escape sequence"),
        ("'\\x{}'", 1, 2, "expected hexadecimal digits"),
        ("'\\x{110000}'", 1, 2, "is not a Unicode character"),
        ("'\\x{D800}'", 1, 2, "is not a Unicode character"),
        ("'\\xg0'", 1, 2, "expected two hexadecimal digits"),
        ("'" + "a" * 256 + "'", 1, 1, "atom too long"),
        ("a" * 256, 1, 1, "atom too long"),
        ("$", 1, 1, "needs a character after '$'"),
        ("1e5", 1, 1, "needs a '.'"),
        ("1_", 1, 2, "digit separator"),
        ("1__0", 1, 2, "digit separator"),
        ("1a", 1, 2, "unexpected 'a' after a number"),
        ("2#102", 1, 5, "digit '2' is not valid in base 2"),
        ("37#1", 1, 1, "base must be 2..36"),
        ("1.0e999", 1, 1, "float out of range"),
        ("1.0e", 1, 4, "unexpected 'e' after a number"),
        ("@", 1, 1, "unexpected character '@'"),
        ("<<1", 1, 4, "expected ',' or '>>'"),
        ("<<a>>", 1, 3, "expected an integer, float or string in a binary"),
        ("<<<<1>>/binary>>", 1, 3, "nested binaries"),
        ('<<"ā">>', 1, 3, "does not fit in 8 bits"),
        ("<<1:X>>", 1, 5, "expected a segment size"),
        ("<<1/foo>>", 1, 5, "unknown type specifier 'foo'"),
        ("<<1/binary>>", 1, 5, "binary segments cannot be written"),
        ("<<1:3/little>>", 1, 3, "little-endian segments"),
        ("<<1.5/integer>>", 1, 3, "a float needs the segment type float"),
        ("<<1.5:8/float>>", 1, 3, "must be 16, 32 or 64 bits"),
        ("<<1.0e300:32/float>>", 1, 3, "does not fit in a 32-bit float"),
        ("<<1:8/utf8>>", 1, 3, "takes no size"),
        ("<<16#D800/utf8>>", 1, 3, "is not a Unicode character"),
        ("<<1/unit:0>>", 1, 10, "unit must be 1..256"),
        ('<<"a"/float>>', 1, 3, "a string cannot be a float segment"),
    ],
)
def test_parse_errors(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(TermSyntaxError) as info:
        parse_term(text)
    err = info.value
    assert message in str(err), str(err)
    assert (err.line, err.column) == (line, column), str(err)
    assert str(err).startswith(f"line {line}, column {column}: ")
    assert isinstance(err, ValueError)


def test_error_expected_attribute() -> None:
    with pytest.raises(TermSyntaxError) as info:
        parse_term("{a b}")
    assert info.value.expected == "',' or '}'"
    assert info.value.reason == "expected ',' or '}', found atom 'b'"


def test_parse_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        parse_term(b"ok")  # type: ignore[arg-type]


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ("{", "}"), ("#{1 => ", "}")])
def test_depth_limit(opener: str, closer: str) -> None:
    ok = opener * MAX_DEPTH + "1" + closer * MAX_DEPTH
    term = parse_term(ok)
    assert format_term(term) == ok.replace("#{1 => ", "#{1 => ")
    too_deep = opener * (MAX_DEPTH + 1) + "1" + closer * (MAX_DEPTH + 1)
    with pytest.raises(TermSyntaxError, match="nested deeper than 10000 levels") as info:
        parse_term(too_deep)
    assert info.value.column == MAX_DEPTH * len(opener) + 1


def test_long_flat_inputs() -> None:
    n = 200_000
    assert parse_term("[" + ",".join(["1"] * n) + "]") == [1] * n
    assert parse_term("<<" + ",".join(["255"] * n) + ">>") == b"\xff" * n
    assert parse_term('"' + "x" * n + '"') == [120] * n


# ---------------------------------------------------------------------------
# Formatting


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (A("ok"), "ok"),
        (A("nonode@nohost"), "nonode@nohost"),
        (A("hello world"), "'hello world'"),
        (A("Elixir.Foo"), "'Elixir.Foo'"),
        (A("Ok"), "'Ok'"),
        (A("_x"), "'_x'"),
        (A("9a"), "'9a'"),
        (A(""), "''"),
        (A("a.b"), "'a.b'"),
        (A("case"), "'case'"),
        (A("fun"), "'fun'"),
        (A("maybe"), "'maybe'"),
        (A("else"), "'else'"),
        (A("ñandú"), "ñandú"),
        (A("aÀ"), "aÀ"),
        (A("a×"), "'a×'"),
        (A("привет"), "'привет'"),
        (A("a'b\\c\"d"), "'a\\'b\\\\c\"d'"),
        (A("\n\t\x00\x01\x1b\x7f\x80\x9f\xa0"), "'\\n\\t\\000\\001\\e\\d\\200\\237\xa0'"),
        (A("a\u2028\ufeff"), "'a\\x{2028}\\x{FEFF}'"),
        (True, "true"),
        (False, "false"),
        (None, "undefined"),
        (A("true"), "true"),
        (0, "0"),
        (-42, "-42"),
        (2**70, "1180591620717411303424"),
        (1.0, "1.0"),
        (-1.5, "-1.5"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (0.1, "0.1"),
        (100.0, "100.0"),
        (1000.0, "1.0e3"),
        (123456.0, "123456.0"),
        (12345678.0, "12345678.0"),
        (1.0e15, "1.0e15"),
        (1.0e16, "1.0e16"),
        (9.0e15, "9.0e15"),
        (1.2345678901234568e17, "1.2345678901234568e17"),
        (0.001, "0.001"),
        (0.0015, "0.0015"),
        (0.0001, "0.0001"),
        (1.0e-5, "1.0e-5"),
        (1.234e-4, "1.234e-4"),
        (1.5e-7, "1.5e-7"),
        (5.0e-324, "5.0e-324"),
        (1.7976931348623157e308, "1.7976931348623157e308"),
        (12345.678, "12345.678"),
        (9007199254740990.0, "9007199254740990.0"),
        (9007199254740992.0, "9.007199254740992e15"),
        (-9007199254740994.0, "-9.007199254740994e15"),
        (b"", "<<>>"),
        (b"text", '<<"text">>'),
        (b'a"b\\c\n\t\x1b', '<<"a\\"b\\\\c\\n\\t\\e">>'),
        ("héllo".encode(), '<<"héllo"/utf8>>'),
        (b"\x01\x02\x03", "<<1,2,3>>"),
        (b"h\xe9llo", "<<104,233,108,108,111>>"),
        (b"a\x00", "<<97,0>>"),
        (b"\x7f", "<<127>>"),
        ("", '<<""/utf8>>'),
        ("text", '<<"text"/utf8>>'),
        ('a"\n\x00\u2028é', '<<"a\\"\\n\\000\\x{2028}é"/utf8>>'),
        (bytearray(b"ab"), '<<"ab">>'),
        (BitString(b"\x01\x40", 3), "<<1,2:3>>"),
        (BitString(b"\x80", 1), "<<1:1>>"),
        (BitString(b"ab", 8), '<<"ab">>'),
        ((), "{}"),
        ((1, A("a"), (2,)), "{1,a,{2}}"),
        ([], "[]"),
        ([1, [2], []], "[1,[2],[]]"),
        ([104, 105], "[104,105]"),
        (ImproperList([1], 2), "[1|2]"),
        (ImproperList([A("a"), A("b")], A("c")), "[a,b|c]"),
        (ImproperList([1], ImproperList([2], 3)), "[1,2|3]"),
        ({}, "#{}"),
        ({A("a"): 1, b"k": [2]}, '#{a => 1,<<"k">> => [2]}'),
        (TermMap([(1, A("a")), (1.0, A("b"))]), "#{1 => a,1.0 => b}"),
        (ExportFun(A("lists"), A("reverse"), 1), "fun lists:reverse/1"),
        (ExportFun(A("Elixir.Enum"), A("map"), 2), "fun 'Elixir.Enum':map/2"),
        (Pid(A("a@b"), 85, 0, 1), "<a@b.85.0>"),
        (Port(A("a@b"), 5, 1), "#Port<a@b.5>"),
        (Reference(A("a@b"), 1, (3, 2, 1)), "#Ref<a@b.1.2.3>"),
        (Fun(b"p", A("erl_eval"), 1, 6, b"\x00\x01", ()), "#Fun<erl_eval.6.1>"),
        ([1, (A("a"), b"b")], '[1,{a,<<"b">>}]'),
    ],
)
def test_format(term: Any, text: str) -> None:
    assert format_term(term) == text


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ([104, 105], '"hi"'),
        ([], "[]"),
        ([10, 9, 34, 92, 39], '"\\n\\t\\"\\\\\'"'),
        ([233, 0x20AC, 0x1F600], '"é€\U0001f600"'),
        ([1, 2], "[1,2]"),
        ([104, 0x2028], "[104,8232]"),
        ([104, 0xD800], "[104,55296]"),
        ([104, -1], "[104,-1]"),
        ([104, True], "[104,true]"),
        ([104, 105.0], "[104,105.0]"),
        ({A("k"): [[97]]}, '#{k => ["a"]}'),
    ],
)
def test_format_strings_option(term: Any, text: str) -> None:
    assert format_term(term, strings=True) == text
    assert same(parse_term(text), term)


def test_format_huge_integer() -> None:
    n = -(7**20000)
    text = format_term(n)
    assert parse_term(text) == n
    assert text.lstrip("-").isdigit() and not text.lstrip("-").startswith("0")
    assert format_term(10**5000) == "1" + "0" * 5000


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_format_rejects_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        format_term([bad])


def test_format_rejects_surrogate_str() -> None:
    with pytest.raises(ValueError):
        format_term("\ud800")


@pytest.mark.parametrize("bad", [object(), {1, 2}, 1j, frozenset()])
def test_format_rejects_unknown_types(bad: Any) -> None:
    with pytest.raises(TypeError):
        format_term({A("k"): bad})


def test_format_int_and_float_subclasses() -> None:
    import enum

    class Color(enum.IntEnum):
        RED = 1

    assert format_term([Color.RED]) == "[1]"


def test_format_any_depth() -> None:
    depth = 200_000
    t: Any = A("x")
    for _ in range(depth):
        t = [t]
    assert format_term(t) == "[" * depth + "x" + "]" * depth
    m: Any = 1
    for _ in range(depth):
        m = {A("k"): (m,)}
    assert format_term(m).count("#{k => {") == depth


@pytest.mark.parametrize(
    "name", ["ok", "a b", "'", "\\", "Elixir.Foo", "", "привет", "\x00\x7f\x9f", "a\U0001f600b"]
)
def test_atom_round_trip(name: str) -> None:
    assert parse_term(format_term(A(name))) == A(name)


# ---------------------------------------------------------------------------
# Round trip (Hypothesis)

_NO_SURROGATES = st.characters(codec="utf-8")

atoms = st.text(_NO_SURROGATES, max_size=20).filter(
    lambda s: s not in ("true", "false", "undefined")
).map(Atom) | st.sampled_from(
    [A(n) for n in ("ok", "Elixir.Foo", "a@b", "case", "maybe", "'", "ñ")]
)
floats = st.floats(allow_nan=False, allow_infinity=False)
integers = st.integers() | st.tuples(st.integers(0, 3000), st.integers(-3, 3)).map(
    lambda p: p[1] * 7 ** p[0]
)
binaries = st.binary(max_size=20) | st.text(_NO_SURROGATES, max_size=10).map(str.encode)
bitstrings = st.builds(BitString, st.binary(min_size=1, max_size=5), st.integers(1, 7))
export_funs = st.builds(ExportFun, atoms, atoms, st.integers(0, 255))
scalars = (
    atoms
    | integers
    | floats
    | binaries
    | bitstrings
    | st.booleans()
    | st.none()
    | export_funs
    | st.lists(st.integers(0, 0x10FFFF).filter(lambda c: not 0xD800 <= c <= 0xDFFF), max_size=5)
)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    lists = st.lists(children, max_size=5)
    tails = children.filter(lambda t: type(t) not in (list, ImproperList))
    hashable = children.filter(_hashable)
    return (
        lists
        | lists.map(tuple)
        | st.builds(ImproperList, st.lists(children, min_size=1, max_size=4), tails)
        | st.dictionaries(hashable, children, max_size=4)
        | st.lists(st.tuples(children, children), max_size=4).map(TermMap)
    )


def _hashable(t: Any) -> bool:
    try:
        hash(t)
    except TypeError:
        return False
    return True


terms = st.recursive(scalars, _containers, max_leaves=30)


@settings(max_examples=500, deadline=None)
@given(terms)
def test_round_trip(term: Any) -> None:
    text = format_term(term)
    back = parse_term(text)
    assert same(back, term), (text, back)
    # A trailing dot and surrounding whitespace do not matter.
    assert same(parse_term(f"  {text} .\n"), term)


@settings(max_examples=200, deadline=None)
@given(terms)
def test_round_trip_with_strings(term: Any) -> None:
    assert same(parse_term(format_term(term, strings=True)), term)


@settings(max_examples=300, deadline=None)
@given(floats)
def test_float_text_is_shortest_and_exact(x: float) -> None:
    text = format_term(x)
    assert "." in text
    assert same(parse_term(text), x)
    assert len(text.lstrip("-")) <= len(repr(abs(x))) + 3


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_parse_never_crashes(text: str) -> None:
    try:
        parse_term(text)
    except TermSyntaxError:
        pass


# ---------------------------------------------------------------------------
# Against a real Erlang node (optional)

_ERL_SCRIPT = r"""
{ok, Bin} = file:read_file("IN"),
Lines = binary:split(Bin, <<"\n">>, [global, trim]),
Read = fun(L) ->
    case catch erl_scan:string(unicode:characters_to_list(L) ++ ". ") of
        {ok, Toks, _} ->
            case catch erl_parse:parse_term(Toks) of
                {ok, T} -> io_lib:format("~w", [T]);
                E -> io_lib:format("ERROR ~w", [E])
            end;
        E -> io_lib:format("ERROR ~w", [E])
    end
end,
Out = [[Read(L), $\n] || L <- Lines],
ok = file:write_file("OUT", unicode:characters_to_binary(Out)),
halt().
"""

# Terms whose format_term text is also exactly what Erlang's ~w prints.
_W_COMPATIBLE: list[Any] = [
    A("ok"),
    A("hello world"),
    A("Elixir.Foo"),
    A("a'b\\c"),
    A("\n\t\x00\x01\x1b\x7f\x80\x9f"),
    A("ñandú"),
    A(""),
    True,
    None,
    0,
    -42,
    2**200,
    -(2**64),
    1.0,
    -0.0,
    0.1,
    1000.0,
    123456.0,
    1.0e16,
    0.0015,
    1.234e-4,
    5.0e-324,
    1.7976931348623157e308,
    b"\x00\xff",
    BitString(b"\x01\x40", 3),
    (),
    (1, (2, [])),
    [104, 105],
    ImproperList([1, 2], A("t")),
    {A("a"): 1},
    ExportFun(A("lists"), A("reverse"), 1),
]

_RNG = random.Random(2024)
_W_COMPATIBLE += [
    _RNG.random() * 10.0 ** _RNG.randint(-30, 30) * _RNG.choice((1, -1)) for _ in range(300)
]
_W_COMPATIBLE += [float(_RNG.getrandbits(64)) / 2 ** _RNG.randint(0, 80) for _ in range(300)]

_OTHER: list[Any] = [
    b"text",
    "héllo".encode(),
    "€ text",
    A("привет"),
    A("maybe"),
    A("a\u2028"),
    {A("a"): 1, A("b"): [2.5, b"x"], (1, 2): {}},
    TermMap([(1, A("int")), (1.0, A("float")), ([1], A("list"))]),
    BitString(b"\xff", 1),
    [0x1F600, 0x20AC],
]


@pytest.mark.skipif(shutil.which("erl") is None, reason="erl is not on PATH")
def test_erlang_reads_our_text(tmp_path: Path) -> None:
    terms_ = _W_COMPATIBLE + _OTHER
    texts = [format_term(t) for t in terms_] + [format_term(t, strings=True) for t in terms_]
    src, dst = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf-8")
    script = _ERL_SCRIPT.replace("IN", str(src)).replace("OUT", str(dst))
    subprocess.run(
        ["erl", "-noshell", "-eval", script], check=True, timeout=120, capture_output=True
    )
    lines = dst.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == len(texts)
    for i, (text, erl_text) in enumerate(zip(texts, lines, strict=True)):
        term = terms_[i % len(terms_)]
        assert not erl_text.startswith("ERROR"), (text, erl_text)
        # What Erlang read, printed by Erlang and read back by us, is the same term.
        expected = term.encode() if isinstance(term, str) else term
        assert same(parse_term(erl_text), expected), (text, erl_text)
        if i < len(_W_COMPATIBLE):
            assert text == erl_text
