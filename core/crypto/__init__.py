"""End-to-end cryptography for Rounds: pure bytes in, bytes out, PyNaCl only.

Nothing here imports Django, touches the database or does I/O beyond the
file objects it is handed; every failure is a `CryptoError` subclass with a
stable `code`. docs/crypto.md specifies the wire formats and the test
vectors (tests/vectors/) that the browser client checks itself against.

- `identity`: a user's X25519 + Ed25519 key pair, fingerprints, and
  signatures under domain-separation contexts.
- `backup`: the identity sealed under a recovery secret (Argon2id +
  XChaCha20-Poly1305), kept by the server.
- `roomkeys`: versioned room keys, their commitments, sealed for each
  member in signed wrap records.
- `statements`: membership statements signed by a department head,
  hash-linked into one chain per department.
- `chain`: the chain replayed from the pinned admin key: who is a member
  with which key at every point, and whether a chain extends a known head.
- `keyversions`: a room key version bound to the chain head it was made
  at, its creator and its key's commitment.
- `envelope`: message envelope v2, encrypted under the room key and signed
  by the sender; `verify_envelope` is the server's check, `open_envelope`
  the reader's.
- `stream`: chunked file encryption with secretstream, for photos.
- `encoding`: strict base64 and canonical JSON.
"""

from .backup import generate_recovery_secret, open_backup, seal_backup
from .chain import (
    EMPTY_HEAD,
    AttestedMember,
    ChainHead,
    MembershipChain,
    replay_membership_chain,
    verify_membership_chain,
)
from .encoding import b64decode, b64encode, canonical_json
from .envelope import (
    MAX_PLAINTEXT,
    EnvelopeHeader,
    decrypt_message,
    encrypt_message,
    open_envelope,
    parse_envelope,
    verify_envelope,
    verify_envelope_in_chain,
)
from .errors import (
    BadSignature,
    ChainFork,
    ChainRollback,
    ChainWithheld,
    CryptoError,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    KeyCommitmentMismatch,
    KeyVersionUnauthorized,
    SenderNotMember,
    StaleKeyVersion,
    TruncatedStream,
    UnsupportedVersion,
    WeakPassphrase,
    WrongPassphrase,
)
from .identity import (
    CONTEXT_ENVELOPE,
    CONTEXT_KEY_VERSION,
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    IdentityKeyPair,
    PublicIdentity,
)
from .keyversions import (
    KeyVersionRecord,
    SignedKeyVersion,
    check_current,
    check_key_matches,
    make_key_version,
    verify_key_version,
)
from .roomkeys import RoomKey, WrapRecord, key_commitment, unwrap_room_key, wrap_room_key
from .statements import (
    GENESIS,
    MembershipStatement,
    SignedStatement,
    sign_statement,
    statement_hash,
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
    "CONTEXT_KEY_VERSION",
    "CONTEXT_STATEMENT",
    "CONTEXT_WRAP",
    "EMPTY_HEAD",
    "GENESIS",
    "MAX_PLAINTEXT",
    "AttestedMember",
    "BadSignature",
    "ChainFork",
    "ChainHead",
    "ChainRollback",
    "ChainWithheld",
    "CryptoError",
    "DecryptionFailed",
    "EnvelopeHeader",
    "FileKey",
    "IdentityKeyPair",
    "InvalidEnvelope",
    "InvalidKey",
    "KeyCommitmentMismatch",
    "KeyVersionRecord",
    "KeyVersionUnauthorized",
    "MembershipChain",
    "MembershipStatement",
    "PublicIdentity",
    "RoomKey",
    "SenderNotMember",
    "SignedKeyVersion",
    "SignedStatement",
    "StaleKeyVersion",
    "StreamInfo",
    "TruncatedStream",
    "UnsupportedVersion",
    "WeakPassphrase",
    "WrapRecord",
    "WrongPassphrase",
    "b64decode",
    "b64encode",
    "canonical_json",
    "check_current",
    "check_key_matches",
    "decrypt_message",
    "decrypt_stream",
    "decrypt_to_bytes",
    "encrypt_message",
    "encrypt_stream",
    "encrypt_to_bytes",
    "generate_recovery_secret",
    "key_commitment",
    "make_key_version",
    "open_backup",
    "open_envelope",
    "parse_envelope",
    "replay_membership_chain",
    "seal_backup",
    "sign_statement",
    "statement_hash",
    "unwrap_room_key",
    "verify_envelope",
    "verify_envelope_in_chain",
    "verify_key_version",
    "verify_membership_chain",
    "verify_statement",
    "wrap_room_key",
]
