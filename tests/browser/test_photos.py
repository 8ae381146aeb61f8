"""Clinical photos in the browser, end to end on real daphne (docs/browser.md, docs/media.md).

Plastic surgery again: `head_carol`, `surgeon_bob` and `nurse_alice` in three
browser contexts at 360x740, `intern_erin` on the Python SDK. Bob finds a
patient and posts a phone photo (GPS in its EXIF, orientation 6, a
DateTimeOriginal with its offset) picked as a file, with keywords and a
consent scope; the first chunk upload is cut and resumed. Alice sees the
thumbnail live and opens the viewer; Bob sees her read receipt. Erin's
Python client opens the browser's photo (no metadata, upright, date kept)
and posts one the browser shows; the two are compared side by side; the
library and the weekly review list them. A message whose signed body does
not match its attachments is refused. Every chunk uploaded is ciphertext
(stream magic `RNDS`) and no socket frame holds the caption.
"""

import asyncio
import io
import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image
from playwright.sync_api import Page, Request, Route, expect

from client.media import encrypt_blob, upload_encrypted
from client.photo_sdk import attachment_ref, photo_entry
from client.photos import prepare_photo
from client.sdk import RoundsClient
from tests.browser.support import (
    Ward,
    create_keys,
    device_dir,
    phone_photo,
    python_client,
    run_async,
    shot,
    sign_admission,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

PARIS = timezone(timedelta(hours=1))  # November: CET
TODAY = datetime.now(PARIS).replace(hour=8, minute=15, second=0, microsecond=0)
LAST_WEEK = TODAY - timedelta(days=7)  # the same weekday of the previous week
CAPTION = "Dorsum of left hand day 3, edges dry"
PYTHON_CAPTION = "Same hand before surgery for comparison"
TIMES = "\u00d7"  # the multiplication sign of the app's "1200 x 1600"


@dataclass
class PhotoWard(Ward):
    patient_id: int | None = None
    chunks: list[tuple[int, bytes]] = field(default_factory=list)  # (offset, body)
    erin_identity: object = None
    erin_device: str = field(default_factory=device_dir)  # her trust store, across sessions
    page_errors: list[str] = field(default_factory=list)
    seconds_to_photo_seen: float | None = None

    def capture_chunks(self, request: Request) -> None:
        if request.method == "PUT" and "/chunks" in request.url:
            offset = int(request.url.split("offset=")[1].split("&")[0])
            self.chunks.append((offset, request.post_data_buffer or b""))


def sdk(ward: "PhotoWard") -> RoundsClient:
    return python_client(ward.cluster, ward.erin_device)


class Erin:
    """intern_erin on the Python SDK, signed in with the keys made at the first test."""

    def __init__(self, ward: PhotoWard) -> None:
        self.ward = ward

    async def __aenter__(self) -> RoundsClient:
        self.client = sdk(self.ward)
        await self.client.__aenter__()
        await self.client.login("intern_erin", DEMO_PASSWORD)
        self.client.keys.identity, self.client.keys.backup_stored = self.ward.erin_identity, True
        assert await self.client.setup_keys() is None
        await self.client.connect()
        return self.client

    async def __aexit__(self, *exc) -> None:
        await self.client.__aexit__(*exc)


def photo_tiles(page: Page):
    return page.locator("li.msg .photo.ready")


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = PhotoWard(cluster)
    carol = ward.open(browser, "head_carol")
    carol.page.on("pageerror", lambda error: ward.page_errors.append(str(error)))
    create_keys(carol, screenshot=None)
    admin_key = cluster.root / "var" / "demo-keys" / "admin.key"
    cluster.manage("appoint_head", "plastic-surgery", "head_carol", "--key-file", str(admin_key))
    for username in ("surgeon_bob", "nurse_alice"):
        person = ward.open(browser, username)
        person.page.on("request", ward.capture_chunks)
        person.page.on("pageerror", lambda error: ward.page_errors.append(str(error)))
        create_keys(person, screenshot=None)
    ward.department_id = int(
        carol.page.locator("a[href^='#/d/']").first.get_attribute("href").split("/")[-1]
    )
    for username in ("surgeon_bob", "nurse_alice"):
        sign_admission(carol, ward.department_id, username)

    async def erin_sets_up_keys():
        async with sdk(ward) as erin:
            await erin.login("intern_erin", DEMO_PASSWORD)
            await erin.setup_keys(opslimit=1, memlimit=8192)
            return erin.keys.identity

    ward.erin_identity = run_async(erin_sets_up_keys())
    sign_admission(carol, ward.department_id, "intern_erin")
    yield ward
    for person in ward.people.values():
        person.context.close()


def test_a_photo_is_posted_seen_live_opened_and_its_receipt_shown(ward):
    bob, alice = ward.people["surgeon_bob"].page, ward.people["nurse_alice"].page
    alice.goto(f"/#/d/{ward.department_id}")
    # Chunk uploads: the first is cut (the client resumes from the server's
    # `received`), the third is held while the progress bar is photographed.
    calls = {"n": 0}
    held: list[Route] = []

    def chunks(route: Route) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            route.abort("connectionreset")
        elif calls["n"] == 3:
            held.append(route)
        else:
            route.continue_()

    bob.route("**/api/uploads/*/chunks*", chunks)
    started = time.monotonic()
    bob.get_by_role("link", name="Find a patient").click()
    bob.get_by_label("Family name (start of)").fill("Le")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    ward.patient_id = int(bob.url.split("/")[-1])
    bob.get_by_label("Subject").fill("Hand wound follow-up")
    bob.get_by_role("button", name="Open conversation").click()
    expect(bob.locator("#retention-banner")).to_be_visible()
    ward.thread_id = int(bob.url.split("/")[-1])
    alice.get_by_role("link", name="Hand wound follow-up").click()

    bob.get_by_role("button", name="Add photos").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    bob.get_by_label("Choose photos").set_input_files(
        {"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": phone_photo(TODAY)}
    )
    expect(sheet.locator(".preview")).to_have_count(1)
    # The capture date came from the EXIF, not from the file's date.
    expect(sheet.locator(".preview")).to_contain_text(TODAY.strftime("%-d %b %Y, %H:%M"))
    # Upright: the EXIF orientation was applied to the pixels.
    expect(sheet.locator(".preview")).to_contain_text(f"1200 {TIMES} 1600")
    sheet.get_by_label("Hand", exact=True).check()
    sheet.get_by_label("Wound follow-up").check()
    sheet.get_by_label("Teaching").check()
    sheet.get_by_label("Caption (optional, encrypted)").fill(CAPTION)
    ward.typed.append(CAPTION)
    sheet.evaluate("dialog => (dialog.scrollTop = 0)")
    shot(bob, "11-photo-picker")
    sheet.get_by_role("button", name="Send photo").click()
    expect(bob.locator("#upload-status")).to_contain_text("Uploading", timeout=20_000)
    bob.wait_for_timeout(100)
    assert held, "the third chunk was held"
    shot(bob, "12-upload-progress")
    assert 0 < int(bob.locator("#upload-progress").get_attribute("value") or 0) < 100
    held[0].continue_()
    expect(sheet).to_have_count(0, timeout=30_000)
    bob.unroute("**/api/uploads/*/chunks*")

    expect(photo_tiles(alice)).to_have_count(1, timeout=30_000)
    ward.seconds_to_photo_seen = time.monotonic() - started
    print(f"\nfind patient → photo seen by a colleague: {ward.seconds_to_photo_seen:.1f} s")
    expect(alice.locator("li.msg", has_text=CAPTION)).to_contain_text("Wound follow-up")
    expect(alice.locator("li.msg", has_text=CAPTION)).to_contain_text("Teaching")
    expect(photo_tiles(bob)).to_have_count(1)
    expect(bob.locator("#seen-by")).to_have_text("Seen by Alice Durand, RN")
    shot(alice, "13-thread-photo")

    photo_tiles(alice).first.click()
    viewer = alice.get_by_role("dialog", name="Photo")
    stage = viewer.locator(".stage")
    expect(stage.locator("img")).to_have_js_property("complete", True)
    alice.wait_for_function("() => document.querySelector('dialog.viewer img').naturalWidth > 0")
    natural = stage.locator("img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert natural == [1200, 1600]
    viewer.get_by_role("button", name="Zoom in").click()
    expect(stage).to_have_attribute("data-zoom", "1.50")
    stage.focus()
    alice.keyboard.press("+")
    expect(stage).to_have_attribute("data-zoom", "2.25")
    alice.keyboard.press("0")
    expect(stage).to_have_attribute("data-zoom", "1.00")
    viewer.get_by_role("button", name="Zoom in").click()
    shot(alice, "14-viewer")
    alice.keyboard.press("Escape")
    expect(viewer).to_have_count(0)


def test_python_opens_the_browser_photo_and_the_browser_shows_a_python_photo(ward):
    bob = ward.people["surgeon_bob"].page

    async def erin_reads_then_posts():
        async with Erin(ward) as erin:
            page = await erin.history(ward.thread_id)
            message = page["messages"][-1]
            body = await erin.open_photo_message(message, department=ward.department_id)
            photo = body["photos"][0]
            data = await erin.download_photo(photo)
            thumb = await erin.download_photo(photo, thumbnail=True)
            await erin.send_photos(
                {"id": ward.thread_id, "department": ward.department_id},
                [phone_photo(LAST_WEEK, (800, 600))],
                keywords=["hand", "pre-operative"],
                consent="care",
                text=PYTHON_CAPTION,
            )
            return message, body, data, thumb

    message, body, data, thumb = run_async(erin_reads_then_posts())
    ward.typed.append(PYTHON_CAPTION)
    assert body["type"] == "photos" and body["text"] == CAPTION
    photo = body["photos"][0]
    assert [sorted(a["keywords"]) for a in message["attachments"]] == [["hand", "wound-follow-up"]]
    assert sorted(photo["keywords"]) == ["hand", "wound-follow-up"]
    assert photo["consent"] == "teaching"
    assert datetime.fromisoformat(photo["captured_at"]) == TODAY
    assert photo["captured_at"].endswith("+01:00")
    assert datetime.fromisoformat(message["attachments"][0]["captured_at"]) == TODAY
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.size == (1200, 1600) == (photo["width"], photo["height"])
    assert len(image.getexif()) == 0
    assert b"Exif" not in data and b"PhoneMaker" not in data and b"GPS" not in data
    # Upright: the red corner, top-left as stored, is top-right once orientation 6 is applied.
    red, other = image.getpixel((1150, 40)), image.getpixel((40, 40))
    assert red[0] > 150 and red[1] < 120 and other[1] > 120
    small = Image.open(io.BytesIO(thumb))
    assert max(small.size) == 320 and small.size == (240, 320)
    assert b"Exif" not in thumb
    # Erin's photo shows in Bob's browser, decrypted.
    expect(photo_tiles(bob)).to_have_count(2, timeout=30_000)
    expect(bob.locator("li.msg", has_text=PYTHON_CAPTION)).to_contain_text("Pre-operative")
    expect(bob.locator("li.msg", has_text=PYTHON_CAPTION)).to_contain_text("Dr Erin Petit")


def test_two_photos_of_the_patient_side_by_side(ward):
    alice = ward.people["nurse_alice"].page
    photo_tiles(alice).last.click()
    viewer = alice.get_by_role("dialog", name="Photo")
    viewer.get_by_role("button", name="Compare").click()
    picker = alice.get_by_role("dialog", name="Compare with")
    picker.locator("button.tile").first.click()
    comparison = alice.get_by_role("dialog", name="Compare two photos")
    expect(comparison.locator("figure.pane")).to_have_count(2)
    expect(comparison.locator("figcaption").nth(1)).to_contain_text("7 days later")
    alice.wait_for_function(
        "() => [...document.querySelectorAll('dialog.compare img')]"
        ".every((img) => img.naturalWidth > 0)"
    )
    comparison.get_by_role("button", name="Zoom in").click()
    expect(comparison.locator(".stage").first).to_have_attribute("data-zoom", "1.50")
    expect(comparison.locator(".stage").last).to_have_attribute("data-zoom", "1.50")
    comparison.get_by_role("button", name="Fit").click()
    shot(alice, "15-comparison")
    alice.keyboard.press("Escape")
    expect(comparison).to_have_count(0)


def test_the_library_lists_the_photos_of_the_patient_by_date_and_keyword(ward):
    bob = ward.people["surgeon_bob"].page
    bob.goto(f"/#/p/{ward.patient_id}")
    bob.get_by_role("link", name="Photos of this patient").click()
    grid = bob.locator("#library-grid")
    expect(grid.locator(".tile.ready")).to_have_count(2)
    # Newest capture first, each with its date and keywords.
    expect(grid.locator(".tile").first).to_contain_text(TODAY.strftime("%-d %b %H:%M"))
    expect(grid.locator(".tile").first).to_contain_text("Wound follow-up")
    expect(grid.locator(".tile").last).to_contain_text("Pre-operative")
    bob.get_by_text("Filters: dates, keywords, consent").click()
    bob.get_by_text("Keywords", exact=True).click()
    bob.get_by_role("checkbox", name="Wound follow-up").check()
    bob.get_by_role("button", name="Show photos").click()
    expect(grid.locator(".tile")).to_have_count(1)
    expect(grid.locator(".tile.ready")).to_have_count(1)
    bob.get_by_role("checkbox", name="Wound follow-up").uncheck()
    # Days are typed dd/mm/yyyy; one that is not a day is said, and nothing is searched.
    bob.get_by_label("Taken from").fill("31/02/2026")
    bob.get_by_role("button", name="Show photos").click()
    expect(bob.get_by_text("Type the date as dd/mm/yyyy.")).to_be_visible()
    expect(grid.locator(".tile")).to_have_count(1)
    assert "date_from" not in bob.url
    bob.get_by_label("Taken from").fill(LAST_WEEK.strftime("%d/%m/%Y"))
    bob.get_by_label("Taken until").fill(LAST_WEEK.strftime("%d/%m/%Y"))
    bob.get_by_role("button", name="Show photos").click()
    expect(grid.locator(".tile")).to_have_count(1)
    expect(grid.locator(".tile")).to_contain_text("Pre-operative")
    day = LAST_WEEK.strftime("%Y-%m-%d")  # the route keeps the ISO day
    assert f"date_from={day}" in bob.url and f"date_to={day}" in bob.url
    # One photo a page: "Load more" follows the cursor to the second.
    bob.goto(f"/#/library?department={ward.department_id}&limit=1")
    expect(grid.locator(".tile")).to_have_count(1)
    expect(grid.locator(".tile")).to_contain_text("IPP")
    bob.get_by_role("button", name="Load more").click()
    expect(grid.locator(".tile")).to_have_count(2)
    expect(bob.get_by_role("button", name="Load more")).to_be_hidden()
    bob.goto(f"/#/library?patient={ward.patient_id}")
    expect(grid.locator(".tile.ready")).to_have_count(2)
    shot(bob, "16-library")


def test_the_weekly_review_groups_the_week_by_patient(ward):
    carol = ward.people["head_carol"].page
    carol.goto(f"/#/d/{ward.department_id}")
    carol.get_by_role("link", name="Weekly photo review").click()
    groups = carol.locator(".review-patient")
    expect(groups).to_have_count(1)
    expect(groups.first).to_have_attribute("data-patient", str(ward.patient_id))
    expect(groups.first).to_contain_text("1 photo this week")
    expect(groups.locator(".tile.ready")).to_have_count(1)
    shot(carol, "17-weekly-review")
    carol.get_by_role("button", name="Previous week").click()
    expect(groups.first).to_contain_text("Pre-operative")
    expect(groups.locator(".tile.ready")).to_have_count(1)


def test_a_photo_message_that_does_not_match_its_attachments_is_refused(ward):
    """Erin's client lies to the server: the signed body says `hand`, the server is told `face`."""
    bob = ward.people["surgeon_bob"].page
    bob.goto(f"/#/t/{ward.thread_id}")
    expect(photo_tiles(bob)).to_have_count(2)

    async def erin_posts_a_mismatch():
        async with Erin(ward) as erin:
            prepared = await asyncio.to_thread(prepare_photo, phone_photo(TODAY, (400, 300)))
            full, small = encrypt_blob(prepared.data), encrypt_blob(prepared.thumbnail)
            blob = await upload_encrypted(erin, ward.department_id, full)
            thumb = await upload_encrypted(erin, ward.department_id, small)
            entry = photo_entry(
                prepared, blob, thumb, keywords=["hand"], consent="care", annotates=None
            )
            body = {"type": "photos", "text": "mismatch", "photos": [entry]}
            ref = {**attachment_ref(entry), "keywords": ["face"]}
            await erin.post_body(
                ward.thread_id,
                json.dumps(body).encode(),
                department=ward.department_id,
                attachments=[ref],
            )

    run_async(erin_posts_a_mismatch())
    refused = bob.locator("li.msg.undecryptable")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("the server lists other photos")
    expect(refused.locator(".photo")).to_have_count(0)


def test_the_camera_captures_into_the_sheet_not_the_gallery(ward):
    bob = ward.people["surgeon_bob"].page
    bob.goto(f"/#/t/{ward.thread_id}")
    bob.evaluate(
        """() => {
        const open = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
        window.cameraStreams = [];
        navigator.mediaDevices.getUserMedia = async (c) => {
          const stream = await open(c);
          window.cameraStreams.push(stream);
          return stream;
        };
      }"""
    )
    bob.get_by_role("button", name="Add photos").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    sheet.get_by_role("button", name="Take a photo").click()
    bob.wait_for_function("() => document.querySelector('video.camera').videoWidth > 0")
    sheet.get_by_role("button", name="Capture").click()
    expect(sheet.locator(".preview")).to_have_count(1)
    size = bob.evaluate(
        "() => { const v = document.querySelector('video.camera');"
        f" return `${{v.videoWidth}} {TIMES} ${{v.videoHeight}}`; }}"
    )
    expect(sheet.locator(".preview")).to_contain_text(size)
    sheet.get_by_role("button", name="Cancel").click()
    expect(sheet).to_have_count(0)
    # The camera was released with the sheet (the dialog and its video are gone).
    bob.wait_for_function("() => !document.querySelector('video.camera')")
    states = bob.evaluate(
        "() => cameraStreams.flatMap((s) => s.getTracks().map((t) => t.readyState))"
    )
    assert states == ["ended"]


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG claiming a size: what a decompression bomb declares."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(chunk))
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + crc


def test_the_sheet_refuses_what_is_not_a_safe_photo(ward):
    bob = ward.people["surgeon_bob"].page
    bob.goto(f"/#/t/{ward.thread_id}")
    bob.get_by_role("button", name="Add photos").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    files = bob.get_by_label("Choose photos")
    bomb = {"name": "bomb.png", "mimeType": "image/png", "buffer": png_header(20_000, 20_000)}
    files.set_input_files(bomb)
    expect(sheet.locator("#photo-error")).to_contain_text("more than 64 megapixels")
    notes = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"IPP 00800100"}
    files.set_input_files(notes)
    expect(sheet.locator("#photo-error")).to_contain_text("not an image")
    expect(sheet.locator(".preview")).to_have_count(0)
    expect(sheet.get_by_role("button", name="Send photo")).to_be_disabled()
    sheet.get_by_role("button", name="Cancel").click()


def test_uploads_are_ciphertext_and_frames_hold_no_caption(ward):
    assert len(ward.chunks) >= 4, "the photo and its thumbnail went up in several chunks"
    starts = [body for offset, body in ward.chunks if offset == 0]
    assert len(starts) >= 2 and all(body[:4] == b"RNDS" for body in starts)
    for _, body in ward.chunks:
        assert not body.startswith(b"\xff\xd8")  # no JPEG
        assert b"JFIF" not in body and b"Exif" not in body and b"PhoneMaker" not in body
        assert CAPTION.encode() not in body
    assert ward.frames and any('"attachments"' in frame for frame in ward.frames)
    assert ward.page_errors == [], "no uncaught error in any page"
    for text in ward.typed:
        for frame in ward.frames:
            assert text not in frame
