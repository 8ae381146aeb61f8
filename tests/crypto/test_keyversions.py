"""Key version records: a room key version bound to the chain head it was made at.

Department 12's chain and versions are conftest.py's: version 1 made by
head_carol at statement 2, version 2 by surgeon_bob at 4, version 3 by Carol
at 5 (just after nurse_alice's removal), version 4 by Bob with his new
phone's key at 6 (just after its replacement).
"""

import json

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    CONTEXT_KEY_VERSION,
    GENESIS,
    BadSignature,
    ChainFork,
    ChainHead,
    ChainWithheld,
    InvalidEnvelope,
    KeyCommitmentMismatch,
    KeyVersionRecord,
    KeyVersionUnauthorized,
    RoomKey,
    SignedKeyVersion,
    StaleKeyVersion,
    UnsupportedVersion,
    b64decode,
    b64encode,
    canonical_json,
    check_current,
    check_key_matches,
    make_key_version,
    verify_key_version,
)
from tests.crypto.support import (
    ADMIN,
    ALICE,
    BOB,
    CARDIOLOGY,
    CAROL,
    DAN,
    VERSIONS_MADE_AT,
    chain_heads,
    hashes,
    ids,
    raises_exactly,
)

RECORD_KEYS = [
    "v",
    "department",
    "version",
    "chain_seq",
    "chain_head",
    "commitment",
    "creator_user",
    "creator_fingerprint",
]


@pytest.fixture(scope="module")
def chain(plastic_surgery):
    return plastic_surgery.replay()


def make(plastic_surgery, version, seq, creator, *, key=None, department=12):
    """Version `version` made at statement `seq` by `creator` (default: the key they held)."""
    return make_key_version(
        RoomKey.generate(department=department, version=version),
        head=plastic_surgery.head_at(seq),
        creator_user=creator,
        creator=key or plastic_surgery.key_at(creator, seq),
    )


# --- Made, verified, and their bytes ------------------------------------------------------


def test_every_version_verifies(chain, versions, room_keys, plastic_surgery):
    for version, signed in versions.items():
        seq, creator = VERSIONS_MADE_AT[version]
        record = verify_key_version(signed, chain)
        assert record == signed.record
        assert (record.department, record.version) == (12, version)
        assert record.head == plastic_surgery.head_at(seq)
        assert (record.chain_seq, record.chain_head) == (seq, plastic_surgery.head_at(seq).hash)
        assert record.commitment == room_keys[version].commitment
        assert record.creator_user == creator
        assert record.creator_fingerprint == plastic_surgery.key_at(creator, seq).fingerprint
        check_key_matches(record, room_keys[version])


def test_known_answer_bytes(versions, surgeon_bob, room_keys, plastic_surgery):
    """Version 2's signed bytes, spelled out, and a plain Ed25519 signature over them."""
    signed = versions[2]
    head = plastic_surgery.head_at(4)
    text = (
        f'{{"chain_head":"{head.hash}","chain_seq":4,'
        f'"commitment":"{b64encode(room_keys[2].commitment)}",'
        f'"creator_fingerprint":"{surgeon_bob.fingerprint}","creator_user":8,'
        '"department":12,"v":2,"version":2}'
    ).encode()
    assert signed.record.signed_bytes() == text
    seed = surgeon_bob.to_bytes()[32:]
    expected = nacl.signing.SigningKey(seed).sign(b"rounds-key-version-v2\0" + text).signature
    assert signed.signature == expected  # Ed25519 is deterministic
    surgeon_bob.public.verify(CONTEXT_KEY_VERSION, text, signed.signature)


def test_dict_round_trip(versions, chain):
    for signed in versions.values():
        data = signed.to_dict()
        assert set(data) == {"record", "sig"}
        assert list(data["record"]) == RECORD_KEYS
        relayed = SignedKeyVersion.from_dict(json.loads(json.dumps(data)))
        assert relayed == signed
        assert verify_key_version(relayed, chain) == signed.record


