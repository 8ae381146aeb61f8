"""Keys replaced in the chain, and the new room key version they require.

A member who lost their key and recovery secret publishes a new one; a
head signs it in place of the old (`replace`), a head's own by her old key
or, with no head left to sign, by the institution's admin key. Whoever
holds a replaced key, or was removed, may hold the current room key
version: once a version exists, a signed removal or replacement requires a
new one before the next message.
"""

import pytest

from rooms.chain import chain_members
from rooms.models import MembershipStatement as StoredStatement
from tests.rooms.keyring import Keyed, department, keys_path, state, statements_path
from tests.support import assert_refused, audit_entries

pytestmark = pytest.mark.django_db


# --- Keys replaced ----------------------------------------------------------------------------


def test_a_members_new_key_is_signed_as_a_replacement(version_one: Keyed):
    """Bob lost his phone and his recovery secret: Carol signs his new key in place of the old."""
    k = version_one
    old = k.pairs["surgeon_bob"]
    new = k.publish("surgeon_bob", replace=True)
    members = {m["user"]: m for m in k.api("head_carol").get(keys_path(k.h)).json()["members"]}
    assert members[k.h.surgeon_bob.pk]["attested"] is False
    response = k.attest("surgeon_bob", kind="replace", replaces=old)
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "replace"
    assert department(k).rotation_required is True
    members = {m["user"]: m for m in k.api("head_carol").get(keys_path(k.h)).json()["members"]}
    assert members[k.h.surgeon_bob.pk]["attested"] is True
    assert chain_members(k.h.plastic.pk)[k.h.surgeon_bob.pk] == ("member", new.fingerprint)

    listed = k.api("nurse_alice").get(statements_path(k.h)).json()
    replacement = listed["statements"][-1]
    assert replacement["seq"] == 4 and listed["head"] == k.head.to_dict()
    assert replacement["signed"]["statement"]["replaces"] == old.fingerprint
    # The replaced key is listed too: earlier statements and wraps name it.
    assert listed["keys"][old.fingerprint] == old.public.to_dict()
    assert listed["keys"][new.fingerprint] == new.public.to_dict()
    assert k.chain().members[k.h.surgeon_bob.pk].fingerprint == new.fingerprint

    # The old key is not replaced twice, and the current one not removed while he stays.
    before = state(k.h)
    again = k.attest("surgeon_bob", kind="replace", replaces=old)
    assert_refused(again, 403, "forbidden")
    assert_refused(k.attest("surgeon_bob", kind="remove"), 403, "forbidden")
    assert state(k.h) == before


def test_the_admin_key_replaces_a_heads_lost_key(version_one: Keyed):
    """Carol, the only head, lost her key: no head is left to sign her new one but the admin key."""
    k = version_one
    k.admit_in_tables("locum_fred")
    old = k.pairs["head_carol"]
    new = k.publish("head_carol", replace=True)
    response = k.attest("head_carol", "head", None, kind="replace", replaces=old)
    assert response.status_code == 201, response.content
    assert audit_entries("key.statement_signed")[-1].data["signed_by"] == "admin_key"
    assert department(k).rotation_required is True
    assert chain_members(k.h.plastic.pk)[k.h.head_carol.pk] == ("head", new.fingerprint)

    # Her old key signs nothing more; her new one does.
    k.pairs["head_carol"] = old
    before = state(k.h)
    assert_refused(k.attest("locum_fred"), 403, "forbidden")
    assert state(k.h) == before
    k.pairs["head_carol"] = new
    assert k.attest("locum_fred").status_code == 201
    assert k.chain().roles()[k.h.locum_fred.pk] == "member"


def test_a_head_signs_her_own_new_key_with_the_one_it_replaces(version_one: Keyed):
    """The chain holds Carol's old key until the replacement: her old device signs it."""
    k = version_one
    old = k.pairs["head_carol"]
    new = k.publish("head_carol", replace=True)
    k.pairs["head_carol"] = old
    response = k.attest("head_carol", "head", kind="replace", subject_key=new, replaces=old)
    assert response.status_code == 201, response.content
    assert StoredStatement.objects.get(pk=response.json()["id"]).signer_id == k.h.head_carol.pk
    assert department(k).rotation_required is True
    k.pairs["head_carol"] = new
    k.admit_in_tables("locum_fred")
    assert k.attest("locum_fred").status_code == 201
    assert k.chain().members[k.h.head_carol.pk].fingerprint == new.fingerprint


def _remove_alice(k: Keyed):
    response = k.api("head_carol").delete(
        f"/api/departments/{k.h.plastic.pk}/members/{k.h.nurse_alice.pk}"
    )
    assert response.status_code == 200, response.content
    if department(k).key_version:
        # Bob rotates after the removal in the tables, before the signed removal.
        response = k.publish_version("surgeon_bob", 2, ("head_carol", "surgeon_bob", "compliance"))
        assert response.status_code == 201, response.content
        assert department(k).rotation_required is False
    return k.attest("nurse_alice", kind="remove")


def _replace_bobs_key(k: Keyed):
    old = k.pairs["surgeon_bob"]
    k.publish("surgeon_bob", replace=True)
    return k.attest("surgeon_bob", kind="replace", replaces=old)


@pytest.mark.parametrize("change", [_remove_alice, _replace_bobs_key], ids=["remove", "replace"])
@pytest.mark.parametrize("fixture", ["attested", "version_one"])
def test_a_signed_removal_or_replacement_requires_a_new_version_once_one_exists(
    request, fixture: str, change
):
    """Whoever was removed, or holds the replaced key, may hold the current version: the
    next message needs a new one, even if one was made since the change in the tables."""
    k: Keyed = request.getfixturevalue(fixture)
    response = change(k)
    assert response.status_code == 201, response.content
    assert department(k).rotation_required is (fixture == "version_one")
    body = k.api("head_carol").get(keys_path(k.h)).json()
    assert body["rotation_required"] is (fixture == "version_one")
    assert body["chain"] == k.head.to_dict()
