"""Signing in again on a shared ward computer with a PIN (frontend/js/devicecopy.js,
views/signout.js, the unlock form of views/keys.js).

Carol (head of Plastic surgery) works on one computer, Bob (surgeon) on another.
Carol signs out keeping her keys on the computer under a PIN, signs in again with
her password and the PIN only, and writes a note Bob reads. Five wrong PINs erase
the copy and the recovery code is asked, saying why. "Not my computer" leaves
nothing of hers in IndexedDB or localStorage. Neither the PIN nor anything derived
from it reaches the server or the console.
"""

import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    LEFTOVERS,
    close_ward,
    free_flap_ward,
    shot,
    sign_in_counting,
    sign_out,
    sign_out_leaving_nothing,
    signed_in_user,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(400)]

PIN = "583920"
WRONG = ["111222", "583921", "000001", "928374", "564738"]
NOTE = "Flap reviewed after the ward round, Doppler signal strong"
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}

# What is left of a user in this origin's storage, by database and store.


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = free_flap_ward(browser, cluster, "Free flap, shared computer")
    yield ward
    close_ward(ward)


def kept_copy(page: Page, user: int) -> None:
    """Wait until the copy is sealed (Argon2id runs after the screen was cleared): the
    test reloads the page to sign in again, which would stop the sealing."""
    deadline = time.monotonic() + 30
    while not page.evaluate(
        """async (user) => { const d = await import('/app/js/devicecopy.js');
          return (await d.keptFingerprint(user)) !== null; }""",
        user,
    ):
        assert time.monotonic() < deadline, "the copy was not sealed"
        page.wait_for_timeout(200)


def test_signing_in_again_asks_only_for_the_pin(browser, ward):
    carol, bob = ward.people["head_carol"].page, ward.people["surgeon_bob"].page
    sent: list[str] = []
    carol.on("request", lambda r: sent.append(f"{r.url} {r.post_data or ''}"))
    carol.on("console", lambda m: sent.append(m.text))
    carol.on("websocket", lambda ws: ws.on("framesent", lambda p: sent.append(str(p))))

    user = signed_in_user(carol)
    # The first sign-out here: she chooses the PIN while still at the screen.
    carol.get_by_role("button", name="Sign out").click()
    dialog = carol.locator("#signout-dialog")
    expect(dialog).to_contain_text("Keep your keys on this computer?")
    dialog.get_by_label("Choose a PIN").fill("123456")
    dialog.get_by_label("The same PIN again").fill("123456")
    dialog.get_by_role("button", name="Keep my keys here").click()
    expect(dialog.get_by_role("alert")).to_contain_text("too easy to guess")
    dialog.get_by_label("Choose a PIN").fill(PIN)
    dialog.get_by_label("The same PIN again").fill(PIN)
    shot(carol, "shared-computer-1-sign-out-choose-pin")
    carol.set_viewport_size(WIDE)
    shot(carol, "shared-computer-1-sign-out-choose-pin-wide")
    carol.set_viewport_size(PHONE)
    dialog.get_by_role("button", name="Keep my keys here").click()
    expect(carol.get_by_role("button", name="Sign in")).to_be_visible()
    expect(carol.locator("main")).not_to_contain_text("Free flap")
    kept_copy(carol, user)
    names = carol.evaluate("async () => (await indexedDB.databases()).map((d) => d.name)")
    assert "rounds-keys" not in names  # the plain keys went with the session

    # Signing in again: the password, then the PIN; no recovery code.
    started = time.monotonic()
    taps = sign_in_counting(carol)
    expect(carol.get_by_role("heading", name="Unlock your keys")).to_be_visible()
    expect(carol.locator("main")).not_to_contain_text("another device")
    expect(carol.get_by_label("PIN", exact=True)).to_be_focused()
    shot(carol, "shared-computer-2-unlock-with-pin")
    carol.set_viewport_size(WIDE)
    shot(carol, "shared-computer-2-unlock-with-pin-wide")
    carol.set_viewport_size(PHONE)
    carol.keyboard.type(PIN)
    carol.get_by_role("button", name="Unlock").click()
    taps += 1
    expect(carol.get_by_role("heading", name="My departments")).to_be_visible(timeout=60_000)
    seconds = time.monotonic() - started
    keystrokes = len("head_carol") + len(DEMO_PASSWORD) + len(PIN)
    print(
        f"\nsign in again on a shared computer: {taps} taps, {keystrokes} keystrokes,"
        f" {seconds:.1f} s (sign-in page to the departments, PIN opened by Argon2id)"
    )

    # The keys work: a note Bob reads.
    bob.goto(f"/#/t/{ward.thread_id}")
    carol.goto(f"/#/t/{ward.thread_id}")
    carol.get_by_role("textbox", name="Message").fill(NOTE)
    carol.get_by_role("textbox", name="Message").press("Enter")
    expect(bob.locator("li.msg .text", has_text=NOTE)).to_be_visible(timeout=30_000)
    leaked = [line for line in sent if PIN in line]
    assert leaked == [], f"the PIN left the page: {leaked[:3]}"


