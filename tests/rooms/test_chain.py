"""A department's membership chain as the server keeps it (docs/crypto.md §6).

Heads sign each change of membership at the head of the department's
chain; the institution's admin key appoints a head when there is none.
The server checks a statement against the membership tables, replays the
whole chain with it as clients will, and appends it under the department's
row lock: a statement at any other position is a conflict naming the
head, a repeat answers as the first time, and a statement no client could
verify is refused. Every refusal leaves everything as it was. Key
replacements are tests/rooms/test_key_replacement.py; the checks made
before the chain is consulted, tests/rooms/test_statements.py.
"""

import os

import pytest

from accounts.models import IdentityKey
from chat.events import event_frame
from chat.models import Event
from core import outbound
from core.crypto import ChainHead, IdentityKeyPair, SignedStatement, verify_statement
from core.errors import ErrorCode, RoundsError
from core.events import EventKind
from rooms import chain
from rooms.actions import check_set_role, do_admit_member
from rooms.models import Department
from rooms.models import MembershipStatement as StoredStatement
from tests.rooms.keyring import ADMIN, Keyed, department, set_admin_key, state, statements_path
from tests.support import Hospital, assert_refused, audit_entries, make_user, signed_statement

pytestmark = pytest.mark.django_db

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


# --- Appended at the head ----------------------------------------------------------------


def test_a_head_signs_an_admission_at_the_head_that_members_can_verify(appointed: Keyed):
    k = appointed
    h = k.h
    signed = k.signed_by(k.statement())
    digest = SignedStatement.from_dict(signed).hash
    response = k.post_statement("head_carol", signed)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "kind": "admit",
        "subject": h.surgeon_bob.pk,
        "seq": 2,
        "hash": digest,
    }
    stored = StoredStatement.objects.get(pk=body["id"])
    assert (stored.department_id, stored.subject_id, stored.signer_id) == (
        h.plastic.pk,
        h.surgeon_bob.pk,
        h.head_carol.pk,
    )
    assert (stored.seq, stored.hash, stored.signed) == (2, digest, signed)
    assert (department(k).chain_seq, department(k).chain_head) == (2, digest)
    entry = audit_entries("key.statement_signed")[-1]
    assert entry.actor_id == h.head_carol.pk
    assert entry.data == {
        "kind": "admit",
        "subject": h.surgeon_bob.pk,
        "role": "member",
        "seq": 2,
        "signed_by": "head",
    }

    listed = k.api("nurse_alice").get(statements_path(h))
    assert listed.status_code == 200
    listing = listed.json()
    appointment, item = listing["statements"]
    assert (appointment["seq"], item["seq"]) == (1, 2)
    assert appointment["signed"]["statement"]["signer_user"] is None
    assert item["id"] == body["id"] and item["signed"] == signed
    assert listing["head"] == {"seq": 2, "hash": digest}
    # Every key the statements name comes with them, for the client to check by fingerprint.
    assert listing["keys"] == {
        k.pairs[name].fingerprint: k.pairs[name].public.to_dict()
        for name in ("head_carol", "surgeon_bob")
    }
    chain = k.chain()
    assert chain.head == ChainHead(2, digest)
    assert chain.roles() == {h.head_carol.pk: "head", h.surgeon_bob.pk: "member"}
    verified = verify_statement(
        SignedStatement.from_dict(item["signed"]), k.pairs["head_carol"].public
    )
    assert verified.subject_fingerprint == k.pairs["surgeon_bob"].fingerprint


def membership_events(k: Keyed) -> list[Event]:
    return list(
        Event.objects.filter(
            department_id=k.h.plastic.pk, kind=EventKind.MEMBERSHIP_SIGNED
        ).order_by("seq")
    )


