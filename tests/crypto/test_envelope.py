"""Message envelope v2: encrypt and sign, its bytes and sizes, parsing, the server's check.

`envelope` (conftest.py) is surgeon_bob writing at statement 6 of department
12's chain, under key version 4, with his new phone's key (`bob_now`).
Tampering is test_envelope_tampering.py's; the reader's checks against the
chain (open_envelope), test_open_envelope.py's.
"""

import json
import re
import string
from datetime import UTC, datetime

import nacl.bindings
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    EMPTY_HEAD,
    GENESIS,
    MAX_PLAINTEXT,
    BadSignature,
    ChainHead,
    EnvelopeHeader,
    InvalidEnvelope,
    RoomKey,
    UnsupportedVersion,
    b64decode,
    b64encode,
    decrypt_message,
    encrypt_message,
    parse_envelope,
    verify_envelope,
)
from core.crypto.encoding import parse_timestamp
from tests.crypto.support import (
    BOB,
    MSG_ID,
    PLAINTEXT,
    SENT_AT,
    THREAD,
    chain_heads,
    expect_envelope_refused,
    ids,
    raises_exactly,
    times,
    with_header,
    write_envelope,
)

HEADER_KEYS = {
    "v",
    "room",
    "thread",
    "key_version",
    "key_commitment",
    "chain_seq",
    "chain_head",
    "sender",
    "client_msg_id",
    "sent_at",
    "nonce",
    "sig",
}


# --- Encrypt, decrypt, and the bytes ------------------------------------------------------


def test_round_trip(envelope, room_keys, bob_now):
    assert decrypt_message(envelope, room_key=room_keys[4], sender_key=bob_now.public) == PLAINTEXT


def test_wire_shape(envelope, room_keys, plastic_surgery):
    assert set(envelope) == {"header", "ciphertext"}
    header = envelope["header"]
    assert set(header) == HEADER_KEYS
    assert {k: v for k, v in header.items() if k not in ("nonce", "sig")} == {
        "v": 2,
        "room": 12,
        "thread": THREAD,
        "key_version": 4,
        "key_commitment": b64encode(room_keys[4].commitment),
        "chain_seq": 6,
        "chain_head": plastic_surgery.head.hash,
        "sender": BOB,
        "client_msg_id": MSG_ID,
        "sent_at": SENT_AT,
    }
    assert len(b64decode(header["nonce"])) == 24
    assert len(b64decode(header["sig"])) == 64
    assert len(b64decode(envelope["ciphertext"])) == len(PLAINTEXT) + 16
    json.dumps(envelope)  # plain JSON, as the frame carries it


def test_known_answer_ad_aead_and_signature(envelope, room_keys, plastic_surgery, bob_now):
    """The AD spelled out; the AEAD and the signature checked with libsodium directly."""
    header = envelope["header"]
    ad = (
        f'{{"chain_head":"{plastic_surgery.head.hash}","chain_seq":6,'
        f'"client_msg_id":"{MSG_ID}","key_commitment":"{b64encode(room_keys[4].commitment)}",'
        f'"key_version":4,"room":12,"sender":8,"sent_at":"{SENT_AT}","thread":101,"v":2}}'
    ).encode()
    nonce, ciphertext = b64decode(header["nonce"]), b64decode(envelope["ciphertext"])
    assert parse_envelope(envelope).associated_data() == ad
    assert (
        nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, ad, nonce, bytes(room_keys[4])
        )
        == PLAINTEXT
    )
    nacl.signing.VerifyKey(bob_now.public.ed25519).verify(
        b"rounds-envelope-v2\0" + ad + nonce + ciphertext, b64decode(header["sig"])
    )


def test_verify_envelope_returns_the_parsed_header(envelope, bob_now, room_keys, plastic_surgery):
    header = verify_envelope(envelope, sender_key=bob_now.public)
    assert isinstance(header, EnvelopeHeader)
    assert (header.room, header.thread, header.key_version, header.sender) == (12, THREAD, 4, BOB)
    assert header.key_commitment == room_keys[4].commitment
    assert header.head == plastic_surgery.head
    assert (header.client_msg_id, header.sent_at) == (MSG_ID, SENT_AT)
    assert header.ciphertext == b64decode(envelope["ciphertext"])


