"""Messaging use cases: threads, history, resume, receipts, typing.

Posting, the hot path, is chat/posting.py; its entry points are imported
here too (`check_post_message`, `check_post_messages`, `Post`), so the
edges and tests call one module for messaging.
"""

import json
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from chat.consults import open_guest_of
from chat.events import (
    MESSAGE_COLUMNS,
    append_event,
    message_row_payload,
    stored_json,
)
from chat.models import Event, Message, Receipt, Thread

# The messaging entry points, re-exported (the docstring says why).
from chat.posting import Post as Post
from chat.posting import check_post_message as check_post_message
from chat.posting import check_post_messages as check_post_messages
from chat.posting import envelope_hash as envelope_hash
from chat.unread import with_unread
from core.errors import N_, ErrorCode, InvalidRequest, RoundsError
from core.events import EventKind
from core.reasons import checked_reason
from rooms import access
from rooms.models import Department


def thread_data(thread: Thread) -> dict[str, Any]:
    return {
        "id": thread.pk,
        "department": thread.department_id,
        "patient": thread.patient_id,
        "title": thread.title,
        "created_by": thread.created_by_id,
        "created_at": thread.created_at.isoformat(),
        "closed_at": thread.closed_at.isoformat() if thread.closed_at else None,
        "last_seq": thread.last_seq,
    }


# --- Threads ------------------------------------------------------------------


def check_create_thread(
    actor: User, department_id: int, patient_id: int, title: str, reason: str | None = None
) -> dict[str, Any]:
    """A thread about a patient the caller may see (admitted now, or already discussed in
    one of their departments); about another known patient only with a `reason`, kept in
    the audit trail (docs/decisions.md)."""
    access.access_membership(actor, department_id)
    title = title.strip()
    if not title or len(title) > 200:
        raise InvalidRequest(N_("A thread title has 1 to 200 characters."))
    reason = checked_reason(reason)
    access.access_patient_for_thread(actor, patient_id, reason)
    return do_create_thread(actor, department_id, patient_id, title, reason)


def do_create_thread(
    actor: User, department_id: int, patient_id: int, title: str, reason: str | None = None
) -> dict[str, Any]:
    """Assumes `actor` is a member of the department."""
    with transaction.atomic():
        thread = Thread.objects.create(
            department_id=department_id, patient_id=patient_id, title=title, created_by=actor
        )
        data = thread_data(thread)
        record(
            "thread.created",
            actor=actor,
            department_id=department_id,
            object_type="thread",
            object_id=thread.pk,
            data={"patient_id": patient_id, **({"reason": reason} if reason else {})},
        )
        append_event(department_id, EventKind.THREAD_CREATED, {"thread": data})
    return data


def list_department_threads(actor: User, department_id: int) -> list[dict[str, Any]]:
    """Up to 500 threads, newest first, each with the caller's `unread` and `last_read_seq`.

    Two queries whatever the number of threads: the membership check, and
    the threads with their counts (chat/unread.py).
    """
    access.access_membership(actor, department_id)
    threads = with_unread(Thread.objects.filter(department_id=department_id), actor.pk)
    return [
        {**thread_data(t), "unread": t.unread, "last_read_seq": t.last_read_seq}
        for t in threads.order_by("-created_at")[:500]
    ]


def list_patient_threads(actor: User, patient_id: int) -> list[dict[str, Any]]:
    """Threads about the patient in the caller's own departments only."""
    access.check_authenticated(actor)
    departments = access.member_department_ids(actor)
    threads = Thread.objects.filter(patient_id=patient_id, department_id__in=departments)
    return [thread_data(t) for t in threads.order_by("-created_at")[:500]]


def check_set_thread_closed(
    actor: User, thread_id: int, closed: bool, reason: str | None = None
) -> dict[str, Any]:
    """Close or reopen a thread, as a head of its department.

    Args:
        reason: why it is closed, optional (at most 200 characters, trimmed), kept
            in the audit trail as a redaction's is; members never see it.

    Raises:
        NotFound, Forbidden: as rooms.access.access_thread with `head`.
        InvalidRequest: a reason over 200 characters.
    """
    thread = access.access_thread(actor, thread_id, head=True)
    return do_set_thread_closed(actor, thread, closed, checked_reason(reason))


def do_set_thread_closed(
    actor: User, thread: Thread, closed: bool, reason: str = ""
) -> dict[str, Any]:
    """Close or reopen. Assumes `actor` is a head of the thread's department."""
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        if thread.is_closed == closed:
            return thread_data(thread)
        if not closed:
            access.check_not_purged(thread.pk)
        thread.closed_at = timezone.now() if closed else None
        thread.closed_by = actor if closed else None
        thread.save(update_fields=["closed_at", "closed_by"])
        action = "thread.closed" if closed else "thread.reopened"
        record(
            action,
            actor=actor,
            department_id=thread.department_id,
            object_type="thread",
            object_id=thread.pk,
            data={"reason": reason} if reason else None,
        )
        data = thread_data(thread)
        kind = EventKind.THREAD_CLOSED if closed else EventKind.THREAD_REOPENED
        append_event(
            thread.department_id,
            kind,
            {"thread": data, "by": {"id": actor.pk, "username": actor.username}},
        )
    return data


