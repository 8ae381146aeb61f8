"""Signing in again on a shared ward computer with a passkey (frontend/js/passkey.js,
devicecopy.js, views/signout.js and the unlock form of views/keys.js).

Carol (head of Plastic surgery) works on a computer with a platform authenticator:
Chromium's virtual one, driven through the DevTools protocol, answering the WebAuthn
PRF extension. WebAuthn takes no IP address as relying party, so her page is on
http://localhost (a secure context), not 127.0.0.1; Bob reads on 127.0.0.1.

An authenticator without PRF gets the PIN offered with a sentence saying why. With
PRF she signs out keeping her keys under a passkey, signs in again with her password
and one tap on "Unlock with my passkey" (no PIN, no recovery code) and writes a note
Bob reads. A ceremony that fails (the passkey gone from the authenticator) erases
nothing and the recovery code still opens her keys. "Not my computer" leaves nothing
of hers in the origin's storage; the passkey itself stays in the authenticator.
"""

import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    Authenticator,
    close_ward,
    free_flap_ward,
    new_context,
    shot,
    sign_in_counting,
    sign_out_leaving_nothing,
    signed_in_user,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(400)]

NOTE = "Flap checked at the evening round, capillary refill brisk"


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    # Carol on localhost, the relying party id.
    localhost = new_context(browser, cluster, f"http://localhost:{cluster.servers[0].port}")
    ward = free_flap_ward(browser, cluster, "Free flap, passkey computer", localhost)
    yield ward
    close_ward(ward)


@pytest.fixture(scope="module")
def authenticator(ward) -> Authenticator:
    return Authenticator(ward.people["head_carol"].page)


def kept_lock(page: Page, user: int) -> str | None:
    return page.evaluate(
        "async (user) => (await import('/app/js/devicecopy.js')).keptLock(user)", user
    )


def wait_kept(page: Page, user: int) -> None:
    """The copy is sealed after the screen is cleared: wait for it before reloading."""
    deadline = time.monotonic() + 30
    while kept_lock(page, user) is None:
        assert time.monotonic() < deadline, "the copy was not sealed"
        page.wait_for_timeout(100)


