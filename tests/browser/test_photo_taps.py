"""A photo in a few taps, from "patient identified" to "sent" (docs/browser.md, "Photos").

Plastic surgery: `head_carol` admits `surgeon_bob` and `nurse_alice`. Bob
has found his patient; from the patient screen "Take photo" opens the
(fake) camera at once, the shutter captures, one keyword, the consent the
patient gives, Send: five taps, and Alice sees the photo decrypted. The
second photo, from the conversation, finds the keyword he used first and
the consent already given for the stay: four taps. Every tap is counted;
the taps and seconds are printed (`-s`) and recorded in docs/browser.md.
"""

import re
import time

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import Taps, Ward, create_keys, shot, sign_admission
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
MOST_TAPS = 6


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = Ward(cluster)
    carol = ward.open(browser, "head_carol")
    create_keys(carol, screenshot=None)
    admin_key = cluster.root / "var" / "demo-keys" / "admin.key"
    cluster.manage("appoint_head", "plastic-surgery", "head_carol", "--key-file", str(admin_key))
    for username in ("surgeon_bob", "nurse_alice"):
        person = ward.open(browser, username)
        person.page.on("pageerror", lambda error: ward.frames.append(f"pageerror {error}"))
        create_keys(person, screenshot=None)
    ward.department_id = int(
        carol.page.locator("a[href^='#/d/']").first.get_attribute("href").split("/")[-1]
    )
    for username in ("surgeon_bob", "nurse_alice"):
        sign_admission(carol, ward.department_id, username)
    yield ward
    for person in ward.people.values():
        person.context.close()


def camera_ready(page: Page) -> None:
    page.wait_for_function("() => document.querySelector('video.camera')?.videoWidth > 0")


def photos(page: Page) -> Locator:
    return page.locator("li.msg .photo.ready")


