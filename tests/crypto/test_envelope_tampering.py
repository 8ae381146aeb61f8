"""Message envelope v2 tampered with: every field, byte by byte, and edits the sender re-signs.

`envelope` (conftest.py) is surgeon_bob writing at statement 6 of department
12's chain, under key version 4, with his new phone's key (`bob_now`). Both
the server's check (`verify_envelope`) and the primitive decryption
(`decrypt_message`) must refuse each change with exactly the error named.
"""

import nacl.signing
import pytest

from core.crypto import (
    DecryptionFailed,
    InvalidEnvelope,
    KeyCommitmentMismatch,
    RoomKey,
    b64decode,
    b64encode,
    decrypt_message,
    parse_envelope,
    verify_envelope,
)
from core.crypto.encoding import parse_timestamp
from tests.crypto.support import (
    BOB,
    MSG_ID,
    SENT_AT,
    expect_envelope_refused,
    raises_exactly,
    resign,
    with_header,
    write_envelope,
)

# --- Tampering: every field, byte by byte -------------------------------------------------


def _flip(text: str, index: int, mask: int = 0x01) -> str:
    raw = bytearray(b64decode(text))
    raw[index] ^= mask
    return b64encode(bytes(raw))


@pytest.mark.parametrize("field", ["key_commitment", "nonce", "sig"])
def test_every_byte_of_the_binary_header_fields(envelope, room_keys, bob_now, field):
    value = envelope["header"][field]
    for index in range(len(b64decode(value))):
        for mask in (0x01, 0x80):
            tampered = with_header(envelope, **{field: _flip(value, index, mask)})
            expect_envelope_refused(tampered, room_keys[4], bob_now.public)


def test_every_byte_of_a_short_ciphertext(envelope, room_keys, bob_now):
    for index in range(len(b64decode(envelope["ciphertext"]))):
        tampered = {**envelope, "ciphertext": _flip(envelope["ciphertext"], index)}
        expect_envelope_refused(tampered, room_keys[4], bob_now.public)


def test_a_sample_of_bytes_of_a_long_ciphertext(plastic_surgery, room_keys, bob_now):
    envelope = write_envelope(
        plastic_surgery, room_keys, BOB, 6, 4, plaintext=bytes(range(256)) * 40
    )
    size = len(b64decode(envelope["ciphertext"]))
    for index in [*range(0, size, 97), size - 17, size - 16, size - 1]:
        tampered = {**envelope, "ciphertext": _flip(envelope["ciphertext"], index)}
        expect_envelope_refused(tampered, room_keys[4], bob_now.public)


def test_truncated_or_extended_ciphertext(envelope, room_keys, bob_now):
    raw = b64decode(envelope["ciphertext"])
    for changed in (raw[:-1], raw + b"\x00", raw[1:], raw[:16]):
        expect_envelope_refused(
            {**envelope, "ciphertext": b64encode(changed)}, room_keys[4], bob_now.public
        )


@pytest.mark.parametrize(
    "field, values",
    [
        ("room", [13, 11, 1, 2**53 - 1]),
        ("thread", [102, 100, 1]),
        ("key_version", [3, 5, 1]),
        ("chain_seq", [5, 7, 1, 2**53 - 1]),
        ("sender", [7, 3, 9]),
    ],
)
def test_every_number_is_signed(envelope, room_keys, bob_now, field, values):
    """An envelope copied to another room or thread, or re-attributed, is refused."""
    for value in values:
        expect_envelope_refused(
            with_header(envelope, **{field: value}), room_keys[4], bob_now.public
        )


def _other_char(text: str, index: int, alphabet: str) -> str:
    char = next(c for c in alphabet if c != text[index])
    return text[:index] + char + text[index + 1 :]


def test_every_hex_digit_of_the_chain_head_is_signed(envelope, room_keys, bob_now):
    head = envelope["header"]["chain_head"]
    for index in range(64):
        tampered = with_header(envelope, chain_head=_other_char(head, index, "0123456789abcdef"))
        expect_envelope_refused(tampered, room_keys[4], bob_now.public)


def test_every_character_of_the_client_msg_id_is_signed(envelope, room_keys, bob_now):
    for index in range(len(MSG_ID)):
        tampered = with_header(envelope, client_msg_id=_other_char(MSG_ID, index, "aZ"))
        expect_envelope_refused(tampered, room_keys[4], bob_now.public)
    for other in (MSG_ID + "x", MSG_ID[:-1], MSG_ID.upper()):
        expect_envelope_refused(
            with_header(envelope, client_msg_id=other), room_keys[4], bob_now.public
        )


def test_every_digit_of_sent_at_is_signed(envelope, room_keys, bob_now):
    changed = 0
    for index, char in enumerate(SENT_AT):
        if not char.isdigit():
            continue
        for digit in "0123456789".replace(char, ""):
            other = SENT_AT[:index] + digit + SENT_AT[index + 1 :]
            try:
                parse_timestamp(other, "sent_at")
            except InvalidEnvelope:
                continue
            expect_envelope_refused(
                with_header(envelope, sent_at=other), room_keys[4], bob_now.public
            )
            changed += 1
            break
        else:
            raise AssertionError(f"no valid time differs from {SENT_AT} at {index}")
    assert changed == sum(c.isdigit() for c in SENT_AT)


