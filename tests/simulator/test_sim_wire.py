"""Framing, field encoding and version negotiation (wire.py)."""

from __future__ import annotations

import struct

import pytest

from src.simulator import wire


def test_field_encoding_rules() -> None:
    assert wire.encode_field("abc") == "abc"
    assert wire.encode_field(True) == "1"
    assert wire.encode_field(False) == "0"
    assert wire.encode_field(42) == "42"
    assert wire.encode_field(150.25) == "150.25"
    assert wire.encode_field(1.5) == "1.5"
    assert wire.encode_field(None) == ""
    assert wire.encode_field(wire.UNSET_DOUBLE) == "1.7976931348623157E308"


def test_encode_fields_is_length_prefixed_and_nul_terminated() -> None:
    msg = wire.encode_fields(9, 1, 7)
    (n,) = struct.unpack(">I", msg[:4])
    assert msg[4:] == b"9\x001\x007\x00"
    assert n == len(msg) - 4
    assert wire.split_fields(msg[4:]) == ["9", "1", "7"]


def test_frame_reader_handles_prefix_and_partial_chunks() -> None:
    r = wire.FrameReader(expect_prefix=True)
    stream = b"API\0" + wire.frame(b"v157..176") + wire.encode_fields(71, 2, 5, "")
    out: list[bytes] = []
    for i in range(len(stream)):  # one byte at a time
        out += r.feed(stream[i:i + 1])
    assert out[0] == b"v157..176"
    assert wire.split_fields(out[1]) == ["71", "2", "5", ""]


def test_frame_reader_rejects_a_stream_without_api_prefix() -> None:
    with pytest.raises(ValueError, match="API"):
        wire.FrameReader(expect_prefix=True).feed(b"GET / HTTP/1.1\r\n")


def test_frame_reader_rejects_absurd_lengths() -> None:
    r = wire.FrameReader(expect_prefix=False)
    with pytest.raises(ValueError, match="length"):
        r.feed(struct.pack(">I", 1 << 30) + b"x")


@pytest.mark.parametrize(("payload", "expected"), [
    (b"v157..176", 176),  # ib_insync 0.9.86
    (b"v157..178", 176),  # ib_async 2.x
    (b"v100..170 +PACEAPI", 170),
])
def test_negotiates_min_of_client_max_and_176(payload: bytes, expected: int) -> None:
    lo, hi, _ = wire.parse_handshake(payload)
    assert wire.negotiate_version(lo, hi) == expected


@pytest.mark.parametrize("payload", [b"157..176", b"vabc..176", b"v176..157"])
def test_bad_handshake_is_a_value_error(payload: bytes) -> None:
    with pytest.raises(ValueError, match="handshake"):
        lo, hi, _ = wire.parse_handshake(payload)


def test_too_old_client_is_refused() -> None:
    with pytest.raises(ValueError, match="no common version"):
        wire.negotiate_version(100, 150)
