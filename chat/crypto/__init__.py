"""End-to-end cryptography for Rounds: pure bytes in, bytes out, PyNaCl only.

Nothing here imports Django, touches the database or does I/O beyond the
file objects it is handed; every failure is a `CryptoError` subclass with a
stable `code`. docs/crypto.md specifies the wire formats and the test
vectors (tests/vectors/) that the browser client checks itself against.

- `identity`: a user's X25519 + Ed25519 key pair, fingerprints, and
  signatures under domain-separation contexts.
- `backup`: the identity sealed under a recovery secret (Argon2id +
  XChaCha20-Poly1305), kept by the server.
- `roomkeys`: versioned room keys, sealed for each member in signed wrap
  records.
- `statements`: membership statements signed by a department head, and the
  chain that says who may be given the room key.
- `envelope`: message envelope v1, encrypted under the room key and signed
  by the sender; `verify_envelope` is the server's check.
- `stream`: chunked file encryption with secretstream, for photos.
- `encoding`: strict base64 and canonical JSON.
"""

from .backup import generate_recovery_secret, open_backup, seal_backup
from .encoding import b64decode, b64encode, canonical_json
from .envelope import (
    MAX_PLAINTEXT,
    EnvelopeHeader,
    decrypt_message,
    encrypt_message,
    verify_envelope,
)
from .errors import (
    BadSignature,
    CryptoError,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    TruncatedStream,
    UnsupportedVersion,
    WeakPassphrase,
    WrongPassphrase,
)
from .identity import (
    CONTEXT_ENVELOPE,
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    IdentityKeyPair,
    PublicIdentity,
)
from .roomkeys import RoomKey, WrapRecord, unwrap_room_key, wrap_room_key
from .statements import (
    AttestedMember,
    MembershipChain,
    MembershipStatement,
    SignedStatement,
    replay_membership_chain,
    sign_statement,
    verify_membership_chain,
    verify_statement,
)
from .stream import (
    CHUNK_SIZE,
    FileKey,
    StreamInfo,
    decrypt_stream,
    decrypt_to_bytes,
    encrypt_stream,
    encrypt_to_bytes,
)

__all__ = [
    "CHUNK_SIZE",
    "CONTEXT_ENVELOPE",
    "CONTEXT_STATEMENT",
    "CONTEXT_WRAP",
    "MAX_PLAINTEXT",
    "AttestedMember",
    "BadSignature",
    "CryptoError",
    "DecryptionFailed",
    "EnvelopeHeader",
    "FileKey",
    "IdentityKeyPair",
    "InvalidEnvelope",
    "InvalidKey",
    "MembershipChain",
    "MembershipStatement",
    "PublicIdentity",
    "RoomKey",
    "SignedStatement",
    "StreamInfo",
    "TruncatedStream",
    "UnsupportedVersion",
    "WeakPassphrase",
    "WrapRecord",
    "WrongPassphrase",
    "b64decode",
    "b64encode",
    "canonical_json",
    "decrypt_message",
    "decrypt_stream",
    "decrypt_to_bytes",
    "encrypt_message",
    "encrypt_stream",
    "encrypt_to_bytes",
    "generate_recovery_secret",
    "open_backup",
    "replay_membership_chain",
    "seal_backup",
    "sign_statement",
    "unwrap_room_key",
    "verify_envelope",
    "verify_membership_chain",
    "verify_statement",
    "wrap_room_key",
]
