"""Membership statements v2 one by one: their bytes, hash, signature and parsing.

How statements chain together is test_chain.py's. The statements here are
department 12's from conftest.py: `appointment` (the admin key makes
head_carol head, statement 1), `admission` (Carol admits nurse_alice,
statement 2) and `replacement` (Carol replaces surgeon_bob's key, statement 6).
"""

import hashlib
import json

import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    CONTEXT_STATEMENT,
    GENESIS,
    BadSignature,
    IdentityKeyPair,
    InvalidEnvelope,
    MembershipStatement,
    SignedStatement,
    UnsupportedVersion,
    b64decode,
    b64encode,
    canonical_json,
    sign_statement,
    statement_hash,
    verify_statement,
)
from core.crypto.statements import GUEST_KINDS, KINDS
from tests.crypto.support import hashes, ids, raises_exactly, times

# RFC 8032 section 7.1 test 1's seed and RFC 7748 section 6.1's X25519 secret: a fixed signer.
FIXED_SIGNER = IdentityKeyPair(
    bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"),
)


@pytest.fixture(scope="module")
def appointment(plastic_surgery):
    return plastic_surgery.statements[0]


@pytest.fixture(scope="module")
def admission(plastic_surgery):
    return plastic_surgery.statements[1]


@pytest.fixture(scope="module")
def replacement(plastic_surgery):
    return plastic_surgery.statements[5]


# --- Bytes, hash and signature, known answers ---------------------------------------------


def test_known_answer():
    """Signed bytes, signature and hash, computed here without core.crypto."""
    statement = MembershipStatement(
        department=12,
        seq=2,
        prev="5e" * 32,
        kind="admit",
        subject_user=7,
        subject_fingerprint="7a" * 32,
        replaces=None,
        role="member",
        issued_at="2025-01-06T08:05:00Z",
        signer_user=3,
        signer_fingerprint=FIXED_SIGNER.fingerprint,
    )
    text = (
        '{"department":12,"issued_at":"2025-01-06T08:05:00Z","kind":"admit",'
        f'"prev":"{"5e" * 32}","replaces":null,"role":"member","seq":2,'
        f'"signer_fingerprint":"{FIXED_SIGNER.fingerprint}","signer_user":3,'
        f'"subject_fingerprint":"{"7a" * 32}","subject_user":7,"v":2}}'
    ).encode()
    assert statement.signed_bytes() == text
    signed = sign_statement(statement, FIXED_SIGNER)
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    raw = nacl.signing.SigningKey(seed).sign(b"rounds-statement-v2\0" + text).signature
    assert signed.signature == raw
    wire = b'{"sig":"' + b64encode(raw).encode() + b'","statement":' + text + b"}"
    assert canonical_json(signed.to_dict()) == wire
    assert (
        signed.hash
        == statement_hash(signed)
        == (hashlib.sha256(b"rounds-chain-v2\0" + wire).hexdigest())
    )
    assert verify_statement(signed, FIXED_SIGNER.public) == statement
    assert statement.describe() == "admit user 7 as member"


def test_wire_form(admission, replacement, appointment, head_carol, institution_admin):
    data = admission.to_dict()
    assert set(data) == {"statement", "sig"}
    assert data["statement"]["v"] == 2
    assert len(data["statement"]) == 12
    assert data["statement"]["replaces"] is None
    assert data["statement"]["seq"] == 2
    assert data["statement"]["prev"] == appointment.hash
    assert appointment.to_dict()["statement"]["prev"] == GENESIS
    assert appointment.to_dict()["statement"]["signer_user"] is None
    assert appointment.statement.signer_fingerprint == institution_admin.fingerprint
    assert replacement.to_dict()["statement"]["replaces"] == replacement.statement.replaces
    head_carol.public.verify(
        CONTEXT_STATEMENT, canonical_json(data["statement"]), b64decode(data["sig"])
    )


def test_dict_round_trip(plastic_surgery):
    for signed in plastic_surgery.statements:
        relayed = json.loads(json.dumps(signed.to_dict()))
        assert SignedStatement.from_dict(relayed) == signed
        assert SignedStatement.from_dict(relayed).hash == signed.hash


@st.composite
def statements(draw):
    kind = draw(st.sampled_from(KINDS))
    seq = draw(ids)
    subject_fingerprint = draw(hashes)
    return MembershipStatement(
        department=draw(ids),
        seq=seq,
        prev=GENESIS if seq == 1 else draw(hashes.filter(lambda h: h != GENESIS)),
        kind=kind,
        subject_user=draw(ids),
        subject_fingerprint=subject_fingerprint,
        replaces=draw(hashes.filter(lambda h: h != subject_fingerprint))
        if kind == "replace"
        else None,
        role="guest" if kind in GUEST_KINDS else draw(st.sampled_from(("head", "member"))),
        issued_at=draw(times),
        signer_user=draw(st.none() | ids),
        signer_fingerprint=draw(hashes),
        thread=draw(ids) if kind in GUEST_KINDS else None,
    )


