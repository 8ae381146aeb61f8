"""Every screen of the browser client against WCAG 2.2 AA (docs/browser.md, "Accessibility").

The demo as `make run` seeds it (every key ready). surgeon_bob restores his
keys, finds a patient, opens a thread, writes, and sends two photos; then
each screen of app.js's routes, and the dialogs over them (the photo sheet,
the viewer, the comparison's picker and the comparison), is checked at
360x740 and at 1280x800: axe-core (tests/browser/vendor/, injected, never
served) with the WCAG 2.0, 2.1 and 2.2 A and AA rules, and every visible
control measured for SC 2.5.8's 24 x 24 CSS px. compliance_dan opens a case
for the console, its case and its thread; the administrator signs in for
the administration screen. Violations are printed screen by screen with
their selectors (`-s`), and any "serious" or "critical" one, or any target
under 24 x 24, fails.
"""

import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from rounds import catalogue
from tests.browser.support import PHONE, SCREENSHOTS, institution_keys, shot
from tests.live.servers import DEMO_PASSWORD, LiveCluster, live_cluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"360x740": PHONE, "1280x800": DESKTOP}
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
FAILING = {"serious", "critical"}
# Rules switched off, each with its reason (docs/browser.md, "Accessibility"): none.
DISABLED: dict[str, str] = {}
MINIMUM = 24  # CSS px, SC 2.5.8 Target Size (Minimum)
LOCALES = {"en": "en-GB", "fr": "fr-FR"}


class Words:
    """The tour's words in the language the browser speaks: the English source text, or
    its entry in the catalogue the browser loads (frontend/locales/)."""

    def __init__(self) -> None:
        self.use("en")

    def use(self, language: str) -> None:
        self.language = language
        self.entries = catalogue.load(language) if language != "en" else {}

    def __call__(self, text: str, **params: object) -> str:
        entry = self.entries.get(text, text)
        assert isinstance(entry, str), text
        return entry.format(**params) if params else entry

    def count(self, count: int, one: str) -> str:
        """A counted sentence (tn): the catalogue's form for `count` (2 is "other" in both)."""
        entry = self.entries.get(one)
        forms = entry if isinstance(entry, dict) else {"one": one, "other": one}
        return forms["one" if count == 1 else "other"].format(count=count)

    def leftovers(self, shown: str) -> list[str]:
        """English sentences of the catalogue still on a screen that should be in French."""
        return sorted(
            text
            for text, entry in self.entries.items()
            if text not in STORED_NAMES
            if isinstance(entry, str)
            and entry != text
            and " " in text
            and "{" not in text
            and text in shown
        )


# English that is data in every language: the weekly review's comment conversation is
# titled so for all (views/reviewcase.js COMMENT_THREAD), as its comments are found by it.
STORED_NAMES = {"Weekly review"}
w = Words()
# Everything a screen says, to a sighted reader and to a screen reader.
SHOWN = """
() => [document.title, document.body.innerText, ...[...document.querySelectorAll(
  '[aria-label], [placeholder], [title], [alt]')].flatMap((el) => ['aria-label', 'placeholder',
  'title', 'alt'].map((name) => el.getAttribute(name) || ''))].join('\\n')
"""

