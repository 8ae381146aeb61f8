"""The key ceremony without a terminal: the demo hospital before any user key, used in
browsers only.

A fresh database, migrated and seeded by `seed_demo --no-user-keys` (the
demo as `make run` seeds it, less what rooms/demo.py prepares for the demo
only: no clinician's keys, no appointment, no signed admission, no room key;
test_demo_minute.py runs the demo with them), and no other manage.py
command: no `appoint_head`, no institution file written by the test:
seed_demo writes the pins itself. Then everything happens in browser
contexts at 360x740. Carol signs in (keys created); the
administrator signs in and, on the administration screen's list of
departments, appoints her head of Plastic surgery with the demo's
`var/demo-keys/admin.key` picked as a file, after the screen refuses Grace
(Vascular surgery, never signed in: no keys), a file that is not a key and a
key that is not the pinned admin key; the list then shows Carol's
appointment signed. Without the list (a server that does not answer
`?all=1`), the screen asks for the numbers instead. Bob and Alice sign in; Carol
signs their admissions; Bob posts a message and a photo with keywords and
Alice sees both live. Carol redacts Bob's message and Bob deletes his photo:
both see the tombstones, live and after a reload, and the thumbnail is gone.
"""

import io
import json
import os
import re
import time
from collections.abc import Iterator

import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, Request, expect

from tests.browser.support import Ward, create_keys, shot, sign_admission, sign_in
from tests.live.servers import BASE_DIR, LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

MESSAGE = "Graft take looks complete, plan dressing change tomorrow"
CAPTION = "Donor site day 5, dry"
REASON = "Posted in the wrong patient's thread"
RUN = {"started": 0.0}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    """The cluster seed_demo --no-user-keys prepares: unlike conftest's, nothing added after."""
    RUN["started"] = time.monotonic()
    seed = {"patients": 8, "user_keys": False}
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1, seed=seed) as running:
        yield running
    seconds = time.monotonic() - RUN["started"]
    print(f"\nthe whole demo run, fresh database to last check: {seconds:.1f} s")


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = Ward(cluster)
    ward.admin_posts: list[str] = []  # every request body the administrator's browser sent
    yield ward
    for person in ward.people.values():
        person.context.close()


def a_photo() -> bytes:
    image = Image.new("RGB", (800, 600), (226, 180, 160))
    image.paste((200, 30, 30), (0, 0, 200, 150))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def department_item(page: Page, name: str) -> Locator:
    """A department of the administrator's list, with its head and their appointment."""
    return page.locator("#admin li[data-department]", has_text=name)


