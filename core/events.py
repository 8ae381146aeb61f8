"""The names of the events in a department's durable stream.

Each is also the `type` of the frame that delivers it (core/outbound.py), so
the server's writers, the socket and both clients name events from here.
Ephemeral frames (`typing`) are not events: nothing stores them.
"""

from enum import StrEnum


class EventKind(StrEnum):
    MESSAGE_NEW = "message.new"
    RECEIPT_NEW = "receipt.new"
    MEMBER_ADMITTED = "member.admitted"
    MEMBER_REMOVED = "member.removed"
    MEMBER_ROLE = "member.role_changed"
    THREAD_CREATED = "thread.created"
    THREAD_CLOSED = "thread.closed"
    THREAD_REOPENED = "thread.reopened"
    KEY_ROTATED = "key.rotated"
    MESSAGE_REDACTED = "message.redacted"
    MESSAGE_CORRECTED = "message.corrected"
    MEMBERSHIP_SIGNED = "membership.signed"
    ADVICE_UPDATED = "advice.updated"
    ONCALL_CHANGED = "oncall.changed"
    CONSULT_UPDATED = "consult.updated"
    THREAD_PATIENT_CHANGED = "thread.patient_changed"


def event_kind_choices() -> list[tuple[str, str]]:
    """The model field's choices, labelled as Django labels a TextChoices member."""
    return [(kind.value, kind.name.replace("_", " ").title()) for kind in EventKind]
