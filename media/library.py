"""The photo library: queries over the attachments of messages, and the nomenclature.

There is no second copy of anything: a library item is an `Attachment` row
(copied department, thread, patient, sender, capture date, consent) with
its message as history serves it, so the client decrypts the body, and so
the photo. Who sees which departments is decided by
`rooms.access.library_scope`; every query is audited
(`library.query`: which filters were used and how many rows came back, never
the values of identifying ones such as an IPP, and no patient name).

Every query filters one table on a leading indexed column (department,
patient or sender, then captured_at, id) and pages by keyset, so a page
costs the same on the first and the thousandth page.
"""

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from chat.events import MESSAGE_COLUMNS, message_row_payload
from chat.models import Thread
from compliance.models import Case
from compliance.release import do_record_release
from core.errors import N_, ErrorCode, InvalidRequest, NotFound, RoundsError
from media.models import Attachment, AttachmentKeyword, Consent, Keyword
from patients.models import Patient
from rooms import access

PAGE_MAX = 200
SEQUENCES_MAX = 500

ITEM_COLUMNS = (
    "id",
    "upload_id",
    "thumbnail_id",
    "captured_at",
    "consent",
    "annotates_id",
    "department_id",
    "thread_id",
    "patient_id",
    "patient__ipp",
    "patient__family_name",
    "patient__given_name",
    "patient__birth_date",
    "sender_id",
    "sender__username",
    "sender__display_name",
    "sender__first_name",
    "sender__last_name",
    "department__name",
    *(f"message__{column}" for column in MESSAGE_COLUMNS),
)


@dataclass(frozen=True)
class PhotoQuery:
    """The filters of `GET /api/library/photos`; all optional, combined with AND."""

    patient: int | None = None
    ipp: str | None = None
    department: int | None = None
    date_from: str | None = None
    date_to: str | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)
    sender: int | None = None
    consent: str | None = None
    cursor: str | None = None
    limit: int = 50
    case: int | None = None


def list_keywords(actor: User) -> list[dict[str, str]]:
    """The active nomenclature, the only words a photo is indexed by."""
    access.check_authenticated(actor)
    return [
        {"code": code, "label": label, "category": category}
        for code, label, category in Keyword.objects.filter(active=True).values_list(
            "code", "label", "category"
        )
    ]


def check_search_photos(actor: User, query: PhotoQuery) -> dict[str, Any]:
    """A page of photos, newest capture first, and the cursor of the next page.

    Raises:
        NotFound: a department filter on a department the caller cannot see.
        InvalidRequest: a bad filter, or a compliance officer naming no case.
        CaseClosed, CaseNotApproved: a case that releases nothing (now).
        RoundsError(cursor_invalid): a cursor this server did not make.
    """
    if not 1 <= query.limit <= PAGE_MAX:
        raise InvalidRequest(N_("limit is between 1 and %(max)s."), params={"max": PAGE_MAX})
    if query.consent is not None and query.consent not in Consent.values:
        raise InvalidRequest(N_("consent is care, teaching or publication."))
    scope, case = access.library_scope(actor, query.case)
    rows = _in_scope(Attachment.objects.all(), scope, query.department, case)
    rows = _within(rows, query.date_from, query.date_to)
    patient_id = query.patient
    if query.ipp:
        found = Patient.objects.filter(ipp=query.ipp).values_list("pk", flat=True).first()
        rows = rows.filter(patient_id=found) if found is not None else rows.none()
        patient_id = patient_id or found
    if query.patient is not None:
        rows = rows.filter(patient_id=query.patient)
    if query.sender is not None:
        rows = rows.filter(sender_id=query.sender)
    if query.consent is not None:
        rows = rows.filter(consent=query.consent)
    for code in dict.fromkeys(query.keywords):
        tagged = AttachmentKeyword.objects.filter(keyword_id=code).values("attachment_id")
        rows = rows.filter(pk__in=tagged)
    if query.cursor:
        after_at, after_id = _decode_cursor(query.cursor)
        # The first condition is the index's range; the second breaks ties.
        rows = rows.filter(captured_at__lte=after_at).filter(
            Q(captured_at__lt=after_at) | Q(captured_at=after_at, pk__lt=after_id)
        )
    _record_release(actor, case, "photos", query.department, _filters_used(query))
    page = list(rows.order_by("-captured_at", "-id").values_list(*ITEM_COLUMNS)[: query.limit + 1])
    more, page = len(page) > query.limit, page[: query.limit]
    keywords = _keywords_of([row[0] for row in page])
    items = [_item(row, keywords.get(row[0], []), retained=case is not None) for row in page]
    next_cursor = _encode_cursor(page[-1][3], page[-1][0]) if more else None
    _audit_query(actor, "photos", query, _filters_used(query), len(items), patient_id, case)
    return {"items": items, "next_cursor": next_cursor, "time_zone": settings.TIME_ZONE}