def test_the_administrator_appoints_the_first_head_in_the_browser(browser, ward):
    cluster = ward.cluster
    pins = json.loads((cluster.root / "var" / "institution.json").read_text())
    assert set(pins) == {"admin", "compliance", "audit_checkpoint"}, "seed_demo pinned the keys"
    carol = ward.open(browser, "head_carol")
    create_keys(carol, screenshot=None)
    carol.page.locator("a[href^='#/d/']").first.click()
    expect(carol.page.locator("#appointment")).to_contain_text(
        "Your appointment as head is not signed yet"
    )

    admin = ward.open(browser, "admin")
    page = admin.page

    def record(request: Request) -> None:
        if request.method != "GET":
            ward.admin_posts.append(f"{request.method} {request.url} {request.post_data or ''}")

    page.on("request", record)
    sign_in(page, "admin")
    # No key set-up and no fingerprint question: the demo's pins came with seed_demo.
    expect(page.get_by_role("heading", name="Departments")).to_be_visible()
    expect(page.locator("#admin")).not_to_contain_text("no pinned institution key")
    # Every department listed to the administrator, each head's appointment checked.
    plastic, vascular = (
        department_item(page, "Plastic surgery"),
        department_item(page, "Vascular surgery"),
    )
    expect(plastic).to_contain_text("Head: Dr Carol Lambert (head_carol)")
    expect(vascular).to_contain_text("Head: Dr Grace Girard (head_grace)")
    for item in (plastic, vascular):
        expect(item).to_contain_text("Not signed yet")
    expect(page.locator("#appoint-department")).to_have_count(0)
    ward.department_id = int(plastic.get_attribute("data-department"))
    shot(page, "21-admin-departments")

    # A head who never signed in has no key to appoint.
    vascular.get_by_role("button", name="Appoint the first head").click()
    expect(page.locator("#appoint-error")).to_contain_text("ask them to sign in to Rounds once")

    plastic.get_by_role("button", name="Appoint the first head").click()
    expect(page.locator("#appoint-title")).to_have_text(
        "Appoint Dr Carol Lambert head of Plastic surgery"
    )
    carol_fingerprint = carol.page.evaluate("() => window.rounds.e2e.identity.fingerprint")
    expect(page.locator("#head-fingerprint")).to_have_text(
        " ".join(re.findall("....", carol_fingerprint))
    )
    key_file = page.get_by_label("The institution's admin key file")
    sign = page.get_by_role("button", name="It matches: sign the appointment")
    key_file.set_input_files(
        {"name": "admin.key", "mimeType": "text/plain", "buffer": b"not a key\n"}
    )
    sign.click()
    expect(page.locator("#appoint-error")).to_contain_text("not an institution key file")
    keys = cluster.root / "var" / "demo-keys"
    key_file.set_input_files(str(keys / "compliance.key"))
    sign.click()
    expect(page.locator("#appoint-error")).to_contain_text(
        "not the institution's admin key configured for this hospital"
    )
    assert not any("/statements" in post for post in ward.admin_posts), "nothing was signed"
    key_file.set_input_files(str(keys / "admin.key"))
    shot(page, "22-admin-appoint")
    sign.click()
    expect(page.locator("#appoint-result")).to_contain_text(
        "Dr Carol Lambert is now the signed head of Plastic surgery"
    )
    # The list is checked again: Carol's appointment verifies, Grace still awaits hers.
    expect(plastic).to_contain_text("Appointment signed")
    expect(plastic.get_by_role("button", name="Appoint the first head")).to_have_count(0)
    expect(vascular).to_contain_text("Not signed yet")
    shot(page, "23-admin-appointed")
    posted = [post for post in ward.admin_posts if "/statements" in post]
    assert len(posted) == 1
    assert f"/api/departments/{ward.department_id}/statements" in posted[0]
    for kind in ("admin", "compliance"):
        secret = (keys / f"{kind}.key").read_text().strip()
        assert not any(secret in post or secret[:32] in post for post in ward.admin_posts)
    # Carol is now the signed head: her membership verifies in her browser.
    carol.page.goto("/#/")
    carol.page.goto(f"/#/d/{ward.department_id}/members")
    expect(carol.page.locator("[data-member=head_carol]")).to_contain_text("Admission signed")


def test_a_server_that_lists_no_departments_gets_the_numbers(ward):
    """The fallback: without `?all=1`, the department and head numbers, as the head reads them."""
    carol, page = ward.people["head_carol"].page, ward.people["admin"].page
    carol.goto("/#/")
    carol.locator("#my-profile").click()
    line = carol.locator("#my-number").inner_text()
    carol_id = int(re.search(r"User number (\d+)", line).group(1))
    listing = re.compile(r"/api/departments\?all=1$")
    page.route(listing, lambda route: route.fulfill(status=403, json={"code": "forbidden"}))
    try:
        page.goto("/#/")
        page.reload()
        expect(page.locator("#appoint-department")).to_be_visible()
        expect(page.locator("#admin li[data-department]")).to_have_count(0)
        page.locator("#appoint-department").fill(str(ward.department_id))
        page.locator("#appoint-user").fill(str(carol_id))
        page.get_by_role("button", name="Find the head's key").click()
        expect(page.locator("#head-fingerprint")).to_be_visible()
        page.get_by_role("button", name="Cancel").click()
    finally:
        page.unroute(listing)