def test_the_server_checks_the_published_key(envelope, surgeon_bob, head_carol):
    for other in (surgeon_bob, head_carol):  # Bob's old phone; someone else
        with raises_exactly(BadSignature):
            verify_envelope(envelope, sender_key=other.public)


def test_fixed_nonce_is_deterministic(plastic_surgery, room_keys):
    args = (plastic_surgery, room_keys, BOB, 6, 4)
    first = write_envelope(*args, nonce=bytes(range(24)))
    assert first == write_envelope(*args, nonce=bytes(range(24)))
    assert first != write_envelope(*args, nonce=bytes(range(1, 25)))


def test_random_nonces_differ(plastic_surgery, room_keys):
    envelopes = [write_envelope(plastic_surgery, room_keys, BOB, 6, 4) for _ in range(20)]
    assert len({e["header"]["nonce"] for e in envelopes}) == 20


def test_sent_at_defaults_to_now_as_the_browser_writes_it(plastic_surgery, room_keys, bob_now):
    before = datetime.now(UTC)
    envelope = encrypt_message(
        b"x",
        room_key=room_keys[4],
        head=plastic_surgery.head,
        thread=THREAD,
        sender=BOB,
        client_msg_id=MSG_ID,
        signer=bob_now,
    )
    sent_at = envelope["header"]["sent_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", sent_at)
    moment = parse_timestamp(sent_at, "sent_at")
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= moment
    assert moment <= datetime.now(UTC)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.binary(max_size=2048),
    thread=ids,
    sender=ids,
    msg_id=st.text(string.ascii_letters + string.digits + "_-", min_size=8, max_size=64),
    head=chain_heads,
    sent_at=times,
)
def test_round_trip_property(room_key, bob_now, plaintext, thread, sender, msg_id, head, sent_at):
    envelope = encrypt_message(
        plaintext,
        room_key=room_key,
        head=head,
        thread=thread,
        sender=sender,
        client_msg_id=msg_id,
        signer=bob_now,
        sent_at=sent_at,
    )
    # The server's JSON round trip changes nothing.
    relayed = json.loads(json.dumps(envelope))
    assert decrypt_message(relayed, room_key=room_key, sender_key=bob_now.public) == plaintext
    header = parse_envelope(relayed)
    assert (header.thread, header.sender, header.client_msg_id) == (thread, sender, msg_id)
    assert (header.head, header.sent_at) == (head, sent_at)


def test_max_plaintext(plastic_surgery, room_keys, bob_now):
    assert MAX_PLAINTEXT == 47 * 1024 == 48_128
    envelope = write_envelope(plastic_surgery, room_keys, BOB, 6, 4, plaintext=bytes(MAX_PLAINTEXT))
    assert len(envelope["ciphertext"]) == 64_192
    assert decrypt_message(envelope, room_key=room_keys[4], sender_key=bob_now.public) == bytes(
        MAX_PLAINTEXT
    )
    with pytest.raises(ValueError):
        write_envelope(plastic_surgery, room_keys, BOB, 6, 4, plaintext=bytes(MAX_PLAINTEXT + 1))


def test_largest_envelope_fits_the_servers_frame(bob_now):
    """A message.post frame with the largest envelope, ids and time stays within 64 KiB."""
    biggest = 2**53 - 1
    key = RoomKey(bytes(32), department=biggest, version=biggest)
    longest_time = "2026-12-05T10:00:00.000000+00:00"
    envelope = encrypt_message(
        bytes(MAX_PLAINTEXT),
        room_key=key,
        head=ChainHead(biggest, "f" * 64),
        thread=biggest,
        sender=biggest,
        client_msg_id="m" * 64,
        signer=bob_now,
        sent_at=longest_time,
    )
    frame = {
        "id": "f" * 64,
        "type": "message.post",
        "thread": biggest,
        "client_msg_id": "m" * 64,
        "envelope": envelope,
    }
    size = len(json.dumps(frame).encode())
    assert size == 65_025  # the figure in docs/crypto.md, section 8
    assert size <= 64 * 1024
    assert decrypt_message(envelope, room_key=key, sender_key=bob_now.public) == bytes(
        MAX_PLAINTEXT
    )


