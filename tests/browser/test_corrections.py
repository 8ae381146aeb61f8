"""Correcting a message in the browser, end to end, on real daphne.

A ward of its own (support.py's helpers): `head_carol` heads Plastic surgery,
`surgeon_bob` and `nurse_alice` are admitted, each in a browser context.
Bob posts, then edits his message: Alice sees the new text marked edited,
live and after a reload (history), and no Edit action on his message. A
correction the server moves onto another message is shown as the original,
flagged "could not be verified".
"""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    close_ward,
    plastic_surgery_ward,
    shot,
)
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

FIRST = "Flap warm, capillary refill 3 s"
FIXED = "Flap warm, capillary refill 2 s"
OTHER = "Drain removed at 10:00"


def message(page: Page, text: str):
    return page.locator("li.msg", has=page.locator(".text", has_text=text))


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob", "nurse_alice"))
    yield ward
    close_ward(ward)


def post(page: Page, text: str) -> None:
    page.get_by_role("textbox", name="Message").fill(text)
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator("li.msg.mine[data-message-id]", has_text=text)).to_have_count(1)


def test_an_edit_reaches_the_colleague_marked_edited(ward):
    bob, alice = ward.people["surgeon_bob"].page, ward.people["nurse_alice"].page
    alice.goto(f"/#/d/{ward.department_id}")
    bob.get_by_role("link", name="Find a patient").click()
    bob.get_by_label("Family name (start of)").fill("Le")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    bob.get_by_label("Subject").fill("Flap check")
    bob.get_by_role("button", name="Open conversation").click()
    expect(bob.locator("#retention-banner")).to_be_visible()
    ward.thread_id = int(bob.url.split("/")[-1])
    alice.get_by_role("link", name="Flap check").click()
    post(bob, FIRST)
    post(bob, OTHER)
    expect(message(alice, FIRST)).to_be_visible()
    # A colleague's message offers no Edit; one's own does.
    expect(message(alice, FIRST).locator("[data-edit]")).to_have_count(0)

    message(bob, FIRST).locator("[data-edit]").click()
    expect(bob.locator("#edit-text")).to_have_value(FIRST)
    bob.locator("#edit-text").fill(FIXED)
    shot(bob, "corrections-01-edit")
    bob.locator("#confirm-edit").click()

    for page in (bob, alice):
        fixed = message(page, FIXED)
        expect(fixed).to_be_visible()
        expect(fixed.locator(".edited")).to_have_text("edited")
        expect(fixed).to_have_attribute("data-edited", "2")
        expect(message(page, FIRST)).to_have_count(0)
        expect(page.locator(".correction-unverified")).to_have_count(0)
    shot(alice, "corrections-02-edited")

    # After a reload the history page carries the latest version.
    alice.reload()
    expect(message(alice, FIXED).locator(".edited")).to_have_text("edited")
    expect(message(alice, OTHER)).to_be_visible()
    expect(message(alice, OTHER).locator(".edited")).to_have_count(0)


def test_a_correction_moved_onto_another_message_is_flagged(ward):
    """The server, lying, attaches Bob's correction of his first note to his second:
    Alice's browser shows the second note as it was, flagged."""
    alice = ward.people["nurse_alice"].page
    expect(message(alice, OTHER)).to_be_visible()
    flagged = alice.evaluate(
        """async ([thread, otherText]) => {
          const app = window.rounds;
          const entries = [...app.session.threadMessages(thread).values()];
          const other = entries.find((entry) => entry.text === otherText);
          const department = app.session.threads.get(thread).department;
          const page = await app.live.request({type: "history.fetch", thread, limit: 50});
          // The first note's correction, as the server keeps it (the one corrected message).
          const corrected_ = page.messages.find((m) => m.correction && m.id !== other.id);
          const correction = corrected_.correction;
          const { corrected } = await import("/app/js/corrections.js");
          await corrected(app, department, other, correction);
          const { text, correctionError, edited } = other;
          return { text, error: correctionError ?? null, edited: edited ?? null };
        }""",
        [ward.thread_id, OTHER],
    )
    assert flagged == {"text": OTHER, "error": "correction_mismatch", "edited": None}
    row = message(alice, OTHER)
    expect(row.locator(".correction-unverified")).to_contain_text("could not be verified")
    expect(row).not_to_have_attribute("data-edited", "2")
    expect(row.locator(".edited")).to_have_count(0)
