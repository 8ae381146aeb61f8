"""Room keys sealed for members in signed wrap records."""

import nacl.public
import pytest

from chat.crypto import (
    CONTEXT_WRAP,
    BadSignature,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    RoomKey,
    UnsupportedVersion,
    WrapRecord,
    b64decode,
    b64encode,
    canonical_json,
    unwrap_room_key,
    wrap_room_key,
)


@pytest.fixture(scope="module")
def record(room_key, nurse_alice, head_carol) -> WrapRecord:
    return wrap_room_key(room_key, recipient=nurse_alice.public, wrapper=head_carol)


def test_wrap_and_unwrap(room_key, record, nurse_alice, head_carol):
    assert record.department == room_key.department and record.version == room_key.version
    assert record.recipient_fp == nurse_alice.fingerprint
    assert record.wrapper_fp == head_carol.fingerprint
    assert unwrap_room_key(record, recipient=nurse_alice, wrapper=head_carol.public) == room_key


def test_wrap_for_compliance(room_key, compliance_dan, head_carol):
    record = wrap_room_key(room_key, recipient=compliance_dan.public, wrapper=head_carol)
    assert unwrap_room_key(record, recipient=compliance_dan, wrapper=head_carol.public) == room_key


def test_sealed_box_is_randomised(room_key, nurse_alice, head_carol, record):
    again = wrap_room_key(room_key, recipient=nurse_alice.public, wrapper=head_carol)
    assert again.sealed != record.sealed


def test_sealed_content_is_canonical_json(room_key, record, nurse_alice):
    content = nacl.public.SealedBox(nurse_alice.box_key).decrypt(record.sealed)
    assert content == canonical_json(
        {"department": 12, "version": 3, "key": b64encode(bytes(room_key))}
    )


def test_signature_covers_context_fields_and_sealed(record, head_carol):
    fields = {
        "v": 1,
        "department": record.department,
        "version": record.version,
        "recipient_fp": record.recipient_fp,
        "wrapper_fp": record.wrapper_fp,
    }
    head_carol.public.verify(CONTEXT_WRAP, canonical_json(fields) + record.sealed, record.signature)


def test_dict_round_trip(record, nurse_alice, head_carol, room_key):
    data = record.to_dict()
    assert set(data) == {
        "v",
        "department",
        "version",
        "recipient_fp",
        "wrapper_fp",
        "sealed",
        "sig",
    }
    parsed = WrapRecord.from_dict(data)
    assert parsed == record
    assert unwrap_room_key(parsed, recipient=nurse_alice, wrapper=head_carol.public) == room_key


def test_wrong_recipient(record, surgeon_bob, head_carol):
    with pytest.raises(DecryptionFailed):
        unwrap_room_key(record, recipient=surgeon_bob, wrapper=head_carol.public)


def test_wrong_wrapper(record, nurse_alice, surgeon_bob):
    with pytest.raises(BadSignature):
        unwrap_room_key(record, recipient=nurse_alice, wrapper=surgeon_bob.public)


def test_server_cannot_substitute_its_own_wrap(room_key, record, nurse_alice, head_carol):
    """A key sealed by someone else, under Carol's name, fails her signature."""
    server_key = RoomKey.generate(department=room_key.department, version=room_key.version)
    forged = wrap_room_key(server_key, recipient=nurse_alice.public, wrapper=nurse_alice)
    moved = WrapRecord(
        department=record.department,
        version=record.version,
        recipient_fp=record.recipient_fp,
        wrapper_fp=record.wrapper_fp,
        sealed=forged.sealed,
        signature=record.signature,
    )
    with pytest.raises(BadSignature):
        unwrap_room_key(moved, recipient=nurse_alice, wrapper=head_carol.public)


@pytest.mark.parametrize("claimed", [(13, 3), (12, 4)], ids=["other-room", "other-version"])
def test_wrap_moved_between_rooms_or_versions_by_a_signer(
    room_key, nurse_alice, head_carol, claimed
):
    """Even the wrapper, who can sign anything, cannot relabel a sealed key."""
    honest = wrap_room_key(room_key, recipient=nurse_alice.public, wrapper=head_carol)
    department, version = claimed
    fields = {
        "v": 1,
        "department": department,
        "version": version,
        "recipient_fp": honest.recipient_fp,
        "wrapper_fp": honest.wrapper_fp,
    }
    relabelled = WrapRecord(
        department=department,
        version=version,
        recipient_fp=honest.recipient_fp,
        wrapper_fp=honest.wrapper_fp,
        sealed=honest.sealed,
        signature=head_carol.sign(CONTEXT_WRAP, canonical_json(fields) + honest.sealed),
    )
    with pytest.raises(InvalidEnvelope, match="another department or version"):
        unwrap_room_key(relabelled, recipient=nurse_alice, wrapper=head_carol.public)


