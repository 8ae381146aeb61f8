"""The institution's compliance key, read from the file it is kept in offline, for one review.

The file is what `seed_demo` writes under var/demo-keys/ for the demo and
what the admin key's file is (`manage.py appoint_head --key-file`, the
browser's frontend/js/e2e/adminkey.js): the 64-byte private identity as
128 hex digits, no passphrase. It is checked against the PINNED compliance
fingerprint (client/pins.py), never the server's word, before anything is
asked of the server, and the bytes this code read are zeroed once the review
is done. PyNaCl keeps its own immutable copies inside the key objects; those
are dropped with them, which is as far as Python allows.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from client.errors import RoundsClientError
from core.crypto import CryptoError, IdentityKeyPair

_HEX_DIGITS = IdentityKeyPair.SIZE * 2
MAX_FILE_BYTES = 4096  # 128 digits and a newline; anything larger is not a key file
_WHITE = b" \t\n\r\v\f"


def _malformed(path: str | os.PathLike[str]) -> RoundsClientError:
    return RoundsClientError(
        "malformed_key_file",
        f"{path} is not an institution key file (it should hold 128 hexadecimal digits).",
    )


def parse_key_file(raw: bytearray, path: str | os.PathLike[str] = "key file") -> bytearray:
    """The 64 private bytes of a key file's bytes (hex, surrounding white space allowed),
    decoded into a buffer the caller zeroes (a `str` or `bytes` could not be)."""
    start, end = 0, len(raw)
    while start < end and raw[start] in _WHITE:
        start += 1
    while end > start and raw[end - 1] in _WHITE:
        end -= 1
    if end - start != _HEX_DIGITS:
        raise _malformed(path)
    secret = bytearray(IdentityKeyPair.SIZE)
    for i in range(IdentityKeyPair.SIZE):
        high, low = raw[start + 2 * i], raw[start + 2 * i + 1]
        try:
            secret[i] = (_nibble(high) << 4) | _nibble(low)
        except ValueError:
            secret[:] = bytes(len(secret))
            raise _malformed(path) from None
    return secret


def _nibble(byte: int) -> int:
    if 0x30 <= byte <= 0x39:
        return byte - 0x30
    lower = byte | 0x20
    if 0x61 <= lower <= 0x66:
        return lower - 0x61 + 10
    raise ValueError("not a hex digit")


@contextlib.contextmanager
def compliance_key(path: str | os.PathLike[str], pinned: str) -> Iterator[IdentityKeyPair]:
    """The key in `path`, which must be the pinned compliance key; its buffers zeroed on exit.

    Raises:
        RoundsClientError: `malformed_key_file` (unreadable, not 128 hex
            digits, not a key pair), `not_the_compliance_key` (another key
            than the pinned one: nothing is asked of the server).
    """
    raw = bytearray()
    secret = bytearray()
    try:
        try:
            with Path(path).open("rb", buffering=0) as file:
                raw = bytearray(MAX_FILE_BYTES + 1)
                del raw[file.readinto(raw) or 0 :]  # in place: no copy left unzeroed
        except OSError as error:
            raise RoundsClientError(
                "malformed_key_file", f"{path} cannot be read: {error.strerror}"
            ) from None
        if len(raw) > MAX_FILE_BYTES:
            raise _malformed(path)
        secret = parse_key_file(raw, path)
        try:
            key = IdentityKeyPair.from_bytes(bytes(secret))
        except CryptoError:
            raise _malformed(path) from None
        if key.fingerprint != pinned:
            raise RoundsClientError(
                "not_the_compliance_key",
                f"{path} is not the institution's compliance key pinned in this client's "
                "configuration (its fingerprint differs); nothing was asked of the server.",
                {"file": key.fingerprint, "pinned": pinned},
            )
        yield key
    finally:
        raw[:] = bytes(len(raw))
        secret[:] = bytes(len(secret))