@settings(max_examples=100)
@given(statement=statements(), signature=st.binary(min_size=64, max_size=64))
def test_round_trip_property(statement, signature):
    signed = SignedStatement(statement, signature)
    relayed = json.loads(json.dumps(signed.to_dict()))
    assert SignedStatement.from_dict(relayed) == signed
    assert statement.signed_bytes() == canonical_json(relayed["statement"])
    assert MembershipStatement.from_dict(relayed["statement"]) == statement


# --- Signing and verifying ----------------------------------------------------------------


def test_sign_and_verify(admission, appointment, head_carol, institution_admin):
    assert verify_statement(admission, head_carol.public) == admission.statement
    assert verify_statement(appointment, institution_admin.public) == appointment.statement


def test_verify_names_the_signer(admission, surgeon_bob, head_carol):
    with raises_exactly(BadSignature, "another signer"):
        verify_statement(admission, surgeon_bob.public)
    # Carol's name on it, Bob's signature.
    forged = SignedStatement(
        admission.statement,
        surgeon_bob.sign(CONTEXT_STATEMENT, admission.statement.signed_bytes()),
    )
    with raises_exactly(BadSignature, "does not verify"):
        verify_statement(forged, head_carol.public)


def test_sign_statement_needs_the_signer_it_names(admission, surgeon_bob):
    with pytest.raises(ValueError):
        sign_statement(admission.statement, surgeon_bob)


@pytest.mark.parametrize(
    "context",
    [b"rounds-statement-v1\0", b"rounds-envelope-v2\0", b"rounds-key-version-v2\0"],
)
def test_a_signature_for_another_purpose_or_version_does_not_verify(admission, head_carol, context):
    """Signed with Carol's raw Ed25519 key over another context (the v1 one included)."""
    seed = head_carol.to_bytes()[32:]
    signature = (
        nacl.signing.SigningKey(seed).sign(context + admission.statement.signed_bytes()).signature
    )
    with raises_exactly(BadSignature):
        verify_statement(SignedStatement(admission.statement, signature), head_carol.public)


def test_every_signature_byte_is_checked(admission, head_carol):
    data = admission.to_dict()
    signature = b64decode(data["sig"])
    for index in range(64):
        for mask in (0x01, 0x80):
            flipped = bytearray(signature)
            flipped[index] ^= mask
            tampered = SignedStatement.from_dict({**data, "sig": b64encode(bytes(flipped))})
            with raises_exactly(BadSignature):
                verify_statement(tampered, head_carol.public)


# Valid statements that differ from `admission` in one field each.
EDITS = [
    ("department", 13),
    ("seq", 3),
    ("prev", "ab" * 32),
    ("kind", "role"),
    ("kind", "remove"),
    ("subject_user", 9),
    ("subject_fingerprint", "0" * 64),
    ("role", "head"),
    ("issued_at", "2025-01-06T08:01:01Z"),
    ("issued_at", "2025-01-06T08:01:00.000Z"),  # the same moment, spelled otherwise
    ("issued_at", "2025-01-06T09:01:00+01:00"),  # and again
    ("signer_user", 4),
    ("signer_user", None),
]


@pytest.mark.parametrize("name, value", EDITS)
def test_every_field_is_signed(admission, head_carol, name, value):
    assert admission.statement.issued_at == "2025-01-06T08:01:00Z"
    data = admission.to_dict()
    data["statement"][name] = value
    with raises_exactly(BadSignature, "does not verify"):
        verify_statement(SignedStatement.from_dict(data), head_carol.public)


def test_the_signer_fingerprint_is_checked_first(admission, head_carol):
    data = admission.to_dict()
    data["statement"]["signer_fingerprint"] = "0" * 64
    with raises_exactly(BadSignature, "another signer"):
        verify_statement(SignedStatement.from_dict(data), head_carol.public)


@pytest.mark.parametrize(
    "name, value", [("replaces", "ab" * 32), ("subject_fingerprint", "cd" * 32)]
)
def test_a_replacements_keys_are_signed(replacement, head_carol, name, value):
    data = replacement.to_dict()
    data["statement"][name] = value
    with raises_exactly(BadSignature, "does not verify"):
        verify_statement(SignedStatement.from_dict(data), head_carol.public)


