"""The compliance console in Chromium (docs/browser.md, "The compliance console").

The ward is built with the Python SDK, which is faster: the admin key
appoints head_carol, she admits surgeon_bob and nurse_alice; Bob opens a
thread on a demo patient and writes twice, Alice posts a photo with a
keyword and teaching consent and reads up to it, Bob corrects his first
message, and Carol redacts Bob's second message with a reason. The servers run with four-eyes on
(ROUNDS_COMPLIANCE_FOUR_EYES=1). Then browsers only, at 360x740:
compliance_dan signs in to the console (no personal key asked for), opens a
case on the patient by IPP, which awaits a second officer until
compliance_eve approves it in her browser; Dan loads the compliance key file
(the admin key file is refused first: its fingerprint is not the pinned
compliance one) and reads the timeline: both messages (the redacted one
marked with who, when, as what and why), the photo decrypted with its
keyword and consent, "Seen by", each signature verified; a signature the
server altered is shown as failing, not hidden. The library takes the case.
Nothing Dan's browser sent holds the key file. Closed, the case releases
nothing more. Signing out zeroes the conversation keys the review opened.
Without the deployment file, an officer confirms both institution keys on
the pin screen before the console.
"""

import base64
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.support import (
    device_dir,
    institution_keys,
    new_context,
    python_client,
    run_async,
    shot,
    sign_in,
)
from tests.live.sdk import LIMITS, department_named
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

FIRST = "Flap perfusion good, capillary refill 2 s"
FIXED = "Flap perfusion good, capillary refill under 2 s"
SECOND = "Wrong patient: ignore this note"
CAPTION = "Donor site, day 3"
REASON = "Posted in the wrong patient's thread"
TITLE = "Compliance: flap follow-up"


def a_photo() -> bytes:
    image = Image.new("RGB", (640, 480), (220, 180, 160))
    image.paste((30, 30, 200), (0, 0, 160, 120))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def four_eyes(cluster: LiveCluster) -> LiveCluster:
    """The module's servers restarted with four-eyes on: a case waits for a second officer."""
    plain = cluster.env
    cluster.env = lambda: {**plain(), "ROUNDS_COMPLIANCE_FOUR_EYES": "1"}  # type: ignore[method-assign]
    for server in cluster.servers:
        cluster.restart(server)
    return cluster


async def build_ward(cluster: LiveCluster) -> dict:
    clients = {}
    ward: dict = {}
    try:
        for name in ("head_carol", "surgeon_bob", "nurse_alice"):
            client = python_client(cluster, device_dir())
            await client.login(name, DEMO_PASSWORD)
            await client.setup_keys(**LIMITS)
            clients[name] = client
        carol, bob, alice = clients["head_carol"], clients["surgeon_bob"], clients["nurse_alice"]
        department = await department_named(carol, "Plastic surgery")
        admin = python_client(cluster, device_dir())
        try:
            await admin.login("admin", DEMO_PASSWORD)
            await admin.appoint_head(
                department,
                carol.me(),
                institution_keys(cluster)["admin"],
                fingerprint=carol.keys.identity.fingerprint,
            )
        finally:
            await admin.aclose()
        for member in (bob, alice):
            await carol.attest(
                department, member.me(), fingerprint=member.keys.identity.fingerprint
            )
        for client in clients.values():
            await client.connect()
        [patient, *_] = await bob.find_patients(name="le")
        thread = await bob.create_thread(department, patient["id"], TITLE)
        first = await bob.send_text(thread, FIRST, client_msg_id="console-first-1")
        second = await bob.send_text(thread, SECOND)
        keyword = (await alice.photo_keywords())[0]
        await alice.send_photos(
            thread, [a_photo()], keywords=[keyword["code"]], consent="teaching", text=CAPTION
        )
        await alice.read(thread["id"], 3)
        note = {
            "id": first["message_id"],
            "thread": thread["id"],
            "client_msg_id": "console-first-1",
        }
        await bob.correct_text(note, FIXED)
        await carol.redact(second["message_id"], REASON)
        ward.update(
            department=department,
            thread=thread["id"],
            patient=patient,
            keyword=keyword,
            redacted=second["message_id"],
        )
    finally:
        for client in clients.values():
            await client.aclose()
    return ward


@pytest.fixture(scope="module")
def ward(four_eyes: LiveCluster) -> dict:
    return run_async(build_ward(four_eyes))


