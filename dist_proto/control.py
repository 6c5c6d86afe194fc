"""Typed distribution control messages (``dist.h`` ``DOP_*``), sans I/O.

A distribution message is a control tuple whose first element is an opcode,
optionally followed by a payload term (the message, exit reason or spawn
argument list). Each opcode has a frozen dataclass here with ``to_term()`` (the
control tuple), ``payload`` (the payload term, if the opcode has one) and a
validating ``from_term(control, payload)``; :func:`from_term` dispatches on the
opcode. Everything received that does not fit raises
:class:`~dist_proto.errors.RemoteProtocolError` naming the opcode and element.

>>> from dist_proto.terms import Atom, Pid
>>> p = Pid(Atom("py@localhost"), 1, 0, 4)
>>> msg = from_term((6, p, Atom(""), Atom("foo")), Atom("hi"))
>>> msg
RegSend(from_pid=Pid(node=Atom('py@localhost'), id=1, serial=0, creation=4), \
to_name=Atom('foo'), message=Atom('hi'))
>>> msg.to_term()[3], msg.payload
(Atom('foo'), Atom('hi'))

Which variants BEAM sends depends on negotiated flags and on timing (messages
queued before a connection is up may use older forms), so accept all of them and
use :func:`normalize` to fold the trace-token and ``PAYLOAD_*`` variants into the
plain shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final

from ._control_base import (
    _COOKIE,
    _FROM,
    _TO,
    _TOKEN,
    ALTACT_ALIAS,
    ALTACT_EXIT,
    ALTACT_NAME,
    ALTACT_PRIO,
    ALTACT_TOKEN,
    NO_PAYLOAD,
    SPAWN_REPLY_LINK,
    SPAWN_REPLY_MONITOR,
    _check_payload,
    _Control,
    _describe,
    _is_any,
    _is_atom,
    _is_list,
    _is_mfa,
    _is_nonneg_int,
    _is_pid,
    _is_pid_or_atom,
    _is_pid_or_name,
    _is_ref,
    _is_unlink_id,
    _Spec,
    _spec,
)
from .errors import RemoteProtocolError
from .terms import Atom, Pid, Reference, Term

__all__ = [  # fmt: skip
    "ALTACT_ALIAS",
    "ALTACT_EXIT",
    "ALTACT_NAME",
    "ALTACT_PRIO",
    "ALTACT_TOKEN",
    "AliasSend",
    "AliasSendTT",
    "AltactSigSend",
    "Control",
    "Demonitor",
    "Exit",
    "Exit2",
    "Exit2TT",
    "ExitTT",
    "GroupLeader",
    "Link",
    "MESSAGE_TYPES",
    "Monitor",
    "MonitorExit",
    "NO_PAYLOAD",
    "PayloadExit",
    "PayloadExit2",
    "PayloadExit2TT",
    "PayloadExitTT",
    "PayloadMonitorExit",
    "RegSend",
    "RegSendTT",
    "SPAWN_REPLY_LINK",
    "SPAWN_REPLY_MONITOR",
    "Send",
    "SendSender",
    "SendSenderTT",
    "SendTT",
    "SpawnReply",
    "SpawnReplyTT",
    "SpawnRequest",
    "SpawnRequestTT",
    "Unlink",
    "UnlinkId",
    "UnlinkIdAck",
    "from_term",
    "normalize",
]

# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Link(_Control):
    """``{1, FromPid, ToPid}``: ``link/1``."""

    OP: ClassVar[int] = 1
    NAME: ClassVar[str] = "LINK"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO)
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class Send(_Control):
    """``{2, '', ToPid}`` + Message: ``erlang:send/2`` to a pid."""

    OP: ClassVar[int] = 2
    NAME: ClassVar[str] = "SEND"
    SPEC: ClassVar[_Spec] = _spec(_COOKIE, _TO)
    PAYLOAD: ClassVar[str | None] = "message"
    to_pid: Pid
    message: Term


@dataclass(frozen=True, slots=True)
class Exit(_Control):
    """``{3, FromPid, ToPid, Reason}``: a link broke."""

    OP: ClassVar[int] = 3
    NAME: ClassVar[str] = "EXIT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, ("reason", _is_any, "Reason"))
    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class Unlink(_Control):
    """``{4, FromPid, ToPid}``: obsolete (OTP 26+ kills the connection on it)."""

    OP: ClassVar[int] = 4
    NAME: ClassVar[str] = "UNLINK"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO)
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class RegSend(_Control):
    """``{6, FromPid, '', ToName}`` + Message: send to a registered name."""

    OP: ClassVar[int] = 6
    NAME: ClassVar[str] = "REG_SEND"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _COOKIE, ("to_name", _is_atom, "ToName"))
    PAYLOAD: ClassVar[str | None] = "message"
    from_pid: Pid
    to_name: Atom
    message: Term


@dataclass(frozen=True, slots=True)
class GroupLeader(_Control):
    """``{7, LeaderPid, ToPid}``: ``group_leader/2``."""

    OP: ClassVar[int] = 7
    NAME: ClassVar[str] = "GROUP_LEADER"
    SPEC: ClassVar[_Spec] = _spec(("from_pid", _is_pid, "LeaderPid"), _TO)
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class Exit2(_Control):
    """``{8, FromPid, ToPid, Reason}``: ``exit/2``."""

    OP: ClassVar[int] = 8
    NAME: ClassVar[str] = "EXIT2"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, ("reason", _is_any, "Reason"))
    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class SendTT(_Control):
    """``{12, '', ToPid, Token}`` + Message."""

    OP: ClassVar[int] = 12
    NAME: ClassVar[str] = "SEND_TT"
    SPEC: ClassVar[_Spec] = _spec(_COOKIE, _TO, _TOKEN)
    PAYLOAD: ClassVar[str | None] = "message"
    to_pid: Pid
    token: Term
    message: Term


@dataclass(frozen=True, slots=True)
class ExitTT(_Control):
    """``{13, FromPid, ToPid, Token, Reason}``."""

    OP: ClassVar[int] = 13
    NAME: ClassVar[str] = "EXIT_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, _TOKEN, ("reason", _is_any, "Reason"))
    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class RegSendTT(_Control):
    """``{16, FromPid, '', ToName, Token}`` + Message."""

    OP: ClassVar[int] = 16
    NAME: ClassVar[str] = "REG_SEND_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _COOKIE, ("to_name", _is_atom, "ToName"), _TOKEN)
    PAYLOAD: ClassVar[str | None] = "message"
    from_pid: Pid
    to_name: Atom
    token: Term
    message: Term


@dataclass(frozen=True, slots=True)
class Exit2TT(_Control):
    """``{18, FromPid, ToPid, Token, Reason}``."""

    OP: ClassVar[int] = 18
    NAME: ClassVar[str] = "EXIT2_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, _TOKEN, ("reason", _is_any, "Reason"))
    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


_MON_SPEC = _spec(
    ("from_pid", _is_pid, "WatcherPid"),
    ("target", _is_pid_or_name, "TargetPidOrName"),
    ("ref", _is_ref, "Ref"),
)


@dataclass(frozen=True, slots=True)
class Monitor(_Control):
    """``{19, WatcherPid, TargetPidOrName, Ref}``: ``MONITOR_P``."""

    OP: ClassVar[int] = 19
    NAME: ClassVar[str] = "MONITOR_P"
    SPEC: ClassVar[_Spec] = _MON_SPEC
    from_pid: Pid
    target: Pid | Atom
    ref: Reference


@dataclass(frozen=True, slots=True)
class Demonitor(_Control):
    """``{20, WatcherPid, TargetPidOrName, Ref}``: ``DEMONITOR_P``."""

    OP: ClassVar[int] = 20
    NAME: ClassVar[str] = "DEMONITOR_P"
    SPEC: ClassVar[_Spec] = _MON_SPEC
    from_pid: Pid
    target: Pid | Atom
    ref: Reference


_MON_EXIT_SPEC = _spec(
    ("from_proc", _is_pid_or_name, "TargetPidOrName"),
    ("to_pid", _is_pid, "WatcherPid"),
    ("ref", _is_ref, "Ref"),
)


@dataclass(frozen=True, slots=True)
class MonitorExit(_Control):
    """``{21, TargetPidOrName, WatcherPid, Ref, Reason}``: ``MONITOR_P_EXIT``."""

    OP: ClassVar[int] = 21
    NAME: ClassVar[str] = "MONITOR_P_EXIT"
    SPEC: ClassVar[_Spec] = _MON_EXIT_SPEC + (("reason", _is_any, "Reason"),)
    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Term


@dataclass(frozen=True, slots=True)
class SendSender(_Control):
    """``{22, FromPid, ToPid}`` + Message."""

    OP: ClassVar[int] = 22
    NAME: ClassVar[str] = "SEND_SENDER"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO)
    PAYLOAD: ClassVar[str | None] = "message"
    from_pid: Pid
    to_pid: Pid
    message: Term


@dataclass(frozen=True, slots=True)
class SendSenderTT(_Control):
    """``{23, FromPid, ToPid, Token}`` + Message."""

    OP: ClassVar[int] = 23
    NAME: ClassVar[str] = "SEND_SENDER_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, _TOKEN)
    PAYLOAD: ClassVar[str | None] = "message"
    from_pid: Pid
    to_pid: Pid
    token: Term
    message: Term


@dataclass(frozen=True, slots=True)
class PayloadExit(_Control):
    """``{24, FromPid, ToPid}`` + Reason."""

    OP: ClassVar[int] = 24
    NAME: ClassVar[str] = "PAYLOAD_EXIT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO)
    PAYLOAD: ClassVar[str | None] = "reason"
    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadExitTT(_Control):
    """``{25, FromPid, ToPid, Token}`` + Reason."""

    OP: ClassVar[int] = 25
    NAME: ClassVar[str] = "PAYLOAD_EXIT_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, _TOKEN)
    PAYLOAD: ClassVar[str | None] = "reason"
    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadExit2(_Control):
    """``{26, FromPid, ToPid}`` + Reason."""

    OP: ClassVar[int] = 26
    NAME: ClassVar[str] = "PAYLOAD_EXIT2"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO)
    PAYLOAD: ClassVar[str | None] = "reason"
    from_pid: Pid
    to_pid: Pid
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadExit2TT(_Control):
    """``{27, FromPid, ToPid, Token}`` + Reason."""

    OP: ClassVar[int] = 27
    NAME: ClassVar[str] = "PAYLOAD_EXIT2_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, _TO, _TOKEN)
    PAYLOAD: ClassVar[str | None] = "reason"
    from_pid: Pid
    to_pid: Pid
    token: Term
    reason: Term


@dataclass(frozen=True, slots=True)
class PayloadMonitorExit(_Control):
    """``{28, TargetPidOrName, WatcherPid, Ref}`` + Reason."""

    OP: ClassVar[int] = 28
    NAME: ClassVar[str] = "PAYLOAD_MONITOR_P_EXIT"
    SPEC: ClassVar[_Spec] = _MON_EXIT_SPEC
    PAYLOAD: ClassVar[str | None] = "reason"
    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Term


_SPAWN_SPEC = _spec(
    ("req_id", _is_ref, "ReqId"),
    _FROM,
    ("group_leader", _is_pid, "GroupLeader"),
    ("mfa", _is_mfa, "{M, F, Arity}"),
    ("opts", _is_list, "Opts"),
)


@dataclass(frozen=True, slots=True)
class SpawnRequest(_Control):
    """``{29, ReqId, FromPid, GroupLeader, {M, F, Arity}, Opts}`` + ArgList."""

    OP: ClassVar[int] = 29
    NAME: ClassVar[str] = "SPAWN_REQUEST"
    SPEC: ClassVar[_Spec] = _SPAWN_SPEC
    PAYLOAD: ClassVar[str | None] = "args"
    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    opts: list[Term]
    args: list[Term]


@dataclass(frozen=True, slots=True)
class SpawnRequestTT(_Control):
    """``{30, ReqId, FromPid, GroupLeader, {M, F, Arity}, Opts, Token}`` + ArgList."""

    OP: ClassVar[int] = 30
    NAME: ClassVar[str] = "SPAWN_REQUEST_TT"
    SPEC: ClassVar[_Spec] = _SPAWN_SPEC + (_TOKEN,)
    PAYLOAD: ClassVar[str | None] = "args"
    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    opts: list[Term]
    token: Term
    args: list[Term]


_SPAWN_REPLY_SPEC = _spec(
    ("req_id", _is_ref, "ReqId"),
    _TO,
    ("flags", _is_nonneg_int, "Flags"),
    ("result", _is_pid_or_atom, "PidOrErrorAtom"),
)


@dataclass(frozen=True, slots=True)
class SpawnReply(_Control):
    """``{31, ReqId, ToPid, Flags, PidOrErrorAtom}``."""

    OP: ClassVar[int] = 31
    NAME: ClassVar[str] = "SPAWN_REPLY"
    SPEC: ClassVar[_Spec] = _SPAWN_REPLY_SPEC
    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom


@dataclass(frozen=True, slots=True)
class SpawnReplyTT(_Control):
    """``{32, ReqId, ToPid, Flags, PidOrErrorAtom, Token}``."""

    OP: ClassVar[int] = 32
    NAME: ClassVar[str] = "SPAWN_REPLY_TT"
    SPEC: ClassVar[_Spec] = _SPAWN_REPLY_SPEC + (_TOKEN,)
    req_id: Reference
    to_pid: Pid
    flags: int
    result: Pid | Atom
    token: Term


@dataclass(frozen=True, slots=True)
class AliasSend(_Control):
    """``{33, FromPid, AliasRef}`` + Message."""

    OP: ClassVar[int] = 33
    NAME: ClassVar[str] = "ALIAS_SEND"
    SPEC: ClassVar[_Spec] = _spec(_FROM, ("alias", _is_ref, "Alias"))
    PAYLOAD: ClassVar[str | None] = "message"
    from_pid: Pid
    alias: Reference
    message: Term


@dataclass(frozen=True, slots=True)
class AliasSendTT(_Control):
    """``{34, FromPid, AliasRef, Token}`` + Message."""

    OP: ClassVar[int] = 34
    NAME: ClassVar[str] = "ALIAS_SEND_TT"
    SPEC: ClassVar[_Spec] = _spec(_FROM, ("alias", _is_ref, "Alias"), _TOKEN)
    PAYLOAD: ClassVar[str | None] = "message"
    from_pid: Pid
    alias: Reference
    token: Term
    message: Term


_UNLINK_ID_SPEC = _spec(("id", _is_unlink_id, "Id"), _FROM, _TO)


@dataclass(frozen=True, slots=True)
class UnlinkId(_Control):
    """``{35, Id, FromPid, ToPid}``: ``unlink/1`` (answer with :class:`UnlinkIdAck`)."""

    OP: ClassVar[int] = 35
    NAME: ClassVar[str] = "UNLINK_ID"
    SPEC: ClassVar[_Spec] = _UNLINK_ID_SPEC
    id: int
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class UnlinkIdAck(_Control):
    """``{36, Id, FromPid, ToPid}``."""

    OP: ClassVar[int] = 36
    NAME: ClassVar[str] = "UNLINK_ID_ACK"
    SPEC: ClassVar[_Spec] = _UNLINK_ID_SPEC
    id: int
    from_pid: Pid
    to_pid: Pid


@dataclass(frozen=True, slots=True)
class AltactSigSend(_Control):
    """``{37, Flags, SenderPid, To[, Token]}`` + Message (or Reason with ALTACT_EXIT).

    ``To`` is an alias reference (``ALTACT_ALIAS``), a registered name
    (``ALTACT_NAME``) or a pid. ``message`` holds the exit reason when
    ``flags & ALTACT_EXIT``. Unknown flag bits and extra elements are accepted.
    """

    OP: ClassVar[int] = 37
    NAME: ClassVar[str] = "ALTACT_SIG_SEND"
    SPEC: ClassVar[_Spec] = ()
    PAYLOAD: ClassVar[str | None] = "message"
    flags: int
    from_pid: Pid
    to: Pid | Atom | Reference
    message: Term
    token: Term = None

    @property
    def is_exit(self) -> bool:
        return bool(self.flags & ALTACT_EXIT)

    def to_term(self) -> tuple[Any, ...]:
        if self.flags & ALTACT_TOKEN:
            return (37, self.flags, self.from_pid, self.to, self.token)
        return (37, self.flags, self.from_pid, self.to)

    @classmethod
    def from_term(cls, control: tuple[Any, ...], payload: Term = NO_PAYLOAD) -> AltactSigSend:
        n = len(control)
        if n < 4:
            raise RemoteProtocolError(f"ALTACT_SIG_SEND: expected 4 or more elements, got {n}")
        flags, sender, to = control[1], control[2], control[3]
        if not _is_nonneg_int(flags):
            raise RemoteProtocolError(
                f"ALTACT_SIG_SEND: element 2 (Flags) must be a non-negative integer,"
                f" got {_describe(flags)}"
            )
        if type(sender) is not Pid:
            raise RemoteProtocolError(
                f"ALTACT_SIG_SEND: element 3 (SenderPid) must be a pid, got {_describe(sender)}"
            )
        if flags & ALTACT_ALIAS:
            ok, kind = type(to) is Reference, "an alias reference"
        elif flags & ALTACT_NAME:
            ok, kind = type(to) is Atom, "an atom"
        else:
            ok, kind = type(to) is Pid, "a pid"
        if not ok:
            raise RemoteProtocolError(
                f"ALTACT_SIG_SEND: element 4 (To) must be {kind}, got {_describe(to)}"
            )
        token: Term = None
        if flags & ALTACT_TOKEN:
            if n < 5:
                raise RemoteProtocolError("ALTACT_SIG_SEND: token flag set but no Token element")
            token = control[4]
        _check_payload(cls, payload)
        return cls(flags, sender, to, payload, token)


Control = (  # fmt: skip
    Link
    | Send
    | Exit
    | Unlink
    | RegSend
    | GroupLeader
    | Exit2
    | SendTT
    | ExitTT
    | RegSendTT
    | Exit2TT
    | Monitor
    | Demonitor
    | MonitorExit
    | SendSender
    | SendSenderTT
    | PayloadExit
    | PayloadExitTT
    | PayloadExit2
    | PayloadExit2TT
    | PayloadMonitorExit
    | SpawnRequest
    | SpawnRequestTT
    | SpawnReply
    | SpawnReplyTT
    | AliasSend
    | AliasSendTT
    | UnlinkId
    | UnlinkIdAck
    | AltactSigSend
)

#: Opcode -> message class.
MESSAGE_TYPES: Final[dict[int, type[_Control]]] = {
    cls.OP: cls
    for cls in (
        Link, Send, Exit, Unlink, RegSend, GroupLeader, Exit2, SendTT, ExitTT, RegSendTT,
        Exit2TT, Monitor, Demonitor, MonitorExit, SendSender, SendSenderTT, PayloadExit,
        PayloadExitTT, PayloadExit2, PayloadExit2TT, PayloadMonitorExit, SpawnRequest,
        SpawnRequestTT, SpawnReply, SpawnReplyTT, AliasSend, AliasSendTT, UnlinkId,
        UnlinkIdAck, AltactSigSend,
    )
}  # fmt: skip


def from_term(control: Any, payload: Term = NO_PAYLOAD) -> Control:
    """Build the typed message for a decoded control term (``dist.c``'s dispatch).

    Raises :class:`RemoteProtocolError` for a non-tuple, an unknown opcode, a wrong
    arity, a wrongly typed element, or a missing or unexpected payload.
    """
    if type(control) is not tuple or not control:
        raise RemoteProtocolError(
            f"control message must be a non-empty tuple, got {_describe(control)}"
        )
    op = control[0]
    cls = MESSAGE_TYPES.get(op) if type(op) is int else None
    if cls is None:
        raise RemoteProtocolError(f"unknown distribution operation {_describe(op)}")
    msg: Control = cls.from_term(control, payload)
    return msg


def normalize(msg: Control) -> Control:
    """Fold variants into the plain shapes a router handles.

    Trace tokens are dropped (``*_TT`` -> plain), ``PAYLOAD_EXIT``/``EXIT2``/
    ``MONITOR_P_EXIT`` become :class:`Exit`/:class:`Exit2`/:class:`MonitorExit`, and an
    ``ALTACT_SIG_SEND`` that is an ordinary message becomes :class:`AliasSend`,
    :class:`RegSend` or :class:`SendSender`. Exit signals to aliases stay as they are.
    """
    t = type(msg)
    if t is PayloadExit or t is ExitTT or t is PayloadExitTT:
        return Exit(msg.from_pid, msg.to_pid, msg.reason)  # type: ignore[union-attr]
    if t is PayloadExit2 or t is Exit2TT or t is PayloadExit2TT:
        return Exit2(msg.from_pid, msg.to_pid, msg.reason)  # type: ignore[union-attr]
    if t is PayloadMonitorExit:
        assert isinstance(msg, PayloadMonitorExit)
        return MonitorExit(msg.from_proc, msg.to_pid, msg.ref, msg.reason)
    if t is SendTT:
        assert isinstance(msg, SendTT)
        return Send(msg.to_pid, msg.message)
    if t is RegSendTT:
        assert isinstance(msg, RegSendTT)
        return RegSend(msg.from_pid, msg.to_name, msg.message)
    if t is SendSenderTT:
        assert isinstance(msg, SendSenderTT)
        return SendSender(msg.from_pid, msg.to_pid, msg.message)
    if t is AliasSendTT:
        assert isinstance(msg, AliasSendTT)
        return AliasSend(msg.from_pid, msg.alias, msg.message)
    if t is SpawnRequestTT:
        assert isinstance(msg, SpawnRequestTT)
        return SpawnRequest(msg.req_id, msg.from_pid, msg.group_leader, msg.mfa, msg.opts, msg.args)
    if t is SpawnReplyTT:
        assert isinstance(msg, SpawnReplyTT)
        return SpawnReply(msg.req_id, msg.to_pid, msg.flags, msg.result)
    if t is AltactSigSend:
        assert isinstance(msg, AltactSigSend)
        if msg.flags & ALTACT_EXIT:
            if type(msg.to) is Pid:
                return Exit2(msg.from_pid, msg.to, msg.message)
            return msg
        to = msg.to
        if type(to) is Reference:
            return AliasSend(msg.from_pid, to, msg.message)
        if type(to) is Atom:
            return RegSend(msg.from_pid, to, msg.message)
        assert type(to) is Pid
        return SendSender(msg.from_pid, to, msg.message)
    return msg
