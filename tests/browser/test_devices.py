"""My signed-in devices in the browser (frontend/js/devices.js, accounts/devices.py):
Alice, signed in on her phone and on a ward computer, sees both on her profile and
signs the computer out from her phone; the computer is signed out at once (its next
call is refused), and her phone stays signed in."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.support import Ward, close_ward, create_keys, shot, sign_in
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(200)]


def test_a_device_signed_out_from_another(browser, cluster: LiveCluster) -> None:
    ward = Ward(cluster)
    try:
        phone = ward.open(browser, "nurse_alice")
        create_keys(phone, screenshot=None)
        computer = ward.open(browser, "nurse_alice")
        sign_in(computer.page, "nurse_alice")
        expect(computer.page.get_by_role("button", name="Restore my keys")).to_be_visible(
            timeout=30_000
        )

        phone.page.goto("/#/me")
        devices = phone.page.locator("#my-devices li")
        expect(devices).to_have_count(2, timeout=20_000)
        expect(devices.locator(".tag", has_text="This device")).to_have_count(1)
        other = devices.filter(has=phone.page.get_by_role("button", name="Sign out this device"))
        expect(other).to_contain_text(re.compile("Chrome|Chromium|device", re.I))
        shot(phone.page, "devices-profile-phone")
        other.get_by_role("button", name="Sign out this device").click()
        expect(devices).to_have_count(1, timeout=20_000)

        # The computer's login is gone: its next call is refused, and a reload signs in anew.
        status = computer.page.evaluate("async () => (await fetch('/api/auth/me')).status")
        assert status == 401
        computer.page.reload()
        expect(computer.page.get_by_label("Username")).to_be_visible(timeout=20_000)
        # The phone is still signed in.
        assert phone.page.evaluate("async () => (await fetch('/api/auth/me')).status") == 200
    finally:
        close_ward(ward)
