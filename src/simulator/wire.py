"""TWS API socket framing: 4-byte big-endian length prefix + NUL-terminated fields.

Pure functions and one incremental reader; no I/O here.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

Field = str | int | float | bool | None

UNSET_DOUBLE = "1.7976931348623157E308"
UNSET_INTEGER = "2147483647"

#: Highest server version this gateway speaks (ib_insync 0.9.86's MaxClientVersion).
MAX_SERVER_VERSION = 176
#: Lowest client version accepted (ib_insync / ib_async MinClientVersion).
MIN_CLIENT_VERSION = 157

API_PREFIX = b"API\0"
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
_LEN = struct.Struct(">I")


def encode_field(value: Field) -> str:
    """One field as IB writes it (see the seam: bool → "1"/"0", None → "")."""
    if value is None:
        return ""
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]
    if t is bool:
        return "1" if value else "0"
    if t is int:
        return str(value)
    if t is float:
        f: float = value  # type: ignore[assignment]
        if f != f:
            return ""
        return repr(f)
    return str(value)


def encode_fields(*fields: Field) -> bytes:
    """Encode one whole message (length prefix included)."""
    payload = "".join(encode_field(f) + "\0" for f in fields).encode()
    return _LEN.pack(len(payload)) + payload


def frame(payload: bytes) -> bytes:
    return _LEN.pack(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """Decode one message payload into its fields (trailing NUL dropped)."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_handshake(payload: bytes) -> tuple[int, int, str]:
    """Parse the client's version range ``b"v157..176 +OPTS"`` → (min, max, options).

    Raises ValueError (naming the field) when the range is malformed.
    """
    text = payload.decode(errors="replace").strip()
    if not text.startswith("v"):
        raise ValueError(f"handshake: version range must start with 'v': {text!r}")
    body, _, options = text[1:].partition(" ")
    lo_s, sep, hi_s = body.partition("..")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if sep else lo
    except ValueError:
        raise ValueError(f"handshake: bad version range {text!r}") from None
    if lo > hi:
        raise ValueError(f"handshake: min version {lo} > max version {hi}")
    return lo, hi, options


def negotiate_version(client_min: int, client_max: int) -> int:
    """Server version = min(client max, 176); ValueError if the client is too old/new."""
    version = min(client_max, MAX_SERVER_VERSION)
    if version < client_min or version < MIN_CLIENT_VERSION:
        raise ValueError(
            f"handshake: no common version (client {client_min}..{client_max}, "
            f"server {MIN_CLIENT_VERSION}..{MAX_SERVER_VERSION})"
        )
    return version


class FrameReader:
    """Incremental splitter of a byte stream into length-prefixed payloads.

    ``expect_prefix`` makes the reader first consume the literal ``b"API\\0"`` that starts
    every client connection.
    """

    def __init__(self, expect_prefix: bool = True) -> None:
        self._buf = bytearray()
        self._need_prefix = expect_prefix

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        if self._need_prefix:
            if len(buf) < len(API_PREFIX):
                if not API_PREFIX.startswith(bytes(buf)):
                    raise ValueError("handshake: connection did not start with 'API\\0'")
                return out
            if bytes(buf[: len(API_PREFIX)]) != API_PREFIX:
                raise ValueError("handshake: connection did not start with 'API\\0'")
            del buf[: len(API_PREFIX)]
            self._need_prefix = False
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            if size > MAX_MESSAGE_SIZE:
                raise ValueError(f"message length {size} exceeds {MAX_MESSAGE_SIZE}")
            end = pos + 4 + size
            if end > n:
                break
            out.append(bytes(buf[pos + 4 : end]))
            pos = end
        if pos:
            del buf[:pos]
        return out


def join(messages: Iterable[bytes]) -> bytes:
    return b"".join(messages)
