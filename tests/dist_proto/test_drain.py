"""``DistConnection.drain``: the compiled scan of BEAM's steady-state frames against the
Python framing, on streams built the way BEAM builds them (a header that writes an atom
to the cache the first time, then headers that only refer to it), whole, cut into
chunks, and corrupted.

The compiled side is ``dist_proto._etf_core.scan_frames``; without the core
(``BEAM_BRIDGE_PURE`` or no compiler) both sides are the Python framing, and
``test_etf_core.py`` is what fails.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dist_proto import etf
from dist_proto.control import (
    NO_PAYLOAD,
    AliasSend,
    Exit,
    Link,
    Monitor,
    RegSend,
    Send,
)
from dist_proto.errors import DecodeError, ProtocolError
from dist_proto.flags import DEFAULT_FLAGS
from dist_proto.framing import NEED_DATA, TICK, ControlMessage, DistConnection
from dist_proto.terms import Atom, Pid, Reference

NODE = Atom("beam@127.0.0.1")
PIDS = [Pid(NODE, i, 0, 7) for i in range(3)]
REF = Reference(Atom("py@127.0.0.1"), 5, (1, 2, 3))
NAMES = [Atom("py_sink"), Atom("rex"), Atom("true"), Atom("\u00e9" * 200)]  # 400 bytes: long atoms


class BeamStyleSender:
    """Frames as BEAM writes them with DIST_HDR_ATOM_CACHE: every atom of the control
    term goes through the header; the first use of an atom writes it to its cache slot,
    later uses only refer to the slot."""

    def __init__(self) -> None:
        self.slots: dict[Atom, int] = {}

    def _atom_refs(self, atoms: list[Atom]) -> tuple[bytes, dict[Atom, int]]:
        uniq = list(dict.fromkeys(atoms))
        n = len(uniq)
        flags = bytearray(n // 2 + 1)
        fresh = [a for a in uniq if a not in self.slots]
        long_atoms = any(len(a.name.encode()) > 255 for a in fresh)
        if long_atoms:  # the last half-byte's low bit: 2-byte lengths for new entries
            flags[n // 2] |= 1 << (4 * (n & 1))
        refs = b""
        index: dict[Atom, int] = {}
        for i, atom in enumerate(uniq):
            new = atom not in self.slots
            if new:
                self.slots[atom] = (len(self.slots) * 37) % 2048
            slot = self.slots[atom]
            nib = (slot >> 8) | (8 if new else 0)
            flags[i >> 1] |= nib << (4 * (i & 1))
            refs += bytes([slot & 0xFF])
            if new:
                text = atom.name.encode()
                refs += struct.pack(">H", len(text)) if long_atoms else bytes([len(text)])
                refs += text
            index[atom] = i
        return bytes([n]) + bytes(flags) + refs, index

    def frame(self, control: tuple[Any, ...], payload: Any = NO_PAYLOAD) -> bytes:
        atoms = [x for x in control if type(x) is Atom] + [x.node for x in control if type(x) is Pid]
        header, index = self._atom_refs(atoms)
        body = bytes([104, len(control)]) + b"".join(_element(x, index) for x in control)
        if payload is not NO_PAYLOAD:
            body += etf.encode(payload)[1:]
        data = b"\x83\x44" + header + body
        return struct.pack(">I", len(data)) + data


def _element(x: Any, index: dict[Atom, int]) -> bytes:
    if type(x) is Atom:
        return bytes([82, index[x]])
    if type(x) is Pid:
        return bytes([88, 82, index[x.node]]) + struct.pack(">III", x.id, x.serial, x.creation)
    return etf.encode(x)[1:]


payloads = st.recursive(
    st.one_of(st.integers(-(2**40), 2**40), st.sampled_from(NAMES), st.binary(max_size=8),
              st.text(max_size=5), st.none(), st.booleans()),
    lambda inner: st.one_of(st.tuples(inner, inner), st.lists(inner, max_size=3)),
    max_leaves=6,
)


@st.composite
def messages(draw: Any) -> tuple[tuple[Any, ...], Any]:
    """A control tuple as BEAM sends it, and its payload."""
    kind = draw(st.sampled_from(["send", "reg_send", "send_sender", "alias_send", "link",
                                 "monitor", "exit", "bad_reg_send"]))
    a, b = draw(st.sampled_from(PIDS)), draw(st.sampled_from(PIDS))
    name = draw(st.sampled_from(NAMES))
    msg = draw(payloads)
    if kind == "send":
        return (2, Atom(""), b), msg
    if kind == "reg_send":
        return (6, a, Atom(""), name), msg
    if kind == "send_sender":
        return (22, a, b), msg
    if kind == "alias_send":
        return (33, a, REF), msg
    if kind == "link":
        return (1, a, b), NO_PAYLOAD
    if kind == "monitor":
        return (19, a, name, REF), NO_PAYLOAD
    if kind == "exit":
        return (3, a, b, msg), NO_PAYLOAD
    return (6, a, Atom(""), 42), msg  # a REG_SEND whose name is not an atom: the Python error


def _stream(msgs: list[tuple[tuple[Any, ...], Any]], ticks: list[bool]) -> bytes:
    sender = BeamStyleSender()
    out = b""
    for (control, payload), tick in zip(msgs, ticks + [False] * len(msgs), strict=False):
        out += sender.frame(control, payload)
        if tick:
            out += b"\x00\x00\x00\x00"
    return out


def _outcome(data: bytes, cuts: list[int], compiled: bool) -> tuple[list[Any], str | None]:
    """What drain gives for `data` fed in pieces: the messages, then the error (type and text)."""
    conn = DistConnection(DEFAULT_FLAGS, compiled_framing=compiled, max_frame=1 << 16)
    got: list[Any] = []
    points = sorted({min(c, len(data)) for c in cuts})
    try:
        for i, j in zip([0, *points], [*points, len(data)], strict=True):
            conn.receive_data(data[i:j])
            while batch := conn.drain():
                got.extend(batch)
    except (ProtocolError, DecodeError) as exc:
        return got, f"{type(exc).__name__}: {exc}"
    return got, None


def _events_one_by_one(data: bytes) -> tuple[list[Any], str | None]:
    conn = DistConnection(DEFAULT_FLAGS, max_frame=1 << 16)
    conn.receive_data(data)
    got: list[Any] = []
    try:
        while (ev := conn.next_event()) is not NEED_DATA:
            got.append(ev.control if type(ev) is ControlMessage else ev)
    except (ProtocolError, DecodeError) as exc:
        return got, f"{type(exc).__name__}: {exc}"
    return got, None


def test_scan_takes_steady_state_frames_and_stops_at_a_cache_write() -> None:
    core = etf.compiled()
    assert core is not None and core.scan_frames is not None, "the compiled core is not built"
    sender = BeamStyleSender()
    first = sender.frame((6, PIDS[0], Atom(""), NAMES[0]), (Atom("seq"), 1))
    steady = [sender.frame((6, PIDS[0], Atom(""), NAMES[0]), (Atom("seq"), i)) for i in range(2, 5)]
    cache: list[Any] = [None] * 2048
    data = first + b"".join(steady)
    # the first frame writes to the cache: the scan leaves it (and all after it) to Python
    assert core.scan_frames(data, 0, cache, 1 << 20, NO_PAYLOAD) == ([], 0)
    conn = DistConnection(DEFAULT_FLAGS, compiled_framing=False)
    conn.receive_data(first)
    assert conn.drain() == [RegSend(PIDS[0], NAMES[0], (Atom("seq"), 1))]
    events, pos = core.scan_frames(data, len(first), conn._cache, 1 << 20, NO_PAYLOAD)
    assert pos == len(data)
    assert events == [RegSend(PIDS[0], NAMES[0], (Atom("seq"), i)) for i in range(2, 5)]
    assert all(type(e) is RegSend for e in events)  # built in C, as framing._control builds them


def test_scan_gives_other_controls_as_term_and_payload() -> None:
    core = etf.compiled()
    assert core is not None and core.scan_frames is not None
    sender = BeamStyleSender()
    warm = sender.frame((1, PIDS[0], PIDS[1])) + sender.frame((2, Atom(""), PIDS[1]), 6)
    conn = DistConnection(DEFAULT_FLAGS, compiled_framing=False)
    conn.receive_data(warm)
    assert conn.drain() == [Link(PIDS[0], PIDS[1]), Send(PIDS[1], 6)]
    data = sender.frame((1, PIDS[1], PIDS[0])) + sender.frame((2, Atom(""), PIDS[0]), 7)
    events, pos = core.scan_frames(data, 0, conn._cache, 1 << 20, NO_PAYLOAD)
    assert pos == len(data)
    assert events == [(1, PIDS[1], PIDS[0]), NO_PAYLOAD, Send(PIDS[0], 7)]


def test_scan_stops_at_ticks_and_incomplete_frames() -> None:
    core = etf.compiled()
    assert core is not None and core.scan_frames is not None
    sender = BeamStyleSender()
    conn = DistConnection(DEFAULT_FLAGS, compiled_framing=False)
    conn.receive_data(sender.frame((2, Atom(""), PIDS[0]), 1))
    assert conn.drain() == [Send(PIDS[0], 1)]
    one = sender.frame((2, Atom(""), PIDS[0]), 2)
    for data, want in ((one + b"\x00\x00\x00\x00" + one, len(one)), (one + one[:-1], len(one)),
                       (one + b"\x00\x00", len(one))):
        events, pos = core.scan_frames(data, 0, conn._cache, 1 << 20, NO_PAYLOAD)
        assert (events, pos) == ([Send(PIDS[0], 2)], want)


def test_drain_returns_controls_and_ticks() -> None:
    sender = BeamStyleSender()
    data = sender.frame((2, Atom(""), PIDS[0]), 1) + b"\x00\x00\x00\x00"
    data += sender.frame((2, Atom(""), PIDS[0]), 2)
    for compiled in (False, True):
        conn = DistConnection(DEFAULT_FLAGS, compiled_framing=compiled)
        conn.receive_data(data)
        assert conn.drain() == [Send(PIDS[0], 1), TICK, Send(PIDS[0], 2)]
        assert conn.drain() == []


def test_an_error_comes_after_the_messages_before_it() -> None:
    sender = BeamStyleSender()
    good = [sender.frame((2, Atom(""), PIDS[0]), i) for i in range(3)]
    bad = struct.pack(">I", 3) + b"\x83\x44\xff"  # a header that runs past its packet
    for compiled in (False, True):
        conn = DistConnection(DEFAULT_FLAGS, compiled_framing=compiled)
        conn.receive_data(b"".join(good) + bad + good[0])
        assert conn.drain() == [Send(PIDS[0], i) for i in range(3)]
        with pytest.raises(ProtocolError, match="truncated"):
            conn.drain()
        with pytest.raises(ProtocolError):  # the connection stays in its error state
            conn.drain()


@settings(max_examples=150, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=25), st.lists(st.booleans(), max_size=25),
       st.lists(st.integers(0, 4000), max_size=8))
def test_compiled_and_python_framing_agree(msgs: list[Any], ticks: list[bool], cuts: list[int]) -> None:
    data = _stream(msgs, ticks)
    whole = _events_one_by_one(data)
    assert _outcome(data, [], compiled=False) == whole
    assert _outcome(data, [], compiled=True) == whole
    assert _outcome(data, cuts, compiled=True) == whole


@settings(max_examples=300, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=12), st.integers(0, 10**6), st.integers(0, 255),
       st.sampled_from(["flip", "truncate", "length"]), st.lists(st.integers(0, 2000), max_size=4))
def test_corrupted_streams_fail_alike(msgs: list[Any], where: int, byte: int, how: str,
                                      cuts: list[int]) -> None:
    data = bytearray(_stream(msgs, []))
    i = where % len(data)
    if how == "flip":
        data[i] = byte
    elif how == "truncate":
        del data[i:]
    else:  # a frame length that lies
        frame_starts = [0]
        while frame_starts[-1] < len(data):
            frame_starts.append(frame_starts[-1] + 4 + struct.unpack_from(">I", data, frame_starts[-1])[0])
        at = frame_starts[where % (len(frame_starts) - 1)]
        struct.pack_into(">I", data, at, byte * 97)
    corrupted = bytes(data)
    expected = _events_one_by_one(corrupted)
    assert _outcome(corrupted, [], compiled=True) == expected
    assert _outcome(corrupted, cuts, compiled=True) == _outcome(corrupted, cuts, compiled=False)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 400), st.integers(0, 1 << 20),
       st.lists(st.sampled_from([None, NODE, Atom(""), NAMES[0], 5]), min_size=0, max_size=8))
def test_core_scan_frames_on_random_bytes(data: bytes, pos: int, max_frame: int, cache: list[Any]) -> None:
    """Memory safety of the compiled scan: any bytes, offsets and cache contents only
    return frames or raise the argument errors (run under ASan per docs/codec.md)."""
    core = etf.compiled()
    assert core is not None and core.scan_frames is not None
    try:
        events, end = core.scan_frames(data, pos, cache, max_frame, NO_PAYLOAD)
    except ValueError:
        assert pos > len(data)
        return
    assert pos <= end <= len(data)
    assert (end == pos) == (events == [])


def test_core_scan_frames_argument_errors() -> None:
    core = etf.compiled()
    assert core is not None and core.scan_frames is not None
    with pytest.raises(TypeError):
        core.scan_frames(bytearray(b"x"), 0, [], 10, NO_PAYLOAD)
    with pytest.raises(TypeError):
        core.scan_frames(b"x", 0, (), 10, NO_PAYLOAD)
    with pytest.raises(ValueError):
        core.scan_frames(b"x", 5, [], 10, NO_PAYLOAD)
    assert core.scan_frames(b"", 0, [], 10, NO_PAYLOAD) == ([], 0)


def test_mapping_uses_python_framing() -> None:
    from dist_proto.mapping import Mapping

    sender = BeamStyleSender()
    data = sender.frame((2, Atom(""), PIDS[0]), b"text")
    conn = DistConnection(DEFAULT_FLAGS, mapping=Mapping(strings=True))
    conn.receive_data(data)
    assert conn.drain() == [Send(PIDS[0], "text")]


def test_exit_and_monitor_controls_round_trip() -> None:
    sender = BeamStyleSender()
    data = sender.frame((3, PIDS[0], PIDS[1], Atom("normal"))) + sender.frame((19, PIDS[0], NAMES[0], REF))
    data += sender.frame((3, PIDS[0], PIDS[1], Atom("normal")))
    for compiled in (False, True):
        conn = DistConnection(DEFAULT_FLAGS, compiled_framing=compiled)
        conn.receive_data(data)
        assert conn.drain() == [Exit(PIDS[0], PIDS[1], Atom("normal")), Monitor(PIDS[0], NAMES[0], REF),
                                Exit(PIDS[0], PIDS[1], Atom("normal"))]


def test_alias_send_is_built_in_c() -> None:
    sender = BeamStyleSender()
    data = sender.frame((33, PIDS[0], REF), 1) + sender.frame((33, PIDS[0], REF), 2)
    conn = DistConnection(DEFAULT_FLAGS)
    conn.receive_data(data)
    assert conn.drain() == [AliasSend(PIDS[0], REF, 1), AliasSend(PIDS[0], REF, 2)]
