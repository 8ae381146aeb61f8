"""The errors of `core.crypto`: one base class, one subclass per failure.

Every error carries a stable `code` string, which is what a caller maps to
its own error vocabulary (the server's `RoundsError`, the client's UI
messages). Messages name the field or statement at fault but never contain
key material or plaintext.
"""

from typing import ClassVar


class CryptoError(Exception):
    """Base class: anything `core.crypto` refuses raises a subclass of this."""

    code: ClassVar[str] = "crypto_error"
    # Set by verify_membership_chain: the position of the statement at fault.
    statement_index: int | None = None


class InvalidKey(CryptoError):
    """Key material of the wrong type or size, or a point that is not a usable key."""

    code = "invalid_key"


class BadSignature(CryptoError):
    """A signature does not verify, or was made by another key than the one expected."""

    code = "bad_signature"


class DecryptionFailed(CryptoError):
    """Authenticated decryption failed: wrong key, or the ciphertext was altered."""

    code = "decryption_failed"


class InvalidEnvelope(CryptoError):
    """A structure does not parse: missing or extra field, wrong type or size, bad base64."""

    code = "invalid_envelope"


class WrongPassphrase(CryptoError):
    """A key backup does not open with this recovery secret."""

    code = "wrong_passphrase"


class WeakPassphrase(CryptoError):
    """A user-chosen passphrase is too weak to protect a backup the server holds."""

    code = "weak_passphrase"


class TruncatedStream(DecryptionFailed):
    """An encrypted stream ended before its final chunk.

    A subclass of `DecryptionFailed` because a stream cut in the middle of a
    chunk cannot be told apart from an altered chunk: both fail
    authentication. A stream cut exactly at a chunk boundary is recognised
    as truncated.
    """

    code = "truncated_stream"


class UnsupportedVersion(CryptoError):
    """A well-formed structure of a format version this code does not know."""

    code = "unsupported_version"


# --- The membership chain and key versions (docs/crypto.md, sections 6 and 7) -----------
#
# Each names a way a server can lie about a department's membership or keys
# with data that is correctly signed: a client refuses it with this code.


class ChainRollback(CryptoError):
    """The chain served ends before a head this device has already verified:
    statements were withheld, or taken back."""

    code = "membership_rollback"


class ChainFork(CryptoError):
    """The chain served differs from one this device (or a sender) verified at the same point."""

    code = "membership_fork"


class ChainWithheld(CryptoError):
    """A sender or a key version names a chain head beyond the chain served to this device:
    the server withholds statements from this member."""

    code = "membership_withheld"


class KeyVersionUnauthorized(CryptoError):
    """A key version made by someone who was not a member at the chain head it names."""

    code = "key_version_unauthorized"


class StaleKeyVersion(CryptoError):
    """A key version made before a removal or key replacement that its user knew of: a
    removed member may hold it, so nothing new is written or accepted under it."""

    code = "key_version_stale"


class KeyCommitmentMismatch(CryptoError):
    """A room key does not match the commitment its key version record signed."""

    code = "key_commitment_mismatch"


class SenderNotMember(CryptoError):
    """An envelope's sender was not a member at the chain head the envelope names."""

    code = "sender_not_member"
