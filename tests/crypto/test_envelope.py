"""Message envelope v1: encrypt + sign, verify (the server's check), decrypt."""

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat.crypto import (
    CONTEXT_ENVELOPE,
    MAX_PLAINTEXT,
    BadSignature,
    DecryptionFailed,
    InvalidEnvelope,
    RoomKey,
    UnsupportedVersion,
    b64decode,
    b64encode,
    canonical_json,
    decrypt_message,
    encrypt_message,
    verify_envelope,
)
from chat.crypto.envelope import _associated_data

THREAD, SENDER = 101, 7


@pytest.fixture(scope="module")
def envelope(room_key, nurse_alice):
    return encrypt_message(
        b"Bed 4: obs stable.",
        room_key=room_key,
        thread=THREAD,
        sender=SENDER,
        client_msg_id="msg-0001-abcdef",
        signer=nurse_alice,
    )


def test_round_trip(envelope, room_key, nurse_alice):
    assert decrypt_message(envelope, room_key=room_key, sender_key=nurse_alice.public) == (
        b"Bed 4: obs stable."
    )


def test_wire_shape(envelope, room_key):
    assert set(envelope) == {"header", "ciphertext"}
    header = envelope["header"]
    assert header == {
        "v": 1,
        "room": room_key.department,
        "thread": THREAD,
        "key_version": room_key.version,
        "sender": SENDER,
        "client_msg_id": "msg-0001-abcdef",
        "nonce": header["nonce"],
        "sig": header["sig"],
    }
    assert len(b64decode(header["nonce"])) == 24
    assert len(b64decode(header["sig"])) == 64
    assert len(b64decode(envelope["ciphertext"])) == len(b"Bed 4: obs stable.") + 16
    json.dumps(envelope)  # plain JSON, as the frame carries it


def test_verify_envelope_returns_the_parsed_header(envelope, nurse_alice, room_key):
    header = verify_envelope(envelope, sender_key=nurse_alice.public)
    assert (header.room, header.thread, header.key_version, header.sender) == (
        room_key.department,
        THREAD,
        room_key.version,
        SENDER,
    )
    assert header.client_msg_id == "msg-0001-abcdef"


def test_ad_and_signed_bytes(envelope, nurse_alice, room_key):
    header = envelope["header"]
    ad = canonical_json({k: header[k] for k in header if k not in ("nonce", "sig")})
    assert ad == (
        b'{"client_msg_id":"msg-0001-abcdef","key_version":3,"room":12,"sender":7,'
        b'"thread":101,"v":1}'
    )
    assert ad == _associated_data(12, THREAD, 3, SENDER, "msg-0001-abcdef")
    signed = ad + b64decode(header["nonce"]) + b64decode(envelope["ciphertext"])
    nurse_alice.public.verify(CONTEXT_ENVELOPE, signed, b64decode(header["sig"]))


def test_fixed_nonce_is_deterministic(room_key, nurse_alice):
    args = {
        "room_key": room_key,
        "thread": THREAD,
        "sender": SENDER,
        "client_msg_id": "msg-0002-fixed",
        "signer": nurse_alice,
        "nonce": bytes(range(24)),
    }
    assert encrypt_message(b"x", **args) == encrypt_message(b"x", **args)


def test_random_nonces_differ(room_key, nurse_alice):
    envelopes = [
        encrypt_message(
            b"x",
            room_key=room_key,
            thread=THREAD,
            sender=SENDER,
            client_msg_id="msg-0003-random",
            signer=nurse_alice,
        )
        for _ in range(20)
    ]
    assert len({e["header"]["nonce"] for e in envelopes}) == 20


@settings(max_examples=50)
@given(
    plaintext=st.binary(max_size=2048),
    thread=st.integers(1, 2**53 - 1),
    sender=st.integers(1, 2**53 - 1),
    msg_id=st.text(string.ascii_letters + string.digits + "_-", min_size=8, max_size=64),
)
def test_round_trip_property(room_key, nurse_alice, plaintext, thread, sender, msg_id):
    envelope = encrypt_message(
        plaintext,
        room_key=room_key,
        thread=thread,
        sender=sender,
        client_msg_id=msg_id,
        signer=nurse_alice,
    )
    # The server's JSON round trip changes nothing.
    relayed = json.loads(json.dumps(envelope))
    assert decrypt_message(relayed, room_key=room_key, sender_key=nurse_alice.public) == plaintext


def test_max_plaintext(room_key, nurse_alice):
    args = {
        "room_key": room_key,
        "thread": THREAD,
        "sender": SENDER,
        "client_msg_id": "msg-0004-maxsize",
        "signer": nurse_alice,
    }
    envelope = encrypt_message(bytes(MAX_PLAINTEXT), **args)
    assert decrypt_message(envelope, room_key=room_key, sender_key=nurse_alice.public) == bytes(
        MAX_PLAINTEXT
    )
    with pytest.raises(ValueError):
        encrypt_message(bytes(MAX_PLAINTEXT + 1), **args)


