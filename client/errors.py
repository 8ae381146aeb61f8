"""The client's one error type, in a module of its own so every client module can raise it.

client/sdk.py re-exports both names; they live here because client/sdk.py
imports the photo modules, which raise them too.
"""

from typing import Any

from core.crypto import CryptoError


class RoundsClientError(Exception):
    """A typed refusal from the server (`code` is one of docs/protocol.md's error codes)."""

    def __init__(
        self, code: str, message: str, data: dict[str, Any] | None = None, status: int | None = None
    ):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data or {}
        self.status = status


def crypto_refusal(error: CryptoError, context: str = "") -> RoundsClientError:
    """A `core.crypto` error as a client error with the same code."""
    return RoundsClientError(error.code, f"{context}{error}")
