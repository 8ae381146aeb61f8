"""Advice requests in the browser (docs/browser.md, "Advice requests in the browser").

Plastic surgery: `head_carol` admits `surgeon_bob`, `intern_erin` and `nurse_alice`.
The demo roster (rooms/demo.py) has one of the doctors on duty now as the on-call
plastic surgeon; the test asks the server who, as the ask sheet shows it. Alice,
on a phone, asks the on-call surgeon an urgent question from a patient's thread:
"Ask for advice", the question typed, the role, "Send request" (the taps are
counted and printed with `-s`). The surgeon sees it on the home screen and on its
screen, taps "I'm on it", and Alice's screen shows the answer live. Then: a
colleague who was not asked sees no answer buttons; a request passed on reaches the
colleague it was passed to, who answers "Call me"; Alice withdraws another; and an
`@` mention with "!" makes the message itself a request.
"""

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import (
    Taps,
    Ward,
    close_ward,
    demo_cluster,
    open_thread,
    plastic_surgery_ward,
    shot,
)
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(400)]

ROLE = "On-call plastic surgeon"
DOCTORS = ("head_carol", "surgeon_bob", "intern_erin")
NAMES = {
    "head_carol": "Dr Carol Lambert",
    "surgeon_bob": "Dr Bob Martin",
    "intern_erin": "Dr Erin Petit",
}
MOST_TAPS = 3
EMERGENCY_SECONDS = 5


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    """The browser tests' cluster (conftest.py), with emergencies escalating after a few
    seconds, so one escalation is seen live; urgent ones keep the 5 minutes."""
    settings = {
        "ROUNDS_ADVICE_EMERGENCY_SECONDS": str(EMERGENCY_SECONDS),
        "ROUNDS_ADVICE_REALERT_SECONDS": "600",
    }
    with demo_cluster(settings) as running:
        yield running


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob", "intern_erin", "nurse_alice"))
    for person in ward.people.values():
        person.page.on("pageerror", lambda error: ward.frames.append(f"pageerror {error}"))
    yield ward
    close_ward(ward)


def on_duty(page: Page, department: int) -> dict:
    """Who holds the on-call surgeon's role now, as the server says (the seeded roster
    hands over at 08:00 and 20:00)."""
    roles = page.evaluate(
        "async (d) => (await (await fetch(`/api/departments/${d}/oncall/roles`)).json()).roles",
        department,
    )
    role = next(role for role in roles if role["name"] == ROLE)
    assert role["on_duty"], "the demo roster has someone on duty now"
    return role["on_duty"][0]


def ask(page: Page, question: str, to: str, priority: str | None = None) -> int:
    """The ask flow from the thread screen; returns the request's id (its screen opens)."""
    tap = Taps()
    tap(page.get_by_role("button", name="Ask for advice"))
    sheet = page.locator("#ask-sheet")
    expect(sheet.get_by_label("Question (encrypted)")).to_be_focused()
    page.keyboard.type(question)
    if priority:
        tap(sheet.locator("#ask-priority").get_by_text(priority, exact=True))
    tap(sheet.locator("label.chip").filter(has_text=to).first)
    tap(sheet.get_by_role("button", name="Send request"))
    expect(page).to_have_url(re.compile(r"#/r/\d+$"), timeout=30_000)
    return int(page.url.split("/")[-1])


def buttons(page: Page) -> Locator:
    return page.locator("#advice-actions button")