def test_largest_envelope_fits_the_servers_frame(room_key, nurse_alice):
    """A message.post frame with the largest envelope and ids stays within 64 KiB."""
    biggest = 2**53 - 1
    key = RoomKey(bytes(room_key), department=biggest, version=biggest)
    envelope = encrypt_message(
        bytes(MAX_PLAINTEXT),
        room_key=key,
        thread=biggest,
        sender=biggest,
        client_msg_id="m" * 64,
        signer=nurse_alice,
    )
    frame = {
        "id": "f" * 64,
        "type": "message.post",
        "thread": biggest,
        "client_msg_id": "m" * 64,
        "envelope": envelope,
    }
    assert len(json.dumps(frame).encode()) <= 64 * 1024


# --- Tampering: each field, byte by byte -----------------------------------------


def _flip(text: str, index: int) -> str:
    raw = bytearray(b64decode(text))
    raw[index] ^= 0x01
    return b64encode(bytes(raw))


def expect_refused(envelope, room_key, sender_key, error=BadSignature):
    with pytest.raises(error):
        verify_envelope(envelope, sender_key=sender_key)
    with pytest.raises(error):
        decrypt_message(envelope, room_key=room_key, sender_key=sender_key)


@pytest.mark.parametrize("field", ["nonce", "sig"])
def test_every_byte_of_nonce_and_signature(envelope, room_key, nurse_alice, field):
    header = envelope["header"]
    for index in range(len(b64decode(header[field]))):
        tampered = {**envelope, "header": {**header, field: _flip(header[field], index)}}
        expect_refused(tampered, room_key, nurse_alice.public)


def test_every_byte_of_a_short_ciphertext(envelope, room_key, nurse_alice):
    for index in range(len(b64decode(envelope["ciphertext"]))):
        tampered = {**envelope, "ciphertext": _flip(envelope["ciphertext"], index)}
        expect_refused(tampered, room_key, nurse_alice.public)


def test_a_sample_of_bytes_of_a_long_ciphertext(room_key, nurse_alice):
    envelope = encrypt_message(
        bytes(range(256)) * 40,
        room_key=room_key,
        thread=THREAD,
        sender=SENDER,
        client_msg_id="msg-0005-long",
        signer=nurse_alice,
    )
    size = len(b64decode(envelope["ciphertext"]))
    for index in [*range(0, size, 97), size - 17, size - 16, size - 1]:
        tampered = {**envelope, "ciphertext": _flip(envelope["ciphertext"], index)}
        expect_refused(tampered, room_key, nurse_alice.public)


@pytest.mark.parametrize(
    "field, values",
    [
        ("room", [13, 11, 2**53 - 1]),
        ("thread", [102, 1]),
        ("key_version", [2, 4]),
        ("sender", [8, 1]),
        ("client_msg_id", ["msg-0001-abcdeg", "msg-0001-abcde", "MSG-0001-ABCDEF"]),
    ],
)
def test_every_header_field_is_signed(envelope, room_key, nurse_alice, field, values):
    """An envelope copied to another room or thread, or re-attributed, is refused."""
    for value in values:
        tampered = {**envelope, "header": {**envelope["header"], field: value}}
        expect_refused(tampered, room_key, nurse_alice.public)


def test_truncated_or_extended_ciphertext(envelope, room_key, nurse_alice):
    raw = b64decode(envelope["ciphertext"])
    for changed in (raw[:-1], raw + b"\x00", raw[1:]):
        expect_refused({**envelope, "ciphertext": b64encode(changed)}, room_key, nurse_alice.public)


def _resign(envelope, signer):
    header = envelope["header"]
    ad = canonical_json({k: header[k] for k in header if k not in ("nonce", "sig")})
    signed = ad + b64decode(header["nonce"]) + b64decode(envelope["ciphertext"])
    sig = b64encode(signer.sign(CONTEXT_ENVELOPE, signed))
    return {**envelope, "header": {**header, "sig": sig}}


@pytest.mark.parametrize(
    "field, value", [("room", 13), ("thread", 999), ("key_version", 4), ("sender", 8)]
)
def test_moved_and_resigned_by_the_sender_still_fails_the_aead(
    envelope, room_key, nurse_alice, field, value
):
    """The AD binds the header too: a signer who moves a message cannot make it open."""
    moved = _resign({**envelope, "header": {**envelope["header"], field: value}}, nurse_alice)
    verify_envelope(moved, sender_key=nurse_alice.public)  # the signature is fine...
    key = RoomKey(
        bytes(room_key),
        department=moved["header"]["room"],
        version=moved["header"]["key_version"],
    )
    with pytest.raises(DecryptionFailed):  # ...the ciphertext is not
        decrypt_message(moved, room_key=key, sender_key=nurse_alice.public)


