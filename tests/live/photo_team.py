"""The team the live photo tests work with: Carol appointed head of Plastic surgery with
the demo admin key, Bob and Alice admitted with their keys, a thread on a patient; a
device of each that recovers its keys; and a photo as a phone writes it."""

import contextlib
import io
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from PIL import Image

from bench.keys import demo_key
from client.sdk import RoundsClient
from tests.live.sdk import demo_pins
from tests.live.sdk import signed_in as pinned
from tests.live.servers import LiveCluster, Server

LIMITS = {"opslimit": 1, "memlimit": 8192}  # Argon2id's minimum: backups in milliseconds
RED = (200, 30, 30)


@contextlib.asynccontextmanager
async def signed_in(
    server: Server, username: str, team: dict | None = None, *, connect: bool = True
) -> AsyncIterator[RoundsClient]:
    """A fresh device, pinned to the demo's institution keys (var/institution.json):
    log in, recover the keys from the backup (when `team` knows the secret)."""
    device = tempfile.mkdtemp(prefix="device-", dir=server.root)
    async with pinned(server, username, connect=False, state_dir=device) as client:
        if team is not None:
            assert await client.setup_keys(team["secrets"][username]) is None
        if connect:
            await client.connect()
        yield client


async def make_team(cluster: LiveCluster) -> dict[str, Any]:
    """Keys for Carol, Bob and Alice; Carol appointed head of Plastic surgery with the
    demo admin key; Carol signs Bob's and Alice's admissions, as compared with them."""
    server = cluster.servers[0]
    admin_key = demo_key(cluster.root / "var", "admin")
    assert admin_key.fingerprint == demo_pins(server)["admin"]
    secrets: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(signed_in(server, "admin", connect=False))
        people = {}
        for username in ("head_carol", "surgeon_bob", "nurse_alice"):
            person = await stack.enter_async_context(signed_in(server, username, connect=False))
            secret = await person.setup_keys(**LIMITS)
            assert secret
            secrets[username] = secret
            people[username] = person
        carol = people["head_carol"]
        (plastic,) = [d["id"] for d in await carol.departments() if d["name"] == "Plastic surgery"]
        await admin.appoint_head(
            plastic, carol.user["id"], admin_key, fingerprint=carol.keys.identity.fingerprint
        )
        for username in ("surgeon_bob", "nurse_alice"):
            person = people[username]
            signed = await carol.attest(
                plastic, person.user["id"], fingerprint=person.keys.identity.fingerprint
            )
            assert signed == ["admit"]
        bob = people["surgeon_bob"]
        (patient, *_) = await bob.find_patients(name="le")
        thread = await bob.create_thread(plastic, patient["id"], "Live photos: hand wound")
    return {
        "secrets": secrets,
        "department": plastic,
        "patient": patient,
        "thread": thread,
        "photos": {},
    }


def phone_photo() -> bytes:
    """A JPEG as a phone writes it: GPS, orientation 6 (to rotate), DateTimeOriginal + offset."""
    image = Image.new("RGB", (640, 480), (30, 30, 200))
    image.paste(RED, (0, 0, 320, 240))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    detail = exif.get_ifd(0x8769)
    detail[0x9003] = "2026:11:23 08:15:00"
    detail[0x9011] = "+01:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 35.0, 12.5), 3: "E", 4: (7.0, 45.0, 3.25)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=92)
    return out.getvalue()
