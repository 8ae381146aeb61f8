"""Identity key pairs, fingerprints, canonical public keys and context-separated signatures."""

import hashlib
import itertools

import nacl.bindings
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    CONTEXT_ENVELOPE,
    CONTEXT_KEY_VERSION,
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    BadSignature,
    IdentityKeyPair,
    InvalidEnvelope,
    InvalidKey,
    PublicIdentity,
    b64encode,
)
from core.crypto.identity import CONTEXTS
from tests.crypto.support import raises_exactly

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


def test_the_v2_contexts():
    assert CONTEXT_ENVELOPE == b"rounds-envelope-v2\0"
    assert CONTEXT_WRAP == b"rounds-wrap-v2\0"
    assert CONTEXT_STATEMENT == b"rounds-statement-v2\0"
    assert CONTEXT_KEY_VERSION == b"rounds-key-version-v2\0"
    assert {CONTEXT_ENVELOPE, CONTEXT_WRAP, CONTEXT_STATEMENT, CONTEXT_KEY_VERSION} == CONTEXTS


def test_contexts_are_distinct_and_nul_terminated():
    for context in CONTEXTS:
        assert context.endswith(b"\0") and context.count(b"\0") == 1
        assert not any(o != context and o.startswith(context) for o in CONTEXTS)


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_sign_and_verify(nurse_alice, surgeon_bob, context):
    signature = nurse_alice.sign(context, b"message")
    nurse_alice.public.verify(context, b"message", signature)
    # Plain Ed25519 over context + message.
    nacl.signing.VerifyKey(nurse_alice.public.ed25519).verify(context + b"message", signature)
    with raises_exactly(BadSignature):
        surgeon_bob.public.verify(context, b"message", signature)
    with raises_exactly(BadSignature):
        nurse_alice.public.verify(context, b"messagf", signature)


@pytest.mark.parametrize(
    "signed_for, checked_for", list(itertools.permutations(sorted(CONTEXTS), 2))
)
def test_a_signature_does_not_cross_contexts(nurse_alice, signed_for, checked_for):
    signature = nurse_alice.sign(signed_for, b"message")
    with raises_exactly(BadSignature):
        nurse_alice.public.verify(checked_for, b"message", signature)


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_a_v1_signature_never_verifies_as_v2(nurse_alice, context):
    """Alice's raw Ed25519 key signs over the v1 context, as format 1 did."""
    v1 = context.replace(b"-v2\0", b"-v1\0")
    assert v1 != context and v1.endswith(b"-v1\0")
    seed = nurse_alice.to_bytes()[IdentityKeyPair.SECRET_SIZE :]
    signature = nacl.signing.SigningKey(seed).sign(v1 + b"message").signature
    # It is a good signature, of other bytes...
    nacl.signing.VerifyKey(nurse_alice.public.ed25519).verify(v1 + b"message", signature)
    with raises_exactly(BadSignature):  # ...which v2 never checks
        nurse_alice.public.verify(context, b"message", signature)
    with pytest.raises(ValueError):  # and v1 contexts are not contexts any more
        nurse_alice.public.verify(v1, b"message", signature)
    with pytest.raises(ValueError):
        nurse_alice.sign(v1, b"message")


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
            with raises_exactly(BadSignature):
                nurse_alice.public.verify(CONTEXT_STATEMENT, b"statement", bytes(flipped))


@pytest.mark.parametrize("signature", [b"", bytes(63), bytes(65), "x" * 64, None])
def test_malformed_signature(nurse_alice, signature):
    with raises_exactly(BadSignature):
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
    with raises_exactly(InvalidKey):
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
    with raises_exactly(InvalidEnvelope):
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
    with raises_exactly(InvalidKey):
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
    with raises_exactly(InvalidKey):
        PublicIdentity(x25519=nurse_alice.public.x25519, ed25519=point)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_public_key_sizes(nurse_alice, size):
    with raises_exactly(InvalidKey):
        PublicIdentity(x25519=bytes(size), ed25519=nurse_alice.public.ed25519)
    with raises_exactly(InvalidKey):
        PublicIdentity(x25519=nurse_alice.public.x25519, ed25519=bytes(size))


# --- Canonical X25519 keys: one point, one spelling, one fingerprint ----------------------

P = 2**255 - 19


def _x25519(value: int) -> bytes:
    return value.to_bytes(32, "little")


@pytest.mark.parametrize("offset", range(19))
def test_x25519_values_from_p_up_are_refused(nurse_alice, offset):
    """p .. 2**255 - 1: the second spellings of 0 .. 18 (refused before the low-order check)."""
    with raises_exactly(InvalidKey, "not canonical"):
        PublicIdentity(x25519=_x25519(P + offset), ed25519=nurse_alice.public.ed25519)


def test_x25519_with_the_top_bit_set_is_refused(nurse_alice):
    """RFC 7748 has receivers ignore bit 255; Rounds refuses it, so a key has one fingerprint."""
    key = bytearray(nurse_alice.public.x25519)
    assert key[31] & 0x80 == 0
    key[31] |= 0x80
    # The same point for X25519 itself...
    assert nacl.bindings.crypto_scalarmult(bytes([9] + [0] * 31), bytes(key)) == (
        nacl.bindings.crypto_scalarmult(bytes([9] + [0] * 31), nurse_alice.public.x25519)
    )
    # ...but not a key Rounds accepts, from the constructor or from the wire.
    with raises_exactly(InvalidKey, "not canonical"):
        PublicIdentity(x25519=bytes(key), ed25519=nurse_alice.public.ed25519)
    wire = {**nurse_alice.public.to_dict(), "x25519": b64encode(bytes(key))}
    with raises_exactly(InvalidKey, "not canonical"):
        PublicIdentity.from_dict(wire)
    with raises_exactly(InvalidKey, "not canonical"):
        PublicIdentity(x25519=_x25519(9 + 2**255), ed25519=nurse_alice.public.ed25519)
    with raises_exactly(InvalidKey, "not canonical"):
        PublicIdentity(x25519=b"\xff" * 32, ed25519=nurse_alice.public.ed25519)


@settings(max_examples=100)
@given(value=st.integers(P, 2**256 - 1))
def test_every_non_canonical_x25519_value_is_refused(nurse_alice, value):
    with raises_exactly(InvalidKey, "not canonical"):
        PublicIdentity(x25519=_x25519(value), ed25519=nurse_alice.public.ed25519)


@pytest.mark.parametrize(
    "value",
    [9, 2**254, P - 2, P - 3, int.from_bytes(RFC7748_PUBLIC, "little")],
    ids=["base-point", "2^254", "p-2", "p-3", "rfc7748"],
)
def test_canonical_x25519_keys_are_accepted(nurse_alice, value):
    public = PublicIdentity(x25519=_x25519(value), ed25519=nurse_alice.public.ed25519)
    assert PublicIdentity.from_dict(public.to_dict()) == public


@settings(max_examples=50)
@given(secret=st.binary(min_size=32, max_size=32), seed=st.binary(min_size=32, max_size=32))
def test_generated_keys_are_canonical(secret, seed):
    identity = IdentityKeyPair(secret, seed)
    assert int.from_bytes(identity.public.x25519, "little") < P
    assert PublicIdentity.from_dict(identity.public.to_dict()) == identity.public
    assert IdentityKeyPair.from_bytes(identity.to_bytes()).fingerprint == identity.fingerprint
