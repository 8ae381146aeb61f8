"""Posting messages: the hot path, one post or a batch (group commit).

In one transaction a post takes the thread's message number and the
department's event number (both under row locks, thread first), checks
membership and the room key state (version, commitment, chain position:
docs/crypto.md §8) under those locks, and writes the message, its event
and its audit entry. The ack is sent only after commit; fan-out runs on
commit. `check_post_messages` does the same for a batch of posts that
arrived together: one transaction, a few statements for the whole batch,
and each post its own ack or refusal, as if posted alone.
"""

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.keys import active_identity
from accounts.models import IdentityKey, User
from audit.actions import record, record_many
from chat.events import append_event, append_message_events, message_payload
from chat.keystate import (
    check_consult_post,
    check_room_key,
    take_department_numbers,
    take_department_seq,
)
from chat.models import Message, Thread
from core.crypto import (
    BadSignature,
    CryptoError,
    EnvelopeHeader,
    PublicIdentity,
    verify_envelope,
)
from core.errors import N_, ErrorCode, NotFound, RoundsError
from core.events import EventKind
from media.attachments import check_attachment_refs, do_attach_uploads
from rooms import access


def envelope_hash(envelope: dict[str, Any], attachments: list[dict[str, Any]] | None = None) -> str:
    """What tells a retry from another post: the envelope, and the photo refs if any
    (a text post's hash is the envelope's alone, as before photos existed)."""
    body = {"envelope": envelope, "attachments": attachments} if attachments else envelope
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def ciphertext_size(envelope: dict[str, Any]) -> int:
    """Bytes of ciphertext behind the base64 text, without decoding it."""
    text: str = envelope["ciphertext"]
    return len(text) * 3 // 4 - text[-2:].count("=")


def _ack_for(message: Message) -> dict[str, Any]:
    return {
        "message_id": message.pk,
        "thread": message.thread_id,
        "seq": message.seq,
        "created_at": message.created_at.isoformat(),
    }


def check_post_message(
    actor: User,
    thread_id: int,
    client_msg_id: str,
    envelope: dict[str, Any],
    attachments: Sequence[Any] = (),
) -> dict[str, Any]:
    """Verify an envelope and store it once; a retry with the same content gets the first ack.

    The envelope must be signed by the poster's published identity and its
    header must name this thread, this poster and this client_msg_id (the
    department and key version are checked under the locks, in
    `do_post_message`). Returns the ack data (message id, per-thread seq,
    server timestamp). The first attempt goes straight to the insert; only a
    retry, caught by the unique (sender, client_msg_id) constraint, pays for
    a look-up. So does a refusal: a retry whose ack was lost gets that ack
    even if the thread closed, the sender left or the key rotated since.
    `attachments` (photo refs, media.attachments) are attached in the same
    transaction; the retry check covers them too.
    """
    access.check_authenticated(actor)
    header = check_envelope(actor, thread_id, client_msg_id, envelope)
    refs = check_attachment_refs(attachments) if attachments else []
    body_hash = envelope_hash(envelope, refs)
    try:
        return do_post_message(actor, thread_id, client_msg_id, envelope, body_hash, header, refs)
    except (IntegrityError, RoundsError) as refusal:
        if isinstance(refusal, RoundsError) and refusal.code not in RETRYABLE:
            raise
        existing = Message.objects.filter(sender_id=actor.pk, client_msg_id=client_msg_id).first()
        if existing is None:
            raise
        return _replay_ack(existing, thread_id, body_hash)


def check_envelope(
    actor: User,
    thread_id: int,
    client_msg_id: str,
    envelope: dict[str, Any],
    corrects: str | None = None,
) -> EnvelopeHeader:
    """The sender's signature over the envelope, and a header that matches the post
    (or the correction of the message whose client_msg_id is `corrects`).

    Runs before any lock is taken: a signature check costs about 0.1 ms.
    """
    identity = active_identity(actor.pk)
    if identity is None:
        raise RoundsError(N_("Publish your identity key first."), code=ErrorCode.INVALID_KEY)
    return _verified_header(identity, actor.pk, thread_id, client_msg_id, envelope, corrects)


