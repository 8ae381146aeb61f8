"""Every rule of replay_membership_chain (docs/crypto.md, section 6), each refusal with its
exact error class, message and statement index.

Each test writes on a copy (`branch`) of department 12's chain from
conftest.py: the admin key appoints head_carol (1), she admits nurse_alice
(2) and surgeon_bob (3), makes Bob a head (4), Bob removes Alice (5), and
Carol replaces Bob's key with his new phone's (6).
"""

import pytest

from core.crypto import (
    GENESIS,
    AttestedMember,
    BadSignature,
    IdentityKeyPair,
    InvalidEnvelope,
    InvalidKey,
    replay_membership_chain,
)
from tests.crypto.support import ADMIN, ALICE, BOB, CARDIOLOGY, CAROL, DAN, raises_exactly


def expect_refused(writer, statements, error, index, match=None, *, keys=None, admin=None):
    """Replaying `statements` fails with exactly `error`, naming statement `index`."""
    with raises_exactly(error, match) as caught:
        replay_membership_chain(
            statements,
            admin_key=admin or writer.admin.public,
            keys=writer.public_keys() if keys is None else keys,
        )
    assert caught.value.statement_index == index
    described = statements[index].statement.describe()
    assert str(caught.value).startswith(f"statement {index} ({described}): ")


def with_next(writer, *args, **kwargs):
    """The writer's statements, and a next one it drafts (which a replay should refuse)."""
    return [*writer.statements, writer.draft(*args, **kwargs)]


# Rule 1: one department, seq N, prev the hash of N - 1, time never goes back.


@pytest.mark.parametrize("seq", [1, 3, 7, 2**53 - 1])
def test_seq_must_be_the_next_position(plastic_surgery, seq):
    writer = plastic_surgery.branch(1)
    prev = GENESIS if seq == 1 else writer.statements[-1].hash
    statements = with_next(writer, "admit", ALICE, "member", by=CAROL, seq=seq, prev=prev)
    expect_refused(writer, statements, InvalidEnvelope, 1, f"seq {seq} where 2 comes next")


@pytest.mark.parametrize("prev", ["ab" * 32, "statement 0"], ids=["unknown", "two-back"])
def test_prev_must_be_the_hash_of_the_statement_before(plastic_surgery, prev):
    writer = plastic_surgery.branch(2)
    if prev == "statement 0":
        prev = writer.statements[0].hash
    statements = with_next(writer, "admit", BOB, "member", by=CAROL, prev=prev)
    expect_refused(writer, statements, InvalidEnvelope, 2, "prev is not the hash")


def test_a_statement_left_out_of_the_middle_breaks_the_chain(plastic_surgery):
    statements = plastic_surgery.statements
    for index in range(len(statements) - 1):
        without = statements[:index] + statements[index + 1 :]
        expect_refused(plastic_surgery, without, InvalidEnvelope, index, "seq")
    # Only the last can go unnoticed by the chain alone: check_extends catches that.
    assert plastic_surgery.replay(len(statements) - 1).head.seq == 5


def test_statements_moved_or_repeated_break_the_chain(plastic_surgery):
    statements = plastic_surgery.statements
    for index in range(len(statements) - 1):
        swapped = list(statements)
        swapped[index], swapped[index + 1] = swapped[index + 1], swapped[index]
        expect_refused(plastic_surgery, swapped, InvalidEnvelope, index, "seq")
        repeated = [*statements[: index + 1], statements[index], *statements[index + 1 :]]
        expect_refused(plastic_surgery, repeated, InvalidEnvelope, index + 1, "seq")


def test_two_statements_at_one_position(plastic_surgery):
    writer = plastic_surgery.branch(2)
    other = writer.draft("admit", DAN, "member", by=CAROL)  # also seq 3
    served = [*plastic_surgery.statements[:3], other]
    expect_refused(plastic_surgery, served, InvalidEnvelope, 3, "seq 3 where 4 comes next")
    # Put in place of the real statement 3, it breaks the link of statement 4.
    swapped = [*plastic_surgery.statements[:2], other, *plastic_surgery.statements[3:]]
    expect_refused(plastic_surgery, swapped, InvalidEnvelope, 3, "prev is not the hash")


def test_one_department_per_chain(plastic_surgery, new_chain):
    writer = plastic_surgery.branch(2)
    elsewhere = with_next(writer, "admit", BOB, "member", by=CAROL, department=CARDIOLOGY)
    expect_refused(writer, elsewhere, InvalidEnvelope, 2, "department 13, not 12")
    # Cardiology's own first statement does not start plastic surgery's chain either.
    cardiology = new_chain(CARDIOLOGY)
    cardiology.add("admit", CAROL, "head", by=ADMIN)
    mixed = [*cardiology.statements, *plastic_surgery.statements[1:2]]
    expect_refused(writer, mixed, InvalidEnvelope, 1, "department 12, not 13")


