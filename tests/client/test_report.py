"""client/report.py: the follow-up PDF, built from local data (no server)."""

import io
import re
from datetime import UTC, datetime, timedelta, timezone

from PIL import Image

from client.report import ReportPhoto, build_report

PATIENT = {
    "id": 7,
    "ipp": "IPP-0042137",
    "family_name": "Lefebvre",
    "given_name": "Anne",
    "birth_date": "1961-03-14",
}
PARIS = timezone(timedelta(hours=1))


def jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def photos() -> list[ReportPhoto]:
    return [
        ReportPhoto(
            jpeg((1200, 900), (200, 40, 40)),
            datetime(2026, 11, 23, 8, 15, tzinfo=PARIS),
            "Bob Durand",
            ["Hand", "Wound follow-up"],
            department="Plastic surgery",
            caption="Day 3, clean edges",
        ),
        ReportPhoto(jpeg((300, 400), (40, 200, 40)), None, "Alice Martin", []),
        ReportPhoto(
            jpeg((3000, 4000), (40, 40, 200)),
            # 16:05 UTC is 17:05 in Paris: every time is printed on the institution's clock.
            datetime(2026, 11, 20, 16, 5, tzinfo=UTC),
            "Erin Petit",
            ["Pre-operative"],
            note="Annotation of photo 3.",
            department="Vascular surgery",
        ),
    ]


def page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def test_the_report_is_a_pdf_naming_the_patient_on_every_page_with_each_photo():
    pdf = build_report(
        PATIENT,
        photos(),
        zone="Europe/Paris",
        generated_at=datetime(2026, 11, 24, 9, 0, tzinfo=UTC),
        compress=False,
    )
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    pages = page_count(pdf)
    assert pages >= 2  # three photos, at most two fit on an A4 page
    assert pdf.count(b"IPP IPP-0042137") >= pages + 1  # the title block and each page's header
    assert b"LEFEBVRE Anne" in pdf and b"born 14/03/1961" in pdf  # dd/mm/yyyy (en-GB)
    assert len(re.findall(rb"/Subtype /Image", pdf)) == 3
    assert f"Page {pages} of {pages}".encode() in pdf
    # One zone, the institution's, named once; no offset or "UTC" beside a time.
    assert pdf.count(b"Times in Europe/Paris") == 1
    assert b"Generated on 24/11/2026 at 10:00 by Rounds" in pdf
    assert b"+0100" not in pdf and b"UTC" not in pdf
    for text in (b"By Bob Durand, Plastic surgery", b"By Alice Martin", b"By Erin Petit, Vascular"):
        assert text in pdf
    assert b"Caption: Day 3, clean edges" in pdf and b"Wound follow-up" in pdf
    # Oldest first; the undated photo last.
    first, second, undated = (
        pdf.index(b"taken on 20/11/2026 at 17:05"),
        pdf.index(b"taken on 23/11/2026 at 08:15"),
        pdf.index(b"capture date unknown"),
    )
    assert first < second < undated


def test_a_compressed_report_is_smaller_and_still_a_pdf():
    plain = build_report(PATIENT, photos()[:1], zone="Europe/Paris", compress=False)
    packed = build_report(PATIENT, photos()[:1], zone="Europe/Paris")
    assert packed.startswith(b"%PDF-") and page_count(packed) == 1
    assert len(packed) < len(plain)


def test_names_with_markup_characters_are_printed_as_they_are():
    odd = PATIENT | {"family_name": "O'Brien <b>&", "given_name": "Zoé"}
    photo = ReportPhoto(jpeg((50, 50), (0, 0, 0)), None, "a<b>c")
    pdf = build_report(odd, [photo], zone="Europe/Paris", compress=False)
    assert pdf.startswith(b"%PDF-") and page_count(pdf) == 1
