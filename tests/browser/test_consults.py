"""Consults across departments in the browser (docs/advice.md, "Consults";
docs/crypto.md §14).

Plastic surgery: `head_carol` admits `surgeon_bob` and `intern_erin`; the demo
roster has one of the doctors on duty now as the on-call plastic surgeon. Dr Léa
Simon, of the Emergency department and no member of Plastic surgery, asks that role
(urgent) about her patient from her own thread: "Another department", the question
and a photo, held in her browser. The surgeon on duty opens the consult from the
request's screen (signing her in as the thread's guest and making its thread key);
Léa's browser then posts the question and the photo under the thread key, which the
surgeon reads decrypted. The surgeon answers "I'm on it" and writes a reply that Léa
sees live; Léa reads nothing else of Plastic surgery. Then the consult is ended.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    Ward,
    close_ward,
    create_keys,
    open_thread,
    plastic_surgery_ward,
    shot,
    sign_admission,
)
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(400)]

ROLE = "On-call plastic surgeon"
QUESTION = "Deep burn of the left hand, escharotomy tonight?"
REPLY = "Coming down in ten minutes, keep the hand raised."


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster) -> Iterator[Ward]:
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob", "intern_erin"))
    create_keys(ward.open(browser, "er_doctor_lea"), screenshot=None)
    for person in ward.people.values():
        person.page.on("pageerror", lambda error: ward.frames.append(f"pageerror {error}"))
    yield ward
    close_ward(ward)


def on_duty(page: Page, department: int) -> dict:
    """Who holds the on-call surgeon's role now, as the server says."""
    roles = page.evaluate(
        "async (d) => (await (await fetch(`/api/departments/${d}/oncall/roles`)).json()).roles",
        department,
    )
    role = next(role for role in roles if role["name"] == ROLE)
    assert role["on_duty"], "the demo roster has someone on duty now"
    return role["on_duty"][0]


def status(page: Page, path: str) -> int:
    return page.evaluate("async (path) => (await fetch(path)).status", path)


