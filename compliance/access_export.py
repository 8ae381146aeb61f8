"""Releasing a patient's access report: one page as JSON, or the whole as CSV or PDF.

Each release is audited under its case (`case.released`, what
`access_report`) and committed before the trail is read, as every other
release (compliance/release.py). What the report holds is built in
compliance/access_report.py; who may ask is decided in rooms/access/.
"""

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any
from xml.sax.saxutils import escape

from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from accounts.models import User
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
# The column names the PDF shows (the CSV keeps CSV_COLUMNS, for the programs that read it).
# Translators: the columns of a patient's access report.
PDF_NAMES = (
    gettext_noop("entry"),
    gettext_noop("at"),
    gettext_noop("user_id"),
    gettext_noop("username"),
    gettext_noop("name"),
    gettext_noop("role"),
    gettext_noop("action"),
    gettext_noop("what"),
    gettext_noop("object"),
    gettext_noop("department"),
    gettext_noop("case"),
    gettext_noop("certainty"),
    gettext_noop("seal"),
)
CSV_PIECE = 64 * 1024  # characters of CSV written before they are sent
PDF_ROWS = 100  # rows per table of the PDF: what reportlab lays out at once
PDF_SPOOL = 1024 * 1024  # bytes of PDF held in memory before the file spills to disk


