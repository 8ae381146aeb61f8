"""The Python client against a server that lies with correctly signed data.

A real daphne process keeps a real ward, and a scripted server stands in
front of it: the SDK's HTTP transport is replaced by one that forwards every
request to the real server and rewrites chosen answers, as a compromised
server would (docs/crypto.md §13, docs/threat-model.md). Each scenario of
issue 11's table, and each smaller rule, is refused with its own code, and
nothing is wrapped, signed or posted under what was refused.

The ward (built once for the module, with the real client): the admin key
appoints head_carol (statement 1); she admits surgeon_bob, nurse_alice and
nurse_frank (2 to 4); Bob's first message makes key version 1 at statement 4;
Carol removes Frank (5); Bob's next message makes version 2 at statement 5.
Frank kept his key and version 1's, as a removed member does.
"""

import asyncio
import contextlib
import copy
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from client.sdk import RoundsClient, RoundsClientError
from core.crypto import (
    ChainHead,
    IdentityKeyPair,
    RoomKey,
    WrapRecord,
    encrypt_message,
    make_key_version,
    wrap_room_key,
)
from tests.live.forgeries import (
    another_key_under_commitment,
    chain_under,
    hand_over_wrap,
    non_canonical,
    substitute_institution_key,
    substitute_member_key,
    without_last_statement,
)
from tests.live.sdk import LIMITS, demo_admin_key, demo_pins, department_named, new_thread
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(120)]


# --- the scripted server -----------------------------------------------------------------------