# --- Messages -----------------------------------------------------------------


MESSAGE_FIELDS_OF_EVENT = tuple(f"message__{column}" for column in MESSAGE_COLUMNS)
_REDACTED_AT = MESSAGE_COLUMNS.index("redacted_at")


# A page of MESSAGE_COLUMNS, newest first, written once: the ORM took longer to build
# it than PostgreSQL to run it. The JSON columns come as the database's text.
_PAGE_COLUMNS = ", ".join(
    "u.username" if column == "sender__username" else f"m.{column}" for column in MESSAGE_COLUMNS
)
HISTORY_PAGE = f"""
SELECT {_PAGE_COLUMNS}
FROM {Message._meta.db_table} m JOIN {User._meta.db_table} u ON u.id = m.sender_id
WHERE m.thread_id = %s AND m.seq < %s
ORDER BY m.seq DESC LIMIT %s
"""  # noqa: S608 (the models' own tables and columns)
_JSON_COLUMNS = [MESSAGE_COLUMNS.index(name) for name in ("header", "attachments", "correction")]
_TIME_COLUMNS = [MESSAGE_COLUMNS.index(name) for name in ("created_at", "redacted_at")]


def check_history(
    actor: User, thread_id: int, before_seq: int | None, limit: int, *, stored_text: bool = False
) -> dict[str, Any]:
    """A page of messages, oldest first, ending just before `before_seq`.

    `stored_text`: the envelope headers, photos and corrections stay the JSON text
    the database holds (`stored_json`), for a frame that `dumps` encodes.
    """
    limit = max(1, min(limit, settings.ROUNDS_HISTORY_PAGE_MAX))
    # Seqs are positive bigints; a bound beyond them is one the database would refuse.
    before = access.LARGEST_ID if before_seq is None else max(0, min(before_seq, access.LARGEST_ID))
    # The access check and the page in one round trip; the page only if access is granted.
    thread, page = access.access_thread_and_read(
        actor, thread_id, HISTORY_PAGE, [thread_id, before, limit + 1]
    )
    has_more = len(page) > limit
    as_json = stored_json if stored_text else _decoded_json
    messages = [message_row_payload(_typed(row, as_json)) for row in page[:limit][::-1]]
    record(
        "history.read",
        actor=actor,
        department_id=thread.department_id,
        object_type="thread",
        object_id=thread.pk,
        data={
            "from_seq": messages[0]["seq"] if messages else None,
            "to_seq": messages[-1]["seq"] if messages else None,
        },
    )
    return {"thread": thread.pk, "messages": messages, "has_more": has_more}


def _typed(row: tuple[Any, ...], as_json: Callable[[str | None], Any]) -> tuple[Any, ...]:
    """A page row as the ORM would give it: JSON columns through `as_json`, times aware
    (SQLite's come naive, in UTC)."""
    values = list(row)
    for index in _JSON_COLUMNS:
        values[index] = as_json(values[index])
    for index in _TIME_COLUMNS:
        moment = values[index]
        if moment is not None and moment.tzinfo is None:
            values[index] = moment.replace(tzinfo=UTC)
    return tuple(values)


def _decoded_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# --- Resume -------------------------------------------------------------------


def check_resume_cursor(actor: User, cursor: dict[int, int]) -> dict[int, int]:
    """Validate a client cursor: departments the caller is in, no seq from the future.

    Returns the cursor limited to the caller's current departments.
    """
    access.check_authenticated(actor)
    mine = set(access.member_department_ids(actor))
    heads = dict(Department.objects.filter(pk__in=mine).values_list("pk", "event_seq"))
    valid: dict[int, int] = {}
    for department_id, seq in cursor.items():
        if department_id not in mine:
            continue
        if seq < 0 or seq > heads[department_id]:
            raise RoundsError(
                N_("This cursor is ahead of the server; reload history instead."),
                code=ErrorCode.CURSOR_INVALID,
                data={"department": department_id, "latest": heads[department_id]},
            )
        valid[department_id] = seq
    return valid


