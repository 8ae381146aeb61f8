"""The key directory over HTTP: identities, key backups, the institution's keys.

The server keeps public keys and opaque blobs only. It refuses a key that
does not parse or is degenerate, never lets a published identity change
silently, shows a public key only to those who could wrap a room key for it,
and audits every publication and every backup fetch.
"""

import base64
from typing import Any

import nacl.pwhash.argon2id as argon2id
import pytest
from django.test import Client

from accounts.models import IdentityKey, InstitutionKey, KeyBackup
from audit.models import AuditEvent
from core.crypto import (
    IdentityKeyPair,
    WrongPassphrase,
    b64decode,
    b64encode,
    generate_recovery_secret,
    open_backup,
    seal_backup,
)
from tests.support import Api, Hospital, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def hospital(bare_hospital: Hospital) -> Hospital:
    """Before any key: these tests publish them."""
    return bare_hospital


IDENTITY = "/api/keys/identity"
BACKUP = "/api/keys/backup"
INSTITUTION = "/api/keys/institution"
# Argon2id at its floor: the tests check the format, not the cost.
FAST = {"opslimit": argon2id.OPSLIMIT_MIN, "memlimit": argon2id.MEMLIMIT_MIN}


def audit(action: str, **filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


def key_audit_count() -> int:
    return AuditEvent.objects.filter(action__startswith="key.").count()


def publish(user: Any, pair: IdentityKeyPair, *, replace: bool = False):
    return Api(user).put(IDENTITY, {"public": pair.public.to_dict(), "replace": replace})


def expect_refused(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return body


# --- Publishing an identity -------------------------------------------------------


def test_publishing_an_identity_is_audited_and_idempotent(hospital: Hospital):
    pair = IdentityKeyPair.generate()
    first = publish(hospital.nurse_alice, pair)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["user"] == hospital.nurse_alice.pk
    assert body["fingerprint"] == pair.fingerprint
    assert body["public"] == pair.public.to_dict()

    again = publish(hospital.nurse_alice, pair)
    assert again.status_code == 200
    assert again.json() == body
    assert IdentityKey.objects.filter(user=hospital.nurse_alice).count() == 1
    [entry] = audit("key.identity_published")
    assert entry.actor_id == hospital.nurse_alice.pk
    assert entry.data == {"fingerprint": pair.fingerprint}


def test_a_different_key_conflicts_unless_replaced(hospital: Hospital):
    old, new = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    assert publish(hospital.surgeon_bob, old).status_code == 200

    body = expect_refused(publish(hospital.surgeon_bob, new), 409, "conflict")
    assert body["data"] == {"fingerprint": old.fingerprint}
    assert list(IdentityKey.objects.values_list("fingerprint", "replaced_at")) == [
        (old.fingerprint, None)
    ]
    assert audit("key.identity_replaced") == []

    replaced = publish(hospital.surgeon_bob, new, replace=True)
    assert replaced.status_code == 200, replaced.content
    assert replaced.json()["fingerprint"] == new.fingerprint
    # The old row stays, so signatures made with it can still be checked.
    rows = IdentityKey.objects.filter(user=hospital.surgeon_bob).order_by("pk")
    assert [(r.fingerprint, r.replaced_at is None) for r in rows] == [
        (old.fingerprint, False),
        (new.fingerprint, True),
    ]
    [entry] = audit("key.identity_replaced")
    assert entry.actor_id == hospital.surgeon_bob.pk
    assert entry.data == {"fingerprint": new.fingerprint}
    shown = Api(hospital.nurse_alice).get(f"{IDENTITY}/{hospital.surgeon_bob.pk}")
    assert shown.json()["fingerprint"] == new.fingerprint


def test_replacing_with_the_same_key_changes_nothing(hospital: Hospital):
    pair = IdentityKeyPair.generate()
    publish(hospital.surgeon_bob, pair)
    assert publish(hospital.surgeon_bob, pair, replace=True).status_code == 200
    assert IdentityKey.objects.filter(user=hospital.surgeon_bob).count() == 1
    assert audit("key.identity_replaced") == []


def _public(**changes: Any) -> dict[str, Any]:
    public: dict[str, Any] = IdentityKeyPair.generate().public.to_dict()
    public.update(changes)
    return {k: v for k, v in public.items() if v is not None}


MALFORMED = {
    "x25519 too short": _public(x25519=b64encode(bytes(range(31)))),
    "ed25519 too long": _public(ed25519=b64encode(bytes(range(33)))),
    "bad base64": _public(x25519="not base64!"),
    "url-safe base64": _public(x25519="-_" + "A" * 41 + "="),
    "not a string": _public(ed25519=42),
    "extra field": _public(comment="mine"),
    "missing field": _public(ed25519=None),
    "all-zero x25519 (low order)": _public(x25519=b64encode(bytes(32))),
    "x25519 of order 8": _public(
        x25519=b64encode(
            bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
        )
    ),
    "ed25519 identity point": _public(ed25519=b64encode(bytes([1]) + bytes(31))),
}


@pytest.mark.parametrize("public", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_or_degenerate_keys_are_refused(hospital: Hospital, public: dict):
    response = Api(hospital.nurse_alice).put(IDENTITY, {"public": public})
    expect_refused(response, 400, "invalid_key")
    assert not IdentityKey.objects.exists()
    assert key_audit_count() == 0


# --- Who sees an identity -----------------------------------------------------------


@pytest.fixture
def bob_pair(hospital: Hospital) -> IdentityKeyPair:
    pair = IdentityKeyPair.generate()
    assert publish(hospital.surgeon_bob, pair).status_code == 200
    return pair


@pytest.mark.parametrize("viewer", ["surgeon_bob", "nurse_alice", "head_carol", "compliance_dan"])
def test_an_identity_is_shown_to_self_colleagues_and_compliance(
    hospital: Hospital, bob_pair: IdentityKeyPair, viewer: str
):
    response = Api(getattr(hospital, viewer)).get(f"{IDENTITY}/{hospital.surgeon_bob.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["user"] == hospital.surgeon_bob.pk
    assert body["fingerprint"] == bob_pair.fingerprint
    assert body["public"] == bob_pair.public.to_dict()


@pytest.mark.parametrize("viewer", ["nurse_ines", "head_grace", "intern_erin", "stranger"])
def test_an_identity_is_hidden_from_everyone_else(
    hospital: Hospital, bob_pair: IdentityKeyPair, viewer: str
):
    user = make_user(viewer) if viewer == "stranger" else getattr(hospital, viewer)
    api = Api(user)
    foreign = api.get(f"{IDENTITY}/{hospital.surgeon_bob.pk}")
    missing = api.get(f"{IDENTITY}/999999")
    expect_refused(foreign, 404, "not_found")
    assert foreign.json() == missing.json()


def test_a_colleague_without_keys_is_not_found(hospital: Hospital):
    response = Api(hospital.nurse_alice).get(f"{IDENTITY}/{hospital.head_carol.pk}")
    expect_refused(response, 404, "not_found")


def test_identity_lookups_need_a_login(hospital: Hospital, bob_pair: IdentityKeyPair):
    response = Client().get(f"{IDENTITY}/{hospital.surgeon_bob.pk}")
    expect_refused(response, 401, "not_authenticated")


# --- Key backup -----------------------------------------------------------------------


def test_a_backup_is_stored_and_fetched_by_its_owner_only(hospital: Hospital):
    blob = b64encode(bytes(range(130)))
    alice = Api(hospital.nurse_alice)
    stored = alice.put(BACKUP, {"blob": blob})
    assert stored.status_code == 200, stored.content
    assert stored.json()["updated_at"]
    [entry] = audit("key.backup_stored")
    assert (entry.actor_id, entry.data) == (hospital.nurse_alice.pk, {"bytes": 130})

    fetched = alice.get(BACKUP)
    assert fetched.status_code == 200
    assert fetched.json()["blob"] == blob
    [entry] = audit("key.backup_fetched")
    assert entry.actor_id == hospital.nurse_alice.pk

    # Nobody else reaches it: there is no way to name another user's backup.
    for other in (hospital.surgeon_bob, hospital.compliance_dan, hospital.admin_zoe):
        expect_refused(Api(other).get(BACKUP), 404, "not_found")
    assert len(audit("key.backup_fetched")) == 1

    # Storing again replaces the one backup.
    newer = b64encode(bytes(range(256)) * 16)
    assert alice.put(BACKUP, {"blob": newer}).status_code == 200
    assert list(KeyBackup.objects.values_list("user_id", "blob")) == [
        (hospital.nurse_alice.pk, newer)
    ]


def test_fetching_with_no_backup_is_not_found_and_not_audited(hospital: Hospital):
    expect_refused(Api(hospital.nurse_alice).get(BACKUP), 404, "not_found")
    assert audit("key.backup_fetched") == []


@pytest.mark.parametrize(
    "blob",
    [
        "not base64!",
        "QUJD\n",
        "QUJDRA",  # unpadded
        "",
        b64encode(bytes(4097)),
    ],
    ids=["bad alphabet", "newline", "unpadded", "empty", "over 4 KiB"],
)
def test_a_bad_backup_is_refused(hospital: Hospital, blob: str):
    expect_refused(Api(hospital.nurse_alice).put(BACKUP, {"blob": blob}), 400, "invalid_request")
    assert not KeyBackup.objects.exists()
    assert key_audit_count() == 0


def test_a_backup_of_exactly_4_kib_is_kept(hospital: Hospital):
    response = Api(hospital.nurse_alice).put(BACKUP, {"blob": b64encode(bytes(4096))})
    assert response.status_code == 200, response.content


def test_a_new_device_recovers_the_identity_from_the_backup(hospital: Hospital):
    identity = IdentityKeyPair.generate()
    secret = generate_recovery_secret()
    blob = seal_backup(identity, secret, **FAST)

    phone = Api(hospital.nurse_alice)
    assert phone.put(IDENTITY, {"public": identity.public.to_dict()}).status_code == 200
    assert phone.put(BACKUP, {"blob": b64encode(blob)}).status_code == 200

    # A new phone: another login, nothing on the device but the recovery secret.
    new_phone = Api(hospital.nurse_alice)
    published = new_phone.get(f"{IDENTITY}/{hospital.nurse_alice.pk}").json()
    fetched = new_phone.get(BACKUP)
    assert fetched.status_code == 200
    recovered = open_backup(b64decode(fetched.json()["blob"]), secret)
    assert recovered == identity
    assert recovered.fingerprint == published["fingerprint"]
    # The recovered identity is the published one: republishing it is a no-op.
    assert new_phone.put(IDENTITY, {"public": recovered.public.to_dict()}).status_code == 200
    assert IdentityKey.objects.filter(user=hospital.nurse_alice).count() == 1
    # Copied from paper, in lower case and without dashes, it still opens.
    assert open_backup(blob, secret.replace("-", "").lower()) == identity

    with pytest.raises(WrongPassphrase):
        open_backup(blob, generate_recovery_secret())
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(WrongPassphrase):
        open_backup(bytes(tampered), secret)


def test_a_backup_under_a_chosen_passphrase(hospital: Hospital):
    identity = IdentityKeyPair.generate()
    passphrase = "Ward 7 night shift, 2 coffees"
    blob = seal_backup(identity, passphrase, user_chosen=True, **FAST)
    api = Api(hospital.surgeon_bob)
    assert api.put(BACKUP, {"blob": base64.b64encode(blob).decode()}).status_code == 200
    fetched = b64decode(api.get(BACKUP).json()["blob"])
    assert open_backup(fetched, passphrase) == identity
    with pytest.raises(WrongPassphrase):
        open_backup(fetched, "Ward 7 night shift, 3 coffees")


# --- The institution's keys -------------------------------------------------------------


def test_only_an_administrator_sets_an_institution_key(hospital: Hospital):
    public = IdentityKeyPair.generate().public
    for user in (hospital.head_carol, hospital.nurse_alice, hospital.compliance_dan):
        response = Api(user).put(f"{INSTITUTION}/compliance", {"public": public.to_dict()})
        expect_refused(response, 403, "forbidden")
    assert not InstitutionKey.objects.exists()

    response = Api(hospital.admin_zoe).put(
        f"{INSTITUTION}/compliance", {"public": public.to_dict()}
    )
    assert response.status_code == 200, response.content
    assert response.json()["kind"] == "compliance"
    assert response.json()["fingerprint"] == public.fingerprint
    [entry] = audit("key.compliance_key_set")
    assert entry.actor_id == hospital.admin_zoe.pk
    assert entry.data == {"fingerprint": public.fingerprint}


def test_an_unknown_institution_key_is_not_found(hospital: Hospital):
    public = IdentityKeyPair.generate().public.to_dict()
    response = Api(hospital.admin_zoe).put(f"{INSTITUTION}/root", {"public": public})
    expect_refused(response, 404, "not_found")
    assert not InstitutionKey.objects.exists()


def test_an_unusable_institution_key_is_refused(hospital: Hospital):
    public = _public(x25519=b64encode(bytes(32)))
    response = Api(hospital.admin_zoe).put(f"{INSTITUTION}/admin", {"public": public})
    expect_refused(response, 400, "invalid_key")
    assert not InstitutionKey.objects.exists()


def test_replacing_an_institution_key_keeps_its_history(hospital: Hospital):
    admin = Api(hospital.admin_zoe)
    first, second = IdentityKeyPair.generate().public, IdentityKeyPair.generate().public
    for public in (first, second):
        response = admin.put(f"{INSTITUTION}/compliance", {"public": public.to_dict()})
        assert response.status_code == 200, response.content
    rows = InstitutionKey.objects.filter(kind="compliance").order_by("pk")
    assert [(r.fingerprint, r.replaced_at is None) for r in rows] == [
        (first.fingerprint, False),
        (second.fingerprint, True),
    ]
    assert len(audit("key.compliance_key_set")) == 2
    listed = admin.get(INSTITUTION).json()
    assert listed["compliance"]["fingerprint"] == second.fingerprint


@pytest.mark.parametrize("viewer", ["stranger", "nurse_alice", "compliance_dan", "intern_erin"])
def test_everyone_signed_in_lists_the_institution_keys(hospital: Hospital, viewer: str):
    admin_key = IdentityKeyPair.generate().public
    Api(hospital.admin_zoe).put(f"{INSTITUTION}/admin", {"public": admin_key.to_dict()})
    user = make_user(viewer) if viewer == "stranger" else getattr(hospital, viewer)
    response = Api(user).get(INSTITUTION)
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"admin", "compliance"}
    assert body["compliance"] is None
    assert body["admin"]["fingerprint"] == admin_key.fingerprint
    assert body["admin"]["public"] == admin_key.to_dict()
    expect_refused(Client().get(INSTITUTION), 401, "not_authenticated")


def test_a_colleagues_key_cannot_be_published_as_ones_own(hospital: Hospital):
    pair = IdentityKeyPair.generate()
    assert publish(hospital.surgeon_bob, pair).status_code == 200
    expect_refused(publish(hospital.nurse_alice, pair), 409, "conflict")
    assert not IdentityKey.objects.filter(user=hospital.nurse_alice).exists()


def test_a_replaced_key_stays_retrievable_by_its_fingerprint(hospital: Hospital):
    old, new = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    assert publish(hospital.surgeon_bob, old).status_code == 200
    assert publish(hospital.surgeon_bob, new, replace=True).status_code == 200
    alice = Api(hospital.nurse_alice)
    path = f"{IDENTITY}/{hospital.surgeon_bob.pk}"
    current = alice.get(path).json()
    assert (current["fingerprint"], current["replaced_at"]) == (new.fingerprint, None)
    earlier = alice.get(f"{path}?fingerprint={old.fingerprint}").json()
    assert earlier["fingerprint"] == old.fingerprint
    assert earlier["public"] == old.public.to_dict()
    assert earlier["replaced_at"] is not None
    # Someone else's fingerprint under Bob's id is not Bob's key.
    other = IdentityKeyPair.generate()
    publish(hospital.nurse_alice, other)
    expect_refused(alice.get(f"{path}?fingerprint={other.fingerprint}"), 404, "not_found")
    # Visibility is unchanged: a stranger to Bob's departments sees nothing.
    ines = Api(hospital.nurse_ines)
    expect_refused(ines.get(f"{path}?fingerprint={old.fingerprint}"), 404, "not_found")
