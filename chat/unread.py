"""Unread counts for one reader, worked out by the database.

A browser used to fetch every thread's receipts to draw its badges: one
request per thread, a hundred on a busy ward, on every reload. These helpers
annotate a thread queryset with the caller's read position and unread count
instead, so a thread listing or the department list costs a fixed number of
queries however many threads there are. Each thread costs two index range
scans: its receipts by (thread, user, -up_to_seq) and its messages by
(thread, seq) from the caller's receipt on.

A message is unread when its seq is above the caller's highest receipt, it is
not the caller's own, and it is not redacted (a tombstone is nothing to read).

No audit entry is written: a count reveals nothing the caller may not already
see as a member (the threads' `last_seq`, their own receipts, and who sent
what, which history serves), and no message content is read.
"""

from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Count, IntegerField, Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from chat.models import Message, Receipt, Thread

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class Unread(TypedDict):
    """What `with_unread` adds to each thread."""

    last_read_seq: int
    unread: int


def with_unread(
    threads: QuerySet[Thread], user_id: int
) -> "QuerySet[WithAnnotations[Thread, Unread]]":
    """`threads` annotated with `last_read_seq` and `unread` for the reader `user_id`.

    Args:
        threads: threads the caller may see (access is the caller's business).
        user_id: the reader.

    Returns:
        The queryset, each thread with `last_read_seq` (0 before any receipt)
        and `unread` (messages after it from others, not redacted).
    """
    last_read = (
        Receipt.objects.filter(thread_id=OuterRef("pk"), user_id=user_id)
        .order_by()
        .values("thread_id")
        .annotate(seq=Max("up_to_seq"))
        .values("seq")
    )
    unread = (
        Message.objects.filter(
            thread_id=OuterRef("pk"),
            seq__gt=OuterRef("last_read_seq"),
            redacted_at__isnull=True,
        )
        .exclude(sender_id=user_id)
        .order_by()
        .values("thread_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return threads.annotate(
        last_read_seq=Coalesce(Subquery(last_read, output_field=IntegerField()), 0),
    ).annotate(unread=Coalesce(Subquery(unread, output_field=IntegerField()), 0))


def unread_by_department(department_ids: list[int], user_id: int) -> dict[int, int]:
    """Unread messages per department for the reader, in one query.

    Args:
        department_ids: departments the caller is a member of.
        user_id: the reader.

    Returns:
        department id → the sum of `with_unread` over all its threads (not
        only the 500 a thread listing shows); departments with no thread are
        left out.
    """
    rows: Any = (
        with_unread(Thread.objects.filter(department_id__in=department_ids), user_id)
        .order_by()
        .values("department_id")
        .annotate(total=Sum("unread"))
        .values_list("department_id", "total")
    )
    return {department_id: int(total or 0) for department_id, total in rows}