@pytest.mark.parametrize(
    "same_moment",
    [
        "2025-01-11T08:15:00.000Z",
        "2025-01-11T08:15:00Z",
        "2025-01-11T09:15:00+01:00",
        "2025-01-11T09:15:00.000000+01:00",
        "2025-01-11T08:15:00.000+00:00",
    ],
)
def test_sent_at_is_signed_as_written(envelope, room_keys, bob_now, same_moment):
    """The same moment spelled otherwise is other bytes: refused too."""
    assert parse_timestamp(same_moment, "t") == parse_timestamp(SENT_AT, "t")
    expect_envelope_refused(
        with_header(envelope, sent_at=same_moment), room_keys[4], bob_now.public
    )


def test_signed_by_someone_else(envelope, room_keys, bob_now, head_carol):
    expect_envelope_refused(resign(envelope, head_carol), room_keys[4], bob_now.public)
    expect_envelope_refused(envelope, room_keys[4], head_carol.public)


def test_a_v1_context_signature_does_not_verify(envelope, room_keys, bob_now):
    header = envelope["header"]
    signed = (
        parse_envelope(envelope).associated_data()
        + b64decode(header["nonce"])
        + b64decode(envelope["ciphertext"])
    )
    v1 = nacl.signing.SigningKey(bob_now.to_bytes()[32:]).sign(b"rounds-envelope-v1\0" + signed)
    expect_envelope_refused(
        with_header(envelope, sig=b64encode(v1.signature)), room_keys[4], bob_now.public
    )


# --- The sender re-signs what they edited -------------------------------------------------


@pytest.mark.parametrize(
    "field, value",
    [
        ("room", 13),
        ("thread", 999),
        ("key_version", 3),
        ("chain_seq", 5),
        ("chain_head", "ab" * 32),
        ("sender", 7),
        ("client_msg_id", "msg-0002-abcdef"),
        ("sent_at", "2025-01-11T09:16:00.000+01:00"),
    ],
)
def test_edited_and_resigned_by_the_sender_still_fails_the_aead(
    envelope, room_keys, bob_now, field, value
):
    """The AD binds the header too: a signer who moves a message cannot make it open."""
    moved = resign(with_header(envelope, **{field: value}), bob_now)
    verify_envelope(moved, sender_key=bob_now.public)  # the signature is fine...
    with raises_exactly(DecryptionFailed):  # ...the ciphertext is not
        decrypt_message(moved, room_key=room_keys[4], sender_key=bob_now.public)


@pytest.mark.parametrize("field, value", [("room", 13), ("key_version", 5)])
def test_moved_with_a_relabelled_key(envelope, room_keys, bob_now, field, value):
    """Moved to another room or version, with the same key bytes relabelled for it."""
    moved = with_header(envelope, **{field: value})
    department, version = moved["header"]["room"], moved["header"]["key_version"]
    relabelled = RoomKey(bytes(room_keys[4]), department=department, version=version)
    # With the old commitment the relabelled key is not the one committed to...
    with raises_exactly(KeyCommitmentMismatch):
        decrypt_message(resign(moved, bob_now), room_key=relabelled, sender_key=bob_now.public)
    # ...and with a matching one the AEAD still fails.
    recommitted = with_header(moved, key_commitment=b64encode(relabelled.commitment))
    with raises_exactly(DecryptionFailed):
        decrypt_message(
            resign(recommitted, bob_now), room_key=relabelled, sender_key=bob_now.public
        )


def test_an_edited_commitment_fails_before_the_aead(envelope, room_keys, bob_now):
    edited = resign(with_header(envelope, key_commitment=b64encode(bytes(32))), bob_now)
    with raises_exactly(KeyCommitmentMismatch):
        decrypt_message(edited, room_key=room_keys[4], sender_key=bob_now.public)


def test_ciphertext_changed_and_resigned_fails_the_aead(envelope, room_keys, bob_now):
    forged = resign({**envelope, "ciphertext": _flip(envelope["ciphertext"], 0)}, bob_now)
    with raises_exactly(DecryptionFailed):
        decrypt_message(forged, room_key=room_keys[4], sender_key=bob_now.public)


def test_the_wrong_room_key(envelope, room_keys, bob_now):
    for key in (
        room_keys[3],  # another version's key
        RoomKey(bytes(room_keys[4]), department=12, version=3),
        RoomKey(bytes(room_keys[4]), department=13, version=4),
    ):
        with raises_exactly(DecryptionFailed, "not room"):
            decrypt_message(envelope, room_key=key, sender_key=bob_now.public)
    # Another key under the same version: it is not the one committed to.
    with raises_exactly(KeyCommitmentMismatch):
        decrypt_message(
            envelope, room_key=RoomKey.generate(department=12, version=4), sender_key=bob_now.public
        )
