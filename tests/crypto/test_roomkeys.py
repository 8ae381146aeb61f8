"""Room keys, their commitments, and wrap records v2 that seal them for each member.

head_carol wraps department 12's key version 3 for nurse_alice, and for
compliance_dan, the institution's compliance reader.
"""

import hashlib
import json

import nacl.encoding
import nacl.hash
import nacl.public
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    CONTEXT_WRAP,
    BadSignature,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    KeyCommitmentMismatch,
    RoomKey,
    UnsupportedVersion,
    WrapRecord,
    b64decode,
    b64encode,
    canonical_json,
    key_commitment,
    unwrap_room_key,
    wrap_room_key,
)
from core.crypto.roomkeys import check_commitment
from tests.crypto.support import ids, raises_exactly

WRAP_KEYS = {
    "v",
    "department",
    "version",
    "commitment",
    "recipient_fp",
    "wrapper_fp",
    "sealed",
    "sig",
}


@pytest.fixture(scope="module")
def record(room_key, nurse_alice, head_carol) -> WrapRecord:
    return wrap_room_key(room_key, recipient=nurse_alice.public, wrapper=head_carol)


# --- Commitments --------------------------------------------------------------------------


def test_commitment_known_answer():
    """BLAKE2b-256 keyed with the room key, computed here two ways without core.crypto."""
    key = bytes(range(32))
    message = b"rounds-key-commitment-v2\0" + b'{"department":12,"version":3}'
    expected = nacl.hash.blake2b(message, digest_size=32, key=key, encoder=nacl.encoding.RawEncoder)
    assert expected == hashlib.blake2b(message, digest_size=32, key=key).digest()
    assert key_commitment(key, department=12, version=3) == expected
    assert RoomKey(key, department=12, version=3).commitment == expected


@settings(max_examples=100)
@given(key=st.binary(min_size=32, max_size=32), department=ids, version=ids)
def test_commitment_property(key, department, version):
    room_key = RoomKey(key, department=department, version=version)
    message = b"rounds-key-commitment-v2\0" + canonical_json(
        {"department": department, "version": version}
    )
    assert room_key.commitment == hashlib.blake2b(message, digest_size=32, key=key).digest()
    assert room_key.commitment == key_commitment(key, department=department, version=version)
    check_commitment(room_key, room_key.commitment)


def test_commitment_is_deterministic_and_binds_key_department_and_version(room_key):
    key = bytes(room_key)
    commitments = {
        room_key.commitment,
        key_commitment(key, department=13, version=3),
        key_commitment(key, department=12, version=4),
        key_commitment(key, department=3, version=12),  # the numbers swapped
        RoomKey.generate(department=12, version=3).commitment,
    }
    assert len(commitments) == 5
    assert room_key.commitment == RoomKey(key, department=12, version=3).commitment
    assert len(room_key.commitment) == 32


def test_check_commitment(room_key):
    check_commitment(room_key, room_key.commitment)
    other = RoomKey.generate(department=12, version=3)
    with raises_exactly(KeyCommitmentMismatch):
        check_commitment(other, room_key.commitment)
    relabelled = RoomKey(bytes(room_key), department=12, version=4)
    with raises_exactly(KeyCommitmentMismatch):
        check_commitment(relabelled, room_key.commitment)


# --- Wrap and unwrap ----------------------------------------------------------------------


def test_wrap_and_unwrap(room_key, record, nurse_alice, head_carol):
    assert (record.department, record.version) == (room_key.department, room_key.version)
    assert record.commitment == room_key.commitment
    assert record.recipient_fp == nurse_alice.fingerprint
    assert record.wrapper_fp == head_carol.fingerprint
    assert unwrap_room_key(record, recipient=nurse_alice, wrapper=head_carol.public) == room_key


def test_wrap_for_compliance(room_key, compliance_dan, head_carol):
    record = wrap_room_key(room_key, recipient=compliance_dan.public, wrapper=head_carol)
    assert unwrap_room_key(record, recipient=compliance_dan, wrapper=head_carol.public) == room_key


@pytest.mark.parametrize("version", [1, 2, 4])
def test_every_version_wraps(room_keys, version, surgeon_bob, head_carol):
    key = room_keys[version]
    record = wrap_room_key(key, recipient=surgeon_bob.public, wrapper=head_carol)
    assert record.commitment == key.commitment
    assert unwrap_room_key(record, recipient=surgeon_bob, wrapper=head_carol.public) == key


