"""The membership chain replayed: what it remembers, and the heads it is checked against.

Its rules, one refusal at a time, are test_chain_rules.py's.

Most tests start from department 12's chain in conftest.py (`plastic_surgery`):
the admin key appoints head_carol, she admits nurse_alice and surgeon_bob,
makes Bob a head, Bob removes Alice, and Carol replaces Bob's key after he
lost his phone. A test writes on a copy (`branch`) and lets the replay judge.
"""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.crypto import (
    EMPTY_HEAD,
    GENESIS,
    AttestedMember,
    ChainFork,
    ChainHead,
    ChainRollback,
    ChainWithheld,
    IdentityKeyPair,
    InvalidEnvelope,
    InvalidKey,
    canonical_json,
    replay_membership_chain,
    verify_membership_chain,
)
from tests.crypto.support import (
    ADMIN,
    ALICE,
    BOB,
    CAROL,
    DAN,
    ChainWriter,
    raises_exactly,
)

# --- The story, replayed ------------------------------------------------------------------


def test_the_chain_replays_to_its_members(
    plastic_surgery, institution_admin, head_carol, nurse_alice, surgeon_bob, surgeon_bob_new_phone
):
    chain = plastic_surgery.replay()
    assert chain.department == 12
    assert chain.head == ChainHead(6, plastic_surgery.statements[-1].hash)
    assert chain.members == {
        CAROL: AttestedMember("head", head_carol.fingerprint),
        BOB: AttestedMember("head", surgeon_bob_new_phone.fingerprint),
    }
    assert chain.roles() == {CAROL: "head", BOB: "head"}
    assert verify_membership_chain(
        plastic_surgery.statements,
        admin_key=institution_admin.public,
        keys=plastic_surgery.public_keys(),
    ) == {CAROL: "head", BOB: "head"}
    # Alice left and Bob's old phone was replaced, but both keys were a member's once:
    # a wrap either made then is still from someone the chain admitted.
    admitted = {
        head_carol.fingerprint,
        nurse_alice.fingerprint,
        surgeon_bob.fingerprint,
        surgeon_bob_new_phone.fingerprint,
    }
    assert chain.ever_admitted == admitted
    assert set(chain.keys) == admitted | {institution_admin.fingerprint}
    for key in (head_carol, nurse_alice, surgeon_bob, surgeon_bob_new_phone, institution_admin):
        assert chain.key_of(key.fingerprint) == key.public


def test_keys_are_found_by_fingerprint_only(plastic_surgery, compliance_dan):
    """Compliance Dan's key was handed over too, but no statement names it."""
    chain = plastic_surgery.replay()
    with raises_exactly(InvalidKey):
        chain.key_of(compliance_dan.fingerprint)
    with raises_exactly(InvalidKey):
        chain.key_of("ab" * 32)


def test_member_at_every_point(
    plastic_surgery, head_carol, nurse_alice, surgeon_bob, surgeon_bob_new_phone
):
    chain = plastic_surgery.replay()
    carol = AttestedMember("head", head_carol.fingerprint)
    alice = AttestedMember("member", nurse_alice.fingerprint)
    bob = AttestedMember("member", surgeon_bob.fingerprint)
    bob_head = AttestedMember("head", surgeon_bob.fingerprint)
    bob_new_phone = AttestedMember("head", surgeon_bob_new_phone.fingerprint)
    expected = {
        # seq: Carol, Alice, Bob, Dan
        0: (None, None, None, None),
        1: (carol, None, None, None),
        2: (carol, alice, None, None),
        3: (carol, alice, bob, None),
        4: (carol, alice, bob_head, None),
        5: (carol, None, bob_head, None),
        6: (carol, None, bob_new_phone, None),
    }
    for seq, members in expected.items():
        actual = tuple(chain.member_at(user, seq) for user in (CAROL, ALICE, BOB, DAN))
        assert actual == members, seq


def test_last_exclusion_and_hashes_at_every_point(plastic_surgery):
    chain = plastic_surgery.replay()
    # Alice's removal is statement 5, Bob's new key statement 6.
    assert [chain.last_exclusion_at(seq) for seq in range(8)] == [0, 0, 0, 0, 0, 5, 6, 6]
    assert chain.hash_at(0) == GENESIS
    for seq, signed in enumerate(plastic_surgery.statements, start=1):
        assert chain.hash_at(seq) == signed.hash
        assert plastic_surgery.replay(seq).head == ChainHead(seq, signed.hash)
    assert chain.hash_at(7) is None
    assert chain.hash_at(-1) is None


