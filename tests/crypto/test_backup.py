"""Key backup under a recovery secret.

Every test passes Argon2id's minimum limits by keyword so the suite stays
fast, except `test_default_limits_are_the_documented_ones`, which checks
what production code gets when it passes none.
"""

import struct

import nacl.pwhash.argon2id as argon2id
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    IdentityKeyPair,
    InvalidEnvelope,
    UnsupportedVersion,
    WeakPassphrase,
    WrongPassphrase,
    backup,
    generate_recovery_secret,
    open_backup,
    seal_backup,
)
from core.crypto.backup import (
    BLOB_SIZE,
    CROCKFORD,
    HEADER_SIZE,
    backup_limits,
    check_passphrase_strength,
    normalise_recovery_secret,
)

FAST = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}
PASSPHRASE = "Correct horse, battery staple 42"


@pytest.fixture(scope="module")
def secret() -> str:
    return generate_recovery_secret()


@pytest.fixture(scope="module")
def blob(nurse_alice, secret) -> bytes:
    return seal_backup(nurse_alice, secret, **FAST)


def test_recovery_secret_shape():
    secret = generate_recovery_secret()
    groups = secret.split("-")
    assert [len(g) for g in groups] == [4] * 7
    assert all(ch in CROCKFORD for ch in "".join(groups))
    # 28 characters of 5 bits: 140 bits, over the 128 the design asks for.
    assert len("".join(groups)) * 5 >= 128
    assert len({generate_recovery_secret() for _ in range(50)}) == 50


def test_seal_and_open(nurse_alice, secret, blob):
    assert len(blob) == BLOB_SIZE == 130
    assert open_backup(blob, secret) == nurse_alice


@pytest.mark.parametrize(
    "typed",
    [
        lambda s: s.lower(),
        lambda s: s.replace("-", " "),
        lambda s: s.replace("-", ""),
        lambda s: " " + s.replace("-", "  ").lower() + "\n",
        lambda s: s.replace("0", "o").replace("1", "l"),
    ],
)
def test_generated_secret_is_normalised(nurse_alice, secret, blob, typed):
    assert open_backup(blob, typed(secret)) == nurse_alice


def test_wrong_secret(blob, secret):
    other = generate_recovery_secret()
    assert other != secret
    with pytest.raises(WrongPassphrase):
        open_backup(blob, other)


@pytest.mark.parametrize("text", ["", "too short", "X" * 28 + "U", "!" * 28])
def test_not_a_recovery_secret(blob, text):
    with pytest.raises(WrongPassphrase):
        open_backup(blob, text)


def test_normalise_recovery_secret():
    assert normalise_recovery_secret("abcd-efgh-jkmn-pqrs-tvwx-yz01-2345") == (
        "ABCDEFGHJKMNPQRSTVWXYZ012345"
    )
    # Crockford look-alikes: O reads as 0, I and L as 1.
    assert normalise_recovery_secret("oooo-iiii-llll-0000-1111-2222-3333") == (
        "0000" + "1111" + "1111" + "0000111122223333"
    )
    assert normalise_recovery_secret("U" * 28) is None


def test_user_chosen_passphrase(nurse_alice):
    blob = seal_backup(nurse_alice, PASSPHRASE, user_chosen=True, **FAST)
    assert blob[1] == backup.KIND_PASSPHRASE
    assert open_backup(blob, PASSPHRASE) == nurse_alice
    assert open_backup(blob, f"  {PASSPHRASE}\n") == nurse_alice  # outer white space only
    with pytest.raises(WrongPassphrase):
        open_backup(blob, PASSPHRASE.lower())  # a passphrase is not case-folded
    with pytest.raises(WrongPassphrase):
        open_backup(blob, PASSPHRASE.replace(" ", ""))


def test_passphrase_is_nfc_normalised(nurse_alice):
    composed = "Médecin de garde 2025!"
    decomposed = "Me\u0301decin de garde 2025!"
    blob = seal_backup(nurse_alice, composed, user_chosen=True, **FAST)
    assert open_backup(blob, decomposed) == nurse_alice


@pytest.mark.parametrize(
    "weak",
    [
        "",
        "Short1!",
        "fifteen chars!!",  # 15 characters
        "aaaaaaaaaaaaaaaaaaaaaaaa",  # one class, one character
        "abababababababab1",  # two classes, too few distinct characters
        "onlylowercaseletters",  # one class
        "12345678901234567890",  # one class
        "                         x",  # stripped to one character
    ],
)
def test_weak_passphrases_are_refused(nurse_alice, weak):
    with pytest.raises(WeakPassphrase):
        check_passphrase_strength(weak)
    with pytest.raises(WeakPassphrase):
        seal_backup(nurse_alice, weak, user_chosen=True, **FAST)