def test_ask_the_on_call_surgeon_who_answers_live(ward: Ward) -> None:
    alice = ward.people["nurse_alice"].page
    assert ward.department_id is not None
    surgeon = on_duty(alice, ward.department_id)
    doctor = ward.people[surgeon["username"]].page
    thread = open_thread(alice, "Flap check")
    shot(alice, "71-thread-ask-phone")

    tap = Taps()
    tap(alice.get_by_role("button", name="Ask for advice"))
    sheet = alice.locator("#ask-sheet")
    expect(sheet.get_by_label("Question (encrypted)")).to_be_focused()
    alice.keyboard.type("Flap looks dusky since 2 h, can you come?")
    # The roles come first, with who is on duty now beside each; urgent is preselected.
    role = sheet.locator("#ask-to-roles label.chip").filter(has_text=ROLE)
    expect(role).to_contain_text(f"on duty: {surgeon['display_name']}")
    expect(sheet.get_by_label("Urgent")).to_be_checked()
    shot(alice, "72-ask-sheet-phone")
    tap(role)
    tap(sheet.get_by_role("button", name="Send request"))
    expect(alice).to_have_url(re.compile(r"#/r/\d+$"), timeout=30_000)
    request = int(alice.url.split("/")[-1])
    print(f"\nask for advice: {tap.count} taps plus typing, from the thread to the request sent")
    assert tap.count <= MOST_TAPS

    # The requester's screen: the question decrypted, whom, who has it, the first step.
    expect(alice.locator("#advice-question")).to_contain_text("Flap looks dusky", timeout=30_000)
    expect(alice.locator("#advice-summary")).to_contain_text(f"To: {ROLE}")
    expect(alice.locator("#advice-thread")).to_contain_text("Flap check")
    expect(alice.locator("#advice-holder")).to_contain_text(f"With {surgeon['display_name']} now")
    expect(alice.locator("#advice-timeline li").first).to_contain_text(
        f"Sent to {surgeon['display_name']} (on duty)"
    )
    expect(alice.get_by_role("button", name="I'm on it")).to_have_count(0)
    expect(alice.get_by_role("button", name="Withdraw")).to_be_visible()
    shot(alice, "73-request-requester-phone")

    # The surgeon: on the home screen, urgent first, then its screen.
    doctor.goto("/#/")
    item = doctor.locator(f"#advice-requests a[data-advice='{request}']")
    expect(item).to_contain_text("Urgent")
    patient = alice.locator("#advice-thread").inner_text().split(" · ")[0]
    expect(item).to_contain_text(patient)
    expect(item).to_contain_text("For you")
    shot(doctor, "74-home-requests-phone")
    item.click()
    expect(doctor.locator("#advice-question")).to_contain_text("Flap looks dusky", timeout=30_000)
    doctor.get_by_role("button", name="I'm on it").click()
    expect(doctor.locator("#advice-status")).to_have_text("Answered")

    # Alice sees the answer without reloading.
    expect(alice.locator("#advice-holder")).to_contain_text(f"{surgeon['display_name']} is on it")
    expect(alice.locator("#advice-timeline li").last).to_contain_text(
        f"{surgeon['display_name']}: I'm on it"
    )
    expect(alice.get_by_role("button", name="Withdraw")).to_have_count(0)
    shot(alice, "75-request-answered-phone")
    # In the conversation the question carries a badge to its request.
    alice.goto(f"/#/t/{thread}")
    expect(alice.locator(f"a.advice-badge[data-advice='{request}']")).to_have_text(
        "Request answered"
    )
    assert not [frame for frame in ward.frames if frame.startswith("pageerror")]


