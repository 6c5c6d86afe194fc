from dist_proto.flags import (
    DEFAULT_FLAGS,
    MANDATORY,
    MANDATORY_25,
    MANDATORY_26,
    DFlag,
    expand_digest,
    flag_names,
    missing_mandatory,
    negotiate,
)


def test_mandatory_values_match_dist_h() -> None:
    assert MANDATORY_25 == 0x1070F94
    assert MANDATORY_26 == 0x4_0200_0000
    assert MANDATORY == 0x4_0307_0F94


def test_default_flags_are_hidden_and_complete() -> None:
    assert not DEFAULT_FLAGS & DFlag.PUBLISHED
    assert DEFAULT_FLAGS & MANDATORY == MANDATORY
    for f in (
        DFlag.MANDATORY_25_DIGEST, DFlag.DIST_MONITOR, DFlag.DIST_MONITOR_NAME, DFlag.SPAWN,
        DFlag.ALIAS, DFlag.FRAGMENTS, DFlag.DIST_HDR_ATOM_CACHE, DFlag.EXIT_PAYLOAD,
        DFlag.SEND_SENDER, DFlag.BIG_SEQTRACE_LABELS, DFlag.UNICODE_IO, DFlag.SMALL_ATOM_TAGS,
    ):  # fmt: skip
        assert DEFAULT_FLAGS & f
    assert not DEFAULT_FLAGS & (DFlag.NAME_ME | DFlag.ALTACT_SIG | DFlag.LOCAL_EXT)
    # same as a -hidden OTP 25.2 node
    assert DEFAULT_FLAGS == 0xD_07DF_7FBC


def test_spec_values() -> None:
    assert int(DFlag.HANDSHAKE_23) == 0x1000000
    assert int(DFlag.MANDATORY_25_DIGEST) == 0x04000000
    assert DFlag.SPAWN == 1 << 32
    assert DFlag.NAME_ME == 1 << 33
    assert DFlag.V4_NC == 1 << 34
    assert DFlag.ALIAS == 1 << 35
    assert DFlag.ALTACT_SIG == 1 << 37


def test_digest_expansion() -> None:
    minimal = 0x4_0600_0000  # digest + UNLINK_ID + V4_NC: accepted by BEAM
    assert missing_mandatory(minimal) == []
    assert expand_digest(minimal) & MANDATORY_25 == MANDATORY_25
    assert expand_digest(DFlag.HANDSHAKE_23) == DFlag.HANDSHAKE_23


def test_missing_mandatory_names_flags() -> None:
    assert missing_mandatory(0x1070F94) == ["UNLINK_ID", "V4_NC"]
    assert missing_mandatory(0x4_0307_0F94) == []
    assert "HANDSHAKE_23" in missing_mandatory(0)
    # bit 36 is LOCAL_EXT, not the digest
    assert len(missing_mandatory((1 << 36) | MANDATORY_26)) == 11


def test_negotiate_and_names() -> None:
    peer = 0x4_0707_0FBC
    both = negotiate(DEFAULT_FLAGS, peer)
    assert both == DEFAULT_FLAGS & expand_digest(peer)
    assert not both & DFlag.FRAGMENTS
    assert flag_names(0x3) == ["PUBLISHED", "ATOM_CACHE"]
    assert flag_names(1 << 40) == ["bit40"]
