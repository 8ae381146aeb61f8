"""Sign-out on a shared ward computer: the keys and the screen go at once, from every view.

Carol (head of Plastic surgery) opens a conversation about a patient and
writes in it. Then, for each view of the app in turn, she signs in, opens
the view, waits until it shows something of hers (a patient's name and
IPP, a thread's title, her colleagues), and signs out: the sign-in form
must be there, and nothing of hers anywhere in the page (text, title,
dialogs, the app's state), with no page error. With the photo sheet open
(a modal: the page behind it is inert) the session ends from elsewhere
instead, which must clear the page the same way. Every other round she keeps
her keys on the computer under a PIN, the others she signs out with "Not my
computer" (views/signout.js); both clear the page. Between rounds her identity
is put back into IndexedDB as her own device would still have it had she
not signed out, so that each round costs a sign-in, not a key recovery.
"""

import re
import uuid
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page, expect

from tests.browser.support import Ward, create_keys, sign_in, sign_out
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

NOTE = "Flap warm, capillary refill two seconds, Doppler signal strong"


@dataclass
class Session:
    page: Page
    identity: dict
    department: int
    patient: int
    thread: int
    secrets: list[str]  # what must not survive a sign-out
    errors: list[str]


@pytest.fixture(scope="module")
def session(browser, cluster: LiveCluster):
    ward = Ward(cluster)
    carol = ward.open(browser, "head_carol")
    errors: list[str] = []
    carol.page.on("pageerror", lambda error: errors.append(str(error)))
    create_keys(carol, screenshot=None)
    admin_key = cluster.root / "var" / "demo-keys" / "admin.key"
    cluster.manage("appoint_head", "plastic-surgery", "head_carol", "--key-file", str(admin_key))
    page = carol.page
    page.reload()
    department = int(page.locator("a[href^='#/d/']").first.get_attribute("href").split("/")[-1])
    page.get_by_role("link", name="Find a patient").click()
    page.get_by_label("Family name (start of)").fill("Lef")
    page.get_by_role("button", name="Search").click()
    link = page.locator("a[href^='#/p/']").first
    patient = int(link.get_attribute("href").split("/")[-1])
    link.click()
    heading = page.locator("main h2").first
    expect(heading).to_contain_text("Lefèvre", ignore_case=True)
    name = heading.inner_text()
    ipp = re.search(r"IPP (\d+)", page.locator("main").inner_text()).group(1)
    title = f"Free flap {uuid.uuid4().hex[:6]}"
    page.get_by_label("Subject").fill(title)
    page.get_by_role("button", name="Open conversation").click()
    thread = int(page.url.split("/")[-1])
    page.get_by_role("textbox", name="Message").fill(NOTE)
    page.get_by_role("textbox", name="Message").press("Enter")
    expect(page.locator("li.msg.mine", has_text=NOTE).locator("time")).not_to_have_text("Sending…")
    identity = page.evaluate(
        """async () => { const k = await import('/app/js/keystore.js');
          const r = await k.loadIdentity(window.rounds.state.user.id);
          return {...r, secret: Array.from(r.secret)}; }"""
    )
    sign_out(page)
    secrets = [name, "Lefèvre", ipp, title, NOTE, "Plastic surgery", "Carol Lambert", "head_carol"]
    yield Session(page, identity, department, patient, thread, secrets, errors)
    carol.context.close()


def sign_in_on_her_device(session: Session) -> None:
    """Sign in with her keys already in this browser, as on her own device."""
    page = session.page
    page.goto("/")
    page.evaluate(
        """async (r) => { const k = await import('/app/js/keystore.js');
          await k.saveIdentity({...r, secret: Uint8Array.from(r.secret)}); }""",
        session.identity,
    )
    sign_in(page, "head_carol")
    expect(page.get_by_role("heading", name="My departments")).to_be_visible()


def open_photo_sheet(page: Page) -> None:
    page.get_by_role("button", name="Add photos").click()
    expect(page.locator("body > dialog[open]")).to_be_visible()


# (name, route, what the view shows of Carol's once loaded, an action after loading)
VIEWS = [
    ("home", "#/", "Plastic surgery", None),
    ("department", "#/d/{department}", "{title}", None),
    ("find", "#/find", "{ipp}", "search"),
    ("patient", "#/p/{patient}", "{ipp}", None),
    ("conversation", "#/t/{thread}", NOTE, None),
    ("photo sheet", "#/t/{thread}", NOTE, "photo"),
    ("members", "#/d/{department}/members", "Carol Lambert", None),
    ("library", "#/library?patient={patient}", "{ipp}", None),
    ("weekly review", "#/d/{department}/review", "Plastic surgery", None),
]


@pytest.mark.parametrize(("name", "route", "shown", "action"), VIEWS, ids=[v[0] for v in VIEWS])
def test_sign_out_leaves_nothing_of_the_last_user(session, name, route, shown, action):
    page = session.page
    values = {
        "department": session.department,
        "patient": session.patient,
        "thread": session.thread,
        "title": session.secrets[3],
        "ipp": session.secrets[2],
    }
    sign_in_on_her_device(session)
    page.goto("/" + route.format(**values))
    if action == "search":
        page.get_by_label("Family name (start of)").fill("Lef")
        page.get_by_role("button", name="Search").click()
    expect(page.locator("body")).to_contain_text(shown.format(**values))
    if action == "photo":
        # A modal sheet makes the page behind it inert: here the session ends from
        # elsewhere (signed out on another tab; the server closes the socket with 4401).
        open_photo_sheet(page)
        csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
        assert page.request.post("/api/auth/logout", headers={"X-CSRFToken": csrf}).ok
    else:
        # Every other round keeps her keys here under a PIN: the screen is cleared the same.
        keep = [v[0] for v in VIEWS].index(name) % 2 == 0
        sign_out(page, "Keep my keys here" if keep else "Not my computer", pin="583920")

    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    text = page.locator("body").inner_text().casefold()
    for secret in session.secrets:
        assert secret.casefold() not in text, f"{name}: {secret!r} is on screen after sign-out"
    assert page.title() == "Rounds"
    assert page.locator("dialog").count() == 0
    assert page.evaluate("() => window.rounds.state === null && window.rounds.e2e === null")
    assert page.evaluate("() => location.hash") == ""
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
    page.wait_for_function(
        "async () => !(await indexedDB.databases()).some((d) => d.name === 'rounds-keys')"
    )
    assert session.errors == [], f"{name}: page errors at sign-out: {session.errors}"
    # Nothing comes back later either (a late answer of a view that has left).
    page.wait_for_timeout(300)
    text = page.locator("body").inner_text().casefold()
    assert not [s for s in session.secrets if s.casefold() in text]
    assert page.title() == "Rounds"