# What a user can press, tap or type into. SC 2.5.8's exemptions taken: a link inline
# in a sentence (its size set by the line of text). Not exempt but measured otherwise:
# an input drawn by its label (.visually-hidden: the file input, whose label is the
# button users press) through that label; the skip link, off the screen until focused,
# is left out while it is off the screen.
TARGETS = r"""
() => {
  const selector = 'button, a[href], input:not([type=hidden]), select, textarea, summary,'
    + ' [role=button], [role=slider], [tabindex]:not([tabindex="-1"])';
  const name = (el) => {
    const id = el.id ? '#' + el.id : '';
    const cls = typeof el.className === 'string' && el.className
      ? '.' + el.className.trim().split(/\s+/).join('.') : '';
    const text = (el.getAttribute('aria-label') || el.textContent || el.value || '')
      .trim().slice(0, 30);
    return `${el.tagName.toLowerCase()}${id}${cls} "${text}"`;
  };
  const inlineInText = (el) => {
    if (el.tagName !== 'A' || getComputedStyle(el).display !== 'inline') return false;
    const around = (el.parentElement?.textContent || '').trim().length;
    return around > (el.textContent || '').trim().length;
  };
  const small = [];
  for (const el of document.querySelectorAll(selector)) {
    if (el.closest('[hidden], [inert]') || el.closest('dialog:not([open])')) continue;
    if (document.querySelector('dialog[open]') && !el.closest('dialog[open]')) continue;
    let target = el;
    if (el.classList.contains('visually-hidden')) target = el.labels?.[0] || null;
    if (!target || inlineInText(target)) continue;
    const style = getComputedStyle(target);
    if (style.visibility === 'hidden' || style.display === 'none') continue;
    const box = target.getBoundingClientRect();
    // Off the screen until focused (the skip link, 38 px tall once it shows).
    if (!box.width || !box.height || box.right <= 0) continue;
    if (box.width < 24 || box.height < 24) {
      small.push(`${name(target)} ${box.width.toFixed(1)}x${box.height.toFixed(1)}`);
    }
  }
  return small;
}
"""

# The focused element's ring (SC 1.4.11, 2.4.13): its outline's colour against the surface
# just outside it, the topmost opaque background there (elementsFromPoint, so a positioned
# element such as the skip link is judged over what it covers). Marks each element reached
# (data-ring) so that the walk stops when Tab comes round again.
RING = r"""
() => {
  let el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return { skip: true };
  if (el.dataset.ring) return { cycled: true };
  el.dataset.ring = '1';
  if (el.classList.contains('visually-hidden') && el.labels?.[0]) el = el.labels[0];
  const style = getComputedStyle(el);
  const rgb = (c) => c.match(/[\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const width = parseFloat(style.outlineWidth) || 0;
  const offset = parseFloat(style.outlineOffset) || 0;
  const box = el.getBoundingClientRect();
  const out = offset + width + 1;
  const points = [
    [box.left - out, box.top + box.height / 2], [box.right + out, box.top + box.height / 2],
    [box.left + box.width / 2, box.top - out], [box.left + box.width / 2, box.bottom + out],
  ].filter(([x, y]) => x >= 0 && y >= 0 && x < innerWidth && y < innerHeight);
  let surface = [245, 247, 250];
  let where = 'the page';
  for (const [x, y] of points.slice(0, 1)) {
    for (const under of document.elementsFromPoint(x, y)) {
      if (under === el || el.contains(under)) continue;
      const c = rgb(getComputedStyle(under).backgroundColor);
      if (c.length < 4 || c[3] > 0) {
        surface = c.slice(0, 3);
        where = `${under.tagName.toLowerCase()}.${under.className}`;
        break;
      }
    }
  }
  const ring = rgb(style.outlineColor).slice(0, 3);
  const [hi, lo] = [lum(ring), lum(surface)].sort((a, b) => b - a);
  const label = (el.getAttribute('aria-label') || el.textContent || el.id || el.value || el.tagName)
    .trim().slice(0, 30);
  return {
    name: `${el.tagName.toLowerCase()} "${label}"`, style: style.outlineStyle, width,
    ratio: (hi + 0.05) / (lo + 0.05), ring: style.outlineColor, surface: `${where} rgb(${surface})`,
  };
}
"""

AXE_RUN = """
async ([tags, disabled]) => {
  const rules = Object.fromEntries(disabled.map((id) => [id, { enabled: false }]));
  const result = await axe.run(document, {
    runOnly: { type: 'tag', values: tags }, rules, resultTypes: ['violations'],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' ')),
  }));
}
"""


@pytest.fixture(scope="module", params=list(LOCALES))
def language(request: pytest.FixtureRequest) -> str:
    """The browser's language for the tour: each has a demo of its own (`cluster`)."""
    w.use(request.param)
    return request.param