@pytest.mark.parametrize(
    "issued_at, accepted",
    [
        ("2025-01-06T08:00:59Z", False),
        ("2025-01-06T08:01:00Z", True),  # the same moment is fine
        ("2025-01-06T08:01:00.000001Z", True),
        # Later on the clock, earlier in time: 09:00:30+01:00 is 08:00:30Z.
        ("2025-01-06T09:00:30+01:00", False),
        # Earlier on the clock, later in time: 07:30-01:00 is 08:30Z.
        ("2025-01-06T07:30:00-01:00", True),
        # The widest offsets: the same moment as 08:01Z, and a second before it.
        ("2025-01-05T08:02:00-23:59", True),
        ("2025-01-07T08:00:00+23:59", True),
        ("2025-01-07T07:59:59+23:59", False),
    ],
)
def test_issued_at_never_goes_back(plastic_surgery, issued_at, accepted):
    writer = plastic_surgery.branch(2)  # statement 2 was issued at 08:01Z
    statements = with_next(writer, "admit", BOB, "member", by=CAROL, issued_at=issued_at)
    if accepted:
        chain = replay_membership_chain(
            statements, admin_key=writer.admin.public, keys=writer.public_keys()
        )
        assert chain.head.seq == 3
    else:
        expect_refused(writer, statements, InvalidEnvelope, 2, "back in time")


# Rule 2: the admin key appoints a head when there is none, or rekeys a head. Nothing else.


def test_the_first_statement_must_be_the_admin_appointing_a_head(new_chain):
    writer = new_chain()
    self_appointed = [writer.draft("admit", CAROL, "head", by=CAROL)]
    expect_refused(writer, self_appointed, BadSignature, 0, "not a head")
    admin_admits_a_member = [writer.draft("admit", ALICE, "member", by=ADMIN)]
    expect_refused(writer, admin_admits_a_member, BadSignature, 0, "the admin key only")


def test_another_admin_key_is_refused(plastic_surgery, compliance_dan):
    expect_refused(
        plastic_surgery,
        plastic_surgery.statements,
        BadSignature,
        0,
        "neither a user nor the admin key",
        admin=compliance_dan.public,
    )


@pytest.mark.parametrize(
    "kind, subject, role",
    [
        ("admit", DAN, "head"),  # a second head while Carol is one
        ("admit", DAN, "member"),
        ("role", ALICE, "head"),
        ("role", CAROL, "member"),
        ("remove", ALICE, "member"),
        ("remove", CAROL, "head"),
    ],
)
def test_the_admin_may_not_act_while_there_is_a_head(plastic_surgery, kind, subject, role):
    writer = plastic_surgery.branch(3)
    statements = with_next(writer, kind, subject, role, by=ADMIN)
    expect_refused(writer, statements, BadSignature, 3, "the admin key only")


def test_the_admin_may_replace_a_heads_key_but_not_a_members(plastic_surgery, compliance_dan):
    lost = IdentityKeyPair.generate()
    writer = plastic_surgery.branch(4)  # Carol and Bob heads, Alice a member
    members_key = with_next(writer, "replace", ALICE, "member", by=ADMIN, key=lost)
    expect_refused(writer, members_key, BadSignature, 4, "the admin key only")

    writer.add("replace", CAROL, "head", by=ADMIN, key=lost)
    chain = writer.replay()
    assert chain.members[CAROL] == AttestedMember("head", lost.fingerprint)
    assert chain.last_exclusion_at(5) == 5  # a replacement is an exclusion like a removal
    # Carol signs with her new key from now on, and never with the old one.
    with_old_key = with_next(
        writer,
        "admit",
        DAN,
        "member",
        by=CAROL,
        signer_fingerprint=writer.key_at(CAROL, 4).fingerprint,
    )
    expect_refused(writer, with_old_key, InvalidKey, 5, "not the one admitted")
    writer.add("admit", DAN, "member", by=CAROL)
    assert writer.replay().members[DAN].fingerprint == compliance_dan.fingerprint