class ScriptedServer(httpx.AsyncBaseTransport):
    """The real server behind, some of its answers rewritten; every request recorded."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.rewrites: list[tuple[str, re.Pattern, Callable[[Any], Any]]] = []
        self.requests: list[tuple[str, str, bytes]] = []

    def rewrite(self, method: str, path: str, change: Callable[[Any], Any]) -> None:
        """Answer `method path` (a regex) with `change(real answer)`."""
        self.rewrites.append((method, re.compile(path), change))

    def sent(self, method: str, path: str) -> list[Any]:
        """The JSON bodies the client sent to `method path` (a regex)."""
        return [
            json.loads(body) if body else None
            for m, p, body in self.requests
            if m == method and re.fullmatch(path, p)
        ]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        self.requests.append((request.method, request.url.path, body))
        response = await self.real.handle_async_request(request)
        for method, pattern, change in self.rewrites:
            if request.method == method and pattern.fullmatch(request.url.path):
                await response.aread()
                answer = change(copy.deepcopy(json.loads(response.content)))
                return httpx.Response(response.status_code, json=answer, request=request)
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


# --- the ward ----------------------------------------------------------------------------------


@dataclass
class Ward:
    cluster: LiveCluster
    pins: dict[str, str]
    folder: str  # the devices' state directories live here
    department: int = 0
    thread: dict = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    identities: dict[str, IdentityKeyPair] = field(default_factory=dict)
    room_keys: dict[int, RoomKey] = field(default_factory=dict)
    messages: list[dict] = field(default_factory=list)  # the thread's history page
    devices: dict[str, str] = field(default_factory=dict)  # username → state directory

    @property
    def url(self) -> str:
        return self.cluster.servers[0].url

    def path(self, tail: str) -> str:
        return f"/api/departments/{self.department}{tail}"


@contextlib.asynccontextmanager
async def device(
    ward: Ward,
    username: str,
    server: ScriptedServer | None = None,
    *,
    fresh: bool = False,
    connect: bool = False,
):
    """`username` on their own device (its remembered state), or on a new one (`fresh`),
    with the keys they set up, talking to `server`."""
    if fresh or username not in ward.devices:
        state = tempfile.mkdtemp(prefix="device-", dir=ward.folder)
        ward.devices.setdefault(username, state)
    else:
        state = ward.devices[username]
    client = RoundsClient(
        ward.url,
        pinned_admin_fingerprint=ward.pins["admin"],
        pinned_compliance_fingerprint=ward.pins["compliance"],
        state_dir=state,
        http_transport=server,
    )
    try:
        await client.login(username, DEMO_PASSWORD)
        if username in ward.identities:
            client.keys.identity = ward.identities[username]
            client.keys.backup_stored = True
        if connect:
            await client.connect()
        yield client
    finally:
        await client.aclose()


async def build_ward(ward: Ward) -> None:
    names = ("head_carol", "surgeon_bob", "nurse_alice", "nurse_frank")
    for name in names:
        ward.devices[name] = tempfile.mkdtemp(prefix="device-", dir=ward.folder)
    async with contextlib.AsyncExitStack() as stack:
        people = {
            name: await stack.enter_async_context(device(ward, name, connect=True))
            for name in names
        }
        for name, client in people.items():
            await client.setup_keys(**LIMITS)
            ward.identities[name] = client.keys.identity
            ward.users[name] = client.me()
        carol, bob = people["head_carol"], people["surgeon_bob"]
        ward.department = await department_named(carol, "Plastic surgery")
        async with device(ward, "admin") as admin:
            await admin.appoint_head(
                ward.department,
                ward.users["head_carol"],
                demo_admin_key(ward.cluster),
                fingerprint=carol.keys.identity.fingerprint,
            )
        for name in ("surgeon_bob", "nurse_alice", "nurse_frank"):
            fingerprint = ward.identities[name].fingerprint
            assert await carol.attest(ward.department, ward.users[name], fingerprint=fingerprint)
        ward.thread = await new_thread(bob, ward.department, "Scripted server: flap")
        await bob.send_text(ward.thread, "Flap warm, refill 2 s")
        await carol.remove_member(ward.department, ward.users["nurse_frank"])
        await bob.send_text(ward.thread, "Frank is off the rota")
        ward.room_keys = {v: bob.keys.room_key(ward.department, v) for v in (1, 2)}
        page = await carol.call("GET", f"/api/threads/{ward.thread['id']}/messages")
        ward.messages = page["messages"]
        assert [m["envelope"]["header"]["key_version"] for m in ward.messages] == [1, 2]
        assert [m["envelope"]["header"]["chain_seq"] for m in ward.messages] == [4, 5]
        # Alice's and Carol's devices have read both: they verified statement 5 and version 2.
        for reader in (people["nurse_alice"], carol):
            for message in ward.messages:
                await reader.open_message(message, department=ward.department)


@pytest.fixture(scope="module")
def ward(cluster: LiveCluster, tmp_path_factory) -> Ward:
    built = Ward(cluster, demo_pins(cluster.servers[0]), str(tmp_path_factory.mktemp("devices")))
    asyncio.run(build_ward(built))
    return built


def raises_code(code: str):
    """`with raises_code("code"):` — the block raises a RoundsClientError with this code."""

    @contextlib.contextmanager
    def check():
        with pytest.raises(RoundsClientError) as caught:
            yield caught
        assert caught.value.code == code, caught.value

    return check()


async def message_count(ward: Ward) -> int:
    async with device(ward, "head_carol") as carol:
        page = await carol.call("GET", f"/api/threads/{ward.thread['id']}/messages")
        return len(page["messages"])


# --- A: an older key version named as current --------------------------------------------------


async def test_a_an_older_version_named_current_is_refused(ward: Ward):
    server = ScriptedServer()
    server.rewrite(
        "GET",
        ward.path("/keys"),
        lambda keys: {**keys, "key_version": 1, "rotation_required": False},
    )
    # Alice's device verified version 2: version 1 is a rollback.
    async with device(ward, "nurse_alice", server, connect=True) as alice:
        with raises_code("key_version_rollback"):
            await alice.send_text(ward.thread, "Under the key Frank holds?")
    # A new device of hers has no memory; the server hides version 2 from it too. The
    # chain shows Frank's removal after version 1 was made: a removed member may hold it.
    hiding = ScriptedServer()
    hiding.rewrite(
        "GET",
        ward.path("/keys"),
        lambda keys: {
            **keys,
            "key_version": 1,
            "rotation_required": False,
            "versions": [v for v in keys["versions"] if v["version"] == 1],
            "my_wraps": [w for w in keys["my_wraps"] if w["version"] == 1],
        },
    )
    async with device(ward, "nurse_alice", hiding, fresh=True, connect=True) as phone:
        with raises_code("key_version_stale"):
            await phone.send_text(ward.thread, "Under the key Frank holds?")
    assert server.sent("POST", ward.path("/keys")) == hiding.sent("POST", ward.path("/keys")) == []


async def test_a2_no_version_yet_to_a_device_that_holds_one_is_refused(ward: Ward):
    server = ScriptedServer()
    server.rewrite(
        "GET",
        ward.path("/keys"),
        lambda keys: {**keys, "key_version": 0, "rotation_required": False, "my_wraps": []},
    )
    async with device(ward, "nurse_alice", server, connect=True) as alice:
        with raises_code("key_version_rollback"):
            await alice.send_text(ward.thread, "A fresh version 1, please")
    # Nothing was published under the server's say-so.
    assert server.sent("POST", ward.path("/keys")) == []


# --- B: a version made and wrapped by a removed member -----------------------------------------


@pytest.mark.parametrize(
    ("head_seq", "code"),
    [(5, "key_version_unauthorized"), (4, "key_version_stale")],
    ids=["after_his_removal", "naming_a_head_before_it"],
)
async def test_b_a_version_made_by_a_removed_member_is_refused(ward: Ward, head_seq, code):
    frank, alice = ward.identities["nurse_frank"], ward.identities["nurse_alice"]
    async with device(ward, "head_carol") as carol:
        chain = await carol.membership.chain(ward.department)
    head = ChainHead(head_seq, chain.hash_at(head_seq))
    planted = RoomKey.generate(department=ward.department, version=3)
    record = make_key_version(
        planted, head=head, creator_user=ward.users["nurse_frank"], creator=frank
    )
    wrap = wrap_room_key(planted, recipient=alice.public, wrapper=frank).to_dict()
    server = ScriptedServer()

    def serve_franks_version(keys: dict) -> dict:
        keys["versions"].append({"version": 3, "signed": record.to_dict(), "created_at": "now"})
        keys["my_wraps"].append(wrap)
        return {**keys, "key_version": 3, "rotation_required": False}

    server.rewrite("GET", ward.path("/keys"), serve_franks_version)
    async with device(ward, "nurse_alice", server, fresh=True, connect=True) as alice_client:
        with raises_code(code):
            await alice_client.send_text(ward.thread, "Under Frank's key?")
        assert alice_client.keys.room_key(ward.department, 3) is None or code == "key_version_stale"
        assert alice_client.keys.current.get(ward.department) is None
    assert server.sent("POST", ward.path("/keys")) == []


# --- C: a key the chain never admitted, shown as a member's ------------------------------------


async def test_c_a_key_the_chain_never_admitted_is_never_trusted(ward: Ward):
    bob, impostor = ward.users["surgeon_bob"], IdentityKeyPair.generate()
    server = ScriptedServer()

    impostor_for_bob = substitute_member_key(bob, impostor.public.to_dict(), impostor.fingerprint)
    server.rewrite(
        "GET",
        ward.path("/keys"),
        lambda keys: {**impostor_for_bob(keys), "rotation_required": True},
    )
    server.rewrite(
        "GET",
        f"/api/keys/identity/{bob}",
        lambda data: {
            **data,
            "public": impostor.public.to_dict(),
            "fingerprint": impostor.fingerprint,
        },
    )
    real = ward.messages[1]
    async with device(ward, "nurse_alice", server, fresh=True) as alice:
        chain = await alice.membership.chain(ward.department)
        forged = copy.deepcopy(real)
        forged["client_msg_id"] = "impostor-0001"
        forged["envelope"] = encrypt_message(
            b"Stop the anticoagulants",
            room_key=ward.room_keys[2],
            head=chain.head,
            thread=ward.thread["id"],
            sender=bob,
            client_msg_id="impostor-0001",
            signer=impostor,
        )
        with raises_code("bad_signature"):
            await alice.open_message(forged, department=ward.department)
        # The real message still opens: the chain's key for Bob is his admitted one.
        assert (
            await alice.open_message(real, department=ward.department) == b"Frank is off the rota"
        )
        # Asked for a new version, her client wraps for no key the chain does not hold for
        # Bob, and since the server shows another, for none of his: it lists him as awaiting a
        # signature, and refuses when the (real) server insists on a wrap for him.
        await alice.connect()
        with raises_code("unverified_member"):
            await alice.room_key(ward.department)
        (published,) = server.sent("POST", ward.path("/keys"))
        recipients = {WrapRecord.from_dict(w).recipient_fp for w in published["wraps"]}
        assert impostor.fingerprint not in recipients
        assert ward.identities["surgeon_bob"].fingerprint not in recipients
        assert alice.unattested[ward.department] == {bob}


# --- D: the same envelope delivered again ------------------------------------------------------


async def test_d_an_envelope_delivered_again_is_a_duplicate_across_restarts(ward: Ward):
    first = ward.messages[0]
    again = {**copy.deepcopy(first), "id": first["id"] + 1000, "seq": first["seq"] + 1000}
    frame = {"type": "message.new", "department": ward.department, "message": again}
    async with device(ward, "nurse_alice") as alice:
        # The same message again (a history page, a resume) opens as before.
        assert (
            await alice.open_message(first, department=ward.department) == b"Flap warm, refill 2 s"
        )
        with raises_code("duplicate") as caught:
            await alice.open_message(frame)
        assert caught.value.data["message_id"] == first["id"]
    # Another process of Alice's on this device, hours later: it remembers.
    async with device(ward, "nurse_alice") as later:
        with raises_code("duplicate"):
            await later.open_message(frame)
    # A device that never saw it opens it, and from then on refuses the first one.
    async with device(ward, "nurse_alice", fresh=True) as phone:
        assert await phone.open_message(frame) == b"Flap warm, refill 2 s"
        with raises_code("duplicate"):
            await phone.open_message(first, department=ward.department)


async def test_d_another_envelope_under_a_seen_id_is_a_replay(ward: Ward):
    first = ward.messages[0]
    async with device(ward, "nurse_alice") as alice:
        chain = await alice.membership.chain(ward.department)
        replayed = copy.deepcopy(first)
        replayed["envelope"] = encrypt_message(
            b"Flap necrotic, back to theatre",
            room_key=ward.room_keys[1],
            head=ChainHead(4, chain.hash_at(4)),
            thread=ward.thread["id"],
            sender=ward.users["surgeon_bob"],
            client_msg_id=first["client_msg_id"],
            signer=ward.identities["surgeon_bob"],
        )
        with raises_code("replay"):
            await alice.open_message(replayed, department=ward.department)


# --- E: a removal left out of the chain --------------------------------------------------------


async def test_e_a_removal_left_out_is_seen_by_whoever_verified_it(ward: Ward):
    server = ScriptedServer()
    server.rewrite("GET", ward.path("/statements"), without_last_statement)
    # Carol signed the removal: her device verified statement 5.
    async with device(ward, "head_carol", server, connect=True) as carol:
        with raises_code("membership_rollback"):
            await carol.membership.chain(ward.department, fresh=True)
        with raises_code("membership_rollback"):
            await carol.send_text(ward.thread, "Who reads this?")
    # A device that never saw it: Bob's message names statement 5, and so does the
    # current key version; both are refused, and nothing is wrapped for Frank.
    async with device(ward, "nurse_alice", server, fresh=True, connect=True) as phone:
        with raises_code("membership_withheld"):
            await phone.open_message(ward.messages[1], department=ward.department)
        with raises_code("membership_withheld"):
            await phone.send_text(ward.thread, "Who reads this?")
    assert server.sent("POST", ward.path("/keys")) == []
    assert server.sent("POST", ward.path("/statements")) == []


# --- F and G: the institution's keys substituted -----------------------------------------------


async def test_f_the_servers_own_compliance_key_gets_no_wrap(ward: Ward):
    substitute = IdentityKeyPair.generate()
    server = ScriptedServer()
    with_substitute = substitute_institution_key("compliance", substitute)
    server.rewrite(
        "GET", ward.path("/keys"), lambda keys: {**with_substitute(keys), "rotation_required": True}
    )
    async with device(ward, "nurse_alice", server, connect=True) as alice:
        with raises_code("compliance_key_mismatch") as caught:
            await alice.send_text(ward.thread, "For the compliance officer")
        assert caught.value.data["server"] == substitute.fingerprint
    assert server.sent("POST", ward.path("/keys")) == []


async def test_g_a_chain_under_the_servers_own_admin_key_is_refused(ward: Ward):
    fake_admin = IdentityKeyPair.generate()
    server = ScriptedServer()
    server.rewrite(
        "GET",
        ward.path("/statements"),
        chain_under(
            fake_admin, ward.department, ward.users["nurse_alice"], ward.identities["nurse_alice"]
        ),
    )
    async with device(ward, "nurse_alice", server, fresh=True) as phone:
        with raises_code("admin_key_mismatch") as caught:
            await phone.membership.chain(ward.department)
        assert caught.value.data["server"] == fake_admin.fingerprint


# --- the smaller rules -------------------------------------------------------------------------


async def test_another_key_under_a_versions_commitment_is_refused(ward: Ward):
    """A member who can sign hands Alice another key under version 2's commitment."""
    wraps = another_key_under_commitment(
        ward.room_keys[2], ward.identities["surgeon_bob"], ward.identities["nurse_alice"]
    )
    for wrap in wraps:
        server = ScriptedServer()
        server.rewrite("GET", ward.path("/keys"), hand_over_wrap(2, wrap))
        async with device(ward, "nurse_alice", server, fresh=True) as phone:
            with raises_code("key_commitment_mismatch"):
                await phone.open_message(ward.messages[1], department=ward.department)
            assert phone.keys.room_key(ward.department, 2) is None


