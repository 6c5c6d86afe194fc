from typing import Any

import pytest

from dist_proto.control import (
    MESSAGE_TYPES,
    NO_PAYLOAD,
    AliasSend,
    AliasSendTT,
    AltactSigSend,
    Control,
    Demonitor,
    Exit,
    Exit2,
    Exit2TT,
    ExitTT,
    GroupLeader,
    Link,
    Monitor,
    MonitorExit,
    PayloadExit,
    PayloadExit2,
    PayloadExit2TT,
    PayloadExitTT,
    PayloadMonitorExit,
    RegSend,
    RegSendTT,
    Send,
    SendSender,
    SendSenderTT,
    SendTT,
    SpawnReply,
    SpawnReplyTT,
    SpawnRequest,
    SpawnRequestTT,
    Unlink,
    UnlinkId,
    UnlinkIdAck,
    from_term,
    normalize,
)
from dist_proto.errors import RemoteProtocolError
from dist_proto.terms import Atom, Pid, Reference

A = Pid(Atom("a@h"), 1, 0, 4)
B = Pid(Atom("b@h"), 2, 0, 5)
REF = Reference(Atom("a@h"), 4, (1, 2, 3))
TOK = (Atom("tok"), 1)
R = Atom("normal")
MSG = (Atom("hello"), [1, 2])
MFA = (Atom("erpc"), Atom("execute_call"), 4)

SAMPLES: list[Control] = [
    Link(A, B),
    Send(B, MSG),
    Exit(A, B, R),
    Unlink(A, B),
    RegSend(A, Atom("foo"), MSG),
    GroupLeader(A, B),
    Exit2(A, B, R),
    SendTT(B, TOK, MSG),
    ExitTT(A, B, TOK, R),
    RegSendTT(A, Atom("foo"), TOK, MSG),
    Exit2TT(A, B, TOK, R),
    Monitor(A, B, REF),
    Monitor(A, Atom("net_kernel"), REF),
    Demonitor(A, Atom("net_kernel"), REF),
    MonitorExit(Atom("foo"), A, REF, Atom("noproc")),
    SendSender(A, B, MSG),
    SendSenderTT(A, B, TOK, MSG),
    PayloadExit(A, B, R),
    PayloadExitTT(A, B, TOK, R),
    PayloadExit2(A, B, R),
    PayloadExit2TT(A, B, TOK, R),
    PayloadMonitorExit(B, A, REF, R),
    SpawnRequest(REF, A, B, MFA, [Atom("monitor")], [REF, Atom("m"), Atom("f"), []]),
    SpawnRequestTT(REF, A, B, MFA, [], TOK, []),
    SpawnReply(REF, A, 2, B),
    SpawnReply(REF, A, 0, Atom("notsup")),
    SpawnReplyTT(REF, A, 1, B, TOK),
    AliasSend(A, REF, MSG),
    AliasSendTT(A, REF, TOK, MSG),
    UnlinkId(2**64 - 1, A, B),
    UnlinkIdAck(1, A, B),
    AltactSigSend(4, A, REF, MSG),
    AltactSigSend(0x12, A, B, R, TOK),
]


def test_every_opcode_has_a_sample() -> None:
    assert {type(s).OP for s in SAMPLES} == set(MESSAGE_TYPES)
    assert set(MESSAGE_TYPES) == {1, 2, 3, 4, 6, 7, 8, 12, 13, 16, 18, *range(19, 38)}


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_roundtrip(msg: Control) -> None:
    term = msg.to_term()
    assert term[0] == type(msg).OP
    assert from_term(term, msg.payload) == msg


def test_shapes_on_the_wire() -> None:
    assert Send(B, MSG).to_term() == (2, Atom(""), B)
    assert RegSend(A, Atom("foo"), MSG).to_term() == (6, A, Atom(""), Atom("foo"))
    assert RegSend(A, Atom("foo"), MSG).payload == MSG
    assert Link(A, B).payload is NO_PAYLOAD
    assert AltactSigSend(4, A, REF, MSG).to_term() == (37, 4, A, REF)


def test_send_cookie_is_not_checked() -> None:
    assert from_term((2, Atom("cookie"), B), 1) == Send(B, 1)