def test_not_asked_sees_no_buttons_then_pass_and_withdraw(ward: Ward) -> None:
    alice = ward.people["nurse_alice"].page
    assert ward.department_id is not None
    surgeon = on_duty(alice, ward.department_id)
    doctor = ward.people[surgeon["username"]].page
    # A doctor who is neither on duty nor head: never asked.
    other_name = next(name for name in DOCTORS if name not in (surgeon["username"], "head_carol"))
    other = ward.people[other_name].page
    open_thread(alice, "Drain output")
    request = ask(alice, "Drain 300 ml since this morning, is that fine?", ROLE)

    other.goto(f"/#/r/{request}")
    expect(other.locator("#advice-question")).to_contain_text("Drain 300 ml", timeout=30_000)
    expect(other.locator("#advice-holder")).to_contain_text("With")
    expect(buttons(other)).to_have_count(0)

    # Not for me: the surgeon passes it to the other doctor.
    doctor.goto(f"/#/r/{request}")
    doctor.get_by_role("button", name="Not for me: pass it on").click()
    dialog = doctor.locator("#pass-dialog")
    dialog.locator("#pass-to-people label.chip").filter(has_text=NAMES[other_name]).click()
    shot(doctor, "76-pass-dialog-phone")
    dialog.get_by_role("button", name="Pass it on").click()
    expect(doctor.locator("#advice-timeline li").last).to_contain_text("passed it to")

    # Now asked, the other doctor may answer (the screen redraws live).
    expect(other.get_by_role("button", name="Call me")).to_be_visible()
    other.get_by_role("button", name="Call me").click()
    expect(alice.locator("#advice-holder")).to_contain_text("asks you to call")
    # The surgeon's answer after that is refused: already answered.
    expect(buttons(doctor)).to_have_count(0)

    # Withdraw: another request, routine, withdrawn by its requester.
    alice.go_back()
    expect(alice.get_by_role("button", name="Ask for advice")).to_be_visible()
    second = ask(alice, "Can someone review the dressing today?", ROLE, priority="Routine")
    doctor.goto("/#/")
    expect(doctor.locator(f"#advice-requests a[data-advice='{second}']")).to_contain_text("Routine")
    alice.get_by_role("button", name="Withdraw").click()
    expect(alice.locator("#advice-status")).to_have_text("Withdrawn")
    expect(alice.locator("#advice-timeline li").last).to_contain_text("Withdrawn by")
    # Gone from the surgeon's open requests, live.
    expect(doctor.locator(f"#advice-requests a[data-advice='{second}']")).to_have_count(0)
    assert not [frame for frame in ward.frames if frame.startswith("pageerror")]


def test_an_urgent_request_with_a_photo_is_one_message(ward: Ward) -> None:
    """The question and a photo in one message, made a request: "Add a photo" opens the
    photo sheet on the camera with the question as its caption; once the photo is
    posted, the sheet asks whom to ask. Taps counted: Ask, Add a photo, Capture, a
    keyword, the consent, Send photo, the role, Send request."""
    alice = ward.people["nurse_alice"].page
    assert ward.department_id is not None
    surgeon = on_duty(alice, ward.department_id)
    doctor = ward.people[surgeon["username"]].page
    thread = open_thread(alice, "Wound photo")
    tap = Taps()
    tap(alice.get_by_role("button", name="Ask for advice"))
    sheet = alice.locator("#ask-sheet")
    alice.keyboard.type("Wound edges are opening, suture again tonight?")
    tap(sheet.get_by_role("button", name="Add a photo"))
    photo = alice.get_by_role("dialog", name="Add photos")
    alice.wait_for_function("() => document.querySelector('video.camera')?.videoWidth > 0")
    expect(photo.locator("#photo-caption")).to_have_value(
        "Wound edges are opening, suture again tonight?"
    )
    tap(photo.get_by_role("button", name="Capture"))
    expect(photo.locator(".preview")).to_have_count(1)
    tap(photo.locator("input[name=keyword]").first)
    tap(photo.get_by_label("Care only"))
    tap(photo.get_by_role("button", name="Send photo"))
    expect(photo).to_have_count(0, timeout=30_000)
    expect(sheet.locator("#ask-photo-note")).to_be_visible()
    expect(sheet.get_by_label("Question (encrypted)")).not_to_be_editable()
    tap(sheet.locator("#ask-to-roles label.chip").filter(has_text=ROLE))
    tap(sheet.get_by_role("button", name="Send request"))
    expect(alice).to_have_url(re.compile(r"#/r/\d+$"), timeout=30_000)
    request = int(alice.url.split("/")[-1])
    print(f"\nask for advice with a photo: {tap.count} taps plus typing")
    expect(alice.locator("#advice-question")).to_contain_text("Wound edges", timeout=30_000)
    expect(alice.locator("#advice-photos .photo.ready")).to_have_count(1, timeout=30_000)
    # One message: the photo with its caption, and the request's badge on it.
    alice.goto(f"/#/t/{thread}")
    message = alice.locator("li.msg").filter(has_text="Wound edges")
    expect(message.locator(".photo.ready")).to_have_count(1, timeout=30_000)
    expect(message.locator(f"a.advice-badge[data-advice='{request}']")).to_be_visible()
    doctor.goto(f"/#/r/{request}")
    # The one it is put to sees the photo on the request itself, decrypted in their browser.
    expect(doctor.locator("#advice-photos .photo.ready")).to_have_count(1, timeout=30_000)
    shot(doctor, "advice-request-with-photo")
    doctor.get_by_role("button", name="Call me").click()
    expect(doctor.locator("#advice-status")).to_have_text("Answered")