@pytest.fixture(scope="module")
def officers(browser: Browser, four_eyes: LiveCluster, ward: dict):
    """Dan's and Eve's browsers, every non-GET request Dan's sends recorded, and every
    API read with the case it named (X-Rounds-Case)."""
    people = {}
    sent: list[str] = []
    reads: list[tuple[str, str | None]] = []
    for name in ("compliance_dan", "compliance_eve"):
        context = new_context(browser, four_eyes)
        people[name] = context.new_page()
    people["compliance_dan"].on(
        "request",
        lambda request: (
            sent.append(f"{request.method} {request.url} {request.post_data or ''}")
            if request.method != "GET"
            else None
        ),
    )
    people["compliance_dan"].on(
        "request",
        lambda request: (
            reads.append((request.url, request.headers.get("x-rounds-case")))
            if request.method == "GET" and "/api/" in request.url
            else None
        ),
    )
    people["sent"] = sent
    people["reads"] = reads
    yield people
    for name in ("compliance_dan", "compliance_eve"):
        people[name].context.close()


def case_item(page: Page, reference: str):
    return page.locator(f"#cases li[data-reference='{reference}']")


def open_case(page: Page, reference: str, ipp: str) -> None:
    page.locator("#open-case-box summary").click()
    page.get_by_label("Reference").fill(reference)
    page.get_by_label("Reason").fill("Patient request of 2026-11-20 (art. 15 GDPR)")
    page.get_by_label("Patient's IPP").fill(ipp)
    page.get_by_role("button", name="Open the case").click()
    expect(case_item(page, reference)).to_be_visible()