def _verified_header(
    identity: Any,
    sender_id: int,
    thread_id: int,
    client_msg_id: str,
    envelope: dict[str, Any],
    corrects: str | None = None,
) -> EnvelopeHeader:
    try:
        sender_key = parsed_identity(identity.x25519, identity.ed25519)
        header = verify_envelope(envelope, sender_key=sender_key)
    except BadSignature:
        raise RoundsError(
            N_("The envelope's signature does not verify with your published key."),
            code=ErrorCode.BAD_SIGNATURE,
        ) from None
    except CryptoError as error:
        raise RoundsError(
            N_("Invalid envelope: %(why)s"), code=ErrorCode.INVALID_ENVELOPE, params={"why": error}
        ) from None
    if (header.thread, header.sender, header.client_msg_id, header.corrects) != (
        thread_id,
        sender_id,
        client_msg_id,
        corrects,
    ):
        raise RoundsError(
            N_("The envelope was made for another thread, sender, client_msg_id or correction."),
            code=ErrorCode.ENVELOPE_MISMATCH,
        )
    return header


@functools.lru_cache(maxsize=4096)
def parsed_identity(x25519: str, ed25519: str) -> PublicIdentity:
    """Public keys are checked as points once per process, not on every post."""
    return PublicIdentity.from_dict({"x25519": x25519, "ed25519": ed25519})


def _replay_ack(existing: Message, thread_id: int, body_hash: str) -> dict[str, Any]:
    if existing.thread_id != thread_id or existing.body_hash != body_hash:
        raise RoundsError(
            N_("This client_msg_id was already used for another message."),
            code=ErrorCode.CLIENT_MSG_ID_CONFLICT,
            data={"message_id": existing.pk},
        )
    return {**_ack_for(existing), "duplicate": True}


def _take_thread_seq(thread_id: int) -> tuple[int, int, bool] | None:
    """Next message number, the department and whether it is a consult's thread,
    if the thread exists and is open."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_thread SET last_seq = last_seq + 1 "
            "WHERE id = %s AND closed_at IS NULL RETURNING last_seq, department_id, is_consult",
            [thread_id],
        )
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), int(row[1]), bool(row[2]))


def do_post_message(
    actor: User,
    thread_id: int,
    client_msg_id: str,
    envelope: dict[str, Any],
    body_hash: str,
    header: EnvelopeHeader,
    refs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the message, its photos, its event and its audit entry in one transaction.

    Assumes the envelope's signature was checked. Membership and the room
    key version are checked once the department's row lock is held
    (removals and key publications take the same lock), so a post racing a
    removal either commits before it or is refused. The message row comes
    before the photos, so a retry meets the unique (sender, client_msg_id)
    before finding its uploads already attached.
    """
    with transaction.atomic():
        taken = _take_thread_seq(thread_id)
        if taken is None:
            thread = Thread.objects.filter(pk=thread_id).first()
            if thread is None or not (
                access.is_member(actor, thread.department_id)
                or access.is_consult_writer(actor, thread_id)
            ):
                raise NotFound(N_("Thread not found."))
            raise RoundsError(N_("This thread is closed."), code=ErrorCode.THREAD_CLOSED)
        seq, department_id, is_consult = taken
        event_seq, key_state = take_department_seq(department_id)
        guest = None
        if is_consult:
            guest = check_consult_post(actor, thread_id, department_id, header, key_state)
        elif not access.is_member(actor, department_id):
            raise NotFound(N_("Thread not found."))
        else:
            check_room_key(header, department_id, key_state)
        message = Message.objects.create(
            thread_id=thread_id,
            seq=seq,
            sender_id=actor.pk,
            client_msg_id=client_msg_id,
            header=envelope["header"],
            ciphertext=envelope["ciphertext"],
            body_hash=body_hash,
            created_at=timezone.now(),
        )
        if refs:
            patient_id = Thread.objects.values_list("patient_id", flat=True).get(pk=thread_id)
            do_attach_uploads(message, thread_id, department_id, patient_id, actor, refs)
        append_event(
            department_id,
            EventKind.MESSAGE_NEW,
            message=message,
            message_data=message_payload(message, actor.username),
            seq=event_seq,
            guest_user_id=guest,
        )
        record(
            "message.posted",
            actor=actor,
            department_id=department_id,
            object_type="message",
            object_id=message.pk,
            data={"thread_id": thread_id, "seq": seq, "bytes": ciphertext_size(envelope)},
        )
    return _ack_for(message)


