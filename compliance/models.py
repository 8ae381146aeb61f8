"""Review cases: the only grounds on which compliance staff read retained conversations.

A case names what it covers (a patient, a department, a user, a date range,
or several of these, all of which must hold) and stays in the database for
good: closing it ends its use, nothing removes it. Query helpers below say
which threads and messages a case covers; rooms/access/ decides who may
use a case.
"""

from typing import Any, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q, QuerySet

from chat.models import Message, Receipt, Thread
from patients.models import Patient
from rooms.models import Department

_M = TypeVar("_M", bound=models.Model)

REFERENCE_MAX = 64
REASON_MAX = 1000


class CaseDeletionError(Exception):
    """Raised when code tries to remove a case: a case is kept, closed at most."""


class Case(models.Model):
    """A compliance officer's review case, its scope, and its life (opened, approved, closed).

    `four_eyes` records whether the institution required a second officer's
    approval when the case was opened; a case needing approval releases
    nothing until another officer has approved it.
    """

    reference = models.CharField(max_length=REFERENCE_MAX, unique=True)
    reason = models.CharField(max_length=REASON_MAX)
    # The scope: every field set must hold (AND); at least one is set.
    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    department = models.ForeignKey(
        Department, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    date_from = models.DateTimeField(null=True, blank=True)
    date_to = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    four_eyes = models.BooleanField(default=False)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(patient__isnull=False)
                | Q(department__isnull=False)
                | Q(subject_user__isnull=False)
                | Q(date_from__isnull=False)
                | Q(date_to__isnull=False),
                name="case_has_scope",
            ),
            models.CheckConstraint(
                condition=Q(date_from__isnull=True)
                | Q(date_to__isnull=True)
                | Q(date_from__lte=F("date_to")),
                name="case_dates_ordered",
            ),
            models.CheckConstraint(
                condition=Q(approved_at__isnull=True, approved_by__isnull=True)
                | Q(approved_at__isnull=False, approved_by__isnull=False),
                name="case_approved_together",
            ),
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("opened_by")),
                name="case_approved_by_another",
            ),
            models.CheckConstraint(
                condition=Q(closed_at__isnull=True, closed_by__isnull=True)
                | Q(closed_at__isnull=False, closed_by__isnull=False),
                name="case_closed_together",
            ),
        ]
        indexes = [models.Index(fields=["opened_by", "-opened_at"])]

    def __str__(self) -> str:
        return f"case {self.reference}"

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise CaseDeletionError("A case is kept for good; close it instead.")

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    def awaits_approval(self, *, required_now: bool) -> bool:
        """Whether releases wait for a second officer: required when the case was opened,
        or now (an institution that turns four-eyes on holds its unapproved cases too)."""
        return (self.four_eyes or required_now) and self.approved_at is None

    # --- What the case covers ------------------------------------------------------

    def covered_messages(self, messages: QuerySet[Message] | None = None) -> QuerySet[Message]:
        """Messages within the case's dates (every message if it names none)."""
        return self.within_dates(Message.objects.all() if messages is None else messages)

    def covered_receipts(self, receipts: QuerySet[Receipt]) -> QuerySet[Receipt]:
        return self.within_dates(receipts, "read_at")

    def within_dates(self, rows: QuerySet[_M], field: str = "created_at") -> QuerySet[_M]:
        """Rows whose `field` falls within the case's dates, both ends included."""
        if self.date_from is not None:
            rows = rows.filter(**{f"{field}__gte": self.date_from})
        if self.date_to is not None:
            rows = rows.filter(**{f"{field}__lte": self.date_to})
        return rows

    def covered_threads(self) -> QuerySet[Thread]:
        """The threads the case covers.

        A patient or a department limits threads to theirs. A user limits them
        to the threads that user posted in or marked read: the conversations
        they took part in, not every one they could have opened. Dates keep
        the threads with at least one message in the range.
        """
        threads = Thread.objects.all()
        if self.patient_id is not None:
            threads = threads.filter(patient_id=self.patient_id)
        if self.department_id is not None:
            threads = threads.filter(department_id=self.department_id)
        if self.subject_user_id is not None:
            posted = Message.objects.filter(sender_id=self.subject_user_id).values("thread_id")
            read = Receipt.objects.filter(user_id=self.subject_user_id).values("thread_id")
            threads = threads.filter(Q(pk__in=posted) | Q(pk__in=read))
        if self.date_from is not None or self.date_to is not None:
            threads = threads.filter(pk__in=self.covered_messages().values("thread_id"))
        return threads

    def covers_thread(self, thread_id: int) -> bool:
        return self.covered_threads().filter(pk=thread_id).exists()

    def covers_message(self, message_id: int) -> bool:
        """A message of a covered thread, within the case's dates."""
        return (
            self.covered_messages(Message.objects.filter(pk=message_id))
            .filter(thread__in=self.covered_threads())
            .exists()
        )