def test_five_wrong_pins_erase_the_copy(ward):
    page = ward.people["head_carol"].page
    user = signed_in_user(page)
    # Kept already: signing out asks for no PIN this time.
    page.get_by_role("button", name="Sign out").click()
    dialog = page.locator("#signout-dialog")
    expect(dialog).to_contain_text("Your keys stay on this computer")
    expect(dialog.locator("#pin-new")).to_have_count(0)
    shot(page, "shared-computer-3-sign-out-kept")
    dialog.get_by_role("button", name="Keep my keys here").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()

    sign_in_counting(page)
    for number, wrong in enumerate(WRONG[:-1], start=1):
        page.get_by_label("PIN", exact=True).fill(wrong)
        page.get_by_role("button", name="Unlock").click()
        left = len(WRONG) - number
        tries = f"{left} {'try' if left == 1 else 'tries'} left"
        expect(page.get_by_role("alert").first).to_contain_text(tries)
        if number == 2:
            # A reload does not give the tries back: the count is in IndexedDB.
            page.reload()
            expect(page.get_by_role("heading", name="Unlock your keys")).to_be_visible()
    shot(page, "shared-computer-4-wrong-pin")
    page.get_by_label("PIN", exact=True).fill(WRONG[-1])
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("heading", name="Restore your keys on this device")).to_be_visible()
    expect(page.locator("#recover-why")).to_contain_text("Too many wrong PINs")
    expect(page.locator("main")).not_to_contain_text("another device")
    shot(page, "shared-computer-5-pin-wiped")
    assert "rounds-device/copies" not in page.evaluate(LEFTOVERS, user)["records"]
    # The right PIN is of no use now.
    page.reload()
    expect(page.get_by_role("heading", name="Restore your keys on this device")).to_be_visible()
    page.get_by_label("Recovery code or passphrase").fill(ward.people["head_carol"].secret)
    page.get_by_role("button", name="Restore my keys").click()
    expect(page.get_by_role("heading", name="My departments")).to_be_visible(timeout=60_000)


def test_not_my_computer_leaves_nothing_of_her(ward):
    page = ward.people["head_carol"].page
    user = signed_in_user(page)
    page.goto(f"/#/t/{ward.thread_id}")
    expect(page.locator("li.msg .text", has_text=NOTE)).to_be_visible(timeout=30_000)
    assert "rounds-trust/seen" in page.evaluate(LEFTOVERS, user)["records"]
    sign_out(page, "Keep my keys here", pin=PIN)  # a copy to erase next
    kept_copy(page, user)
    page.get_by_label("Username").fill("head_carol")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("PIN", exact=True).fill(PIN)
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("heading", name="My departments")).to_be_visible(timeout=60_000)
    # What a photo leaves on the device (photos/habits.js): her usual keywords and the
    # consent kept for a patient's stay.
    page.evaluate(
        "(user) => localStorage.setItem(`rounds.photo-habits.${user}`,"
        " JSON.stringify({recent: ['hand'], favourites: [], consents: {}}))",
        user,
    )

    sign_out_leaving_nothing(page, user)
    # Without the copy, the same sign-in costs the recovery code: measured for comparison.
    started = time.monotonic()
    taps = sign_in_counting(page)
    expect(page.locator("#recover-why")).to_have_text(
        "This computer does not hold your keys. Enter the recovery code (or passphrase)"
        " you wrote down when you set them up."
    )
    expect(page.locator("main")).not_to_contain_text("another device")
    shot(page, "shared-computer-6-not-my-computer")
    secret = ward.people["head_carol"].secret
    expect(page.get_by_label("Recovery code or passphrase")).to_be_focused()
    page.keyboard.type(secret)
    page.get_by_role("button", name="Restore my keys").click()
    taps += 1
    expect(page.get_by_role("heading", name="My departments")).to_be_visible(timeout=60_000)
    seconds = time.monotonic() - started
    keystrokes = len("head_carol") + len(DEMO_PASSWORD) + len(secret)
    print(
        f"\nsign in again with the recovery code instead: {taps} taps, {keystrokes} keystrokes,"
        f" {seconds:.1f} s"
    )
