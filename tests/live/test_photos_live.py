"""Clinical photos end to end on real daphne processes: the CLI, the SDK, the library, the report.

Surgeon Bob posts a phone photo (GPS in its EXIF, rotated, dated) with the
`rounds` command; Nurse Alice's socket gets `message.new`, her client opens
the signed body, downloads and decrypts the photo and finds no GPS and the
capture date kept; the library finds it by patient, date and keyword; the
`rounds report` PDF holds the photo and the patient's IPP. Then the failure
paths: an upload cut in half resumes where the server stands, and a blob
that is not the one the sender signed is refused before decryption.
"""

import asyncio
import contextlib
import io
import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from client.media import create_upload, encrypt_blob, resume_upload, send_chunks, upload_state
from client.sdk import RoundsClientError
from tests.live.photo_team import make_team, phone_photo, signed_in
from tests.live.servers import BASE_DIR, DEMO_PASSWORD, LiveCluster
from tests.support.pdf import inflated_streams

pytestmark = [pytest.mark.live, pytest.mark.timeout(240)]

KEYWORDS = ["hand", "wound-follow-up"]


# --- the team: keys, a head, a thread -------------------------------------------------------


def sql(cluster: LiveCluster, statement: str, params: tuple = ()) -> list[tuple]:
    database = cluster.database
    if database.vendor == "postgresql":
        import psycopg

        with psycopg.connect(database.url) as conn:
            return conn.execute(statement.replace("?", "%s"), params).fetchall()
    with contextlib.closing(sqlite3.connect(database.name)) as conn:
        return conn.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def team(cluster: LiveCluster) -> dict[str, Any]:
    return asyncio.run(make_team(cluster))


# --- helpers --------------------------------------------------------------------------------