@pytest.fixture(scope="module")
def cluster(language: str) -> Iterator[LiveCluster]:
    """The demo as `make run` seeds it, with IT's deployment file of pins (conftest.py)."""
    with live_cluster(2 if os.environ.get("REDIS_URL") else 1, seed={}) as running:
        pins = {kind: pair.fingerprint for kind, pair in institution_keys(running).items()}
        (running.root / "var" / "institution.json").write_text(json.dumps(pins))
        yield running


def context_for(browser: Browser, cluster: LiveCluster) -> BrowserContext:
    """support.new_context's phone, with the page's CSP bypassed so that Playwright may
    inject axe as a script tag (the CSP forbids inline scripts; axe is the tests' only)."""
    context = browser.new_context(
        base_url=cluster.servers[0].url,
        viewport=PHONE,
        device_scale_factor=1,
        timezone_id="Europe/Paris",
        locale=LOCALES[w.language],
        bypass_csp=True,
    )
    context.set_default_timeout(20_000)
    return context


class Audit:
    """What axe and the target measure found, screen by screen and viewport by viewport."""

    def __init__(self) -> None:
        self.violations: dict[str, list[dict]] = {}
        self.small: dict[str, list[str]] = {}
        self.compare: dict[str, object] = {}
        self.rings: dict[str, list[str]] = {}
        self.english: dict[str, list[str]] = {}
        self.reached = 0

    def focus_rings(self, page: Page) -> list[str]:
        """Tab through the screen (at most 60 stops) and judge each focus ring."""
        weak = []
        page.evaluate("() => document.activeElement?.blur()")
        for _ in range(60):
            page.keyboard.press("Tab")
            ring = page.evaluate(RING)
            if ring.get("cycled"):
                break
            if ring.get("skip"):
                continue
            self.reached += 1
            if ring["style"] == "none" or ring["width"] < 2 or ring["ratio"] < 3:
                weak.append(
                    f"{ring['name']} {ring['style']} {ring['width']}px {ring['ring']}"
                    f" on {ring['surface']}: {ring['ratio']:.2f}:1"
                )
        page.evaluate(
            "() => document.querySelectorAll('[data-ring]')"
            ".forEach((el) => el.removeAttribute('data-ring'))"
        )
        return weak

    def check(self, page: Page, screen: str, arrange: Callable[[], None] | None = None) -> None:
        for label, size in VIEWPORTS.items():
            page.set_viewport_size(size)
            page.wait_for_timeout(150)  # layout and ResizeObservers settle
            if arrange is not None:
                arrange()
            if not page.evaluate("() => typeof window.axe !== 'undefined'"):
                page.add_script_tag(path=str(AXE))
            key = f"{screen} @ {label}"
            folder = SCREENSHOTS / w.language / label
            folder.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^a-z0-9]+", "-", screen.lower()).strip("-")
            page.screenshot(path=str(folder / f"{name}.png"))
            self.english[key] = w.leftovers(page.evaluate(SHOWN))
            self.violations[key] = page.evaluate(AXE_RUN, [TAGS, list(DISABLED)])
            self.small[key] = page.evaluate(TARGETS)
            self.rings[key] = self.focus_rings(page)
        page.set_viewport_size(PHONE)

    def report(self) -> str:
        lines = []
        for key, found in self.violations.items():
            counts = Counter(v["impact"] for v in found)
            lines.append(f"{key}: {dict(counts) or 'no violation'}")
            for v in found:
                lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
                lines.extend(f"      {node}" for node in v["nodes"])
            lines.extend(f"  small target: {item}" for item in self.small[key])
            lines.extend(f"  weak focus ring: {item}" for item in self.rings[key])
            lines.extend(f"  English left: {item}" for item in self.english[key])
        return "\n".join(lines)


def printed_codes(cluster: LiveCluster) -> dict[str, str]:
    return dict(re.findall(r"^  (\S+) .* recovery code (\S+)$", cluster.seed_output, re.M))


def jpeg(colour: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (800, 600), colour)
    image.paste((30, 30, 200), (0, 0, 200, 150))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def sign_in(page: Page, username: str) -> None:
    page.goto("/")
    page.get_by_label(w("Username")).fill(username)
    page.get_by_label(w("Password")).fill(DEMO_PASSWORD)
    page.get_by_role("button", name=w("Sign in")).click()


