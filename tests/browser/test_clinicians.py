"""Clinicians of a demo hospital using the browser client, end to end, on real daphne.

One ward for the module: `head_carol` (head of Plastic surgery), `surgeon_bob`
and `nurse_alice` (members) in three browser contexts at 360x740; their
first sign-in creates keys and a backup; the institution's admin key appoints
Carol (as IT does with `manage.py appoint_head`) and Carol signs the others'
admissions in her browser. The tests then run in order on that ward. Every
WebSocket frame any page sends or receives is recorded, and the last test
checks that none holds a word of what was typed.
"""

import re
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from client.sdk import RoundsClient
from tests.browser.support import (
    Ward,
    create_keys,
    device_dir,
    python_client,
    run_async,
    shot,
    sign_admission,
    sign_in,
    sign_out,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

FIRST = "Sacral wound 3 cm, edges pink, no discharge. Dressing changed 09:40."
AWAY = ["Drain output 20 ml serous", "Patient asks for analgesia at 14:00"]
QUEUED = "Temperature 37.9 at 15:10, will recheck"
FROM_PYTHON = "Agree with plan, review at 17:00 ward round"


def message(page: Page, text: str):
    return page.locator("li.msg .text", has_text=text)


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = Ward(cluster)
    carol = ward.open(browser, "head_carol")
    create_keys(carol)
    admin_key = cluster.root / "var" / "demo-keys" / "admin.key"
    cluster.manage("appoint_head", "plastic-surgery", "head_carol", "--key-file", str(admin_key))
    for username in ("surgeon_bob", "nurse_alice"):
        create_keys(ward.open(browser, username))
    shot(ward.people["nurse_alice"].page, "03-departments")
    ward.department_id = int(
        carol.page.locator("a[href^='#/d/']").first.get_attribute("href").split("/")[-1]
    )
    for username in ("surgeon_bob", "nurse_alice"):
        sign_admission(carol, ward.department_id, username)
    shot(carol.page, "08-members")
    yield ward
    for person in ward.people.values():
        person.context.close()


def test_sign_in_screen_and_its_refusals(browser, ward):
    page = ward.open(browser, "nurse_frank").page
    page.goto("/")
    shot(page, "01-sign-in")
    for _ in range(5):  # ROUNDS_LOCKOUT_FAILURES: the fifth failure is answered "locked"
        with page.expect_response("**/api/auth/login"):
            sign_in(page, "nurse_frank", "not-the-password")
        if _ == 0:
            expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#login-error")).to_contain_text("locked on this device for 15 minutes")


def test_a_message_is_seen_live_and_the_sender_sees_the_receipt(ward):
    bob, alice = ward.people["surgeon_bob"].page, ward.people["nurse_alice"].page
    alice.goto(f"/#/d/{ward.department_id}")
    started = time.monotonic()
    bob.get_by_role("link", name="Find a patient").click()
    bob.get_by_label("Family name (start of)").fill("Le")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    shot(bob, "04-patient")
    bob.get_by_label("Subject").fill("Sacral pressure ulcer")
    bob.get_by_role("button", name="Open conversation").click()
    expect(bob.locator("#retention-banner")).to_contain_text("may be reviewed for compliance")
    # The rule the server computed for this patient (admitted: kept while the stay lasts).
    expect(bob.locator("#retention-banner")).to_contain_text("stay lasts")
    ward.thread_id = int(bob.url.split("/")[-1])
    # The new thread appears on Alice's list live; she opens it.
    alice.get_by_role("link", name="Sacral pressure ulcer").click()
    bob.get_by_role("textbox", name="Message").fill(FIRST)
    ward.typed.append(FIRST)
    expect(alice.locator(".typing")).to_contain_text("Dr Bob Martin is typing")
    bob.get_by_role("textbox", name="Message").press("Enter")
    expect(message(alice, FIRST)).to_be_visible()
    expect(bob.locator("#seen-by")).to_have_text("Seen by Alice Durand, RN")
    ward.seconds_to_seen = time.monotonic() - started
    print(f"\nfind patient → message seen by a colleague: {ward.seconds_to_seen:.1f} s")
    bob.locator("#seen-by").click()
    expect(bob.get_by_role("dialog")).to_contain_text("Alice Durand, RN")
    shot(bob, "06-seen-by")
    bob.get_by_role("dialog").get_by_role("button", name="Close").click()
    shot(alice, "05-conversation")
    assert message(alice, FIRST).count() == 1


def test_a_department_outsider_cannot_reach_the_thread(browser, ward):
    ines = ward.open(browser, "nurse_ines")
    create_keys(ines)
    expect(ines.page.locator("a[href^='#/d/']")).to_have_count(1)
    expect(ines.page.locator("a[href^='#/d/']")).to_contain_text("Vascular surgery")
    ines.page.goto(f"/#/t/{ward.thread_id}")
    expect(ines.page.get_by_role("alert").first).to_contain_text("not in your departments")
    api = ines.context.request.get(f"/api/threads/{ward.thread_id}/messages")
    assert api.status == 404
    assert FIRST not in api.text()


def test_a_network_drop_loses_nothing_and_doubles_nothing(ward):
    bob_person, alice_person = ward.people["surgeon_bob"], ward.people["nurse_alice"]
    bob, alice = bob_person.page, alice_person.page
    alice_person.context.set_offline(True)
    expect(alice.locator("#conn")).to_contain_text("Offline")
    for text in AWAY:
        bob.get_by_role("textbox", name="Message").fill(text)
        bob.get_by_role("textbox", name="Message").press("Enter")
        ward.typed.append(text)
        sent = bob.locator("li.msg.mine", has_text=text).locator("time")
        expect(sent).not_to_have_text("Sending…")
    # Alice writes while offline: it waits and goes once, under one client_msg_id.
    alice.get_by_role("textbox", name="Message").fill(QUEUED)
    alice.get_by_role("textbox", name="Message").press("Enter")
    ward.typed.append(QUEUED)
    expect(alice.locator("li.msg.mine", has_text=QUEUED)).to_contain_text("Sending…")
    shot(alice, "07-offline")
    alice_person.context.set_offline(False)
    for text in [*AWAY, QUEUED]:
        expect(message(alice, text)).to_have_count(1)
        expect(message(bob, text)).to_have_count(1)
    expect(alice.locator("#conn")).to_have_text("")
    # Every message once, in order, on both screens, and after a reload too.
    expected = [FIRST, *AWAY, QUEUED]
    assert alice.locator("li.msg .text").all_inner_texts() == expected
    assert bob.locator("li.msg .text").all_inner_texts() == expected
    alice.reload()
    expect(alice.locator("li.msg .text")).to_have_text(expected)


def test_unread_counts_come_with_the_listing_and_clear_on_reading(ward):
    """Carol has read nothing of the four messages: the listings say so, without one
    receipts request per thread, and opening the thread clears the badges."""
    carol = ward.people["head_carol"].page
    receipts: list[str] = []
    carol.on("request", lambda request: "/receipts" in request.url and receipts.append(request.url))
    carol.goto("/#/")
    carol.reload()
    department = carol.locator(f"a[href='#/d/{ward.department_id}']")
    expect(department).to_have_accessible_name(re.compile(r"^Plastic surgery\b.* 4 unread$"))
    department.click()
    thread = carol.locator(f"a[href='#/t/{ward.thread_id}']")
    expect(thread.locator(".badge")).to_have_text("4")
    assert receipts == [], "the counts came with the thread listing"
    thread.click()
    expect(message(carol, QUEUED)).to_be_visible()
    carol.go_back()
    expect(thread).to_be_visible()
    expect(thread.locator(".badge")).to_have_count(0)
    carol.goto("/#/")
    expect(department).not_to_have_accessible_name(re.compile("unread"))
    expect(department).to_have_accessible_name(re.compile(r"^Plastic surgery\b"))
    assert all(url.endswith(f"/api/threads/{ward.thread_id}/receipts") for url in receipts)


def test_python_client_and_browser_read_each_other(ward):
    carol, bob = ward.people["head_carol"], ward.people["surgeon_bob"]
    erins_device = device_dir()  # what her device remembers, across her two sessions

    def sdk() -> RoundsClient:
        return python_client(ward.cluster, erins_device)

    async def erin_sets_up_keys():
        async with sdk() as erin:
            await erin.login("intern_erin", DEMO_PASSWORD)
            await erin.setup_keys(opslimit=1, memlimit=8192)
            return erin.keys.identity

    async def erin_reads_and_answers(identity) -> list[str]:
        async with sdk() as erin:
            await erin.login("intern_erin", DEMO_PASSWORD)
            erin.keys.identity, erin.keys.backup_stored = identity, True
            assert await erin.setup_keys() is None
            await erin.connect()
            page = await erin.history(ward.thread_id)
            texts = [
                (await erin.open_message(m, department=ward.department_id)).decode()
                for m in page["messages"]
            ]
            await erin.send_text(ward.thread_id, FROM_PYTHON, department=ward.department_id)
            return texts

    identity = run_async(erin_sets_up_keys())
    # Carol signs Erin's admission in her browser, which also shares the history's keys.
    sign_admission(carol, ward.department_id, "intern_erin")
    texts = run_async(erin_reads_and_answers(identity))
    ward.typed.append(FROM_PYTHON)
    assert texts == [FIRST, *AWAY, QUEUED]
    expect(message(bob.page, FROM_PYTHON)).to_have_count(1)
    expect(bob.page.locator("li.msg", has_text=FROM_PYTHON)).to_contain_text("Dr Erin Petit")


def test_a_head_closes_and_reopens_the_thread(ward):
    carol, bob = ward.people["head_carol"].page, ward.people["surgeon_bob"].page
    carol.goto(f"/#/t/{ward.thread_id}")
    carol.get_by_role("button", name="Close conversation").click()
    dialog = carol.get_by_role("dialog", name="Close this conversation?")
    expect(dialog).to_contain_text("can no longer post")
    dialog.get_by_label("Reason (kept in the audit trail)").fill("Wound healed, follow-up ended")
    dialog.locator("#confirm-close").click()
    expect(bob.get_by_role("textbox", name="Message")).to_be_disabled()
    shot(bob, "09-closed")
    carol.get_by_role("button", name="Reopen conversation").click()
    expect(bob.get_by_role("textbox", name="Message")).to_be_enabled()


def test_sign_out_wipes_keys_and_the_passphrase_recovers_them(browser, ward):
    alice = ward.people["nurse_alice"]
    sign_out(alice.page)
    databases = alice.page.evaluate("async () => (await indexedDB.databases()).map((d) => d.name)")
    assert "rounds-keys" not in databases
    again = ward.open(browser, "nurse_alice")
    sign_in(again.page, "nurse_alice")
    again.page.get_by_label("Recovery code or passphrase").fill("wrong-" + uuid.uuid4().hex[:20])
    again.page.get_by_role("button", name="Restore my keys").click()
    expect(again.page.get_by_role("alert").first).to_contain_text("does not open your keys")
    shot(again.page, "10-recover")
    again.page.get_by_label("Recovery code or passphrase").fill(alice.secret.lower())
    again.page.get_by_role("button", name="Restore my keys").click()
    expect(again.page.get_by_role("heading", name="My departments")).to_be_visible(timeout=30_000)
    again.page.goto(f"/#/t/{ward.thread_id}")
    expect(again.page.locator("li.msg .text")).to_have_text(ward.typed)


def test_admit_and_sign_compares_the_code_first(ward):
    """Carol finds Ines by name: before anything is admitted or signed, the card shows the
    comparison code Ines reads on her profile; once it matches, Ines is admitted, signed,
    given the history's keys, and reads the thread."""
    carol, ines = ward.people["head_carol"].page, ward.people["nurse_ines"].page
    ines.goto("/#/")
    ines.locator("#my-profile").click()
    shown_to_ines = ines.locator("#my-code").inner_text()
    statements: list[str] = []
    carol.on(
        "request",
        lambda r: r.method == "POST" and "/statements" in r.url and statements.append(r.url),
    )
    carol.goto("/#/")
    carol.goto(f"/#/d/{ward.department_id}/members")
    carol.get_by_label("Colleague's name").fill("ines")
    carol.locator("#people-results li", has_text="Ines Faure").get_by_role("checkbox").check()
    carol.get_by_role("button", name="Admit and sign").click()
    dialog = carol.get_by_role("dialog", name="Confirm admissions")
    expect(dialog.locator(".comparison")).to_have_text(shown_to_ines)
    assert statements == [], "nothing is signed before the comparison"
    dialog.get_by_role("button", name="It matches: admit and sign").click()
    expect(carol.locator("[data-member=nurse_ines]")).to_contain_text("Admission signed")
    assert len(statements) == 1
    ines.goto(f"/#/t/{ward.thread_id}")
    ines.reload()  # a new socket, whose hello names her new department
    expect(ines.locator("li.msg .text").first).to_have_text(FIRST)
    expect(ines.locator("li.msg.undecryptable")).to_have_count(0)


def test_no_frame_on_the_socket_holds_plaintext(ward):
    assert ward.frames, "frames were recorded"
    assert any('"message.post"' in frame for frame in ward.frames)
    for text in ward.typed:
        for frame in ward.frames:
            assert text not in frame
            assert text.split()[0] + " " + text.split()[1] not in frame
