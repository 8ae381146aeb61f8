"""Advice requests: a question to a colleague or an on-call role that must be
acknowledged, and escalates while it is not (docs/advice.md).

The question itself is an ordinary message of the patient's thread, encrypted
end to end by the requester's client: the request row only adds who must
answer, how urgently, and the timer. `due_at` is that timer: the moment the
scheduler (advice/scheduler.py) escalates the request or alerts its holder
again. It lives in the database, so it survives a restart, and the row lock
taken to fire it makes it fire once whatever the number of processes.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from chat.models import Message, Thread
from rooms.models import Department, OnCallRole


class Priority(models.TextChoices):
    ROUTINE = "routine", "Routine"
    URGENT = "urgent", "Urgent"
    EMERGENCY = "emergency", "Emergency"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CANCELLED = "cancelled", "Cancelled"


class Answer(models.TextChoices):
    ON_IT = "on_it", "I'm on it"
    CALL_ME = "call_me", "Call me"


class StepKind(models.TextChoices):
    REQUESTED = "requested", "Requested"
    ESCALATED = "escalated", "Escalated"
    REALERTED = "realerted", "Alerted again"
    PASSED = "passed", "Passed on"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    CANCELLED = "cancelled", "Cancelled"


class AdviceRequest(models.Model):
    """Who is asked, how urgently, and who has it now.

    `to_user` or `to_role` (exactly one) is the current addressee: a pass
    changes it, the first step of the timeline keeps the original. `holder` is
    the person it resolved to, the one alerted; `asked` lists everyone alerted
    so far, so an escalation never goes back to someone who let it pass.
    `step` counts the timeline's steps and is what a firing compares and sets,
    so two processes cannot both move the same request on.
    """

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="+")
    # None for a consult's request: its question is posted once the consult opens.
    message = models.OneToOneField(
        Message, on_delete=models.PROTECT, related_name="+", null=True, blank=True
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    priority = models.CharField(max_length=10, choices=Priority.choices)
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_role = models.ForeignKey(
        OnCallRole, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    asked = models.JSONField(default=list)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    answer = models.CharField(max_length=10, choices=Answer.choices, blank=True, default="")
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    step = models.IntegerField(default=0)
    due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(to_user__isnull=True, to_role__isnull=False)
                | Q(to_user__isnull=False, to_role__isnull=True),
                name="advice_one_addressee",
            ),
            models.CheckConstraint(
                condition=Q(priority__in=["routine", "urgent", "emergency"]),
                name="advice_priority",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(due_at__isnull=True),
                name="advice_timer_only_when_open",
            ),
        ]
        indexes = [
            # The scheduler's one question: the open requests whose timer is due.
            models.Index(fields=["due_at"], condition=Q(status="open"), name="advice_open_due"),
            models.Index(fields=["department", "-created_at"]),
            models.Index(fields=["requester", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"advice {self.pk} ({self.priority}, {self.status})"


class AdviceStep(models.Model):
    """One line of a request's timeline, kept for ever: who did what, and who had
    it afterwards. `actor` is None for what the scheduler did on the server's clock."""

    request = models.ForeignKey(AdviceRequest, on_delete=models.PROTECT, related_name="steps")
    number = models.IntegerField()
    kind = models.CharField(max_length=14, choices=StepKind.choices)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    data = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "number"], name="advice_step_unique"),
        ]

    def __str__(self) -> str:
        return f"advice {self.request_id} step {self.number} {self.kind}"