def encrypt_args(plastic_surgery, room_keys, bob_now):
    """Bob's arguments for encrypt_message at head 6 under version 4, but the plaintext."""
    return {
        "room_key": room_keys[4],
        "head": plastic_surgery.head,
        "thread": THREAD,
        "sender": BOB,
        "client_msg_id": MSG_ID,
        "signer": bob_now,
        "sent_at": SENT_AT,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nonce": bytes(23)},
        {"nonce": bytes(25)},
        {"plaintext": "text"},
        {"head": (6, GENESIS)},
        {"room_key": bytes(32)},
    ],
)
def test_encrypt_refuses_programming_errors(plastic_surgery, room_keys, bob_now, kwargs):
    args = encrypt_args(plastic_surgery, room_keys, bob_now)
    plaintext = kwargs.pop("plaintext", b"x")
    with pytest.raises((TypeError, ValueError)) as caught:
        encrypt_message(plaintext, **{**args, **kwargs})
    assert not isinstance(caught.value, InvalidEnvelope)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"thread": 0},
        {"thread": 2**53},
        {"sender": True},
        {"client_msg_id": "bad id!"},
        {"client_msg_id": "short"},
        {"sent_at": "2025-01-11T09:15:00"},
        {"sent_at": "2025-01-11T09:15:00+24:00"},
    ],
)
def test_encrypt_refuses_bad_values(plastic_surgery, room_keys, bob_now, kwargs):
    args = encrypt_args(plastic_surgery, room_keys, bob_now)
    with raises_exactly(InvalidEnvelope):
        encrypt_message(b"x", **{**args, **kwargs})


# --- Parsing ------------------------------------------------------------------------------


