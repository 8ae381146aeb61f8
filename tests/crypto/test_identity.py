"""Identity key pairs, fingerprints and context-separated signatures."""

import hashlib

import nacl.bindings
import nacl.signing
import pytest

from chat.crypto import (
    CONTEXT_ENVELOPE,
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    BadSignature,
    IdentityKeyPair,
    InvalidEnvelope,
    InvalidKey,
    PublicIdentity,
    b64encode,
)
from chat.crypto.identity import CONTEXTS

# RFC 8032 section 7.1, test 1: secret key (seed), public key, empty message.
RFC8032_SEED = bytes.fromhex(
    "9d61b19d effd5a60 ba844af4 92ec2cc4 4449c569 7b326919 703bac03 1cae7f60"
)
RFC8032_PUBLIC = bytes.fromhex(
    "d75a9801 82b10ab7 d54bfed3 c964073a 0ee172f3 daa62325 af021a68 f707511a"
)
RFC8032_SIG = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
# RFC 7748 section 6.1: Alice's X25519 private and public key.
RFC7748_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")


def test_known_keys_and_fingerprint():
    identity = IdentityKeyPair(RFC7748_SECRET, RFC8032_SEED)
    assert identity.public.x25519 == RFC7748_PUBLIC
    assert identity.public.ed25519 == RFC8032_PUBLIC
    expected = hashlib.sha256(b"rounds-identity-v1\0" + RFC7748_PUBLIC + RFC8032_PUBLIC)
    assert identity.fingerprint == expected.hexdigest()
    grouped = identity.public.fingerprint_grouped
    assert grouped.replace(" ", "") == identity.fingerprint
    assert len(grouped.split(" ")) == 16


def test_signature_covers_context_then_message():
    identity = IdentityKeyPair(RFC7748_SECRET, RFC8032_SEED)
    signature = identity.sign(CONTEXT_ENVELOPE, b"body")
    # A plain Ed25519 signature over the concatenation, nothing else.
    assert nacl.bindings.crypto_sign_open(signature + CONTEXT_ENVELOPE + b"body", RFC8032_PUBLIC)
    # Deterministic, like RFC 8032: same input, same signature.
    assert identity.sign(CONTEXT_ENVELOPE, b"body") == signature
    # And the RFC's own vector through PyNaCl, the primitive `sign` calls.
    assert nacl.signing.SigningKey(RFC8032_SEED).sign(b"").signature == RFC8032_SIG


def test_contexts_are_distinct_and_nul_terminated():
    assert {CONTEXT_ENVELOPE, CONTEXT_WRAP, CONTEXT_STATEMENT} == CONTEXTS
    for context in CONTEXTS:
        assert context.endswith(b"\0") and context.count(b"\0") == 1
        assert not any(o != context and o.startswith(context) for o in CONTEXTS)


def test_sign_and_verify(nurse_alice, surgeon_bob):
    signature = nurse_alice.sign(CONTEXT_WRAP, b"message")
    nurse_alice.public.verify(CONTEXT_WRAP, b"message", signature)
    with pytest.raises(BadSignature):
        surgeon_bob.public.verify(CONTEXT_WRAP, b"message", signature)
    with pytest.raises(BadSignature):
        nurse_alice.public.verify(CONTEXT_WRAP, b"messagf", signature)


@pytest.mark.parametrize("other", [CONTEXT_ENVELOPE, CONTEXT_STATEMENT])
def test_a_signature_does_not_cross_contexts(nurse_alice, other):
    signature = nurse_alice.sign(CONTEXT_WRAP, b"message")
    with pytest.raises(BadSignature):
        nurse_alice.public.verify(other, b"message", signature)


def test_context_shifting_is_refused(nurse_alice):
    # Moving bytes between context and message must not verify either.
    signature = nurse_alice.sign(CONTEXT_WRAP, b"x")
    with pytest.raises(ValueError):
        nurse_alice.public.verify(CONTEXT_WRAP + b"x", b"", signature)