def measure_comparison(page: Page) -> dict[str, object]:
    """The comparison's two photos, at each size, and what the slider's keys do."""
    comparison = page.get_by_role("dialog", name=w("Compare two photos"))
    stages = comparison.locator(".stage")
    split = comparison.get_by_role("slider", name=w("Earlier photo ◂ slide ▸ later photo"))
    found: dict[str, object] = {}
    for label, size in VIEWPORTS.items():
        page.set_viewport_size(size)
        page.wait_for_timeout(150)
        found[label] = {
            "widths": [stages.nth(i).bounding_box()["width"] for i in range(2)],
            "slider": split.is_visible(),
        }
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(150)
    split.focus()
    for _ in range(10):
        page.keyboard.press("ArrowLeft")
    shot(page, "16-comparison-phone")
    found["after ten left arrows"] = {
        "value": split.input_value(),
        "split": comparison.locator(".panes").evaluate(
            "(el) => el.style.getPropertyValue('--split')"
        ),
        "clip": stages.nth(1).evaluate("(el) => getComputedStyle(el).clipPath"),
        "valuetext": split.get_attribute("aria-valuetext"),
        "said": w("Earlier photo left of {at}% of the width, later photo right of it", at=40),
    }
    return found


def settled(page: Page) -> None:
    expect(page.locator("#view > *").first).to_be_visible()
    expect(page.locator("#view .loading")).to_have_count(0)


def restore(page: Page, username: str, code: str) -> None:
    sign_in(page, username)
    page.get_by_label(w("Recovery code or passphrase")).fill(code)
    page.get_by_role("button", name=w("Restore my keys")).click()
    expect(page.get_by_role("heading", name=w("My departments"))).to_be_visible(timeout=30_000)