def test_spans_across_role_changes_removal_readmission_and_replacement(
    new_chain, head_carol, nurse_alice
):
    """Alice is made head, made member again, removed, readmitted with a new key, then rekeyed
    back to her first key: member_at gives each state from the statement that made it."""
    alice_new_phone = IdentityKeyPair.generate()
    writer = new_chain()
    writer.add("admit", CAROL, "head", by=ADMIN)
    writer.add("admit", ALICE, "member", by=CAROL)
    writer.add("role", ALICE, "head", by=CAROL)
    writer.add("role", ALICE, "member", by=ALICE)  # a head may step down herself
    writer.add("remove", ALICE, "member", by=CAROL)
    writer.add("admit", ALICE, "member", by=CAROL, key=alice_new_phone)
    writer.add("replace", ALICE, "member", by=CAROL, key=nurse_alice)
    chain = writer.replay()
    first, second = nurse_alice.fingerprint, alice_new_phone.fingerprint
    assert [chain.member_at(ALICE, seq) for seq in range(8)] == [
        None,
        None,
        AttestedMember("member", first),
        AttestedMember("head", first),
        AttestedMember("member", first),
        None,
        AttestedMember("member", second),
        AttestedMember("member", first),
    ]
    assert [chain.last_exclusion_at(seq) for seq in range(8)] == [0, 0, 0, 0, 0, 5, 5, 7]
    assert chain.members == {
        CAROL: AttestedMember("head", head_carol.fingerprint),
        ALICE: AttestedMember("member", first),
    }
    assert chain.ever_admitted == {head_carol.fingerprint, first, second}


def test_the_empty_chain(institution_admin):
    chain = replay_membership_chain([], admin_key=institution_admin.public, keys=[])
    assert chain.head == EMPTY_HEAD == ChainHead(0, GENESIS)
    assert chain.department is None
    assert chain.members == {} and chain.ever_admitted == frozenset()
    assert chain.hash_at(0) == GENESIS and chain.hash_at(1) is None
    assert chain.member_at(CAROL, 0) is None
    assert chain.last_exclusion_at(0) == 0
    chain.check_extends(EMPTY_HEAD)
    chain.check_covers(EMPTY_HEAD)
    assert verify_membership_chain([], admin_key=institution_admin.public, keys=[]) == {}


# --- Heads this device, or another member, verified ---------------------------------------


@pytest.fixture(scope="module")
def forked(plastic_surgery):
    """The chain as a server could show it to someone else: another statement 4 and on."""
    writer = plastic_surgery.branch(3)
    writer.add("admit", DAN, "member", by=CAROL)
    writer.add("role", DAN, "head", by=CAROL)
    return writer


def test_check_extends_accepts_the_same_chain_or_a_longer_one(plastic_surgery):
    chain = plastic_surgery.replay()
    for seq in range(7):
        chain.check_extends(plastic_surgery.head_at(seq))
    chain.check_extends(EMPTY_HEAD)


def test_check_extends_refuses_a_shorter_chain(plastic_surgery):
    for served in range(6):
        chain = plastic_surgery.replay(served)
        with raises_exactly(ChainRollback):
            chain.check_extends(plastic_surgery.head)
        chain.check_extends(plastic_surgery.head_at(served))


def test_check_extends_refuses_another_statement_at_a_known_position(plastic_surgery, forked):
    chain = forked.replay()
    chain.check_extends(plastic_surgery.head_at(3))  # they agree up to 3
    with raises_exactly(ChainFork):
        chain.check_extends(plastic_surgery.head_at(4))
    with raises_exactly(ChainFork):
        chain.check_extends(plastic_surgery.head_at(5))
    # Shorter than the head known: a rollback, whatever the statements.
    with raises_exactly(ChainRollback):
        chain.check_extends(plastic_surgery.head_at(6))
    with raises_exactly(ChainFork):
        plastic_surgery.replay().check_extends(forked.head)


def test_check_extends_refuses_a_head_with_another_hash(plastic_surgery):
    chain = plastic_surgery.replay()
    head = plastic_surgery.head_at(3)
    with raises_exactly(ChainFork):
        chain.check_extends(ChainHead(3, hashlib.sha256(head.hash.encode()).hexdigest()))


def test_check_covers(plastic_surgery, forked):
    chain = plastic_surgery.replay(4)
    for seq in range(5):
        chain.check_covers(plastic_surgery.head_at(seq))
    for seq in (5, 6):
        with raises_exactly(ChainWithheld):
            chain.check_covers(plastic_surgery.head_at(seq))
    with raises_exactly(ChainFork):
        chain.check_covers(forked.head_at(4))
    with raises_exactly(ChainWithheld):
        chain.check_covers(forked.head)  # 5: beyond this chain, whatever it holds
    with raises_exactly(ChainFork):
        forked.replay().check_covers(plastic_surgery.head_at(5))


# --- Chain heads --------------------------------------------------------------------------


