"""The server cannot add a reader: clients wrap only for admissions a head signed.

One live daphne (tests/client/conftest.py), the demo hospital's Vascular
surgery department: head_grace is appointed with the institution's admin key
(kept by seed_demo under var/ for the demo) and admits nurse_ines by
signature. intern_jules is a member in the server's tables only, as if the
server had added him on its own; the clients must refuse him and say why.
A statement planted in the database breaks the chain for everyone.
"""

import contextlib
import json
import sqlite3

import pytest

from client import RoundsClient
from client.sdk import RoundsClientError
from core.crypto import CONTEXT_STATEMENT, IdentityKeyPair, b64encode, canonical_json
from tests.live.sdk import (
    LIMITS,
    appoint,
    attest,
    demo_admin_key,
    department_named,
    new_thread,
    query,
    signed_in,
    versions_in_database,
)
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


def wrapped_for(cluster: LiveCluster, department: int, fingerprint: str) -> list[int]:
    rows = query(
        cluster,
        "SELECT v.version FROM rooms_keywrap w "
        "JOIN rooms_roomkeyversion v ON v.id = w.key_version_id "
        "WHERE v.department_id = ? AND w.recipient_fingerprint = ? ORDER BY v.version",
        (department, fingerprint),
    )
    return [row[0] for row in rows]


async def test_an_admission_the_server_made_alone_gets_no_key(cluster: LiveCluster):
    server = cluster.servers[0]
    admin_key = demo_admin_key(cluster)
    async with contextlib.AsyncExitStack() as stack:

        async def login(username: str) -> RoundsClient:
            return await stack.enter_async_context(signed_in(server, username))

        grace, ines, jules = [
            await login(name) for name in ("head_grace", "nurse_ines", "intern_jules")
        ]
        for client in (grace, ines, jules):
            assert await client.setup_keys(**LIMITS)
        vascular = await department_named(grace, "Vascular surgery")

        # Before the admin key appoints a head, nobody's admission verifies.
        with pytest.raises(RoundsClientError) as refused:
            await grace.share_history(vascular, ines.user["id"])
        assert refused.value.code == "unverified_member"
        await appoint(server, vascular, grace, admin_key)
        assert await attest(grace, vascular, ines) == ["admit"]

        # 1. Jules is a member for the server, but no head signed his admission:
        # the key is wrapped for Grace, Ines and the compliance key, not for him.
        thread = await new_thread(grace, vascular, "Membership: graft check")
        await grace.send_text(thread, "Graft patent")
        assert grace.unattested[vascular] == {jules.user["id"]}
        assert wrapped_for(cluster, vascular, jules.keys.identity.fingerprint) == []
        assert wrapped_for(cluster, vascular, ines.keys.identity.fingerprint) == [1]
        with pytest.raises(RoundsClientError) as refused:
            await ines.share_history(vascular, jules.user["id"])
        assert refused.value.code == "unverified_member"
        assert wrapped_for(cluster, vascular, jules.keys.identity.fingerprint) == []

        # 2. Jules cannot make a version of his own either: the server refuses him as the
        # clients would (they refuse such a version too: tests/client/test_malicious_server.py).
        with pytest.raises(RoundsClientError) as refused:
            await jules.room_key(vascular)
        assert refused.value.code == "not_attested"
        assert versions_in_database(cluster, vascular) == [1]

        # 3. A statement planted in the server's database, signed by no head: every
        # client refuses the whole chain, naming the statement.
        forger = IdentityKeyPair.generate()
        head = (await grace.membership.chain(vascular)).head
        statement = {
            "v": 2,
            "department": vascular,
            "seq": head.seq + 1,
            "prev": head.hash,
            "kind": "admit",
            "subject_user": jules.user["id"],
            "subject_fingerprint": jules.keys.identity.fingerprint,
            "replaces": None,
            "role": "member",
            "issued_at": "2030-01-01T00:00:00Z",
            "signer_user": grace.user["id"],
            "signer_fingerprint": grace.keys.identity.fingerprint,
        }
        signed = {
            "statement": statement,
            "sig": b64encode(forger.sign(CONTEXT_STATEMENT, canonical_json(statement))),
        }
        insert_statement(
            cluster, vascular, jules.user["id"], grace.user["id"], signed, head.seq + 1
        )
        keys = await grace.call("GET", f"/api/departments/{vascular}/keys")
        assert {m["user"]: m["attested"] for m in keys["members"]}[jules.user["id"]] is True
        await rotate_needed(grace, vascular)
        with pytest.raises(RoundsClientError) as refused:
            await grace.room_key(vascular)
        assert refused.value.code == "membership_unverified"
        assert "statement 2" in refused.value.message  # appointment, Ines, then the forgery
        assert refused.value.data["reason"] == "bad_signature"
        assert wrapped_for(cluster, vascular, jules.keys.identity.fingerprint) == []


async def rotate_needed(head: RoundsClient, department: int) -> None:
    """A removal makes the next post need a new version (nurse_karim leaves)."""
    members = await head.call("GET", f"/api/departments/{department}/members")
    karim = next(m["user"] for m in members if m["user"]["username"] == "nurse_karim")
    await head.call("DELETE", f"/api/departments/{department}/members/{karim['id']}")


def insert_statement(
    cluster: LiveCluster, department: int, subject: int, signer: int, signed: dict, seq: int
) -> None:
    """Write a statement row straight into the database, as a compromised server could."""
    database = cluster.database
    params = (department, "admit", subject, signer, json.dumps(signed), seq, "ab" * 32)
    if database.vendor == "postgresql":
        import psycopg

        with psycopg.connect(database.url) as conn:
            conn.execute(
                "INSERT INTO rooms_membershipstatement "
                "(department_id, kind, subject_id, signer_id, signed, seq, hash, created_at) "
                "VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s, now())",
                params,
            )
        return
    with contextlib.closing(sqlite3.connect(database.name)) as conn:
        conn.execute(
            "INSERT INTO rooms_membershipstatement "
            "(department_id, kind, subject_id, signer_id, signed, seq, hash, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, datetime('now'))",
            params,
        )
        conn.commit()


async def test_a_substituted_admin_key_is_refused(cluster: LiveCluster):
    """A client pinned to the institution's admin key trusts no other."""
    server = cluster.servers[0]
    async with signed_in(server, "surgeon_henri", admin_pin="ab" * 32) as henri:
        vascular = await department_named(henri, "Vascular surgery")
        with pytest.raises(RoundsClientError) as refused:
            await henri.membership.chain(vascular)
        assert refused.value.code == "admin_key_mismatch"
        assert refused.value.data["server"] == demo_admin_key(cluster).fingerprint
