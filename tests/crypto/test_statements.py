"""Membership statements and the chain that decides who gets a room key.

Department 12 (plastic surgery): the institution's admin key appoints
head_carol (user 3); she admits nurse_alice (7) and surgeon_bob (8), makes
Bob a head, and Bob removes Alice.
"""

import pytest

from chat.crypto import (
    CONTEXT_STATEMENT,
    AttestedMember,
    BadSignature,
    InvalidEnvelope,
    InvalidKey,
    MembershipStatement,
    SignedStatement,
    UnsupportedVersion,
    b64decode,
    b64encode,
    canonical_json,
    replay_membership_chain,
    sign_statement,
    verify_membership_chain,
    verify_statement,
)

CAROL, ALICE, BOB = 3, 7, 8


@pytest.fixture(scope="module")
def people(head_carol, nurse_alice, surgeon_bob):
    return {CAROL: head_carol, ALICE: nurse_alice, BOB: surgeon_bob}


@pytest.fixture(scope="module")
def keys(people):
    return [identity.public for identity in people.values()]


@pytest.fixture(scope="module")
def make(people, institution_admin):
    def make(kind, subject, role, at, signer, *, department=12):
        signing = institution_admin if signer is None else people[signer]
        statement = MembershipStatement(
            kind=kind,
            department=department,
            subject_user=subject,
            subject_fingerprint=people[subject].fingerprint,
            role=role,
            issued_at=at,
            signer_user=signer,
            signer_fingerprint=signing.fingerprint,
        )
        return sign_statement(statement, signing)

    return make


@pytest.fixture(scope="module")
def chain(make):
    return [
        make("admit", CAROL, "head", "2025-01-06T08:00:00Z", None),
        make("admit", ALICE, "member", "2025-01-06T08:05:00Z", CAROL),
        make("admit", BOB, "member", "2025-01-06T08:06:00Z", CAROL),
        make("role", BOB, "head", "2025-02-01T09:00:00+01:00", CAROL),
        make("remove", ALICE, "member", "2025-03-01T12:00:00Z", BOB),
    ]


def test_chain_replays_to_members(chain, institution_admin, keys):
    admin = institution_admin.public
    assert verify_membership_chain(chain[:3], admin_key=admin, keys=keys) == {
        CAROL: "head",
        ALICE: "member",
        BOB: "member",
    }
    assert verify_membership_chain(chain, admin_key=admin, keys=keys) == {
        CAROL: "head",
        BOB: "head",
    }
    assert verify_membership_chain([], admin_key=admin, keys=keys) == {}


def test_signed_bytes(chain, head_carol):
    signed = chain[1]
    data = signed.statement.to_dict()
    assert data["v"] == 1 and len(data) == 9
    head_carol.public.verify(CONTEXT_STATEMENT, canonical_json(data), signed.signature)
    assert verify_statement(signed, head_carol.public) == signed.statement


def test_verify_statement_wrong_signer(chain, surgeon_bob, head_carol):
    with pytest.raises(BadSignature, match="another signer"):
        verify_statement(chain[1], surgeon_bob.public)
    forged = SignedStatement(chain[1].statement, surgeon_bob.sign(CONTEXT_STATEMENT, b"x"))
    with pytest.raises(BadSignature):
        verify_statement(forged, head_carol.public)


def test_sign_statement_needs_matching_signer(chain, surgeon_bob):
    with pytest.raises(ValueError):
        sign_statement(chain[1].statement, surgeon_bob)


def test_dict_round_trip(chain):
    for signed in chain:
        assert SignedStatement.from_dict(signed.to_dict()) == signed


def expect_chain_error(statements, admin, keys, error, index):
    with pytest.raises(error) as caught:
        verify_membership_chain(statements, admin_key=admin, keys=keys)
    assert caught.value.statement_index == index
    assert f"statement {index} " in str(caught.value)


def test_first_head_must_be_appointed_by_the_admin(chain, make, institution_admin, keys):
    admin = institution_admin.public
    expect_chain_error(chain[1:], admin, keys, BadSignature, 0)
    self_appointed = make("admit", CAROL, "head", "2025-01-06T08:00:00Z", CAROL)
    expect_chain_error([self_appointed], admin, keys, BadSignature, 0)