def clinician_screens(audit: Audit, page: Page, alice: Page, codes: dict[str, str]) -> str:
    """Bob's screens, from the sign-in to the comparison (Alice reads his messages, for
    "Seen by"); returns the patient's IPP."""
    code = codes["surgeon_bob"]
    page.goto("/")
    expect(page.get_by_label(w("Username"))).to_be_visible()
    audit.check(page, "sign-in")
    sign_in(page, "surgeon_bob")
    expect(page.get_by_role("heading", name=w("Restore your keys on this device"))).to_be_visible()
    audit.check(page, "keys (restore)")
    page.get_by_label(w("Recovery code or passphrase")).fill(code)
    page.get_by_role("button", name=w("Restore my keys")).click()
    expect(page.get_by_role("heading", name=w("My departments"))).to_be_visible(timeout=30_000)
    audit.check(page, "home")
    department = page.locator("a[href^='#/d/']", has_text="Plastic surgery").get_attribute("href")
    page.goto(f"/{department}")
    expect(page.get_by_role("link", name=w("Find a patient"))).to_be_visible()
    audit.check(page, "department")
    page.goto(f"/{department}/members")
    expect(page.locator("[data-member]").first).to_be_visible()
    audit.check(page, "members")
    page.goto(f"/{department}/oncall")
    expect(page.locator("#on-duty [data-role]").first).to_be_visible()
    audit.check(page, "on call")
    page.goto(f"/{department}")
    page.get_by_role("link", name=w("Find a patient")).click()
    page.get_by_label(w("Family name (start of)")).fill("Lef")
    page.get_by_role("button", name=w("Search")).click()
    expect(page.locator("a[href^='#/p/']").first).to_be_visible()
    audit.check(page, "find a patient")
    page.locator("a[href^='#/p/']", has_text="Lefèvre").click()
    expect(page.get_by_label(w("Subject"))).to_be_visible()
    ipp = re.search(r"IPP\s(\S+)", page.locator("#view").inner_text()).group(1)
    audit.check(page, "patient")
    patient = page.url.split("#")[1]
    page.get_by_label(w("Subject")).fill("Flap check")
    page.get_by_role("button", name=w("Open conversation")).click()
    composer = page.get_by_role("textbox", name=w("Message"))
    composer.fill("Flap warm and well perfused, drain 20 ml")
    composer.press("Enter")
    expect(page.locator("li.msg .text")).to_have_count(1)
    page.get_by_role("button", name=w("Add photos")).click()
    sheet = page.get_by_role("dialog", name=w("Add photos"))
    page.locator("#photo-files").set_input_files(
        [
            {"name": "day1.jpg", "mimeType": "image/jpeg", "buffer": jpeg((226, 180, 160))},
            {"name": "day3.jpg", "mimeType": "image/jpeg", "buffer": jpeg((200, 160, 150))},
        ]
    )
    expect(sheet.locator(".preview")).to_have_count(2)
    # Checked as it opens: its footer (Send) lies below the scrolling body, covering
    # nothing, at the top as at the end.
    audit.check(page, "photo sheet")
    sheet.get_by_label(w("Care only")).check()  # the consent is asked, never preset
    sheet.get_by_role("button", name=w.count(2, "Send {count} photo")).click()
    expect(sheet).to_have_count(0, timeout=30_000)
    expect(page.locator("li.msg .photo.ready")).to_have_count(2, timeout=30_000)
    restore(alice, "nurse_alice", codes["nurse_alice"])
    alice.goto("/" + page.url.split("/", 3)[3])
    expect(alice.locator("li.msg .photo.ready")).to_have_count(2, timeout=30_000)
    expect(page.locator("#seen-by")).to_be_visible()
    audit.check(page, "conversation")
    conversation = page.url
    page.get_by_role("button", name=w("Ask for advice")).click()
    sheet = page.locator("#ask-sheet")
    expect(sheet.locator("#ask-to-roles label.chip").first).to_be_visible()
    audit.check(page, "ask for advice")
    # A consult: another department and its on-call roles (docs/advice.md, "Consults").
    sheet.locator("#ask-where").get_by_text(w("Another department")).click()
    expect(sheet.locator("#consult-department")).to_be_visible()
    audit.check(page, "ask for advice: another department")
    sheet.locator("#ask-where").get_by_text(w("This department")).click()
    sheet.locator("#ask-question").fill("Is the flap congested?")
    sheet.locator("#ask-to-roles label.chip").first.click()
    sheet.get_by_role("button", name=w("Send request")).click()
    expect(page.locator("#advice-timeline li").first).to_be_visible(timeout=30_000)
    audit.check(page, "advice request")
    page.goto(conversation)
    expect(page.locator("li.msg .photo.ready")).to_have_count(2, timeout=30_000)
    alice.goto(f"/{department}")
    expect(alice.locator("a[href^='#/t/']")).to_have_count(1)
    audit.check(alice, "department (a conversation listed)")
    page.locator("li.msg .photo.ready").first.click()
    viewer = page.get_by_role("dialog", name=w("Photo"))
    expect(viewer.get_by_role("button", name=w("Compare"))).to_be_visible()
    audit.check(page, "photo viewer")
    viewer.get_by_role("button", name=w("Compare")).click()
    picker = page.get_by_role("dialog", name=w("Compare with"))
    expect(picker.locator("button.tile")).to_have_count(1)
    audit.check(page, "compare: choose a photo")
    picker.locator("button.tile").first.click()
    comparison = page.get_by_role("dialog", name=w("Compare two photos"))
    page.wait_for_function(
        "() => [...document.querySelectorAll('dialog.compare img')]"
        ".every((img) => img.naturalWidth > 0)"
    )
    audit.check(page, "compare")
    audit.compare = measure_comparison(page)
    page.keyboard.press("Escape")
    expect(comparison).to_have_count(0)
    page.goto(f"/#/library?{patient.replace('/p/', 'patient=').lstrip('/')}")
    expect(page.locator("#library-grid .tile")).to_have_count(2)
    audit.check(page, "library")
    page.goto(f"/{department}/review")
    photo_of = w("Photo of {patient} taken {time}").split("{")[0]
    expect(page.get_by_role("button", name=re.compile(f"^{photo_of}"))).to_have_count(2)
    audit.check(page, "weekly review")
    page.goto("/#/me")
    expect(page.locator("#view .fingerprint").first).to_be_visible()
    audit.check(page, "profile")
    page.goto("/#/keys")
    settled(page)
    audit.check(page, "keys")
    return ipp


