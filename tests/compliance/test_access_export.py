"""The access report's CSV and PDF of a long stay: the CSV streamed in pieces as the trail
is read, the PDF built in a temporary file; every entry in each, and the same typed
refusals as the JSON page (docs/compliance.md, "The patient's access report")."""

import base64
import csv
import io
import re
import warnings
import zlib
from typing import Any

import pytest

from audit.actions import record_many
from audit.models import AuditEvent
from compliance import access_export, access_report
from tests.support import Api, Hospital, assert_refused
from tests.support.cases import CASES, open_case, report_path

pytestmark = pytest.mark.django_db

LONG_STAY = 1234  # more than two of access_report's reads (CHUNK) and a dozen PDF tables


def views_of(h: Hospital, patient: Any, count: int) -> list[int]:
    """`count` views of the patient's record by Bob, appended as a batch; their ids."""
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    entry = {"action": "patient.viewed", "object_type": "patient", "object_id": patient.pk}
    record_many([entry] * count, actors=[h.surgeon_bob] * count)
    return list(
        AuditEvent.objects.filter(id__gt=before, action="patient.viewed")
        .order_by("id")
        .values_list("id", flat=True)
    )


@pytest.fixture
def long_stay(hospital: Hospital) -> dict[str, Any]:
    """LONG_STAY views of Léa's record, a few hundred of Hugo's, and a case on Léa."""
    h = hospital
    views = views_of(h, h.patient, LONG_STAY)
    hugo = views_of(h, h.other_patient, 300)
    return {
        "views": views,
        "hugo": hugo,
        "case": open_case(h.compliance_dan, patient_id=h.patient.pk),
    }


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(
        csv.DictReader(io.StringIO("\n".join(x for x in text.splitlines() if x[:1] != "#")))
    )