def test_v1_and_v3_are_unsupported(envelope, room_keys, bob_now):
    header = envelope["header"]
    v1_keys = ("room", "thread", "key_version", "sender", "client_msg_id", "nonce", "sig")
    v1 = {
        "header": {"v": 1, **{k: header[k] for k in v1_keys}},
        "ciphertext": envelope["ciphertext"],
    }
    for unsupported in (
        v1,
        with_header(envelope, v=1),
        with_header(envelope, v=3),
        with_header(envelope, v=0),
    ):
        expect_envelope_refused(unsupported, room_keys[4], bob_now.public, UnsupportedVersion)
        with raises_exactly(UnsupportedVersion):
            parse_envelope(unsupported)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: with_header(e, v=True),
        lambda e: with_header(e, v="2"),
        lambda e: with_header(e, v=2.0),
        lambda e: {**e, "header": {k: v for k, v in e["header"].items() if k != "v"}},
        lambda e: with_header(e, extra=None),
        lambda e: {**e, "extra": 1},
        lambda e: {"header": e["header"]},
        lambda e: {**e, "header": [e["header"]]},
        lambda e: [e],
        lambda e: with_header(e, room="12"),
        lambda e: with_header(e, room=True),
        lambda e: with_header(e, room=12.0),
        lambda e: with_header(e, room=0),
        lambda e: with_header(e, thread=-1),
        lambda e: with_header(e, sender=2**53),
        lambda e: with_header(e, key_version=None),
        lambda e: with_header(e, client_msg_id="short"),
        lambda e: with_header(e, client_msg_id="m" * 65),
        lambda e: with_header(e, client_msg_id="msg 0001 x"),
        lambda e: with_header(e, client_msg_id="msg-0001\n"),
        lambda e: with_header(e, client_msg_id="msg-0001-é"),
        lambda e: with_header(e, nonce=b64encode(bytes(23))),
        lambda e: with_header(e, nonce=b64encode(bytes(25))),
        lambda e: with_header(e, sig=b64encode(bytes(63))),
        lambda e: with_header(e, sig=e["header"]["sig"].rstrip("=")),
        lambda e: {**e, "ciphertext": b64encode(bytes(15))},
        lambda e: {**e, "ciphertext": ""},
        lambda e: {**e, "ciphertext": b64encode(bytes(MAX_PLAINTEXT + 17))},
        lambda e: {**e, "ciphertext": "A" * 10_000_000},
        lambda e: {**e, "ciphertext": e["ciphertext"] + "\n"},
        lambda e: {**e, "ciphertext": b64decode(e["ciphertext"])},
        # The fields new in v2.
        lambda e: with_header(e, key_commitment=b64encode(bytes(31))),
        lambda e: with_header(e, key_commitment=b64encode(bytes(33))),
        lambda e: with_header(e, key_commitment=e["header"]["key_commitment"].rstrip("=")),
        lambda e: with_header(e, key_commitment=None),
        lambda e: with_header(e, chain_seq=-1),
        lambda e: with_header(e, chain_seq=True),
        lambda e: with_header(e, chain_seq="6"),
        lambda e: with_header(e, chain_seq=6.0),
        lambda e: with_header(e, chain_seq=None),
        lambda e: with_header(e, chain_head=e["header"]["chain_head"].upper()),
        lambda e: with_header(e, chain_head=e["header"]["chain_head"][:-1]),
        lambda e: with_header(e, chain_head=e["header"]["chain_head"] + "0"),
        lambda e: with_header(e, chain_head="xy" * 32),
        lambda e: with_header(e, chain_head=None),
        lambda e: with_header(e, chain_seq=0),  # seq 0 with a non-genesis hash
        lambda e: with_header(e, chain_head=GENESIS),  # GENESIS at seq 6
        lambda e: with_header(e, sent_at="2025-01-11T09:15:00.000"),  # no offset
        lambda e: with_header(e, sent_at="2025-01-11T09:15:00.000+24:00"),
        lambda e: with_header(e, sent_at="2025-01-11T09:15:00.000+12:60"),
        lambda e: with_header(e, sent_at="2025-01-11 09:15:00Z"),
        lambda e: with_header(e, sent_at="2025-02-30T09:15:00Z"),
        lambda e: with_header(e, sent_at="2025-01-11"),
        lambda e: with_header(e, sent_at=1736586900),
        lambda e: with_header(e, sent_at=None),
    ],
)
def test_parsing_is_strict(envelope, room_keys, bob_now, mutate):
    tampered = mutate(envelope)
    with raises_exactly(InvalidEnvelope):
        parse_envelope(tampered)
    expect_envelope_refused(tampered, room_keys[4], bob_now.public, InvalidEnvelope)


def test_a_chain_seq_too_large_for_javascript_is_refused_when_verified(
    envelope, room_keys, bob_now
):
    expect_envelope_refused(
        with_header(envelope, chain_seq=2**53), room_keys[4], bob_now.public, InvalidEnvelope
    )


def test_parse_refuses_a_chain_seq_too_large_for_javascript(envelope):
    with raises_exactly(InvalidEnvelope):
        parse_envelope(with_header(envelope, chain_seq=2**53))


def test_the_empty_chains_head_parses(plastic_surgery, room_keys, bob_now):
    envelope = encrypt_message(
        b"x",
        room_key=room_keys[4],
        head=EMPTY_HEAD,
        thread=THREAD,
        sender=BOB,
        client_msg_id=MSG_ID,
        signer=bob_now,
        sent_at=SENT_AT,
    )
    assert parse_envelope(envelope).head == ChainHead(0, GENESIS)
    assert decrypt_message(envelope, room_key=room_keys[4], sender_key=bob_now.public) == b"x"
