"""The follow-up report: every photo of a patient, oldest first, in one PDF (reportlab).

The PDF is made on the clinician's machine from photos it decrypts itself;
the server only learns that a report was generated, and for whom
(`POST /api/library/reports`, audited as `report.generated`), never its
content. Like the paper form it replaces, every page names the patient
(family name, given name, birth date, IPP) so a loose page cannot be filed
in the wrong record, and each photo carries its capture date, the
caregiver who took it (by name, not login), their department, the caption
and the keywords. Every time is in one zone, the institution's (the
library's `time_zone`), named once on the report: a ward reads its own
clock, and a report never mixes offsets.

The report speaks English or French (`language`, client/i18n.py): every
fixed text is looked up in the client's catalogue, dates are dd/mm/yyyy
and times 24-hour in both. What people wrote (captions), the institution's
data (names, departments, keyword labels) and the IPP are printed as they are.
"""

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from gettext import NullTranslations
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from client.errors import RoundsClientError
from client.i18n import SOURCE_LANGUAGE, date_text, time_text, translation

if TYPE_CHECKING:
    from client.sdk import RoundsClient

MARGIN = 18 * mm
HEADER_SPACE = 16 * mm
FOOTER_SPACE = 12 * mm
# Room left under an image on its page for its caption lines.
CAPTION_SPACE = 40 * mm


@dataclass(frozen=True)
class ReportPhoto:
    """One decrypted photo and what the report says about it."""

    image: bytes
    captured_at: datetime | None
    caregiver: str
    keywords: Sequence[str] = ()
    note: str = ""
    department: str = ""
    caption: str = ""
    # The attachment id of the photo this one annotates, printed in the report's language.
    annotates: int | None = None


@dataclass
class _Page:
    """What every page shows besides the photos."""

    patient_line: str
    generated: str
    t: NullTranslations
    saved: list[dict[str, Any]] = field(default_factory=list)


