"""Format 1 rows kept from before the chain: neither served nor counted.

Statements kept before format 2 have no position and versions no record
(rooms/migrations/0003_membership_chain.py): they stay for the audit trail,
clients could not verify them, so the server lists none of them, leaves
them out of the chain, and asks for a new version where a department had
one (docs/operations.md).
"""

import importlib
from typing import Any

import pytest
from django.apps import apps

from core.crypto import b64encode
from rooms.chain import chain_members
from rooms.models import Department, KeyWrap, RoomKeyVersion
from rooms.models import MembershipStatement as StoredStatement
from tests.rooms.keyring import (
    EVERYONE,
    MEMBERS,
    Keyed,
    keys_path,
    open_my_wraps,
    share_path,
    state,
    statements_path,
)
from tests.support import assert_refused

pytestmark = pytest.mark.django_db


# --- Format 1 rows -------------------------------------------------------------------------------


def _format_one_statement(k: Keyed, subject: Any) -> StoredStatement:
    """A statement kept before format 2: no position, no link."""
    return StoredStatement.objects.create(
        department=k.h.plastic,
        kind="admit",
        subject=subject,
        signer=k.h.head_carol,
        signed={
            "statement": {"v": 1, "kind": "admit", "department": k.h.plastic.pk},
            "sig": b64encode(bytes(64)),
        },
    )


def test_format_one_statements_are_neither_listed_nor_counted(attested: Keyed):
    k = attested
    k.publish("intern_erin")
    old = _format_one_statement(k, k.h.intern_erin)
    assert old.seq is None
    listed = k.api("nurse_alice").get(statements_path(k.h)).json()
    assert [s["seq"] for s in listed["statements"]] == [1, 2, 3]
    assert old.pk not in {s["id"] for s in listed["statements"]}
    assert listed["head"] == k.head.to_dict()
    assert k.pairs["intern_erin"].fingerprint not in listed["keys"]
    assert k.h.intern_erin.pk not in chain_members(k.h.plastic.pk)
    # The chain goes on from its own head.
    k.admit_in_tables("locum_fred")
    response = k.attest("locum_fred")
    assert response.status_code == 201 and response.json()["seq"] == 4


def test_the_migration_asks_for_a_new_version_where_format_one_had_one(bare: Keyed):
    """rooms/migrations/0003: a department with a key version needs a format 2 one before
    the next message; format 1 statements keep no position."""
    k = bare
    migration = importlib.import_module("rooms.migrations.0003_membership_chain")
    RoomKeyVersion.objects.create(department=k.h.plastic, version=1, created_by=k.h.head_carol)
    Department.objects.filter(pk=k.h.plastic.pk).update(key_version=1)
    old = _format_one_statement(k, k.h.surgeon_bob)

    migration.reanchor(apps, None)

    plastic = Department.objects.get(pk=k.h.plastic.pk)
    vascular = Department.objects.get(pk=k.h.vascular.pk)
    assert (plastic.key_version, plastic.rotation_required) == (1, True)
    assert (vascular.key_version, vascular.rotation_required) == (0, False)
    assert (plastic.chain_seq, plastic.chain_head) == (0, "0" * 64)
    old.refresh_from_db()
    assert (old.seq, old.hash) == (None, "")
    assert chain_members(k.h.plastic.pk) == {}


def test_format_one_versions_and_their_wraps_are_not_served(attested: Keyed):
    """A version kept from before format 2 has no record: clients cannot use it, so the
    server neither lists it nor hands out its wraps, and the next version is made anew."""
    k = attested
    h = k.h
    old = RoomKeyVersion.objects.create(department=h.plastic, version=1, created_by=h.surgeon_bob)
    KeyWrap.objects.create(
        key_version=old,
        recipient_fingerprint=k.pairs["nurse_alice"].fingerprint,
        recipient_user=h.nurse_alice,
        wrapper=h.surgeon_bob,
        record={"v": 1, "department": h.plastic.pk, "version": 1},
    )
    Department.objects.filter(pk=h.plastic.pk).update(key_version=1, rotation_required=True)

    body = k.api("nurse_alice").get(keys_path(h)).json()
    assert (body["key_version"], body["rotation_required"]) == (1, True)
    assert body["versions"] == [] and body["my_wraps"] == [] and body["wrappers"] == {}
    # Nobody can share it either: for clients it does not exist.
    before = state(h)
    shared = k.api("surgeon_bob").post(share_path(h), {"wraps": k.wraps(1, "surgeon_bob", MEMBERS)})
    assert_refused(shared, 400, "invalid_request")
    assert state(h) == before

    response = k.publish_version("surgeon_bob", 2, EVERYONE)
    assert response.status_code == 201, response.content
    body = k.api("nurse_alice").get(keys_path(h)).json()
    assert (body["key_version"], body["rotation_required"]) == (2, False)
    assert [v["version"] for v in body["versions"]] == [2]
    assert [w["version"] for w in body["my_wraps"]] == [2]
    assert open_my_wraps(k, "nurse_alice") == {2: k.key(2)}
