"""core.crypto is pure: it imports PyNaCl and the standard library, never Django."""

import ast
import subprocess
import sys
from pathlib import Path

import core.crypto

PACKAGE = Path(core.crypto.__file__).parent
ALLOWED_TOP_LEVEL = {
    "nacl",
    "base64",
    "binascii",
    "bisect",
    "collections",
    "dataclasses",
    "datetime",
    "hashlib",
    "io",
    "json",
    "queue",
    "re",
    "struct",
    "threading",
    "types",
    "typing",
    "unicodedata",
}


def test_imports_are_pynacl_and_stdlib_only():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_TOP_LEVEL, f"{path.name} imports {name}"


def test_importing_does_not_load_django():
    code = (
        "import sys, core.crypto; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'channels')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent.parent)


def test_public_api_is_exported():
    for name in core.crypto.__all__:
        assert hasattr(core.crypto, name), name
    assert len(set(core.crypto.__all__)) == len(core.crypto.__all__)
    assert set(core.crypto.__all__) == {
        # Identity and signatures
        "IdentityKeyPair",
        "PublicIdentity",
        "CONTEXT_ENVELOPE",
        "CONTEXT_KEY_VERSION",
        "CONTEXT_STATEMENT",
        "CONTEXT_WRAP",
        # Encodings
        "b64decode",
        "b64encode",
        "canonical_json",
        # Key backup
        "generate_recovery_secret",
        "seal_backup",
        "open_backup",
        # Room keys, commitments and wraps
        "RoomKey",
        "WrapRecord",
        "key_commitment",
        "wrap_room_key",
        "unwrap_room_key",
        # Statements and the chain
        "GENESIS",
        "MembershipStatement",
        "SignedStatement",
        "sign_statement",
        "verify_statement",
        "statement_hash",
        "EMPTY_HEAD",
        "AttestedMember",
        "ChainHead",
        "MembershipChain",
        "replay_membership_chain",
        "verify_membership_chain",
        # Key versions
        "KeyVersionRecord",
        "SignedKeyVersion",
        "make_key_version",
        "verify_key_version",
        "check_current",
        "check_key_matches",
        # Envelopes
        "MAX_PLAINTEXT",
        "EnvelopeHeader",
        "encrypt_message",
        "parse_envelope",
        "verify_envelope",
        "decrypt_message",
        "verify_envelope_in_chain",
        "open_envelope",
        # File streams
        "CHUNK_SIZE",
        "FileKey",
        "StreamInfo",
        "encrypt_stream",
        "decrypt_stream",
        "encrypt_to_bytes",
        "decrypt_to_bytes",
        # Errors
        "CryptoError",
        "InvalidKey",
        "BadSignature",
        "DecryptionFailed",
        "TruncatedStream",
        "InvalidEnvelope",
        "UnsupportedVersion",
        "WrongPassphrase",
        "WeakPassphrase",
        "ChainRollback",
        "ChainFork",
        "ChainWithheld",
        "KeyVersionUnauthorized",
        "StaleKeyVersion",
        "KeyCommitmentMismatch",
        "SenderNotMember",
    }


def test_error_codes_are_stable():
    """docs/crypto.md, section 11: the codes clients and the browser map to their messages."""
    from core.crypto import errors

    assert {cls.__name__: cls.code for cls in errors.CryptoError.__subclasses__()} | {
        "TruncatedStream": errors.TruncatedStream.code
    } == {
        "InvalidKey": "invalid_key",
        "BadSignature": "bad_signature",
        "DecryptionFailed": "decryption_failed",
        "InvalidEnvelope": "invalid_envelope",
        "WrongPassphrase": "wrong_passphrase",
        "WeakPassphrase": "weak_passphrase",
        "TruncatedStream": "truncated_stream",
        "UnsupportedVersion": "unsupported_version",
        "ChainRollback": "membership_rollback",
        "ChainFork": "membership_fork",
        "ChainWithheld": "membership_withheld",
        "KeyVersionUnauthorized": "key_version_unauthorized",
        "StaleKeyVersion": "key_version_stale",
        "KeyCommitmentMismatch": "key_commitment_mismatch",
        "SenderNotMember": "sender_not_member",
    }
    assert errors.CryptoError.code == "crypto_error"
    assert issubclass(errors.TruncatedStream, errors.DecryptionFailed)
    # Each code names one class: no refusal can be mistaken for another.
    classes = [*errors.CryptoError.__subclasses__(), errors.TruncatedStream]
    assert len({cls.code for cls in classes}) == len(classes)
    for cls in classes:
        assert getattr(core.crypto, cls.__name__) is cls