def test_the_csv_of_a_long_stay_is_streamed_whole_and_in_order(hospital, long_stay):
    h, case = hospital, long_stay["case"]
    response = Api(h.compliance_dan).get(report_path(case, h.patient, "format=csv"))
    assert response.status_code == 200
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    pieces = list(response.streaming_content)
    # Sent as it is read, in pieces of whole lines none much larger than CSV_PIECE.
    assert len(pieces) >= 3
    assert all(len(p) < access_export.CSV_PIECE * 2 for p in pieces)
    assert all(p.endswith(b"\n") for p in pieces)
    text = b"".join(pieces).decode()
    rows = csv_rows(text)
    ids = [int(r["entry"]) for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    views = [r for r in rows if r["action"] == "patient.viewed"]
    assert [int(r["entry"]) for r in views] == long_stay["views"]
    assert all(
        (r["username"], r["name"], r["role"], r["what"], r["object"], r["certainty"])
        == (
            "surgeon_bob",
            "Surgeon Bob",
            "member",
            "viewed the patient's record",
            "the patient's record",
            "certain",
        )
        for r in views
    )
    assert not set(long_stay["hugo"]) & set(ids)
    # The release was committed before the trail was read: the file lists it.
    release = AuditEvent.objects.filter(action="case.released").latest("id")
    assert release.data["format"] == "csv" and ids[-1] == release.pk
    assert text.splitlines()[-1] == f"# End of the report: {len(rows)} entries"
    # The same entries as the JSON pages (each page is itself a release, listed after).
    paged = _paged_ids(h, case)
    assert paged[: len(ids)] == ids


def _paged_ids(h: Hospital, case: Any) -> list[int]:
    ids: list[int] = []
    after = 0
    while True:
        query = f"limit={access_report.PAGE_MAX}&after={after}"
        body = Api(h.compliance_dan).get(report_path(case, h.patient, query)).json()
        ids += [r["id"] for r in body["entries"]]
        if body["next_after"] is None:
            return ids
        after = body["next_after"]


# --- PDF ----------------------------------------------------------------------------------


def pdf_pages(pdf: bytes) -> list[list[str]]:
    """The text shown on each page, in drawing order: reportlab writes one content
    stream per page (Flate, then ASCII85), each string shown with `Tj`."""
    pages = []
    for match in re.finditer(rb"<<([^<>]*)>>\s*stream\r?\n(.*?)\r?\n?endstream", pdf, re.S):
        filters, data = match.group(1), match.group(2).strip()
        if b"ASCII85Decode" in filters:
            data = base64.a85decode(data.removeprefix(b"<~").removesuffix(b"~>"))
        if b"FlateDecode" in filters:
            data = zlib.decompress(data)
        shown = re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", data)
        pages.append([_unescape(text).decode("cp1252") for text in shown])
    return pages


def _unescape(text: bytes) -> bytes:
    """A PDF string's escapes: octal codes (WinAnsi, for the standard fonts), then `\\x`."""
    text = re.sub(rb"\\([0-7]{1,3})", lambda m: bytes([int(m.group(1), 8)]), text)
    return re.sub(rb"\\(.)", rb"\1", text)


def assert_well_formed(pdf: bytes) -> None:
    """Header, trailer, and a cross-reference table whose every offset is its object."""
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    start = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", pdf).group(1))
    assert pdf[start:].startswith(b"xref")
    table = re.match(rb"xref\s+0 (\d+)\s+", pdf[start:])
    offsets = re.findall(rb"(\d{10}) \d{5} n", pdf[start:])
    assert len(offsets) == int(table.group(1)) - 1
    for number, offset in enumerate(offsets, start=1):
        assert pdf[int(offset) :].startswith(f"{number} 0 obj".encode())


@pytest.mark.slow
def test_the_pdf_of_a_long_stay_holds_every_entry(hospital, long_stay):
    h, case = hospital, long_stay["case"]
    response = Api(h.compliance_dan).get(report_path(case, h.patient, "format=pdf"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="access-report-case{case.pk}-patient{h.patient.pk}.pdf"'
    )
    pdf = response.getvalue()
    assert int(response["Content-Length"]) == len(pdf)
    assert_well_formed(pdf)
    pages = pdf_pages(pdf)
    assert len(pages) == int(re.search(rb"/Count (\d+)", pdf).group(1)) > 30
    # Each row's first cell, its entry number, is shown just before its time (which
    # wraps, the column being narrower than a time with microseconds).
    at = re.compile(r"\d{4}-\d\d-\d\dT\d\d:")
    ids = [int(p[i - 1]) for p in pages for i in range(1, len(p)) if at.match(p[i])]
    assert ids == sorted(ids)
    assert set(long_stay["views"]) <= set(ids)
    assert not set(long_stay["hugo"]) & set(ids)
    release = AuditEvent.objects.filter(action="case.released").latest("id")
    assert release.data["format"] == "pdf" and ids[-1] == release.pk
    # The patient at the foot of every page, the column names at the top of every one.
    heads = ["entry", "at", "name", "role", "what", "object", "case", "certainty"]
    for number, page in enumerate(pages, start=1):
        assert page[0].startswith("Patient: LEFÈVRE Léa") and page[0].endswith(f"page {number}")
        if number > 1:
            assert page[1:9] == heads


def test_the_pdf_of_no_entry_says_so(hospital):
    h = hospital
    out = io.BytesIO()
    head = {
        "case": {"id": 1, "reference": "INC-2026-042"},
        "patient": {
            "id": h.patient.pk,
            "ipp": "00800100",
            "family_name": "Lefèvre",
            "given_name": "Léa",
            "birth_date": "1985-01-30",
        },
        "date_from": None,
        "date_to": None,
        "generated_at": "2026-12-05T10:00:00+00:00",
    }
    access_export.render_pdf(head, iter(()), out)
    assert_well_formed(out.getvalue())
    [page] = pdf_pages(out.getvalue())
    assert page[-1] == "No access recorded."


# --- Refusals: a typed JSON error, before any byte, and nothing written --------------------


@pytest.mark.parametrize("fmt", ["csv", "pdf"])
def test_a_file_is_refused_with_the_typed_error(hospital, fmt):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    refusals = [
        (
            h.compliance_dan,
            f"{CASES}/999999/patients/{h.patient.pk}/access-report",
            404,
            "not_found",
        ),
        (h.compliance_dan, report_path(case, h.other_patient), 404, "not_found"),
        (h.surgeon_bob, report_path(case, h.patient), 403, "forbidden"),
    ]
    for who, path, status, code in refusals:
        before = AuditEvent.objects.count()
        response = Api(who).get(f"{path}?format={fmt}")
        assert not response.streaming
        assert response["Content-Type"].startswith("application/json")
        assert_refused(response, status, code)
        assert AuditEvent.objects.count() == before
    Api(h.compliance_dan).post(f"{CASES}/{case.pk}/close", {})
    assert_refused(
        Api(h.compliance_dan).get(report_path(case, h.patient, f"format={fmt}")),
        409,
        "case_closed",
    )


# --- Served over ASGI, as daphne serves it ----------------------------------------------


async def get_over_asgi(path: str, query: str, token: str) -> tuple[dict, list[bytes]]:
    """The response's start message and its body messages, one per piece sent."""
    from channels.testing import ApplicationCommunicator

    from rounds.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(30)
    bodies = []
    while True:
        message = await communicator.receive_output(30)
        assert message["type"] == "http.response.body", message
        bodies.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    await communicator.wait(5)
    return start, bodies


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "pdf"])
async def test_over_asgi_each_piece_is_sent_as_it_is_made(live_hospital, fmt):
    """Django would read a sync iterator whole into a list first, with a warning; the
    view hands it an async one, whose reads run on the request's own connection."""
    from channels.db import database_sync_to_async

    from tests.support import issue_token

    h = live_hospital
    views = await database_sync_to_async(views_of)(h, h.patient, 600)
    case = await database_sync_to_async(open_case)(h.compliance_dan, patient_id=h.patient.pk)
    token = await database_sync_to_async(issue_token)(h.compliance_dan)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start, bodies = await get_over_asgi(report_path(case, h.patient), f"format={fmt}", token)
    assert start["status"] == 200
    assert not [w for w in caught if "synchronous iterators" in str(w.message)]
    assert len([b for b in bodies if b]) > 1
    content = b"".join(bodies)
    if fmt == "csv":
        ids = [int(r["entry"]) for r in csv_rows(content.decode())]
    else:
        headers = dict(start["headers"])
        assert int(headers[b"Content-Length"]) == len(content)
        at = re.compile(r"\d{4}-\d\d-\d\dT\d\d:")
        pages = pdf_pages(content)
        ids = [int(p[i - 1]) for p in pages for i in range(1, len(p)) if at.match(p[i])]
    assert set(views) <= set(ids) and ids == sorted(ids)