@settings(max_examples=100)
@given(
    department=ids,
    version=ids,
    head=chain_heads,
    commitment=st.binary(min_size=32, max_size=32),
    creator_user=ids,
    creator_fingerprint=hashes,
    signature=st.binary(min_size=64, max_size=64),
)
def test_round_trip_property(
    department, version, head, commitment, creator_user, creator_fingerprint, signature
):
    record = KeyVersionRecord(
        department=department,
        version=version,
        chain_seq=head.seq,
        chain_head=head.hash,
        commitment=commitment,
        creator_user=creator_user,
        creator_fingerprint=creator_fingerprint,
    )
    signed = SignedKeyVersion(record, signature)
    relayed = json.loads(json.dumps(signed.to_dict()))
    assert SignedKeyVersion.from_dict(relayed) == signed
    assert record.signed_bytes() == canonical_json(relayed["record"])
    assert record.head == head


# --- Who may make a version, at which head ------------------------------------------------


@pytest.mark.parametrize(
    "seq, creator, key",
    [
        (6, DAN, None),  # never admitted
        (2, BOB, None),  # not yet admitted
        (0, CAROL, None),  # before anyone was
        (5, ALICE, None),  # removed at 5
        (6, ALICE, None),
        (6, BOB, "old"),  # his key was replaced at 6
        (5, BOB, "new"),  # not yet his key at 5
        (4, CAROL, "bob"),  # signed and named with another member's key
    ],
    ids=[
        "never-admitted",
        "not-yet-admitted",
        "empty-chain",
        "removed",
        "removed-later",
        "replaced-key",
        "key-not-yet-admitted",
        "another-members-key",
    ],
)
def test_the_creator_must_be_a_member_with_that_key_at_the_head(
    plastic_surgery, chain, surgeon_bob, surgeon_bob_new_phone, seq, creator, key
):
    identity = {"old": surgeon_bob, "new": surgeon_bob_new_phone, "bob": surgeon_bob, None: None}[
        key
    ]
    signed = make(plastic_surgery, 5, seq, creator, key=identity)
    with raises_exactly(KeyVersionUnauthorized, f"not a member with that key at statement {seq}"):
        verify_key_version(signed, chain)


def test_a_removed_member_made_versions_while_a_member(plastic_surgery, chain):
    """Alice's version of statement 4 verifies: she was a member then.

    check_current is what stops its use."""
    signed = make(plastic_surgery, 5, 4, ALICE)
    record = verify_key_version(signed, chain)
    with raises_exactly(StaleKeyVersion):
        check_current(record, chain)


def test_a_head_beyond_the_chain_is_withheld(plastic_surgery, versions, head_carol):
    # Version 4 names statement 6; a reader served five statements misses one.
    with raises_exactly(ChainWithheld):
        verify_key_version(versions[4], plastic_surgery.replay(5))
    with raises_exactly(ChainWithheld):
        verify_key_version(versions[1], plastic_surgery.replay(0))
    # Made at a statement 7 that this chain does not have.
    longer = plastic_surgery.branch()
    longer.add("admit", DAN, "member", by=CAROL)
    signed = make(longer, 5, 7, CAROL, key=head_carol)
    with raises_exactly(ChainWithheld):
        verify_key_version(signed, plastic_surgery.replay())
    verify_key_version(signed, longer.replay())


def test_a_head_off_the_chain_is_a_fork(plastic_surgery, chain, head_carol):
    forked = plastic_surgery.branch(3)
    forked.add("admit", DAN, "member", by=CAROL)
    signed = make(forked, 5, 4, CAROL, key=head_carol)
    verify_key_version(signed, forked.replay())
    with raises_exactly(ChainFork):
        verify_key_version(signed, chain)


def test_another_departments_version(plastic_surgery, chain, new_chain, head_carol):
    elsewhere = make(plastic_surgery, 1, 6, CAROL, department=CARDIOLOGY)
    with raises_exactly(InvalidEnvelope, "another department"):
        verify_key_version(elsewhere, chain)
    cardiology = new_chain(CARDIOLOGY)
    cardiology.add("admit", CAROL, "head", by=ADMIN)
    with raises_exactly(InvalidEnvelope, "another department"):
        verify_key_version(make(plastic_surgery, 1, 1, CAROL), cardiology.replay())


def test_signed_by_someone_else(plastic_surgery, chain, versions, head_carol):
    """Bob's record, re-signed by Carol: it names Bob, so Bob's key must have signed it."""
    record = versions[2].record
    resigned = SignedKeyVersion(record, head_carol.sign(CONTEXT_KEY_VERSION, record.signed_bytes()))
    with raises_exactly(BadSignature):
        verify_key_version(resigned, chain)


