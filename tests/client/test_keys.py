"""The Python client's end-to-end key handling, against a real daphne process.

One process (SQLite and the in-memory layer, or PostgreSQL and Redis when
DATABASE_URL and REDIS_URL name them), seeded by seed_demo. The compliance
officer's key pair is generated here; its private half never reaches the
server, and the test reads the compliance wraps straight from the server's
database to show that it opens every message.
"""

import contextlib
import copy
from typing import Any

import httpx
import pytest

from client.sdk import RoundsClient, RoundsClientError
from core.crypto import (
    CryptoError,
    IdentityKeyPair,
    PublicIdentity,
    WrapRecord,
    decrypt_message,
    encrypt_message,
    generate_recovery_secret,
    unwrap_room_key,
)
from tests.live.sdk import (
    LIMITS,
    appoint,
    as_json,
    attest,
    demo_admin_key,
    department_named,
    in_thread,
    new_thread,
    query,
    signed_in,
    versions_in_database,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


# --- helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compliance(cluster: LiveCluster) -> IdentityKeyPair:
    """The institution's compliance key pair, its public half set by the administrator."""
    pair = IdentityKeyPair.generate()
    with httpx.Client(base_url=cluster.servers[0].url, timeout=10) as http:
        login = http.post("/api/auth/login", json={"username": "admin", "password": DEMO_PASSWORD})
        login.raise_for_status()
        response = http.put(
            "/api/keys/institution/compliance",
            json={"public": pair.public.to_dict()},
            headers={"Authorization": f"Bearer {login.json()['token']}"},
        )
        response.raise_for_status()
        assert response.json()["fingerprint"] == pair.fingerprint
    return pair


# --- the conversation ---------------------------------------------------------------------


async def test_an_encrypted_conversation_through_joins_removals_and_a_new_device(
    cluster: LiveCluster, compliance: IdentityKeyPair
):
    server = cluster.servers[0]
    pin = compliance.fingerprint
    admin_key = demo_admin_key(cluster)
    texts: list[str] = []
    async with contextlib.AsyncExitStack() as stack:

        async def login(username: str, **options: Any) -> RoundsClient:
            return await stack.enter_async_context(
                signed_in(server, username, pin=pin, admin_pin=admin_key.fingerprint, **options)
            )

        bob = await login("surgeon_bob")
        alice = await login("nurse_alice")
        frank = await login("nurse_frank")
        erin = await login("intern_erin")
        carol = await login("head_carol", connect=False)

        # First devices: an identity each, published, and a backup under a new secret.
        recovery = {}
        for client in (bob, alice, frank):
            secret = await client.setup_keys(**LIMITS)
            assert secret is not None and len(secret) == 34  # 7 groups of 4, dashes between
            recovery[client.user["username"]] = secret
            published = await client.call("GET", f"/api/keys/identity/{client.user['id']}")
            assert published["fingerprint"] == client.keys.identity.fingerprint
        assert await bob.setup_keys(**LIMITS) is None  # already set up: nothing to do
        plastic = await department_named(bob, "Plastic surgery")

        # The admin key appoints Carol; Carol signs the admission of each member's key.
        assert await carol.setup_keys(**LIMITS)
        await appoint(server, plastic, carol, admin_key, pin=pin)
        for client in (bob, alice, frank):
            assert await attest(carol, plastic, client) == ["admit"]
        assert await attest(carol, plastic, bob) == []  # already attested
        chain = await alice.membership.chain(plastic)
        assert chain.roles() == {
            carol.user["id"]: "head",
            **{c.user["id"]: "member" for c in (bob, alice, frank)},
        }

        # 1. Bob's first message creates key version 1 and reaches Alice and Frank.
        thread = await new_thread(bob, plastic, "E2E: flap check")
        texts.append("Flap viable, recheck at 18:00")
        ack = await bob.send_text(thread, texts[0])
        assert ack["seq"] == 1
        assert bob.keys.current[plastic] == 1
        assert versions_in_database(cluster, plastic) == [1]
        first = await alice.next_event("message.new", match=in_thread(thread["id"]))
        assert await alice.open_message(first) == texts[0].encode()
        assert (
            await frank.open_message(
                await frank.next_event("message.new", match=in_thread(thread["id"]))
            )
            == texts[0].encode()
        )
        keys = await alice.call("GET", f"/api/departments/{plastic}/keys")
        assert keys["key_version"] == 1 and not keys["rotation_required"]
        assert keys["compliance"]["fingerprint"] == compliance.fingerprint

        # Opening the same envelope again (a resume, a history page) is fine; another
        # envelope under the same sender and client_msg_id is a replay.
        assert await alice.open_message(first) == texts[0].encode()
        forged = copy.deepcopy(first)
        forged["message"]["envelope"] = encrypt_message(
            b"Flap necrotic, back to theatre",
            room_key=bob.keys.room_key(plastic, 1),
            head=(await bob.membership.chain(plastic)).head,
            thread=thread["id"],
            sender=bob.user["id"],
            client_msg_id=first["message"]["client_msg_id"],
            signer=bob.keys.identity,
        )
        with pytest.raises(RoundsClientError) as refused:
            await alice.open_message(forged)
        assert refused.value.code == "replay"
        # An envelope presented as another thread's message is refused before anything else.
        moved = copy.deepcopy(first)
        moved["message"]["thread"] = thread["id"] + 1000
        with pytest.raises(RoundsClientError) as refused:
            await alice.open_message(moved)
        assert refused.value.code == "envelope_mismatch"
        tampered = copy.deepcopy(first)
        tampered["message"]["envelope"]["header"]["client_msg_id"] = "another-id-0001"
        tampered["message"]["client_msg_id"] = "another-id-0001"
        with pytest.raises(RoundsClientError) as refused:
            await alice.open_message(tampered)
        assert refused.value.code == "bad_signature"

        # 2. Erin was admitted before she had keys: no wrap for her until Carol signs
        # her admission and a member shares the history (Frank, here, who is removed
        # later), and once is enough.
        erin_secret = await erin.setup_keys(**LIMITS)
        assert erin_secret
        with pytest.raises(RoundsClientError) as refused:
            await erin.room_key(plastic)
        assert refused.value.code == "not_attested"
        with pytest.raises(RoundsClientError) as refused:
            await frank.share_history(plastic, erin.user["id"])
        assert refused.value.code == "unverified_member"
        assert "not in the department's chain" in refused.value.message
        assert await attest(carol, plastic, erin) == ["admit"]
        shared = await frank.share_history(plastic, erin.user["id"])
        assert (shared["shared"], shared["skipped"]) == ([1], [])
        again = await bob.share_history(plastic, erin.user["id"])
        assert (again["shared"], again["skipped"]) == ([], [1])
        assert (await erin.room_key(plastic)).version == 1
        page = await erin.call("GET", f"/api/threads/{thread['id']}/messages")
        # A history message names no department: Erin's client finds the thread's.
        assert await erin.open_message(page["messages"][0]) == texts[0].encode()

        # 3. Carol removes Frank (and signs it); Bob's next message rotates to version 2.
        removed = await carol.remove_member(plastic, frank.user["id"])
        assert removed["signed"] == ["remove"]
        assert frank.user["id"] not in (await alice.membership.chain(plastic, fresh=True)).members
        keys = await bob.call("GET", f"/api/departments/{plastic}/keys")
        assert keys["rotation_required"]
        assert bob.keys.current[plastic] == 1  # still cached, until the chain or the server says
        texts.append("Frank is off the rota; new key in use")
        refusals = []
        post = bob.post

        async def watched_post(*args: Any, **kwargs: Any) -> dict:
            try:
                return await post(*args, **kwargs)
            except RoundsClientError as error:
                refusals.append(error.code)
                raise

        bob.post = watched_post
        ack = await bob.send_text(thread, texts[1])
        assert ack["seq"] == 2
        # Bob's client rotates as soon as it sees the removal in the chain (the event
        # made it look again), or when the server refuses the stale version.
        assert refusals in ([], ["key_rotation_required"])
        assert bob.keys.current[plastic] == 2
        assert versions_in_database(cluster, plastic) == [1, 2]
        second = await alice.next_event("message.new", match=lambda f: f["message"]["seq"] == 2)
        assert second["message"]["envelope"]["header"]["key_version"] == 2
        assert await alice.open_message(second) == texts[1].encode()
        assert alice.keys.versions(plastic) == [1, 2]
        assert (
            await erin.open_message(
                await erin.next_event(
                    "message.new", match=lambda f: f.get("message", {}).get("seq") == 2
                )
            )
            == texts[1].encode()
        )
        # Frank's client cannot get version 2: he is no member, and no wrap names him.
        with pytest.raises(RoundsClientError) as refused:
            await frank.room_key(plastic)
        assert refused.value.code == "not_found"
        with pytest.raises(RoundsClientError):
            await frank.open_message(second)
        assert frank.keys.versions(plastic) == [1]
        frank_wraps = query(
            cluster,
            "SELECT v.version FROM rooms_keywrap w "
            "JOIN rooms_roomkeyversion v ON v.id = w.key_version_id "
            "WHERE v.department_id = ? AND w.recipient_fingerprint = ?",
            (plastic, frank.keys.identity.fingerprint),
        )
        assert [row[0] for row in frank_wraps] == [1]

        # 4. Alice's new phone: no keys until she gives her recovery secret.
        phone = await login("nurse_alice", connect=False)
        with pytest.raises(RoundsClientError) as refused:
            await phone.setup_keys()
        assert refused.value.code == "recovery_secret_required"
        for wrong in (generate_recovery_secret(), "not a recovery secret"):
            with pytest.raises(RoundsClientError) as refused:
                await phone.setup_keys(wrong)
            assert refused.value.code == "wrong_passphrase"
        assert phone.keys.identity is None
        with pytest.raises(RoundsClientError) as refused:
            await phone.send_text(thread, "before recovery")
        assert refused.value.code == "keys_not_set_up"
        # Any spelling of the secret that normalises the same opens the backup.
        assert await phone.setup_keys(recovery["nurse_alice"].lower().replace("-", " ")) is None
        assert phone.keys.identity == alice.keys.identity
        page = await phone.call("GET", f"/api/threads/{thread['id']}/messages")
        assert [await phone.open_message(m) for m in page["messages"]] == [
            t.encode() for t in texts
        ]
        # Erin's new device checks her version 1 wrap against Frank's identity, which the
        # server shows as its wrapper although Frank is no longer a member.
        tablet = await login("intern_erin", connect=False)
        assert await tablet.setup_keys(erin_secret) is None
        assert [await tablet.open_message(m, department=plastic) for m in page["messages"]] == [
            t.encode() for t in texts
        ]
        assert tablet.keys.versions(plastic) == [1, 2]

        texts.append("Read on my new phone")
        await phone.connect()
        await phone.send_text(thread["id"], texts[2])
        third = await bob.next_event("message.new", match=lambda f: f["message"]["seq"] == 3)
        assert await bob.open_message(third) == texts[2].encode()

        # 5. Bob loses his device and his secret: a new key, whose replacement Carol
        # signs. His earlier messages still verify, on a device that never saw his old
        # key, with the key the chain held for him where each names its head.
        new_bob = IdentityKeyPair.generate()
        await bob.call(
            "PUT",
            "/api/keys/identity",
            json={"public": new_bob.public.to_dict(), "replace": True},
        )
        assert await carol.attest(plastic, bob.user["id"], fingerprint=new_bob.fingerprint) == [
            "replace"
        ]
        keys = await carol.call("GET", f"/api/departments/{plastic}/keys")
        assert keys["rotation_required"]  # his old key must not read what comes next
        laptop = await login("nurse_alice", connect=False)
        assert await laptop.setup_keys(recovery["nurse_alice"]) is None
        page = await laptop.call("GET", f"/api/threads/{thread['id']}/messages")
        assert [await laptop.open_message(m, department=plastic) for m in page["messages"]] == [
            t.encode() for t in texts
        ]

    # 6. The compliance key opens every message: its wraps, read from the server's database.
    identities = {
        fingerprint: PublicIdentity.from_dict({"x25519": x25519, "ed25519": ed25519})
        for fingerprint, x25519, ed25519 in query(
            cluster, "SELECT fingerprint, x25519, ed25519 FROM accounts_identitykey"
        )
    }
    by_user = {
        user: identities[fingerprint]
        for user, fingerprint in query(
            # Every message here was signed with its sender's first key: the oldest wins.
            cluster,
            "SELECT user_id, fingerprint FROM accounts_identitykey ORDER BY id DESC",
        )
    }
    room_keys = {}
    for (record,) in query(
        cluster,
        "SELECT w.record FROM rooms_keywrap w "
        "JOIN rooms_roomkeyversion v ON v.id = w.key_version_id "
        "WHERE v.department_id = ? AND w.recipient_user_id IS NULL",
        (plastic,),
    ):
        wrap = WrapRecord.from_dict(as_json(record))
        assert wrap.recipient_fp == compliance.fingerprint
        room_keys[wrap.version] = unwrap_room_key(
            wrap, recipient=compliance, wrapper=identities[wrap.wrapper_fp]
        )
    assert sorted(room_keys) == [1, 2]
    opened = [
        decrypt_message(
            {"header": as_json(header), "ciphertext": ciphertext},
            room_key=room_keys[as_json(header)["key_version"]],
            sender_key=by_user[sender],
        ).decode()
        for sender, header, ciphertext in query(
            cluster,
            "SELECT m.sender_id, m.header, m.ciphertext FROM chat_message m "
            "JOIN chat_thread t ON t.id = m.thread_id WHERE t.department_id = ? ORDER BY m.id",
            (plastic,),
        )
    ]
    assert opened == texts


# --- the pinned compliance key ------------------------------------------------------------


async def test_a_client_refuses_to_wrap_for_a_compliance_key_other_than_its_pinned_one(
    cluster: LiveCluster, compliance: IdentityKeyPair
):
    server = cluster.servers[0]
    async with (
        signed_in(server, "head_grace", pin="0" * 64) as grace,
        signed_in(server, "nurse_ines", pin=compliance.public.fingerprint_grouped) as ines,
    ):
        assert await grace.setup_keys(**LIMITS)
        assert await ines.setup_keys(**LIMITS)
        vascular = await department_named(grace, "Vascular surgery")
        await appoint(server, vascular, grace, demo_admin_key(cluster), pin=compliance.fingerprint)
        assert await attest(grace, vascular, ines) == ["admit"]
        with pytest.raises(RoundsClientError) as refused:
            await grace.room_key(vascular)
        assert refused.value.code == "compliance_key_mismatch"
        assert refused.value.data["server"] == compliance.fingerprint
        thread = await new_thread(grace, vascular, "E2E: pinned compliance key")
        with pytest.raises(RoundsClientError) as refused:
            await grace.send_text(thread, "Graft patent")
        assert refused.value.code == "compliance_key_mismatch"
        # Nothing was wrapped, nothing published.
        keys = await grace.call("GET", f"/api/departments/{vascular}/keys")
        assert keys["key_version"] == 0 and keys["my_wraps"] == []
        assert versions_in_database(cluster, vascular) == []
        assert grace.keys.versions(vascular) == []

        # Pinned (in the grouped form people compare) to the right key, Ines's client
        # creates version 1; Grace's client still reads, as reading wraps nothing.
        await ines.send_text(thread["id"], "Graft patent", department=vascular)
        assert versions_in_database(cluster, vascular) == [1]
        page = await grace.call("GET", f"/api/threads/{thread['id']}/messages")
        assert await grace.open_message(page["messages"][0], department=vascular) == b"Graft patent"


# --- every department, and only its own ---------------------------------------------------


def compliance_room_keys(cluster: LiveCluster, compliance: IdentityKeyPair) -> dict:
    """(department, version) → room key, opened from the compliance wraps in the database."""
    identities = {
        fingerprint: PublicIdentity.from_dict({"x25519": x25519, "ed25519": ed25519})
        for fingerprint, x25519, ed25519 in query(
            cluster, "SELECT fingerprint, x25519, ed25519 FROM accounts_identitykey"
        )
    }
    opened = {}
    for (record,) in query(
        cluster, "SELECT record FROM rooms_keywrap WHERE recipient_user_id IS NULL"
    ):
        wrap = WrapRecord.from_dict(as_json(record))
        opened[(wrap.department, wrap.version)] = unwrap_room_key(
            wrap, recipient=compliance, wrapper=identities[wrap.wrapper_fp]
        )
    return opened


async def test_the_compliance_key_reads_every_department_and_no_room_key_another(
    cluster: LiveCluster, compliance: IdentityKeyPair
):
    """Runs after the conversations above: both departments hold messages by now."""
    room_keys = compliance_room_keys(cluster, compliance)
    messages = query(
        cluster,
        "SELECT m.id, t.department_id, m.header, m.ciphertext, k.x25519, k.ed25519 "
        "FROM chat_message m JOIN chat_thread t ON t.id = m.thread_id "
        "JOIN accounts_identitykey k ON k.user_id = m.sender_id ORDER BY m.id",
    )
    # One row per message and key its sender ever published: one of them signed it.
    assert len({row[1] for row in messages}) == 2
    opened: set[int] = set()
    for message_id, department, header, ciphertext, x25519, ed25519 in messages:
        envelope = {"header": as_json(header), "ciphertext": ciphertext}
        sender_key = PublicIdentity.from_dict({"x25519": x25519, "ed25519": ed25519})
        version = envelope["header"]["key_version"]
        try:
            decrypt_message(
                envelope, room_key=room_keys[(department, version)], sender_key=sender_key
            )
        except CryptoError:
            continue  # the sender's other key (a replaced one) signed it
        opened.add(message_id)
        # Every room key of the other department fails on this message.
        for (other, _), other_key in room_keys.items():
            if other == department:
                continue
            with pytest.raises(CryptoError):
                decrypt_message(envelope, room_key=other_key, sender_key=sender_key)
    assert opened == {row[0] for row in messages}
