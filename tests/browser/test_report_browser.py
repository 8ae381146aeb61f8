"""The follow-up report made in the browser (docs/library.md, The follow-up report).

Plastic surgery: `head_carol` admits `surgeon_bob`, who posts a photo of a
patient with keywords and a caption, then presses Follow-up report on the
patient's screen. The PDF is made on the device from the photo decrypted
there and arrives as a download; its text names the patient (family name,
given name, birth date, IPP), Bob by his display name (not his login), the
department, the caption, the keywords and the one zone, the institution's.
The server recorded `report.generated` with the photo count, and no request
carried the PDF.
"""

import re
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from django.utils import translation
from playwright.sync_api import Request, expect

from rounds import catalogue
from tests.browser.support import (
    close_ward,
    phone_photo,
    plastic_surgery_ward,
)
from tests.live.sdk import as_json, query
from tests.live.servers import LiveCluster

pytestmark = [pytest.mark.live, pytest.mark.timeout(300)]

# 1 July, 10:00 UTC is 12:00 in Paris (summer time): the report must print 12:00, no offset.
TAKEN = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
CAPTION = "Graft take at day five"


def pdf_text(pdf: bytes) -> str:
    """The text a PDF draws: its Flate streams inflated, each shown string decoded.

    pdf-lib writes the standard fonts' text as hex strings in WinAnsi (`<48656C6C6F> Tj`).
    """
    shown = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            content = zlib.decompress(stream)
        except zlib.error:
            continue  # an image
        for hex_text in re.findall(rb"<([0-9A-Fa-f]*)> Tj", content):
            shown.append(bytes.fromhex(hex_text.decode()).decode("cp1252"))
    return "\n".join(shown)


@pytest.fixture(scope="module")
def ward(browser, cluster: LiveCluster):
    ward = plastic_surgery_ward(browser, cluster, ("surgeon_bob",))
    yield ward
    close_ward(ward)


def test_the_report_is_made_on_the_device_and_its_making_audited(ward):
    bob = ward.people["surgeon_bob"].page
    errors: list[str] = []
    bob.on("pageerror", lambda error: errors.append(str(error)))
    bob.get_by_role("link", name="Find a patient").click()
    bob.get_by_label("Family name (start of)").fill("Le")
    bob.get_by_role("button", name="Search").click()
    bob.locator("a[href^='#/p/']").first.click()
    patient_id = int(bob.url.split("/")[-1])
    bob.get_by_label("Subject").fill("Graft follow-up")
    bob.get_by_role("button", name="Open conversation").click()
    expect(bob.locator("#retention-banner")).to_be_visible()
    bob.get_by_role("button", name="Add photos").click()
    sheet = bob.get_by_role("dialog", name="Add photos")
    bob.get_by_label("Choose photos").set_input_files(
        {"name": "IMG_3001.jpg", "mimeType": "image/jpeg", "buffer": phone_photo(TAKEN, (800, 600))}
    )
    expect(sheet.locator(".preview")).to_have_count(1)
    sheet.get_by_label("Hand", exact=True).check()
    sheet.get_by_label("Care only").check()  # asked, never preset
    sheet.get_by_label("Caption (optional, encrypted)").fill(CAPTION)
    sheet.get_by_role("button", name="Send photo").click()
    expect(sheet).to_have_count(0, timeout=30_000)

    uploads: list[bytes] = []

    def sent(request: Request) -> None:
        if request.method != "GET":
            uploads.append(request.post_data_buffer or b"")

    bob.on("request", sent)
    bob.goto(f"/#/p/{patient_id}")
    with bob.expect_download() as waiting:
        bob.get_by_role("button", name="Follow-up report").click()
    download = waiting.value
    pdf = Path(download.path()).read_bytes()
    assert download.suggested_filename.startswith("follow-up-")
    expect(bob.locator("#patient-report-status")).to_contain_text(
        "Report of 1 photo made on this device"
    )

    ((ipp, family, given, born),) = query(
        ward.cluster,
        "SELECT ipp, family_name, given_name, birth_date FROM patients_patient WHERE id = ?",
        (patient_id,),
    )
    assert pdf.startswith(b"%PDF-") and b"/Subtype /Image" in pdf
    text = pdf_text(pdf)
    # Days and times the locale's way (en-GB in these tests): dd/mm/yyyy.
    born = date.fromisoformat(born) if isinstance(born, str) else born  # text on SQLite
    patient_line = f"{family.upper()} {given} — born {born:%d/%m/%Y} — IPP {ipp}"
    assert text.count(patient_line) >= 2, text  # the title block and every page's header
    assert "Photo 1 — taken 01/07/2026, 12:00" in text, text
    assert "By Dr Bob Martin, Plastic surgery" in text and "surgeon_bob" not in text
    assert f"Caption: {CAPTION}" in text and "Keywords: Hand" in text
    assert text.count("Times in Europe/Paris") == 1 and "+02:00" not in text
    assert "Page 1 of 1" in text

    # Audited as the terminal's report is; the document itself never left the browser.
    [(data,)] = query(
        ward.cluster,
        "SELECT data FROM audit_auditevent WHERE action = 'report.generated' AND object_id = ?",
        (str(patient_id),),
    )
    assert as_json(data) == {"photos": 1}
    assert uploads and not any(b"%PDF" in body for body in uploads)
    assert not errors


