"""Project Wycheproof (tests/vectors/wycheproof/) against the primitives core/crypto uses.

Each case has a `result`: `valid` must be accepted with the expected output,
`invalid` refused. `acceptable` is what an implementation may do either way;
here the test asserts what libsodium actually does, and why that is fine for
Rounds:

- Ed25519 and XChaCha20-Poly1305: the files have no acceptable cases (the
  tests below assert so, so a newer copy that adds some must document them).
- X25519 (254 acceptable cases): libsodium's `crypto_scalarmult` accepts
  public keys on the twist, non-canonical ones (top bit set, or from p up:
  it reduces them as RFC 7748 says) and edge cases of the multiplication,
  and gives RFC 7748's output for each. It refuses a low-order public key,
  whose shared secret is all zeros, with an error (libsodium returns -1;
  PyNaCl raises `nacl.exceptions.RuntimeError`, a `CryptoError`). Accepting
  the rest is fine because Rounds never takes such a key as a user's:
  `PublicIdentity` refuses every non-canonical X25519 key (one point, one
  spelling, one fingerprint) and every low-order one
  (`test_public_identity_refuses_exactly_non_canonical_and_low_order_keys`),
  and twist points give no one an advantage with X25519's clamped scalars.
  Sealed boxes (the only X25519 Rounds does) call the same `crypto_scalarmult`.

The browser runs the same files through libsodium-wrappers-sumo
(tests/browser/test_vectors.py, vector_checks.js `checkWycheproof`).
"""

import hashlib
import json
from pathlib import Path

import nacl.bindings as b
import nacl.exceptions
import pytest

from core.crypto import (
    BadSignature,
    ChainHead,
    IdentityKeyPair,
    InvalidKey,
    PublicIdentity,
    RoomKey,
    encrypt_message,
)
from core.crypto import identity as identity_module

WYCHEPROOF = Path(__file__).resolve().parents[1] / "vectors" / "wycheproof"
X25519_P = 2**255 - 19
NONCE_SIZE = b.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES

# A fixed identity whose keys pair with a test key in a PublicIdentity.
FIXED = IdentityKeyPair.from_bytes(hashlib.sha512(b"rounds-test/wycheproof").digest())


def load(name: str) -> dict:
    return json.loads((WYCHEPROOF / name).read_text(encoding="utf-8"))


def cases(data: dict) -> list[tuple[dict, dict]]:
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


def case_id(case: tuple[dict, dict]) -> str:
    return f"tc{case[1]['tcId']}-{case[1]['result']}"


ED25519 = load("ed25519_test.json")
X25519 = load("x25519_test.json")
XCHACHA = load("xchacha20_poly1305_test.json")


@pytest.mark.parametrize("data", [ED25519, X25519, XCHACHA], ids=["ed25519", "x25519", "xchacha"])
def test_files_are_whole(data):
    assert len(cases(data)) == data["numberOfTests"]


@pytest.mark.parametrize("data", [ED25519, XCHACHA], ids=["ed25519", "xchacha"])
def test_no_acceptable_cases_to_document(data):
    assert {test["result"] for _, test in cases(data)} == {"valid", "invalid"}


# --- Ed25519: verified exactly as PublicIdentity.verify does it --------------------


@pytest.fixture
def no_context(monkeypatch):
    """Admit the empty context, for this test only, so the vectors' messages are verified as is.

    Everything else is PublicIdentity.verify unchanged: the 64-byte check,
    then libsodium's `crypto_sign_verify_detached` through PyNaCl.
    """
    monkeypatch.setattr(identity_module, "CONTEXTS", identity_module.CONTEXTS | {b""})


@pytest.mark.parametrize("case", cases(ED25519), ids=case_id)
def test_ed25519(case, no_context):
    group, test = case
    # Every test key is a valid point, so PublicIdentity takes it: the
    # signature check alone decides.
    key = PublicIdentity(
        x25519=FIXED.public.x25519, ed25519=bytes.fromhex(group["publicKey"]["pk"])
    )
    message, signature = bytes.fromhex(test["msg"]), bytes.fromhex(test["sig"])
    if test["result"] == "valid":
        key.verify(b"", message, signature)
    else:
        with pytest.raises(BadSignature):
            key.verify(b"", message, signature)


# --- X25519: crypto_scalarmult, and which keys PublicIdentity takes ----------------


def is_zero(hex_text: str) -> bool:
    return bytes.fromhex(hex_text) == bytes(32)