def check_patient_sequences(
    actor: User, patient_id: int, *, case_id: int | None = None
) -> dict[str, Any]:
    """The patient's photo sequences (the photos of one message), newest first.

    Raises:
        NotFound: the patient has no thread the caller may see.
    """
    scope, case = access.library_scope(actor, case_id)
    _check_patient_visible(scope, patient_id, case)
    rows = _in_scope(Attachment.objects.filter(patient_id=patient_id), scope, None, case)
    _record_release(actor, case, "sequences", None, ["patient"])
    groups = list(
        rows.values("message_id", "thread_id", "department_id", "sender_id", "sender__username")
        .annotate(
            captured_from=Min("captured_at"),
            captured_to=Max("captured_at"),
            photos=Count("id"),
        )
        .order_by("-captured_to", "-message_id")[:SEQUENCES_MAX]
    )
    keywords: dict[int, list[str]] = {}
    message_ids = [g["message_id"] for g in groups]
    tagged = (
        AttachmentKeyword.objects.filter(attachment__message_id__in=message_ids)
        .order_by("id")
        .values_list("attachment__message_id", "keyword_id")
    )
    for message_id, code in tagged:
        codes = keywords.setdefault(message_id, [])
        if code not in codes:
            codes.append(code)
    sequences = [
        {
            "message": g["message_id"],
            "thread": g["thread_id"],
            "department": g["department_id"],
            "sender": {"id": g["sender_id"], "username": g["sender__username"]},
            "captured_from": _iso(g["captured_from"]),
            "captured_to": _iso(g["captured_to"]),
            "photos": g["photos"],
            "keywords": keywords.get(g["message_id"], []),
        }
        for g in groups
    ]
    query = PhotoQuery(patient=patient_id)
    _audit_query(actor, "sequences", query, ["patient"], len(sequences), patient_id, case)
    return {"patient": patient_id, "sequences": sequences}


def check_department_stats(
    actor: User,
    department_id: int,
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    case_id: int | None = None,
) -> dict[str, Any]:
    """The figures the Surgeon paper reports, for one department and capture dates.

    `photos` counts original photos; overlays drawn on them (`annotates`)
    are counted apart, as `annotations`.
    """
    scope, case = access.library_scope(actor, case_id)
    rows = _in_scope(Attachment.objects.all(), scope, department_id, case)
    rows = _within(rows, date_from, date_to)
    query = PhotoQuery(department=department_id, date_from=date_from, date_to=date_to)
    _record_release(actor, case, "stats", department_id, _filters_used(query))
    figures = rows.aggregate(
        patients=Count("patient_id", distinct=True),
        sequences=Count("message_id", distinct=True),
        photos=Count("id", filter=Q(annotates__isnull=True)),
        annotations=Count("id", filter=Q(annotates__isnull=False)),
    )
    patients = figures["patients"]
    mean = round(figures["sequences"] / patients, 2) if patients else 0.0
    _audit_query(actor, "stats", query, _filters_used(query), figures["photos"], None, case)
    return {
        "department": department_id,
        "date_from": date_from,
        "date_to": date_to,
        **figures,
        "mean_sequences_per_patient": mean,
    }


def check_record_report(
    actor: User, patient_id: int, photos: int, *, case_id: int | None = None
) -> dict[str, Any]:
    """Trace that a follow-up report was made on a device; the server never sees it."""
    scope, case = access.library_scope(actor, case_id)
    if not 1 <= photos <= 1000:
        raise InvalidRequest(N_("A report holds 1 to 1000 photos."))
    _check_patient_visible(scope, patient_id, case)
    data: dict[str, Any] = {"photos": photos}
    if case is not None:
        data["case"] = case.pk
    entry = record(
        "report.generated", actor=actor, object_type="patient", object_id=patient_id, data=data
    )
    return {"patient": patient_id, "photos": photos, "recorded_at": _iso(entry.at)}


# --- Helpers ------------------------------------------------------------------


def _in_scope(
    rows: QuerySet[Attachment],
    scope: list[int] | None,
    department_id: int | None,
    case: Case | None,
) -> QuerySet[Attachment]:
    """Limit to what the caller may see, and to one department if asked (NotFound if unseen).

    The photos of redacted messages are hidden from members and retained for
    compliance: only a compliance access (under a `case`) still finds them,
    and only those of messages the case covers.
    """
    if case is not None:
        rows = case.within_dates(
            rows.filter(thread_id__in=case.covered_threads().values("pk")), "message__created_at"
        )
        if department_id is not None:
            if not case.covered_threads().filter(department_id=department_id).exists():
                raise NotFound(N_("Department not found."))
            rows = rows.filter(department_id=department_id)
        return rows
    scope = scope or []
    rows = rows.filter(message__redacted_at__isnull=True)
    if department_id is not None:
        if department_id not in scope:
            raise NotFound(N_("Department not found."))
        return rows.filter(department_id=department_id)
    # One department is an equality, which walks the (department, captured_at) index in order.
    if len(scope) == 1:
        return rows.filter(department_id=scope[0])
    return rows.filter(department_id__in=scope)


