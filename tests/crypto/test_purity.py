"""chat.crypto is pure: it imports PyNaCl and the standard library, never Django."""

import ast
import subprocess
import sys
from pathlib import Path

import chat.crypto

PACKAGE = Path(chat.crypto.__file__).parent
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
        "import sys, chat.crypto; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'channels')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent.parent)


def test_public_api_is_exported():
    for name in chat.crypto.__all__:
        assert hasattr(chat.crypto, name), name
    assert set(chat.crypto.__all__) >= {
        "IdentityKeyPair",
        "PublicIdentity",
        "encrypt_message",
        "verify_envelope",
        "decrypt_message",
        "wrap_room_key",
        "unwrap_room_key",
        "seal_backup",
        "open_backup",
        "encrypt_stream",
        "decrypt_stream",
        "verify_membership_chain",
    }


def test_error_codes_are_stable():
    from chat.crypto import errors

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
    }
    assert issubclass(errors.TruncatedStream, errors.DecryptionFailed)