def test_an_officer_reads_a_case_in_the_console(four_eyes, ward, officers):
    dan, eve = officers["compliance_dan"], officers["compliance_eve"]
    sign_in(dan, "compliance_dan")
    # The console, not the clinicians' screens: no key set-up, no "no department".
    expect(dan.get_by_role("heading", name="Cases")).to_be_visible()
    assert dan.url.endswith("#/compliance")
    expect(dan.locator("#view")).not_to_contain_text("Create my keys")
    expect(dan.locator("#view")).not_to_contain_text("You are in no department yet")

    open_case(dan, "INC-2026-101", ward["patient"]["ipp"])
    item = case_item(dan, "INC-2026-101")
    expect(item).to_have_attribute("data-status", "awaiting")
    expect(item).to_contain_text("Awaits a second officer's approval")
    expect(item.get_by_role("button", name="Approve")).to_have_count(0)  # not one's own
    case_id = int(item.get_attribute("data-case"))
    shot(dan, "31-compliance-cases")
    # Before the approval, the case releases nothing.
    dan.goto(f"/#/compliance/c/{case_id}")
    expect(dan.locator("#case-release-error")).to_have_attribute("data-code", "case_not_approved")

    sign_in(eve, "compliance_eve")
    case_item(eve, "INC-2026-101").get_by_role("button", name="Approve").click()
    expect(case_item(eve, "INC-2026-101")).to_have_attribute("data-status", "open")
    # The approver does not read: releases go to the opener.
    expect(case_item(eve, "INC-2026-101").get_by_role("link", name="Review")).to_have_count(0)

    dan.goto("/#/compliance")
    expect(case_item(dan, "INC-2026-101")).to_contain_text("approved by compliance_eve")
    case_item(dan, "INC-2026-101").get_by_role("link", name="Review").click()
    thread_link = dan.locator(f"#case-threads a[data-thread='{ward['thread']}']")
    expect(thread_link).to_contain_text(TITLE)
    expect(thread_link).to_contain_text(f"IPP {ward['patient']['ipp']}")

    # The wrong key file: refused before anything is decrypted.
    key_file = dan.get_by_label("The institution's compliance key file")
    load = dan.get_by_role("button", name="Open with this key")
    keys = four_eyes.root / "var" / "demo-keys"
    key_file.set_input_files(
        {"name": "compliance.key", "mimeType": "text/plain", "buffer": b"not a key\n"}
    )
    load.click()
    expect(dan.locator("#key-error")).to_contain_text("not an institution key file")
    key_file.set_input_files(str(keys / "admin.key"))
    load.click()
    expect(dan.locator("#key-error")).to_contain_text(
        "not the institution's compliance key configured for this hospital"
    )
    expect(dan.locator("#key-error")).to_have_attribute("data-code", "not_the_compliance_key")
    expect(dan.locator("#key-status")).to_have_text("")
    key_file.set_input_files(str(keys / "compliance.key"))
    load.click()
    expect(dan.locator("#key-status")).to_contain_text("compliance key file was wiped")
    expect(key_file).to_have_value("")

    thread_link.click()
    messages = dan.locator("#timeline li.msg")
    expect(messages).to_have_count(3)
    first, second, photo = messages.nth(0), messages.nth(1), messages.nth(2)
    expect(first.locator(".text")).to_have_text(FIRST)
    # Every version of a corrected message, each with its own check.
    expect(first.locator(".version[data-version='2']")).to_contain_text(FIXED)
    expect(first.locator(".version[data-version='2']")).to_have_attribute("data-check", "ok")
    # The redacted message is read too, marked with who, when, on which right and why.
    expect(second.locator(".text")).to_have_text(SECOND)
    expect(second.locator(".redaction")).to_contain_text("Redacted by head_carol")
    expect(second.locator(".redaction")).to_contain_text("(as head)")
    expect(second.locator(".redaction")).to_contain_text(REASON)
    expect(photo).to_contain_text(CAPTION)
    expect(photo.locator(".photo.ready img")).to_have_count(1)
    expect(photo).to_contain_text(ward["keyword"]["label"])
    expect(photo).to_contain_text("Consent: Teaching")
    for message in (first, second, photo):
        expect(message).to_have_attribute("data-check", "ok")
        expect(message.locator(".check")).to_contain_text("Signature verified")
    expect(first.locator(".seen-by")).to_contain_text("Seen by nurse_alice")
    expect(first.locator(".members-then")).to_contain_text("statement 3")
    expect(dan.locator("#membership")).to_contain_text("signed by the institution's admin key")
    expect(dan.locator("#key-versions")).to_contain_text("opened with the compliance key")
    expect(dan.locator("#timeline-head")).not_to_contain_text("null")
    shot(dan, "32-compliance-timeline")
    photo.scroll_into_view_if_needed()
    shot(dan, "33-compliance-photo")

    # The photo full size in the viewer, downloaded under the case.
    photo.locator(".photo").click()
    viewer = dan.get_by_role("dialog", name="Photo")
    expect(viewer.locator(".stage img")).to_have_attribute("src", re.compile("^blob:"))
    viewer.get_by_role("button", name="Close").click()

    # A reload keeps the screen but not the conversation keys: the signatures are still
    # checked, the content waits for the key file, asked for on this screen.
    dan.reload()
    expect(messages).to_have_count(3)
    expect(first).to_have_attribute("data-check", "signature_only")
    expect(first).to_contain_text("Not decrypted")
    expect(first.locator(".check")).to_contain_text("Signature verified")
    expect(first.locator(".text")).not_to_contain_text(FIRST)
    dan.get_by_label("The institution's compliance key file").set_input_files(
        str(keys / "compliance.key")
    )
    dan.get_by_role("button", name="Open with this key").click()
    expect(first).to_have_attribute("data-check", "ok")
    expect(first.locator(".text")).to_have_text(FIRST)
    expect(dan.locator("#keys-held")).to_be_visible()

    # The library takes the case: the photo, decrypted with the keys the review opened.
    dan.goto(f"/#/library?case={case_id}")
    expect(dan.get_by_label("Review case")).to_have_value(str(case_id))
    expect(dan.locator("#library-grid .tile.ready")).to_have_count(1)

    # The case went in a header, never in a URL the server's access log keeps.
    reads = officers["reads"]
    grounds = {case for url, case in reads if "/content" in url or "/library/photos" in url}
    assert grounds == {str(case_id)}
    assert not any("case=" in url for url, _ in reads)

    # Nothing Dan's browser sent holds the key file, in hex or base64.
    for kind in ("admin", "compliance"):
        secret = (keys / f"{kind}.key").read_text().strip()
        encoded = base64.b64encode(bytes.fromhex(secret)).decode()
        assert not any(secret[:32] in sent or encoded[:24] in sent for sent in officers["sent"]), (
            kind
        )


def test_a_signature_the_server_altered_is_shown_as_failing(ward, officers):
    dan = officers["compliance_dan"]
    dan.goto("/#/compliance")
    case_id = int(case_item(dan, "INC-2026-101").get_attribute("data-case"))
    timeline = re.compile(rf"/api/compliance/cases/{case_id}/threads/\d+/timeline")

    def altered(route: Route) -> None:
        page = route.fetch().json()
        header = page["messages"][0]["envelope"]["header"]
        sig = bytearray(base64.b64decode(header["sig"]))
        sig[5] ^= 1
        header["sig"] = base64.b64encode(bytes(sig)).decode()
        route.fulfill(json=page)

    dan.route(timeline, altered)
    try:
        dan.goto(f"/#/compliance/c/{case_id}/t/{ward['thread']}")
        messages = dan.locator("#timeline li.msg")
        expect(messages).to_have_count(3)
        # Shown, with the check that failed, never as if it were verified; the others still are.
        expect(messages.nth(0)).to_have_attribute("data-check", "bad_signature")
        expect(messages.nth(0).locator(".check")).to_contain_text("Check failed")
        expect(messages.nth(0).locator(".text")).to_have_count(0)
        expect(messages.nth(1)).to_have_attribute("data-check", "ok")
    finally:
        dan.unroute(timeline)


