"""The browser tests' helpers: Chromium's settings, a phone-sized context on the first
server, signing in, screenshots, the Python SDK beside the browser, and a ward of
clinicians each in their own context. The fixtures are in tests/browser/conftest.py."""

import asyncio
import concurrent.futures
import contextlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, BrowserContext, CDPSession, Locator, Page, expect

from client.sdk import RoundsClient
from core.crypto import IdentityKeyPair
from tests.live.servers import DEMO_PASSWORD, LiveCluster, live_cluster

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # A fake camera and no permission prompt: the photo sheet's camera runs headless.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
PHONE = {"width": 360, "height": 740}
# Written by every run (var/ is not kept); `make screenshots` keeps the screen tour's
# (test_accessibility: every screen, both sizes, both languages) in tests/browser/screenshots/.
SCREENSHOTS = Path(__file__).parents[2] / "var" / "screenshots"
VECTORS = Path(__file__).parents[1] / "vectors"


def institution_keys(cluster: LiveCluster) -> dict[str, IdentityKeyPair]:
    folder = cluster.root / "var" / "demo-keys"
    return {
        kind: IdentityKeyPair.from_bytes(bytes.fromhex((folder / f"{kind}.key").read_text()))
        for kind in ("admin", "compliance")
    }


def new_context(
    browser: Browser, cluster: LiveCluster, base_url: str | None = None
) -> BrowserContext:
    """A phone-sized context on `base_url`, the first server's address unless given."""
    context = browser.new_context(
        base_url=base_url or cluster.servers[0].url,
        viewport=PHONE,
        device_scale_factor=1,
        timezone_id="Europe/Paris",  # the hospital's (settings.TIME_ZONE)
        locale="en-GB",
    )
    context.set_default_timeout(20_000)
    return context


