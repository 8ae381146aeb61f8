"""People, not numbers: a head admits colleagues found by name, on real daphne.

The demo hospital before any user key (conftest's cluster). Carol creates her
keys and the institution's admin key appoints her head of Plastic surgery;
Ines and Karim (Vascular surgery) create theirs and read their comparison
code on their profile. Carol, on a phone (360x740), finds them by name,
accents and case ignored, chooses both, and one card lists them with their
departments and codes; once she confirms, both are admitted and signed in
sequence. Her second tab, on a ward PC (1280x800), left open on the same
members page, shows both live, without a reload. Closing a conversation and
removing a member each ask first, say what happens and take a reason, which
the audit trail keeps. Screenshots go to var/screenshots/people-*.
"""

import json

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import close_ward, plastic_surgery_ward, shot
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

DESKTOP = {"width": 1280, "height": 800}
INES, KARIM = "Ines Faure, RN", "Karim Benali, RN"
CLOSE_REASON = "Wound healed, follow-up ended"
REMOVE_REASON = "Back to Vascular surgery full time"


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = plastic_surgery_ward(browser, cluster, ("nurse_ines", "nurse_karim"), sign=False)
    yield ward
    close_ward(ward)


def audit_data(cluster: LiveCluster, action: str) -> list[dict]:
    code = (
        "import json; from audit.models import AuditEvent; "
        f"print(json.dumps([e.data for e in AuditEvent.objects.filter(action={action!r})]))"
    )
    return json.loads(cluster.manage("shell", "-c", code).strip().splitlines()[-1])


def my_code(page: Page) -> str:
    page.goto("/#/")
    page.locator("#my-profile").click()
    expect(page.locator("#my-code")).to_be_visible()
    return page.locator("#my-code").inner_text()


def test_a_colleague_reads_their_code_on_their_profile(ward):
    ines = ward.people["nurse_ines"].page
    code = my_code(ines)
    assert len(code.split()) == 6
    ines.locator("summary", has_text="My whole key fingerprint").click()
    assert ines.locator("#my-fingerprint").inner_text().startswith(code)
    expect(ines.get_by_role("list", name="My departments and roles")).to_contain_text(
        "Vascular surgery"
    )
    shot(ines, "people-01-profile")


def test_a_head_admits_two_colleagues_found_by_name_and_another_tab_sees_it(ward):
    person = ward.people["head_carol"]
    carol = person.page
    codes = {
        name: my_code(ward.people[user].page)
        for name, user in ((INES, "nurse_ines"), (KARIM, "nurse_karim"))
    }
    members = f"/#/d/{ward.department_id}/members"
    # The ward PC: the same head's second tab, open on the members page all along.
    desk = person.context.new_page()
    desk.set_viewport_size(DESKTOP)
    desk.goto(members)
    expect(desk.locator("[data-member=head_carol]")).to_be_visible()
    desk.evaluate("() => { window.keptOpen = true; }")
    expect(desk.locator("[data-member=nurse_ines]")).to_have_count(0)

    statements: list[str] = []
    carol.on(
        "request",
        lambda r: r.method == "POST" and "/statements" in r.url and statements.append(r.url),
    )
    carol.goto("/#/")
    carol.goto(members)
    taps = typed = 0
    carol.get_by_label("Colleague's name").fill("FAURE")  # case ignored
    typed += 1
    found = carol.locator("#people-results li", has_text=INES)
    expect(found).to_contain_text("Vascular surgery")
    found.get_by_role("checkbox").check()
    taps += 1
    carol.get_by_label("Colleague's name").fill("bénali")  # accents ignored
    typed += 1
    found = carol.locator("#people-results li", has_text=KARIM)
    expect(found).to_contain_text("Vascular surgery")
    found.get_by_role("checkbox").check()
    taps += 1
    expect(carol.locator("#people-chosen")).to_have_text(f"Chosen: {INES}, {KARIM}")
    shot(carol, "people-02-search-phone")
    carol.get_by_role("button", name="Admit and sign 2 colleagues").click()
    taps += 1
    card = carol.get_by_role("dialog", name="Confirm admissions")
    for name, code in codes.items():
        row = card.locator("li", has_text=name)
        expect(row).to_contain_text("Vascular surgery")
        expect(row.locator(".comparison")).to_have_text(code)
    assert statements == [], "nothing is signed before the card is confirmed"
    shot(carol, "people-03-card-phone")
    card.get_by_role("button", name="They match: admit and sign all 2").click()
    taps += 1
    expect(carol.locator("#admit-progress")).to_have_text("Done: 2 of 2.")
    for username in ("nurse_ines", "nurse_karim"):
        expect(carol.locator(f"[data-member={username}]")).to_contain_text("Admission signed")
        # Live in the other tab, which was not reloaded.
        expect(desk.locator(f"[data-member={username}]")).to_contain_text("Admission signed")
    assert len(statements) == 2, "one statement each, the second after the first"
    assert desk.evaluate("() => window.keptOpen") is True
    shot(carol, "people-04-admitted-phone")
    shot(desk, "people-05-live-desktop")
    print(f"\nadmit two colleagues by name: {taps} taps and {typed} names typed")
    assert (taps, typed) == (4, 2)
    ward.desk = desk


