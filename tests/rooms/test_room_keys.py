"""Room key versions and their wraps as the server keeps them (docs/crypto.md §5, §7).

A member the chain holds publishes each version as its signed record, made
at the chain's current head and committing to the key, with a wrap of that
commitment for every attested member and the compliance key; the server
refuses a version that leaves anyone out, reaches a non-member, skips a
number, or whose wraps are not the caller's or carry another commitment.
Every refusal leaves everything as it was. The record itself is
tests/rooms/test_key_records.py; removals and history,
tests/rooms/test_key_history.py.
"""

import pytest

from accounts.models import IdentityKey
from chat.events import event_frame
from chat.models import Event
from core import outbound
from core.crypto import (
    CONTEXT_WRAP,
    ChainHead,
    IdentityKeyPair,
    RoomKey,
    SignedKeyVersion,
    WrapRecord,
    b64encode,
    unwrap_room_key,
)
from core.events import EventKind
from rooms import keys as keys_module
from rooms.models import Department, KeyWrap, RoomKeyVersion
from tests.rooms.keyring import (
    COMPLIANCE,
    EVERYONE,
    MEMBERS,
    Keyed,
    keys_path,
    open_my_wraps,
    set_admin_key,
    set_compliance,
    state,
)
from tests.support import assert_refused, audit_entries
from tests.support.tamper import flip_b64

pytestmark = pytest.mark.django_db


# --- Publishing a version ----------------------------------------------------------------


def test_a_member_publishes_version_one_for_everyone(attested: Keyed):
    k = attested
    h = k.h
    record = k.record("surgeon_bob", 1)
    response = k.publish_version("surgeon_bob", 1, EVERYONE, record=record)
    assert response.status_code == 201, response.content
    assert response.json() == {"department": h.plastic.pk, "key_version": 1, "wraps": 4}

    department = Department.objects.get(pk=h.plastic.pk)
    commitment = b64encode(k.key(1).commitment)
    assert (department.key_version, department.rotation_required) == (1, False)
    assert (department.key_commitment, department.key_chain_seq) == (commitment, 3)
    stored = RoomKeyVersion.objects.get(department=h.plastic, version=1)
    assert (stored.record, stored.commitment, stored.chain_seq) == (record, commitment, 3)
    event = Event.objects.filter(department=h.plastic).order_by("-seq").first()
    assert event.kind == EventKind.KEY_ROTATED
    frame = event_frame(event)
    outbound.validate_outbound(frame)
    assert frame["key_version"] == 1
    assert frame["by"] == {"id": h.surgeon_bob.pk, "username": "surgeon_bob"}
    [entry] = audit_entries("key.version_published")
    assert entry.actor_id == h.surgeon_bob.pk
    assert entry.department_id == h.plastic.pk
    assert entry.data == {"version": 1, "wraps": 4, "chain_seq": 3}

    # The server knows who each wrap is for; the compliance key belongs to no user.
    assert sorted(
        KeyWrap.objects.values_list("recipient_user_id", flat=True), key=lambda u: u or 0
    ) == [None, *sorted(k.user(n).pk for n in MEMBERS)]

    for name in MEMBERS:
        assert open_my_wraps(k, name) == {1: k.key(1)}, name

    compliance_wrap = KeyWrap.objects.get(recipient_user=None)
    opened = unwrap_room_key(
        WrapRecord.from_dict(compliance_wrap.record),
        recipient=k.pairs[COMPLIANCE],
        wrapper=k.pairs["surgeon_bob"].public,
    )
    assert opened == k.key(1)


def test_the_keys_of_a_department_as_a_member_sees_them(version_one: Keyed):
    k = version_one
    body = k.api("nurse_alice").get(keys_path(k.h)).json()
    assert body["key_version"] == 1
    assert body["rotation_required"] is False
    assert (
        body["chain"] == k.head.to_dict() == {"seq": 3, "hash": k.h.chains[k.h.plastic.pk][-1].hash}
    )
    [version] = body["versions"]
    assert version["version"] == 1
    record = SignedKeyVersion.from_dict(version["signed"]).record
    assert (record.creator_user, record.head, record.commitment) == (
        k.h.surgeon_bob.pk,
        ChainHead(3, body["chain"]["hash"]),
        k.key(1).commitment,
    )
    assert body["compliance"] == {
        "fingerprint": k.pairs[COMPLIANCE].fingerprint,
        "public": k.pairs[COMPLIANCE].public.to_dict(),
    }
    members = {m["user"]: m for m in body["members"]}
    # intern_erin was removed: she is not a member any more.
    assert set(members) == {k.user(n).pk for n in MEMBERS}
    for name in MEMBERS:
        member = members[k.user(name).pk]
        assert member["fingerprint"] == k.pairs[name].fingerprint
        assert member["identity"] == k.pairs[name].public.to_dict()
        assert member["attested"] is True
    assert members[k.h.head_carol.pk]["role"] == "head"
    assert len(body["my_wraps"]) == 1
    assert body["wrappers"] == {
        k.pairs["surgeon_bob"].fingerprint: {
            "user": k.h.surgeon_bob.pk,
            "public": k.pairs["surgeon_bob"].public.to_dict(),
        }
    }