@pytest.mark.parametrize("step_down", ["remove", "role"])
def test_the_admin_appoints_again_after_the_last_head_left(plastic_surgery, step_down):
    writer = plastic_surgery.branch(3)  # Carol the only head; Alice and Bob members
    if step_down == "remove":
        writer.add("remove", CAROL, "head", by=CAROL)
    else:
        writer.add("role", CAROL, "member", by=CAROL)
    # Nobody can sign now, not even Carol.
    nobody = with_next(writer, "admit", DAN, "member", by=CAROL)
    expect_refused(writer, nobody, BadSignature, 4, "not a head")
    writer.add("role", ALICE, "head", by=ADMIN)
    # Once there is a head again, the admin key is back to appointing no one.
    second = with_next(writer, "role", BOB, "head", by=ADMIN)
    expect_refused(writer, second, BadSignature, 5, "the admin key only")
    writer.add("admit", DAN, "member", by=ALICE)
    assert writer.replay().roles()[ALICE] == "head"


def test_the_admin_may_admit_a_new_head_when_there_is_none(plastic_surgery):
    writer = plastic_surgery.branch(3)
    writer.add("remove", CAROL, "head", by=CAROL)
    writer.add("admit", DAN, "head", by=ADMIN)
    assert writer.replay().roles() == {ALICE: "member", BOB: "member", DAN: "head"}


def test_an_admin_statement_must_carry_the_admin_key(plastic_surgery, head_carol, surgeon_bob):
    writer = plastic_surgery.branch(0)
    # signer_user null, but Carol's fingerprint and signature: not the admin's.
    carols = [
        writer.draft("admit", CAROL, "head", by=ADMIN, signer_fingerprint=head_carol.fingerprint)
    ]
    expect_refused(writer, carols, BadSignature, 0, "neither a user nor the admin key")
    # The admin's fingerprint, but someone else's signature.
    forged = [writer.draft("admit", CAROL, "head", by=ADMIN, signer=surgeon_bob)]
    expect_refused(writer, forged, BadSignature, 0, "signature does not verify")


# Rule 3: everything else is signed by a head at that point, with the key the chain holds.


@pytest.mark.parametrize(
    "setup, signer",
    [
        ([], ALICE),  # a member
        ([], DAN),  # never admitted
        ([("remove", CAROL, "head", BOB)], CAROL),  # removed
        ([("role", CAROL, "member", BOB)], CAROL),  # no longer a head
    ],
    ids=["member", "stranger", "removed-head", "demoted-head"],
)
def test_only_a_head_signs(plastic_surgery, setup, signer):
    writer = plastic_surgery.branch(4)  # Carol and Bob heads, Alice a member
    for kind, subject, role, by in setup:
        writer.add(kind, subject, role, by=by)
    statements = with_next(writer, "role", ALICE, "head", by=signer)
    index = len(writer.statements)
    expect_refused(writer, statements, BadSignature, index, f"signer {signer} is not a head")


def test_a_replaced_key_no_longer_signs(plastic_surgery, surgeon_bob):
    writer = plastic_surgery.branch()  # Bob's key was replaced at statement 6
    old = surgeon_bob.fingerprint
    # Naming the old key: the chain holds another one for Bob.
    naming_old = with_next(writer, "admit", DAN, "member", by=BOB, signer_fingerprint=old)
    expect_refused(writer, naming_old, InvalidKey, 6, "signer 8's key is not the one admitted")
    # Naming the new key, signed with the old one.
    signed_old = with_next(writer, "admit", DAN, "member", by=BOB, signer=surgeon_bob)
    expect_refused(writer, signed_old, BadSignature, 6, "signature does not verify")
    # With the new phone, Bob signs.
    writer.add("admit", DAN, "member", by=BOB)
    assert DAN in writer.replay().members


def test_a_head_signs_with_her_own_key(plastic_surgery, surgeon_bob):
    writer = plastic_surgery.branch(3)
    # Carol's statement with Bob's key, named as such: not the key the chain holds for her.
    bobs_key = with_next(
        writer, "admit", DAN, "member", by=CAROL, signer_fingerprint=surgeon_bob.fingerprint
    )
    expect_refused(writer, bobs_key, InvalidKey, 3, "signer 3's key is not the one admitted")
    # Carol's key named, Bob's signature.
    forged = with_next(writer, "admit", DAN, "member", by=CAROL, signer=surgeon_bob)
    expect_refused(writer, forged, BadSignature, 3, "signature does not verify")


def test_a_signers_key_must_be_handed_over(plastic_surgery, head_carol, compliance_dan):
    keys = [k for k in plastic_surgery.public_keys() if k != head_carol.public]
    # A stranger's key in its place changes nothing: keys are found by fingerprint.
    keys.append(compliance_dan.public)
    expect_refused(
        plastic_surgery, plastic_surgery.statements, InvalidKey, 1, "no key for signer 3", keys=keys
    )


