"""The weekly photo review's marks: which cases a department reviewed in a week.

A case is one patient's photos of one ISO week in one department (the review
groups them so in the browser, docs/browser.md "Weekly review"). Every member
sees the marks; a head, who leads the staff meeting, sets and clears them.
The comments on a case are ordinary messages in the patient's thread
(docs/library.md), so nothing here holds any clinical content.
"""

import re
from datetime import UTC, date
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from core.errors import N_, InvalidRequest
from media.models import ReviewMark
from rooms import access

WEEK = re.compile(r"^(\d{4})-W(\d\d)$")


def check_list_marks(actor: User, department_id: int, week: str) -> dict[str, Any]:
    """The marks of one department's week, for any member.

    Raises:
        NotFound: not a member of the department.
        InvalidRequest: `week` is not an ISO week.
    """
    access.access_review(actor, department_id)
    _check_week(week)
    return _marks(department_id, week)


def check_mark(actor: User, department_id: int, week: str, patient_id: int) -> dict[str, Any]:
    """Mark a case reviewed; marking it again keeps the first mark and writes nothing.

    Raises:
        NotFound: not a member, or a patient the department has no thread about.
        Forbidden: a member who is not head.
        InvalidRequest: `week` is not an ISO week.
    """
    access.access_review(actor, department_id, patient_id, mark=True)
    _check_week(week)
    do_mark(actor, department_id, week, patient_id)
    return _marks(department_id, week)


def do_mark(actor: User, department_id: int, week: str, patient_id: int) -> None:
    """Assumes `check_mark`'s checks passed. Idempotent under concurrent calls."""
    with transaction.atomic():
        mark, created = ReviewMark.objects.get_or_create(
            department_id=department_id,
            week=week,
            patient_id=patient_id,
            defaults={"by": actor, "at": timezone.now()},
        )
        if created:
            _audit("review.marked", actor, mark)


def check_unmark(actor: User, department_id: int, week: str, patient_id: int) -> dict[str, Any]:
    """Clear a case's mark; clearing an unmarked case writes nothing.

    Raises: as `check_mark`.
    """
    access.access_review(actor, department_id, patient_id, mark=True)
    _check_week(week)
    do_unmark(actor, department_id, week, patient_id)
    return _marks(department_id, week)


def do_unmark(actor: User, department_id: int, week: str, patient_id: int) -> None:
    """Assumes `check_unmark`'s checks passed."""
    with transaction.atomic():
        mark = (
            ReviewMark.objects.select_for_update()
            .filter(department_id=department_id, week=week, patient_id=patient_id)
            .first()
        )
        if mark is None:
            return
        _audit("review.unmarked", actor, mark)
        mark.delete()


def _check_week(week: str) -> None:
    match = WEEK.match(week)
    try:
        if match is None:
            raise ValueError(week)
        date.fromisocalendar(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise InvalidRequest(N_("A week is written like 2026-W49.")) from None


def _audit(action: str, actor: User, mark: ReviewMark) -> None:
    record(
        action,
        actor=actor,
        department_id=mark.department_id,
        object_type="patient",
        object_id=mark.patient_id,
        data={"week": mark.week},
    )


def _marks(department_id: int, week: str) -> dict[str, Any]:
    marks = ReviewMark.objects.filter(department_id=department_id, week=week).select_related("by")
    return {
        "department": department_id,
        "week": week,
        "marks": [_mark(m) for m in marks.order_by("at", "pk")],
    }


def _mark(mark: ReviewMark) -> dict[str, Any]:
    return {
        "patient": mark.patient_id,
        "by": {
            "id": mark.by.pk,
            "username": mark.by.username,
            "display_name": mark.by.display_name,
        },
        "at": mark.at.astimezone(UTC).isoformat(),
    }
