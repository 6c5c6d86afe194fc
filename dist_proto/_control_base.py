"""Validation machinery shared by the control message classes of :mod:`dist_proto.control`.

Private: import the public names from :mod:`dist_proto.control`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Final

from .errors import RemoteProtocolError
from .terms import Atom, Pid, Reference, Term

EMPTY_ATOM: Final = Atom("")

#: ALTACT_SIG_SEND flag bits (``ERTS_DOP_ALTACT_SIG_FLG_*``).
ALTACT_PRIO: Final = 0x1
ALTACT_TOKEN: Final = 0x2
ALTACT_ALIAS: Final = 0x4
ALTACT_NAME: Final = 0x8
ALTACT_EXIT: Final = 0x10

#: SPAWN_REPLY flag bits.
SPAWN_REPLY_LINK: Final = 1
SPAWN_REPLY_MONITOR: Final = 2


class _NoPayload:
    """Marker: no payload term followed the control term."""

    _instance: ClassVar[_NoPayload | None] = None

    def __new__(cls) -> _NoPayload:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_PAYLOAD"

    def __reduce__(self) -> str:
        return "NO_PAYLOAD"


NO_PAYLOAD: Final = _NoPayload()

# --------------------------------------------------------------------------- checks

_Check = Callable[[Any], bool]


def _is_pid(v: Any) -> bool:
    return type(v) is Pid


def _is_atom(v: Any) -> bool:
    return type(v) is Atom


def _is_ref(v: Any) -> bool:
    return type(v) is Reference


def _is_any(v: Any) -> bool:
    return True


def _is_pid_or_atom(v: Any) -> bool:
    return type(v) is Pid or type(v) is Atom


def _is_pid_or_name(v: Any) -> bool:
    # BEAM also accepts booleans/undefined as registered names; they decode to
    # True/False/None here.
    return type(v) is Pid or type(v) is Atom or v is None or type(v) is bool


def _is_nonneg_int(v: Any) -> bool:
    return type(v) is int and v >= 0


def _is_unlink_id(v: Any) -> bool:
    return type(v) is int and 0 < v < (1 << 64)


def _is_list(v: Any) -> bool:
    return type(v) is list


def _is_mfa(v: Any) -> bool:
    return (
        type(v) is tuple
        and len(v) == 3
        and type(v[0]) is Atom
        and type(v[1]) is Atom
        and type(v[2]) is int
        and 0 <= v[2] <= 255
    )


_KINDS: dict[_Check, str] = {
    _is_pid: "a pid",
    _is_atom: "an atom",
    _is_ref: "a reference",
    _is_pid_or_atom: "a pid or an atom",
    _is_pid_or_name: "a pid or a registered name",
    _is_nonneg_int: "a non-negative integer",
    _is_unlink_id: "an integer in 1..2^64-1",
    _is_list: "a list",
    _is_mfa: "{Module, Function, Arity}",
}

# (field name or None for the ignored '' element, check, label used in errors)
_Spec = tuple[tuple[str | None, _Check, str], ...]


def _describe(v: Any) -> str:
    r = repr(v)
    return f"{type(v).__name__} {r[:60]}{'...' if len(r) > 60 else ''}"


class _Control:
    """Base of every control message dataclass."""

    __slots__ = ()

    OP: ClassVar[int]
    NAME: ClassVar[str]
    SPEC: ClassVar[_Spec]
    #: Name of the payload field, or None if the opcode carries no payload.
    PAYLOAD: ClassVar[str | None] = None

    def to_term(self) -> tuple[Any, ...]:
        """The control tuple, as sent on the wire."""
        return (self.OP,) + tuple(
            EMPTY_ATOM if name is None else getattr(self, name) for name, _, _ in self.SPEC
        )

    @property
    def payload(self) -> Term:
        """The payload term, or :data:`NO_PAYLOAD`."""
        return NO_PAYLOAD if self.PAYLOAD is None else getattr(self, self.PAYLOAD)

    @classmethod
    def from_term(cls, control: tuple[Any, ...], payload: Term = NO_PAYLOAD) -> Any:
        """Validate a decoded control tuple (and payload) and build the message."""
        spec = cls.SPEC
        if len(control) != len(spec) + 1:
            raise RemoteProtocolError(
                f"{cls.NAME}: expected a {len(spec) + 1}-tuple, got {len(control)} elements"
            )
        args: list[Any] = []
        for i, (name, check, label) in enumerate(spec, 1):
            v = control[i]
            if not check(v):
                if name is None:
                    continue
                raise RemoteProtocolError(
                    f"{cls.NAME}: element {i + 1} ({label}) must be {_KINDS[check]},"
                    f" got {_describe(v)}"
                )
            if name is not None:
                args.append(v)
        _check_payload(cls, payload)
        if cls.PAYLOAD is not None:
            args.append(payload)
        return cls(*args)


def _check_payload(cls: type[_Control], payload: Term) -> None:
    if cls.PAYLOAD is None:
        if payload is not NO_PAYLOAD:
            raise RemoteProtocolError(f"{cls.NAME}: unexpected payload term")
    elif payload is NO_PAYLOAD:
        raise RemoteProtocolError(f"{cls.NAME}: missing {cls.PAYLOAD} payload term")
    elif cls.PAYLOAD == "args" and type(payload) is not list:
        raise RemoteProtocolError(
            f"{cls.NAME}: argument list must be a proper list, got {_describe(payload)}"
        )


def _spec(*items: tuple[str | None, _Check, str]) -> _Spec:
    return tuple(items)


_FROM = ("from_pid", _is_pid, "FromPid")
_TO = ("to_pid", _is_pid, "ToPid")
_TOKEN = ("token", _is_any, "Token")
_COOKIE = (None, _is_any, "Cookie")