def _resealed(content: bytes, nurse_alice, head_carol, department=12, version=3) -> WrapRecord:
    sealed = nacl.public.SealedBox(nacl.public.PublicKey(nurse_alice.public.x25519)).encrypt(
        content
    )
    fields = {
        "v": 1,
        "department": department,
        "version": version,
        "recipient_fp": nurse_alice.fingerprint,
        "wrapper_fp": head_carol.fingerprint,
    }
    return WrapRecord(
        department=department,
        version=version,
        recipient_fp=nurse_alice.fingerprint,
        wrapper_fp=head_carol.fingerprint,
        sealed=bytes(sealed),
        signature=head_carol.sign(CONTEXT_WRAP, canonical_json(fields) + bytes(sealed)),
    )


@pytest.mark.parametrize(
    "content",
    [
        b'{"department":12,"key":"' + b64encode(bytes(32)).encode() + b'","version":3,"x":1}',
        b'{"department":12,"key":"' + b64encode(bytes(31)).encode() + b'","version":3}',
        b'{"version":3,"department":12,"key":"' + b64encode(bytes(32)).encode() + b'"}',
        b'{"department":true,"key":"' + b64encode(bytes(32)).encode() + b'","version":3}',
        b"not json at all, but long enough",
    ],
)
def test_malformed_sealed_content(content, nurse_alice, head_carol):
    record = _resealed(content, nurse_alice, head_carol)
    with pytest.raises(InvalidEnvelope):
        unwrap_room_key(record, recipient=nurse_alice, wrapper=head_carol.public)


def _flip_field(data: dict, name: str, index: int) -> dict:
    raw = bytearray(b64decode(data[name]))
    raw[index] ^= 0x01
    return {**data, name: b64encode(bytes(raw))}


def test_every_byte_of_sealed_and_sig_is_covered(record, nurse_alice, head_carol):
    data = record.to_dict()
    for name in ("sealed", "sig"):
        for index in range(len(b64decode(data[name]))):
            with pytest.raises(BadSignature):
                unwrap_room_key(
                    WrapRecord.from_dict(_flip_field(data, name, index)),
                    recipient=nurse_alice,
                    wrapper=head_carol.public,
                )


@pytest.mark.parametrize("name", ["recipient_fp", "wrapper_fp"])
def test_every_fingerprint_character_is_covered(record, nurse_alice, head_carol, name):
    data = record.to_dict()
    for index in range(64):
        fp = data[name]
        changed = fp[:index] + ("0" if fp[index] != "0" else "1") + fp[index + 1 :]
        with pytest.raises((BadSignature, DecryptionFailed)):
            unwrap_room_key(
                WrapRecord.from_dict({**data, name: changed}),
                recipient=nurse_alice,
                wrapper=head_carol.public,
            )


@pytest.mark.parametrize("name", ["department", "version"])
@pytest.mark.parametrize("delta", [1, -1, 1000])
def test_every_number_is_covered(record, nurse_alice, head_carol, name, delta):
    data = record.to_dict()
    with pytest.raises(BadSignature):
        unwrap_room_key(
            WrapRecord.from_dict({**data, name: data[name] + delta}),
            recipient=nurse_alice,
            wrapper=head_carol.public,
        )


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda d: {**d, "v": 2}, UnsupportedVersion),
        (lambda d: {**d, "v": "1"}, InvalidEnvelope),
        (lambda d: {**d, "extra": 1}, InvalidEnvelope),
        (lambda d: {k: v for k, v in d.items() if k != "sig"}, InvalidEnvelope),
        (lambda d: {**d, "department": True}, InvalidEnvelope),
        (lambda d: {**d, "department": 0}, InvalidEnvelope),
        (lambda d: {**d, "version": "3"}, InvalidEnvelope),
        (lambda d: {**d, "recipient_fp": d["recipient_fp"].upper()}, InvalidEnvelope),
        (lambda d: {**d, "sig": b64encode(bytes(63))}, InvalidEnvelope),
        (lambda d: {**d, "sealed": b64encode(bytes(48))}, InvalidEnvelope),
        (lambda d: {**d, "sealed": b64encode(bytes(513))}, InvalidEnvelope),
        (lambda d: {**d, "sealed": d["sealed"] + "\n"}, InvalidEnvelope),
        (lambda d: [d], InvalidEnvelope),
    ],
)
def test_from_dict_is_strict(record, mutate, error):
    with pytest.raises(error):
        WrapRecord.from_dict(mutate(record.to_dict()))


def test_room_key_constructor():
    assert RoomKey.KEY_SIZE == 32
    for bad in (b"", bytes(31), bytes(33), "x" * 32, bytearray(32)):
        with pytest.raises(InvalidKey):
            RoomKey(bad, department=1, version=1)
    for department, version in ((0, 1), (1, 0), (True, 1), (1, "1")):
        with pytest.raises(ValueError):
            RoomKey(bytes(32), department=department, version=version)
    key = RoomKey.generate(department=5, version=1)
    assert "5" in repr(key) and bytes(key).hex() not in repr(key)
    assert key != RoomKey.generate(department=5, version=1)
    assert key == RoomKey(bytes(key), department=5, version=1)
    assert key != RoomKey(bytes(key), department=5, version=2)
