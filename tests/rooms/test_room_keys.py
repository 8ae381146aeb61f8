"""Room keys and membership statements as the server keeps them.

A member publishes each room key version wrapped for every current member
with an identity and for the compliance key; the server refuses a version
that leaves anyone out, reaches a non-member, skips a number or carries a
signature that is not the caller's. A removal marks the department as
needing a new version; a newcomer reads the history through wraps shared by
a colleague. Heads sign membership statements the server checks against the
membership it holds and keeps for clients to verify.
"""

from dataclasses import dataclass
from typing import Any

import pytest
from django.utils import timezone

from accounts.keys import check_publish_identity, check_set_institution_key
from accounts.models import IdentityKey
from audit.models import AuditEvent
from chat import protocol
from chat.crypto import (
    CONTEXT_STATEMENT,
    CONTEXT_WRAP,
    IdentityKeyPair,
    MembershipStatement,
    PublicIdentity,
    RoomKey,
    SignedStatement,
    WrapRecord,
    b64decode,
    b64encode,
    replay_membership_chain,
    sign_statement,
    unwrap_room_key,
    verify_membership_chain,
    verify_statement,
    wrap_room_key,
)
from chat.events import event_frame
from chat.models import Event, EventKind
from rooms.actions import check_admit_member
from rooms.models import Department, KeyWrap, RoomKeyVersion
from rooms.models import MembershipStatement as StoredStatement
from tests.conftest import Api, Hospital, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def hospital(bare_hospital: Hospital) -> Hospital:
    """Before any key: these tests publish them."""
    return bare_hospital


MEMBERS = ("head_carol", "surgeon_bob", "nurse_alice")
COMPLIANCE = "compliance"
ADMIN = "institution_admin"


@dataclass
class Keyed:
    """The hospital, the personas' identity key pairs, and the room keys made so far."""

    h: Hospital
    pairs: dict[str, IdentityKeyPair]
    room_keys: dict[int, RoomKey]

    def user(self, name: str) -> Any:
        return getattr(self.h, name)

    def api(self, name: str) -> Api:
        return Api(self.user(name))

    def publish(self, name: str, user: Any = None) -> IdentityKeyPair:
        """Publish a new identity for a persona (or for `user`, under `name`)."""
        pair = IdentityKeyPair.generate()
        check_publish_identity(user or self.user(name), pair.public.to_dict())
        self.pairs[name] = pair
        return pair

    def key(self, version: int, department: int | None = None) -> RoomKey:
        if department is not None:
            return RoomKey.generate(department=department, version=version)
        if version not in self.room_keys:
            self.room_keys[version] = RoomKey.generate(
                department=self.h.plastic.pk, version=version
            )
        return self.room_keys[version]

    def wrap(self, version: int, wrapper: str, recipient: str, **kwargs: Any) -> dict:
        return wrap_room_key(
            kwargs.get("room_key") or self.key(version),
            recipient=self.pairs[recipient].public,
            wrapper=self.pairs[wrapper],
        ).to_dict()

    def wraps(self, version: int, wrapper: str, recipients: tuple[str, ...]) -> list[dict]:
        return [self.wrap(version, wrapper, name) for name in recipients]

    def attest(self, name: str, role: str = "member", signer: str | None = "head_carol", **kw):
        """Post a signed admission of `name` (by `signer`, or by the admin key when None,
        posted by admin_zoe) through the API, as the head's or the admin's client does."""
        signing = self.pairs[ADMIN if signer is None else signer]
        st = MembershipStatement(
            kind=kw.get("kind", "admit"),
            department=self.h.plastic.pk,
            subject_user=self.user(name).pk,
            subject_fingerprint=self.pairs[name].fingerprint,
            role=role,
            issued_at=timezone.now().isoformat(),
            signer_user=None if signer is None else self.user(signer).pk,
            signer_fingerprint=signing.fingerprint,
        )
        caller = "admin_zoe" if signer is None else signer
        return post_statement(self, caller, sign_statement(st, signing).to_dict())

    def publish_version(self, caller: str, version: int, recipients: tuple[str, ...], **kw: Any):
        wraps = kw.get("wraps") or self.wraps(version, caller, recipients)
        return self.api(caller).post(keys_path(self.h), {"version": version, "wraps": wraps})


def keys_path(h: Hospital) -> str:
    return f"/api/departments/{h.plastic.pk}/keys"


def statements_path(h: Hospital) -> str:
    return f"/api/departments/{h.plastic.pk}/statements"


def set_compliance(k: Keyed) -> None:
    pair = IdentityKeyPair.generate()
    check_set_institution_key(k.h.admin_zoe, "compliance", pair.public.to_dict())
    k.pairs[COMPLIANCE] = pair


@pytest.fixture
def bare(hospital: Hospital) -> Keyed:
    """No identity published, no compliance key set."""
    return Keyed(hospital, {}, {})