@pytest.mark.parametrize("case", cases(X25519), ids=case_id)
def test_x25519(case):
    _, test = case
    private, public = bytes.fromhex(test["private"]), bytes.fromhex(test["public"])
    shared = bytes.fromhex(test["shared"])
    refused = test["result"] == "invalid" or (
        test["result"] == "acceptable" and is_zero(test["shared"])
    )
    if refused:
        # A low-order public key: libsodium refuses the all-zero shared secret.
        assert "LowOrderPublic" in test["flags"] or test["result"] == "invalid"
        with pytest.raises(nacl.exceptions.CryptoError):
            b.crypto_scalarmult(private, public)
    else:
        # Valid, or acceptable (twist, non-canonical, edge case): RFC 7748's output.
        assert b.crypto_scalarmult(private, public) == shared


def x25519_public_keys() -> dict[str, dict]:
    """Each distinct test public key, with one of its cases."""
    return {test["public"]: test for _, test in cases(X25519)}


def is_canonical(public: bytes) -> bool:
    return int.from_bytes(public, "little") < X25519_P


@pytest.mark.parametrize(
    "test",
    [
        test
        for test in x25519_public_keys().values()
        if "NonCanonicalPublic" in test["flags"] or bytes.fromhex(test["public"])[31] & 0x80
    ],
    ids=lambda test: f"tc{test['tcId']}",
)
def test_public_identity_refuses_non_canonical_and_top_bit_keys(test):
    with pytest.raises(InvalidKey):
        PublicIdentity(x25519=bytes.fromhex(test["public"]), ed25519=FIXED.public.ed25519)


@pytest.mark.parametrize(
    "test", list(x25519_public_keys().values()), ids=lambda test: f"tc{test['tcId']}"
)
def test_public_identity_refuses_exactly_non_canonical_and_low_order_keys(test):
    public = bytes.fromhex(test["public"])
    if not is_canonical(public) or is_zero(test["shared"]):
        with pytest.raises(InvalidKey):
            PublicIdentity(x25519=public, ed25519=FIXED.public.ed25519)
    else:
        assert PublicIdentity(x25519=public, ed25519=FIXED.public.ed25519).x25519 == public


def test_acceptable_x25519_cases_split_on_the_zero_shared_secret():
    acceptable = [test for _, test in cases(X25519) if test["result"] == "acceptable"]
    refused = [test for test in acceptable if is_zero(test["shared"])]
    # The numbers the browser test asserts too (tests/browser/test_vectors.py).
    assert (len(acceptable) - len(refused), len(refused)) == (223, 31)
    assert all("ZeroSharedSecret" in test["flags"] for test in refused)


# --- XChaCha20-Poly1305-IETF: as envelope.py and backup.py call it ------------------


@pytest.mark.parametrize("case", cases(XCHACHA), ids=case_id)
def test_xchacha20_poly1305(case):
    _, test = case
    key, nonce, aad, message = (bytes.fromhex(test[name]) for name in ("key", "iv", "aad", "msg"))
    sealed = bytes.fromhex(test["ct"]) + bytes.fromhex(test["tag"])
    if test["result"] == "valid":
        assert b.crypto_aead_xchacha20poly1305_ietf_encrypt(message, aad, nonce, key) == sealed
        assert b.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, aad, nonce, key) == message
    elif len(nonce) != NONCE_SIZE:
        # PyNaCl refuses the size before libsodium sees it (nacl.exceptions.TypeError).
        with pytest.raises(TypeError):
            b.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, aad, nonce, key)
        with pytest.raises(TypeError):
            b.crypto_aead_xchacha20poly1305_ietf_encrypt(message, aad, nonce, key)
    else:
        with pytest.raises(nacl.exceptions.CryptoError):
            b.crypto_aead_xchacha20poly1305_ietf_decrypt(sealed, aad, nonce, key)


@pytest.mark.parametrize(
    "size", sorted({len(bytes.fromhex(test["iv"])) for _, test in cases(XCHACHA)} - {NONCE_SIZE})
)
def test_encrypt_message_refuses_the_vectors_wrong_nonce_sizes(size):
    """Rounds never hands libsodium such a nonce: a programming error, ValueError."""
    room_key = RoomKey(bytes(32), department=12, version=1)
    with pytest.raises(ValueError, match="nonce"):
        encrypt_message(
            b"",
            room_key=room_key,
            head=ChainHead(1, "1" * 64),
            thread=1,
            sender=1,
            client_msg_id="wycheproof",
            signer=FIXED,
            nonce=bytes(size),
        )