def test_a_member_without_an_identity_is_listed_but_not_required(bare: Keyed):
    for name in ("head_carol", "surgeon_bob"):
        bare.publish(name)
    set_compliance(bare)
    set_admin_key(bare)
    assert bare.attest("head_carol", "head", None).status_code == 201
    assert bare.attest("surgeon_bob").status_code == 201
    response = bare.publish_version("head_carol", 1, ("head_carol", "surgeon_bob", COMPLIANCE))
    assert response.status_code == 201, response.content
    body = bare.api("nurse_alice").get(keys_path(bare.h)).json()
    alice = next(m for m in body["members"] if m["user"] == bare.h.nurse_alice.pk)
    assert alice["identity"] is None and alice["fingerprint"] is None
    assert alice["attested"] is False
    assert body["my_wraps"] == []


@pytest.mark.parametrize(
    ("left_out", "named"),
    [("nurse_alice", "nurse_alice"), (COMPLIANCE, "compliance")],
)
def test_a_version_that_leaves_someone_out_is_refused(attested: Keyed, left_out: str, named: str):
    before = state(attested.h)
    recipients = tuple(n for n in EVERYONE if n != left_out)
    body = assert_refused(
        attested.publish_version("surgeon_bob", 1, recipients), 409, "wraps_incomplete"
    )
    expected = "compliance" if named == "compliance" else str(attested.user(named).pk)
    assert body["data"] == {"missing": [expected]}
    assert state(attested.h) == before


def test_a_member_whose_admission_is_unsigned_is_allowed_but_not_required(attested: Keyed):
    """Clients wrap only for members a head admitted by signature; the server asks no more."""
    k = attested
    fred = k.admit_in_tables("locum_fred")
    members = {m["user"]: m for m in k.api("surgeon_bob").get(keys_path(k.h)).json()["members"]}
    assert members[fred.pk]["attested"] is False
    assert members[k.h.nurse_alice.pk]["attested"] is True
    response = k.publish_version("surgeon_bob", 1, EVERYONE)
    assert response.status_code == 201, response.content

    # Once Carol signs Fred's admission, every later version must include him.
    assert k.attest("locum_fred").status_code == 201
    missing = k.publish_version("surgeon_bob", 2, EVERYONE)
    assert assert_refused(missing, 409, "wraps_incomplete")["data"] == {"missing": [str(fred.pk)]}
    response = k.publish_version("surgeon_bob", 2, (*EVERYONE, "locum_fred"))
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("outsider", ["intern_erin", "nurse_ines"])
def test_a_wrap_for_a_non_member_is_refused(attested: Keyed, outsider: str):
    attested.publish(outsider)
    before = state(attested.h)
    response = attested.publish_version("surgeon_bob", 1, (*EVERYONE, outsider))
    assert_refused(response, 400, "invalid_request")
    assert state(attested.h) == before


def test_a_wrap_sent_twice_to_one_recipient_is_refused(attested: Keyed):
    before = state(attested.h)
    response = attested.publish_version("surgeon_bob", 1, (*EVERYONE, "nurse_alice"))
    assert_refused(response, 400, "invalid_request")
    assert state(attested.h) == before


def _forged_by_alice_as_bob(k: Keyed) -> dict:
    """A record that names bob as wrapper but carries alice's signature."""
    honest = WrapRecord.from_dict(k.wrap(1, "surgeon_bob", "nurse_alice"))
    signature = k.pairs["nurse_alice"].sign(CONTEXT_WRAP, honest.signed_bytes())
    return {**honest.to_dict(), "sig": b64encode(signature)}


BAD_SIGNATURES = {
    "signed by someone else": _forged_by_alice_as_bob,
    "signature flipped": lambda k: {
        **(w := k.wrap(1, "surgeon_bob", "nurse_alice")),
        "sig": flip_b64(w["sig"]),
    },
    "sealed key flipped": lambda k: {
        **(w := k.wrap(1, "surgeon_bob", "nurse_alice")),
        "sealed": flip_b64(w["sealed"], 40),
    },
    "recipient changed": lambda k: {
        **k.wrap(1, "surgeon_bob", "nurse_alice"),
        "recipient_fp": k.pairs["head_carol"].fingerprint,
    },
    "commitment changed": lambda k: {
        **(w := k.wrap(1, "surgeon_bob", "nurse_alice")),
        "commitment": flip_b64(w["commitment"]),
    },
}


