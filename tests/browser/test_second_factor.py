"""Signing in with a second factor in the browser (frontend/js/views/secondfactor.js,
factors.js, webauthn.js; docs/browser.md, "Signing in with a second factor").

The servers require a second factor of privileged accounts (`ROUNDS_SECOND_FACTOR=
privileged`). Carol, head of Plastic surgery, is asked at her first sign-in to set one up:
she sets up an authenticator app (the test computes its codes with pyotp from the key
the page shows), keeps her backup codes, and signs in the next time with the app's
code; a backup code finishes a sign-in when the app is not at hand. Alice, whose role
requires nothing, adds a passkey from her profile on Chromium's virtual authenticator,
signs in with it alone (no password typed), and removes it with her password.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import (
    Authenticator,
    Clinician,
    Ward,
    close_ward,
    create_keys,
    demo_cluster,
    new_context,
    shot,
    sign_in,
    sign_out,
)
from tests.live.servers import DEMO_PASSWORD, LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(400)]

WRONG = "That code or passkey is not right."


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    with demo_cluster(settings={"ROUNDS_SECOND_FACTOR": "privileged"}) as running:
        yield running


@pytest.fixture(scope="module")
def ward(cluster: LiveCluster) -> Iterator[Ward]:
    ward = Ward(cluster)
    yield ward
    close_ward(ward)


def next_code(secret: str) -> str:
    """The app's code one time step ahead: the server takes each step's code once."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(datetime.now(UTC)) + 1)


def not_a_code(secret: str) -> str:
    """Six digits no step near now gives."""
    totp = pyotp.TOTP(secret)
    now = totp.timecode(datetime.now(UTC))
    near = {totp.generate_otp(step) for step in range(now - 2, now + 3)}
    return next(code for code in (f"{n:06d}" for n in range(1000)) if code not in near)


def restore_keys(page: Page, secret: str) -> None:
    page.get_by_label("Recovery code or passphrase").fill(secret)
    page.get_by_role("button", name="Restore my keys").click()
    expect(page.get_by_role("heading", name="My departments")).to_be_visible(timeout=30_000)


def create_keys_here(person: Clinician) -> None:
    """support.create_keys, once signed in: the recovery code kept, on to the app."""
    person.page.get_by_role("button", name="Create my keys").click()
    secret = person.page.locator("#recovery-secret")
    expect(secret).to_be_visible(timeout=30_000)
    person.secret = secret.inner_text()
    person.page.get_by_label("I have written down my recovery code").check()
    person.page.get_by_role("button", name="Continue").click()
    expect(person.page.get_by_role("heading", name="My departments")).to_be_visible()


# Carol's authenticator app and backup codes, kept from the first test for the last.
CAROL: dict = {}


def test_a_head_sets_up_an_app_then_signs_in_with_its_code(browser, ward) -> None:
    carol = ward.open(browser, "head_carol")
    page = carol.page

    # A head: the password opens the set-up of a second factor, nothing more.
    sign_in(page, "head_carol")
    expect(page.get_by_role("heading", name="Set up a second factor")).to_be_visible()
    expect(page.get_by_role("button", name="Set up an authenticator app")).to_be_focused()
    assert page.evaluate("async () => (await fetch('/api/auth/me')).status") == 401
    shot(page, "second-factor-1-setup")
    page.get_by_role("button", name="Set up an authenticator app").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    code_field = page.get_by_label("The code your app shows")
    expect(code_field).to_be_focused()
    assert code_field.get_attribute("autocomplete") == "one-time-code"
    assert code_field.get_attribute("inputmode") == "numeric"
    secret = page.locator("#totp-secret").inner_text()
    shot(page, "second-factor-2-app")
    code_field.fill(not_a_code(secret))
    page.get_by_role("button", name="Confirm the app").click()
    expect(page.locator("#totp-setup-error")).to_have_text(WRONG)
    code_field.fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm the app").click()

    # The backup codes, shown once, until she says she kept them.
    codes = page.locator("#backup-codes li")
    expect(codes.first).to_be_visible()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_focused()
    expect(page.locator("#backup-codes-card")).to_contain_text("Each works once")
    CAROL.update(secret=secret, codes=codes.all_inner_texts())
    assert len(CAROL["codes"]) >= 5
    shot(page, "second-factor-3-backup-codes")
    page.get_by_role("button", name="I have kept them").click()
    create_keys_here(carol)
    sign_out(page)

    # The next time: the password, then the app's code; a wrong one is refused first.
    sign_in(page, "head_carol")
    code_field = page.get_by_label("The code your authenticator app shows")
    expect(code_field).to_be_focused()
    expect(page.get_by_role("button", name="Use a backup code")).to_be_visible()
    code_field.fill(not_a_code(secret))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert").filter(has_text=WRONG)).to_be_visible()
    expect(code_field).to_be_focused()
    shot(page, "second-factor-4-wrong-code")
    code_field.fill(next_code(secret))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Restore my keys")).to_be_visible(timeout=30_000)
    assert page.evaluate("async () => (await fetch('/api/auth/me')).status") == 200


