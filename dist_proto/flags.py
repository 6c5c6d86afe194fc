"""Distribution capability flags (``DFLAG_*``), as in erts ``dist.h``.

Both sides of a connection announce a 64-bit flag word during the handshake; the
connection then uses the bitwise AND of the two (after expanding
:attr:`DFlag.MANDATORY_25_DIGEST`).

>>> negotiate(DEFAULT_FLAGS, MANDATORY_26 | DFlag.MANDATORY_25_DIGEST) & DFlag.UNLINK_ID
<DFlag.UNLINK_ID: 33554432>
>>> missing_mandatory(DFlag.HANDSHAKE_23)
['EXTENDED_REFERENCES', 'FUN_TAGS', 'NEW_FUN_TAGS', 'EXTENDED_PIDS_PORTS', \
'EXPORT_PTR_TAG', 'BIT_BINARIES', 'NEW_FLOATS', 'UTF8_ATOMS', 'MAP_TAG', \
'BIG_CREATION', 'UNLINK_ID', 'V4_NC']
"""

from __future__ import annotations

from enum import IntFlag

__all__ = [
    "DEFAULT_FLAGS",
    "DFlag",
    "MANDATORY_25",
    "MANDATORY_26",
    "MANDATORY",
    "expand_digest",
    "flag_names",
    "missing_mandatory",
    "negotiate",
]


class DFlag(IntFlag):
    """One bit per ``DFLAG_*`` constant of erts ``dist.h`` (OTP 28 era)."""

    PUBLISHED = 0x1
    ATOM_CACHE = 0x2
    EXTENDED_REFERENCES = 0x4
    DIST_MONITOR = 0x8
    FUN_TAGS = 0x10
    DIST_MONITOR_NAME = 0x20
    HIDDEN_ATOM_CACHE = 0x40
    NEW_FUN_TAGS = 0x80
    EXTENDED_PIDS_PORTS = 0x100
    EXPORT_PTR_TAG = 0x200
    BIT_BINARIES = 0x400
    NEW_FLOATS = 0x800
    UNICODE_IO = 0x1000
    DIST_HDR_ATOM_CACHE = 0x2000
    SMALL_ATOM_TAGS = 0x4000
    ETS_COMPRESSED = 0x8000
    UTF8_ATOMS = 0x10000
    MAP_TAG = 0x20000
    BIG_CREATION = 0x40000
    SEND_SENDER = 0x80000
    BIG_SEQTRACE_LABELS = 0x100000
    PENDING_CONNECT = 0x200000
    EXIT_PAYLOAD = 0x400000
    FRAGMENTS = 0x800000
    HANDSHAKE_23 = 0x1000000
    UNLINK_ID = 0x2000000
    MANDATORY_25_DIGEST = 0x4000000
    #: ``DFLAG_MULTISEND`` in a 2023 snapshot, gone since; reserved.
    RESERVED_27 = 0x8000000
    SPAWN = 1 << 32
    NAME_ME = 1 << 33
    V4_NC = 1 << 34
    ALIAS = 1 << 35
    LOCAL_EXT = 1 << 36
    ALTACT_SIG = 1 << 37


#: ``DIST_MANDATORY_25``: refused by OTP 25+ when missing (0x1070F94).
MANDATORY_25 = (
    DFlag.EXTENDED_REFERENCES
    | DFlag.FUN_TAGS
    | DFlag.EXTENDED_PIDS_PORTS
    | DFlag.UTF8_ATOMS
    | DFlag.NEW_FUN_TAGS
    | DFlag.BIG_CREATION
    | DFlag.NEW_FLOATS
    | DFlag.MAP_TAG
    | DFlag.EXPORT_PTR_TAG
    | DFlag.BIT_BINARIES
    | DFlag.HANDSHAKE_23
)

#: ``DIST_MANDATORY_26``: added by OTP 26 (0x4_0200_0000).
MANDATORY_26 = DFlag.V4_NC | DFlag.UNLINK_ID

#: What OTP 26, 27 and 28 require of a peer (0x4_0307_0F94); we require the same.
MANDATORY = MANDATORY_25 | MANDATORY_26

#: What this implementation advertises: hidden (no PUBLISHED), 0x7_07DF_7FBC.
DEFAULT_FLAGS = (
    MANDATORY
    | DFlag.MANDATORY_25_DIGEST
    | DFlag.DIST_MONITOR
    | DFlag.DIST_MONITOR_NAME
    | DFlag.SPAWN
    | DFlag.ALIAS
    | DFlag.UNLINK_ID
    | DFlag.FRAGMENTS
    | DFlag.DIST_HDR_ATOM_CACHE
    | DFlag.EXIT_PAYLOAD
    | DFlag.SEND_SENDER
    | DFlag.BIG_SEQTRACE_LABELS
    | DFlag.UNICODE_IO
    | DFlag.SMALL_ATOM_TAGS
)

_ALL_BITS = 0
for _f in DFlag:
    _ALL_BITS |= int(_f)


def expand_digest(flags: int) -> DFlag:
    """Return ``flags`` with :data:`MANDATORY_25` OR-ed in when the digest bit is set.

    Mirrors the ``?DFLAG_MANDATORY_25_DIGEST`` handling of ``dist_util:adjust_flags``.
    Unknown bits are kept (as :class:`DFlag` pseudo-members).
    """
    if flags & DFlag.MANDATORY_25_DIGEST:
        flags |= MANDATORY_25
    return DFlag(flags & 0xFFFF_FFFF_FFFF_FFFF)


def negotiate(ours: int, theirs: int) -> DFlag:
    """The connection's flags: AND of both sides after digest expansion (``dist_util``)."""
    return expand_digest(ours) & expand_digest(theirs)


def missing_mandatory(flags: int, required: int = MANDATORY) -> list[str]:
    """Names of the flags in ``required`` that ``flags`` (digest expanded) lacks.

    An empty list means the peer is acceptable; ``dist_util`` logs the same names
    (``cannot handle ["V4_NC"]``).
    """
    missing = int(required) & ~int(expand_digest(flags))
    return flag_names(missing)


def flag_names(flags: int) -> list[str]:
    """Names of the set bits, lowest first; unknown bits appear as ``bit<N>``."""
    names: list[str] = []
    bit = 0
    value = int(flags)
    while value:
        if value & 1:
            known = 1 << bit
            if known & _ALL_BITS:
                name = DFlag(known).name
                names.append(name if name is not None else f"bit{bit}")
            else:
                names.append(f"bit{bit}")
        value >>= 1
        bit += 1
    return names