@pytest.mark.parametrize("make", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_a_wrap_whose_signature_fails_is_refused(attested: Keyed, make):
    wraps = [attested.wrap(1, "surgeon_bob", n) for n in ("head_carol", "surgeon_bob", COMPLIANCE)]
    wraps.append(make(attested))
    before = state(attested.h)
    response = attested.publish_version("surgeon_bob", 1, (), wraps=wraps)
    assert_refused(response, 400, "bad_signature")
    assert state(attested.h) == before


def test_a_wrap_made_by_another_member_is_refused(attested: Keyed):
    """Alice's genuine wrap, posted by bob: wraps must be the caller's own."""
    wraps = attested.wraps(1, "surgeon_bob", ("head_carol", "surgeon_bob", COMPLIANCE))
    wraps.append(attested.wrap(1, "nurse_alice", "nurse_alice"))
    before = state(attested.h)
    response = attested.publish_version("surgeon_bob", 1, (), wraps=wraps)
    assert_refused(response, 400, "bad_signature")
    assert state(attested.h) == before


def test_a_wrap_for_another_department_is_refused(attested: Keyed):
    k = attested
    vascular_key = k.key(1, department=k.h.vascular.pk)
    wraps = [k.wrap(1, "surgeon_bob", n, room_key=vascular_key) for n in EVERYONE]
    before = state(k.h)
    assert_refused(k.publish_version("surgeon_bob", 1, (), wraps=wraps), 400, "invalid_request")
    assert state(k.h) == before


def test_a_wrap_of_another_key_than_the_record_commits_to_is_refused(attested: Keyed):
    """Each wrap names the version's commitment: one key for every reader, or no version."""
    k = attested
    other = RoomKey.generate(department=k.h.plastic.pk, version=1)
    wraps = k.wraps(1, "surgeon_bob", ("head_carol", "surgeon_bob", COMPLIANCE))
    wraps.append(k.wrap(1, "surgeon_bob", "nurse_alice", room_key=other))
    before = state(k.h)
    assert_refused(k.publish_version("surgeon_bob", 1, (), wraps=wraps), 400, "invalid_request")
    assert state(k.h) == before


def test_versions_go_up_one_at_a_time(attested: Keyed):
    k = attested
    before = state(k.h)
    body = assert_refused(k.publish_version("surgeon_bob", 2, EVERYONE), 409, "conflict")
    assert body["data"] == {"current_version": 0}
    assert state(k.h) == before

    assert k.publish_version("surgeon_bob", 1, EVERYONE).status_code == 201
    before = state(k.h)
    again = k.publish_version("head_carol", 1, EVERYONE)
    assert assert_refused(again, 409, "conflict")["data"] == {"current_version": 1}
    assert state(k.h) == before


def test_the_wraps_must_be_of_the_version_published(attested: Keyed):
    k = attested
    wraps = k.wraps(2, "surgeon_bob", EVERYONE)
    before = state(k.h)
    assert_refused(k.publish_version("surgeon_bob", 1, (), wraps=wraps), 400, "invalid_request")
    assert state(k.h) == before


def test_without_the_compliance_key_no_version_is_published(bare: Keyed):
    for name in MEMBERS:
        bare.publish(name)
    before = state(bare.h)
    response = bare.publish_version("surgeon_bob", 1, MEMBERS)
    assert_refused(response, 409, "wraps_incomplete")
    assert state(bare.h) == before


def test_a_caller_without_a_published_identity_cannot_publish(attested: Keyed):
    k = attested
    unpublished = IdentityKeyPair.generate()
    k.pairs["locum"] = unpublished
    wraps = k.wraps(1, "locum", EVERYONE)
    IdentityKey.objects.filter(user=k.h.nurse_alice).delete()
    before = state(k.h)
    response = k.publish_version("nurse_alice", 1, (), wraps=wraps)
    assert_refused(response, 400, "invalid_key")
    assert state(k.h) == before


def test_an_unparsable_wrap_is_an_invalid_request(attested: Keyed):
    k = attested
    wraps = [{"v": 2, "department": k.h.plastic.pk}]
    before = state(k.h)
    assert_refused(k.publish_version("surgeon_bob", 1, (), wraps=wraps), 400, "invalid_request")
    assert state(k.h) == before


def test_a_version_published_while_the_keys_are_read_is_never_half_seen(
    attested: Keyed, monkeypatch
):
    """The version lands between the answer's first read and its last: the answer is
    read again, so it never lists version 1 while naming none as current."""
    k = attested
    real = keys_module.attested_members
    landed = []

    def publish_meanwhile(*args, **kwargs):
        if not landed:  # once, and not again from inside the publish
            landed.append(None)
            landed[0] = k.publish_version("surgeon_bob", 1, (*MEMBERS, "compliance"))
        return real(*args, **kwargs)

    monkeypatch.setattr(keys_module, "attested_members", publish_meanwhile)
    body = k.api("nurse_alice").get(keys_path(k.h)).json()
    assert landed[0].status_code == 201
    assert body["key_version"] == 1
    assert [v["version"] for v in body["versions"]] == [1]


def test_keys_that_keep_changing_are_a_conflict_to_ask_again(attested: Keyed, monkeypatch):
    k = attested
    moves = iter(range(1, 100))
    monkeypatch.setattr(keys_module, "_key_state", lambda department_id: next(moves))
    response = k.api("nurse_alice").get(keys_path(k.h))
    assert response.status_code == 409 and response.json()["code"] == "conflict"