async def test_a_head_signs_only_the_key_compared(ward: Ward):
    alice = ward.users["nurse_alice"]
    substitute = IdentityKeyPair.generate()
    server = ScriptedServer()

    substituted = substitute_member_key(alice, substitute.public.to_dict(), substitute.fingerprint)
    server.rewrite("GET", ward.path("/keys"), substituted)
    async with device(ward, "head_carol", server) as carol:
        # Carol compared Alice's real key; the server shows another: nothing is signed.
        with raises_code("fingerprint_mismatch") as caught:
            await carol.attest(
                ward.department, alice, fingerprint=ward.identities["nurse_alice"].fingerprint
            )
        assert caught.value.data["published"] == substitute.fingerprint
        with raises_code("fingerprint_mismatch"):
            await carol.attest(ward.department, alice, fingerprint="not a fingerprint")
    assert server.sent("POST", ward.path("/statements")) == []


async def test_a_non_canonical_x25519_key_is_refused_by_client_and_server(ward: Ward):
    spelled = non_canonical(ward.identities["nurse_alice"])
    fingerprint = ward.identities["nurse_alice"].fingerprint
    respelled = substitute_member_key(ward.users["nurse_alice"], spelled, fingerprint)
    server = ScriptedServer()
    server.rewrite("GET", ward.path("/keys"), respelled)
    async with device(ward, "head_carol", server) as carol:
        with raises_code("invalid_key"):
            await carol.attest(
                ward.department,
                ward.users["nurse_alice"],
                fingerprint=ward.identities["nurse_alice"].fingerprint,
            )
    async with device(ward, "nurse_alice") as real_alice:
        with raises_code("invalid_key"):
            await real_alice.call(
                "PUT", "/api/keys/identity", json={"public": spelled, "replace": True}
            )


