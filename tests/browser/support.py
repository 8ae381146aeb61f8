"""The browser tests' helpers: Chromium's settings, a phone-sized context on the first
server, signing in, screenshots, the Python SDK beside the browser, and a ward of
clinicians each in their own context. The fixtures are in tests/browser/conftest.py."""

import asyncio
import concurrent.futures
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from client.sdk import RoundsClient
from core.crypto import IdentityKeyPair
from tests.live.servers import DEMO_PASSWORD, LiveCluster

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
SCREENSHOTS = Path(__file__).parent / "screenshots"
VECTORS = Path(__file__).parents[1] / "vectors"


def institution_keys(cluster: LiveCluster) -> dict[str, IdentityKeyPair]:
    folder = cluster.root / "var" / "demo-keys"
    return {
        kind: IdentityKeyPair.from_bytes(bytes.fromhex((folder / f"{kind}.key").read_text()))
        for kind in ("admin", "compliance")
    }


def new_context(browser: Browser, cluster: LiveCluster) -> BrowserContext:
    context = browser.new_context(
        base_url=cluster.servers[0].url,
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
    SCREENSHOTS.mkdir(exist_ok=True)
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

    def open(self, browser: Browser, username: str) -> "Clinician":
        context = new_context(browser, self.cluster)
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
