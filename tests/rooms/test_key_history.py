"""After a removal a new version; for a newcomer, the history.

A removal marks the department as needing a new version, which leaves the
removed member out; a newcomer, or a member with a new key, reads earlier
versions through wraps a colleague shares, each carrying its version's
commitment. Every refusal leaves everything as it was.
"""

import pytest

from core.crypto import RoomKey
from rooms.models import Department, KeyWrap
from tests.rooms.keyring import (
    COMPLIANCE,
    EVERYONE,
    Keyed,
    keys_path,
    open_my_wraps,
    share_path,
    state,
)
from tests.support import assert_refused, audit_entries
from tests.support.tamper import flip_b64

pytestmark = pytest.mark.django_db


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
    assert_refused(k.api("nurse_alice").get(keys_path(h)), 404, "not_found")
    assert k.attest("nurse_alice", kind="remove").status_code == 201

    # Alice's fingerprint is no recipient of version 2 any more.
    before = state(h)
    response = k.publish_version("head_carol", 2, EVERYONE)
    assert_refused(response, 400, "invalid_request")
    assert state(h) == before

    remaining = ("head_carol", "surgeon_bob", COMPLIANCE)
    response = k.publish_version("head_carol", 2, remaining)
    assert response.status_code == 201, response.content
    department = Department.objects.get(pk=h.plastic.pk)
    assert (department.key_version, department.rotation_required) == (2, False)
    assert department.key_chain_seq == 4
    for name in ("head_carol", "surgeon_bob"):
        assert open_my_wraps(k, name) == {1: k.key(1), 2: k.key(2)}
    assert not KeyWrap.objects.filter(
        key_version__version=2, recipient_fingerprint=k.pairs["nurse_alice"].fingerprint
    ).exists()


def test_a_removal_before_any_version_requires_nothing(attested: Keyed):
    h = attested.h
    response = attested.api("head_carol").delete(
        f"/api/departments/{h.plastic.pk}/members/{h.nurse_alice.pk}"
    )
    assert response.status_code == 200
    assert attested.attest("nurse_alice", kind="remove").status_code == 201
    assert Department.objects.get(pk=h.plastic.pk).rotation_required is False


# --- History for a newcomer ---------------------------------------------------------------


@pytest.fixture
def newcomer(version_one: Keyed) -> Keyed:
    """Version 2 exists too; locum_fred was admitted in the tables, then published his
    identity (no head has signed his admission yet)."""
    k = version_one
    assert k.publish_version("head_carol", 2, EVERYONE).status_code == 201
    k.admit_in_tables("locum_fred")
    return k


def test_a_newcomer_reads_the_history_through_shared_wraps(newcomer: Keyed):
    k = newcomer
    h = k.h
    assert k.attest("locum_fred").status_code == 201
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
    [entry] = audit_entries("key.history_shared")
    assert entry.actor_id == h.surgeon_bob.pk
    assert entry.department_id == h.plastic.pk
    assert entry.data == {"wraps": 2, "recipients": [str(h.locum_fred.pk)], "versions": [1, 2]}

    assert open_my_wraps(k, "locum_fred") == {1: k.key(1), 2: k.key(2)}

    # The same wrap again is a conflict, and nothing is added.
    before = state(h)
    again = k.api("surgeon_bob").post(share_path(h), {"wraps": wraps[:1]})
    assert_refused(again, 409, "conflict")
    assert state(h) == before

    # Now that his admission is signed, the newcomer is required in every later version.
    missing = k.publish_version("surgeon_bob", 3, EVERYONE)
    assert assert_refused(missing, 409, "wraps_incomplete")["data"] == {
        "missing": [str(h.locum_fred.pk)]
    }


def test_history_is_shared_only_with_current_members(newcomer: Keyed):
    k = newcomer
    k.publish("nurse_ines")
    before = state(k.h)
    response = k.api("surgeon_bob").post(
        share_path(k.h), {"wraps": [k.wrap(1, "surgeon_bob", "nurse_ines")]}
    )
    assert_refused(response, 400, "invalid_request")
    assert state(k.h) == before


def test_history_is_shared_only_for_versions_that_exist(newcomer: Keyed):
    k = newcomer
    before = state(k.h)
    response = k.api("surgeon_bob").post(
        share_path(k.h), {"wraps": [k.wrap(3, "surgeon_bob", "locum_fred")]}
    )
    assert_refused(response, 400, "invalid_request")
    assert state(k.h) == before


def test_shared_wraps_are_checked_like_published_ones(newcomer: Keyed):
    k = newcomer
    before = state(k.h)
    forged = {**(w := k.wrap(1, "surgeon_bob", "locum_fred")), "sig": flip_b64(w["sig"])}
    response = k.api("surgeon_bob").post(share_path(k.h), {"wraps": [forged]})
    assert_refused(response, 400, "bad_signature")
    other = k.api("surgeon_bob").post(
        share_path(k.h), {"wraps": [k.wrap(1, "head_carol", "locum_fred")]}
    )
    assert_refused(other, 400, "bad_signature")
    assert state(k.h) == before


def test_a_shared_wrap_of_another_key_than_its_version_is_refused(newcomer: Keyed):
    """A colleague cannot hand a newcomer another key under an existing version's number."""
    k = newcomer
    impostor = RoomKey.generate(department=k.h.plastic.pk, version=1)
    wraps = [
        k.wrap(2, "surgeon_bob", "locum_fred"),
        k.wrap(1, "surgeon_bob", "locum_fred", room_key=impostor),
    ]
    before = state(k.h)
    response = k.api("surgeon_bob").post(share_path(k.h), {"wraps": wraps})
    assert_refused(response, 400, "invalid_request")
    assert state(k.h) == before


def test_a_replaced_identity_gets_the_history_again_from_a_colleague(version_one: Keyed):
    """Bob lost his device and his recovery secret: his new key reads nothing until shared."""
    k = version_one
    old = k.pairs["surgeon_bob"]
    k.publish("surgeon_bob", replace=True)
    assert k.attest("surgeon_bob", kind="replace", replaces=old).status_code == 201
    assert open_my_wraps(k, "surgeon_bob") == {}

    # A wrap for his old key is no wrap for a current member.
    k.pairs["old_bob"] = old
    stale = k.api("head_carol").post(
        share_path(k.h), {"wraps": [k.wrap(1, "head_carol", "old_bob")]}
    )
    assert_refused(stale, 400, "invalid_request")
    response = k.api("head_carol").post(
        share_path(k.h), {"wraps": [k.wrap(1, "head_carol", "surgeon_bob")]}
    )
    assert response.status_code == 201, response.content
    assert open_my_wraps(k, "surgeon_bob") == {1: k.key(1)}
