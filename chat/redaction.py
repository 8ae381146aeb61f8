"""Redaction: a member's "delete" of their own message, or a head's moderation.

Nothing is silently deleted (ARCHITECTURE.md): a redacted message stays in
the database, ciphertext, photos and all, retained for compliance. What
changes is what members get: history pages, resume replays and the library
show a tombstone (no envelope, no photos), and the photos' blobs answer
`not_found` to them. The department hears of it through a durable
`message.redacted` event, so a client that was offline drops the content it
holds when it resumes.

Who may: the sender, while a member of the department and while the thread
is open; a head of the department, open thread or closed (moderation). A
closed thread is frozen for its members, so a sender who is not a head asks
a head. Redacting again answers the first redaction, with no second event
and no second audit entry, whoever asks, so a retry after a lost ack is safe.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from chat.consults import open_guest_of
from chat.events import append_event
from chat.models import Message, Thread
from chat.numbering import next_event_seq
from core.errors import N_, NotFound
from core.events import EventKind
from core.reasons import checked_reason
from rooms import access


def redaction_ack(message: Message) -> dict[str, Any]:
    """The answer to a redaction, the first one and every repeat alike."""
    return {
        "message_id": message.pk,
        "thread": message.thread_id,
        "seq": message.seq,
        "redacted_at": message.redacted_at.isoformat() if message.redacted_at else None,
    }


def check_redact_message(actor: User, message_id: int, reason: str | None = None) -> dict[str, Any]:
    """Redact a message the caller sent, or one of a department the caller heads.

    Args:
        reason: an optional note (at most 200 characters) kept in the audit
            trail; plain text, seen by the server and compliance, never by members.

    Returns:
        The ack data: message id, thread, per-thread seq and `redacted_at`.

    Raises:
        NotFound: unknown message, or the caller is not a member of its department.
        Forbidden: a member who is neither its sender nor a head.
        RoundsError(thread_closed): its sender, not a head, once the thread is closed.
        InvalidRequest: a reason over 200 characters.
    """
    reason = checked_reason(reason)
    message = access.access_message(actor, message_id, redact=True)
    if message.redacted_at is not None:
        return redaction_ack(message)
    return do_redact_message(actor, message.pk, reason)


def do_redact_message(actor: User, message_id: int, reason: str) -> dict[str, Any]:
    """Mark the message redacted, audit it and append its event, in one transaction.

    Assumes `check_redact_message` authorised the caller. The thread's row
    lock (taken first, as a post and a close do) settles a race with a
    close; the message's settles two redactions racing (the second answers
    the first); the department's (taken by the event number, as a removal
    does) settles a race with a removal or a role change, so the caller's
    right is checked again under it.
    """
    with transaction.atomic():
        thread_id = Message.objects.values_list("thread_id", flat=True).get(pk=message_id)
        thread = Thread.objects.select_for_update().get(pk=thread_id)
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.redacted_at is not None:
            return redaction_ack(message)
        event_seq = next_event_seq(thread.department_id)
        membership = access.active_membership(actor, thread.department_id)
        role = membership.role if membership is not None else None
        if role is None and thread.is_consult and access.is_consult_writer(actor, thread.pk):
            role = access.GUEST  # a consult's guest removes their own message
        if role is None:
            raise NotFound(N_("Message not found."))
        access.check_may_redact(actor, message.sender_id, role)
        access.check_thread_open_to(role, thread)
        message.redacted_at = timezone.now()
        message.redacted_by = actor
        message.save(update_fields=["redacted_at", "redacted_by"])
        record(
            "message.redacted",
            actor=actor,
            department_id=thread.department_id,
            object_type="message",
            object_id=message.pk,
            data={
                "thread_id": thread.pk,
                "seq": message.seq,
                "sender_id": message.sender_id,
                "as": "sender" if message.sender_id == actor.pk else "head",
                "reason": reason,
            },
        )
        append_event(
            thread.department_id,
            EventKind.MESSAGE_REDACTED,
            {
                "message": {"id": message.pk, "thread": thread.pk, "seq": message.seq},
                "by": {"id": actor.pk, "username": actor.username},
                "redacted_at": message.redacted_at.isoformat(),
            },
            message=message,
            seq=event_seq,
            guest_user_id=open_guest_of(thread),
        )
    return redaction_ack(message)
