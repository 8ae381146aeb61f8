"""Legal holds, and what the purge leaves behind: one record per purged thread.

A hold keeps what it covers from the purge until an officer releases it; it
is never deleted. A `ThreadPurge` is written before the first row of a thread
goes (so a crash mid-thread is finished by the next run) and completed after
the last; with the thread row, whose title it replaces, it is the tombstone.
docs/audit.md ("Retention") says what each covers.
"""

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from chat.models import Thread
from compliance.models import Case
from patients.models import Patient

REASON_MAX = 1000


class HoldDeletionError(Exception):
    """Raised when code tries to remove a hold: a hold is released, never deleted."""


class LegalHold(models.Model):
    """A hold on one patient, one thread or one user, placed under an open review case.

    What a user hold covers (retention/holds.py): the threads of every department
    the user was a member of while the thread existed (what they could read),
    and every thread holding a message they wrote.
    """

    patient = models.ForeignKey(
        Patient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    thread = models.ForeignKey(
        Thread, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=REASON_MAX)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField()
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=REASON_MAX, blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(patient__isnull=False, thread__isnull=True, user__isnull=True)
                | Q(patient__isnull=True, thread__isnull=False, user__isnull=True)
                | Q(patient__isnull=True, thread__isnull=True, user__isnull=False),
                name="hold_one_scope",
            ),
            models.CheckConstraint(
                condition=Q(released_at__isnull=True, released_by__isnull=True)
                | Q(released_at__isnull=False, released_by__isnull=False),
                name="hold_released_together",
            ),
        ]
        indexes = [models.Index(fields=["released_at", "-placed_at"])]

    def __str__(self) -> str:
        return f"hold {self.pk} ({self.scope_kind} {self.scope_id})"

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise HoldDeletionError("A legal hold is kept for good; release it instead.")

    @property
    def is_active(self) -> bool:
        return self.released_at is None

    @property
    def scope_kind(self) -> str:
        if self.patient_id is not None:
            return "patient"
        return "thread" if self.thread_id is not None else "user"

    @property
    def scope_id(self) -> int:
        # hold_one_scope: exactly one of the three is set.
        return self.patient_id or self.thread_id or self.user_id  # type: ignore[return-value]


class PurgeRun(models.Model):
    """One run of `purge_expired` (not a dry run): when, and what it did."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    threads_purged = models.IntegerField(default=0)
    threads_kept = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"purge run {self.pk}"


class ThreadPurge(models.Model):
    """A thread's purge: planned (counts and digest of what is to go), then completed.

    `sha256` is the digest of the manifest of everything removed, computed
    before the first deletion (retention/purge.py `manifest_lines` says its
    lines), so a backup can be checked against it. `removed_*` count what the
    batches actually deleted, in the same transactions as the deletions.
    """

    thread = models.OneToOneField(Thread, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(PurgeRun, on_delete=models.PROTECT, related_name="threads")
    completed_run = models.ForeignKey(
        PurgeRun, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    retained_until = models.DateField()
    upto_seq = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    planned = models.JSONField()
    removed_messages = models.IntegerField(default=0)
    removed_attachments = models.IntegerField(default=0)
    removed_blobs = models.IntegerField(default=0)
    removed_receipts = models.IntegerField(default=0)
    removed_events = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"purge of thread {self.thread_id}"

    def removed(self) -> dict[str, int]:
        return {
            "messages": self.removed_messages,
            "attachments": self.removed_attachments,
            "blobs": self.removed_blobs,
            "receipts": self.removed_receipts,
            "events": self.removed_events,
        }
