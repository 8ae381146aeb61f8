"""Scanning a patient's wristband where the browser has no BarcodeDetector (docs/browser.md).

Chromium on Linux has no Shape Detection API, so "Scan the label" runs the
vendored JavaScript decoder (@zxing/library, frontend/js/barcode.js). Its fake
camera plays a video file made here: a wristband label with the patient's IPP
as Code 128 (reportlab's Code 128 encoding), or as a QR code (reportlab's QR
encoder), which newer wristband printers use. Scanning either finds the
patient, with nothing typed.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, expect
from reportlab.graphics.barcode.code128 import Code128
from reportlab.graphics.barcode.qrencoder import QRCode, QRErrorCorrectLevel

from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, Ward, create_keys, shot
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

IPP = "00800107"  # seed_demo's second patient
WIDTH, HEIGHT = 640, 480


def code128_label(text: str) -> Image.Image:
    """A white label with `text` as Code 128, 3 px a module, quiet zones kept."""
    barcode = Code128(text)
    barcode.validate()
    barcode.encode()
    barcode.decompose()
    # Upper case a bar, lower case a space; the letter is the width in modules (A = 1).
    modules = [(ch.isupper(), ord(ch.upper()) - ord("A") + 1) for ch in barcode.decomposed]
    unit, quiet = 3, 30
    label = Image.new("L", (WIDTH, HEIGHT), 235)
    draw = ImageDraw.Draw(label)
    width = sum(w for _, w in modules) * unit
    left, top = (WIDTH - width) // 2, 140
    draw.rectangle((left - quiet, top - 40, left + width + quiet, top + 200), fill=255)
    x = left
    for bar, w in modules:
        if bar:
            draw.rectangle((x, top, x + w * unit - 1, top + 140), fill=0)
        x += w * unit
    draw.text((left, top + 150), f"IPP {text}", fill=0)
    return label


def qr_label(text: str) -> Image.Image:
    """A white label with `text` as a QR code (version 2, level M), 8 px a module, the
    four-module quiet zone kept."""
    code = QRCode(2, QRErrorCorrectLevel.M)
    code.addData(text)
    code.make()
    count, unit = code.getModuleCount(), 8
    label = Image.new("L", (WIDTH, HEIGHT), 235)
    draw = ImageDraw.Draw(label)
    side = count * unit
    left, top = (WIDTH - side) // 2, (HEIGHT - side) // 2 - 20
    draw.rectangle(
        (left - 4 * unit, top - 4 * unit, left + side + 4 * unit, top + side + 6 * unit), fill=255
    )
    for row in range(count):
        for col in range(count):
            if code.isDark(row, col):
                x, y = left + col * unit, top + row * unit
                draw.rectangle((x, y, x + unit - 1, y + unit - 1), fill=0)
    draw.text((left, top + side + 2 * unit), f"IPP {text}", fill=0)
    return label


LABELS = {"code128": code128_label, "qr": qr_label}
# Who scans each label: a clinician of the demo's Plastic surgery each, as each creates
# keys on a browser of their own in the module's one cluster.
SCANNERS = {"code128": "surgeon_bob", "qr": "nurse_alice"}


def y4m(image: Image.Image, path: Path, frames: int = 10) -> None:
    """A YUV4MPEG2 4:2:0 file of the still: what --use-file-for-fake-video-capture plays, looped."""
    grey = image.convert("L")
    luma = grey.tobytes()
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)


@pytest.fixture(scope="module", params=list(LABELS))
def label_browser(
    request: pytest.FixtureRequest, browser: Browser
) -> Iterator[tuple[Browser, str]]:
    """A second Chromium from the same Playwright, its fake camera filming the label."""
    with tempfile.TemporaryDirectory(prefix="rounds-label-") as folder:
        video = Path(folder) / "label.y4m"
        y4m(LABELS[request.param](IPP), video)
        launched = browser.browser_type.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={video}"],
            headless=True,
        )
        yield launched, SCANNERS[request.param]
        launched.close()


def test_the_label_is_read_by_the_javascript_decoder(
    label_browser: tuple[Browser, str], cluster: LiveCluster
):
    ward = Ward(cluster)
    bob = ward.open(*label_browser)
    errors: list[str] = []
    bob.page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        create_keys(bob, screenshot=None)
        page = bob.page
        assert page.evaluate("() => 'BarcodeDetector' in window") is False
        page.get_by_role("link", name="Find a patient").click()
        page.get_by_role("button", name="Scan the label").click()
        expect(page.get_by_label("IPP")).to_have_value(IPP, timeout=15_000)
        # The decoder that read it, kept on the scan area: the video may be gone already.
        expect(page.locator("#scan-area")).to_have_attribute("data-engine", "zxing")
        result = page.locator("a[href^='#/p/']")
        expect(result).to_have_count(1)
        expect(result).to_contain_text(f"IPP {IPP}")
        expect(page.locator("video.scanner")).to_have_count(0)  # the camera stopped on a read
        shot(page, "60-label-scanned-phone")
        result.click()
        expect(page.locator("main")).to_contain_text(f"IPP {IPP}")
        assert not errors, errors
    finally:
        bob.context.close()