def test_the_hash_covers_the_statement_and_its_signature(admission):
    """Any change, to a field or a signature bit, gives another hash."""
    seen = {admission.hash}
    data = admission.to_dict()
    for name, value in EDITS:
        edited = {**data, "statement": {**data["statement"], name: value}}
        seen.add(SignedStatement.from_dict(edited).hash)
    signature = b64decode(data["sig"])
    for index in range(64):
        for mask in (0x01, 0x80):
            flipped = bytearray(signature)
            flipped[index] ^= mask
            seen.add(SignedStatement(admission.statement, bytes(flipped)).hash)
    assert len(seen) == 1 + len(EDITS) + 128


def test_the_hash_is_of_the_statement_as_sent(plastic_surgery):
    for signed in plastic_surgery.statements:
        wire = canonical_json(
            {"statement": signed.statement.to_dict(), "sig": b64encode(signed.signature)}
        )
        assert signed.hash == hashlib.sha256(b"rounds-chain-v2\0" + wire).hexdigest()
        assert len(signed.hash) == 64 and signed.hash == signed.hash.lower()


# --- Parsing ------------------------------------------------------------------------------

FIELDS = [
    "v",
    "department",
    "seq",
    "prev",
    "kind",
    "subject_user",
    "subject_fingerprint",
    "replaces",
    "role",
    "issued_at",
    "signer_user",
    "signer_fingerprint",
]


@pytest.mark.parametrize("name", FIELDS)
def test_every_key_is_required(admission, name):
    data = admission.to_dict()["statement"]
    del data[name]
    with raises_exactly(InvalidEnvelope):
        MembershipStatement.from_dict(data)


@pytest.mark.parametrize("extra", ["extra", "sig", "hash", "V"])
def test_no_other_key_is_allowed(admission, extra):
    data = {**admission.to_dict()["statement"], extra: None}
    with raises_exactly(InvalidEnvelope):
        MembershipStatement.from_dict(data)


@pytest.mark.parametrize(
    "version, error",
    [
        (1, UnsupportedVersion),
        (3, UnsupportedVersion),
        (0, UnsupportedVersion),
        ("2", InvalidEnvelope),
        (True, InvalidEnvelope),
        (2.0, InvalidEnvelope),
        (None, InvalidEnvelope),
    ],
)
def test_the_version_is_checked_first(admission, version, error):
    data = {**admission.to_dict()["statement"], "v": version}
    with raises_exactly(error):
        MembershipStatement.from_dict(data)
    # Even with other fields missing or wrong, as a v1 statement has them.
    v1_shaped = {k: v for k, v in data.items() if k not in ("seq", "prev", "replaces")}
    with raises_exactly(error):
        MembershipStatement.from_dict(v1_shaped)


@pytest.mark.parametrize(
    "name, value",
    [
        ("kind", "promote"),
        ("kind", "Admit"),
        ("kind", None),
        ("kind", 1),
        ("role", "admin"),
        ("role", "Head"),
        ("role", None),
        ("department", 0),
        ("department", True),
        ("department", "12"),
        ("department", 12.0),
        ("department", 2**53),
        ("seq", 0),
        ("seq", -1),
        ("seq", True),
        ("seq", "2"),
        ("seq", 2.0),
        ("seq", None),
        ("seq", 2**53),
        ("prev", "AB" * 32),
        ("prev", "ab" * 31),
        ("prev", "ab" * 32 + "a"),
        ("prev", "xy" * 32),
        ("prev", None),
        ("prev", GENESIS),  # only statement 1 follows the genesis value
        ("subject_user", 0),
        ("subject_user", -7),
        ("subject_user", "7"),
        ("subject_user", None),
        ("signer_user", 0),
        ("signer_user", "3"),
        ("signer_user", True),
        ("subject_fingerprint", "AB" * 32),
        ("subject_fingerprint", "ab" * 31),
        ("subject_fingerprint", None),
        ("signer_fingerprint", "ab" * 33),
        ("signer_fingerprint", None),
        ("replaces", "ab" * 32),  # only a replacement replaces
        ("replaces", ""),
        ("replaces", False),
    ],
)
def test_statement_parsing_is_strict(admission, name, value):
    data = {**admission.to_dict()["statement"], name: value}
    with raises_exactly(InvalidEnvelope):
        MembershipStatement.from_dict(data)


@pytest.mark.parametrize("prev", ["ab" * 32, "0" * 63 + "1"])
def test_the_first_statement_follows_the_genesis_value(appointment, prev):
    data = {**appointment.to_dict()["statement"], "prev": prev}
    with raises_exactly(InvalidEnvelope, "genesis"):
        MembershipStatement.from_dict(data)