async def test_a_weak_passphrase_protects_nothing(ward: Ward):
    async with device(ward, "intern_jules") as jules:
        for weak in ("Password12345678", "Summer2024Summer", "hospital hospital"):
            with raises_code("weak_passphrase"):
                await jules.setup_keys(passphrase=weak, **LIMITS)
        # Nothing was published or stored.
        with raises_code("not_found"):
            await jules.call("GET", f"/api/keys/identity/{jules.me()}")
        assert (
            await jules.setup_keys(passphrase="Glacier tram under quiet orchards", **LIMITS) is None
        )


async def test_a_replacement_needs_a_new_version_before_anyone_writes(ward: Ward):
    """Runs last: it changes the ward. Carol signs the replacement of Alice's key; a
    server that says no rotation is due is not believed, an honest one rotates."""
    new_key = IdentityKeyPair.generate()
    async with device(ward, "nurse_alice") as alice:
        await alice.call(
            "PUT", "/api/keys/identity", json={"public": new_key.public.to_dict(), "replace": True}
        )
    ward.identities["nurse_alice"] = new_key
    async with device(ward, "head_carol") as carol:
        done = await carol.attest(
            ward.department, ward.users["nurse_alice"], fingerprint=new_key.fingerprint
        )
        assert done == ["replace"]
    server = ScriptedServer()
    server.rewrite("GET", ward.path("/keys"), lambda keys: {**keys, "rotation_required": False})
    async with device(ward, "surgeon_bob", server, connect=True) as bob:
        with raises_code("key_version_stale"):
            await bob.send_text(ward.thread, "Under the key Alice's lost phone holds?")
    assert server.sent("POST", ward.path("/keys")) == []
    before = await message_count(ward)
    async with device(ward, "surgeon_bob", connect=True) as bob:
        await bob.send_text(ward.thread, "New key for everyone")
        assert bob.keys.current[ward.department] == 3
    assert await message_count(ward) == before + 1
    async with device(ward, "nurse_alice", fresh=True) as phone:
        page = await phone.call("GET", f"/api/threads/{ward.thread['id']}/messages")
        assert await phone.open_message(page["messages"][-1], department=ward.department) == (
            b"New key for everyone"
        )


def test_the_scenarios_are_all_here():
    """Issue 11's table, A to G, each with its test above (a guard against losing one)."""
    names = {name for name in globals() if name.startswith("test_")}
    for letter in ("a", "a2", "b", "c", "d", "e", "f", "g"):
        assert any(name.startswith(f"test_{letter}_") for name in names), letter