def test_chain_head_form():
    assert ChainHead(0, GENESIS) == EMPTY_HEAD
    assert GENESIS == "0" * 64
    assert ChainHead(4, "4e" * 32).to_dict() == {"seq": 4, "hash": "4e" * 32}
    assert ChainHead(2**53 - 1, "ff" * 32).seq == 2**53 - 1


@pytest.mark.parametrize(
    "seq, value",
    [
        (-1, GENESIS),
        (True, "ab" * 32),
        (False, GENESIS),
        ("1", "ab" * 32),
        (1.0, "ab" * 32),
        (None, GENESIS),
        (0, "ab" * 32),  # seq 0 is the empty chain, whose hash is GENESIS
        (1, GENESIS),  # and GENESIS is only the empty chain's
        (1, "AB" * 32),
        (1, "ab" * 31),
        (1, "ab" * 32 + "a"),
        (1, "zz" * 32),
        (1, None),
        (1, bytes(32)),
    ],
)
def test_chain_head_is_strict(seq, value):
    with raises_exactly(InvalidEnvelope):
        ChainHead(seq, value)


def test_chain_head_seq_fits_javascript():
    with raises_exactly(InvalidEnvelope):
        ChainHead(2**53, "ab" * 32)


# --- Random histories against a model -----------------------------------------------------

POOL_USERS = (CAROL, ALICE, BOB, DAN, 11)


@pytest.fixture(scope="module")
def pool():
    """Three keys for each of five users: whatever a history admits or replaces them with."""
    return {user: [IdentityKeyPair.generate() for _ in range(3)] for user in POOL_USERS}


def _step(data, writer, model, pool):
    """Draw one valid statement for the membership `model`; add it; return what changed."""
    heads = sorted(user for user, (role, _) in model.items() if role == "head")
    outsiders = [user for user in POOL_USERS if user not in model]
    if not heads:
        # Only the admin key may act: it appoints a head (a new one, or a member).
        subject = data.draw(st.sampled_from(POOL_USERS))
        if subject in model:
            writer.add("role", subject, "head", by=ADMIN)
        else:
            key = data.draw(st.sampled_from(pool[subject]))
            writer.add("admit", subject, "head", by=ADMIN, key=key)
        return
    kinds = ["role", "remove", "replace"] + (["admit"] if outsiders else [])
    kind = data.draw(st.sampled_from(kinds))
    by = data.draw(st.sampled_from(heads))
    if kind == "admit":
        subject = data.draw(st.sampled_from(outsiders))
        role = data.draw(st.sampled_from(["head", "member"]))
        writer.add("admit", subject, role, by=by, key=data.draw(st.sampled_from(pool[subject])))
        return
    subject = data.draw(st.sampled_from(sorted(model)))
    role, fingerprint = model[subject]
    if kind == "role":
        writer.add("role", subject, "member" if role == "head" else "head", by=by)
    elif kind == "remove":
        writer.add("remove", subject, role, by=by)
    else:
        new = data.draw(st.sampled_from([k for k in pool[subject] if k.fingerprint != fingerprint]))
        if role == "head" and data.draw(st.booleans()):
            by = ADMIN  # the admin key may rekey a head, even with other heads about
        writer.add("replace", subject, role, by=by, key=new)


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_histories_replay_to_what_a_model_computes(pool, institution_admin, data):
    writer = ChainWriter(institution_admin, {user: keys[0] for user, keys in pool.items()})
    # The model: user -> (role, fingerprint), after each statement.
    model: dict[int, tuple[str, str]] = {}
    snapshots = [{}]
    exclusions = []
    admitted = set()
    for _ in range(data.draw(st.integers(1, 14), label="length")):
        _step(data, writer, model, pool)
        last = writer.statements[-1].statement
        if last.kind == "remove":
            del model[last.subject_user]
        else:
            model[last.subject_user] = (last.role, last.subject_fingerprint)
            admitted.add(last.subject_fingerprint)
        if last.kind in ("remove", "replace"):
            exclusions.append(last.seq)
        snapshots.append(dict(model))

    chain = writer.replay()
    assert chain.head == writer.head
    assert chain.members == {u: AttestedMember(*m) for u, m in model.items()}
    assert chain.ever_admitted == admitted
    for seq, snapshot in enumerate(snapshots):
        for user in POOL_USERS:
            expected = snapshot.get(user)
            assert chain.member_at(user, seq) == (expected and AttestedMember(*expected))
        assert chain.last_exclusion_at(seq) == max([0, *(e for e in exclusions if e <= seq)])
        assert chain.hash_at(seq) == (writer.statements[seq - 1].hash if seq else GENESIS)
        chain.check_extends(writer.head_at(seq))
    # Hashes are of the statement and its signature, as sent.
    for signed in writer.statements:
        expected = hashlib.sha256(b"rounds-chain-v2\0" + canonical_json(signed.to_dict()))
        assert signed.hash == expected.hexdigest()