def test_a_mention_with_a_priority_is_a_request(ward: Ward) -> None:
    alice = ward.people["nurse_alice"].page
    open_thread(alice, "Mentions")
    composer = alice.get_by_role("textbox", name="Message")
    composer.click()
    alice.keyboard.type("Temperature 38.9, @On-c")
    suggestion = alice.locator("#mention-list button").filter(has_text=ROLE)
    expect(suggestion).to_be_visible()
    shot(alice, "77-mention-suggestions-phone")
    suggestion.click()
    expect(composer).to_have_value(f"Temperature 38.9, @{ROLE} ")
    alice.keyboard.type("please review")
    flag = alice.locator("#mention-priority")
    expect(flag).to_be_visible()
    flag.click()
    expect(flag).to_have_attribute("data-priority", "urgent")
    alice.get_by_role("button", name="Send", exact=True).click()
    badge = alice.locator("li.msg a.advice-badge")
    expect(badge).to_have_text("Request: Urgent")
    badge.click()
    expect(alice.locator("#advice-question")).to_contain_text(f"@{ROLE} please review")
    # A mention without "!" stays text.
    alice.go_back()
    composer.click()
    alice.keyboard.type("FYI @Dr")
    expect(alice.locator("#mention-list button").first).to_contain_text("@Dr Bob Martin")
    alice.keyboard.press("Enter")  # picks the first suggestion
    alice.keyboard.type("noted")
    alice.keyboard.press("Enter")  # sends
    expect(alice.locator("li.msg").last).to_contain_text("FYI @Dr")
    expect(alice.locator("li.msg a.advice-badge")).to_have_count(1)


def test_an_emergency_unanswered_escalates_live(ward: Ward) -> None:
    alice = ward.people["nurse_alice"].page
    assert ward.department_id is not None
    surgeon = on_duty(alice, ward.department_id)
    open_thread(alice, "Bleeding")
    request = ask(alice, "Bleeding from the donor site, pressure not enough", ROLE, "Emergency")
    expect(alice.locator("#advice-timeline li").first).to_contain_text(
        f"Sent to {surgeon['display_name']} (on duty)"
    )
    # Nobody answers: the server's scheduler gives it to the next on the roster, and
    # the requester's screen shows it without a reload.
    escalated = alice.locator("#advice-timeline li[data-kind=escalated]").first
    expect(escalated).to_contain_text("No answer: escalated to", timeout=60_000)
    expect(escalated).to_contain_text("(next on the roster)")
    shot(alice, "78-request-escalated-phone")
    name = escalated.inner_text().split("escalated to ")[1].split(" (")[0]
    username = next(user for user, display in NAMES.items() if display == name)
    assert username != surgeon["username"]
    page = ward.people[username].page
    page.goto("/#/")
    expect(page.locator(f"#advice-requests a[data-advice='{request}']")).to_contain_text(
        "Emergency"
    )
    alice.get_by_role("button", name="Withdraw").click()
    expect(alice.locator("#advice-status")).to_have_text("Withdrawn")