@dataclass(frozen=True)
class Post:
    """One `message.post` as received: who, where, the envelope and its photo refs."""

    actor: User
    thread_id: int
    client_msg_id: str
    envelope: dict[str, Any]
    attachments: tuple[Any, ...] = ()


def check_post_messages(posts: list[Post]) -> list[dict[str, Any] | RoundsError]:
    """Verify and store posts that arrived together, in one transaction.

    Returns, for each post in order, its ack or its refusal: the same as
    `check_post_message` gives for that post alone, in the order given (a
    post's seq is below every later accepted post of its thread). Should
    the batch's insert meet the unique (sender, client_msg_id), a retry of a
    post stored before, it is rolled back and each post is stored on its
    own instead, where a retry gets its first ack. A post with photos is
    stored alone, in its place among the others (`_photos_apart`).
    """
    if any(post.attachments for post in posts):
        return _photos_apart(posts)
    results: list[dict[str, Any] | RoundsError | None] = [None] * len(posts)
    senders = {post.actor.pk for post in posts}
    identities = {
        key.user_id: key
        for key in IdentityKey.objects.filter(user_id__in=senders, replaced_at__isnull=True)
    }
    checked: list[tuple[int, Post, EnvelopeHeader, str]] = []
    for index, post in enumerate(posts):
        try:
            access.check_authenticated(post.actor)
            header = _checked_header(post, identities.get(post.actor.pk))
        except RoundsError as refusal:
            results[index] = refusal
            continue
        checked.append((index, post, header, envelope_hash(post.envelope)))
    # A consult's posts (under its thread key) take the one-post path, which checks it.
    for index, post, header, _ in checked:
        if header.under_thread_key:
            results[index] = _post_alone(post)
    checked = [entry for entry in checked if not entry[2].under_thread_key]
    if checked:
        try:
            with transaction.atomic():
                stored = _store_posts(checked)
        except IntegrityError:
            stored = {index: _post_alone(post) for index, post, _, _ in checked}
        for index, outcome in stored.items():
            results[index] = outcome
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]  # every slot filled: the assert above


def _photos_apart(posts: list[Post]) -> list[dict[str, Any] | RoundsError]:
    """Text posts in batches, each post with photos alone between them, in the order given
    (a socket's posts keep their order); the text-only batch path stays as it is."""
    results: list[dict[str, Any] | RoundsError] = []
    run: list[Post] = []
    for post in [*posts, None]:
        if post is not None and not post.attachments:
            run.append(post)
            continue
        if run:
            results.extend(check_post_messages(run))
            run = []
        if post is not None:
            results.append(_post_alone(post))
    return results


def _post_alone(post: Post) -> dict[str, Any] | RoundsError:
    try:
        return check_post_message(
            post.actor, post.thread_id, post.client_msg_id, post.envelope, post.attachments
        )
    except RoundsError as refusal:
        return refusal


def _checked_header(post: Post, identity: Any) -> EnvelopeHeader:
    """`check_envelope` with the sender's identity already fetched."""
    if identity is None:
        raise RoundsError(N_("Publish your identity key first."), code=ErrorCode.INVALID_KEY)
    return _verified_header(
        identity, post.actor.pk, post.thread_id, post.client_msg_id, post.envelope
    )