def test_a_v1_context_signature_does_not_verify(chain, versions, surgeon_bob):
    record = versions[2].record
    seed = surgeon_bob.to_bytes()[32:]
    v1 = nacl.signing.SigningKey(seed).sign(b"rounds-key-version-v1\0" + record.signed_bytes())
    with raises_exactly(BadSignature):
        verify_key_version(SignedKeyVersion(record, v1.signature), chain)


# --- Tampering: every field ---------------------------------------------------------------


def _edited(signed, **fields):
    data = signed.to_dict()
    return SignedKeyVersion.from_dict({**data, "record": {**data["record"], **fields}})


def test_every_field_is_covered(plastic_surgery, chain, versions, head_carol, surgeon_bob):
    """Version 2 (Bob, statement 4), edited one field at a time, each refused with its code."""
    signed = versions[2]
    record = signed.to_dict()["record"]
    h3, h5 = plastic_surgery.head_at(3), plastic_surgery.head_at(5)
    cases = [
        ({"version": 3}, BadSignature),
        ({"version": 1}, BadSignature),
        # Another head in the chain at which Bob was still a member: only the signature tells.
        ({"chain_seq": h3.seq, "chain_head": h3.hash}, BadSignature),
        ({"chain_seq": h5.seq, "chain_head": h5.hash}, BadSignature),
        # A head that is not the chain's: refused before any signature.
        ({"chain_seq": 5}, ChainFork),
        ({"chain_seq": 7}, ChainWithheld),
        ({"commitment": b64encode(bytes(32))}, BadSignature),
        ({"department": CARDIOLOGY}, InvalidEnvelope),
        # Another creator, or another key named: not a member with that key at 4.
        ({"creator_user": CAROL}, KeyVersionUnauthorized),
        ({"creator_fingerprint": head_carol.fingerprint}, KeyVersionUnauthorized),
        ({"creator_user": ALICE}, KeyVersionUnauthorized),
        # Both: Carol's name and key, Bob's signature.
        ({"creator_user": CAROL, "creator_fingerprint": head_carol.fingerprint}, BadSignature),
    ]
    for fields, error in cases:
        assert any(record[name] != value for name, value in fields.items()), fields
        with raises_exactly(error):
            verify_key_version(_edited(signed, **fields), chain)
    assert surgeon_bob.fingerprint == record["creator_fingerprint"]


def test_every_hex_digit_of_the_head_is_covered(chain, versions):
    signed = versions[2]
    head = signed.record.chain_head
    for index in range(64):
        other = head[:index] + ("0" if head[index] != "0" else "1") + head[index + 1 :]
        with raises_exactly(ChainFork):
            verify_key_version(_edited(signed, chain_head=other), chain)


@pytest.mark.parametrize("name", ["commitment", "sig"])
def test_every_byte_of_commitment_and_signature_is_covered(chain, versions, name):
    signed = versions[2]
    data = signed.to_dict()
    container = data["record"] if name == "commitment" else data
    raw = b64decode(container[name])
    for index in range(len(raw)):
        for mask in (0x01, 0x80):
            flipped = bytearray(raw)
            flipped[index] ^= mask
            value = b64encode(bytes(flipped))
            if name == "commitment":
                tampered = {**data, "record": {**data["record"], name: value}}
            else:
                tampered = {**data, name: value}
            with raises_exactly(BadSignature):
                verify_key_version(SignedKeyVersion.from_dict(tampered), chain)


# --- Parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORD_KEYS)
def test_every_key_is_required(versions, name):
    data = versions[2].to_dict()["record"]
    del data[name]
    with raises_exactly(InvalidEnvelope):
        KeyVersionRecord.from_dict(data)