def test_ciphertext_changed_and_resigned_fails_the_aead(envelope, room_key, nurse_alice):
    forged = _resign({**envelope, "ciphertext": _flip(envelope["ciphertext"], 0)}, nurse_alice)
    with pytest.raises(DecryptionFailed):
        decrypt_message(forged, room_key=room_key, sender_key=nurse_alice.public)


def test_signed_by_someone_else(envelope, room_key, nurse_alice, surgeon_bob):
    expect_refused(_resign(envelope, surgeon_bob), room_key, nurse_alice.public)
    expect_refused(envelope, room_key, surgeon_bob.public)


def test_wrong_room_key(envelope, room_key, nurse_alice):
    other_version = RoomKey(bytes(room_key), department=room_key.department, version=4)
    other_room = RoomKey(bytes(room_key), department=13, version=room_key.version)
    other_bytes = RoomKey.generate(department=room_key.department, version=room_key.version)
    for key in (other_version, other_room, other_bytes):
        with pytest.raises(DecryptionFailed):
            decrypt_message(envelope, room_key=key, sender_key=nurse_alice.public)


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda e: {**e, "header": {**e["header"], "v": 2}}, UnsupportedVersion),
        (lambda e: {**e, "header": {**e["header"], "v": True}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "v": "1"}}, InvalidEnvelope),
        (
            lambda e: {**e, "header": {k: v for k, v in e["header"].items() if k != "v"}},
            InvalidEnvelope,
        ),
        (lambda e: {**e, "header": {**e["header"], "extra": None}}, InvalidEnvelope),
        (
            lambda e: {**e, "header": {k: v for k, v in e["header"].items() if k != "sig"}},
            InvalidEnvelope,
        ),
        (lambda e: {**e, "extra": 1}, InvalidEnvelope),
        (lambda e: {"header": e["header"]}, InvalidEnvelope),
        (lambda e: {**e, "header": [e["header"]]}, InvalidEnvelope),
        (lambda e: [e], InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "room": "12"}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "room": True}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "room": 12.0}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "room": 0}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "thread": -1}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "sender": 2**53}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "key_version": None}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "client_msg_id": "short"}}, InvalidEnvelope),
        (lambda e: {**e, "header": {**e["header"], "client_msg_id": "m" * 65}}, InvalidEnvelope),
        (
            lambda e: {**e, "header": {**e["header"], "client_msg_id": "msg 0001 x"}},
            InvalidEnvelope,
        ),
        (
            lambda e: {**e, "header": {**e["header"], "client_msg_id": "msg-0001\n"}},
            InvalidEnvelope,
        ),
        (
            lambda e: {**e, "header": {**e["header"], "nonce": b64encode(bytes(23))}},
            InvalidEnvelope,
        ),
        (
            lambda e: {**e, "header": {**e["header"], "nonce": b64encode(bytes(25))}},
            InvalidEnvelope,
        ),
        (lambda e: {**e, "header": {**e["header"], "sig": b64encode(bytes(63))}}, InvalidEnvelope),
        (
            lambda e: {**e, "header": {**e["header"], "sig": e["header"]["sig"].rstrip("=")}},
            InvalidEnvelope,
        ),
        (lambda e: {**e, "ciphertext": b64encode(bytes(15))}, InvalidEnvelope),
        (lambda e: {**e, "ciphertext": ""}, InvalidEnvelope),
        (lambda e: {**e, "ciphertext": b64encode(bytes(MAX_PLAINTEXT + 17))}, InvalidEnvelope),
        (lambda e: {**e, "ciphertext": "A" * 10_000_000}, InvalidEnvelope),
        (lambda e: {**e, "ciphertext": e["ciphertext"] + "\n"}, InvalidEnvelope),
        (lambda e: {**e, "ciphertext": b64decode(e["ciphertext"])}, InvalidEnvelope),
    ],
)
def test_parsing_is_strict(envelope, room_key, nurse_alice, mutate, error):
    expect_refused(mutate(envelope), room_key, nurse_alice.public, error)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nonce": bytes(23)},
        {"thread": 0},
        {"sender": True},
        {"client_msg_id": "bad id"},
    ],
)
def test_encrypt_checks_its_arguments(room_key, nurse_alice, kwargs):
    args = {
        "room_key": room_key,
        "thread": THREAD,
        "sender": SENDER,
        "client_msg_id": "msg-0006-args",
        "signer": nurse_alice,
        **kwargs,
    }
    with pytest.raises((ValueError, InvalidEnvelope)):
        encrypt_message(b"x", **args)