def test_sealed_box_is_randomised(room_key, nurse_alice, head_carol, record):
    again = wrap_room_key(room_key, recipient=nurse_alice.public, wrapper=head_carol)
    assert again.sealed != record.sealed
    assert again.commitment == record.commitment


def test_sealed_content_is_canonical_json(room_key, record, nurse_alice):
    content = nacl.public.SealedBox(nurse_alice.box_key).decrypt(record.sealed)
    assert content == (
        b'{"department":12,"key":"' + b64encode(bytes(room_key)).encode() + b'","version":3}'
    )
    assert len(record.sealed) == len(content) + 48


def test_signature_covers_context_fields_and_sealed(record, head_carol):
    fields = (
        b'{"commitment":"' + b64encode(record.commitment).encode() + b'",'
        b'"department":12,"recipient_fp":"' + record.recipient_fp.encode() + b'",'
        b'"v":2,"version":3,"wrapper_fp":"' + record.wrapper_fp.encode() + b'"}'
    )
    assert record.signed_bytes() == fields + record.sealed
    head_carol.public.verify(CONTEXT_WRAP, fields + record.sealed, record.signature)
    nacl_verify = nacl.signing.VerifyKey(head_carol.public.ed25519).verify
    nacl_verify(b"rounds-wrap-v2\0" + fields + record.sealed, record.signature)


def test_dict_round_trip(record, nurse_alice, head_carol, room_key):
    data = record.to_dict()
    assert set(data) == WRAP_KEYS
    assert data["v"] == 2
    assert b64decode(data["commitment"]) == room_key.commitment
    parsed = WrapRecord.from_dict(json.loads(json.dumps(data)))
    assert parsed == record
    assert unwrap_room_key(parsed, recipient=nurse_alice, wrapper=head_carol.public) == room_key


def test_wrong_recipient(record, surgeon_bob, head_carol):
    with raises_exactly(DecryptionFailed, "another recipient"):
        unwrap_room_key(record, recipient=surgeon_bob, wrapper=head_carol.public)


def test_wrong_wrapper(record, nurse_alice, surgeon_bob):
    with raises_exactly(BadSignature, "not made by this wrapper"):
        unwrap_room_key(record, recipient=nurse_alice, wrapper=surgeon_bob.public)


# --- Forged and tampered wraps ------------------------------------------------------------


def signed_wrap(
    sealed: bytes, *, wrapper, recipient, department=12, version=3, commitment
) -> WrapRecord:
    """A wrap record signed by `wrapper`, over whatever it is given."""
    fields = {
        "v": 2,
        "department": department,
        "version": version,
        "commitment": b64encode(commitment),
        "recipient_fp": recipient.fingerprint,
        "wrapper_fp": wrapper.fingerprint,
    }
    return WrapRecord(
        department=department,
        version=version,
        commitment=commitment,
        recipient_fp=recipient.fingerprint,
        wrapper_fp=wrapper.fingerprint,
        sealed=sealed,
        signature=wrapper.sign(CONTEXT_WRAP, canonical_json(fields) + sealed),
    )


def seal(content: bytes, recipient) -> bytes:
    return bytes(
        nacl.public.SealedBox(nacl.public.PublicKey(recipient.public.x25519)).encrypt(content)
    )


def test_the_server_cannot_substitute_its_own_key(room_key, record, nurse_alice, head_carol):
    """A key sealed by someone else, under Carol's name and signature, fails her signature."""
    server_key = RoomKey.generate(department=room_key.department, version=room_key.version)
    forged = wrap_room_key(server_key, recipient=nurse_alice.public, wrapper=nurse_alice)
    moved = WrapRecord.from_dict({**record.to_dict(), "sealed": b64encode(forged.sealed)})
    with raises_exactly(BadSignature):
        unwrap_room_key(moved, recipient=nurse_alice, wrapper=head_carol.public)