def cli_env(cluster: LiveCluster, team: dict, username: str) -> dict[str, str]:
    """The `rounds` command's configuration: the demo's pins file, and one machine's state
    directory for every run (each run recovers the identity from the backup)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDS_")}
    env.update(
        ROUNDS_URL=cluster.servers[0].url,
        ROUNDS_USER=username,
        ROUNDS_PASSWORD=DEMO_PASSWORD,
        ROUNDS_RECOVERY_SECRET=team["secrets"][username],
        ROUNDS_PINS_FILE=str(cluster.root / "var" / "institution.json"),
        ROUNDS_STATE_DIR=str(cluster.root / "cli-state"),
    )
    return env


async def rounds(
    cluster: LiveCluster, team: dict, username: str, *args: str, code: int = 0
) -> tuple[str, str]:
    """Run the `rounds` console script; returns (stdout, stderr), insisting on exit `code`."""
    script = Path(sys.executable).parent / "rounds"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "client.cli"]
    process = await asyncio.create_subprocess_exec(
        *command,
        *args,
        cwd=BASE_DIR,
        env=cli_env(cluster, team, username),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == code, f"rounds {' '.join(args)}:\n{out.decode()}\n{err.decode()}"
    return out.decode(), err.decode()


# --- the flow -------------------------------------------------------------------------------


async def test_a_photo_posted_with_the_cli_reaches_alice_clean_and_lands_in_library_and_report(
    cluster: LiveCluster, team: dict, tmp_path: Path
):
    thread, patient = team["thread"], team["patient"]
    source = tmp_path / "IMG_2041.JPG"
    source.write_bytes(phone_photo())
    async with signed_in(cluster.servers[-1], "nurse_alice", team) as alice:
        # 1. Bob posts from the command line; the progress bar goes to stderr.
        out, err = await rounds(
            cluster, team, "surgeon_bob",
            "photo", "--thread", str(thread["id"]), str(source),
            "--keyword", KEYWORDS[0], "--keyword", KEYWORDS[1],
            "--consent", "care", "--text", "Dorsal hand wound, day 3",
        )  # fmt: skip
        assert "posted message" in out
        assert "100%" in err and "upload" in err

        # 2. Alice's socket gets it; her client opens the signed body and the photo.
        frame = await alice.next_event(
            "message.new", wait=20, match=lambda f: f["message"]["thread"] == thread["id"]
        )
        (attachment,) = frame["message"]["attachments"]
        assert sorted(attachment["keywords"]) == sorted(KEYWORDS)
        assert attachment["consent"] == "care"
        body = await alice.open_photo_message(frame)
        assert body["text"] == "Dorsal hand wound, day 3"
        (photo,) = body["photos"]
        assert photo["attachment"] == attachment["id"]
        assert photo["captured_at"] == "2026-11-23T08:15:00+01:00"
        assert (photo["width"], photo["height"]) == (480, 640)
        data = await alice.download_photo(photo)
        image = Image.open(io.BytesIO(data))
        assert image.format == "JPEG" and image.size == (480, 640)
        assert len(image.getexif()) == 0 and b"Exif" not in data and b"PhoneMaker" not in data
        assert image.convert("RGB").getpixel((470, 10))[0] > 150  # red quarter now top right
        thumb = Image.open(io.BytesIO(await alice.download_photo(photo, thumbnail=True)))
        assert max(thumb.size) == 320
        team["photos"]["first"] = photo

        # 3. The library finds it by patient, date and keywords, and not by others.
        def ids(page: dict) -> list[int]:
            return [item["id"] for item in page["items"]]

        found = await alice.library(ipp=patient["ipp"])
        assert attachment["id"] in ids(found)
        (item,) = [i for i in found["items"] if i["id"] == attachment["id"]]
        assert item["patient"]["ipp"] == patient["ipp"]
        assert item["sender"]["username"] == "surgeon_bob"
        assert attachment["id"] in ids(
            await alice.library(
                patient=patient["id"],
                keyword=KEYWORDS,
                date_from="2026-11-23",
                date_to="2026-11-24",
            )
        )
        assert attachment["id"] not in ids(
            await alice.library(patient=patient["id"], keyword=["burn"])
        )
        assert attachment["id"] not in ids(
            await alice.library(patient=patient["id"], date_from="2026-11-24")
        )

        # 4. Alice draws on it and posts the annotated version, linked to the original.
        drawn = Image.open(io.BytesIO(data)).convert("RGB")
        drawn.paste((255, 255, 0), (100, 100, 140, 140))
        annotated = io.BytesIO()
        drawn.save(annotated, "PNG")
        ack = await alice.send_photos(
            thread, [annotated.getvalue()], keywords=KEYWORDS, annotates=attachment["id"]
        )
        echo = await alice.next_event(
            "message.new", wait=20, match=lambda f: f["message"]["id"] == ack["message_id"]
        )
        (linked,) = echo["message"]["attachments"]
        assert linked["annotates"] == attachment["id"]
        (again,) = (await alice.open_photo_message(echo))["photos"]
        assert again["media_type"] == "image/png" and again["annotates"] == attachment["id"]
        listed = ids(await alice.library(patient=patient["id"]))
        assert {attachment["id"], linked["id"]} <= set(listed)

    # 5. The same through the CLI: the table, the fetch, the report.
    out, _ = await rounds(cluster, team, "nurse_alice", "library", "--patient-ipp", patient["ipp"])
    assert str(attachment["id"]) in out and "wound-follow-up" in out
    # Names, not logins; capture times on the institution's clock, its zone in the header.
    assert "Dr Bob Martin" in out and "surgeon_bob" not in out
    assert "captured (Europe/Paris)" in out and "+00:00" not in out
    out, _ = await rounds(
        cluster, team, "nurse_alice", "fetch", "--attachment", str(attachment["id"]),
        "--out", str(tmp_path / "fetched"),
    )  # fmt: skip
    fetched = Path(out.strip())
    assert fetched.read_bytes() == data
    out, _ = await rounds(
        cluster, team, "nurse_alice", "fetch", "--message", str(ack["message_id"]),
        "--out", str(tmp_path / "by-message"), "--thumbnail",
    )  # fmt: skip
    assert Image.open(out.strip()).format == "JPEG"

    # Refusals are one line on stderr and exit code 1, never a traceback.
    (tmp_path / "notes.txt").write_text("not a photo")
    for args, refusal in (
        (("photo", "--thread", str(thread["id"]), str(tmp_path / "notes.txt")), "unreadable_image"),
        (("fetch", "--attachment", "987654", "--out", str(tmp_path)), "not_found"),
    ):
        _, err = await rounds(cluster, team, "nurse_alice", *args, code=1)
        assert err.startswith(f"rounds: error: {refusal}: ") and err.count("\n") == 1, err

    report = tmp_path / "report.pdf"
    out, _ = await rounds(
        cluster, team, "nurse_alice", "report", "--patient", patient["ipp"], "--out", str(report)
    )
    pdf = report.read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert len(re.findall(rb"/Subtype /Image", pdf)) >= 1
    text = b"\n".join([pdf, *inflated_streams(pdf)])
    assert patient["ipp"].encode() in text and b"Wound follow-up" in text
    assert b"By Dr Bob Martin, " in text and b"surgeon_bob" not in text
    assert text.count(b"Times in Europe/Paris") == 1
    assert out.strip().endswith("times in Europe/Paris")
    audited = sql(
        cluster,
        "SELECT object_id FROM audit_auditevent WHERE action = 'report.generated'",
    )
    assert (str(patient["id"]),) in audited


async def test_an_upload_cut_in_half_resumes_from_what_the_server_received(
    cluster: LiveCluster, team: dict
):
    async with signed_in(cluster.servers[0], "surgeon_bob", connect=False) as bob:
        with encrypt_blob(os.urandom(3 * 1024 * 1024 + 123)) as blob:
            created = await create_upload(bob, team["department"], blob.size)
            half = await send_chunks(
                bob, created["id"], blob, stop=blob.size // 2, chunk_size=256 * 1024
            )
            state = await upload_state(bob, created["id"])
            assert (state["state"], state["received"]) == ("receiving", half)
            assert 0 < half < blob.size

            sent: list[int] = []
            real_put = bob.http.request

            async def counting(method: str, url: str, **kwargs: Any) -> httpx.Response:
                if method == "PUT":
                    sent.append(int(kwargs["params"]["offset"]))
                return await real_put(method, url, **kwargs)

            bob.http.request = counting  # type: ignore[method-assign]
            uploaded = await resume_upload(bob, created["id"], blob, chunk_size=256 * 1024)
            assert sent and sent[0] == half  # nothing before `received` was sent again
            done = await upload_state(bob, created["id"])
            assert (done["state"], done["received"], done["sha256"]) == (
                "complete", blob.size, blob.sha256
            )  # fmt: skip
            # Resuming a finished upload again is harmless: the same hash counts as done.
            assert (await resume_upload(bob, created["id"], blob)).sha256 == uploaded.sha256


async def test_a_blob_other_than_the_signed_one_is_refused_before_decryption(
    cluster: LiveCluster, team: dict
):
    photo = team["photos"].get("first")
    if photo is None:
        pytest.skip("needs the photo posted by the first test")
    async with signed_in(cluster.servers[0], "nurse_alice", team, connect=False) as alice:
        # The body says one hash; the server serves bytes with another.
        lying = {**photo, "sha256": "00" * 32}
        with pytest.raises(RoundsClientError) as refused:
            await alice.download_photo(lying)
        assert refused.value.code == "hash_mismatch"

        # The stored blob itself altered on the server's disk.
        blobs = list((cluster.root / "var").rglob(f"blobs/{photo['upload']}"))
        if not blobs:
            pytest.skip("blobs are not on the local disk (S3)")
        stored = bytearray(blobs[0].read_bytes())
        stored[-5] ^= 0x01
        blobs[0].write_bytes(bytes(stored))
        with pytest.raises(RoundsClientError) as refused:
            await alice.download_photo(photo)
        assert refused.value.code == "hash_mismatch"