def officer_screens(audit: Audit, page: Page, ipp: str) -> None:
    sign_in(page, "compliance_dan")
    expect(page.get_by_role("heading", name=w("Cases"))).to_be_visible()
    audit.check(page, "compliance console")
    page.locator("#open-case-box summary").click()
    audit.check(page, "compliance console (open a case)")
    page.get_by_label(w("Reference")).fill("INC-2026-301")
    page.get_by_label(w("Reason")).fill("Patient request (art. 15 GDPR)")
    page.get_by_label(w("Patient's IPP")).fill(ipp)
    page.get_by_role("button", name=w("Open the case")).click()
    item = page.locator("#cases li[data-reference='INC-2026-301']")
    expect(item).to_be_visible()
    page.goto(f"/#/compliance/c/{item.get_attribute('data-case')}")
    thread = page.locator("#case-threads a[data-thread]").first
    expect(thread).to_be_visible()
    audit.check(page, "compliance case")
    thread.click()
    expect(page.get_by_label(w("The institution's compliance key file"))).to_be_visible()
    audit.check(page, "compliance thread (key file)")


def admin_screens(audit: Audit, page: Page) -> None:
    sign_in(page, "admin")
    expect(page).to_have_url(re.compile("#/admin$"))
    settled(page)
    audit.check(page, "administration")


@pytest.fixture(scope="module")
def audit(language: str, browser: Browser, cluster: LiveCluster) -> Audit:
    """The tour in each language, the browser's own (the context's locale) choosing it."""
    audit = Audit()
    errors: list[str] = []
    codes = printed_codes(cluster)
    contexts = [context_for(browser, cluster) for _ in range(4)]
    try:
        bob, alice, dan, admin = (context.new_page() for context in contexts)
        for page in (bob, alice, dan, admin):
            page.on("pageerror", lambda error: errors.append(str(error)))
        ipp = clinician_screens(audit, bob, alice, codes)
        officer_screens(audit, dan, ipp)
        admin_screens(audit, admin)
    except Exception:
        for i, page in enumerate((bob, alice, dan, admin)):
            page.screenshot(path=f"/tmp/a11y-fail-{i}.png")
            print(i, page.url, page.locator("body").inner_text()[:500])
        raise
    finally:
        for context in contexts:
            context.close()
    print("\n" + audit.report())
    assert not errors, errors
    return audit


def test_axe_finds_nothing_serious_on_any_screen(audit: Audit):
    failing = {
        key: [
            f"{v['id']} ({v['impact']}): {', '.join(v['nodes'])}"
            for v in found
            if v["impact"] in FAILING
        ]
        for key, found in audit.violations.items()
    }
    assert not {key: found for key, found in failing.items() if found}, audit.report()


def test_every_target_is_at_least_24_by_24(audit: Audit):
    small = {key: found for key, found in audit.small.items() if found}
    assert not small, audit.report()


def test_the_comparison_lies_full_width_on_a_phone_with_a_slider(audit: Audit):
    phone, desktop = audit.compare["360x740"], audit.compare["1280x800"]
    assert phone["slider"] and all(width >= 350 for width in phone["widths"]), audit.compare
    assert not desktop["slider"] and all(width < 700 for width in desktop["widths"]), audit.compare
    moved = audit.compare["after ten left arrows"]
    assert moved["value"] == "40" and moved["split"] == "40%", audit.compare
    assert moved["clip"] == "inset(0px 0px 0px 40%)", audit.compare
    assert moved["valuetext"] == moved["said"], audit.compare


def test_no_screen_is_left_in_english_in_french(audit: Audit):
    left = {key: found for key, found in audit.english.items() if found}
    assert not left, audit.report()


def test_every_focus_ring_contrasts_3_to_1(audit: Audit):
    weak = {key: found for key, found in audit.rings.items() if found}
    assert audit.reached > 100, audit.reached
    assert not weak, audit.report()