def test_another_admin_key_is_refused(chain, surgeon_bob, institution_admin, keys):
    expect_chain_error(chain, surgeon_bob.public, keys, BadSignature, 0)


def test_admin_may_not_act_while_there_is_a_head(chain, make, institution_admin, keys):
    extra_head = make("admit", BOB, "head", "2025-01-06T08:06:00Z", None)
    expect_chain_error([chain[0], extra_head], institution_admin.public, keys, BadSignature, 1)


def test_admin_may_only_appoint_heads(make, institution_admin, keys):
    member = make("admit", ALICE, "member", "2025-01-06T08:00:00Z", None)
    expect_chain_error([member], institution_admin.public, keys, BadSignature, 0)


def test_admin_reappoints_after_the_last_head_left(chain, make, institution_admin, keys):
    statements = [
        chain[0],
        chain[1],
        make("remove", CAROL, "head", "2025-01-07T08:00:00Z", CAROL),
        make("role", ALICE, "head", "2025-01-08T08:00:00Z", None),
    ]
    members = verify_membership_chain(statements, admin_key=institution_admin.public, keys=keys)
    assert members == {ALICE: "head"}


def test_a_member_cannot_admit(chain, make, institution_admin, keys):
    by_alice = make("admit", BOB, "member", "2025-01-06T08:06:00Z", ALICE)
    expect_chain_error([*chain[:2], by_alice], institution_admin.public, keys, BadSignature, 2)


def test_a_removed_head_cannot_sign(chain, make, institution_admin, keys):
    statements = [
        *chain[:4],
        make("remove", CAROL, "head", "2025-02-02T08:00:00Z", BOB),
        make("admit", ALICE, "member", "2025-02-03T08:00:00Z", CAROL),
    ]
    expect_chain_error(statements, institution_admin.public, keys, BadSignature, 5)


@pytest.mark.parametrize(
    "statement, reason",
    [
        (("admit", ALICE, "member", "2025-01-06T08:07:00Z", 3), "already a member"),
        (("role", ALICE, "member", "2025-01-06T08:07:00Z", 3), "already has this role"),
        (("remove", ALICE, "head", "2025-01-06T08:07:00Z", 3), "another role"),
        (("role", BOB, "head", "2025-01-06T08:07:00Z", 3), "not a member"),
        (("remove", BOB, "member", "2025-01-06T08:07:00Z", 3), "not a member"),
        (("admit", BOB, "member", "2025-01-06T07:00:00Z", 3), "back in time"),
    ],
)
def test_statements_must_fit_the_membership(
    chain, make, institution_admin, keys, statement, reason
):
    bad = make(*statement)
    expect_chain_error([*chain[:2], bad], institution_admin.public, keys, InvalidEnvelope, 2)
    with pytest.raises(InvalidEnvelope, match=reason):
        verify_membership_chain([*chain[:2], bad], admin_key=institution_admin.public, keys=keys)


def test_one_department_per_chain(chain, make, institution_admin, keys):
    elsewhere = make("admit", BOB, "member", "2025-01-06T08:06:00Z", CAROL, department=13)
    expect_chain_error([*chain[:2], elsewhere], institution_admin.public, keys, InvalidEnvelope, 2)


def test_a_members_admitted_key_must_be_given(chain, institution_admin, people):
    """The key the caller would wrap to must be the one admitted, found by its fingerprint."""
    without_alice = [people[CAROL].public, people[BOB].public]
    with pytest.raises(InvalidKey, match="member 7"):
        verify_membership_chain(chain[:2], admin_key=institution_admin.public, keys=without_alice)


def test_signer_key_must_be_known_and_admitted(chain, make, institution_admin, people):
    with pytest.raises(InvalidKey) as caught:
        verify_membership_chain(
            chain[:2], admin_key=institution_admin.public, keys=[people[ALICE].public]
        )
    assert caught.value.statement_index == 1
    # Carol signs with Bob's key: not the key she was admitted with.
    statement = MembershipStatement(
        kind="admit",
        department=12,
        subject_user=BOB,
        subject_fingerprint=people[BOB].fingerprint,
        role="member",
        issued_at="2025-01-06T08:06:00Z",
        signer_user=CAROL,
        signer_fingerprint=people[BOB].fingerprint,
    )
    by_bobs_key = sign_statement(statement, people[BOB])
    keys = [identity.public for identity in people.values()]
    expect_chain_error([*chain[:2], by_bobs_key], institution_admin.public, keys, InvalidKey, 2)


