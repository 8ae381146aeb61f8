"""The server's VAPID identity (RFC 8292): one P-256 key signs every push.

The private key is read once from settings (ROUNDS_VAPID_PRIVATE_KEY, or the file
rounds/settings.py made under var/); it is never logged. Browsers subscribe with the
public half (GET /api/push/key), and a push service refuses pushes signed by any
other key for that subscription: rotating the key means every device subscribes again
(docs/push.md, "Keys").
"""

import base64
import functools

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid02  # type: ignore[import-untyped]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Base64url without padding (RFC 7515 §2), as browsers give keys; ValueError if not."""
    if not text or any(ch not in _URL_SAFE for ch in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@functools.cache
def signer() -> Vapid02:
    """The key, parsed once per process: a PEM, or the raw or DER key in base64url."""
    configured: str = settings.ROUNDS_VAPID_PRIVATE_KEY.strip()
    if configured.startswith("-----BEGIN"):
        return Vapid02(serialization.load_pem_private_key(configured.encode(), password=None))
    return Vapid02.from_string(configured)


def public_key() -> str:
    """The public key as PushManager.subscribe's applicationServerKey takes it: the
    uncompressed point (65 bytes), base64url."""
    point = signer().public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)