def _check_patient_visible(scope: list[int] | None, patient_id: int, case: Case | None) -> None:
    """A patient is visible through a thread in a department the caller may see, or
    through a thread the case covers."""
    if case is not None:
        visible = case.covered_threads().filter(patient_id=patient_id).exists()
    else:
        visible = Thread.objects.filter(
            patient_id=patient_id, department_id__in=scope or []
        ).exists()
    if not visible:
        raise NotFound(N_("Patient not found."))


def _within(
    rows: QuerySet[Attachment], date_from: str | None, date_to: str | None
) -> QuerySet[Attachment]:
    if date_from:
        rows = rows.filter(captured_at__gte=_parse_when(date_from, "date_from"))
    if date_to:
        when = _parse_when(date_to, "date_to")
        # A date is the whole day; a date and time is the instant itself.
        if _is_date(date_to):
            rows = rows.filter(captured_at__lt=when + timedelta(days=1))
        else:
            rows = rows.filter(captured_at__lte=when)
    return rows


def _is_date(text: str) -> bool:
    return len(text.strip()) == 10


def _parse_when(text: str, name: str) -> datetime:
    """A date (the start of that day, hospital time) or a timezone-aware date and time."""
    text = text.strip()
    try:
        if _is_date(text):
            day = date.fromisoformat(text)
            return timezone.make_aware(datetime(day.year, day.month, day.day))
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            # A "+01:00" offset in an unencoded query string arrives as " 01:00".
            when = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError:
        raise InvalidRequest(
            N_("%(name)s is an ISO 8601 date or date and time."), params={"name": name}
        ) from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise InvalidRequest(
            N_("%(name)s needs a UTC offset when it has a time."), params={"name": name}
        )
    return when


def _encode_cursor(captured_at: datetime, pk: int) -> str:
    raw = json.dumps([captured_at.astimezone(UTC).isoformat(), pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(at)
        if not isinstance(pk, int) or when.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise RoundsError(
            N_("This cursor was not made by this server."), code=ErrorCode.CURSOR_INVALID
        ) from None
    return when, pk


def _record_release(
    actor: User, case: Case | None, kind: str, department_id: int | None, filters: list[str]
) -> None:
    """Under a case, `case.released` commits before the query reads a row."""
    if case is not None:
        do_record_release(
            actor,
            case,
            f"library.{kind}",
            department_id=department_id,
            data={"filters": filters},
        )


def _keywords_of(ids: list[int]) -> dict[int, list[str]]:
    """The keyword codes of a page of attachments, in one query, in the order given."""
    keywords: dict[int, list[str]] = {}
    if not ids:
        return keywords
    rows = (
        AttachmentKeyword.objects.filter(attachment_id__in=ids)
        .order_by("id")
        .values_list("attachment_id", "keyword_id")
    )
    for attachment_id, code in rows:
        keywords.setdefault(attachment_id, []).append(code)
    return keywords


def _item(row: tuple[Any, ...], keywords: list[str], *, retained: bool) -> dict[str, Any]:
    (pk, upload, thumbnail, captured_at, consent, annotates, department, thread, patient) = row[:9]
    ipp, family_name, given_name, birth_date, sender_id, username = row[9:15]
    display_name, first_name, last_name, department_name = row[15:19]
    return {
        "id": pk,
        "upload": str(upload),
        "thumbnail": None if thumbnail is None else str(thumbnail),
        "captured_at": _iso(captured_at),
        "keywords": keywords,
        "consent": consent,
        "annotates": annotates,
        "department": department,
        "department_name": department_name,
        "thread": thread,
        "patient": {
            "id": patient,
            "ipp": ipp,
            "family_name": family_name,
            "given_name": given_name,
            "birth_date": birth_date.isoformat(),
        },
        "sender": {
            "id": sender_id,
            "username": username,
            # User.label, from the row: a report and the CLI name people as colleagues know them.
            "display_name": display_name or f"{first_name} {last_name}".strip() or username,
        },
        "message": message_row_payload(row[19:], retained=retained),
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _filters_used(query: PhotoQuery) -> list[str]:
    names = ("patient", "ipp", "department", "date_from", "date_to", "sender", "consent", "cursor")
    used = [name for name in names if getattr(query, name)]
    if query.keywords:
        used.append("keyword")
    return sorted(used)


def _audit_query(
    actor: User,
    kind: str,
    query: PhotoQuery,
    filters: list[str],
    count: int,
    patient_id: int | None,
    case: Case | None,
) -> None:
    """Filter names and counts, the patient's id (never a name or an IPP), the case if any."""
    data: dict[str, Any] = {"query": kind, "filters": filters, "count": count}
    if query.keywords:
        data["keywords"] = sorted(set(query.keywords))
    if patient_id is not None:
        data["patient_id"] = patient_id
    if case is not None:
        data["case"] = case.pk
    record(
        "library.query",
        actor=actor,
        department_id=query.department,
        object_type="library",
        object_id=kind,
        data=data,
    )
