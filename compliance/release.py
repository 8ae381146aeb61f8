"""Releasing what a case covers: each release is audited, committed, before any read.

The `case.released` entry names the case and what is about to be released;
it commits before the data is read, as a download's entry commits before
its first byte (media/uploads.py). A release that then fails leaves an
entry for data nobody received, never data without an entry.
"""

from typing import Any

from django.db import transaction

from accounts.models import User
from audit.actions import record
from compliance import timeline
from compliance.models import Case
from rooms import access

THREADS_MAX = 1000


def do_record_release(
    actor: User,
    case: Case,
    what: str,
    *,
    department_id: int | None = None,
    object_type: str = "case",
    object_id: Any = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Write and commit `case.released`. Assumes the case was checked (rooms/access/)."""
    with transaction.atomic():
        record(
            "case.released",
            actor=actor,
            department_id=department_id,
            object_type=object_type,
            object_id=case.pk if object_id is None else object_id,
            data={"case": case.pk, "reference": case.reference, "what": what, **(data or {})},
        )


def check_case_threads(actor: User, case_id: int) -> dict[str, Any]:
    """The threads the case covers, newest first (at most THREADS_MAX)."""
    case = access.access_case(actor, case_id, release=True)
    do_record_release(actor, case, "threads")
    # Read only now: the entry above is committed.
    threads = list(
        case.covered_threads()
        .select_related("patient")
        .order_by("-created_at", "-id")[: THREADS_MAX + 1]
    )
    return {
        "case": case.pk,
        "threads": [timeline.thread_record(t) for t in threads[:THREADS_MAX]],
        "truncated": len(threads) > THREADS_MAX,
    }


def check_thread_timeline(
    actor: User, case_id: int, thread_id: int, after_seq: int = 0, limit: int = 200
) -> dict[str, Any]:
    """A page of a covered thread's full timeline for an offline review (compliance/timeline.py).

    Raises:
        NotFound: not the caller's case, or a thread it does not cover.
        CaseClosed, CaseNotApproved: the case releases nothing (now).
    """
    case, thread = access.access_case_thread(actor, case_id, thread_id)
    limit = max(1, min(limit, timeline.PAGE_MAX))
    after_seq = max(0, after_seq)
    do_record_release(
        actor,
        case,
        "timeline",
        department_id=thread.department_id,
        object_type="thread",
        object_id=thread.pk,
        data={"thread_id": thread.pk, "after_seq": after_seq, "limit": limit},
    )
    return timeline.thread_page(case, thread, after_seq, limit)
