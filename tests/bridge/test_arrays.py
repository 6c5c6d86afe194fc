"""Arrays as ``{'$nd', Type, Shape, Data}`` terms and zero-copy chunked frames
(no sockets: the frames are decoded by a second sans-I/O connection)."""

from __future__ import annotations

import array
import tracemalloc
from typing import Any

import numpy as np
import pytest

from bridge.arrays import (
    ND_TAG,
    ZERO_COPY_THRESHOLD,
    UnsupportedArray,
    encode_chunks,
    from_term,
    is_array_term,
    to_term,
)
from dist_proto import decode, encode
from dist_proto.flags import DEFAULT_FLAGS, DFlag
from dist_proto.framing import ControlMessage, DistConnection
from dist_proto.terms import Atom, Pid

F, S, U, C = Atom("f"), Atom("s"), Atom("u"), Atom("c")
TO = Pid(Atom("app@127.0.0.1"), 40, 0, 3)
FROM = Pid(Atom("py@127.0.0.1"), 7, 0, 5)

ROUND_TRIPS = [
    ("float16", (F, 16)), ("float32", (F, 32)), ("float64", (F, 64)),
    ("int8", (S, 8)), ("int16", (S, 16)), ("int32", (S, 32)), ("int64", (S, 64)),
    ("uint8", (U, 8)), ("uint16", (U, 16)), ("uint32", (U, 32)), ("uint64", (U, 64)),
    ("complex64", (C, 64)), ("complex128", (C, 128)),
]


@pytest.mark.parametrize(("dtype", "nx_type"), ROUND_TRIPS, ids=[d for d, _ in ROUND_TRIPS])
def test_round_trip_of_every_supported_dtype(dtype: str, nx_type: tuple[Atom, int]) -> None:
    arr = (np.arange(24) % 7 + (1j if dtype.startswith("complex") else 0)).astype(dtype).reshape(2, 3, 4)
    term = to_term(arr)
    assert term[:3] == (ND_TAG, nx_type, (2, 3, 4))
    assert bytes(term[3]) == arr.astype(np.dtype(dtype).newbyteorder("<")).tobytes()
    back = from_term(decode(encode(term)))
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    assert np.array_equal(back, arr)


def test_bool_travels_as_nx_predicate_u8() -> None:
    arr = np.array([[True, False, True]])
    term = to_term(arr)
    assert term[1:3] == ((U, 8), (1, 3)) and bytes(term[3]) == b"\x01\x00\x01"
    back = from_term(term)
    assert back.dtype == np.uint8 and back.tolist() == [[1, 0, 1]]


def test_scalars_and_empty_arrays() -> None:
    term = to_term(np.array(2.5))
    assert term[2] == () and from_term(term).item() == 2.5
    empty = to_term(np.zeros((0, 3), dtype=np.int32))
    assert empty[2] == (0, 3) and len(empty[3]) == 0 and from_term(empty).shape == (0, 3)


@pytest.mark.parametrize("dtype", ["object", "<U3", "S2", "datetime64[s]", "timedelta64[s]",
                                   "i4,f8", "longdouble"])
def test_dtypes_without_an_nx_type_are_refused_by_name(dtype: str) -> None:
    arr = np.zeros(2, dtype=dtype)
    if arr.dtype.itemsize * 8 in (32, 64) and arr.dtype.kind == "f":
        pytest.fail("longdouble is 64-bit here: the case proves nothing")
    with pytest.raises(UnsupportedArray, match="has no Nx type"):
        to_term(arr)


def test_nx_types_without_a_numpy_dtype_and_malformed_terms() -> None:
    with pytest.raises(UnsupportedArray, match="bf"):
        from_term((ND_TAG, (Atom("bf"), 16), (2,), b"\0" * 4))
    with pytest.raises(ValueError, match="needs 24"):
        from_term((ND_TAG, (F, 32), (2, 3), b"\0" * 20))
    with pytest.raises(ValueError, match="non-negative"):
        from_term((ND_TAG, (F, 32), (-1,), b""))
    with pytest.raises(ValueError, match="not an array term"):
        from_term((Atom("nd"), (F, 32), (1,), b"\0" * 4))
    with pytest.raises(ValueError, match="must be a binary"):
        from_term((ND_TAG, (F, 32), (1,), [0, 0, 0, 0]))
    assert not is_array_term((ND_TAG, (F, 32)))


def test_non_contiguous_fortran_and_big_endian_arrays_are_copied_once_into_c_order() -> None:
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    for arr in (base[:, ::2], np.asfortranarray(base), base.astype(">f8")):
        term = to_term(arr)
        assert not np.shares_memory(np.frombuffer(term[3], dtype=np.uint8), arr)
        assert np.array_equal(from_term(term), arr)
        assert bytes(term[3]) == np.ascontiguousarray(arr, dtype="<f8").tobytes()


def test_views_share_memory_both_ways() -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    term = to_term(arr)
    assert np.shares_memory(np.frombuffer(term[3], dtype=np.uint8), arr), "to_term copied"
    data = bytearray(arr.tobytes())
    view = from_term((ND_TAG, (F, 32), (3, 4), data))
    assert np.shares_memory(view, np.frombuffer(data, dtype=np.uint8)), "from_term copied"
    assert view.flags.writeable
    copied = from_term((ND_TAG, (F, 32), (3, 4), data), copy=True)
    assert not np.shares_memory(copied, np.frombuffer(data, dtype=np.uint8))