def test_removing_a_member_says_what_they_lose_and_keeps_the_reason(ward):
    desk = ward.desk
    desk.locator("[data-remove=nurse_karim]").click()
    dialog = desk.get_by_role("dialog", name=f"Remove {KARIM} from Plastic surgery?")
    expect(dialog).to_contain_text("loses access to this department's conversations and photos")
    expect(dialog).to_contain_text("room key is replaced")
    expect(dialog).to_contain_text("is not recalled")
    dialog.get_by_label("Reason (kept in the audit trail)").fill(REMOVE_REASON)
    shot(desk, "people-06-remove-desktop")
    dialog.locator("#confirm-remove").click()
    expect(desk.locator("[data-member=nurse_karim]")).to_have_count(0)
    expect(ward.people["head_carol"].page.locator("[data-member=nurse_karim]")).to_have_count(0)
    removed = audit_data(ward.cluster, "member.removed")
    assert {"role": "member", "reason": REMOVE_REASON} in removed


def test_closing_a_conversation_asks_and_keeps_the_reason(ward):
    carol = ward.people["head_carol"].page
    carol.goto("/#/")
    carol.get_by_role("link", name="Find a patient").click()
    carol.get_by_label("Family name (start of)").fill("Le")
    carol.get_by_role("button", name="Search").click()
    carol.locator("a[href^='#/p/']").first.click()
    carol.get_by_label("Subject").fill("Donor site follow-up")
    carol.get_by_role("button", name="Open conversation").click()
    expect(carol.get_by_role("button", name="Close conversation")).to_be_visible()
    thread = carol.url.split("/")[-1]
    for page, size in ((carol, "phone"), (ward.desk, "desktop")):
        page.goto(f"/#/t/{thread}")
        page.get_by_role("button", name="Close conversation").click()
        dialog = page.get_by_role("dialog", name="Close this conversation?")
        expect(dialog).to_contain_text("Members can no longer post in it")
        expect(dialog).to_contain_text("A head of the department can reopen it")
        dialog.get_by_label("Reason (kept in the audit trail)").fill(CLOSE_REASON)
        shot(page, f"people-07-close-{size}")
        if size == "phone":
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)
            expect(page.get_by_role("button", name="Close conversation")).to_be_visible()
            continue
        dialog.locator("#confirm-close").click()
        expect(page.get_by_role("button", name="Reopen conversation")).to_be_visible()
        expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    assert audit_data(ward.cluster, "thread.closed") == [{"reason": CLOSE_REASON}]
