"""Corrections: a sender replaces the text of their own recent message.

A correction is a new envelope, sealed and signed like a post (current room
key, this thread, this sender, its own client_msg_id) whose signed header's
`corrects` names the client_msg_id of the message it replaces, so a server
cannot move it onto another message: readers check that binding and show
the original when it fails. The server checks it like a post's envelope
(chat.posting.check_envelope, check_room_key), and stores it as a new
`Correction` row: nothing is overwritten, the original row and envelope
stay, and every version is kept for compliance (compliance/timeline.py).
Members get the latest version with the message (`Message.correction`) and
hear of each through a durable `message.corrected` event.

Who may: its sender, a member, within ROUNDS_CORRECTION_WINDOW_SECONDS of
posting it, while it is not redacted and its thread is open
(rooms.access.check_may_correct). A retry under the same client_msg_id
answers the first correction, with no second version, event or audit entry.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from chat.events import append_event
from chat.keystate import check_consult_post, check_room_key, lock_consult
from chat.models import Correction, Message, Thread
from chat.numbering import take_department_seq
from chat.posting import check_envelope, ciphertext_size, envelope_hash
from core.crypto import EnvelopeHeader
from core.errors import N_, ErrorCode, NotFound, RoundsError
from core.events import EventKind
from rooms import access


def correction_ack(correction: Correction, message: Message) -> dict[str, Any]:
    """The answer to a correction, the first time and every retry alike."""
    return {
        "message_id": message.pk,
        "thread": message.thread_id,
        "seq": message.seq,
        "correction_id": correction.pk,
        "version": correction.version,
        "corrected_at": correction.created_at.isoformat(),
    }


def _replay_ack(earlier: Correction, message_id: int, body_hash: str) -> dict[str, Any]:
    if earlier.message_id != message_id or earlier.body_hash != body_hash:
        raise RoundsError(
            N_("This client_msg_id was already used for another correction."),
            code=ErrorCode.CLIENT_MSG_ID_CONFLICT,
            data={"message_id": earlier.message_id},
        )
    return {**correction_ack(earlier, earlier.message), "duplicate": True}


def check_correct_message(
    actor: User, message_id: int, client_msg_id: str, envelope: dict[str, Any]
) -> dict[str, Any]:
    """Verify a correction's envelope and store it as the message's next version, once.

    Args:
        message_id: the message corrected (the caller's own).
        client_msg_id: the correction's own id, in its envelope's header; a
            retry under it gets the first ack with `"duplicate": true`.
        envelope: sealed under the department's current room key, naming
            this thread, the caller and `client_msg_id`, with `corrects` the
            message's client_msg_id.

    Returns:
        The ack data: message id, thread, seq, the correction's id, its
        version (2 for the first correction) and `corrected_at`.

    Raises:
        NotFound: unknown message, or the caller is not a member of its department.
        Forbidden: someone else's message.
        RoundsError: `message_redacted`, `thread_closed`, `correction_window_closed`,
            `client_msg_id_conflict`, an envelope's refusal (`bad_signature`,
            `invalid_envelope`, `envelope_mismatch`, `key_rotation_required`…).
    """
    access.check_authenticated(actor)
    body_hash = envelope_hash(envelope)
    earlier = (
        Correction.objects.filter(sender_id=actor.pk, client_msg_id=client_msg_id)
        .select_related("message")
        .first()
    )
    if earlier is not None:
        return _replay_ack(earlier, message_id, body_hash)
    message = access.access_message(actor, message_id)
    access.check_may_correct(actor, message, message.thread, timezone.now())
    header = check_envelope(
        actor, message.thread_id, client_msg_id, envelope, corrects=message.client_msg_id
    )
    if Message.objects.filter(sender_id=actor.pk, client_msg_id=client_msg_id).exists():
        raise RoundsError(
            N_("This client_msg_id was already used for a message."),
            code=ErrorCode.CLIENT_MSG_ID_CONFLICT,
        )
    try:
        return do_correct_message(actor, message.pk, client_msg_id, envelope, body_hash, header)
    except IntegrityError:
        # The same correction, sent twice at once: the other one was stored first.
        earlier = Correction.objects.select_related("message").get(
            sender_id=actor.pk, client_msg_id=client_msg_id
        )
        return _replay_ack(earlier, message_id, body_hash)


def do_correct_message(
    actor: User,
    message_id: int,
    client_msg_id: str,
    envelope: dict[str, Any],
    body_hash: str,
    header: EnvelopeHeader,
) -> dict[str, Any]:
    """Store the correction, point the message at it, audit it and append its event,
    in one transaction.

    Assumes the envelope's signature and binding were checked
    (`check_correct_message`). Locks as a redaction does: the thread (a
    close), the message (a redaction, another correction: versions are
    numbered under it), then the department (removals, key publications),
    under which membership, the rule and the room key are checked again.
    """
    with transaction.atomic():
        thread_id = Message.objects.values_list("thread_id", flat=True).get(pk=message_id)
        thread = Thread.objects.select_for_update().get(pk=thread_id)
        message = Message.objects.select_for_update().get(pk=message_id)
        event_seq, key_state = take_department_seq(thread.department_id)
        guest = None
        if thread.is_consult:
            # Under the consult's thread key, by a member or its guest (chat/posting.py).
            guest = check_consult_post(
                actor,
                lock_consult(thread.pk),
                thread.department_id,
                header,
                key_state,
                member=access.is_member(actor, thread.department_id),
            )
        elif access.active_membership(actor, thread.department_id) is None:
            raise NotFound(N_("Message not found."))
        now = timezone.now()
        access.check_may_correct(actor, message, thread, now)
        if not thread.is_consult:
            check_room_key(header, thread.department_id, key_state)
        version = (message.correction or {}).get("version", 1) + 1
        correction = Correction.objects.create(
            message=message,
            version=version,
            sender=actor,
            client_msg_id=client_msg_id,
            header=envelope["header"],
            ciphertext=envelope["ciphertext"],
            body_hash=body_hash,
            created_at=now,
        )
        message.correction = {
            "id": correction.pk,
            "version": version,
            "client_msg_id": client_msg_id,
            "envelope": {"header": envelope["header"], "ciphertext": envelope["ciphertext"]},
            "corrected_at": now.isoformat(),
        }
        message.save(update_fields=["correction"])
        record(
            "message.corrected",
            actor=actor,
            department_id=thread.department_id,
            object_type="message",
            object_id=message.pk,
            data={
                "thread_id": thread.pk,
                "seq": message.seq,
                "version": version,
                "correction_id": correction.pk,
                "bytes": ciphertext_size(envelope),
            },
        )
        append_event(
            thread.department_id,
            EventKind.MESSAGE_CORRECTED,
            {
                "message": {"id": message.pk, "thread": thread.pk, "seq": message.seq},
                "by": {"id": actor.pk, "username": actor.username},
                "correction": message.correction,
            },
            message=message,
            seq=event_seq,
            guest_user_id=guest,
        )
    return correction_ack(correction, message)