def test_a_zero_copy_decode_gives_a_view_of_the_received_buffer() -> None:
    received = bytes(encode((Atom("frame"), to_term(np.arange(6, dtype=np.int64)))))
    _, term = decode(received, zero_copy=True)
    arr = from_term(term)
    assert arr.tolist() == list(range(6))
    assert np.shares_memory(arr, np.frombuffer(received, dtype=np.uint8))


def receive(chunks: list[Any], flags: int = int(DEFAULT_FLAGS)) -> Any:
    conn = DistConnection(flags)
    conn.receive_data(b"".join(chunks))
    event = conn.next_event()
    assert type(event) is ControlMessage
    return event.control


def sender(flags: int = int(DEFAULT_FLAGS), **kw: Any) -> DistConnection:
    return DistConnection(flags, **kw)


def test_chunks_decode_as_the_documented_term_and_hold_views_not_copies() -> None:
    arr = np.arange(1000, dtype=np.float64)
    blob = bytes(range(256)) * (ZERO_COPY_THRESHOLD // 256)
    conn = sender(fragment_size=1 << 30)  # the codec's frame for comparison must be whole
    msg = (Atom("result"), arr, [blob, b"small"], {Atom("k"): array.array("i", [1, 2, 3])})
    chunks = encode_chunks(lambda m: conn.encode_send(TO, m, FROM), msg)
    assert chunks is not None
    assert any(type(c) is memoryview and np.shares_memory(np.asarray(c), arr) for c in chunks)
    assert any(type(c) is memoryview and c.obj is blob for c in chunks)
    got = receive(chunks)
    assert got.to_pid == TO
    tag, nd, (big, small), mapping = got.message
    assert (tag, big, small) == (Atom("result"), blob, b"small")
    assert nd[:3] == (ND_TAG, (F, 64), (1000,)) and np.array_equal(from_term(nd), arr)
    assert mapping == {Atom("k"): array.array("i", [1, 2, 3]).tobytes()}
    # The same bytes the codec makes for the same term, copied.
    expected = conn.encode_send(TO, (Atom("result"), to_term(arr), [blob, b"small"],
                                     {Atom("k"): array.array("i", [1, 2, 3]).tobytes()}), FROM)
    assert b"".join(chunks) == expected


def test_a_message_without_buffers_is_left_to_the_codec() -> None:
    conn = sender()
    assert encode_chunks(lambda m: conn.encode_send(TO, m, FROM), (Atom("x"), object())) is None
    assert encode_chunks(lambda m: conn.encode_send(TO, m, FROM), (1, b"short")) is None


def test_without_dist_header_and_when_fragmented() -> None:
    arr = np.arange(300, dtype=np.uint8)
    plain = int(DEFAULT_FLAGS) & ~int(DFlag.DIST_HDR_ATOM_CACHE | DFlag.FRAGMENTS)
    conn = sender(plain)
    chunks = encode_chunks(lambda m: conn.encode_send(TO, m, FROM), (arr, 1))
    assert chunks is not None and np.array_equal(from_term(receive(chunks, plain).message[0]), arr)
    frag = sender(fragment_size=64)
    msg = (arr, "x" * 500)  # the rest of the message alone is fragmented: sent whole, copied
    chunks = encode_chunks(lambda m: frag.encode_send(TO, m, FROM), msg)
    assert chunks is not None and len(chunks) == 1
    receiver = DistConnection(int(DEFAULT_FLAGS))
    receiver.receive_data(chunks[0])
    events = [e for e in receiver.events() if type(e) is ControlMessage]
    nd, text = events[0].control.message
    assert np.array_equal(from_term(nd), arr) and text == b"x" * 500


def test_encoding_8_mib_allocates_no_copy_of_the_array() -> None:
    arr = np.ones(1024 * 1024, dtype=np.float64)  # 8 MiB
    conn = sender()
    tracemalloc.start()
    try:
        chunks = encode_chunks(lambda m: conn.encode_send(TO, m, FROM), (Atom("frame"), arr))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert chunks is not None and sum(len(c) for c in chunks) > arr.nbytes
    assert peak < 64 * 1024, f"{peak} bytes allocated while encoding"
    tracemalloc.start()
    try:
        conn.encode_send(TO, (Atom("frame"), arr.tobytes()), FROM)
        _, copied_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert copied_peak > arr.nbytes  # what the copying path costs, for contrast


def test_numpy_scalars_become_numbers_and_buffer_objects_binaries() -> None:
    conn = sender()
    chunks = encode_chunks(lambda m: conn.encode_send(TO, m, FROM),
                           (np.float64(1.5), np.int32(-3), np.bool_(True)))
    assert chunks is not None and receive(chunks).message == (1.5, -3, True)
    grid = array.array("h", range(6))  # a buffer object: its bytes, as a binary
    chunks = encode_chunks(lambda m: conn.encode_send(TO, m, FROM), [grid])
    assert chunks is not None and receive(chunks).message == [grid.tobytes()]


def test_large_typed_memoryviews_are_written_by_their_bytes() -> None:
    doubles = array.array("d", range(ZERO_COPY_THRESHOLD // 8))
    conn = sender(fragment_size=1 << 30)
    for value in (memoryview(doubles), memoryview(doubles)[::2]):  # contiguous, then strided
        trigger = array.array("b", [1])  # a buffer object: the message takes the chunked path
        chunks = encode_chunks(lambda m: conn.encode_send(TO, m, FROM), (trigger, value))
        assert chunks is not None
        got = receive(chunks).message[1]
        assert got == value.tobytes()
