"""The demo in a minute: `make run`, two browsers, two clinicians, an encrypted message
and a photo, with no key ceremony.

A fresh database seeded by `seed_demo` with no option, exactly as `make run`
does (every key ready, for the demo only: rooms/demo.py), and no other
command. Bob on a phone (360x740) and Alice on a ward PC (1280x800), both of
Plastic surgery, sign in and restore their keys with the recovery code
seed_demo printed beside their login; Bob finds a patient, opens a thread and
sends a message and a photo from the (fake) camera; Alice sees both
decrypted, with nothing "Cannot be read on this device". Every tap and every
field typed is counted, and the count and the seconds are printed (`-s`) and
recorded in docs/browser.md ("The demo").
"""

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.support import Ward, shot
from tests.live.servers import DEMO_PASSWORD, LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

DESKTOP = {"width": 1280, "height": 800}
MESSAGE = "Flap warm and well perfused, drain 20 ml"
SUBJECT = "Flap check"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LiveCluster]:
    """The demo as `make run` seeds it: seed_demo's defaults, nothing added after."""
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1, seed={}) as running:
        yield running


@dataclass
class Steps:
    """What the two clinicians do with their fingers: taps (a click, Enter) and fields
    typed (one per field, however long)."""

    taps: int = 0
    typed: int = 0

    def tap(self, target: Locator) -> None:
        target.click()
        self.taps += 1

    def type(self, field: Locator, text: str) -> None:
        field.fill(text)
        self.typed += 1

    def enter(self, field: Locator) -> None:
        field.press("Enter")
        self.taps += 1

    @property
    def total(self) -> int:
        return self.taps + self.typed


def printed_codes(cluster: LiveCluster) -> dict[str, str]:
    """The recovery codes seed_demo printed beside the logins."""
    return dict(re.findall(r"^  (\S+) .* recovery code (\S+)$", cluster.seed_output, re.M))


def sign_in_and_restore(
    steps: Steps, page: Page, username: str, code: str, screenshot: str | None = None
) -> None:
    page.goto("/")
    steps.type(page.get_by_label("Username"), username)
    steps.type(page.get_by_label("Password"), DEMO_PASSWORD)
    steps.tap(page.get_by_role("button", name="Sign in"))
    expect(page.get_by_role("heading", name="Restore your keys on this device")).to_be_visible()
    steps.type(page.get_by_label("Recovery code or passphrase"), code)
    if screenshot:
        shot(page, screenshot)
    steps.tap(page.get_by_role("button", name="Restore my keys"))
    expect(page.get_by_role("heading", name="My departments")).to_be_visible(timeout=30_000)


def test_two_demo_clinicians_exchange_a_message_and_a_photo_at_once(browser, cluster):
    codes = printed_codes(cluster)
    assert {"surgeon_bob", "nurse_alice"} <= set(codes), cluster.seed_output
    ward = Ward(cluster)
    bob_person, alice_person = ward.open(browser, "surgeon_bob"), ward.open(browser, "nurse_alice")
    bob, alice = bob_person.page, alice_person.page
    alice.set_viewport_size(DESKTOP)
    steps = Steps()
    try:
        started = time.monotonic()
        sign_in_and_restore(steps, bob, "surgeon_bob", codes["surgeon_bob"], "40-demo-restore")
        sign_in_and_restore(steps, alice, "nurse_alice", codes["nurse_alice"])
        steps.tap(alice.locator("a[href^='#/d/']", has_text="Plastic surgery"))

        steps.tap(bob.get_by_role("link", name="Find a patient"))
        steps.type(bob.get_by_label("Family name (start of)"), "Lef")
        steps.tap(bob.get_by_role("button", name="Search"))
        steps.tap(bob.locator("a[href^='#/p/']", has_text="Lefèvre"))
        steps.type(bob.get_by_label("Subject"), SUBJECT)
        steps.tap(bob.get_by_role("button", name="Open conversation"))
        expect(bob.locator("#retention-banner")).to_be_visible()
        steps.tap(alice.get_by_role("link", name=SUBJECT))
        composer = bob.get_by_role("textbox", name="Message")
        steps.type(composer, MESSAGE)
        steps.enter(composer)
        expect(alice.locator("li.msg .text", has_text=MESSAGE)).to_be_visible()

        steps.tap(bob.get_by_role("button", name="Take photo"))  # the camera opens at once
        sheet = bob.get_by_role("dialog", name="Add photos")
        bob.wait_for_function("() => document.querySelector('video.camera')?.videoWidth > 0")
        steps.tap(sheet.get_by_role("button", name="Capture"))
        expect(sheet.locator(".preview")).to_have_count(1)
        steps.tap(sheet.get_by_label("Care only"))  # the consent is asked, never preset
        steps.tap(sheet.get_by_role("button", name="Send photo"))
        expect(sheet).to_have_count(0, timeout=30_000)
        expect(alice.locator("li.msg .photo.ready")).to_have_count(1, timeout=30_000)
        seconds = time.monotonic() - started

        for page in (bob, alice):
            expect(page.locator("li.msg .text", has_text=MESSAGE)).to_be_visible()
            expect(page.locator("li.msg .photo.ready")).to_have_count(1)
            expect(page.locator("li.msg.undecryptable")).to_have_count(0)
            expect(page.locator("main")).not_to_contain_text("Cannot be read on this device")
        # The photo decrypted in Alice's browser: an image with real pixels.
        alice.wait_for_function(
            "() => [...document.querySelectorAll('li.msg .photo.ready img')]"
            ".some((img) => img.complete && img.naturalWidth > 0)"
        )
        print(
            f"\nthe demo in a minute: {steps.total} interactions "
            f"({steps.taps} taps, {steps.typed} fields typed) in {seconds:.1f} s, "
            "from Bob's sign-in to Alice seeing his photo"
        )
        shot(bob, "41-demo-phone-thread")
        shot(alice, "42-demo-desktop-thread")
        alice.goto("/#/")
        expect(alice.get_by_role("heading", name="My departments")).to_be_visible()
        shot(alice, "43-demo-desktop-home")
        assert steps.total <= 30
    finally:
        for person in ward.people.values():
            person.context.close()
