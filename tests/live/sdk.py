"""The Python SDK against a live cluster, as the tests of several folders use it.

Clients pinned to the demo's institution keys (seed_demo writes them to the
cluster's var/institution.json), each on a device of its own; the demo
administrator's key for appointments; reading the cluster's database
directly, as a test of what the server stored must.
"""

import contextlib
import json
import sqlite3
import tempfile
from collections.abc import Callable
from typing import Any

from client.sdk import RoundsClient
from core.crypto import IdentityKeyPair
from tests.live.servers import DEMO_PASSWORD, LiveCluster, Server

# The minimum Argon2id limits, so a backup costs milliseconds in tests.
LIMITS = {"opslimit": 1, "memlimit": 8192}


def demo_pins(server: Server) -> dict[str, str]:
    """The institution's fingerprints as seed_demo pinned them (var/institution.json)."""
    pins = json.loads((server.root / "var" / "institution.json").read_text())
    return {"admin": pins["admin"], "compliance": pins["compliance"]}


@contextlib.asynccontextmanager
async def signed_in(
    server: Server,
    username: str,
    *,
    connect: bool = True,
    pin: str | None = None,
    admin_pin: str | None = None,
    state_dir: str | None = None,
    **options: Any,
):
    """A client on a device of its own (a fresh state directory unless `state_dir`),
    pinned to the demo's institution keys unless `pin` / `admin_pin` say otherwise."""
    pins = demo_pins(server)
    with tempfile.TemporaryDirectory(prefix="rounds-device-") as fresh:
        client = RoundsClient(
            server.url,
            pinned_compliance_fingerprint=pin or pins["compliance"],
            pinned_admin_fingerprint=admin_pin or pins["admin"],
            state_dir=state_dir or fresh,
            **options,
        )
        try:
            await client.login(username, DEMO_PASSWORD)
            if connect:
                await client.connect()
            yield client
        finally:
            await client.aclose()


async def department_named(client: RoundsClient, name: str) -> int:
    (department,) = [d for d in await client.departments() if d["name"] == name]
    return department["id"]


async def new_thread(client: RoundsClient, department: int, title: str) -> dict:
    patients = await client.find_patients(name="le")
    assert patients, "seed_demo admits patients named Le…"
    return await client.create_thread(department, patients[0]["id"], title)


def in_thread(thread_id: int) -> Callable[[dict], bool]:
    return lambda frame: frame.get("message", {}).get("thread") == thread_id


def query(cluster: LiveCluster, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the live server's database directly (`?` placeholders)."""
    database = cluster.database
    if database.vendor == "postgresql":
        import psycopg

        with psycopg.connect(database.url) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()
    with contextlib.closing(sqlite3.connect(database.name)) as conn:
        return conn.execute(sql, params).fetchall()


def as_json(value: Any) -> Any:
    """A JSON column: text on SQLite, already decoded on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value


def versions_in_database(cluster: LiveCluster, department: int) -> list[int]:
    rows = query(
        cluster,
        "SELECT version FROM rooms_roomkeyversion WHERE department_id = ? ORDER BY version",
        (department,),
    )
    return [row[0] for row in rows]


async def attest(head: RoundsClient, department: int, member: RoundsClient) -> list[str]:
    """The head signs what the server lists for `member`, having compared their key."""
    return await head.attest(
        department, member.user["id"], fingerprint=member.keys.identity.fingerprint
    )


def demo_admin_key(cluster: LiveCluster) -> IdentityKeyPair:
    """The institution's admin key pair, which seed_demo keeps under var/ for the demo."""
    path = cluster.root / "var" / "demo-keys" / "admin.key"
    return IdentityKeyPair.from_bytes(bytes.fromhex(path.read_text()))


async def appoint(
    server: Server, department: int, head: RoundsClient, admin_key, **pins: Any
) -> None:
    """The administrator signs the head's appointment with the institution's admin key."""
    async with signed_in(server, "admin", connect=False, **pins) as admin:
        await admin.appoint_head(
            department, head.user["id"], admin_key, fingerprint=head.keys.identity.fingerprint
        )


async def plastic_surgery_with_keys(
    cluster: LiveCluster, stack: contextlib.AsyncExitStack
) -> tuple[int, RoundsClient, RoundsClient, RoundsClient]:
    """Carol, Bob and Alice signed in with keys; Carol appointed head of Plastic surgery
    with the demo admin key, and Bob's and Alice's admissions signed by her. Returns
    the department, Carol, Bob and Alice, whose clients stay open as long as `stack`."""
    server = cluster.servers[0]
    people = []
    for username in ("head_carol", "surgeon_bob", "nurse_alice"):
        person = await stack.enter_async_context(signed_in(server, username))
        assert await person.setup_keys(**LIMITS)
        people.append(person)
    carol, bob, alice = people
    plastic = await department_named(carol, "Plastic surgery")
    await appoint(server, plastic, carol, demo_admin_key(cluster))
    for member in (bob, alice):
        await attest(carol, plastic, member)
    return plastic, carol, bob, alice