def test_a_photo_in_five_taps_then_four_with_consent_and_keyword_remembered(ward):
    bob, alice = ward.people["surgeon_bob"].page, ward.people["nurse_alice"].page
    alice.set_viewport_size(DESKTOP)
    bob.goto("/#/find")
    bob.get_by_label("Family name (start of)").fill("Garn")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    # The patient is identified: from here every tap counts.
    take = bob.get_by_role("button", name="Take photo")
    expect(take).to_be_visible()
    expect(bob.locator("#take-photo-target")).to_contain_text("Starts “Wound review”")
    shot(bob, "61-patient-take-photo-phone")
    tap = Taps()
    started = time.monotonic()
    tap(take)
    sheet = bob.get_by_role("dialog", name="Add photos")
    camera_ready(bob)
    shot(bob, "62-camera-open-phone")
    tap(sheet.get_by_role("button", name="Capture"))
    expect(sheet.locator(".preview")).to_have_count(1)
    shot(bob, "62b-captured-phone")
    # Consent is asked, never preset, the first time for this patient.
    expect(sheet.locator("input[name=consent]:checked")).to_have_count(0)
    tap(sheet.get_by_label("Hand", exact=True))
    tap(sheet.get_by_label("Teaching"))
    tap(sheet.get_by_role("button", name="Send photo"))
    expect(sheet).to_have_count(0, timeout=30_000)
    expect(bob).to_have_url(re.compile(r"#/t/\d+$"))
    ward.thread_id = int(bob.url.split("/")[-1])
    alice.goto(f"/#/t/{ward.thread_id}")
    expect(photos(alice)).to_have_count(1, timeout=30_000)
    first = (tap.count, time.monotonic() - started)
    assert tap.count <= MOST_TAPS

    # The second photo, from the conversation: the keyword and the consent are remembered.
    tap = Taps()
    started = time.monotonic()
    tap(bob.get_by_role("button", name="Take photo"))
    camera_ready(bob)
    tap(sheet.get_by_role("button", name="Capture"))
    expect(sheet.locator(".preview")).to_have_count(1)
    mine = sheet.locator("#keywords-mine label.chip")
    expect(mine.first).to_have_text("Hand")
    expect(sheet.get_by_label("Teaching")).to_be_checked()
    expect(sheet.locator("#consent-note")).to_contain_text("kept for this stay")
    shot(bob, "63-second-photo-remembered-phone")
    tap(mine.first)
    tap(sheet.get_by_role("button", name="Send photo"))
    expect(sheet).to_have_count(0, timeout=30_000)
    expect(photos(alice)).to_have_count(2, timeout=30_000)
    second_taps, second_seconds = tap.count, time.monotonic() - started
    assert tap.count <= MOST_TAPS
    # Each photo carries its own consent and keyword, as the server lists them.
    for message in alice.locator("li.msg", has=alice.locator(".photo.ready")).all():
        expect(message.locator(".tag.consent")).to_have_text("Teaching")
        expect(message).to_contain_text("Hand")
    alice.wait_for_function(
        "() => [...document.querySelectorAll('li.msg .photo.ready img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    shot(alice, "64-colleague-sees-photos-desktop")
    print(
        f"\nphoto from the patient screen: {first[0]} taps, {first[1]:.1f} s"
        " to a colleague's screen; second photo from the conversation:"
        f" {second_taps} taps, {second_seconds:.1f} s"
    )
    assert not [f for f in ward.frames if f.startswith("pageerror")]


def test_keyword_search_filters_and_a_star_keeps_a_keyword_first(ward):
    bob = ward.people["surgeon_bob"].page
    bob.set_viewport_size(DESKTOP)
    try:
        bob.goto(f"/#/t/{ward.thread_id}")
        bob.get_by_role("button", name="Add photos").click()
        sheet = bob.get_by_role("dialog", name="Add photos")
        chips = sheet.locator("label.chip:has(input[name=keyword])")
        expect(chips.first).to_be_visible()
        total = chips.count()
        assert total >= 20
        search = sheet.get_by_label("Search keywords")
        search.fill("wou")
        visible = [c.inner_text() for c in chips.all() if c.is_visible()]
        assert visible and len(visible) < total
        assert all("wou" in label.lower() for label in visible), visible
        expect(sheet.get_by_label("Hand", exact=True)).to_be_hidden()
        shot(bob, "65-keyword-search-desktop")
        search.fill("zzz")
        expect(sheet.get_by_text("No keyword of the nomenclature matches.")).to_be_visible()
        search.fill("")
        expect(sheet.get_by_label("Hand", exact=True)).to_be_visible()
        assert sum(c.is_visible() for c in chips.all()) == total
        # Star the recent keyword: it stays at the top the next time.
        star = sheet.get_by_role("button", name="Favourite: Hand")
        expect(star).to_have_attribute("aria-pressed", "false")
        star.click()
        expect(star).to_have_attribute("aria-pressed", "true")
        sheet.get_by_role("button", name="Cancel").click()
        expect(sheet).to_have_count(0)
        bob.get_by_role("button", name="Add photos").click()
        expect(sheet.get_by_role("button", name="Favourite: Hand")).to_have_attribute(
            "aria-pressed", "true"
        )
        expect(sheet.locator("#keywords-mine label.chip").first).to_have_text("Hand")
        sheet.get_by_role("button", name="Cancel").click()
    finally:
        bob.set_viewport_size(PHONE)


def test_consent_is_required_when_not_known(ward):
    """Another patient: nothing remembered, so Send asks for the consent first."""
    bob = ward.people["surgeon_bob"].page
    bob.goto("/#/find")
    bob.get_by_label("Family name (start of)").fill("Lef")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    bob.get_by_role("button", name="Take photo").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    camera_ready(bob)
    sheet.get_by_role("button", name="Capture").click()
    expect(sheet.locator("input[name=consent]:checked")).to_have_count(0)
    sheet.get_by_role("button", name="Send photo").click()
    expect(sheet.locator("#photo-error")).to_have_text("Choose the consent the patient gave.")
    expect(sheet).to_be_visible()
    sheet.get_by_role("button", name="Cancel").click()
    expect(sheet).to_have_count(0)