@pytest.mark.parametrize(
    "strong",
    [PASSPHRASE, "correct horse battery staple", "Tr0ub4dor&3xyzzy!", "Médecin de garde 2025!"],
)
def test_reasonable_passphrases_pass(strong):
    check_passphrase_strength(strong)


def test_a_generated_secret_must_look_like_one(nurse_alice):
    with pytest.raises(WrongPassphrase):
        seal_backup(nurse_alice, PASSPHRASE, **FAST)


def test_default_limits_are_the_documented_ones(nurse_alice, monkeypatch):
    """The one test that uses the default limits; it records them instead of paying for them."""
    calls = []

    def fake_kdf(size, password, salt, *, opslimit, memlimit):
        calls.append((opslimit, memlimit))
        return bytes(size)

    monkeypatch.setattr(backup.argon2id, "kdf", fake_kdf)
    generated = seal_backup(nurse_alice, generate_recovery_secret())
    chosen = seal_backup(nurse_alice, PASSPHRASE, user_chosen=True)
    moderate = (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
    sensitive = (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)
    assert calls == [moderate, sensitive]
    assert backup_limits(generated) == moderate == (3, 256 * 1024 * 1024)
    assert backup_limits(chosen) == sensitive == (4, 1024 * 1024 * 1024)


def test_blob_layout(nurse_alice, secret):
    salt, nonce = bytes(range(16)), bytes(range(100, 124))
    blob = seal_backup(nurse_alice, secret, salt=salt, nonce=nonce, **FAST)
    version, kind, ops, mem = struct.unpack(">BBII", blob[:10])
    assert (version, kind, ops, mem) == (1, 1, argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
    assert blob[10:26] == salt and blob[26:50] == nonce
    assert HEADER_SIZE == 26
    # Same inputs, same blob: salt and nonce are the only randomness.
    assert seal_backup(nurse_alice, secret, salt=salt, nonce=nonce, **FAST) == blob
    assert seal_backup(nurse_alice, secret, **FAST)[10:50] != blob[10:50]


def test_every_byte_of_the_blob_is_authenticated(blob, secret):
    """Flip each byte in turn: the blob never opens to anything."""
    for index in range(len(blob)):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        with pytest.raises((WrongPassphrase, InvalidEnvelope, UnsupportedVersion)):
            open_backup(bytes(tampered), secret)


def test_changing_the_kind_does_not_open(nurse_alice, secret, blob):
    tampered = blob[:1] + bytes([backup.KIND_PASSPHRASE]) + blob[2:]
    with pytest.raises(WrongPassphrase):
        open_backup(tampered, secret)


@pytest.mark.parametrize(
    "limits",
    [
        (0, argon2id.MEMLIMIT_MIN),
        (backup.MAX_OPSLIMIT + 1, argon2id.MEMLIMIT_MIN),
        (1, argon2id.MEMLIMIT_MIN - 1),
        (1, backup.MAX_MEMLIMIT + 1),
        (2**32 - 1, 2**32 - 1),
    ],
)
def test_a_hostile_blob_cannot_ask_for_huge_limits(blob, secret, limits):
    tampered = blob[:2] + struct.pack(">II", *limits) + blob[10:]
    with pytest.raises(InvalidEnvelope):
        open_backup(tampered, secret)


def test_limit_overrides_are_checked(nurse_alice, secret):
    with pytest.raises(ValueError):
        seal_backup(nurse_alice, secret, opslimit=0, memlimit=argon2id.MEMLIMIT_MIN)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"", InvalidEnvelope),
        ("not bytes", InvalidEnvelope),
        (b"\x02" + bytes(129), UnsupportedVersion),
        (b"\x01" + bytes(10), InvalidEnvelope),
        (b"\x01\x03" + bytes(128), InvalidEnvelope),  # unknown kind
    ],
)
def test_malformed_blobs(data, error, secret):
    with pytest.raises(error):
        open_backup(data, secret)


@settings(max_examples=10, deadline=None)
@given(st.binary(min_size=64, max_size=64))
def test_round_trip_any_identity(data):
    identity = IdentityKeyPair.from_bytes(data)
    secret = generate_recovery_secret()
    assert open_backup(seal_backup(identity, secret, **FAST), secret) == identity
