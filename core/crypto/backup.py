"""Key backup: the identity sealed under a key stretched from the recovery secret.

The server stores the backup so that a new phone recovers its keys without
an "unable to decrypt" state. The server can therefore guess secrets
offline against it for as long as it likes, which decides everything here:

- A **generated** recovery secret (the default) is 28 Crockford base32
  characters, 140 bits from libsodium's random source. No guessing attack
  reaches 2**140, so Argon2id only has to add a constant factor; the
  MODERATE limits (3 passes, 256 MiB) keep a restore on a phone to about a
  second.
- A **user-chosen** passphrase has far less entropy than it appears to.
  It must pass `check_passphrase_strength` and is stretched with the
  SENSITIVE limits (4 passes, 1 GiB), which costs an attacker about 1 GiB
  of memory and several seconds of a core per guess.

Blob v1 (all integers big-endian), 130 bytes:

    version   1   0x01
    kind      1   0x01 generated secret, 0x02 user-chosen passphrase
    opslimit  4   Argon2id passes
    memlimit  4   Argon2id memory in bytes
    salt     16   random
    nonce    24   random
    ct       80   XChaCha20-Poly1305-IETF of the 64 identity bytes + 16-byte tag

The key is Argon2id13(secret, salt, opslimit, memlimit) of 32 bytes; the
additional data is the first 26 bytes (version to salt), so the parameters
cannot be changed without failing authentication. docs/crypto.md has the
same table.
"""

import struct
import unicodedata

import nacl.bindings
import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.utils

from .errors import InvalidEnvelope, UnsupportedVersion, WeakPassphrase, WrongPassphrase
from .identity import IdentityKeyPair

VERSION = 1
KIND_GENERATED = 1
KIND_PASSPHRASE = 2

SALT_SIZE = argon2id.SALTBYTES
NONCE_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
KEY_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
TAG_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES

_HEADER = struct.Struct(">BBII")
HEADER_SIZE = _HEADER.size + SALT_SIZE  # the additional data
BLOB_SIZE = HEADER_SIZE + NONCE_SIZE + IdentityKeyPair.SIZE + TAG_SIZE