def test_a_chain_under_another_admin_key_fails_every_message(four_eyes, ward, officers):
    """The server roots the department in a key of its own: nothing verifies, all is shown."""
    dan = officers["compliance_dan"]
    dan.goto("/#/compliance")
    case_id = int(case_item(dan, "INC-2026-101").get_attribute("data-case"))
    timeline = re.compile(rf"/api/compliance/cases/{case_id}/threads/\d+/timeline")
    impostor = institution_keys(four_eyes)["compliance"]

    def rerooted(route: Route) -> None:
        page = route.fetch().json()
        page["department"]["chain"]["admin"] = {
            "fingerprint": impostor.fingerprint,
            "public": impostor.public.to_dict(),
        }
        route.fulfill(json=page)

    dan.route(timeline, rerooted)
    try:
        dan.goto(f"/#/compliance/c/{case_id}/t/{ward['thread']}")
        expect(dan.locator("#timeline-error")).to_have_attribute("data-code", "admin_key_mismatch")
        messages = dan.locator("#timeline li.msg")
        expect(messages).to_have_count(3)
        for i in range(3):
            expect(messages.nth(i)).to_have_attribute("data-check", "admin_key_mismatch")
        expect(dan.locator("#timeline .text")).to_have_count(0)
    finally:
        dan.unroute(timeline)


def test_a_closed_case_releases_nothing(ward, officers):
    dan = officers["compliance_dan"]
    dan.goto("/#/compliance")
    item = case_item(dan, "INC-2026-101")
    case_id = int(item.get_attribute("data-case"))
    dan.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Close").click()
    expect(item).to_have_attribute("data-status", "closed")
    expect(item).to_contain_text("Closed by compliance_dan")
    dan.goto(f"/#/compliance/c/{case_id}")
    expect(dan.locator("#case-release-error")).to_have_attribute("data-code", "case_closed")
    dan.goto(f"/#/compliance/c/{case_id}/t/{ward['thread']}")
    expect(dan.locator("#timeline-error")).to_have_attribute("data-code", "case_closed")
    expect(dan.locator("#timeline li.msg")).to_have_count(0)


KEPT_KEY = """() => {
  const [held] = window.rounds.reader.keys.values();
  window.keptRoomKey = held.values().next().value.key;
  return window.keptRoomKey.some((byte) => byte !== 0);
}"""


def test_signing_out_drops_the_conversation_keys(ward, officers):
    dan = officers["compliance_dan"]
    dan.goto("/#/compliance")
    expect(dan.get_by_role("heading", name="Cases")).to_be_visible()
    # The room keys the review opened are held in memory only, and zeroed at sign-out.
    assert dan.evaluate(KEPT_KEY)
    dan.get_by_role("button", name="Sign out").click()
    expect(dan.get_by_label("Username")).to_be_visible()
    expect(dan.locator("#view")).not_to_contain_text("INC-2026-101")
    assert dan.evaluate("() => window.rounds.reader") is None
    assert dan.evaluate("() => window.keptRoomKey.every((byte) => byte === 0)")


def test_without_the_pins_file_an_officer_confirms_the_keys_first(browser, four_eyes):
    """No deployment file: the pin screen first (admin key, compliance key), then the console."""
    context = new_context(browser, four_eyes)
    try:
        context.route("**/app/institution.json", lambda route: route.fulfill(status=404))
        page = context.new_page()
        sign_in(page, "compliance_eve")
        pins = {kind: pair.fingerprint for kind, pair in institution_keys(four_eyes).items()}
        for kind in ("admin", "compliance"):
            expect(page.locator(f"#{kind}-fingerprint")).to_have_text(
                " ".join(re.findall("....", pins[kind]))
            )
            page.locator(f"#confirm-{kind}-key").click()
        expect(page.get_by_role("heading", name="Cases")).to_be_visible()
        assert page.url.endswith("#/compliance")
    finally:
        context.close()
