"""Releasing a patient's access report: one page as JSON, or the whole as CSV or PDF.

Each release is audited under its case (`case.released`, what
`access_report`) and committed before the trail is read, as every other
release (compliance/release.py). What the report holds is built in
compliance/access_report.py; who may ask is decided in rooms/access.py.
"""

import csv
import io
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, TableStyle

from compliance import access_report
from compliance.models import Case
from compliance.release import do_record_release
from patients.models import Patient
from rooms import access

FORMATS = ("json", "csv", "pdf")
CSV_COLUMNS = (
    "entry",
    "at",
    "user_id",
    "username",
    "name",
    "role",
    "action",
    "what",
    "object",
    "department",
    "case",
    "certainty",
    "seal",
)


def check_access_report(
    actor: Any, case_id: int, patient_id: int, after: int = 0, limit: int = 200
) -> dict[str, Any]:
    """One page of the report, oldest first; `next_after` asks for the next.

    Raises:
        Forbidden: not a compliance officer.
        NotFound: not the caller's case, or a case not opened on this patient.
        CaseClosed, CaseNotApproved: the case releases nothing (now).
    """
    case = access.access_case_patient(actor, case_id, patient_id)
    after, limit = max(0, after), max(1, min(limit, access_report.PAGE_MAX))
    do_record_access_report(actor, case, patient_id, "json", {"after": after, "limit": limit})
    rows, next_after = access_report.page(case, patient_id, after, limit)
    return {**header(case, patient_id), "entries": rows, "next_after": next_after}


def check_access_export(actor: Any, case_id: int, patient_id: int, fmt: str) -> tuple[bytes, str]:
    """The whole report as CSV or PDF: (content, content type). Same refusals as above."""
    case = access.access_case_patient(actor, case_id, patient_id)
    do_record_access_report(actor, case, patient_id, fmt, {})
    head = header(case, patient_id)
    rows = access_report.entries(case, patient_id)
    if fmt == "csv":
        return render_csv(head, rows), "text/csv; charset=utf-8"
    return render_pdf(head, rows), "application/pdf"


def do_record_access_report(
    actor: Any, case: Case, patient_id: int, fmt: str, data: dict[str, Any]
) -> None:
    """`case.released` naming the patient, committed before the trail is read.
    Assumes access_case_patient allowed it."""
    do_record_release(
        actor,
        case,
        "access_report",
        object_type="patient",
        object_id=patient_id,
        data={"patient_id": patient_id, "format": fmt, **data},
    )


def header(case: Case, patient_id: int) -> dict[str, Any]:
    """Whom the report is about, under which case, over which dates."""
    patient = Patient.objects.get(pk=patient_id)
    return {
        "case": {"id": case.pk, "reference": case.reference},
        "patient": {
            "id": patient.pk,
            "ipp": patient.ipp,
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "birth_date": patient.birth_date.isoformat(),
        },
        "date_from": _iso(case.date_from),
        "date_to": _iso(case.date_to),
        "generated_at": _iso(timezone.now()),
    }


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def _cells(row: dict[str, Any]) -> list[str]:
    who = row["who"] or {}
    seal = row["seal"]
    department = row["department"]
    return [
        str(row["id"]),
        row["at"],
        str(who.get("id", "")),
        who.get("username", ""),
        who.get("name", ""),
        who.get("role", ""),
        row["action"],
        row["what"],
        row["object"]["label"],
        "" if department is None else department["name"],
        "" if row["case"] is None else str(row["case"]),
        row["certainty"],
        "" if seal is None else f"{seal['seq']}:{seal['hash']}",
    ]


def _range(head: dict[str, Any]) -> str:
    start = head["date_from"] or "the first entry"
    end = head["date_to"] or f"{head['generated_at']} (when generated)"
    return f"from {start} to {end}"


def _title(head: dict[str, Any]) -> list[str]:
    p = head["patient"]
    return [
        "Access report",
        f"Patient: {p['family_name'].upper()} {p['given_name']}, born {p['birth_date']}, "
        f"IPP {p['ipp']} (id {p['id']})",
        f"Case: {head['case']['reference']} (id {head['case']['id']})",
        f"Accesses {_range(head)}",
    ]


def render_csv(head: dict[str, Any], rows: Any) -> bytes:
    """The header as `#` lines, then one line per entry; a spreadsheet opens it as is."""
    out = io.StringIO()
    for line in _title(head):
        out.write(f"# {line}\n")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        # A cell starting with = + - @ would be a formula to a spreadsheet: never here.
        writer.writerow([_inert(cell) for cell in _cells(row)])
    return out.getvalue().encode()


def _inert(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


PDF_COLUMNS = (0, 1, 4, 5, 7, 8, 10, 11)  # entry, at, name, role, what, object, case, certainty
PDF_WIDTHS = (14, 40, 32, 26, 70, 56, 12, 16)


def render_pdf(head: dict[str, Any], rows: Any) -> bytes:
    """A landscape A4 table, the header on the first page and the patient on every one."""
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    title = _title(head)
    story: list[Any] = [Paragraph(escape(title[0]), styles["Title"])]
    story += [Paragraph(escape(line), styles["BodyText"]) for line in title[1:]]
    story += [
        Paragraph(
            escape(
                "Read from the hash-chained audit trail. 'possible': a photo search that "
                "recorded no patient, made while the patient's photos were within its reach."
            ),
            small,
        ),
        Spacer(1, 4 * mm),
    ]
    names = [CSV_COLUMNS[i] for i in PDF_COLUMNS]
    table = [[Paragraph(name, small) for name in names]]
    for row in rows:
        cells = _cells(row)
        table.append([Paragraph(escape(cells[i]), small) for i in PDF_COLUMNS])
    if len(table) == 1:
        story.append(Paragraph("No access recorded.", styles["BodyText"]))
    else:
        grid = LongTable(table, colWidths=[w * mm for w in PDF_WIDTHS], repeatRows=1)
        grid.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(grid)
    out = io.BytesIO()
    footer = title[1]

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(12 * mm, 8 * mm, f"{footer} — {title[2]} — page {doc.page}")
        canvas.restoreState()

    document = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=f"Access report, case {head['case']['reference']}",
    )
    document.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()