def events_after(
    actor: User,
    department_id: int,
    after_seq: int,
    limit: int | None = None,
    before_seq: int | None = None,
) -> list[tuple[int, dict[str, Any]]]:
    """Stored events of a department after `after_seq` (and before `before_seq`), in
    order, as frames.

    Assumes the caller's membership was checked; re-checked here because a
    resume may run while a removal commits. The numbers may have holes: the
    purge at the end of retention removes old threads' events (retention/purge.py),
    so `limit` events may reach past `before_seq` unless it bounds them.
    """
    if access.active_membership(actor, department_id) is None:
        return []
    limit = limit or settings.ROUNDS_RESUME_BATCH
    rows = Event.objects.filter(department_id=department_id, seq__gt=after_seq)
    if before_seq is not None:
        rows = rows.filter(seq__lt=before_seq)
    values = rows.order_by("seq").values_list(
        "seq", "kind", "payload", "message_id", *MESSAGE_FIELDS_OF_EVENT
    )[:limit]
    frames = []
    for seq, kind, payload, message_id, *message in values:
        frame: dict[str, Any] = {"type": kind, "department": department_id, "event_seq": seq}
        if kind == EventKind.MESSAGE_NEW:
            frame["message"] = message_row_payload(message) if message_id else None
        else:
            frame.update(payload)
        if kind == EventKind.MESSAGE_CORRECTED and message[_REDACTED_AT] is not None:
            # Redacted since: its content is never sent to a member again.
            frame["correction"] = {**payload["correction"], "envelope": None}
        frames.append((seq, frame))
    return frames


def iter_missed(
    actor: User, department_id: int, after_seq: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    while batch := events_after(actor, department_id, after_seq):
        yield batch
        after_seq = batch[-1][0]


def record_resume(actor: User, department_id: int, from_seq: int, to_seq: int) -> None:
    if to_seq > from_seq:
        record(
            "events.resumed",
            actor=actor,
            department_id=department_id,
            object_type="department",
            object_id=department_id,
            data={"from_seq": from_seq, "to_seq": to_seq},
        )


# --- Receipts -----------------------------------------------------------------


def check_read_receipt(actor: User, thread_id: int, up_to_seq: int) -> dict[str, Any]:
    thread = access.access_thread(actor, thread_id)
    if up_to_seq < 1 or up_to_seq > thread.last_seq:
        raise InvalidRequest(
            N_("up_to_seq must name a message of this thread."), data={"last_seq": thread.last_seq}
        )
    return do_read_receipt(actor, thread, up_to_seq)


def do_read_receipt(actor: User, thread: Thread, up_to_seq: int) -> dict[str, Any]:
    """Record that `actor` read up to `up_to_seq`; receipts never move backwards.

    Assumes `actor` is a member. A receipt at or below the current one is a
    no-op that returns the current one.
    """
    with transaction.atomic():
        current = (
            Receipt.objects.filter(thread_id=thread.pk, user_id=actor.pk)
            .order_by("-up_to_seq")
            .first()
        )
        if current is not None and current.up_to_seq >= up_to_seq:
            return _receipt_data(current, actor.username, advanced=False)
        receipt = Receipt.objects.create(
            thread_id=thread.pk, user_id=actor.pk, up_to_seq=up_to_seq, read_at=timezone.now()
        )
        data = _receipt_data(receipt, actor.username, advanced=True)
        record(
            "receipt.read",
            actor=actor,
            department_id=thread.department_id,
            object_type="thread",
            object_id=thread.pk,
            data={"up_to_seq": up_to_seq},
        )
        append_event(
            thread.department_id,
            EventKind.RECEIPT_NEW,
            {k: v for k, v in data.items() if k != "advanced"},
            guest_user_id=open_guest_of(thread),
        )
    return data


def _receipt_data(receipt: Receipt, username: str, *, advanced: bool) -> dict[str, Any]:
    return {
        "thread": receipt.thread_id,
        "user": {"id": receipt.user_id, "username": username},
        "up_to_seq": receipt.up_to_seq,
        "read_at": receipt.read_at.isoformat(),
        "advanced": advanced,
    }


def check_receipts(actor: User, thread_id: int, seq: int | None = None) -> dict[str, Any]:
    """Who read what, and when.

    Without `seq`: each member's latest receipt. With `seq`: who has read
    message `seq`, each with the time they first did.
    """
    thread = access.access_thread(actor, thread_id)
    rows = Receipt.objects.filter(thread_id=thread.pk)
    if seq is not None:
        first_reads = (
            rows.filter(up_to_seq__gte=seq)
            .values("user_id", "user__username")
            .annotate(read_at=Min("read_at"))
            .order_by("read_at")
        )
        readers = [
            {
                "user": {"id": r["user_id"], "username": r["user__username"]},
                "read_at": r["read_at"].isoformat(),
            }
            for r in first_reads
        ]
        return {"thread": thread.pk, "seq": seq, "readers": readers}
    latest: dict[int, Receipt] = {}
    for receipt in rows.select_related("user").order_by("user_id", "-up_to_seq"):
        latest.setdefault(receipt.user_id, receipt)
    return {
        "thread": thread.pk,
        "receipts": [
            {
                k: v
                for k, v in _receipt_data(r, r.user.username, advanced=False).items()
                if k != "advanced"
            }
            for r in latest.values()
        ],
    }


# --- Typing -------------------------------------------------------------------


def check_typing(actor: User, thread_id: int) -> int:
    """Returns the department to relay to; typing is never stored nor audited."""
    return access.access_thread(actor, thread_id).department_id