@pytest.fixture
def keyed(bare: Keyed) -> Keyed:
    """The Plastic surgery members have published identities; the compliance key is set."""
    for name in MEMBERS:
        bare.publish(name)
    set_compliance(bare)
    return bare


def set_admin_key(k: Keyed) -> None:
    pair = IdentityKeyPair.generate()
    check_set_institution_key(k.h.admin_zoe, "admin", pair.public.to_dict())
    k.pairs[ADMIN] = pair


@pytest.fixture
def appointed(keyed: Keyed) -> Keyed:
    """As `keyed`, the institution's admin key is set and has appointed Carol head."""
    set_admin_key(keyed)
    response = keyed.attest("head_carol", "head", None)
    assert response.status_code == 201, response.content
    return keyed


@pytest.fixture
def attested(appointed: Keyed) -> Keyed:
    """As `appointed`, and Carol has admitted Bob and Alice by signed statements."""
    for name in ("surgeon_bob", "nurse_alice"):
        response = appointed.attest(name)
        assert response.status_code == 201, response.content
    return appointed


@pytest.fixture
def version_one(keyed: Keyed) -> Keyed:
    response = keyed.publish_version("surgeon_bob", 1, (*MEMBERS, COMPLIANCE))
    assert response.status_code == 201, response.content
    return keyed


def expect_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return body


def state(h: Hospital) -> tuple:
    """What a refused publication must leave as it was."""
    department = Department.objects.get(pk=h.plastic.pk)
    return (
        department.key_version,
        department.rotation_required,
        department.event_seq,
        RoomKeyVersion.objects.count(),
        KeyWrap.objects.count(),
        StoredStatement.objects.count(),
        AuditEvent.objects.filter(action__startswith="key.").count(),
    )