def test_a_kept_statement_is_announced_to_the_department_once(appointed: Keyed):
    """membership.signed (docs/protocol.md): members' screens learn that the chain moved,
    once; a repeat, like a refusal, announces nothing."""
    k = appointed
    h = k.h
    (appointment,) = membership_events(k)
    assert appointment.payload["by"] is None  # the institution key appointed Carol
    assert appointment.payload["kind"] == "admit"
    assert appointment.payload["subject"] == h.head_carol.pk
    signed = k.signed_by(k.statement())
    response = k.post_statement("head_carol", signed)
    assert response.status_code == 201, response.content
    body = response.json()
    _, admission = membership_events(k)
    assert admission.payload == {
        "kind": "admit",
        "subject": h.surgeon_bob.pk,
        "seq": 2,
        "hash": body["hash"],
        "by": {"id": h.head_carol.pk, "username": "head_carol"},
    }
    frame = event_frame(admission)
    outbound.validate_outbound(frame)
    assert frame["type"] == "membership.signed" and frame["department"] == h.plastic.pk
    assert k.post_statement("head_carol", signed).status_code == 201
    stale = k.signed_by(
        k.statement(
            seq=2,
            prev=appointment.payload["hash"],
            subject_user=h.nurse_alice.pk,
            subject_fingerprint=k.pairs["nurse_alice"].fingerprint,
        )
    )
    assert k.post_statement("head_carol", stale).status_code == 409
    assert membership_events(k) == [appointment, admission]


def test_the_admin_key_appoints_the_first_head(keyed: Keyed):
    k = keyed
    set_admin_key(k)
    response = k.attest("head_carol", "head", None)
    assert response.status_code == 201, response.content
    assert response.json()["seq"] == 1
    stored = StoredStatement.objects.get(pk=response.json()["id"])
    assert stored.signer_id is None and stored.subject_id == k.h.head_carol.pk
    [entry] = audit_entries("key.statement_signed")
    assert entry.actor_id == k.h.admin_zoe.pk
    assert entry.data["signed_by"] == "admin_key"
    listed = k.api("nurse_alice").get(statements_path(k.h)).json()
    assert listed["admin"] == {
        "fingerprint": k.pairs[ADMIN].fingerprint,
        "public": k.pairs[ADMIN].public.to_dict(),
    }
    # Carol, now in the chain, admits Bob with her own key.
    assert k.attest("surgeon_bob").status_code == 201
    assert k.chain().roles() == {k.h.head_carol.pk: "head", k.h.surgeon_bob.pk: "member"}


# --- Anywhere else: a conflict naming the head ----------------------------------------------


def _behind(k: Keyed) -> ChainHead:
    """After statement 2: a second statement at position 3."""
    return ChainHead(2, k.h.chains[k.h.plastic.pk][1].hash)


def _beyond(k: Keyed) -> ChainHead:
    """After a statement 4 the server never kept."""
    return ChainHead(4, "cd" * 32)


def _wrong_prev(k: Keyed) -> ChainHead:
    """Position 4, the next one, but linked to statement 2."""
    return ChainHead(3, k.h.chains[k.h.plastic.pk][1].hash)


@pytest.mark.parametrize(
    "after", [_behind, _beyond, _wrong_prev], ids=["behind", "beyond", "prev not the head"]
)
def test_a_statement_away_from_the_head_is_a_conflict_naming_it(attested: Keyed, after):
    k = attested
    k.admit_in_tables("locum_fred")
    signed = signed_statement(
        k.h, k.h.plastic, "locum_fred", "member", signer="head_carol", head=after(k)
    )
    before = state(k.h)
    body = assert_refused(k.post_statement("head_carol", signed.to_dict()), 409, "conflict")
    assert body["data"] == {"head": k.head.to_dict()} and k.head.seq == 3
    assert state(k.h) == before