def test_without_prf_the_pin_is_offered(ward, authenticator):
    page = ward.people["head_carol"].page
    authenticator.plug(prf=False)
    page.goto("/#/")
    expect(page.get_by_role("heading", name="My departments")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    dialog = page.locator("#signout-dialog")
    dialog.get_by_role("button", name="Use a passkey (fingerprint, face or device PIN)").click()
    expect(dialog.get_by_role("alert")).to_have_text(
        "This computer's passkeys cannot lock your keys: choose a PIN instead."
    )
    expect(dialog.locator("#keep-with-passkey")).to_be_hidden()
    expect(dialog.get_by_label("Choose a PIN")).to_be_focused()
    shot(page, "passkey-1-no-prf")
    dialog.get_by_role("button", name="Cancel").click()
    assert kept_lock(page, signed_in_user(page)) is None
    authenticator.unplug()


def test_signing_in_again_with_the_passkey(ward, authenticator):
    carol, bob = ward.people["head_carol"].page, ward.people["surgeon_bob"].page
    sent: list[str] = []
    carol.on("request", lambda r: sent.append(f"{r.url} {r.post_data or ''}"))
    carol.on("websocket", lambda ws: ws.on("framesent", lambda p: sent.append(str(p))))
    authenticator.plug(prf=True)
    carol.goto("/#/")
    expect(carol.get_by_role("heading", name="My departments")).to_be_visible()
    user = signed_in_user(carol)

    carol.get_by_role("button", name="Sign out").click()
    dialog = carol.locator("#signout-dialog")
    expect(dialog).to_contain_text("Keep your keys on this computer?")
    shot(carol, "passkey-2-sign-out")
    dialog.get_by_role("button", name="Use a passkey (fingerprint, face or device PIN)").click()
    expect(carol.get_by_role("button", name="Sign in")).to_be_visible()
    expect(carol.locator("main")).not_to_contain_text("Free flap")
    wait_kept(carol, user)
    assert kept_lock(carol, user) == "passkey"
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"

    # Signing in again: the password, then the passkey; no PIN, no recovery code.
    started = time.monotonic()
    taps = sign_in_counting(carol)
    expect(carol.get_by_role("heading", name="Unlock your keys")).to_be_visible(timeout=20_000)
    unlock = carol.get_by_role("button", name="Unlock with my passkey")
    expect(unlock).to_be_focused()
    expect(carol.get_by_label("PIN", exact=True)).to_have_count(0)
    shot(carol, "passkey-3-unlock")
    unlock.click()
    taps += 1
    expect(carol.get_by_role("heading", name="My departments")).to_be_visible(timeout=60_000)
    seconds = time.monotonic() - started
    keystrokes = len("head_carol") + len(DEMO_PASSWORD)
    print(
        f"\nsign in again with the passkey: {taps} taps, {keystrokes} keystrokes,"
        f" {seconds:.1f} s (sign-in page to the departments; the authenticator's"
        " user verification is simulated)"
    )
    assert kept_lock(carol, user) == "passkey"  # kept for the next time

    bob.goto(f"/#/t/{ward.thread_id}")
    carol.goto(f"/#/t/{ward.thread_id}")
    carol.get_by_role("textbox", name="Message").fill(NOTE)
    carol.get_by_role("textbox", name="Message").press("Enter")
    # Under load the first post after unlocking waits for the keys and the socket.
    expect(bob.locator("li.msg .text", has_text=NOTE)).to_be_visible(timeout=30_000)
    # No server involvement: neither the credential nor anything of the ceremony is sent.
    ids = {credential["credentialId"], credential["credentialId"].rstrip("=")}
    ids |= {i.replace("+", "-").replace("/", "_") for i in ids}
    assert not [line for line in sent if any(i in line for i in ids)]


def test_a_failed_ceremony_keeps_the_copy_and_the_recovery_code(ward, authenticator):
    page = ward.people["head_carol"].page
    user = signed_in_user(page)
    page.get_by_role("button", name="Sign out").click()
    dialog = page.locator("#signout-dialog")
    expect(dialog).to_contain_text("locked with your passkey")
    expect(dialog.locator("#keep-with-passkey")).to_have_count(0)
    dialog.get_by_role("button", name="Keep my keys here").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()

    authenticator.clear()  # the passkey is gone: the authenticator cannot answer
    sign_in_counting(page)
    page.get_by_role("button", name="Unlock with my passkey").click()
    expect(page.locator("main").get_by_role("alert")).to_have_attribute(
        "data-code", "passkey_failed", timeout=60_000
    )
    expect(page.locator("main").get_by_role("status")).to_contain_text("try again, or use your")
    expect(page.get_by_role("button", name="Use my recovery code instead")).to_be_focused()
    shot(page, "passkey-4-failed")
    assert kept_lock(page, user) == "passkey"  # no try counted, nothing erased
    failures = page.evaluate(
        """(user) => new Promise((ok) => { const r = indexedDB.open('rounds-device');
          r.onsuccess = () => { const db = r.result;
            const g = db.transaction('copies').objectStore('copies').get(user);
            g.onsuccess = () => { ok(g.result.failures); db.close(); }; }; })""",
        user,
    )
    assert failures == 0

    page.get_by_role("button", name="Use my recovery code instead").click()
    page.get_by_label("Recovery code or passphrase").fill(ward.people["head_carol"].secret)
    page.get_by_role("button", name="Restore my keys").click()
    expect(page.get_by_role("heading", name="My departments")).to_be_visible(timeout=60_000)


def test_not_my_computer_leaves_nothing_of_her(ward, authenticator):
    page = ward.people["head_carol"].page
    user = signed_in_user(page)
    assert kept_lock(page, user) == "passkey"  # the copy the failed ceremony left
    sign_out_leaving_nothing(page, user)
    page.get_by_label("Username").fill("head_carol")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Restore your keys on this device")).to_be_visible()
    expect(page.get_by_role("button", name="Unlock with my passkey")).to_have_count(0)