@pytest.mark.parametrize(
    ("control", "payload", "match"),
    [
        ((6, A, Atom(""), Atom("foo"), 1), 1, r"REG_SEND: expected a 4-tuple, got 5"),
        ((6, 1, Atom(""), Atom("foo")), 1, r"REG_SEND: element 2 \(FromPid\) must be a pid"),
        ((6, A, Atom(""), "foo"), 1, r"element 4 \(ToName\) must be an atom"),
        ((1, A, B), 1, r"LINK: unexpected payload"),
        ((2, Atom(""), B), NO_PAYLOAD, r"SEND: missing message payload"),
        ((9, A, B), NO_PAYLOAD, r"unknown distribution operation"),
        ((5,), NO_PAYLOAD, r"unknown distribution operation"),
        ((2.0, Atom(""), B), 1, r"unknown distribution operation"),
        ((), NO_PAYLOAD, r"non-empty tuple"),
        ([2, Atom(""), B], 1, r"non-empty tuple"),
        ((35, 0, A, B), NO_PAYLOAD, r"UNLINK_ID: element 2 \(Id\)"),
        ((35, 2**64, A, B), NO_PAYLOAD, r"UNLINK_ID: element 2 \(Id\)"),
        ((19, A, 5, REF), NO_PAYLOAD, r"MONITOR_P: element 3"),
        ((29, REF, A, B, (Atom("m"), Atom("f")), []), [], r"\{Module, Function, Arity\}"),
        ((29, REF, A, B, MFA, []), Atom("x"), r"argument list must be a proper list"),
        ((37, 4, A, B), 1, r"ALTACT_SIG_SEND: element 4 \(To\) must be an alias"),
        ((37, 2, A, B), 1, r"token flag set but no Token"),
        ((37, -1, A, B), 1, r"element 2 \(Flags\)"),
        ((37, 0, A), 1, r"expected 4 or more"),
    ],
)
def test_bad_control(control: Any, payload: Any, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        from_term(control, payload)


def test_altact_tolerance() -> None:
    # unknown flag bits, bignum flags and extra elements are accepted
    msg = from_term((37, (1 << 70) | 0x8, A, Atom("srv"), Atom("extra")), MSG)
    assert isinstance(msg, AltactSigSend)
    assert normalize(msg) == RegSend(A, Atom("srv"), MSG)


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (PayloadExit(A, B, R), Exit(A, B, R)),
        (PayloadExitTT(A, B, TOK, R), Exit(A, B, R)),
        (ExitTT(A, B, TOK, R), Exit(A, B, R)),
        (PayloadExit2(A, B, R), Exit2(A, B, R)),
        (PayloadExit2TT(A, B, TOK, R), Exit2(A, B, R)),
        (Exit2TT(A, B, TOK, R), Exit2(A, B, R)),
        (PayloadMonitorExit(B, A, REF, R), MonitorExit(B, A, REF, R)),
        (SendTT(B, TOK, MSG), Send(B, MSG)),
        (RegSendTT(A, Atom("x"), TOK, MSG), RegSend(A, Atom("x"), MSG)),
        (SendSenderTT(A, B, TOK, MSG), SendSender(A, B, MSG)),
        (AliasSendTT(A, REF, TOK, MSG), AliasSend(A, REF, MSG)),
        (SpawnRequestTT(REF, A, B, MFA, [], TOK, [1]), SpawnRequest(REF, A, B, MFA, [], [1])),
        (SpawnReplyTT(REF, A, 1, B, TOK), SpawnReply(REF, A, 1, B)),
        (AltactSigSend(4, A, REF, MSG), AliasSend(A, REF, MSG)),
        (AltactSigSend(1, A, B, MSG), SendSender(A, B, MSG)),
        (AltactSigSend(0x10, A, B, R), Exit2(A, B, R)),
        (AltactSigSend(0x14, A, REF, R), AltactSigSend(0x14, A, REF, R)),
        (Link(A, B), Link(A, B)),
    ],
)
def test_normalize(msg: Control, expected: Control) -> None:
    assert normalize(msg) == expected
