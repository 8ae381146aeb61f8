"""The weekly photo review at the staff meeting (docs/browser.md, Weekly review).

Plastic surgery: `surgeon_bob` posts a photo of a patient this week. `head_carol`,
who leads the meeting, opens the week's review, marks the case reviewed and adds a
comment, which goes out as an end-to-end encrypted message in the patient's
"Weekly review" conversation; Bob, a member, sees the mark (and no button to change
it) and the comment decrypted on his device. Carol prints the week: the print
stylesheet hides the controls, names the week and department, and the PDF Chromium
makes holds the case, its mark and its comment. The server stored the comment as
ciphertext only, and audited the mark.
"""

import re
import zlib
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from tests.browser.support import (
    SCREENSHOTS,
    close_ward,
    phone_photo,
    plastic_surgery_ward,
    shot,
)
from tests.live.sdk import as_json, query
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

PARIS = timezone(timedelta(hours=1))  # December: CET
COMMENT = "Graft healing well, keep dressing two more days"


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob",))
    yield ward
    close_ward(ward)


def pdf_text(pdf: bytes) -> str:
    """The text of a PDF Chromium printed: each font's ToUnicode map applied to the
    glyph strings shown in that font (`/F3 12 Tf [<0024002B> -3 <0037>] TJ`)."""
    objects = {
        int(number): body for number, body in re.findall(rb"(\d+) 0 obj\s*(.*?)endobj", pdf, re.S)
    }

    def stream(body: bytes) -> bytes:
        match = re.search(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S)
        if not match:
            return b""
        try:
            return zlib.decompress(match[1])
        except zlib.error:
            return b""

    def cmap(number: int) -> dict[str, str]:
        text = stream(objects[number])
        table: dict[str, str] = {}
        for block in re.findall(rb"beginbfchar(.*?)endbfchar", text, re.S):
            for glyph, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
                table[glyph.decode().upper()] = bytes.fromhex(uni.decode()).decode("utf-16-be")
        for block in re.findall(rb"beginbfrange(.*?)endbfrange", text, re.S):
            for lo, hi, start in re.findall(
                rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
            ):
                base = int.from_bytes(bytes.fromhex(start.decode()), "big")
                for i, glyph in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                    table[f"{glyph:0{len(lo)}X}"] = chr(base + i)
        return table

    fonts: dict[bytes, dict[str, str]] = {}
    for body in objects.values():
        for name, number in re.findall(rb"/(F\d+|f\d+) (\d+) 0 R", body):
            font = objects.get(int(number), b"")
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font)
            if to_unicode:
                fonts[name] = cmap(int(to_unicode[1]))
    shown: list[str] = []
    for body in objects.values():
        content = stream(body)
        if b"Tf" not in content:
            continue
        table: dict[str, str] = {}
        for token in re.finditer(
            rb"/(\w+) [\d.]+ Tf|\[(.*?)\]\s*TJ|<([0-9A-Fa-f]*)>\s*Tj", content, re.S
        ):
            if token[1]:
                table = fonts.get(token[1], {})
                continue
            strings = re.findall(rb"<([0-9A-Fa-f]*)>", token[2]) if token[2] else [token[3]]
            hexes = b"".join(strings).decode().upper()
            shown.append("".join(table.get(hexes[i : i + 4], "?") for i in range(0, len(hexes), 4)))
        shown.append("\n")
    return "".join(shown)


