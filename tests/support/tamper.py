"""Tampering with signed material as a server or a forger could: one bit flipped."""

from core.crypto import b64decode, b64encode


def flip_b64(text: str, index: int = 0) -> str:
    """The same base64 field with one bit of byte `index` flipped."""
    raw = bytearray(b64decode(text))
    raw[index] ^= 1
    return b64encode(bytes(raw))
