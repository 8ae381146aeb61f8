"""User identities: an X25519 key pair for key wrapping, an Ed25519 key pair for signatures.

The private half (`IdentityKeyPair`) lives on the user's devices and, sealed
under the recovery secret, in the server's key backup (`backup.py`). The
public half (`PublicIdentity`) is registered with the server and named by
its fingerprint in wrap records and membership statements.

Every signature covers a domain-separation context followed by the message,
so a signature made for one purpose (an envelope) can never be replayed as
another (a wrap record or a membership statement). The contexts are defined
here and nowhere else; each ends in a NUL byte, so none is a prefix of
another.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from .encoding import b64decode, b64encode
from .errors import BadSignature, InvalidEnvelope, InvalidKey

# Version 2 of every signed format (docs/crypto.md): a v1 signature never
# verifies as a v2 one, whatever its bytes.
CONTEXT_ENVELOPE = b"rounds-envelope-v2\0"
CONTEXT_WRAP = b"rounds-wrap-v2\0"
CONTEXT_STATEMENT = b"rounds-statement-v2\0"
CONTEXT_KEY_VERSION = b"rounds-key-version-v2\0"
CONTEXTS = frozenset({CONTEXT_ENVELOPE, CONTEXT_WRAP, CONTEXT_STATEMENT, CONTEXT_KEY_VERSION})

FINGERPRINT_DOMAIN = b"rounds-identity-v1\0"

# X25519 public keys are u-coordinates below p = 2**255 - 19, little-endian.
# RFC 7748 asks receivers to ignore the top bit and to accept values from p
# up, which gives one point up to four spellings (and Rounds four
# fingerprints for one key): only the canonical spelling is accepted.
_X25519_P = 2**255 - 19

# Any clamped scalar will do: multiplying a low-order point by a multiple of
# the cofactor gives the all-zero point, which libsodium refuses.
_PROBE_SCALAR = bytes([8]) + bytes(30) + bytes([64])


def _check_context(context: bytes) -> None:
    if context not in CONTEXTS:
        raise ValueError("unknown signature context; use a CONTEXT_* constant")


def _fingerprint(x25519: bytes, ed25519: bytes) -> str:
    return hashlib.sha256(FINGERPRINT_DOMAIN + x25519 + ed25519).hexdigest()


@dataclass(frozen=True)
class PublicIdentity:
    """A user's public keys: 32 bytes of X25519, 32 bytes of Ed25519.

    The constructor refuses keys of the wrong size, X25519 keys that are
    not canonical (so one key has one fingerprint), and points that are not
    usable keys (low-order X25519 points, Ed25519 encodings that are
    non-canonical, off the curve or of small order), so a malicious key
    cannot make a sealed box or a signature check degenerate.

    :cvar KEY_SIZE: the size of each public key.
    """

    KEY_SIZE: ClassVar[int] = 32

    x25519: bytes
    ed25519: bytes
    _fingerprint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("x25519", "ed25519"):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != self.KEY_SIZE:
                raise InvalidKey(f"{name} public key must be {self.KEY_SIZE} bytes")
        if int.from_bytes(self.x25519, "little") >= _X25519_P:
            raise InvalidKey("x25519 public key is not canonical (top bit set, or not below p)")
        try:
            nacl.bindings.crypto_scalarmult(_PROBE_SCALAR, self.x25519)
        except nacl.exceptions.CryptoError:
            raise InvalidKey("x25519 public key is a low-order point") from None
        if not nacl.bindings.crypto_core_ed25519_is_valid_point(self.ed25519):
            raise InvalidKey("ed25519 public key is not a valid point")
        object.__setattr__(self, "_fingerprint", _fingerprint(self.x25519, self.ed25519))

    @property
    def fingerprint(self) -> str:
        """64 lowercase hex digits: SHA-256 of the domain, the X25519 key, the Ed25519 key."""
        return self._fingerprint

    @property
    def fingerprint_grouped(self) -> str:
        """The fingerprint for people to compare: 16 groups of 4 hex digits."""
        fp = self._fingerprint
        return " ".join(fp[i : i + 4] for i in range(0, len(fp), 4))

    def verify(self, context: bytes, message: bytes, signature: bytes) -> None:
        """Check an Ed25519 signature over `context + message`.

        Raises:
            BadSignature: The signature is not 64 bytes or does not verify.
            ValueError: `context` is not one of the CONTEXT_* constants.
        """
        _check_context(context)
        if not isinstance(signature, bytes) or len(signature) != IdentityKeyPair.SIGNATURE_SIZE:
            raise BadSignature("signature must be 64 bytes")
        try:
            nacl.signing.VerifyKey(self.ed25519).verify(context + message, signature)
        except nacl.exceptions.BadSignatureError:
            raise BadSignature("signature does not verify") from None

    def to_dict(self) -> dict[str, str]:
        return {"x25519": b64encode(self.x25519), "ed25519": b64encode(self.ed25519)}

    @classmethod
    def from_dict(cls, data: Any) -> "PublicIdentity":
        """Parse `{"x25519": b64, "ed25519": b64}`, nothing more.

        Raises:
            InvalidEnvelope: Not exactly those keys, or bad base64 or size.
            InvalidKey: The keys are not usable points.
        """
        if not isinstance(data, dict) or set(data) != {"x25519", "ed25519"}:
            raise InvalidEnvelope("public identity: expected exactly x25519 and ed25519")
        return cls(
            x25519=b64decode(data["x25519"], size=cls.KEY_SIZE, field="x25519"),
            ed25519=b64decode(data["ed25519"], size=cls.KEY_SIZE, field="ed25519"),
        )


class IdentityKeyPair:
    """A user's private identity: an X25519 secret key and an Ed25519 seed.

    Serialised as 64 bytes (`to_bytes`): the 32-byte X25519 secret key then
    the 32-byte Ed25519 seed. `repr` never shows them.

    :cvar SECRET_SIZE: size of the X25519 secret key.
    :cvar SEED_SIZE: size of the Ed25519 seed.
    :cvar SIZE: size of the serialised key pair.
    :cvar SIGNATURE_SIZE: size of a detached Ed25519 signature.
    """

    SECRET_SIZE: ClassVar[int] = nacl.public.PrivateKey.SIZE
    SEED_SIZE: ClassVar[int] = nacl.bindings.crypto_sign_SEEDBYTES
    SIZE: ClassVar[int] = SECRET_SIZE + SEED_SIZE
    SIGNATURE_SIZE: ClassVar[int] = nacl.bindings.crypto_sign_BYTES

    def __init__(self, x25519_secret: bytes, ed25519_seed: bytes) -> None:
        if not isinstance(x25519_secret, bytes) or len(x25519_secret) != self.SECRET_SIZE:
            raise InvalidKey(f"x25519 secret key must be {self.SECRET_SIZE} bytes")
        if not isinstance(ed25519_seed, bytes) or len(ed25519_seed) != self.SEED_SIZE:
            raise InvalidKey(f"ed25519 seed must be {self.SEED_SIZE} bytes")
        self._box_key = nacl.public.PrivateKey(x25519_secret)
        self._signing_key = nacl.signing.SigningKey(ed25519_seed)
        self._public = PublicIdentity(
            x25519=bytes(self._box_key.public_key),
            ed25519=bytes(self._signing_key.verify_key),
        )

    @classmethod
    def generate(cls) -> "IdentityKeyPair":
        """A new identity from the operating system's random source (libsodium)."""
        return cls(
            bytes(nacl.public.PrivateKey.generate()),
            bytes(nacl.signing.SigningKey.generate()),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> "IdentityKeyPair":
        """Rebuild from the 64 bytes of `to_bytes`.

        Raises:
            InvalidKey: Not exactly 64 bytes.
        """
        if not isinstance(data, bytes) or len(data) != cls.SIZE:
            raise InvalidKey(f"identity key pair must be {cls.SIZE} bytes")
        return cls(data[: cls.SECRET_SIZE], data[cls.SECRET_SIZE :])

    def to_bytes(self) -> bytes:
        return bytes(self._box_key) + bytes(self._signing_key)

    @property
    def public(self) -> PublicIdentity:
        return self._public

    @property
    def fingerprint(self) -> str:
        return self._public.fingerprint

    @property
    def box_key(self) -> nacl.public.PrivateKey:
        """The X25519 private key, for opening sealed boxes (`roomkeys.py`)."""
        return self._box_key

    def sign(self, context: bytes, message: bytes) -> bytes:
        """A detached 64-byte Ed25519 signature over `context + message`.

        Ed25519 is deterministic: the same key, context and message always
        give the same signature, which is what makes the envelope vectors
        reproducible.

        Raises:
            ValueError: `context` is not one of the CONTEXT_* constants.
        """
        _check_context(context)
        if not isinstance(message, bytes):
            raise TypeError("message must be bytes")
        return self._signing_key.sign(context + message).signature

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IdentityKeyPair):
            return NotImplemented
        return nacl.bindings.sodium_memcmp(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash(self._public)

    def __repr__(self) -> str:
        return f"IdentityKeyPair(fingerprint={self.fingerprint[:16]}…)"