def test_of_two_statements_signed_at_one_head_the_second_is_a_conflict(attested: Keyed):
    """Two heads (or two devices) sign at the same head: the first kept wins the position,
    the other signs again at the new head."""
    k = attested
    for name in ("locum_fred", "locum_gina"):
        k.admit_in_tables(name)
    fred = signed_statement(k.h, k.h.plastic, "locum_fred", "member", signer="head_carol")
    gina = signed_statement(k.h, k.h.plastic, "locum_gina", "member", signer="head_carol")
    assert fred.statement.seq == gina.statement.seq == 4
    first = k.post_statement("head_carol", fred.to_dict())
    assert first.status_code == 201 and first.json()["seq"] == 4
    before = state(k.h)
    body = assert_refused(k.post_statement("head_carol", gina.to_dict()), 409, "conflict")
    assert body["data"] == {"head": {"seq": 4, "hash": fred.hash}}
    assert state(k.h) == before
    again = k.attest("locum_gina")
    assert again.status_code == 201 and again.json()["seq"] == 5


def test_a_statement_overtaken_while_it_waited_for_the_lock_is_a_conflict(
    hospital: Hospital, monkeypatch
):
    """Two heads' statements for one position both pass the checks made before the
    department's lock; the one that takes the lock second finds the head moved. The
    race is played in order (the first append runs just before the second's), so
    the test does not depend on how threads are scheduled."""
    h = hospital
    signed = []
    for name in ("locum_fred", "locum_gina"):
        user = make_user(name)
        do_admit_member(h.head_carol, h.plastic.pk, user, "member")
        pair = IdentityKeyPair.generate()
        IdentityKey.objects.create(user=user, fingerprint=pair.fingerprint, **pair.public.to_dict())
        setattr(h, name, user)
        h.keys[name] = pair
        signed.append(signed_statement(h, h.plastic, name, "member", signer="head_carol"))
    fred, gina = signed
    append = chain.do_append_statement
    first: list[dict] = []

    def fred_first(actor, department_id, parsed):
        first.append(append(actor, department_id, fred))
        return append(actor, department_id, parsed)

    monkeypatch.setattr(chain, "do_append_statement", fred_first)
    with pytest.raises(RoundsError) as refused:
        chain.check_post_statement(h.head_carol, h.plastic.pk, gina.to_dict())
    (kept,) = first
    assert kept["seq"] == 4
    assert refused.value.code == ErrorCode.CONFLICT
    assert refused.value.data == {"head": {"seq": 4, "hash": kept["hash"]}}
    assert StoredStatement.objects.filter(department=h.plastic, seq__gt=3).count() == 1
    assert Department.objects.get(pk=h.plastic.pk).chain_head == kept["hash"]
    # The hospital's own statements were stored directly; only the winner is audited.
    assert len(audit_entries("key.statement_signed")) == 1


# --- Repeats ----------------------------------------------------------------------------


def test_the_same_statement_posted_twice_is_kept_and_audited_once(appointed: Keyed):
    """A client that lost the answer posts again: it gets the same answer, even once the
    chain has moved on."""
    k = appointed
    signed = k.signed_by(k.statement())
    first = k.post_statement("head_carol", signed)
    assert first.status_code == 201, first.content
    before = state(k.h)
    again = k.post_statement("head_carol", signed)
    assert again.status_code == 201 and again.json() == first.json()
    assert state(k.h) == before
    assert k.attest("nurse_alice").status_code == 201
    late = k.post_statement("head_carol", signed)
    assert late.status_code == 201 and late.json() == first.json()
    assert StoredStatement.objects.filter(department=k.h.plastic).count() == 3
    assert department(k).chain_seq == 3
    assert [e.data["seq"] for e in audit_entries("key.statement_signed")] == [1, 2, 3]


def test_a_repeat_is_answered_even_once_the_tables_have_moved_on(attested: Keyed):
    """Carol's client lost the answer to Fred's admission; by its retry Fred has left the
    tables. The statement is kept: the retry learns so, it is not told it does not fit."""
    k = attested
    k.admit_in_tables("locum_fred")
    signed = signed_statement(k.h, k.h.plastic, "locum_fred", "member", signer="head_carol")
    first = k.post_statement("head_carol", signed.to_dict())
    assert first.status_code == 201, first.content
    left = k.api("locum_fred").delete(
        f"/api/departments/{k.h.plastic.pk}/members/{k.h.locum_fred.pk}"
    )
    assert left.status_code == 200, left.content
    before = state(k.h)
    again = k.post_statement("head_carol", signed.to_dict())
    assert again.status_code == 201, again.content
    assert again.json() == first.json()
    assert state(k.h) == before