def check_access_report(
    actor: User, case_id: int, patient_id: int, after: int = 0, limit: int = 200
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


def check_access_csv(actor: User, case_id: int, patient_id: int) -> Iterator[bytes]:
    """The whole report as CSV, in pieces as the trail is read. Same refusals as above,
    raised by this call: the case is checked, the release committed and the patient's
    footprint read before it returns, the entries only as the pieces are asked for."""
    case = access.access_case_patient(actor, case_id, patient_id)
    do_record_access_report(actor, case, patient_id, "csv", {})
    # Read only now: the entry above is committed.
    return render_csv(header(case, patient_id), access_report.entries(case, patient_id))


def check_access_pdf(actor: User, case_id: int, patient_id: int) -> IO[bytes]:
    """The whole report as PDF, in a temporary file positioned at its start; the caller
    closes it. Same refusals as above."""
    case = access.access_case_patient(actor, case_id, patient_id)
    do_record_access_report(actor, case, patient_id, "pdf", {})
    head = header(case, patient_id)
    # Not a `with`: the file outlives this call, the response closes it once sent.
    out = tempfile.SpooledTemporaryFile(max_size=PDF_SPOOL)  # noqa: SIM115
    try:
        render_pdf(head, access_report.entries(case, patient_id), out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def do_record_access_report(
    actor: User, case: Case, patient_id: int, fmt: str, data: dict[str, Any]
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


def _title(head: dict[str, Any]) -> list[str]:
    """The report's heading lines, in the active language (the request's)."""
    p, case = head["patient"], head["case"]
    start = head["date_from"] or _("the first entry")
    end = head["date_to"] or _("%(at)s (when generated)") % {"at": head["generated_at"]}
    return [
        _("Access report"),
        _("Patient: %(family)s %(given)s, born %(birth)s, IPP %(ipp)s (id %(id)s)")
        % {
            "family": p["family_name"].upper(),
            "given": p["given_name"],
            "birth": p["birth_date"],
            "ipp": p["ipp"],
            "id": p["id"],
        },
        _("Case: %(reference)s (id %(id)s)") % {"reference": case["reference"], "id": case["id"]},
        _("Accesses from %(start)s to %(end)s") % {"start": start, "end": end},
    ]


def render_csv(head: dict[str, Any], rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The header as `#` lines, then one line per entry, then a `#` line with the count
    that marks the end; a spreadsheet opens it as is. Yielded in pieces of about
    CSV_PIECE characters, each made of whole lines."""
    # The pieces are made as the response is sent, past the request's middleware:
    # the language is the one active now.
    return _csv_pieces(_title(head), rows, translation.get_language())


def _csv_pieces(title: list[str], rows: Iterable[dict[str, Any]], lang: str) -> Iterator[bytes]:
    out = io.StringIO()
    for line in title:
        out.write(f"# {line}\n")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        # A cell starting with = + - @ would be a formula to a spreadsheet: never here.
        writer.writerow([_inert(cell) for cell in _cells(row)])
        count += 1
        if out.tell() >= CSV_PIECE:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    # Streamed, a report that fails half-way has already answered 200: the last line
    # is what tells a whole file from a cut one.
    with translation.override(lang):
        end = ngettext(
            "End of the report: %(count)s entry", "End of the report: %(count)s entries", count
        )
    out.write(f"# {end % {'count': count}}\n")
    yield out.getvalue().encode()


def _inert(cell: str) -> str:
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell


PDF_COLUMNS = (0, 1, 4, 5, 7, 8, 10, 11)  # entry, at, name, role, what, object, case, certainty
PDF_WIDTHS = (14, 40, 32, 26, 70, 56, 12, 16)
GRID = [
    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
]
HEADS = [("BACKGROUND", (0, 0), (-1, 0), colors.lightgrey)]


class _ReportTemplate(BaseDocTemplate):
    """Takes the table from `tables` one at a time, as each is reached: the story never
    holds more than one table of PDF_ROWS rows, whatever the report's length."""

    def __init__(self, out: IO[bytes], tables: Iterator[Flowable], **kw: Any) -> None:
        super().__init__(out, **kw)
        self.tables = tables
        # Stays last in the story until `tables` is spent; the next table goes before it.
        self.more = Spacer(0, 0)

    def filterFlowables(self, flowables: list[Flowable]) -> None:
        # reportlab's hook, called before each flowable of the story is laid out.
        if flowables and flowables[0] is self.more:
            table = next(self.tables, None)
            if table is not None:
                flowables.insert(0, table)


def render_pdf(head: dict[str, Any], rows: Iterable[dict[str, Any]], out: IO[bytes]) -> None:
    """A landscape A4 table into `out`, the header on the first page, the column names
    at the top of every page and the patient at the foot of every one."""
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    title = _title(head)
    story: list[Any] = [Paragraph(escape(title[0]), styles["Title"])]
    story += [Paragraph(escape(line), styles["BodyText"]) for line in title[1:]]
    story += [
        Paragraph(
            escape(
                _(
                    "Read from the hash-chained audit trail. 'possible': a photo search that "
                    "recorded no patient, made while the patient's photos were within its reach."
                )
            ),
            small,
        ),
        Spacer(1, 4 * mm),
    ]
    names = [Paragraph(_(PDF_NAMES[i]), small) for i in PDF_COLUMNS]
    document = _ReportTemplate(
        out,
        _tables(rows, names, small, styles["BodyText"]),
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=14 * mm,
        title=_("Access report, case %(reference)s") % {"reference": head["case"]["reference"]},
    )
    story.append(document.more)
    # Only the first table begins with the column names, and a split table repeats its
    # own first row alone: every later page's template draws them above its frame.
    heads = _grid([names], HEADS)
    heads_height = heads.wrap(document.width, document.height)[1]
    pad = 6  # a Frame's default padding
    x, y, width, height = (
        document.leftMargin,
        document.bottomMargin,
        document.width,
        document.height,
    )
    footer = f"{title[1]} — {title[2]} — " + _("page %(number)s")

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(12 * mm, 8 * mm, footer % {"number": doc.page})
        canvas.restoreState()

    def on_later_page(canvas: Any, doc: Any) -> None:
        on_page(canvas, doc)
        heads.drawOn(canvas, x + pad, y + height - pad - heads_height)

    document.addPageTemplates(
        [
            PageTemplate(
                "first",
                [Frame(x, y, width, height)],
                onPage=on_page,
                pagesize=document.pagesize,
                autoNextPageTemplate="later",
            ),
            PageTemplate(
                "later",
                [Frame(x, y, width, height - heads_height)],
                onPage=on_later_page,
                pagesize=document.pagesize,
            ),
        ]
    )
    document.build(story)


def _tables(
    rows: Iterable[dict[str, Any]], names: list[Paragraph], small: Any, body: Any
) -> Iterator[Flowable]:
    """The entries as tables of PDF_ROWS rows, made as the rows are read; the first
    begins with the column names."""
    block: list[list[Paragraph]] = [names]
    style = HEADS
    for row in rows:
        cells = _cells(row)
        block.append([Paragraph(escape(cells[i]), small) for i in PDF_COLUMNS])
        if len(block) >= PDF_ROWS:
            yield _grid(block, style)
            block, style = [], []
    if block == [names]:
        yield Paragraph(_("No access recorded."), body)
    elif block:
        yield _grid(block, style)


def _grid(block: list[list[Paragraph]], style: list[Any]) -> Table:
    table = Table(block, colWidths=[w * mm for w in PDF_WIDTHS], hAlign="LEFT")
    table.setStyle(TableStyle(GRID + style))
    return table