def test_a_backup_code_when_the_app_is_not_at_hand(browser, ward) -> None:
    assert CAROL, "the first test sets up Carol's app"
    carol = ward.open(browser, "head_carol")
    page = carol.page
    sign_in(page, "head_carol")
    page.get_by_role("button", name="Use a backup code").click()
    code_field = page.get_by_label("A backup code")
    expect(code_field).to_be_focused()
    code_field.fill(CAROL["codes"][0])
    shot(page, "second-factor-5-backup-code")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Restore my keys")).to_be_visible(timeout=30_000)

    # Used once: the same code does not finish another sign-in.
    other = ward.open(browser, "head_carol")
    sign_in(other.page, "head_carol")
    other.page.get_by_role("button", name="Use a backup code").click()
    other.page.get_by_label("A backup code").fill(CAROL["codes"][0])
    other.page.get_by_role("button", name="Continue").click()
    expect(other.page.get_by_role("alert").filter(has_text=WRONG)).to_be_visible()


def test_a_passkey_added_signs_in_alone_then_is_removed(browser, cluster, ward) -> None:
    localhost = new_context(browser, cluster, f"http://localhost:{cluster.servers[0].port}")
    alice = ward.open(browser, "nurse_alice", localhost)
    page = alice.page
    authenticator = Authenticator(page)
    authenticator.plug(prf=False)
    create_keys(alice, screenshot=None)

    page.goto("/#/me")
    card = page.locator("#sign-in-security")
    expect(card.locator("#totp-state")).to_have_text("Off")
    card.get_by_label("Name of a new passkey (optional)").fill("Ward phone")
    card.get_by_role("button", name="Add a passkey").click()
    expect(card.get_by_role("heading", name="Your backup codes")).to_be_focused()
    assert card.locator("#backup-codes li").count() >= 5
    card.get_by_role("button", name="I have kept them").click()
    passkeys = card.locator("#my-passkeys li")
    expect(passkeys).to_have_count(1)
    expect(passkeys).to_contain_text("Ward phone")
    expect(card.locator("#backup-codes-left")).to_contain_text("backup codes left")
    card.scroll_into_view_if_needed()
    shot(page, "second-factor-6-profile-card")
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    sign_out(page)

    # The passkey alone: no username, no password typed.
    # Her password now asks for the passkey too: the way offered first, a backup code the other.
    sign_in(page, "nurse_alice")
    use_passkey = page.get_by_role("button", name="Use my passkey")
    expect(use_passkey).to_be_focused()
    expect(page.get_by_role("button", name="Use a backup code")).to_be_visible()
    expect(page.get_by_label("The code your authenticator app shows")).to_be_hidden()
    shot(page, "second-factor-7-passkey-step")
    use_passkey.click()
    expect(page.get_by_role("button", name="Restore my keys")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Sign out").click()  # no keys here: at once

    # Not verified (a finger lifted, a cancel): the sentence says so, the password stays.
    verified = {"authenticatorId": authenticator.id, "isUserVerified": False}
    authenticator.cdp.send("WebAuthn.setUserVerified", verified)
    page.get_by_role("button", name="Use a passkey instead of a password").click()
    expect(page.locator("#login-error")).to_contain_text("The passkey did not answer")
    expect(page.get_by_label("Password")).to_be_editable()
    authenticator.cdp.send("WebAuthn.setUserVerified", {**verified, "isUserVerified": True})
    expect(page.get_by_label("Password")).to_have_value("")
    page.get_by_role("button", name="Use a passkey instead of a password").click()
    expect(page.get_by_role("button", name="Restore my keys")).to_be_visible(timeout=30_000)
    restore_keys(page, alice.secret)

    # Removing it asks for the password again; a wrong one is refused, nothing is signed out.
    page.goto("/#/me")
    card.get_by_role("button", name="Remove this passkey").click()
    password = card.get_by_label("Your password", exact=True)
    expect(password).to_be_focused()
    password.fill("not-" + DEMO_PASSWORD)
    card.get_by_role("button", name="Confirm", exact=True).click()
    expect(card.locator("#factor-error")).to_have_text("That password is not right.")
    expect(passkeys).to_have_count(1)
    assert page.evaluate("async () => (await fetch('/api/auth/me')).status") == 200
    card.get_by_role("button", name="Remove this passkey").click()
    card.get_by_label("Your password", exact=True).fill(DEMO_PASSWORD)
    card.get_by_role("button", name="Confirm", exact=True).click()
    expect(passkeys).to_have_count(0)
    expect(card.locator("#backup-codes-left")).to_contain_text("Backup codes come with")
    authenticator.unplug()