@pytest.mark.parametrize("kind", ["admit", "role", "remove"])
def test_replaces_is_null_except_for_a_replacement(admission, kind):
    data = {**admission.to_dict()["statement"], "kind": kind}
    MembershipStatement.from_dict(data)
    with raises_exactly(InvalidEnvelope, "only for a replace"):
        MembershipStatement.from_dict({**data, "replaces": "ab" * 32})


@pytest.mark.parametrize(
    "replaces, match",
    [
        (None, "replaces must be"),
        ("subject", "names a new key"),
        ("AB" * 32, "replaces must be"),
        ("ab" * 31, "replaces must be"),
    ],
)
def test_a_replacement_names_the_key_it_replaces(replacement, replaces, match):
    data = replacement.to_dict()["statement"]
    if replaces == "subject":
        replaces = data["subject_fingerprint"]
    with raises_exactly(InvalidEnvelope, match):
        MembershipStatement.from_dict({**data, "replaces": replaces})


@pytest.mark.parametrize(
    "issued_at, utc_offset_minutes",
    [
        ("2025-01-06T08:05:00Z", 0),
        ("2025-01-06T08:05:00+00:00", 0),
        ("2025-01-06T08:05:00-00:00", 0),
        ("2025-01-06T08:05:00.1Z", 0),
        ("2025-01-06T08:05:00.123Z", 0),
        ("2025-01-06T08:05:00.123456+01:00", 60),
        ("2025-01-06T08:05:00+23:59", 23 * 60 + 59),
        ("2025-01-06T08:05:00-23:59", -(23 * 60 + 59)),
        ("2024-02-29T23:59:59+05:30", 330),
    ],
)
def test_times_with_an_offset_are_accepted(admission, issued_at, utc_offset_minutes):
    data = {**admission.to_dict()["statement"], "issued_at": issued_at}
    statement = MembershipStatement.from_dict(data)
    assert statement.issued_at == issued_at  # kept as written: it is what was signed
    assert statement.issued.utcoffset().total_seconds() == utc_offset_minutes * 60


@pytest.mark.parametrize(
    "issued_at",
    [
        "2025-01-06T08:05:00",  # no offset
        "2025-01-06T08:05:00+24:00",
        "2025-01-06T08:05:00-24:00",
        "2025-01-06T08:05:00+12:60",
        "2025-01-06T08:05:00+0100",
        "2025-01-06T08:05:00+01",
        "2025-01-06T08:05:00+01:00:00",
        "2025-01-06T08:05:00z",
        "2025-01-06t08:05:00Z",
        "2025-01-06 08:05:00Z",
        "2025-01-06T08:05Z",
        "2025-01-06T08:05:00.Z",
        "2025-01-06T08:05:00.1234567Z",
        "2025-01-06T08:05:00Z\n",
        " 2025-01-06T08:05:00Z",
        "2025-02-30T08:05:00Z",  # no such day
        "2025-02-29T08:05:00Z",
        "2025-13-06T08:05:00Z",
        "2025-01-06T24:00:00Z",
        "2025-01-06T08:05:60Z",  # leap seconds are not spelled
        "0000-01-06T08:05:00Z",
        "+2025-01-06T08:05:00Z",
        "20250106T080500Z",
        "2025-01-06",
        "٢٠٢٥-01-06T08:05:00Z",  # Arabic-Indic digits
        1736150700,
        None,
    ],
)
def test_other_time_spellings_are_refused(admission, issued_at):
    data = {**admission.to_dict()["statement"], "issued_at": issued_at}
    with raises_exactly(InvalidEnvelope, "issued_at"):
        MembershipStatement.from_dict(data)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "extra": 1},
        lambda d: {"statement": d["statement"]},
        lambda d: {"sig": d["sig"]},
        lambda d: {**d, "sig": b64encode(bytes(63))},
        lambda d: {**d, "sig": b64encode(bytes(65))},
        lambda d: {**d, "sig": d["sig"].rstrip("=")},
        lambda d: {**d, "sig": d["sig"] + "\n"},
        lambda d: {**d, "sig": None},
        lambda d: {**d, "statement": [d["statement"]]},
        lambda d: {**d, "statement": json.dumps(d["statement"])},
        lambda d: [d],
        lambda d: None,
    ],
)
def test_signed_statement_parsing_is_strict(admission, mutate):
    with raises_exactly(InvalidEnvelope):
        SignedStatement.from_dict(mutate(admission.to_dict()))


def test_signed_statement_constructor(admission):
    with raises_exactly(InvalidEnvelope):
        SignedStatement(admission.statement, bytes(63))
    with pytest.raises(TypeError):
        SignedStatement(admission.statement.to_dict(), admission.signature)