@pytest.mark.parametrize(
    "name, value, error",
    [
        ("v", 1, UnsupportedVersion),
        ("v", 3, UnsupportedVersion),
        ("v", "2", InvalidEnvelope),
        ("v", True, InvalidEnvelope),
        ("department", 0, InvalidEnvelope),
        ("department", True, InvalidEnvelope),
        ("department", "12", InvalidEnvelope),
        ("department", 2**53, InvalidEnvelope),
        ("version", 0, InvalidEnvelope),
        ("version", -2, InvalidEnvelope),
        ("version", 2.0, InvalidEnvelope),
        ("chain_seq", -1, InvalidEnvelope),
        ("chain_seq", True, InvalidEnvelope),
        ("chain_seq", "4", InvalidEnvelope),
        ("chain_seq", 4.0, InvalidEnvelope),
        ("chain_seq", None, InvalidEnvelope),
        ("chain_seq", 0, InvalidEnvelope),  # seq 0 only with GENESIS
        ("chain_head", GENESIS, InvalidEnvelope),  # and GENESIS only with seq 0
        ("chain_head", "AB" * 32, InvalidEnvelope),
        ("chain_head", "ab" * 31, InvalidEnvelope),
        ("chain_head", "ab" * 33, InvalidEnvelope),
        ("chain_head", None, InvalidEnvelope),
        ("commitment", b64encode(bytes(31)), InvalidEnvelope),
        ("commitment", b64encode(bytes(33)), InvalidEnvelope),
        ("commitment", b64encode(bytes(32)).rstrip("="), InvalidEnvelope),
        ("commitment", b64encode(bytes(32)).replace("A", "-"), InvalidEnvelope),
        ("commitment", None, InvalidEnvelope),
        ("creator_user", 0, InvalidEnvelope),
        ("creator_user", None, InvalidEnvelope),
        ("creator_user", "8", InvalidEnvelope),
        ("creator_fingerprint", "AB" * 32, InvalidEnvelope),
        ("creator_fingerprint", "ab" * 31, InvalidEnvelope),
        ("creator_fingerprint", None, InvalidEnvelope),
        ("extra", 1, InvalidEnvelope),
    ],
)
def test_record_parsing_is_strict(versions, name, value, error):
    data = {**versions[2].to_dict()["record"], name: value}
    with raises_exactly(error):
        KeyVersionRecord.from_dict(data)


def test_the_empty_chains_head_parses(versions):
    data = {**versions[2].to_dict()["record"], "chain_seq": 0, "chain_head": GENESIS}
    assert KeyVersionRecord.from_dict(data).head == ChainHead(0, GENESIS)


def test_chain_seq_must_fit_javascript(versions):
    data = {**versions[2].to_dict()["record"], "chain_seq": 2**53}
    with raises_exactly(InvalidEnvelope):
        KeyVersionRecord.from_dict(data)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "extra": 1},
        lambda d: {"record": d["record"]},
        lambda d: {**d, "sig": b64encode(bytes(63))},
        lambda d: {**d, "sig": d["sig"].rstrip("=")},
        lambda d: {**d, "record": [d["record"]]},
        lambda d: [d],
    ],
)
def test_signed_record_parsing_is_strict(versions, mutate):
    with raises_exactly(InvalidEnvelope):
        SignedKeyVersion.from_dict(mutate(versions[2].to_dict()))


# --- Writing under the current version ----------------------------------------------------


@pytest.mark.parametrize(
    "served, current, stale",
    [
        (2, [1], []),
        (3, [1], []),  # an admission changes nothing
        (4, [1, 2], []),  # nor does a role change
        (5, [3], [1, 2]),  # Alice's removal: she holds 1 and 2
        (6, [4], [1, 2, 3]),  # Bob's lost phone may hold 3
    ],
)
def test_check_current(plastic_surgery, versions, served, current, stale):
    chain = plastic_surgery.replay(served)
    for version in current:
        check_current(versions[version].record, chain)
    for version in stale:
        with raises_exactly(
            StaleKeyVersion, f"before the removal or key replacement of statement {served}"
        ):
            check_current(versions[version].record, chain)


def test_admissions_and_role_changes_keep_a_version_current(plastic_surgery, versions):
    writer = plastic_surgery.branch()
    writer.add("admit", DAN, "member", by=BOB)
    writer.add("role", DAN, "head", by=CAROL)
    writer.add("admit", ALICE, "member", by=DAN)
    chain = writer.replay()
    check_current(versions[4].record, chain)
    verify_key_version(versions[4], chain)
    writer.add("remove", DAN, "head", by=CAROL)
    with raises_exactly(StaleKeyVersion):
        check_current(versions[4].record, writer.replay())


def test_check_key_matches(versions, room_keys):
    record = versions[2].record
    check_key_matches(record, room_keys[2])
    with raises_exactly(KeyCommitmentMismatch):
        check_key_matches(record, RoomKey.generate(department=12, version=2))
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        check_key_matches(record, room_keys[3])
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        check_key_matches(record, RoomKey(bytes(room_keys[2]), department=12, version=3))
    with raises_exactly(InvalidEnvelope, "another department, thread or version"):
        check_key_matches(record, RoomKey(bytes(room_keys[2]), department=CARDIOLOGY, version=2))
