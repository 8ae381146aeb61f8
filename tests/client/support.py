"""The ward of the live compliance tests (test_compliance_live.py and
test_compliance_export_live.py), made through the SDK as clinicians' devices make it,
and what compliance_dan and a server do to it from outside: a case opened with the CLI,
a stored message altered."""

import contextlib
import io
import re
import sqlite3
from typing import Any

from PIL import Image

from tests.live.cli import run_rounds
from tests.live.sdk import LIMITS, demo_admin_key, department_named, signed_in
from tests.live.servers import LiveCluster

NOTE = "Wrong patient, sorry"
CAPTION = "Dorsal hand wound, day 3"
REASON = "posted in the wrong thread"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


async def make_ward(cluster: LiveCluster) -> dict[str, Any]:
    server = cluster.servers[0]
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(signed_in(server, "admin", connect=False))
        people = {}
        for username in ("head_carol", "surgeon_bob", "nurse_alice"):
            person = await stack.enter_async_context(signed_in(server, username))
            assert await person.setup_keys(**LIMITS)
            people[username] = person
        carol, bob, alice = people.values()
        plastic = await department_named(carol, "Plastic surgery")
        await admin.appoint_head(
            plastic,
            carol.user["id"],
            demo_admin_key(cluster),
            fingerprint=carol.keys.identity.fingerprint,
        )
        for member in (bob, alice):
            await carol.attest(
                plastic, member.user["id"], fingerprint=member.keys.identity.fingerprint
            )
        (patient, *_) = await bob.find_patients(name="le")
        thread = await bob.create_thread(plastic, patient["id"], "Review: hand wound")
        note = await bob.send_text(thread, NOTE)
        await alice.send_photos(
            thread, [jpeg()], keywords=["hand"], consent="teaching", text=CAPTION
        )
        await alice.read(thread["id"], 2)
        await bob.redact(note["message_id"], REASON)
        other = await bob.create_thread(plastic, patient["id"], "Review: dressings")
        await bob.send_text(other, "Dressing changed at 14:00")
        altered = await bob.send_text(other, "Second note, altered later on the server")
    return {
        "ipp": patient["ipp"],
        "thread": thread["id"],
        "other": other["id"],
        "note": note["message_id"],
        "altered": altered["message_id"],
        "alice": alice.user["id"],
    }


async def open_case(cluster: LiveCluster, reference: str, *scope: str) -> int:
    out, _ = await run_rounds(
        cluster, "compliance_dan", "compliance", "open",
        "--reference", reference, "--reason", "Patient request of 2026-11-20", *scope,
    )  # fmt: skip
    found = re.match(r"opened case (\d+) ", out)
    assert found, out
    return int(found.group(1))


def alter(cluster: LiveCluster, ciphertext: str, message: int) -> None:
    """What a server can do to a stored message: change its bytes."""
    statement = "UPDATE chat_message SET ciphertext = ? WHERE id = ?"
    database = cluster.database
    if database.vendor == "postgresql":
        import psycopg

        with psycopg.connect(database.url) as conn:
            conn.execute(statement.replace("?", "%s"), (ciphertext, message))
        return
    with contextlib.closing(sqlite3.connect(database.name)) as conn, conn:
        conn.execute(statement, (ciphertext, message))