def test_a_removed_or_replaced_key_is_needed_while_it_signs(plastic_surgery, surgeon_bob):
    """Bob's first key signed Alice's removal (statement 5): the replay needs it to check it."""
    keys = [k for k in plastic_surgery.public_keys() if k != surgeon_bob.public]
    expect_refused(
        plastic_surgery, plastic_surgery.statements, InvalidKey, 4, "no key for signer 8", keys=keys
    )


# Rule 4: what each kind needs of its subject.


@pytest.mark.parametrize(
    "kind, subject, role, fields, reason",
    [
        ("admit", ALICE, "member", {}, "subject is already a member"),
        ("admit", ALICE, "head", {}, "subject is already a member"),
        ("role", ALICE, "member", {}, "subject already has this role"),
        ("role", DAN, "head", {}, "subject is not a member"),
        ("remove", DAN, "member", {}, "subject is not a member"),
        ("replace", DAN, "member", {"new": True}, "subject is not a member"),
        ("role", ALICE, "head", {"wrong_key": True}, "subject fingerprint is not the one admitted"),
        ("remove", ALICE, "member", {"wrong_key": True}, "not the one admitted"),
        ("replace", ALICE, "member", {"new": True, "wrong_key": True}, "not the one admitted"),
        ("remove", ALICE, "head", {}, "remove names another role than the one held"),
        ("remove", CAROL, "member", {}, "remove names another role than the one held"),
        ("replace", ALICE, "head", {"new": True}, "replace names another role than the one held"),
    ],
)
def test_each_kind_needs_its_subject(plastic_surgery, kind, subject, role, fields, reason):
    writer = plastic_surgery.branch(3)  # Carol head; Alice and Bob members; Dan a stranger
    overrides = {}
    key = IdentityKeyPair.generate() if fields.get("new") else None
    if fields.get("wrong_key"):
        stranger = IdentityKeyPair.generate().fingerprint
        overrides["replaces" if kind == "replace" else "subject_fingerprint"] = stranger
    statements = with_next(writer, kind, subject, role, by=CAROL, key=key, **overrides)
    expect_refused(writer, statements, InvalidEnvelope, 3, reason)


def test_one_key_one_member(plastic_surgery, nurse_alice, head_carol):
    writer = plastic_surgery.branch(3)
    for statements in (
        with_next(writer, "admit", DAN, "member", by=CAROL, key=nurse_alice),
        with_next(writer, "admit", DAN, "head", by=CAROL, key=head_carol),
        with_next(writer, "replace", BOB, "member", by=CAROL, key=nurse_alice),
    ):
        expect_refused(writer, statements, InvalidEnvelope, 3, "another member holds this key")


def test_one_key_one_member_at_a_time(plastic_surgery, nurse_alice):
    """The rule is about members at one point: once Alice has left, her old key is nobody's.

    (Whether a head should ever admit it again is R7's question, comparing
    fingerprints with the person: docs/crypto.md, section 9.)
    """
    writer = plastic_surgery.branch()
    writer.add("admit", DAN, "member", by=CAROL, key=nurse_alice)
    assert writer.replay().members[DAN].fingerprint == nurse_alice.fingerprint


# Rule 5: every member's admitted key is handed over, for the caller to wrap to.


def test_every_members_key_must_be_handed_over(plastic_surgery, nurse_alice, compliance_dan):
    keys = [k for k in plastic_surgery.public_keys() if k != nurse_alice.public]
    with raises_exactly(
        InvalidKey, "member 7: the key they were admitted with is missing"
    ) as caught:
        plastic_surgery.replay(3, keys=keys)
    assert caught.value.statement_index is None  # it is about the end, not a statement
    # Once Alice has left, her key is not needed any more, and not known either.
    chain = plastic_surgery.replay(keys=keys)
    assert ALICE not in chain.members
    assert nurse_alice.fingerprint in chain.ever_admitted
    with raises_exactly(InvalidKey):
        chain.key_of(nurse_alice.fingerprint)


def test_the_statement_index_names_the_first_fault(plastic_surgery):
    """Two faults: the error names the first, counted from 0, and its statement."""
    writer = plastic_surgery.branch(2)
    bad = writer.draft("admit", ALICE, "member", by=CAROL)
    worse = writer.draft("admit", BOB, "member", by=ALICE, seq=4, prev="cd" * 32)
    expect_refused(writer, [*writer.statements, bad, worse], InvalidEnvelope, 2, "already")
    with raises_exactly(InvalidEnvelope) as caught:
        replay_membership_chain(
            [*writer.statements, bad], admin_key=writer.admin.public, keys=writer.public_keys()
        )
    assert str(caught.value) == "statement 2 (admit user 7 as member): subject is already a member"
