"""Which threads the active legal holds keep from the purge, and why.

- A **patient** hold keeps every thread of the patient.
- A **thread** hold keeps that thread.
- A **user** hold keeps what the user wrote or could read: every thread
  holding a message they sent, and every thread of a department where they
  held a membership at some time after the thread was created (admitted
  before now, and not removed before the thread began). A member could read
  such a thread, and a case about them needs it whole.
- A thread whose photos a kept thread's photo annotates is kept too: an
  overlay without the photo under it is no evidence.
"""

from collections import defaultdict

from django.db.models import Exists, OuterRef, Q, QuerySet

from chat.models import Message, Thread
from media.models import Attachment
from retention.models import LegalHold
from rooms.models import Membership


def active_holds() -> QuerySet[LegalHold]:
    return LegalHold.objects.filter(released_at__isnull=True)


def threads_held_by(hold: LegalHold, threads: QuerySet[Thread]) -> QuerySet[Thread]:
    """The threads among `threads` that `hold` covers directly."""
    if hold.patient_id is not None:
        return threads.filter(patient_id=hold.patient_id)
    if hold.thread_id is not None:
        return threads.filter(pk=hold.thread_id)
    assert hold.user_id is not None  # hold_one_scope: a patient, a thread or a user
    wrote = Message.objects.filter(thread=OuterRef("pk"), sender_id=hold.user_id)
    could_read = Membership.objects.filter(
        department=OuterRef("department"), user_id=hold.user_id
    ).filter(Q(removed_at__isnull=True) | Q(removed_at__gte=OuterRef("created_at")))
    return threads.filter(Exists(wrote) | Exists(could_read))


def kept_threads(thread_ids: list[int]) -> dict[int, list[int]]:
    """Among `thread_ids`, those an active hold keeps: thread id -> ids of the holds."""
    if not thread_ids:
        return {}
    candidates = Thread.objects.filter(pk__in=thread_ids)
    kept: dict[int, list[int]] = defaultdict(list)
    for hold in active_holds().order_by("pk"):
        for thread_id in threads_held_by(hold, candidates).values_list("pk", flat=True):
            kept[thread_id].append(hold.pk)
    # A kept thread's overlays keep the threads of the photos they draw on, and so on.
    while True:
        annotated = list(
            Attachment.objects.filter(thread_id__in=list(kept), annotates__isnull=False)
            .exclude(annotates__thread_id__in=list(kept))
            .filter(annotates__thread_id__in=thread_ids)
            .values_list("thread_id", "annotates__thread_id")
        )
        if not annotated:
            return dict(kept)
        for holder, target in annotated:
            kept[target].extend(h for h in kept[holder] if h not in kept[target])