def test_replay_keeps_admitted_keys(chain, institution_admin, keys, people):
    """Alice left, but the key she was admitted with is still known to have been a member's."""
    replayed = replay_membership_chain(chain, admin_key=institution_admin.public, keys=keys)
    assert replayed.members[BOB] == AttestedMember("head", people[BOB].fingerprint)
    assert ALICE not in replayed.members
    assert people[ALICE].fingerprint in replayed.ever_admitted
    assert replayed.roles() == {CAROL: "head", BOB: "head"}


def test_a_replaced_key_is_readmitted(chain, make, institution_admin, people):
    """Remove with the old key, admit with the new: both keys must be given, each by fingerprint."""
    from chat.crypto import IdentityKeyPair

    new_alice = IdentityKeyPair.generate()
    readmit = MembershipStatement(
        kind="admit",
        department=12,
        subject_user=ALICE,
        subject_fingerprint=new_alice.fingerprint,
        role="member",
        issued_at="2025-01-07T08:00:00Z",
        signer_user=CAROL,
        signer_fingerprint=people[CAROL].fingerprint,
    )
    statements = [
        *chain[:2],
        make("remove", ALICE, "member", "2025-01-07T07:59:00Z", CAROL),
        sign_statement(readmit, people[CAROL]),
    ]
    keys = [people[CAROL].public, new_alice.public]
    replayed = replay_membership_chain(statements, admin_key=institution_admin.public, keys=keys)
    assert replayed.members[ALICE].fingerprint == new_alice.fingerprint


STATEMENT_FIELDS = [
    ("kind", "role"),
    ("department", 13),
    ("subject_user", 9),
    ("subject_fingerprint", "0" * 64),
    ("role", "head"),
    ("issued_at", "2025-01-06T08:05:01Z"),
    ("signer_user", 4),
    ("signer_fingerprint", "0" * 64),
]


@pytest.mark.parametrize("name, value", STATEMENT_FIELDS)
def test_every_field_is_signed(chain, head_carol, name, value):
    data = chain[1].to_dict()
    data["statement"][name] = value
    with pytest.raises(BadSignature):
        verify_statement(SignedStatement.from_dict(data), head_carol.public)


def test_every_signature_byte_is_checked(chain, head_carol):
    data = chain[1].to_dict()
    signature = b64decode(data["sig"])
    for index in range(64):
        flipped = bytearray(signature)
        flipped[index] ^= 0x01
        tampered = SignedStatement.from_dict({**data, "sig": b64encode(bytes(flipped))})
        with pytest.raises(BadSignature):
            verify_statement(tampered, head_carol.public)


@pytest.mark.parametrize(
    "name, value",
    [
        ("kind", "promote"),
        ("kind", None),
        ("role", "admin"),
        ("department", True),
        ("subject_user", 0),
        ("signer_user", "3"),
        ("subject_fingerprint", "AB" * 32),
        ("issued_at", "2025-01-06 08:05:00"),
        ("issued_at", "2025-01-06T08:05:00"),  # no offset
        ("issued_at", "2025-02-30T08:05:00Z"),  # no such day
        ("issued_at", "2025-01-06"),
        ("issued_at", 1736150700),
    ],
)
def test_statement_parsing_is_strict(chain, name, value):
    data = chain[1].to_dict()
    data["statement"][name] = value
    with pytest.raises(InvalidEnvelope):
        SignedStatement.from_dict(data)


@pytest.mark.parametrize(
    "mutate, error",
    [
        (lambda d: {**d, "statement": {**d["statement"], "v": 2}}, UnsupportedVersion),
        (lambda d: {**d, "statement": {**d["statement"], "extra": 1}}, InvalidEnvelope),
        (lambda d: {**d, "extra": 1}, InvalidEnvelope),
        (lambda d: {**d, "sig": b64encode(bytes(65))}, InvalidEnvelope),
        (lambda d: {"statement": d["statement"]}, InvalidEnvelope),
    ],
)
def test_signed_statement_parsing(chain, mutate, error):
    with pytest.raises(error):
        SignedStatement.from_dict(mutate(chain[1].to_dict()))