def _take_thread_numbers(thread_id: int, count: int) -> dict[str, Any] | None:
    """Lock the thread and take `count` message numbers (none if it is closed).

    Returns the thread's department, `closed_at`, `last_seq` as it was
    before and `taken`; None if there is no such thread.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE chat_thread SET last_seq = last_seq + "
            "CASE WHEN closed_at IS NULL THEN %s ELSE 0 END "
            "WHERE id = %s RETURNING department_id, closed_at, last_seq, is_consult",
            [count, thread_id],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    department_id, closed_at, last_seq, is_consult = row
    taken = count if closed_at is None else 0
    return {
        "pk": thread_id,
        "department_id": department_id,
        "closed_at": closed_at,
        "last_seq": int(last_seq) - taken,
        "taken": taken,
        "first": int(last_seq) - taken,
        "is_consult": bool(is_consult),
    }


def _take_department_numbers(department_id: int, count: int) -> dict[str, Any]:
    """Lock the department and take `count` event numbers; its room key state with them."""
    event_seq, key_state = take_department_numbers(department_id, count)
    return {
        "pk": department_id,
        "event_seq": event_seq - count,
        "taken": count,
        "first": event_seq - count,
        "key_state": key_state,
    }


def _give_back_unused_numbers(
    threads: dict[int, dict[str, Any]], departments: dict[int, dict[str, Any]]
) -> None:
    """Set each counter to the last number used, where refused posts left some unused."""
    with connection.cursor() as cursor:
        for thread in threads.values():
            if thread["last_seq"] - thread["first"] != thread["taken"]:
                cursor.execute(
                    "UPDATE chat_thread SET last_seq = %s WHERE id = %s",
                    [thread["last_seq"], thread["pk"]],
                )
        for department in departments.values():
            if department["event_seq"] - department["first"] != department["taken"]:
                cursor.execute(
                    "UPDATE rooms_department SET event_seq = %s WHERE id = %s",
                    [department["event_seq"], department["pk"]],
                )


RETRYABLE = (ErrorCode.THREAD_CLOSED, ErrorCode.NOT_FOUND, ErrorCode.KEY_ROTATION_REQUIRED)


def _answer_stored_retries(
    checked: list[tuple[int, Post, EnvelopeHeader, str]],
    outcomes: dict[int, dict[str, Any] | RoundsError],
) -> None:
    """A refused post that was stored before (its ack was lost) gets that first ack,
    as in `check_post_message`: one look-up, for refused posts only."""
    refused = [
        (index, post, body_hash)
        for index, post, _, body_hash in checked
        if isinstance(outcome := outcomes.get(index), RoundsError) and outcome.code in RETRYABLE
    ]
    if not refused:
        return
    stored = {
        (message.sender_id, message.client_msg_id): message
        for message in Message.objects.filter(
            sender_id__in={post.actor.pk for _, post, _ in refused},
            client_msg_id__in={post.client_msg_id for _, post, _ in refused},
        )
    }
    for index, post, body_hash in refused:
        first = stored.get((post.actor.pk, post.client_msg_id))
        if first is not None:
            try:
                outcomes[index] = _replay_ack(first, post.thread_id, body_hash)
            except RoundsError as refusal:
                outcomes[index] = refusal


def _store_posts(
    checked: list[tuple[int, Post, EnvelopeHeader, str]],
) -> dict[int, dict[str, Any] | RoundsError]:
    """Under the threads' then the departments' row locks, decide and write every post.

    The numbers are taken up front, as many as there are posts, by the same
    statements that take the locks; the few a refused post leaves unused are
    given back before commit, so the sequences stay without gaps.
    """
    per_thread: dict[int, int] = {}
    for _, post, _, _ in checked:
        per_thread[post.thread_id] = per_thread.get(post.thread_id, 0) + 1
    threads = {
        thread_id: row
        for thread_id in sorted(per_thread)
        if (row := _take_thread_numbers(thread_id, per_thread[thread_id])) is not None
    }
    per_department: dict[int, int] = {}
    for taken in threads.values():
        if taken["closed_at"] is None:
            department_id = taken["department_id"]
            per_department[department_id] = per_department.get(department_id, 0) + taken["taken"]
    for taken in threads.values():
        per_department.setdefault(taken["department_id"], 0)
    departments = {
        department_id: _take_department_numbers(department_id, per_department[department_id])
        for department_id in sorted(per_department)
    }
    department_ids = sorted(departments)
    senders = {post.actor.pk for _, post, _, _ in checked}
    members = access.active_member_pairs(senders, department_ids)
    # A retry of a post stored earlier fails the batch's insert on the unique
    # (sender, client_msg_id), and the batch is then stored post by post; the
    # first attempt, by far the common case, pays for no look-up.
    earlier: dict[tuple[int, str], Message] = {}
    now = timezone.now()
    outcomes: dict[int, dict[str, Any] | RoundsError] = {}
    accepted: list[tuple[int, Post, Message, int]] = []  # index, post, message, department
    retried: list[tuple[int, Message, int, str]] = []  # a second copy of a post of this batch
    for index, post, header, body_hash in checked:
        key = (post.actor.pk, post.client_msg_id)
        try:
            if key in earlier:
                if earlier[key].pk is None:
                    retried.append((index, earlier[key], post.thread_id, body_hash))
                else:
                    outcomes[index] = _replay_ack(earlier[key], post.thread_id, body_hash)
                continue
            thread = threads.get(post.thread_id)
            if thread is None or (post.actor.pk, thread["department_id"]) not in members:
                raise NotFound(N_("Thread not found."))
            if thread["closed_at"] is not None:
                raise RoundsError(N_("This thread is closed."), code=ErrorCode.THREAD_CLOSED)
            if thread["is_consult"]:
                raise RoundsError(
                    N_("A consult's thread is written under its thread key."),
                    code=ErrorCode.ENVELOPE_MISMATCH,
                )
            department = departments[thread["department_id"]]
            check_room_key(header, department["pk"], department["key_state"])
        except RoundsError as refusal:
            outcomes[index] = refusal
            continue
        thread["last_seq"] += 1
        message = Message(
            thread_id=post.thread_id,
            seq=thread["last_seq"],
            sender_id=post.actor.pk,
            client_msg_id=post.client_msg_id,
            header=post.envelope["header"],
            ciphertext=post.envelope["ciphertext"],
            body_hash=body_hash,
            created_at=now,
        )
        earlier[key] = message  # a second copy in this batch is a retry of this one
        accepted.append((index, post, message, department["pk"]))
    _answer_stored_retries(checked, outcomes)
    event_seqs = []
    for _, _, _, department_id in accepted:
        departments[department_id]["event_seq"] += 1
        event_seqs.append(departments[department_id]["event_seq"])
    _give_back_unused_numbers(threads, departments)
    if not accepted:
        return outcomes
    Message.objects.bulk_create([message for _, _, message, _ in accepted])
    by_department: dict[int, list[tuple[int, Message, dict[str, Any]]]] = {}
    for (_, post, message, department_id), event_seq in zip(accepted, event_seqs, strict=True):
        by_department.setdefault(department_id, []).append(
            (event_seq, message, message_payload(message, post.actor.username))
        )
    for department_id, numbered in by_department.items():
        append_message_events(department_id, numbered)
    record_many(
        [
            {
                "action": "message.posted",
                "department_id": department_id,
                "object_type": "message",
                "object_id": message.pk,
                "data": {
                    "thread_id": message.thread_id,
                    "seq": message.seq,
                    "bytes": ciphertext_size(post.envelope),
                },
            }
            for _, post, message, department_id in accepted
        ],
        actors=[post.actor for _, post, _, _ in accepted],
    )
    for index, _, message, _ in accepted:
        outcomes[index] = _ack_for(message)
    for index, message, thread_id, body_hash in retried:
        try:
            outcomes[index] = _replay_ack(message, thread_id, body_hash)
        except RoundsError as refusal:
            outcomes[index] = refusal
    return outcomes