def test_in_french_the_report_and_the_servers_refusals_speak_french(ward):
    """Bob picks Français on his profile: the switch's cookie reaches the server too, and
    the report of the photo he posted above, made on the device, is in French, French
    characters and spaces drawn."""
    fr = catalogue.load("fr")
    bob = ward.people["surgeon_bob"].page
    errors: list[str] = []
    bob.on("pageerror", lambda error: errors.append(str(error)))
    bob.goto("/#/me")
    bob.locator("#language").select_option("fr")
    expect(bob.locator("html")).to_have_attribute("lang", "fr")
    expect(bob.get_by_role("button", name=fr["Sign out"])).to_be_visible()
    refusal = bob.evaluate("async () => (await fetch('/api/departments/999999/threads')).json()")
    with translation.override("fr"):
        said = translation.gettext("Department not found.")
    assert refusal == {"code": "not_found", "message": said} and said != "Department not found."

    bob.goto("/#/")
    bob.get_by_role("link", name=fr["Find a patient"]).click()
    bob.get_by_label(fr["Family name (start of)"]).fill("Le")
    bob.get_by_role("button", name=fr["Search"]).click()
    bob.locator("a[href^='#/p/']").first.click()
    patient_id = int(bob.url.split("/")[-1])
    with bob.expect_download() as waiting:
        bob.get_by_role("button", name=fr["Follow-up report"]).click()
    text = pdf_text(Path(waiting.value.path()).read_bytes()).replace("\xa0", " ")

    ((ipp, family, given, born),) = query(
        ward.cluster,
        "SELECT ipp, family_name, given_name, birth_date FROM patients_patient WHERE id = ?",
        (patient_id,),
    )
    born = date.fromisoformat(born) if isinstance(born, str) else born

    def said(msgid: str, **values: object) -> str:
        return str(fr[msgid]).format(**values).replace("\xa0", " ")

    patient = f"{family.upper()} {given}"
    assert (
        said(
            "{patient} — born {date} — IPP {ipp}", patient=patient, date=f"{born:%d/%m/%Y}", ipp=ipp
        )
        in text
    ), text
    assert said("Photo follow-up report") in text
    assert (
        said("By {name}, {department}", name="Dr Bob Martin", department="Plastic surgery") in text
    )
    assert said("Caption: {caption}", caption=CAPTION) in text
    assert said("Page {page} of {pages}", page=1, pages=1) in text
    assert said("Photo {number} — taken {time}", number=1, time="").strip() in text
    assert "Page 1 of 1" not in text and "Caption:" not in text
    bob.goto("/#/me")
    bob.locator("#language").select_option("en")  # as the module found it
    expect(bob.locator("html")).to_have_attribute("lang", "en")
    assert not errors