# --- Statements the chain does not allow ------------------------------------------------------


def _by_a_head_the_chain_does_not_hold(k: Keyed) -> tuple[str, dict]:
    """Alice is head in the tables, still a member in the chain."""
    check_set_role(k.h.head_carol, k.h.plastic.pk, k.h.nurse_alice.pk, "head")
    k.admit_in_tables("locum_fred")
    signed = signed_statement(k.h, k.h.plastic, "locum_fred", "member", signer="nurse_alice")
    return "nurse_alice", signed.to_dict()


def _admin_appointing_beside_a_head(k: Keyed) -> tuple[str, dict]:
    """Carol is head: the admin key appoints no second one."""
    check_set_role(k.h.head_carol, k.h.plastic.pk, k.h.surgeon_bob.pk, "head")
    signed = signed_statement(k.h, k.h.plastic, "surgeon_bob", "head", signer=None, kind="role")
    return "admin_zoe", signed.to_dict()


def _admin_replacing_a_members_key(role: str):
    """As a member's; or as a head's, Bob being head in the tables (not in the chain)."""

    def make(k: Keyed) -> tuple[str, dict]:
        if role == "head":
            check_set_role(k.h.head_carol, k.h.plastic.pk, k.h.surgeon_bob.pk, "head")
        old = k.pairs["surgeon_bob"]
        k.publish("surgeon_bob", replace=True)
        signed = signed_statement(
            k.h, k.h.plastic, "surgeon_bob", role, signer=None, kind="replace", replaces=old
        )
        return "admin_zoe", signed.to_dict()

    return make


def _issued_before_the_head(k: Keyed) -> tuple[str, dict]:
    k.admit_in_tables("locum_fred")
    st = k.statement(
        subject_user=k.h.locum_fred.pk,
        subject_fingerprint=k.pairs["locum_fred"].fingerprint,
        issued_at="2020-01-06T08:00:00+00:00",
    )
    return "head_carol", k.signed_by(st)


def _removing_someone_never_admitted_by_signature(k: Keyed) -> tuple[str, dict]:
    """intern_erin left before any statement: removing her would break every client's chain."""
    k.publish("intern_erin")
    signed = signed_statement(
        k.h, k.h.plastic, "intern_erin", "member", signer="head_carol", kind="remove"
    )
    return "head_carol", signed.to_dict()


NOT_IN_THE_CHAIN = {
    "signer no head in the chain": _by_a_head_the_chain_does_not_hold,
    "admin key beside a head": _admin_appointing_beside_a_head,
    "admin key replacing a member's key": _admin_replacing_a_members_key("member"),
    "admin key replacing a member's key as a head's": _admin_replacing_a_members_key("head"),
    "issued before the head": _issued_before_the_head,
    "removing someone never admitted": _removing_someone_never_admitted_by_signature,
}


@pytest.mark.parametrize("make", NOT_IN_THE_CHAIN.values(), ids=NOT_IN_THE_CHAIN.keys())
def test_a_statement_the_chain_does_not_allow_is_refused(attested: Keyed, make):
    k = attested
    caller, signed = make(k)
    before = state(k.h)
    assert_refused(k.post_statement(caller, signed), 403, "forbidden")
    assert state(k.h) == before
    assert k.chain().head == k.head


def test_a_statement_that_does_not_follow_the_signed_chain_is_refused(keyed: Keyed):
    """Carol was never appointed by the admin key: her signature admits no one."""
    k = keyed
    set_admin_key(k)
    before = state(k.h)
    assert_refused(k.attest("surgeon_bob"), 403, "forbidden")
    assert state(k.h) == before