def test_consult_with_photo_opened_answered_and_ended(ward: Ward) -> None:
    carol = ward.people["head_carol"].page
    lea = ward.people["er_doctor_lea"].page
    assert ward.department_id is not None
    surgeon = on_duty(carol, ward.department_id)
    doctor = ward.people[surgeon["username"]].page
    # Another thread of Plastic surgery, which Léa must never read.
    private = open_thread(carol, "Ward round notes")
    carol.get_by_role("textbox", name="Message").fill("Bed 4 goes home tomorrow")
    carol.get_by_role("button", name="Send").click()
    expect(carol.locator("li.msg", has_text="Bed 4")).to_be_visible()

    # Léa asks from her own patient's thread: another department, its on-call role.
    open_thread(lea, "Burns, left hand")
    lea.get_by_role("button", name="Ask for advice").click()
    sheet = lea.locator("#ask-sheet")
    expect(sheet.get_by_label("Question (encrypted)")).to_be_focused()
    lea.keyboard.type(QUESTION)
    sheet.locator("#ask-where").get_by_text("Another department").click()
    sheet.locator("#consult-department").select_option(label="Plastic surgery")
    sheet.get_by_role("button", name="Add a photo").click()
    photo = lea.get_by_role("dialog", name="Add photos")
    lea.wait_for_function("() => document.querySelector('video.camera')?.videoWidth > 0")
    photo.get_by_role("button", name="Capture").click()
    expect(photo.locator(".preview")).to_have_count(1)
    photo.get_by_label("Care only").click()
    photo.get_by_role("button", name="Send photo").click()
    expect(photo).to_have_count(0)
    expect(sheet.locator("#ask-photo-note")).to_be_visible()
    sheet.locator("#consult-roles label.chip").filter(has_text=ROLE).click()
    sheet.get_by_role("button", name="Send request").click()
    expect(lea).to_have_url(re.compile(r"#/r/\d+$"), timeout=30_000)
    request = int(lea.url.split("/")[-1])
    # Pending: said plainly, and nothing was posted yet.
    expect(lea.locator("#consult-pending")).to_contain_text("sent when the department opens")
    expect(lea.locator("#advice-question")).to_contain_text(QUESTION)
    shot(lea, "81-consult-pending-phone")

    # The surgeon on duty opens the consult from the request's screen.
    doctor.goto("/#/")
    item = doctor.locator(f"#advice-requests a[data-advice='{request}']")
    expect(item).to_contain_text("Urgent")
    item.click()
    doctor.get_by_role("button", name="I'm on it").click()
    expect(doctor.locator("#advice-status")).to_have_text("Answered")
    doctor.get_by_role("button", name="Open the consult").click()
    expect(doctor).to_have_url(re.compile(r"#/t/\d+$"), timeout=30_000)
    consult = int(doctor.url.split("/")[-1])

    # Léa's browser posts the question and the photo under the thread key, and shows the thread.
    expect(lea).to_have_url(re.compile(rf"#/t/{consult}$"), timeout=30_000)
    question = doctor.locator("li.msg").filter(has_text=QUESTION)
    expect(question.locator(".photo.ready")).to_have_count(1, timeout=30_000)
    shot(doctor, "82-consult-question-phone")

    doctor.get_by_role("textbox", name="Message").fill(REPLY)
    doctor.get_by_role("button", name="Send").click()
    expect(lea.locator("li.msg", has_text=REPLY)).to_be_visible(timeout=30_000)
    expect(lea.locator("li.msg", has_text=QUESTION).locator(".photo.ready")).to_have_count(1)
    shot(lea, "83-consult-guest-phone")

    # Léa reads nothing else of Plastic surgery.
    assert status(lea, f"/api/departments/{ward.department_id}/threads") in (403, 404)
    assert status(lea, f"/api/threads/{private}/messages") in (403, 404)
    lea.goto(f"/#/t/{private}")
    expect(lea.locator(".conversation .error")).to_be_visible()
    expect(lea.locator("li.msg", has_text="Bed 4")).to_have_count(0)

    # Her home screen lists the consult; she ends it from the thread's menu.
    lea.goto("/#/")
    lea.locator(f"#my-consults a[data-consult='{consult}']").click()
    expect(lea.locator("li.msg", has_text=REPLY)).to_be_visible(timeout=30_000)
    lea.once("dialog", lambda dialog: dialog.accept())
    lea.locator("#consult-end").click()
    expect(lea.locator("#consult-state")).to_have_attribute("data-state", "ended")
    expect(lea.get_by_role("textbox", name="Message")).to_be_disabled()
    # The department writes on under a new thread key version, without her.
    doctor.goto("/#/")
    doctor.goto(f"/#/t/{consult}")
    doctor.get_by_role("textbox", name="Message").fill("Escharotomy done.")
    doctor.get_by_role("button", name="Send").click()
    sent = doctor.locator("li.msg", has_text="Escharotomy done.").locator("time")
    expect(sent).not_to_have_text(re.compile("Sending|Not sent"), timeout=30_000)
    keys = doctor.evaluate(
        "async (t) => (await (await fetch(`/api/consults/${t}/keys`)).json())", consult
    )
    assert [v["version"] for v in keys["versions"]] == [1, 2]
    assert not keys["rotation_required"]

    # A nurse whose admission Carol signs afterwards reads the whole consult: signing
    # shares the room key's history and the consults' thread keys with her (R8).
    frank = ward.open(lea.context.browser, "nurse_frank")
    create_keys(frank, screenshot=None)
    sign_admission(ward.people["head_carol"], ward.department_id, "nurse_frank")
    frank.page.goto("/#/")
    frank.page.goto(f"/#/t/{consult}")
    expect(frank.page.locator("li.msg", has_text=QUESTION)).to_be_visible(timeout=30_000)
    expect(frank.page.locator("li.msg", has_text="Escharotomy done.")).to_be_visible()
    assert not [frame for frame in ward.frames if frame.startswith("pageerror")]