def test_another_key_sealed_under_the_commitment(room_key, nurse_alice, head_carol):
    """Even a wrapper who can sign cannot hand Alice another key under version 3's commitment."""
    other = RoomKey.generate(department=12, version=3)
    content = canonical_json({"department": 12, "key": b64encode(bytes(other)), "version": 3})
    forged = signed_wrap(
        seal(content, nurse_alice),
        wrapper=head_carol,
        recipient=nurse_alice,
        commitment=room_key.commitment,
    )
    with raises_exactly(KeyCommitmentMismatch):
        unwrap_room_key(forged, recipient=nurse_alice, wrapper=head_carol.public)
    # Committing to the other key opens it, and the version record (R3) tells the two apart.
    honest_about_it = signed_wrap(
        seal(content, nurse_alice),
        wrapper=head_carol,
        recipient=nurse_alice,
        commitment=other.commitment,
    )
    assert (
        unwrap_room_key(honest_about_it, recipient=nurse_alice, wrapper=head_carol.public) == other
    )


@pytest.mark.parametrize("claimed", [(13, 3), (12, 4), (3, 12)], ids=["room", "version", "swapped"])
def test_a_signing_member_cannot_relabel_a_sealed_key(room_key, nurse_alice, head_carol, claimed):
    """Carol re-signs a wrap of version 3 as another room's or version's, with its commitment."""
    honest = wrap_room_key(room_key, recipient=nurse_alice.public, wrapper=head_carol)
    department, version = claimed
    relabelled = signed_wrap(
        honest.sealed,
        wrapper=head_carol,
        recipient=nurse_alice,
        department=department,
        version=version,
        commitment=key_commitment(bytes(room_key), department=department, version=version),
    )
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        unwrap_room_key(relabelled, recipient=nurse_alice, wrapper=head_carol.public)


@pytest.mark.parametrize(
    "content",
    [
        b'{"department":12,"key":"' + b64encode(bytes(32)).encode() + b'","version":3,"x":1}',
        b'{"department":12,"key":"' + b64encode(bytes(31)).encode() + b'","version":3}',
        b'{"department":12,"version":3}',
        b'{"version":3,"department":12,"key":"' + b64encode(bytes(32)).encode() + b'"}',
        b'{"department":true,"key":"' + b64encode(bytes(32)).encode() + b'","version":3}',
        b'{"department":12, "key":"' + b64encode(bytes(32)).encode() + b'","version":3}',
        b'["department",12,"key","version",3]',
        b"not json at all, but long enough",
    ],
)
def test_malformed_sealed_content(content, nurse_alice, head_carol):
    record = signed_wrap(
        seal(content, nurse_alice),
        wrapper=head_carol,
        recipient=nurse_alice,
        commitment=key_commitment(bytes(32), department=12, version=3),
    )
    with raises_exactly(InvalidEnvelope):
        unwrap_room_key(record, recipient=nurse_alice, wrapper=head_carol.public)


def _flip_field(data: dict, name: str, index: int, mask: int = 0x01) -> dict:
    raw = bytearray(b64decode(data[name]))
    raw[index] ^= mask
    return {**data, name: b64encode(bytes(raw))}


@pytest.mark.parametrize("name", ["commitment", "sealed", "sig"])
def test_every_byte_of_the_binary_fields_is_covered(record, nurse_alice, head_carol, name):
    data = record.to_dict()
    for index in range(len(b64decode(data[name]))):
        for mask in (0x01, 0x80):
            tampered = WrapRecord.from_dict(_flip_field(data, name, index, mask))
            with raises_exactly(BadSignature):
                unwrap_room_key(tampered, recipient=nurse_alice, wrapper=head_carol.public)


def _other_hex(text: str, index: int) -> str:
    return text[:index] + ("0" if text[index] != "0" else "1") + text[index + 1 :]


@pytest.mark.parametrize("name", ["recipient_fp", "wrapper_fp"])
def test_every_fingerprint_character_is_covered(record, nurse_alice, head_carol, name):
    """The wrapper's is checked against the key given; the recipient's by the signature."""
    data = record.to_dict()
    for index in range(64):
        tampered = WrapRecord.from_dict({**data, name: _other_hex(data[name], index)})
        with raises_exactly(BadSignature):
            unwrap_room_key(tampered, recipient=nurse_alice, wrapper=head_carol.public)


@pytest.mark.parametrize("name", ["department", "version"])
@pytest.mark.parametrize("delta", [1, -1, 1000])
def test_every_number_is_covered(record, nurse_alice, head_carol, name, delta):
    data = record.to_dict()
    tampered = WrapRecord.from_dict({**data, name: data[name] + delta})
    with raises_exactly(BadSignature):
        unwrap_room_key(tampered, recipient=nurse_alice, wrapper=head_carol.public)


