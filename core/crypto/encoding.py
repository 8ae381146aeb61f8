"""Strict base64 and canonical JSON, the two encodings of every Rounds wire format.

Both are strict so that one value has exactly one encoding: a signature over
bytes that could be written two ways invites a verifier and a signer to
disagree about what was signed.
"""

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from .errors import InvalidEnvelope, UnsupportedVersion

# JavaScript numbers are doubles: beyond 2**53 - 1 the browser would read a
# different integer than the one that was signed.
MAX_SAFE_INTEGER = 2**53 - 1

_B64_ALPHABET = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def b64encode(data: bytes) -> str:
    """Encode bytes as standard, padded base64 (RFC 4648 section 4)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("b64encode takes bytes")
    return base64.b64encode(bytes(data)).decode("ascii")


def b64decode(text: object, *, size: int | None = None, field: str = "value") -> bytes:
    """Decode standard, padded base64, refusing every other spelling.

    Refused: anything that is not a `str`, characters outside the standard
    alphabet (including URL-safe `-_`, whitespace and newlines), missing or
    extra padding, and non-canonical encodings whose unused trailing bits
    are not zero (so each byte string has exactly one accepted encoding).

    Args:
        text: The base64 text.
        size: If given, the exact number of bytes the text must decode to.
        field: The field name used in error messages.

    Returns:
        The decoded bytes.

    Raises:
        InvalidEnvelope: On any of the above, or a size mismatch.
    """
    if not isinstance(text, str):
        raise InvalidEnvelope(f"{field}: expected a base64 string")
    if len(text) % 4 or not _B64_ALPHABET.fullmatch(text):
        raise InvalidEnvelope(f"{field}: not standard padded base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEnvelope(f"{field}: not standard padded base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise InvalidEnvelope(f"{field}: non-canonical base64")
    if size is not None and len(data) != size:
        raise InvalidEnvelope(f"{field}: expected {size} bytes, got {len(data)}")
    return data


def _check_json_value(value: Any, path: str) -> None:
    # bool is a subclass of int: test it first so True is not range-checked.
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise InvalidEnvelope(f"{path}: integer outside ±(2**53 - 1)")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidEnvelope(f"{path}: string is not valid Unicode") from None
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise InvalidEnvelope(f"{path}: keys must be ASCII strings")
            _check_json_value(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_value(item, f"{path}[{index}]")
        return
    raise InvalidEnvelope(f"{path}: {type(value).__name__} is not allowed in canonical JSON")


def canonical_json(obj: Any) -> bytes:
    """Serialise to the canonical JSON that Rounds signs and authenticates.

    Keys sorted, no whitespace, UTF-8 (non-ASCII characters written as
    themselves, not as escapes). Only objects with ASCII keys, arrays,
    strings, integers within ±(2**53 - 1), booleans and null are allowed:
    floats are refused because their text form differs between languages.
    For this subset the output equals `JSON.stringify` with sorted keys and
    RFC 8785 (JCS), so the browser reproduces it byte for byte.

    Raises:
        InvalidEnvelope: If the value holds anything outside that subset.
    """
    _check_json_value(obj, "$")
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def _refuse_float(text: str) -> Any:
    raise InvalidEnvelope("floats are not allowed in canonical JSON")


def _refuse_constant(text: str) -> Any:
    raise InvalidEnvelope(f"{text} is not allowed in canonical JSON")


def parse_canonical_json(data: bytes) -> Any:
    """Parse bytes that must be canonical JSON, as `canonical_json` writes it.

    Used for JSON found inside a ciphertext or signature, where a second
    spelling of the same value must not be accepted.

    Raises:
        InvalidEnvelope: Not UTF-8, not JSON, outside the canonical subset,
            or not byte-for-byte the canonical form.
    """
    try:
        value = json.loads(
            data.decode("utf-8"),
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidEnvelope("not valid UTF-8 JSON") from None
    if canonical_json(value) != data:
        raise InvalidEnvelope("JSON is not in canonical form")
    return value


# --- Strict field checks shared by the wire formats ---------------------------


def check_version(data: dict[str, Any], what: str, supported: int = 1) -> None:
    """Check the `v` field first, so a future format is refused as such.

    Raises:
        InvalidEnvelope: `v` is missing or not an integer.
        UnsupportedVersion: `v` is an integer other than `supported`.
    """
    version = data.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidEnvelope(f"{what}: v must be an integer")
    if version != supported:
        raise UnsupportedVersion(f"{what}: version {version} is not supported")


def check_id(value: Any, name: str, error: type[Exception] = InvalidEnvelope) -> int:
    """A positive integer id that JavaScript can hold exactly (1 .. 2**53 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{name} must be an integer")
    if not 1 <= value <= MAX_SAFE_INTEGER:
        raise error(f"{name} must be between 1 and 2**53 - 1")
    return value


_HEX_64 = re.compile(r"[0-9a-f]{64}", re.ASCII)


def check_fingerprint(value: Any, name: str) -> str:
    """An identity fingerprint: 64 lowercase hex digits."""
    if not isinstance(value, str) or not _HEX_64.fullmatch(value):
        raise InvalidEnvelope(f"{name} must be 64 lowercase hex digits")
    return value


def check_hash(value: Any, name: str) -> str:
    """A SHA-256 digest in hex, as chain heads are written: 64 lowercase hex digits."""
    return check_fingerprint(value, name)


# RFC 3339 with a mandatory offset of at most 23:59: what Python's
# isoformat() and the browser's toISOString() both write, and nothing looser
# (datetime.fromisoformat alone would read "+12:60" as 13 hours).
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)


def parse_timestamp(value: Any, name: str) -> datetime:
    """An RFC 3339 date and time with an offset, e.g. 2025-01-31T08:00:00Z.

    Raises:
        InvalidEnvelope: Another spelling, or not a real date and time.
    """
    if not isinstance(value, str) or not _TIMESTAMP.fullmatch(value):
        raise InvalidEnvelope(f"{name} must be RFC 3339 with an offset, e.g. 2025-01-31T08:00:00Z")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEnvelope(f"{name} is not a valid date and time") from None
