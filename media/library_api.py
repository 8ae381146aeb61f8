"""Library endpoints of the JSON API (docs/library.md): parse, call one query, reply."""

from typing import Any

from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from core.api_schemas.common import answers
from core.api_schemas.media import (
    DepartmentStats,
    Keyword,
    PhotoPage,
    ReportRecorded,
    ReviewMarks,
    Sequences,
)
from media import library, reviews
from rounds.http import CASE_HEADER_DOC, AuthedRequest, compliance_case

router = Router(tags=["library"])

# A compliance officer names one of their open cases for every library read, in the
# X-Rounds-Case header (rounds/http.py); a report, a POST, names it in its body.


class PhotoFilters(Schema):
    patient: int | None = None
    ipp: str | None = Field(default=None, max_length=32)
    department: int | None = None
    date_from: str | None = Field(default=None, max_length=40)
    date_to: str | None = Field(default=None, max_length=40)
    keyword: list[str] = Field(default_factory=list, max_length=16)
    sender: int | None = None
    consent: str | None = None
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=50, ge=1, le=library.PAGE_MAX)


class DateRange(Schema):
    date_from: str | None = Field(default=None, max_length=40)
    date_to: str | None = Field(default=None, max_length=40)


class ReportIn(Schema):
    patient: int
    photos: int
    case: int | None = None


@router.get("keywords", response=answers(list[Keyword]))
def keywords(request: AuthedRequest) -> list[dict[str, str]]:
    return library.list_keywords(request.user)


@router.get("photos", response=answers(PhotoPage), openapi_extra=CASE_HEADER_DOC)
def photos(request: AuthedRequest, filters: Query[PhotoFilters]) -> dict[str, Any]:
    query = library.PhotoQuery(
        **filters.dict(exclude={"keyword"}),
        keywords=tuple(filters.keyword),
        case=compliance_case(request),
    )
    return library.check_search_photos(request.user, query)


@router.get(
    "patients/{patient_id}/sequences", response=answers(Sequences), openapi_extra=CASE_HEADER_DOC
)
def sequences(request: AuthedRequest, patient_id: int) -> dict[str, Any]:
    case_id = compliance_case(request)
    return library.check_patient_sequences(request.user, patient_id, case_id=case_id)


@router.get(
    "departments/{department_id}/stats",
    response=answers(DepartmentStats),
    openapi_extra=CASE_HEADER_DOC,
)
def stats(request: AuthedRequest, department_id: int, filters: Query[DateRange]) -> dict[str, Any]:
    return library.check_department_stats(
        request.user,
        department_id,
        date_from=filters.date_from,
        date_to=filters.date_to,
        case_id=compliance_case(request),
    )


@router.post("reports", response=answers(ReportRecorded, 201))
def report(request: AuthedRequest, body: ReportIn) -> Status[dict[str, Any]]:
    return Status(
        201,
        library.check_record_report(request.user, body.patient, body.photos, case_id=body.case),
    )


REVIEW = "departments/{department_id}/reviews/{week}"


@router.get(REVIEW, response=answers(ReviewMarks))
def review_marks(request: AuthedRequest, department_id: int, week: str) -> dict[str, Any]:
    return reviews.check_list_marks(request.user, department_id, week)


# Marking and unmarking answer the week's marks as they now stand.
@router.put(REVIEW + "/patients/{patient_id}", response=answers(ReviewMarks))
def mark_reviewed(
    request: AuthedRequest, department_id: int, week: str, patient_id: int
) -> dict[str, Any]:
    return reviews.check_mark(request.user, department_id, week, patient_id)


@router.delete(REVIEW + "/patients/{patient_id}", response=answers(ReviewMarks))
def unmark_reviewed(
    request: AuthedRequest, department_id: int, week: str, patient_id: int
) -> dict[str, Any]:
    return reviews.check_unmark(request.user, department_id, week, patient_id)