def _birth_date(value: Any) -> str:
    """The API's ISO date as the report writes dates; anything else as it came."""
    try:
        return date_text(date.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def patient_line(patient: dict[str, Any], t: NullTranslations) -> str:
    # Translators: printed atop every page; IPP is the patient's hospital number.
    return t.gettext("%(family)s %(given)s — born %(birth_date)s — IPP %(ipp)s") % {
        "family": str(patient.get("family_name", "")).upper(),
        "given": patient.get("given_name", ""),
        "birth_date": _birth_date(patient.get("birth_date", "?")),
        "ipp": patient.get("ipp", "?"),
    }


def _numbered_canvas(page: _Page) -> type[Canvas]:
    """A canvas that holds each page back until the end, to print "page N of M" on each."""

    class NumberedCanvas(Canvas):
        def showPage(self) -> None:
            page.saved.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # reportlab's own, not in its stubs

        def save(self) -> None:
            total = len(page.saved)
            for number, state in enumerate(page.saved, 1):
                self.__dict__.update(state)
                self._decorate(number, total)
                Canvas.showPage(self)
            Canvas.save(self)

        def _decorate(self, number: int, total: int) -> None:
            width, height = self._pagesize  # type: ignore[attr-defined]  # as _startPage
            self.setFont("Helvetica-Bold", 10)
            self.drawString(MARGIN, height - MARGIN + 4 * mm, page.patient_line)
            self.line(MARGIN, height - MARGIN + 2 * mm, width - MARGIN, height - MARGIN + 2 * mm)
            self.setFont("Helvetica", 8)
            self.drawString(MARGIN, MARGIN - 8 * mm, page.generated)
            numbered = page.t.gettext("Page %(number)s of %(total)s")
            self.drawRightString(
                width - MARGIN, MARGIN - 8 * mm, numbered % {"number": number, "total": total}
            )

    return NumberedCanvas


def _fitted(data: bytes, max_width: float, max_height: float) -> Image:
    width, height = ImageReader(io.BytesIO(data)).getSize()
    scale = min(max_width / width, max_height / height, 1.0 if width > 600 else 2.0)
    return Image(io.BytesIO(data), width=width * scale, height=height * scale)


def on_clock(moment: datetime, zone: str) -> datetime:
    """`moment` on the institution's clock (a naive one is taken as the machine's local time)."""
    return moment.astimezone(ZoneInfo(zone))


def local_time(moment: datetime, zone: str) -> str:
    """`moment` on the institution's clock, dd/mm/yyyy HH:MM, without offset: the zone is
    named once beside."""
    here = on_clock(moment, zone)
    return f"{date_text(here)} {time_text(here)}"


def _heading(number: int, moment: datetime | None, zone: str, t: NullTranslations) -> str:
    if moment is None:
        return t.gettext("Photo %(number)s — capture date unknown") % {"number": number}
    here = on_clock(moment, zone)
    return t.gettext("Photo %(number)s — taken on %(date)s at %(time)s") % {
        "number": number,
        "date": date_text(here),
        "time": time_text(here),
    }


def _summary(count: int, zone: str, t: NullTranslations) -> str:
    """How many photos, in which order, and the one zone every time is in: two sentences."""
    if count:
        counted = t.ngettext("%(count)s photo.", "%(count)s photos, oldest first.", count)
        photos = counted % {"count": count}
    else:
        photos = t.gettext("No photos.")
    # Translators: zone is an IANA time zone name, such as Europe/Paris.
    times = t.gettext("Times in %(zone)s.") % {"zone": zone}
    return f"{photos} {times}"


def _caption(photo: ReportPhoto, t: NullTranslations) -> list[str]:
    """The lines under a photo, as plain text (escaped by the caller)."""
    if photo.department:
        # Translators: who took the photo (a caregiver's name), and their department's name.
        by = t.gettext("By %(name)s, %(department)s") % {
            "name": photo.caregiver,
            "department": photo.department,
        }
    else:
        by = t.gettext("By %(name)s") % {"name": photo.caregiver}
    if photo.keywords:
        keywords = t.gettext("Keywords: %(keywords)s") % {"keywords": ", ".join(photo.keywords)}
    else:
        keywords = t.gettext("Keywords: none")
    lines = [by, keywords]
    if photo.caption:
        lines.append(t.gettext("Caption: %(caption)s") % {"caption": photo.caption})
    return lines


def _notes(photo: ReportPhoto, t: NullTranslations) -> list[str]:
    notes = []
    if photo.annotates is not None:
        notes.append(t.gettext("Annotation of photo %(number)s.") % {"number": photo.annotates})
    if photo.note:
        notes.append(photo.note)
    return notes


def build_report(
    patient: dict[str, Any],
    photos: Sequence[ReportPhoto],
    *,
    zone: str,
    generated_at: datetime | None = None,
    compress: bool = True,
    language: str = SOURCE_LANGUAGE,
) -> bytes:
    """The report as PDF bytes: photos in capture-date order (undated ones last).

    `zone`: the institution's IANA time zone, every time's. `compress=False`
    leaves the page streams readable, for tests. `language`: "en" or "fr"
    (the caller chooses; the `rounds` command reads the environment).

    Raises:
        ValueError: a language the client does not speak.
    """
    t = translation(language)
    generated = on_clock(generated_at or datetime.now(UTC), zone)
    footer = t.gettext("Generated on %(date)s at %(time)s by Rounds") % {
        "date": date_text(generated),
        "time": time_text(generated),
    }
    page = _Page(patient_line(patient, t), footer, t)
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN + HEADER_SPACE,
        bottomMargin=MARGIN + FOOTER_SPACE,
        title=t.gettext("Follow-up report, IPP %(ipp)s") % {"ipp": patient.get("ipp", "")},
        author="Rounds",
        pageCompression=1 if compress else 0,
        invariant=1,
    )
    styles = getSampleStyleSheet()
    story: list[Any] = [
        Paragraph(escape(t.gettext("Photo follow-up report")), styles["Title"]),
        Paragraph(escape(page.patient_line), styles["Heading3"]),
        Paragraph(escape(_summary(len(photos), zone, t)), styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    ordered = sorted(
        photos,
        key=lambda p: (p.captured_at is None, p.captured_at.timestamp() if p.captured_at else 0),
    )
    for number, photo in enumerate(ordered, 1):
        # Markup stays out of the catalogue: each line is translated whole, then escaped.
        heading = escape(_heading(number, photo.captured_at, zone, t))
        caption = [
            Paragraph(f"<b>{heading}</b>", styles["Normal"]),
            *(Paragraph(escape(line), styles["Normal"]) for line in _caption(photo, t)),
            *(Paragraph(escape(line), styles["Italic"]) for line in _notes(photo, t)),
        ]
        image = _fitted(photo.image, doc.width, doc.height - CAPTION_SPACE)
        story.append(KeepTogether([image, Spacer(1, 2 * mm), *caption, Spacer(1, 8 * mm)]))
    doc.build(story, canvasmaker=_numbered_canvas(page))
    return out.getvalue()


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else value


@dataclass
class Collected:
    """A patient's photos for the report, and the zone the library gives its times in."""

    patient: dict[str, Any]
    photos: list[ReportPhoto]
    zone: str


async def library_listing(
    client: "RoundsClient", **filters: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every library item matching the filters, and the institution's time zone."""
    items: list[dict[str, Any]] = []
    zone = "UTC"
    async for page in client.library_pages(**filters):
        zone = page.get("time_zone") or zone
        items.extend(page.get("items", []))
    return items, zone


def report_photo(
    item: dict[str, Any],
    body: dict[str, Any],
    entry: dict[str, Any],
    image: bytes,
    labels: dict[str, str],
) -> ReportPhoto:
    """What the report prints of one library item, its opened message body and photo entry.

    The caregiver is named as colleagues know them (the library's display_name),
    never by login; the department by its name.
    """
    sender = item.get("sender") or {}
    return ReportPhoto(
        image=image,
        captured_at=parse_time(entry.get("captured_at")),
        caregiver=sender.get("display_name") or sender.get("username") or "?",
        keywords=[labels.get(code, code) for code in entry.get("keywords", [])],
        annotates=entry.get("annotates") or None,
        department=str(item.get("department_name") or ""),
        caption=str(body.get("text") or ""),
    )


async def collect_patient_photos(client: "RoundsClient", ipp: str) -> Collected:
    """Every photo of the patient the caller may see, decrypted, with what the report prints.

    Raises RoundsClientError: `not_found` (no photo of that IPP in the
    caller's departments), or what opening and downloading raise.
    """
    items, zone = await library_listing(client, ipp=ipp)
    if not items:
        raise RoundsClientError("not_found", f"No photo of patient IPP {ipp} in your departments.")
    labels = {k["code"]: k["label"] for k in await client.photo_keywords()}
    bodies: dict[Any, dict[str, Any]] = {}
    photos = []
    for item in items:
        message = item["message"]
        if message["id"] not in bodies:
            bodies[message["id"]] = await client.open_photo_message(
                message, department=_id(item["department"])
            )
        body = bodies[message["id"]]
        (entry,) = [p for p in body["photos"] if p["upload"] == str(item["upload"])]
        image = await client.download_photo(entry)
        photos.append(report_photo(item, body, entry, image, labels))
    return Collected(items[0]["patient"], photos, zone)


async def write_patient_report(
    client: "RoundsClient",
    ipp: str,
    out: str | Path,
    *,
    generated_at: datetime | None = None,
    compress: bool = True,
    language: str = SOURCE_LANGUAGE,
) -> dict[str, Any]:
    """Build the patient's report into `out`, in `language`, then let the server audit it.

    Returns {"patient", "photos", "path", "zone"}.
    """
    found = await collect_patient_photos(client, ipp)
    pdf = build_report(
        found.patient,
        found.photos,
        zone=found.zone,
        generated_at=generated_at,
        compress=compress,
        language=language,
    )
    path = Path(out)
    path.write_bytes(pdf)  # noqa: ASYNC240 (a few megabytes, once)
    await client.record_report(found.patient["id"], len(found.photos))
    return {
        "patient": found.patient,
        "photos": len(found.photos),
        "path": str(path),
        "zone": found.zone,
    }
