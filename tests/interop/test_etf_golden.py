"""Golden records from real BEAM ``term_to_binary``: decode, re-encode, BEAM checks ``=:=``.

For every term of a corpus built on the BEAM and every option set of
``term_to_binary/2``, Python decodes the BEAM's bytes and encodes them again;
the BEAM then checks ``binary_to_term(Ours) =:= T``. Bytes travel through files
(the corpus holds multi-megabyte records).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from dist_proto import Atom, ExportFun, Fun, Pid, Port, Reference, TermMap
from dist_proto.etf import Codec
from tests.codecs import by_codec

pytestmark = [pytest.mark.interop, pytest.mark.slow, by_codec]

# Each entry is an Erlang expression; all are evaluated in one go on the node.
# Big and deep terms are built from BIFs (erl_eval funs are slow; OTP 28 here
# has no compiler).
CORPUS: list[str] = [
    # atoms
    "a", "''", "'hello world'", "true", "false", "undefined", "nil",
    "list_to_atom([1087, 1088, 1080, 1074, 1077, 1090])",
    "list_to_atom(lists:duplicate(255, $x))",
    "list_to_atom(lists:duplicate(255, 1087))",
    "list_to_atom([128512])",
    # integers at every boundary
    "0", "1", "255", "256", "-1", "-255", "-256",
    "2147483647", "2147483648", "-2147483648", "-2147483649",
    "4294967295", "4294967296", "1 bsl 63", "-(1 bsl 63)", "1 bsl 64", "-(1 bsl 64)",
    "(1 bsl 2040) - 1", "1 bsl 2040", "-(1 bsl 2040)",
    "1 bsl 20000", "-(7 bsl 33333)",
    # floats
    "0.0", "binary_to_term(<<131, 70, 128, 0, 0, 0, 0, 0, 0, 0>>)", "1.5", "-1.0e300",
    "5.0e-324", "1.7976931348623157e308", "0.1", "-3.141592653589793", "1.0e15", "123456789.0",
    # binaries and bitstrings
    "<<>>", "<<\"hello\">>", "binary:copy(<<0, 1, 2, 255>>, 100000)",
    "<<1:1>>", "<<255, 3:3>>", "<<0:7>>", "<<1, 2, 3, 127:7>>",
    # tuples
    "{}", "{a}", "{1, 2, 3}", "list_to_tuple(lists:seq(1, 255))",
    "list_to_tuple(lists:seq(1, 256))", "list_to_tuple(lists:seq(1, 70000))",
    # lists and strings
    "[]", "\"abc\"", "[1, 2, 300]", "[a, [b, [c]], {d}]", "[[]]",
    "lists:duplicate(65535, $a)", "lists:duplicate(65536, $a)", "lists:duplicate(70000, $z)",
    "lists:seq(1, 100000)", "[true, false, 1, 0]",
    # improper lists
    "[a | b]", "[1, 2 | 3]", "[\"x\" | <<\"bin\">>]", "[[] | []]", "[1 | {}]", "[a | #{}]",
    # maps
    "#{}", "#{a => 1}", "#{1 => a, 1.0 => b}", "#{true => 1, 1 => 2}",
    "#{[1] => x, #{a => 1} => y, {1} => z, [] => w}",
    "maps:from_list([{I, I * I} || I <- lists:seq(1, 100)])",
    "maps:from_list([{integer_to_binary(I), [I]} || I <- lists:seq(1, 1000)])",
    "#{#{#{k => v} => 1} => #{1.0 => 1, 1 => 1.0}}",
    "#{a => #{b => #{c => [1, 2]}}, <<\"k\">> => {1, 2}}",
    # pids, refs, ports
    "self()", "make_ref()", "erlang:monitor(process, self(), [{alias, demonitor}])",
    "erlang:alias()", "hd(erlang:ports())",
    "{'$gen_call', {self(), make_ref()}, {get, key}}",
    "[erlang:alias() | make_ref()]",
    # funs
    "fun lists:map/2", "fun erlang:self/0",
    "begin Y = 42, fun(X) -> X + Y end end",
    "begin Z = {a, <<\"b\">>}, fun() -> Z end end",
    # deep nesting (built from the wire form: BEAM decodes them iteratively)
    "binary_to_term(iolist_to_binary([131, binary:copy(<<108, 0, 0, 0, 1>>, 100000), 106,"
    " binary:copy(<<106>>, 100000)]))",
    "binary_to_term(iolist_to_binary([131, binary:copy(<<104, 1>>, 100000), 106]))",
    "binary_to_term(iolist_to_binary([131, binary:copy(<<116, 0, 0, 0, 1, 119, 1, 97>>,"
    " 100000), 106]))",
    "binary_to_term(iolist_to_binary([131, binary:copy(<<108, 0, 0, 0, 1, 97, 1>>, 100000),"
    " 106]))",
]
# OTP 27+ tells 0.0 and -0.0 apart (before, such a map has one key)
CORPUS_27 = ["#{0.0 => a, binary_to_term(<<131, 70, 128, 0, 0, 0, 0, 0, 0, 0>>) => b}"]

OPTIONS = [
    "[]", "[compressed]", "[{compressed, 9}]", "[{minor_version, 0}]",
    "[{minor_version, 1}]", "[{minor_version, 2}]", "[deterministic]",
]


@pytest.fixture(scope="module")
def corpus(beam: Any) -> int:
    exprs = CORPUS + (CORPUS_27 if beam.runtime.major >= 27 else [])
    beam.eval("GoldenCorpus = [" + ",\n".join(exprs) + "], ok")
    return len(exprs)


_counter = itertools.count()


def _roundtrip(
    codec: Codec, beam: Any, tmp_path: Path, options: str, *, compressed: bool
) -> None:
    n = next(_counter)  # the node keeps bindings between calls: fresh names each time
    out_file = tmp_path / "beam.bin"
    back_file = tmp_path / "python.bin"
    beam.eval(
        f'ok = file:write_file("{out_file}", term_to_binary('
        f"[term_to_binary(T, {options}) || T <- GoldenCorpus]))"
    )
    records = codec.decode(out_file.read_bytes())
    again = [codec.encode(codec.decode(r), compressed=compressed) for r in records]
    back_file.write_bytes(codec.encode(again))
    bad = codec.decode(beam.eval(
        f'{{ok, Back{n}}} = file:read_file("{back_file}"), '
        f"Ours{n} = binary_to_term(Back{n}), "
        "[I || {I, T, B} <- lists:zip3(lists:seq(1, length(GoldenCorpus)), GoldenCorpus, "
        f"Ours{n}),"
        " T =/= binary_to_term(B)]"
    ))
    failed = [CORPUS[i - 1] if i <= len(CORPUS) else CORPUS_27[0] for i in (bad or [])]
    assert not failed, f"not =:= after the Python round trip with {options}: {failed}"


@pytest.mark.parametrize("options", OPTIONS)
def test_golden_roundtrip(codec: Codec, beam: Any, corpus: int, tmp_path: Path, options: str) -> None:
    _roundtrip(codec, beam, tmp_path, options, compressed=False)


def test_golden_roundtrip_compressed_out(codec: Codec, beam: Any, corpus: int, tmp_path: Path) -> None:
    _roundtrip(codec, beam, tmp_path, "[]", compressed=True)


def test_decoded_values(codec: Codec, beam: Any, corpus: int) -> None:
    """Spot checks of the Python mapping on real BEAM output."""
    def get(expr: str) -> Any:
        return codec.decode(beam.eval(expr))

    assert get("undefined") is None
    assert get("nil") == Atom("nil")
    assert get("[true | false]").tail is False
    assert get("\"abc\"") == [97, 98, 99]
    assert type(get("self()")) is Pid
    assert type(get("make_ref()")) is Reference
    assert type(get("hd(erlang:ports())")) is Port
    assert get("fun lists:map/2") == ExportFun(Atom("lists"), Atom("map"), 2)
    assert type(get("begin W = 1, fun() -> W end end")) is Fun
    m = get("#{1 => a, 1.0 => b}")
    assert type(m) is TermMap and m[1] == Atom("a") and m[1.0] == Atom("b")
    assert get("#{a => 1}") == {Atom("a"): 1}


def test_python_values_through_beam(codec: Codec, beam: Any, tmp_path: Path) -> None:
    """Python builds, BEAM decodes and re-encodes, Python decodes an equal value."""
    values = [
        Atom("ok"), True, None, 0, -1, 2**100, -(2**3000), 1.25, -0.0, b"bin", [1, 2, 3],
        [Atom("a"), 1.5], (), (Atom("x"), [], {}), {Atom("k"): [b"v"]},
        TermMap([(1, Atom("a")), (1.0, Atom("b"))]), list(range(300)),
        {(1, 2): [3], b"k": {Atom("n"): None}},
    ]
    path = tmp_path / "values.bin"
    path.write_bytes(codec.encode(values))
    back = codec.decode(beam.eval(f'{{ok, PyValues}} = file:read_file("{path}"), binary_to_term(PyValues)'))
    assert back == values


def test_byte_exact_where_beam_is_canonical(codec: Codec, beam: Any, corpus: int, tmp_path: Path) -> None:
    """Without maps or ports, our bytes equal term_to_binary's on OTP 26+ (UTF-8 atoms)."""
    if beam.runtime.major < 26:
        pytest.skip("OTP 25 term_to_binary emits Latin-1 atom tags by default")
    out_file = tmp_path / "beam.bin"
    beam.eval(
        f'ok = file:write_file("{out_file}", term_to_binary([term_to_binary(T) || T <- GoldenCorpus]))'
    )
    records = codec.decode(out_file.read_bytes())
    differ = [
        CORPUS[i] for i, r in enumerate(records[: len(CORPUS)])
        if "#{" not in CORPUS[i] and "ports" not in CORPUS[i] and "maps:" not in CORPUS[i]
        and "116, 0" not in CORPUS[i] and codec.encode(codec.decode(r)) != r
    ]
    assert not differ