def test_clinicians_sign_in_and_share_a_message_and_a_photo(browser, ward):
    carol = ward.people["head_carol"]
    for username in ("surgeon_bob", "nurse_alice"):
        create_keys(ward.open(browser, username), screenshot=None)
    for username in ("surgeon_bob", "nurse_alice"):
        sign_admission(carol, ward.department_id, username)
    bob, alice = ward.people["surgeon_bob"].page, ward.people["nurse_alice"].page
    alice.goto(f"/#/d/{ward.department_id}")
    bob.get_by_role("link", name="Find a patient").click()
    bob.get_by_label("Family name (start of)").fill("Le")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    bob.get_by_label("Subject").fill("Skin graft follow-up")
    bob.get_by_role("button", name="Open conversation").click()
    expect(bob.locator("#retention-banner")).to_be_visible()
    ward.thread_id = int(bob.url.split("/")[-1])
    alice.get_by_role("link", name="Skin graft follow-up").click()
    bob.get_by_role("textbox", name="Message").fill(MESSAGE)
    bob.get_by_role("textbox", name="Message").press("Enter")
    expect(alice.locator("li.msg .text", has_text=MESSAGE)).to_be_visible()

    bob.get_by_role("button", name="Add photos").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    bob.get_by_label("Choose photos").set_input_files(
        {"name": "IMG_3001.jpg", "mimeType": "image/jpeg", "buffer": a_photo()}
    )
    expect(sheet.locator(".preview")).to_have_count(1)
    sheet.get_by_label("Wound follow-up").check()
    sheet.get_by_label("Teaching").check()
    sheet.get_by_label("Caption (optional, encrypted)").fill(CAPTION)
    sheet.get_by_role("button", name="Send photo").click()
    expect(sheet).to_have_count(0, timeout=30_000)
    expect(alice.locator("li.msg .photo.ready")).to_have_count(1, timeout=30_000)
    expect(alice.locator("li.msg", has_text=CAPTION)).to_contain_text("Teaching")


def test_a_head_redacts_and_a_sender_deletes(ward):
    protocol = (BASE_DIR / "core" / "protocol.py").read_text()
    if '"message.redact"' not in protocol:
        pytest.skip("the server has no message.redact yet")
    carol, bob = ward.people["head_carol"].page, ward.people["surgeon_bob"].page
    alice = ward.people["nurse_alice"].page
    carol.goto(f"/#/t/{ward.thread_id}")
    carol.locator("li.msg", has_text=MESSAGE).get_by_role(
        "button", name="Redact this message"
    ).click()
    dialog = carol.get_by_role("dialog", name="Remove a message")
    expect(dialog).to_contain_text("keeps it, encrypted")
    dialog.get_by_label("Reason (optional)").fill(REASON)
    dialog.get_by_role("button", name="Redact").click()
    removed = "Message removed by Dr Carol Lambert at"
    for page in (bob, alice):
        expect(page.locator("li.msg.tombstone")).to_contain_text(removed)
        expect(page.locator("li.msg .text", has_text=MESSAGE)).to_have_count(0)
    expect(carol.locator("li.msg.tombstone")).to_contain_text("Message removed by you at")

    # Bob deletes his own photo message: the thumbnail goes from Alice's screen too.
    photo_message = bob.locator("li.msg", has_text=CAPTION)
    photo_message.get_by_role("button", name="Delete this message").click()
    bob.get_by_role("dialog", name="Remove a message").get_by_role("button", name="Delete").click()
    expect(alice.locator("li.msg .photo")).to_have_count(0)
    expect(alice.locator("li.msg.tombstone")).to_have_count(2)
    expect(alice.locator("li.msg.tombstone").nth(1)).to_contain_text(
        "Message removed by Dr Bob Martin at"
    )
    shot(alice, "24-tombstone")
    alice.reload()
    expect(alice.locator("li.msg.tombstone")).to_have_count(2)
    expect(alice.locator("li.msg.tombstone").first).to_contain_text(removed)
    expect(alice.locator("li.msg .photo")).to_have_count(0)
    assert not alice.locator("li.msg .text", has_text=CAPTION).count()