# Defaults, by kind of secret (see the module docstring for why).
GENERATED_LIMITS = (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
PASSPHRASE_LIMITS = (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)

# What a blob may ask for. The blob comes from the server: without a ceiling
# a hostile server could make the client spend minutes or gigabytes.
MAX_OPSLIMIT = 16
MAX_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE

# Crockford base32: no I, L, O, U. When reading, I and L mean 1, O means 0.
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_READ = str.maketrans({"I": "1", "L": "1", "O": "0"})
SECRET_CHARS = 28  # 28 x 5 = 140 bits
SECRET_GROUP = 4

MIN_PASSPHRASE_CHARS = 16
MIN_PASSPHRASE_DISTINCT = 8
MIN_PASSPHRASE_CLASSES = 2


def generate_recovery_secret() -> str:
    """A new recovery secret, shown once: 7 groups of 4 Crockford characters.

    For example `7K3M-9XQ2-…`; 140 bits from libsodium's random source.
    """
    number = int.from_bytes(nacl.utils.random(18), "big") >> 4  # 144 bits -> 140
    chars = "".join(
        CROCKFORD[(number >> (5 * (SECRET_CHARS - 1 - i))) & 31] for i in range(SECRET_CHARS)
    )
    return format_recovery_secret(chars)


def format_recovery_secret(chars: str) -> str:
    """A secret's SECRET_CHARS Crockford characters as they are shown and written down:
    groups of SECRET_GROUP joined by hyphens."""
    return "-".join(chars[i : i + SECRET_GROUP] for i in range(0, SECRET_CHARS, SECRET_GROUP))


def normalise_recovery_secret(secret: str) -> str | None:
    """The canonical 28 characters of a generated secret, or None if it is not one.

    Spaces and dashes are dropped, letters uppercased, and the Crockford
    look-alikes read as digits (O as 0, I and L as 1), so a secret copied
    from paper with small slips still opens.
    """
    text = "".join(secret.split()).replace("-", "").upper().translate(_CROCKFORD_READ)
    if len(text) != SECRET_CHARS or any(ch not in CROCKFORD for ch in text):
        return None
    return text


def normalise_passphrase(passphrase: str) -> str:
    """NFC, without leading or trailing white space; inner spaces are kept."""
    return unicodedata.normalize("NFC", passphrase).strip()


def _char_class(ch: str) -> str:
    if ch.islower():
        return "lower"
    if ch.isupper():
        return "upper"
    if ch.isdigit():
        return "digit"
    return "other"  # spaces, punctuation, symbols, scripts without case


def check_passphrase_strength(passphrase: str) -> None:
    """Refuse a user-chosen passphrase that is obviously guessable.

    A deliberately small rule, not an entropy estimate: at least 16
    characters (after normalisation), at least 8 distinct characters, and at
    least two classes among lowercase, uppercase, digits and everything else
    (spaces count as "else", so "correct horse battery staple" passes and
    "aaaaaaaaaaaaaaaaaaaaaa" or "1234567812345678" do not).

    Raises:
        WeakPassphrase: Naming the rule that failed.
    """
    text = normalise_passphrase(passphrase)
    if len(text) < MIN_PASSPHRASE_CHARS:
        raise WeakPassphrase(f"a passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")
    if len(set(text)) < MIN_PASSPHRASE_DISTINCT:
        raise WeakPassphrase(
            f"a passphrase needs at least {MIN_PASSPHRASE_DISTINCT} different characters"
        )
    if len({_char_class(ch) for ch in text}) < MIN_PASSPHRASE_CLASSES:
        raise WeakPassphrase(
            "a passphrase needs two kinds of character (lowercase, uppercase, digits, others)"
        )


def _derive(secret: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return argon2id.kdf(KEY_SIZE, secret, salt, opslimit=opslimit, memlimit=memlimit)


def seal_backup(
    identity: IdentityKeyPair,
    secret: str,
    *,
    user_chosen: bool = False,
    opslimit: int | None = None,
    memlimit: int | None = None,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """Seal an identity under a recovery secret, for the server to keep.

    Args:
        identity: The key pair to back up.
        secret: A generated recovery secret (any spacing or case), or with
            `user_chosen=True` a passphrase the user chose.
        user_chosen: The secret is a passphrase: check its strength and use
            the SENSITIVE limits.
        opslimit, memlimit: Override the Argon2id limits (tests use the
            minimum; production code leaves them alone).
        salt, nonce: Fixed values for test vectors; random when omitted.

    Returns:
        The versioned blob (see the module docstring).

    Raises:
        WeakPassphrase: A user-chosen passphrase fails the strength check.
        WrongPassphrase: A "generated" secret is not 28 Crockford characters.
    """
    if not isinstance(identity, IdentityKeyPair):
        raise TypeError("identity must be an IdentityKeyPair")
    if user_chosen:
        check_passphrase_strength(secret)
        kind, material = KIND_PASSPHRASE, normalise_passphrase(secret)
        default_ops, default_mem = PASSPHRASE_LIMITS
    else:
        canonical = normalise_recovery_secret(secret)
        if canonical is None:
            raise WrongPassphrase("not a recovery secret: expected 28 Crockford characters")
        kind, material = KIND_GENERATED, canonical
        default_ops, default_mem = GENERATED_LIMITS
    opslimit = default_ops if opslimit is None else opslimit
    memlimit = default_mem if memlimit is None else memlimit
    _check_limits(opslimit, memlimit, error=ValueError)
    salt = nacl.utils.random(SALT_SIZE) if salt is None else salt
    nonce = nacl.utils.random(NONCE_SIZE) if nonce is None else nonce
    if not isinstance(salt, bytes) or len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")

    header = _HEADER.pack(VERSION, kind, opslimit, memlimit) + salt
    key = _derive(material.encode("utf-8"), salt, opslimit, memlimit)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        identity.to_bytes(), header, nonce, key
    )
    return header + nonce + ciphertext


def _check_limits(opslimit: int, memlimit: int, *, error: type[Exception]) -> None:
    if not (
        isinstance(opslimit, int) and argon2id.OPSLIMIT_MIN <= opslimit <= MAX_OPSLIMIT
    ) or not (isinstance(memlimit, int) and argon2id.MEMLIMIT_MIN <= memlimit <= MAX_MEMLIMIT):
        raise error(
            f"Argon2id limits out of range: opslimit {argon2id.OPSLIMIT_MIN}..{MAX_OPSLIMIT}, "
            f"memlimit {argon2id.MEMLIMIT_MIN}..{MAX_MEMLIMIT}"
        )


def backup_limits(blob: bytes) -> tuple[int, int]:
    """The (opslimit, memlimit) a blob was sealed with, without opening it."""
    _, _, opslimit, memlimit, _ = _parse(blob)
    return opslimit, memlimit


def _parse(blob: bytes) -> tuple[int, int, int, int, bytes]:
    if not isinstance(blob, bytes) or len(blob) < 1:
        raise InvalidEnvelope("backup: expected bytes")
    if blob[0] != VERSION:
        raise UnsupportedVersion(f"backup: version {blob[0]} is not supported")
    if len(blob) != BLOB_SIZE:
        raise InvalidEnvelope(f"backup: expected {BLOB_SIZE} bytes, got {len(blob)}")
    version, kind, opslimit, memlimit = _HEADER.unpack_from(blob)
    if kind not in (KIND_GENERATED, KIND_PASSPHRASE):
        raise InvalidEnvelope(f"backup: unknown secret kind {kind}")
    _check_limits(opslimit, memlimit, error=InvalidEnvelope)
    return version, kind, opslimit, memlimit, blob[_HEADER.size : HEADER_SIZE]


def open_backup(blob: bytes, secret: str) -> IdentityKeyPair:
    """Open a backup blob with the recovery secret or passphrase.

    Raises:
        UnsupportedVersion: The blob is of another format version.
        InvalidEnvelope: The blob does not parse, or asks for Argon2id limits
            beyond MAX_OPSLIMIT / MAX_MEMLIMIT.
        WrongPassphrase: The secret is wrong, or the blob was altered (the
            two cannot be told apart).
    """
    if not isinstance(secret, str):
        raise TypeError("secret must be a str")
    _, kind, opslimit, memlimit, salt = _parse(blob)
    if kind == KIND_GENERATED:
        canonical = normalise_recovery_secret(secret)
        if canonical is None:
            raise WrongPassphrase("not a recovery secret: expected 28 Crockford characters")
        material = canonical
    else:
        material = normalise_passphrase(secret)
    key = _derive(material.encode("utf-8"), salt, opslimit, memlimit)
    nonce = blob[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE]
    try:
        plaintext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[HEADER_SIZE + NONCE_SIZE :], blob[:HEADER_SIZE], nonce, key
        )
    except nacl.exceptions.CryptoError:
        raise WrongPassphrase("the backup does not open with this secret") from None
    return IdentityKeyPair.from_bytes(plaintext)