def test_a_head_marks_comments_and_prints_and_a_colleague_sees_it(ward):
    carol = ward.people["head_carol"].page
    bob = ward.people["surgeon_bob"].page
    errors: list[str] = []
    for page in (carol, bob):
        page.on("pageerror", lambda error: errors.append(str(error)))

    # Bob's photo of the week.
    bob.get_by_role("link", name="Find a patient").click()
    bob.get_by_label("Family name (start of)").fill("Le")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    patient_id = int(bob.url.split("/")[-1])
    bob.get_by_label("Subject").fill("Graft follow-up")
    bob.get_by_role("button", name="Open conversation").click()
    bob.get_by_role("button", name="Add photos").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    taken = datetime.now(PARIS).replace(second=0, microsecond=0) - timedelta(minutes=5)
    bob.get_by_label("Choose photos").set_input_files(
        {"name": "IMG_4001.jpg", "mimeType": "image/jpeg", "buffer": phone_photo(taken, (800, 600))}
    )
    expect(sheet.locator(".preview")).to_have_count(1)
    sheet.get_by_label("Hand", exact=True).check()
    sheet.get_by_label("Care only").check()  # the consent is asked, never preset
    sheet.get_by_role("button", name="Send photo").click()
    expect(sheet).to_have_count(0, timeout=30_000)

    # Carol, at the meeting: the case, marked reviewed, and a comment.
    carol.goto(f"/#/d/{ward.department_id}")
    carol.get_by_role("link", name="Weekly photo review").click()
    case = carol.locator(f".review-patient[data-patient='{patient_id}']")
    expect(case.locator(".tile.ready")).to_have_count(1)
    expect(case.locator(".review-mark")).to_contain_text("Not reviewed yet")
    case.get_by_role("button", name="Mark reviewed").click()
    expect(case.locator(".review-mark")).to_contain_text("Reviewed by")
    case.get_by_role("button", name="Unmark reviewed").click()
    expect(case.locator(".review-mark")).to_contain_text("Not reviewed yet")
    case.get_by_role("button", name="Mark reviewed").click()
    expect(case.locator(".review-mark")).to_contain_text("Reviewed by")
    case.get_by_role("textbox", name=re.compile("^Comment")).fill(COMMENT)
    case.get_by_role("button", name="Add comment").click()
    expect(case.locator(".review-comment")).to_have_count(1, timeout=30_000)
    expect(case.locator(".review-comment")).to_contain_text(COMMENT)
    shot(carol, "18-weekly-review-marked")
    carol.set_viewport_size({"width": 1280, "height": 800})
    carol.evaluate("window.scrollTo(0, 0)")
    shot(carol, "19-weekly-review-marked-desktop")

    # Bob, a member: the mark without its button, the comment opened on his device.
    bob.goto(f"/#/d/{ward.department_id}/review")
    bob_case = bob.locator(f".review-patient[data-patient='{patient_id}']")
    expect(bob_case.locator(".review-mark")).to_contain_text("Reviewed by")
    expect(bob_case.get_by_role("button", name=re.compile("reviewed"))).to_have_count(0)
    expect(bob_case.locator(".review-comment")).to_contain_text(COMMENT, timeout=30_000)
    # In the patient's "Weekly review" conversation too, with the week it is about.
    [(thread_id,)] = query(
        ward.cluster,
        "SELECT id FROM chat_thread WHERE title = 'Weekly review' AND patient_id = ?",
        (patient_id,),
    )
    bob.goto(f"/#/t/{thread_id}")
    expect(bob.locator("#view")).to_contain_text(COMMENT)
    expect(bob.locator("#view")).to_contain_text(re.compile(r"Weekly review \d{4}-W\d\d: "))

    # The server holds the comment as ciphertext only, and audited the mark.
    rows = query(
        ward.cluster,
        "SELECT ciphertext, header FROM chat_message WHERE thread_id = ?",
        (thread_id,),
    )
    assert len(rows) == 1 and "Graft healing" not in str(rows[0])
    [(data,)] = query(
        ward.cluster,
        "SELECT data FROM audit_auditevent WHERE action = 'review.unmarked' AND object_id = ?",
        (str(patient_id),),
    )
    assert re.fullmatch(r"\d{4}-W\d\d", as_json(data)["week"])
    marked = query(
        ward.cluster, "SELECT id FROM audit_auditevent WHERE action = 'review.marked'", ()
    )
    assert len(marked) == 2

    # Printed: no controls, the week and department on top, the case whole.
    carol.emulate_media(media="print")
    expect(carol.locator("#review-print-title")).to_be_visible()
    expect(carol.locator("#review-print-title")).to_contain_text("Plastic surgery")
    expect(carol.locator("#review-week")).to_be_hidden()
    expect(carol.locator("#review-print")).to_be_hidden()
    expect(case.get_by_role("button", name="Add comment")).to_be_hidden()
    expect(case.locator(".tile img")).to_be_visible()
    expect(case.locator(".tile-tags")).to_have_text("Hand")
    assert case.evaluate("el => getComputedStyle(el).breakInside") == "avoid"
    shot(carol, "20-weekly-review-print")
    pdf = carol.pdf(format="A4", print_background=True)
    (SCREENSHOTS / "20-weekly-review-print.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF-") and b"/Subtype /Image" in pdf  # the thumbnail
    text = pdf_text(pdf)
    assert "Weekly photo review" in text and "Plastic surgery" in text, text
    assert "IPP" in text and "Reviewed by" in text, text
    assert COMMENT in text, text
    assert "Add comment" not in text and "Previous week" not in text, text
    carol.emulate_media(media="screen")
    assert not errors