def sign_in(page: Page, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def pins_file(cluster: LiveCluster) -> Path:
    """IT's deployment file of pinned fingerprints, which the Python SDK reads too (R0)."""
    return cluster.root / "var" / "institution.json"


def python_client(cluster: LiveCluster, state_dir: str) -> RoundsClient:
    """The Python SDK on the last server (the other process, when there are two), pinned
    from the deployment file, remembering heads and envelopes in `state_dir` (one
    per device: a path of the test's own, never the user's ~/.local/state)."""
    return RoundsClient(cluster.servers[-1].url, pins_file=pins_file(cluster), state_dir=state_dir)


_DEVICES = tempfile.TemporaryDirectory(prefix="rounds-browser-devices-")


def device_dir() -> str:
    """A fresh state directory: one Python device's trust store (removed when the run ends)."""
    return tempfile.mkdtemp(prefix="device-", dir=_DEVICES.name)


def run_async(coro):
    """Run the async Python client beside the sync Playwright loop, in its own thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- a ward of clinicians, each in their own browser context -------------------------------


@dataclass
class Clinician:
    username: str
    context: BrowserContext
    page: Page
    secret: str | None = None


@dataclass
class Ward:
    cluster: LiveCluster
    people: dict[str, Clinician] = field(default_factory=dict)
    frames: list[str] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)
    thread_id: int | None = None
    department_id: int | None = None
    seconds_to_seen: float | None = None

    def open(
        self, browser: Browser, username: str, context: BrowserContext | None = None
    ) -> "Clinician":
        """`username`'s page, in `context` or a new_context of their own."""
        context = context or new_context(browser, self.cluster)
        page = context.new_page()
        page.on("websocket", self.record)
        person = Clinician(username, context, page)
        self.people[username] = person
        return person

    def record(self, socket) -> None:
        socket.on("framesent", lambda payload: self.frames.append(str(payload)))
        socket.on("framereceived", lambda payload: self.frames.append(str(payload)))


def create_keys(person: Clinician, screenshot: str | None = "02-recovery-code") -> None:
    sign_in(person.page, person.username)
    person.page.get_by_role("button", name="Create my keys").click()
    secret = person.page.locator("#recovery-secret")
    expect(secret).to_be_visible(timeout=30_000)
    person.secret = secret.inner_text()
    if screenshot:
        shot(person.page, screenshot)
    person.page.get_by_label("I have written down my recovery code").check()
    person.page.get_by_role("button", name="Continue").click()
    expect(person.page.get_by_role("heading", name="My departments")).to_be_visible()


def sign_admission(carol: Clinician, department: int, username: str) -> None:
    page = carol.page
    page.goto("/#/")  # a fresh members view: the colleague may have published keys since
    page.goto(f"/#/d/{department}/members")
    page.locator(f"[data-sign={username}]").click()
    page.locator("#confirm-sign").click()
    expect(page.locator(f"[data-member={username}]")).to_contain_text("Admission signed")


def plastic_surgery_ward(
    browser: Browser,
    cluster: LiveCluster,
    members: tuple[str, ...],
    *,
    sign: bool = True,
    on_open: Callable[[Clinician], None] | None = None,
) -> Ward:
    """The usual ward of a browser test: head_carol appointed head of Plastic surgery
    with the demo admin key, `members` with their keys created, their admissions signed
    by her unless `sign` is False. `on_open` sees each member's page before sign-in."""
    ward = Ward(cluster)
    carol = ward.open(browser, "head_carol")
    create_keys(carol, screenshot=None)
    admin_key = cluster.root / "var" / "demo-keys" / "admin.key"
    cluster.manage("appoint_head", "plastic-surgery", "head_carol", "--key-file", str(admin_key))
    for username in members:
        person = ward.open(browser, username)
        if on_open is not None:
            on_open(person)
        create_keys(person, screenshot=None)
    ward.department_id = int(
        carol.page.locator("a[href^='#/d/']").first.get_attribute("href").split("/")[-1]
    )
    if sign:
        for username in members:
            sign_admission(carol, ward.department_id, username)
    return ward


def free_flap_ward(
    browser: Browser,
    cluster: LiveCluster,
    subject: str,
    carol_context: BrowserContext | None = None,
) -> Ward:
    """The shared computer's ward: head_carol (in `carol_context` when given) appointed
    head of Plastic surgery with the demo admin key, surgeon_bob's keys and admission,
    and a conversation on the first patient whose family name starts with "Le",
    titled `subject`, open on Carol's page (its id in `ward.thread_id`)."""
    ward = Ward(cluster)
    carol = ward.open(browser, "head_carol", carol_context)
    create_keys(carol, screenshot=None)
    admin_key = cluster.root / "var" / "demo-keys" / "admin.key"
    cluster.manage("appoint_head", "plastic-surgery", "head_carol", "--key-file", str(admin_key))
    create_keys(ward.open(browser, "surgeon_bob"), screenshot=None)
    page = carol.page
    page.reload()
    ward.department_id = int(
        page.locator("a[href^='#/d/']").first.get_attribute("href").split("/")[-1]
    )
    sign_admission(carol, ward.department_id, "surgeon_bob")
    ward.thread_id = open_thread(page, subject)
    return ward


def open_thread(page: Page, subject: str) -> int:
    """A new conversation about the first demo patient named Le…, as a clinician opens
    one from "Find a patient"; its thread id."""
    page.goto("/#/find")
    page.get_by_label("Family name (start of)").fill("Le")
    page.get_by_role("button", name="Search").click()
    page.locator("a[href^='#/p/']").first.click()
    page.get_by_label("Subject").fill(subject)
    page.get_by_role("button", name="Open conversation").click()
    expect(page.get_by_role("textbox", name="Message")).to_be_enabled()
    return int(page.url.split("/")[-1])


@contextlib.contextmanager
def demo_cluster(settings: dict[str, str] | None = None) -> Iterator[LiveCluster]:
    """The browser tests' cluster (two processes when Redis joins them), with the demo's
    institution keys pinned for browsers; `settings` as environment for its servers."""
    count = 2 if os.environ.get("REDIS_URL") else 1
    with live_cluster(count, settings=settings) as running:
        keys = institution_keys(running)
        pins = {kind: pair.fingerprint for kind, pair in keys.items()}
        (running.root / "var" / "institution.json").write_text(json.dumps(pins))
        yield running


def close_ward(ward: Ward) -> None:
    for person in ward.people.values():
        person.context.close()


def choose_passphrase(page: Page, passphrase: str, again: str | None = None) -> None:
    page.get_by_label("A passphrase I choose").check()
    page.get_by_label("Passphrase (16 characters or more)").fill(passphrase)
    page.get_by_label("The same passphrase again").fill(passphrase if again is None else again)
    page.get_by_role("button", name="Create my keys").click()


def sign_out(page: Page, choice: str = "Not my computer", pin: str | None = None) -> None:
    """The header's Sign out; with keys in the browser it asks first (views/signout.js):
    "Not my computer" (nothing stays) or "Keep my keys here" (under a PIN, chosen the
    first time: `pin`)."""
    page.get_by_role("button", name="Sign out").click()
    dialog = page.locator("#signout-dialog")
    expect(dialog).to_be_visible()
    if pin is not None and dialog.locator("#pin-new").count():
        dialog.get_by_label("Choose a PIN").fill(pin)
        dialog.get_by_label("The same PIN again").fill(pin)
    dialog.get_by_role("button", name=choice, exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


# --- a shared computer: what is left of a user, signing in as a person does ---------------

# What the origin keeps of `user`: IndexedDB records naming them, and Web Storage sizes.
LEFTOVERS = """async (user) => {
  const names = (await indexedDB.databases()).map((d) => d.name);
  const found = {names, records: []};
  for (const name of names) {
    const db = await new Promise((ok, no) => {
      const r = indexedDB.open(name);
      r.onsuccess = () => ok(r.result);
      r.onerror = () => no(r.error);
    });
    for (const store of db.objectStoreNames) {
      const rows = await new Promise((ok) => {
        const r = db.transaction(store).objectStore(store).getAll();
        r.onsuccess = () => ok(r.result);
      });
      for (const row of rows) if (row.user === user) found.records.push(`${name}/${store}`);
    }
    db.close();
  }
  found.localStorage = localStorage.length;
  found.sessionStorage = sessionStorage.length;
  return found;
}"""


def sign_out_leaving_nothing(page: Page, user: int) -> None:
    """Sign out choosing "Not my computer": nothing of `user` stays in the origin's
    IndexedDB, and its Web Storage is empty."""
    sign_out(page, "Not my computer")
    page.wait_for_timeout(500)
    left = page.evaluate(LEFTOVERS, user)
    assert left["records"] == [], left
    assert "rounds-keys" not in left["names"] and "rounds-device" not in left["names"], left
    assert left["localStorage"] == 0 and left["sessionStorage"] == 0, left


def signed_in_user(page: Page) -> int:
    """The id of whoever this page is signed in as (GET /api/auth/me)."""
    return page.evaluate("async () => (await (await fetch('/api/auth/me')).json()).id")


def sign_in_counting(page: Page) -> int:
    """Sign in as a person does, counting the taps (each field or button touched)."""
    taps = 0
    page.goto("/")
    page.get_by_label("Username").click()
    taps += 1
    page.keyboard.type("head_carol")
    page.get_by_label("Password").click()
    taps += 1
    page.keyboard.type(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    taps += 1
    return taps


# --- photos as a phone writes them ------------------------------------------------------

RED = (200, 30, 30)


def phone_photo(taken: datetime, size: tuple[int, int] = (1600, 1200)) -> bytes:
    """A JPEG as a phone writes it: GPS, orientation 6, DateTimeOriginal with its offset.

    Noise keeps the file large enough to travel in several chunks."""
    width, height = size
    base = Image.new("RGB", size, (226, 180, 160))
    base.paste(RED, (0, 0, width // 4, height // 4))
    noise = Image.effect_noise(size, 60).convert("RGB")
    image = Image.blend(base, noise, 0.25)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "PhoneMaker"
    detail = exif.get_ifd(0x8769)
    detail[0x9003] = taken.strftime("%Y:%m:%d %H:%M:%S")
    detail[0x9011] = taken.strftime("%z")[:3] + ":" + taken.strftime("%z")[3:]
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 35.0, 12.5), 3: "E", 4: (7.0, 45.0, 3.25)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, quality=92)
    return out.getvalue()


class Taps:
    """Counts the taps of a flow (typing is not a tap): the figures docs/browser.md gives."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, target: Locator) -> None:
        target.click()
        self.count += 1


# Chromium's virtual platform authenticator (DevTools' WebAuthn domain), as a phone's or a
# laptop's: resident keys, user verification, always present.
AUTHENTICATOR = {
    "protocol": "ctap2",
    "ctap2Version": "ctap2_1",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


class Authenticator:
    """Chromium's virtual platform authenticator in one tab (it outlives reloads)."""

    def __init__(self, page: Page) -> None:
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        self.id: str | None = None

    def plug(self, *, prf: bool) -> None:
        self.unplug()
        options = {**AUTHENTICATOR, "hasPrf": prf}
        added = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        self.id = added["authenticatorId"]

    def unplug(self) -> None:
        if self.id is not None:
            self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.id})
            self.id = None

    def credentials(self) -> list[dict]:
        got = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})
        return got["credentials"]

    def clear(self) -> None:
        self.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": self.id})