def test_a_v1_context_signature_does_not_verify(record, nurse_alice, head_carol):
    seed = head_carol.to_bytes()[32:]
    v1 = nacl.signing.SigningKey(seed).sign(b"rounds-wrap-v1\0" + record.signed_bytes())
    tampered = WrapRecord.from_dict({**record.to_dict(), "sig": b64encode(v1.signature)})
    with raises_exactly(BadSignature):
        unwrap_room_key(tampered, recipient=nurse_alice, wrapper=head_carol.public)


# --- Parsing ------------------------------------------------------------------------------


def test_a_v1_wrap_is_refused_as_unsupported(record):
    """Format 1's wrap: no commitment, v 1."""
    data = {k: v for k, v in record.to_dict().items() if k != "commitment"}
    with raises_exactly(UnsupportedVersion):
        WrapRecord.from_dict({**data, "v": 1})


@pytest.mark.parametrize("name", sorted(WRAP_KEYS - {"v"}))
def test_every_key_is_required(record, name):
    data = {k: v for k, v in record.to_dict().items() if k != name}
    with raises_exactly(InvalidEnvelope):
        WrapRecord.from_dict(data)


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda d: {**d, "v": 1}, UnsupportedVersion),
        (lambda d: {**d, "v": 3}, UnsupportedVersion),
        (lambda d: {**d, "v": "2"}, InvalidEnvelope),
        (lambda d: {**d, "v": True}, InvalidEnvelope),
        (lambda d: {k: v for k, v in d.items() if k != "v"}, InvalidEnvelope),
        (lambda d: {**d, "extra": 1}, InvalidEnvelope),
        (lambda d: {**d, "department": True}, InvalidEnvelope),
        (lambda d: {**d, "department": 0}, InvalidEnvelope),
        (lambda d: {**d, "department": 2**53}, InvalidEnvelope),
        (lambda d: {**d, "version": "3"}, InvalidEnvelope),
        (lambda d: {**d, "version": 3.0}, InvalidEnvelope),
        (lambda d: {**d, "commitment": b64encode(bytes(31))}, InvalidEnvelope),
        (lambda d: {**d, "commitment": b64encode(bytes(33))}, InvalidEnvelope),
        (lambda d: {**d, "commitment": d["commitment"].rstrip("=")}, InvalidEnvelope),
        (lambda d: {**d, "commitment": None}, InvalidEnvelope),
        (lambda d: {**d, "recipient_fp": d["recipient_fp"].upper()}, InvalidEnvelope),
        (lambda d: {**d, "wrapper_fp": d["wrapper_fp"][:-1]}, InvalidEnvelope),
        (lambda d: {**d, "sig": b64encode(bytes(63))}, InvalidEnvelope),
        (lambda d: {**d, "sealed": b64encode(bytes(48))}, InvalidEnvelope),
        (lambda d: {**d, "sealed": b64encode(bytes(513))}, InvalidEnvelope),
        (lambda d: {**d, "sealed": d["sealed"] + "\n"}, InvalidEnvelope),
        (lambda d: [d], InvalidEnvelope),
    ],
)
def test_from_dict_is_strict(record, mutate, error):
    with raises_exactly(error):
        WrapRecord.from_dict(mutate(record.to_dict()))


def test_sealed_sizes_at_the_limits(record):
    data = record.to_dict()
    for size in (49, 512):
        assert len(WrapRecord.from_dict({**data, "sealed": b64encode(bytes(size))}).sealed) == size


def test_room_key_constructor():
    assert RoomKey.KEY_SIZE == 32
    for bad in (b"", bytes(31), bytes(33), "x" * 32, bytearray(32)):
        with raises_exactly(InvalidKey):
            RoomKey(bad, department=1, version=1)
    for department, version in ((0, 1), (1, 0), (True, 1), (1, "1"), (2**53, 1)):
        with pytest.raises(ValueError):
            RoomKey(bytes(32), department=department, version=version)
    key = RoomKey.generate(department=5, version=1)
    assert "5" in repr(key) and bytes(key).hex() not in repr(key)
    assert key != RoomKey.generate(department=5, version=1)
    assert key == RoomKey(bytes(key), department=5, version=1)
    assert key != RoomKey(bytes(key), department=5, version=2)
