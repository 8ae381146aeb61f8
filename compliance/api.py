"""Review cases over HTTP (docs/compliance.md): parse, call one action, reply."""

from collections.abc import Iterator
from typing import Any, Literal, cast

from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import AwareDatetime, ConfigDict, Field

from compliance import access_export, actions, proof, release
from compliance.actions import REASON_MAX, REFERENCE_MAX
from core.api_schemas.common import answers, files
from core.api_schemas.compliance import (
    AccessReport,
    AuditProof,
    Case,
    CaseAudit,
    CaseThreads,
    Timeline,
)
from rounds.http import AuthedRequest
from rounds.streaming import piece_by_piece

router = Router(tags=["compliance"])


class CaseIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reference: str = Field(max_length=REFERENCE_MAX * 2)
    reason: str = Field(max_length=REASON_MAX * 2)
    patient: int | None = None
    ipp: str | None = Field(default=None, max_length=32)
    department: int | None = None
    user: int | None = None
    date_from: AwareDatetime | None = None
    date_to: AwareDatetime | None = None


class Page(Schema):
    after_seq: int = Field(default=0, ge=0)
    limit: int = Field(default=200, ge=1, le=500)


@router.get("/cases", response=answers(list[Case]))
def cases(request: AuthedRequest) -> list[dict[str, Any]]:
    return actions.list_cases(request.user)


@router.post("/cases", response=answers(Case, 201))
def open_case(request: AuthedRequest, body: CaseIn) -> Status[dict[str, Any]]:
    return Status(
        201,
        actions.check_open_case(
            request.user,
            body.reference,
            body.reason,
            patient_id=body.patient,
            ipp=body.ipp,
            department_id=body.department,
            user_id=body.user,
            date_from=body.date_from,
            date_to=body.date_to,
        ),
    )


@router.post("/cases/{case_id}/approve", response=answers(Case))
def approve_case(request: AuthedRequest, case_id: int) -> dict[str, Any]:
    return actions.check_approve_case(request.user, case_id)


@router.post("/cases/{case_id}/close", response=answers(Case))
def close_case(request: AuthedRequest, case_id: int) -> dict[str, Any]:
    return actions.check_close_case(request.user, case_id)


@router.get("/cases/{case_id}/audit", response=answers(CaseAudit))
def case_audit(request: AuthedRequest, case_id: int) -> dict[str, Any]:
    return actions.check_case_audit(request.user, case_id)


@router.post("/cases/{case_id}/audit/proof", response=answers(AuditProof))
def case_audit_proof(request: AuthedRequest, case_id: int) -> dict[str, Any]:
    return proof.check_case_audit_proof(request.user, case_id)


@router.get("/cases/{case_id}/threads", response=answers(CaseThreads))
def case_threads(request: AuthedRequest, case_id: int) -> dict[str, Any]:
    return release.check_case_threads(request.user, case_id)


@router.get("/cases/{case_id}/threads/{thread_id}/timeline", response=answers(Timeline))
def thread_timeline(
    request: AuthedRequest, case_id: int, thread_id: int, page: Query[Page]
) -> dict[str, Any]:
    return release.check_thread_timeline(
        request.user, case_id, thread_id, page.after_seq, page.limit
    )


class ReportQuery(Schema):
    format: Literal["json", "csv", "pdf"] = "json"
    after: int = Field(default=0, ge=0)
    limit: int = Field(default=200, ge=1, le=500)


@router.get(
    "/cases/{case_id}/patients/{patient_id}/access-report",
    response=answers(AccessReport),
    openapi_extra=files(
        "text/csv",
        "application/pdf",
        description="A page of the report (JSON), or the whole of it as a file (?format=csv|pdf).",
    ),
)
def access_report(
    request: AuthedRequest, case_id: int, patient_id: int, query: Query[ReportQuery]
) -> dict[str, Any] | StreamingHttpResponse:
    if query.format == "json":
        return access_export.check_access_report(
            request.user, case_id, patient_id, query.after, query.limit
        )
    # A refusal is raised by the check_* call, before any byte: it is the typed error.
    name = f"access-report-case{case_id}-patient{patient_id}.{query.format}"
    if query.format == "csv":
        pieces = access_export.check_access_csv(request.user, case_id, patient_id)
        response = StreamingHttpResponse(pieces, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    else:
        pdf = access_export.check_access_pdf(request.user, case_id, patient_id)
        response = FileResponse(
            pdf, as_attachment=True, filename=name, content_type="application/pdf"
        )
    return _one_piece_at_a_time(request, response)


def _one_piece_at_a_time(
    request: HttpRequest, response: StreamingHttpResponse
) -> StreamingHttpResponse:
    """Under ASGI, each piece read as it is sent (rounds/streaming.py), in the request's
    own thread, where the CSV's rows are read on the request's database connection."""
    if isinstance(request, ASGIRequest):
        # Both responses above were built from a sync iterator (a generator, a file).
        pieces = iter(cast(Iterator[bytes], response.streaming_content))
        response.streaming_content = piece_by_piece(pieces, thread_sensitive=True)
    return response
