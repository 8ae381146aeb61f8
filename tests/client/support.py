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
from tests.live.sdk import (
    plastic_surgery_with_keys,
)
from tests.live.servers import LiveCluster

NOTE = "Wrong patient, sorry"
CAPTION = "Dorsal hand wound, day 3"
REASON = "posted in the wrong thread"


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


async def make_ward(cluster: LiveCluster) -> dict[str, Any]:
    async with contextlib.AsyncExitStack() as stack:
        plastic, _carol, bob, alice = await plastic_surgery_with_keys(cluster, stack)
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