def test_unknown_context_is_a_programming_error(nurse_alice):
    with pytest.raises(ValueError):
        nurse_alice.sign(b"rounds-other-v1\0", b"m")
    with pytest.raises(ValueError):
        nurse_alice.public.verify(b"", b"m", bytes(64))


def test_every_signature_byte_matters(nurse_alice):
    signature = nurse_alice.sign(CONTEXT_STATEMENT, b"statement")
    for index in range(64):
        for mask in (0x01, 0x80):
            flipped = bytearray(signature)
            flipped[index] ^= mask
            with pytest.raises(BadSignature):
                nurse_alice.public.verify(CONTEXT_STATEMENT, b"statement", bytes(flipped))


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), "x" * 64, None])
def test_malformed_signature(nurse_alice, signature):
    with pytest.raises(BadSignature):
        nurse_alice.public.verify(CONTEXT_ENVELOPE, b"m", signature)


def test_bytes_round_trip(nurse_alice):
    data = nurse_alice.to_bytes()
    assert len(data) == IdentityKeyPair.SIZE == 64
    restored = IdentityKeyPair.from_bytes(data)
    assert restored == nurse_alice
    assert restored.public == nurse_alice.public
    assert restored.sign(CONTEXT_WRAP, b"m") == nurse_alice.sign(CONTEXT_WRAP, b"m")


@pytest.mark.parametrize("data", [b"", bytes(63), bytes(65), "x" * 64, bytearray(64)])
def test_from_bytes_checks_length_and_type(data):
    with pytest.raises(InvalidKey):
        IdentityKeyPair.from_bytes(data)


def test_repr_shows_no_secret(nurse_alice):
    text = repr(nurse_alice)
    assert nurse_alice.to_bytes().hex()[:16] not in text
    assert nurse_alice.fingerprint[:16] in text


def test_public_dict_round_trip(nurse_alice):
    data = nurse_alice.public.to_dict()
    assert set(data) == {"x25519", "ed25519"}
    assert PublicIdentity.from_dict(data) == nurse_alice.public


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "extra": "x"},
        lambda d: {"x25519": d["x25519"]},
        lambda d: {**d, "x25519": d["x25519"][:-4]},
        lambda d: {**d, "ed25519": b64encode(bytes(33))},
        lambda d: {**d, "ed25519": 5},
        lambda d: [d],
    ],
)
def test_public_from_dict_is_strict(nurse_alice, mutate):
    with pytest.raises(InvalidEnvelope):
        PublicIdentity.from_dict(mutate(nurse_alice.public.to_dict()))


# Low-order X25519 points (from the libsodium blocklist) and unusable Ed25519 encodings.
LOW_ORDER_X25519 = [
    bytes(32),
    bytes([1]) + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]


@pytest.mark.parametrize("point", LOW_ORDER_X25519)
def test_low_order_x25519_key_is_refused(nurse_alice, point):
    with pytest.raises(InvalidKey):
        PublicIdentity(x25519=point, ed25519=nurse_alice.public.ed25519)


@pytest.mark.parametrize(
    "point",
    [
        bytes(32),  # not canonical identity encoding / small order
        bytes([1]) + bytes(31),  # the neutral element
        bytes([0xFF] * 32),  # non-canonical
    ],
)
def test_unusable_ed25519_key_is_refused(nurse_alice, point):
    with pytest.raises(InvalidKey):
        PublicIdentity(x25519=nurse_alice.public.x25519, ed25519=point)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_public_key_sizes(nurse_alice, size):
    with pytest.raises(InvalidKey):
        PublicIdentity(x25519=bytes(size), ed25519=nurse_alice.public.ed25519)
    with pytest.raises(InvalidKey):
        PublicIdentity(x25519=nurse_alice.public.x25519, ed25519=bytes(size))