def audit(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def open_my_wraps(k: Keyed, name: str) -> dict[int, RoomKey]:
    """What a member's client does: fetch its wraps, find each wrapper, check and open them."""
    response = k.api(name).get(keys_path(k.h))
    assert response.status_code == 200, response.content
    body = response.json()
    known = {m["fingerprint"]: m["identity"] for m in body["members"] if m["fingerprint"]}
    opened = {}
    for raw in body["my_wraps"]:
        record = WrapRecord.from_dict(raw)
        wrapper = PublicIdentity.from_dict(known[record.wrapper_fp])
        opened[record.version] = unwrap_room_key(record, recipient=k.pairs[name], wrapper=wrapper)
    return opened


# --- Publishing a version ----------------------------------------------------------------


def test_a_member_publishes_version_one_for_everyone(keyed: Keyed):
    h = keyed.h
    response = keyed.publish_version("surgeon_bob", 1, (*MEMBERS, COMPLIANCE))
    assert response.status_code == 201, response.content
    assert response.json() == {"department": h.plastic.pk, "key_version": 1, "wraps": 4}

    department = Department.objects.get(pk=h.plastic.pk)
    assert (department.key_version, department.rotation_required) == (1, False)
    event = Event.objects.filter(department=h.plastic).order_by("-seq").first()
    assert event.kind == EventKind.KEY_ROTATED
    frame = event_frame(event)
    protocol.validate_outbound(frame)
    assert frame["key_version"] == 1
    assert frame["by"] == {"id": h.surgeon_bob.pk, "username": "surgeon_bob"}
    [entry] = audit("key.version_published")
    assert entry.actor_id == h.surgeon_bob.pk
    assert entry.department_id == h.plastic.pk
    assert entry.data == {"version": 1, "wraps": 4}

    # The server knows who each wrap is for; the compliance key belongs to no user.
    assert sorted(
        KeyWrap.objects.values_list("recipient_user_id", flat=True), key=lambda u: u or 0
    ) == [None, *sorted(keyed.user(n).pk for n in MEMBERS)]

    for name in MEMBERS:
        assert open_my_wraps(keyed, name) == {1: keyed.key(1)}, name

    compliance_wrap = KeyWrap.objects.get(recipient_user=None)
    opened = unwrap_room_key(
        WrapRecord.from_dict(compliance_wrap.record),
        recipient=keyed.pairs[COMPLIANCE],
        wrapper=keyed.pairs["surgeon_bob"].public,
    )
    assert opened == keyed.key(1)


def test_the_keys_of_a_department_as_a_member_sees_them(version_one: Keyed):
    k = version_one
    body = k.api("nurse_alice").get(keys_path(k.h)).json()
    assert body["key_version"] == 1
    assert body["rotation_required"] is False
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
    assert members[k.h.head_carol.pk]["role"] == "head"
    assert len(body["my_wraps"]) == 1


def test_a_member_without_an_identity_is_listed_but_not_required(bare: Keyed):
    for name in ("head_carol", "surgeon_bob"):
        bare.publish(name)
    set_compliance(bare)
    response = bare.publish_version("head_carol", 1, ("head_carol", "surgeon_bob", COMPLIANCE))
    assert response.status_code == 201, response.content
    body = bare.api("nurse_alice").get(keys_path(bare.h)).json()
    alice = next(m for m in body["members"] if m["user"] == bare.h.nurse_alice.pk)
    assert alice["identity"] is None and alice["fingerprint"] is None
    assert body["my_wraps"] == []


@pytest.mark.parametrize(
    ("left_out", "named"),
    [("nurse_alice", "nurse_alice"), (COMPLIANCE, "compliance")],
)
def test_a_version_that_leaves_someone_out_is_refused(attested: Keyed, left_out: str, named: str):
    before = state(attested.h)
    recipients = tuple(n for n in (*MEMBERS, COMPLIANCE) if n != left_out)
    body = expect_refused(
        attested.publish_version("surgeon_bob", 1, recipients), 409, "wraps_incomplete"
    )
    expected = "compliance" if named == "compliance" else str(attested.user(named).pk)
    assert body["data"] == {"missing": [expected]}
    assert state(attested.h) == before


def test_a_member_whose_admission_is_unsigned_is_allowed_but_not_required(attested: Keyed):
    """Clients wrap only for members a head admitted by signature; the server asks no more."""
    k = attested
    fred = make_user("locum_fred")
    k.h.locum_fred = fred
    check_admit_member(k.h.head_carol, k.h.plastic.pk, fred.pk)
    k.publish("locum_fred", fred)
    members = {m["user"]: m for m in k.api("surgeon_bob").get(keys_path(k.h)).json()["members"]}
    assert members[fred.pk]["attested"] is False
    assert members[k.h.nurse_alice.pk]["attested"] is True
    response = k.publish_version("surgeon_bob", 1, (*MEMBERS, COMPLIANCE))
    assert response.status_code == 201, response.content

    # Once Carol signs Fred's admission, every later version must include him.
    assert k.attest("locum_fred").status_code == 201
    missing = k.publish_version("surgeon_bob", 2, (*MEMBERS, COMPLIANCE))
    assert expect_refused(missing, 409, "wraps_incomplete")["data"] == {"missing": [str(fred.pk)]}
    response = k.publish_version("surgeon_bob", 2, (*MEMBERS, COMPLIANCE, "locum_fred"))
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("outsider", ["intern_erin", "nurse_ines"])
def test_a_wrap_for_a_non_member_is_refused(keyed: Keyed, outsider: str):
    keyed.publish(outsider)
    before = state(keyed.h)
    response = keyed.publish_version("surgeon_bob", 1, (*MEMBERS, COMPLIANCE, outsider))
    expect_refused(response, 400, "invalid_request")
    assert state(keyed.h) == before


def test_a_wrap_sent_twice_to_one_recipient_is_refused(keyed: Keyed):
    before = state(keyed.h)
    response = keyed.publish_version("surgeon_bob", 1, (*MEMBERS, COMPLIANCE, "nurse_alice"))
    expect_refused(response, 400, "invalid_request")
    assert state(keyed.h) == before


def _flip(b64: str, index: int = 0) -> str:
    raw = bytearray(b64decode(b64))
    raw[index] ^= 1
    return b64encode(bytes(raw))


def _forged_by_alice_as_bob(k: Keyed) -> dict:
    """A record that names bob as wrapper but carries alice's signature."""
    honest = WrapRecord.from_dict(k.wrap(1, "surgeon_bob", "nurse_alice"))
    signature = k.pairs["nurse_alice"].sign(CONTEXT_WRAP, honest.signed_bytes())
    return {**honest.to_dict(), "sig": b64encode(signature)}


BAD_SIGNATURES = {
    "signed by someone else": _forged_by_alice_as_bob,
    "signature flipped": lambda k: {
        **(w := k.wrap(1, "surgeon_bob", "nurse_alice")),
        "sig": _flip(w["sig"]),
    },
    "sealed key flipped": lambda k: {
        **(w := k.wrap(1, "surgeon_bob", "nurse_alice")),
        "sealed": _flip(w["sealed"], 40),
    },
    "recipient changed": lambda k: {
        **k.wrap(1, "surgeon_bob", "nurse_alice"),
        "recipient_fp": k.pairs["head_carol"].fingerprint,
    },
}


@pytest.mark.parametrize("make", BAD_SIGNATURES.values(), ids=BAD_SIGNATURES.keys())
def test_a_wrap_whose_signature_fails_is_refused(keyed: Keyed, make):
    wraps = [keyed.wrap(1, "surgeon_bob", n) for n in ("head_carol", "surgeon_bob", COMPLIANCE)]
    wraps.append(make(keyed))
    before = state(keyed.h)
    response = keyed.publish_version("surgeon_bob", 1, (), wraps=wraps)
    expect_refused(response, 400, "bad_signature")
    assert state(keyed.h) == before


def test_a_wrap_made_by_another_member_is_refused(keyed: Keyed):
    """Alice's genuine wrap, posted by bob: wraps must be the caller's own."""
    wraps = keyed.wraps(1, "surgeon_bob", ("head_carol", "surgeon_bob", COMPLIANCE))
    wraps.append(keyed.wrap(1, "nurse_alice", "nurse_alice"))
    before = state(keyed.h)
    response = keyed.publish_version("surgeon_bob", 1, (), wraps=wraps)
    expect_refused(response, 400, "bad_signature")
    assert state(keyed.h) == before


def test_a_wrap_for_another_department_is_refused(keyed: Keyed):
    vascular_key = keyed.key(1, department=keyed.h.vascular.pk)
    wraps = [keyed.wrap(1, "surgeon_bob", n, room_key=vascular_key) for n in (*MEMBERS, COMPLIANCE)]
    before = state(keyed.h)
    response = keyed.publish_version("surgeon_bob", 1, (), wraps=wraps)
    expect_refused(response, 400, "invalid_request")
    assert state(keyed.h) == before


def test_versions_go_up_one_at_a_time(keyed: Keyed):
    before = state(keyed.h)
    body = expect_refused(
        keyed.publish_version("surgeon_bob", 2, (*MEMBERS, COMPLIANCE)), 409, "conflict"
    )
    assert body["data"] == {"current_version": 0}
    assert state(keyed.h) == before

    assert keyed.publish_version("surgeon_bob", 1, (*MEMBERS, COMPLIANCE)).status_code == 201
    before = state(keyed.h)
    again = keyed.publish_version("head_carol", 1, (*MEMBERS, COMPLIANCE))
    assert expect_refused(again, 409, "conflict")["data"] == {"current_version": 1}
    assert state(keyed.h) == before


def test_the_wraps_must_be_of_the_version_published(keyed: Keyed):
    wraps = keyed.wraps(2, "surgeon_bob", (*MEMBERS, COMPLIANCE))
    before = state(keyed.h)
    response = keyed.publish_version("surgeon_bob", 1, (), wraps=wraps)
    expect_refused(response, 400, "invalid_request")
    assert state(keyed.h) == before


def test_without_the_compliance_key_no_version_is_published(bare: Keyed):
    for name in MEMBERS:
        bare.publish(name)
    before = state(bare.h)
    response = bare.publish_version("surgeon_bob", 1, MEMBERS)
    expect_refused(response, 409, "wraps_incomplete")
    assert state(bare.h) == before


def test_a_caller_without_a_published_identity_cannot_publish(keyed: Keyed):
    unpublished = IdentityKeyPair.generate()
    keyed.pairs["locum"] = unpublished
    wraps = keyed.wraps(1, "locum", (*MEMBERS, COMPLIANCE))
    IdentityKey.objects.filter(user=keyed.h.nurse_alice).delete()
    before = state(keyed.h)
    response = keyed.api("nurse_alice").post(keys_path(keyed.h), {"version": 1, "wraps": wraps})
    expect_refused(response, 400, "invalid_key")
    assert state(keyed.h) == before


# --- A removal requires a new version ------------------------------------------------------


def test_a_removal_requires_a_new_version_without_the_removed(version_one: Keyed):
    k = version_one
    h = k.h
    removed = k.api("head_carol").delete(
        f"/api/departments/{h.plastic.pk}/members/{h.nurse_alice.pk}"
    )
    assert removed.status_code == 200, removed.content
    assert Department.objects.get(pk=h.plastic.pk).rotation_required is True
    assert k.api("surgeon_bob").get(keys_path(h)).json()["rotation_required"] is True
    expect_refused(k.api("nurse_alice").get(keys_path(h)), 404, "not_found")

    # Alice's fingerprint is no recipient of version 2 any more.
    before = state(h)
    response = k.publish_version("head_carol", 2, (*MEMBERS, COMPLIANCE))
    expect_refused(response, 400, "invalid_request")
    assert state(h) == before

    remaining = ("head_carol", "surgeon_bob", COMPLIANCE)
    response = k.publish_version("head_carol", 2, remaining)
    assert response.status_code == 201, response.content
    department = Department.objects.get(pk=h.plastic.pk)
    assert (department.key_version, department.rotation_required) == (2, False)
    for name in ("head_carol", "surgeon_bob"):
        assert open_my_wraps(k, name) == {1: k.key(1), 2: k.key(2)}
    assert not KeyWrap.objects.filter(
        key_version__version=2, recipient_fingerprint=k.pairs["nurse_alice"].fingerprint
    ).exists()


def test_a_removal_before_any_version_requires_nothing(keyed: Keyed):
    h = keyed.h
    response = keyed.api("head_carol").delete(
        f"/api/departments/{h.plastic.pk}/members/{h.nurse_alice.pk}"
    )
    assert response.status_code == 200
    assert Department.objects.get(pk=h.plastic.pk).rotation_required is False


# --- History for a newcomer ---------------------------------------------------------------


@pytest.fixture
def newcomer(version_one: Keyed) -> Keyed:
    """Version 2 exists too; locum_fred was admitted, then published his identity."""
    k = version_one
    assert k.publish_version("head_carol", 2, (*MEMBERS, COMPLIANCE)).status_code == 201
    fred = make_user("locum_fred")
    k.h.locum_fred = fred
    check_admit_member(k.h.head_carol, k.h.plastic.pk, fred.pk)
    k.publish("locum_fred", fred)
    return k


def share_path(h: Hospital) -> str:
    return keys_path(h) + "/wraps"


def test_a_newcomer_reads_the_history_through_shared_wraps(newcomer: Keyed):
    k = newcomer
    h = k.h
    assert open_my_wraps(k, "locum_fred") == {}

    # Bob's client opens its own wraps, then wraps every version for the newcomer.
    bobs = open_my_wraps(k, "surgeon_bob")
    assert set(bobs) == {1, 2}
    wraps = [
        k.wrap(version, "surgeon_bob", "locum_fred", room_key=key) for version, key in bobs.items()
    ]
    response = k.api("surgeon_bob").post(share_path(h), {"wraps": wraps})
    assert response.status_code == 201, response.content
    assert response.json() == {"department": h.plastic.pk, "added": 2}
    [entry] = audit("key.history_shared")
    assert entry.actor_id == h.surgeon_bob.pk
    assert entry.department_id == h.plastic.pk
    assert entry.data == {"wraps": 2, "recipients": [str(h.locum_fred.pk)], "versions": [1, 2]}

    assert open_my_wraps(k, "locum_fred") == {1: k.key(1), 2: k.key(2)}

    # The same wrap again is a conflict, and nothing is added.
    before = state(h)
    again = k.api("surgeon_bob").post(share_path(h), {"wraps": wraps[:1]})
    expect_refused(again, 409, "conflict")
    assert state(h) == before

    # Once a head has signed his admission, the newcomer is required in every later version.
    set_admin_key(k)
    assert k.attest("head_carol", "head", None).status_code == 201
    assert k.attest("locum_fred").status_code == 201
    missing = k.publish_version("surgeon_bob", 3, (*MEMBERS, COMPLIANCE))
    assert expect_refused(missing, 409, "wraps_incomplete")["data"] == {
        "missing": [str(h.locum_fred.pk)]
    }


def test_history_is_shared_only_with_current_members(newcomer: Keyed):
    k = newcomer
    k.publish("nurse_ines")
    before = state(k.h)
    response = k.api("surgeon_bob").post(
        share_path(k.h), {"wraps": [k.wrap(1, "surgeon_bob", "nurse_ines")]}
    )
    expect_refused(response, 400, "invalid_request")
    assert state(k.h) == before


def test_history_is_shared_only_for_versions_that_exist(newcomer: Keyed):
    k = newcomer
    before = state(k.h)
    response = k.api("surgeon_bob").post(
        share_path(k.h), {"wraps": [k.wrap(3, "surgeon_bob", "locum_fred")]}
    )
    expect_refused(response, 400, "invalid_request")
    assert state(k.h) == before


def test_shared_wraps_are_checked_like_published_ones(newcomer: Keyed):
    k = newcomer
    before = state(k.h)
    forged = {**(w := k.wrap(1, "surgeon_bob", "locum_fred")), "sig": _flip(w["sig"])}
    response = k.api("surgeon_bob").post(share_path(k.h), {"wraps": [forged]})
    expect_refused(response, 400, "bad_signature")
    other = k.api("surgeon_bob").post(
        share_path(k.h), {"wraps": [k.wrap(1, "head_carol", "locum_fred")]}
    )
    expect_refused(other, 400, "bad_signature")
    assert state(k.h) == before


# --- Membership statements ---------------------------------------------------------------


def statement(k: Keyed, **changes: Any) -> MembershipStatement:
    fields: dict[str, Any] = {
        "kind": "admit",
        "department": k.h.plastic.pk,
        "subject_user": k.h.surgeon_bob.pk,
        "subject_fingerprint": k.pairs["surgeon_bob"].fingerprint,
        "role": "member",
        "issued_at": timezone.now().isoformat(),
        "signer_user": k.h.head_carol.pk,
        "signer_fingerprint": k.pairs["head_carol"].fingerprint,
    }
    fields.update(changes)
    return MembershipStatement(**fields)


def signed_by(k: Keyed, st: MembershipStatement, signer: str = "head_carol") -> dict:
    return sign_statement(st, k.pairs[signer]).to_dict()


def post_statement(k: Keyed, caller: str, signed: dict):
    return k.api(caller).post(statements_path(k.h), {"signed": signed})


def test_a_head_signs_an_admission_that_members_can_verify(appointed: Keyed):
    k = appointed
    h = k.h
    signed = signed_by(k, statement(k))
    response = post_statement(k, "head_carol", signed)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "admit" and body["subject"] == h.surgeon_bob.pk
    stored = StoredStatement.objects.get(pk=body["id"])
    assert (stored.department_id, stored.subject_id, stored.signer_id) == (
        h.plastic.pk,
        h.surgeon_bob.pk,
        h.head_carol.pk,
    )
    entry = audit("key.statement_signed")[-1]
    assert entry.actor_id == h.head_carol.pk
    assert entry.data == {
        "kind": "admit",
        "subject": h.surgeon_bob.pk,
        "role": "member",
        "signed_by": "head",
    }

    listed = k.api("nurse_alice").get(statements_path(h))
    assert listed.status_code == 200
    appointment, item = listed.json()["statements"]
    assert appointment["signed"]["statement"]["signer_user"] is None
    assert item["id"] == body["id"] and item["signed"] == signed
    # Every key the statement names comes with it, for the client to check by fingerprint.
    assert listed.json()["keys"] == {
        k.pairs[name].fingerprint: k.pairs[name].public.to_dict()
        for name in ("head_carol", "surgeon_bob")
    }
    verified = verify_statement(
        SignedStatement.from_dict(item["signed"]), k.pairs["head_carol"].public
    )
    assert verified.subject_fingerprint == k.pairs["surgeon_bob"].fingerprint


def test_a_removal_statement_for_a_removed_member(attested: Keyed):
    k = attested
    response = k.api("head_carol").delete(
        f"/api/departments/{k.h.plastic.pk}/members/{k.h.nurse_alice.pk}"
    )
    assert response.status_code == 200
    response = k.attest("nurse_alice", kind="remove")
    assert response.status_code == 201, response.content


def test_a_removal_of_someone_never_admitted_by_signature_is_refused(appointed: Keyed):
    """intern_erin left before any statement: removing her would break every client's chain."""
    k = appointed
    k.publish("intern_erin")
    before = state(k.h)
    expect_refused(k.attest("intern_erin", kind="remove"), 403, "forbidden")
    assert state(k.h) == before


def test_a_member_may_not_sign_statements(appointed: Keyed):
    k = appointed
    st = statement(
        k,
        subject_user=k.h.nurse_alice.pk,
        subject_fingerprint=k.pairs["nurse_alice"].fingerprint,
        signer_user=k.h.surgeon_bob.pk,
        signer_fingerprint=k.pairs["surgeon_bob"].fingerprint,
    )
    before = state(k.h)
    expect_refused(
        post_statement(k, "surgeon_bob", signed_by(k, st, "surgeon_bob")), 403, "forbidden"
    )
    assert state(k.h) == before


def _signed_with_alices_key(k: Keyed) -> dict:
    """Names carol as signer, but alice signed it."""
    st = statement(k)
    signature = k.pairs["nurse_alice"].sign(CONTEXT_STATEMENT, st.signed_bytes())
    return SignedStatement(st, signature).to_dict()


def _signed_by_another_head(k: Keyed) -> dict:
    """head_grace's genuine signature, posted by carol."""
    k.publish("head_grace")
    st = statement(k, signer_fingerprint=k.pairs["head_grace"].fingerprint)
    return signed_by(k, st, "head_grace")


def _tampered(k: Keyed) -> dict:
    signed = signed_by(k, statement(k))
    return {**signed, "statement": {**signed["statement"], "role": "head"}}


BAD_STATEMENT_SIGNATURES = {
    "signed with another key": _signed_with_alices_key,
    "signed by another head": _signed_by_another_head,
    "altered after signing": _tampered,
    "signature flipped": lambda k: {
        **(s := signed_by(k, statement(k))),
        "sig": _flip(s["sig"]),
    },
}


@pytest.mark.parametrize(
    "make", BAD_STATEMENT_SIGNATURES.values(), ids=BAD_STATEMENT_SIGNATURES.keys()
)
def test_a_statement_not_signed_by_the_callers_key_is_refused(appointed: Keyed, make):
    signed = make(appointed)
    before = state(appointed.h)
    expect_refused(post_statement(appointed, "head_carol", signed), 400, "bad_signature")
    assert state(appointed.h) == before


def test_a_statement_must_name_the_subjects_published_fingerprint(appointed: Keyed):
    k = appointed
    stranger_fp = IdentityKeyPair.generate().fingerprint
    before = state(k.h)
    wrong = statement(k, subject_fingerprint=stranger_fp)
    expect_refused(post_statement(k, "head_carol", signed_by(k, wrong)), 400, "invalid_request")
    # A subject who has published no key at all.
    IdentityKey.objects.filter(user=k.h.surgeon_bob).delete()
    unpublished = statement(k)
    expect_refused(
        post_statement(k, "head_carol", signed_by(k, unpublished)), 400, "invalid_request"
    )
    assert state(k.h) == before


@pytest.mark.parametrize("subject", ["intern_erin", "nurse_ines"])
def test_an_admission_of_a_non_member_is_refused(appointed: Keyed, subject: str):
    k = appointed
    k.publish(subject)
    st = statement(
        k, subject_user=k.user(subject).pk, subject_fingerprint=k.pairs[subject].fingerprint
    )
    before = state(k.h)
    expect_refused(post_statement(k, "head_carol", signed_by(k, st)), 403, "forbidden")
    assert state(k.h) == before


@pytest.mark.parametrize(
    "changes",
    [{"role": "head"}, {"kind": "remove"}, {"kind": "role", "role": "head"}],
    ids=["admit with another role", "remove a member", "role he does not have"],
)
def test_a_statement_that_contradicts_the_membership_is_refused(appointed: Keyed, changes: dict):
    before = state(appointed.h)
    st = statement(appointed, **changes)
    response = post_statement(appointed, "head_carol", signed_by(appointed, st))
    expect_refused(response, 403, "forbidden")
    assert state(appointed.h) == before


@pytest.mark.parametrize("field", ["department", "signer_user"])
def test_a_statement_for_another_department_or_signer_is_refused(appointed: Keyed, field: str):
    k = appointed
    other = k.h.vascular.pk if field == "department" else k.h.surgeon_bob.pk
    st = statement(k, **{field: other})
    before = state(k.h)
    expect_refused(post_statement(k, "head_carol", signed_by(k, st)), 400, "invalid_request")
    assert state(k.h) == before


def test_a_head_without_a_published_identity_cannot_sign(appointed: Keyed):
    k = appointed
    signed = signed_by(k, statement(k))
    IdentityKey.objects.filter(user=k.h.head_carol).delete()
    before = state(k.h)
    expect_refused(post_statement(k, "head_carol", signed), 400, "invalid_key")
    assert state(k.h) == before


def test_a_replaced_identity_gets_the_history_again_from_a_colleague(version_one: Keyed):
    """Bob lost his device and his recovery secret: his new key reads nothing until shared."""
    k = version_one
    old = k.pairs["surgeon_bob"]
    new = IdentityKeyPair.generate()
    check_publish_identity(k.h.surgeon_bob, new.public.to_dict(), replace=True)
    k.pairs["surgeon_bob"] = new
    assert open_my_wraps(k, "surgeon_bob") == {}

    # A wrap for his old key is no wrap for a current member.
    k.pairs["old_bob"] = old
    stale = k.api("head_carol").post(
        share_path(k.h), {"wraps": [k.wrap(1, "head_carol", "old_bob")]}
    )
    expect_refused(stale, 400, "invalid_request")
    response = k.api("head_carol").post(
        share_path(k.h), {"wraps": [k.wrap(1, "head_carol", "surgeon_bob")]}
    )
    assert response.status_code == 201, response.content
    assert open_my_wraps(k, "surgeon_bob") == {1: k.key(1)}


def test_a_repeated_statement_is_kept_once(appointed: Keyed):
    k = appointed
    first = post_statement(k, "head_carol", signed_by(k, statement(k)))
    again = post_statement(k, "head_carol", signed_by(k, statement(k)))
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert StoredStatement.objects.count() == 2  # Carol's appointment, and this one


def test_removing_someone_who_was_never_a_member_is_refused(appointed: Keyed):
    k = appointed
    k.publish("nurse_ines")
    st = statement(
        k,
        kind="remove",
        subject_user=k.h.nurse_ines.pk,
        subject_fingerprint=k.pairs["nurse_ines"].fingerprint,
    )
    before = state(k.h)
    expect_refused(post_statement(k, "head_carol", signed_by(k, st)), 403, "forbidden")
    assert state(k.h) == before


def test_an_unparsable_wrap_is_an_invalid_request(appointed: Keyed):
    k = appointed
    response = k.api("surgeon_bob").post(
        keys_path(k.h), {"version": 1, "wraps": [{"v": 1, "department": k.h.plastic.pk}]}
    )
    expect_refused(response, 400, "invalid_request")
    assert not RoomKeyVersion.objects.exists()


# --- The admin key appoints heads ------------------------------------------------------


def test_the_admin_key_appoints_the_first_head(keyed: Keyed):
    k = keyed
    set_admin_key(k)
    response = k.attest("head_carol", "head", None)
    assert response.status_code == 201, response.content
    stored = StoredStatement.objects.get(pk=response.json()["id"])
    assert stored.signer_id is None and stored.subject_id == k.h.head_carol.pk
    [entry] = audit("key.statement_signed")
    assert entry.actor_id == k.h.admin_zoe.pk
    assert entry.data["signed_by"] == "admin_key"
    listed = k.api("nurse_alice").get(statements_path(k.h)).json()
    assert listed["admin"] == {
        "fingerprint": k.pairs[ADMIN].fingerprint,
        "public": k.pairs[ADMIN].public.to_dict(),
    }
    # Carol, now attested, admits Bob with her own key.
    assert k.attest("surgeon_bob").status_code == 201
    listed = k.api("nurse_alice").get(statements_path(k.h)).json()
    chain = [SignedStatement.from_dict(s["signed"]) for s in listed["statements"]]
    members = verify_membership_chain(
        chain, admin_key=k.pairs[ADMIN].public, keys=[p.public for p in k.pairs.values()]
    )
    assert members == {k.h.head_carol.pk: "head", k.h.surgeon_bob.pk: "member"}


@pytest.mark.parametrize(
    ("caller", "role", "status", "code"),
    [
        ("head_carol", "head", 403, "forbidden"),  # only an administrator posts it
        ("admin_zoe", "member", 403, "forbidden"),  # the admin key appoints heads only
    ],
)
def test_an_admin_key_statement_is_refused_unless_it_appoints_a_head_and_an_admin_posts_it(
    keyed: Keyed, caller: str, role: str, status: int, code: str
):
    k = keyed
    set_admin_key(k)
    subject = "head_carol" if role == "head" else "surgeon_bob"
    st = statement(
        k,
        subject_user=k.user(subject).pk,
        subject_fingerprint=k.pairs[subject].fingerprint,
        role=role,
        signer_user=None,
        signer_fingerprint=k.pairs[ADMIN].fingerprint,
    )
    before = state(k.h)
    expect_refused(
        post_statement(k, caller, sign_statement(st, k.pairs[ADMIN]).to_dict()), status, code
    )
    assert state(k.h) == before


def test_an_appointment_signed_by_another_key_is_refused(keyed: Keyed):
    k = keyed
    set_admin_key(k)
    impostor = IdentityKeyPair.generate()
    st = statement(
        k,
        subject_user=k.h.head_carol.pk,
        subject_fingerprint=k.pairs["head_carol"].fingerprint,
        role="head",
        signer_user=None,
        signer_fingerprint=impostor.fingerprint,
    )
    before = state(k.h)
    response = post_statement(k, "admin_zoe", sign_statement(st, impostor).to_dict())
    expect_refused(response, 400, "bad_signature")
    assert state(k.h) == before


def test_an_appointment_without_an_admin_key_is_refused(keyed: Keyed):
    k = keyed
    k.pairs[ADMIN] = IdentityKeyPair.generate()  # never set on the server
    before = state(k.h)
    expect_refused(k.attest("head_carol", "head", None), 400, "invalid_key")
    assert state(k.h) == before


def test_a_replaced_key_is_retired_then_the_member_admitted_again(attested: Keyed):
    """Bob's new key is not attested until Carol removes the old one and admits the new."""
    k = attested
    old = k.pairs["surgeon_bob"]
    new = IdentityKeyPair.generate()
    check_publish_identity(k.h.surgeon_bob, new.public.to_dict(), replace=True)
    members = {m["user"]: m for m in k.api("head_carol").get(keys_path(k.h)).json()["members"]}
    assert members[k.h.surgeon_bob.pk]["attested"] is False
    k.pairs["surgeon_bob"] = old
    assert k.attest("surgeon_bob", kind="remove").status_code == 201
    k.pairs["surgeon_bob"] = new
    assert k.attest("surgeon_bob").status_code == 201
    members = {m["user"]: m for m in k.api("head_carol").get(keys_path(k.h)).json()["members"]}
    assert members[k.h.surgeon_bob.pk]["attested"] is True
    listed = k.api("nurse_alice").get(statements_path(k.h)).json()
    chain = [SignedStatement.from_dict(s["signed"]) for s in listed["statements"]]
    keys = [PublicIdentity.from_dict(public) for public in listed["keys"].values()]
    assert old.fingerprint in listed["keys"] and new.fingerprint in listed["keys"]
    replayed = replay_membership_chain(chain, admin_key=k.pairs[ADMIN].public, keys=keys)
    assert replayed.members[k.h.surgeon_bob.pk].fingerprint == new.fingerprint
    # The old key cannot be retired twice, and the current one not while he stays a member.
    before = state(k.h)
    k.pairs["surgeon_bob"] = old
    expect_refused(k.attest("surgeon_bob", kind="remove"), 403, "forbidden")
    k.pairs["surgeon_bob"] = new
    expect_refused(k.attest("surgeon_bob", kind="remove"), 403, "forbidden")
    assert state(k.h) == before


def test_a_statement_that_does_not_follow_the_signed_chain_is_refused(keyed: Keyed):
    """Carol was never appointed by the admin key: her signature admits no one."""
    k = keyed
    set_admin_key(k)
    before = state(k.h)
    expect_refused(k.attest("surgeon_bob"), 403, "forbidden")
    assert state(k.h) == before
