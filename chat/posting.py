"""Posting messages: the hot path. One path stores posts; a post alone is a batch of one.

The posts that arrive together on a process (chat/consumers/batching.py) are
stored in one transaction. Before it, each envelope's signature is checked
with its sender's key (this process's copy, accounts.keys.sender_keys). In
it, the threads' message numbers and the departments' event numbers are taken
under their row locks, in chat/numbering.py's order; membership and each
sender's current key are read under those locks (rooms.access.post_rights),
and the room key state (version, commitment, chain position: docs/crypto.md
§8) or the consult's thread key state (§14) is checked. The accepted posts'
messages, events and audit entries are then written (chat/post_rows.py: one
statement on PostgreSQL), photos attached, and the events published once the
transaction commits. Each post gets its own ack or refusal, as if posted
alone. The ack is sent only after commit.
"""

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.keys import SenderKey, active_identity, sender_keys
from accounts.models import User
from audit.actions import request_seal
from chat.events import message_payload, publish_message_events
from chat.keystate import check_consult_post, check_room_key, lock_consult
from chat.models import Consult, Message, Thread
from chat.numbering import (
    DepartmentNumbers,
    ThreadNumbers,
    give_back_unused,
    take_post_numbers,
)
from chat.post_rows import PostRow, write_posts
from core.crypto import (
    BadSignature,
    CryptoError,
    EnvelopeHeader,
    PublicIdentity,
    verify_envelope,
)
from core.errors import N_, ErrorCode, NotFound, RoundsError
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


@dataclass(frozen=True)
class Post:
    """One `message.post` as received: who, where, the envelope and its photo refs."""

    actor: User
    thread_id: int
    client_msg_id: str
    envelope: dict[str, Any]
    attachments: tuple[Any, ...] = ()


Outcome = dict[str, Any] | RoundsError


def check_post_message(
    actor: User,
    thread_id: int,
    client_msg_id: str,
    envelope: dict[str, Any],
    attachments: Sequence[Any] = (),
) -> dict[str, Any]:
    """Verify an envelope and store it once; a retry with the same content gets the first ack.

    A batch of one (`check_post_messages`): returns the ack data (message id,
    per-thread seq, server timestamp) or raises the refusal. `attachments`
    (photo refs, media.attachments) are attached in the same transaction;
    the retry check covers them too.
    """
    post = Post(actor, thread_id, client_msg_id, envelope, tuple(attachments))
    outcome = check_post_messages([post])[0]
    if isinstance(outcome, RoundsError):
        raise outcome
    return outcome


def check_post_messages(posts: Sequence[Post]) -> list[Outcome]:
    """Verify and store posts that arrived together; each one's ack or refusal, in order.

    Each envelope must be signed by its sender's current identity key, and its
    header must name this thread, this sender and this client_msg_id (the
    department and key version are checked under the locks). The text posts
    are stored in one transaction, a post with photos in one of its own, in
    the order given (a socket's posts keep their order; a post's seq is below
    every later accepted post of its thread). The first attempt goes straight
    to the insert; only a retry, caught by the unique (sender, client_msg_id),
    pays for a look-up, and so does a refusal: a retry whose ack was lost gets
    that ack even if the thread closed, the sender left or the key rotated since.
    """
    outcomes = _check_each(dict(enumerate(posts)), fresh=False)
    # A signature that fails with this process's copy of a key may be made with its
    # replacement (published on another process): checked once more with the key read now.
    unverified = {
        index: posts[index]
        for index, outcome in outcomes.items()
        if isinstance(outcome, RoundsError) and outcome.code == ErrorCode.BAD_SIGNATURE
    }
    if unverified:
        outcomes.update(_check_each(unverified, fresh=True))
    # In the batch's order: `outcomes` was filled by index, and updating keeps the order.
    results: list[Outcome | None] = [
        outcome if isinstance(outcome, RoundsError) else None for outcome in outcomes.values()
    ]
    checked = [outcome for outcome in outcomes.values() if isinstance(outcome, _Checked)]
    for group in _transactions(checked):
        for index, outcome in _store(group).items():
            results[index] = outcome
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]  # every slot filled: the assert above


@dataclass
class _Checked:
    """A post whose envelope verified, with what storing it needs."""

    index: int
    post: Post
    header: EnvelopeHeader
    body_hash: str
    refs: list[dict[str, Any]]
    signing_key: str  # the sender's Ed25519 key it verified with
    message: Message | None = None
    guest: int | None = None


def _check_each(posts: dict[int, Post], *, fresh: bool) -> dict[int, _Checked | RoundsError]:
    """Each post (by its index in the batch) checked with its sender's key: this
    process's copy, or with `fresh` the one read now; its refusal if it fails."""
    keys = sender_keys({post.actor.pk for post in posts.values()}, fresh=fresh)
    outcomes: dict[int, _Checked | RoundsError] = {}
    for index, post in posts.items():
        try:
            outcomes[index] = _checked(index, post, keys.get(post.actor.pk))
        except RoundsError as refusal:
            outcomes[index] = refusal
    return outcomes


def _checked(index: int, post: Post, key: SenderKey | None) -> _Checked:
    access.check_authenticated(post.actor)
    if key is None:
        raise RoundsError(N_("Publish your identity key first."), code=ErrorCode.INVALID_KEY)
    header = _verified_header(key, post.actor.pk, post.thread_id, post.client_msg_id, post.envelope)
    refs = check_attachment_refs(post.attachments) if post.attachments else []
    return _Checked(index, post, header, envelope_hash(post.envelope, refs), refs, key.ed25519)


def _transactions(checked: list[_Checked]) -> Iterator[list[_Checked]]:
    """Text posts together, each post with photos alone between them, in the order given:
    attaching photos may refuse the post after its message row is written, which
    only its own transaction's rollback can undo."""
    run: list[_Checked] = []
    for entry in checked:
        if not entry.refs:
            run.append(entry)
            continue
        if run:
            yield run
            run = []
        yield [entry]
    if run:
        yield run


def _store(group: list[_Checked]) -> dict[int, Outcome]:
    """Store a group in one transaction. Should the insert meet the unique (sender,
    client_msg_id), a retry of a post stored before, the group is rolled back and each
    post stored on its own, where a retry gets its first ack."""
    try:
        with transaction.atomic():
            outcomes = _decide_and_write(group)
    except IntegrityError:
        if len(group) > 1:
            return {i: o for entry in group for i, o in _store([entry]).items()}
        entry = group[0]
        post = entry.post
        first = Message.objects.filter(
            sender_id=post.actor.pk, client_msg_id=post.client_msg_id
        ).first()
        if first is None:  # another constraint than a retry's: a real failure
            raise
        try:
            outcomes = {entry.index: _replay_ack(first, post.thread_id, entry.body_hash)}
        except RoundsError as refusal:
            outcomes = {entry.index: refusal}
    except RoundsError as refusal:
        # Photos refused after the message row was written (a group of one).
        outcomes = {entry.index: refusal for entry in group}
    _answer_stored_retries(group, outcomes)
    return outcomes


def _decide_and_write(group: list[_Checked]) -> dict[int, Outcome]:
    """Under the threads', the departments' and the consults' locks (chat/numbering.py's
    order), decide and write every post of the group.

    The numbers are taken up front, as many as there are posts, by the
    statements that take the locks; the few a refused post leaves unused are
    given back before commit, so the sequences stay without gaps.
    """
    senders = {entry.post.actor.pk for entry in group}
    threads, departments, rights_rows = take_post_numbers(
        Counter(entry.post.thread_id for entry in group),
        then=access.POST_RIGHTS_IN_THREAD,
        then_params={"users": sorted(senders)},
    )
    consults = {
        thread_id: lock_consult(thread_id)
        for thread_id, thread in threads.items()  # ascending: `threads` was built so
        if thread.is_consult and not thread.closed
    }
    # Read with the numbers where it could be, unless a consult's lock came after it.
    rights = (
        access.post_rights_of(rights_rows)
        if rights_rows is not None and not consults
        else access.post_rights(senders, departments)
    )
    outcomes: dict[int, Outcome] = dict(_verify_again_if_replaced(group, rights.identity))
    first_of: dict[tuple[int, str], _Checked] = {}
    accepted: list[_Checked] = []
    for entry in group:
        key = (entry.post.actor.pk, entry.post.client_msg_id)
        if entry.index in outcomes or key in first_of:
            continue  # refused already, or a second copy (answered once the first is written)
        try:
            entry.guest = _check_place(entry, threads, departments, consults, rights.members)
        except RoundsError as refusal:
            outcomes[entry.index] = refusal
            continue
        first_of[key] = entry
        accepted.append(entry)
    rows = [_numbered(entry, threads, departments) for entry in accepted]
    give_back_unused(list(threads.values()), list(departments.values()))
    if accepted:
        _write(accepted, rows)
    for entry in group:
        if entry.index in outcomes:
            continue
        first = first_of[(entry.post.actor.pk, entry.post.client_msg_id)]
        assert first.message is not None
        try:
            outcomes[entry.index] = (
                _ack_for(first.message)
                if first is entry
                else _replay_ack(first.message, entry.post.thread_id, entry.body_hash)
            )
        except RoundsError as refusal:
            outcomes[entry.index] = refusal
    return outcomes


def _verify_again_if_replaced(
    group: list[_Checked], current: dict[int, str]
) -> dict[int, RoundsError]:
    """Posts verified with a key this process had cached but since replaced (on another
    process) are verified again with the current key, read now; their refusals."""
    stale = {
        entry.index: entry
        for entry in group
        if current.get(entry.post.actor.pk) != entry.signing_key
    }
    refusals = {}
    for index, again in _check_each(
        {index: entry.post for index, entry in stale.items()}, fresh=True
    ).items():
        if isinstance(again, RoundsError):
            refusals[index] = again
        else:
            stale[index].header, stale[index].signing_key = again.header, again.signing_key
    return refusals


def _check_place(
    entry: _Checked,
    threads: dict[int, ThreadNumbers],
    departments: dict[int, DepartmentNumbers],
    consults: dict[int, Consult],
    members: frozenset[tuple[int, int]],
) -> int | None:
    """May this post go in its thread, under the key it names? The consult's guest to
    tell, if any. Under the locks; raises the refusal."""
    actor, thread = entry.post.actor, threads.get(entry.post.thread_id)
    if thread is None:
        raise NotFound(N_("Thread not found."))
    member = (actor.pk, thread.department_id) in members
    if thread.closed:
        if member or (thread.is_consult and access.is_consult_writer(actor, thread.pk)):
            raise RoundsError(N_("This thread is closed."), code=ErrorCode.THREAD_CLOSED)
        raise NotFound(N_("Thread not found."))
    key_state = departments[thread.department_id].key_state
    if thread.is_consult:
        return check_consult_post(
            actor, consults[thread.pk], thread.department_id, entry.header, key_state, member=member
        )
    if not member:
        raise NotFound(N_("Thread not found."))
    check_room_key(entry.header, thread.department_id, key_state)
    return None


def _numbered(
    entry: _Checked, threads: dict[int, ThreadNumbers], departments: dict[int, DepartmentNumbers]
) -> PostRow:
    """The post's rows with its message number and its department's event number."""
    post, thread = entry.post, threads[entry.post.thread_id]
    return PostRow(
        thread_id=post.thread_id,
        seq=thread.use(),
        sender_id=post.actor.pk,
        sender_username=post.actor.username,
        client_msg_id=post.client_msg_id,
        header=post.envelope["header"],
        ciphertext=post.envelope["ciphertext"],
        body_hash=entry.body_hash,
        department_id=thread.department_id,
        event_seq=departments[thread.department_id].use(),
        ciphertext_bytes=ciphertext_size(post.envelope),
    )


def _write(accepted: list[_Checked], rows: list[PostRow]) -> None:
    """Write the posts' rows, attach their photos, and publish their events on commit."""
    now = timezone.now()
    ids = write_posts(rows, now)
    for entry, row in zip(accepted, rows, strict=True):
        message = Message(
            pk=ids[(row.thread_id, row.seq)],
            thread_id=row.thread_id,
            seq=row.seq,
            sender_id=row.sender_id,
            client_msg_id=row.client_msg_id,
            header=row.header,
            ciphertext=row.ciphertext,
            body_hash=row.body_hash,
            created_at=now,
        )
        message._state.adding, message._state.db = False, connection.alias
        entry.message = message
        if entry.refs:
            patient_id = Thread.objects.values_list("patient_id", flat=True).get(pk=row.thread_id)
            do_attach_uploads(
                message, row.thread_id, row.department_id, patient_id, entry.post.actor, entry.refs
            )
    publish_message_events(
        [
            (
                row.department_id,
                row.event_seq,
                message_payload(entry.message, row.sender_username),  # type: ignore[arg-type]
                entry.guest,
            )
            for entry, row in zip(accepted, rows, strict=True)
        ]
    )
    transaction.on_commit(request_seal)


RETRYABLE = (ErrorCode.THREAD_CLOSED, ErrorCode.NOT_FOUND, ErrorCode.KEY_ROTATION_REQUIRED)


def _replay_ack(existing: Message, thread_id: int, body_hash: str) -> dict[str, Any]:
    if existing.thread_id != thread_id or existing.body_hash != body_hash:
        raise RoundsError(
            N_("This client_msg_id was already used for another message."),
            code=ErrorCode.CLIENT_MSG_ID_CONFLICT,
            data={"message_id": existing.pk},
        )
    return {**_ack_for(existing), "duplicate": True}


def _answer_stored_retries(group: list[_Checked], outcomes: dict[int, Outcome]) -> None:
    """A refused post that was stored before (its ack was lost) gets that first ack:
    one look-up, for refused posts only."""
    refused = [
        entry
        for entry in group
        if isinstance(outcome := outcomes.get(entry.index), RoundsError)
        and outcome.code in RETRYABLE
    ]
    if not refused:
        return
    stored = {
        (message.sender_id, message.client_msg_id): message
        for message in Message.objects.filter(
            sender_id__in={entry.post.actor.pk for entry in refused},
            client_msg_id__in={entry.post.client_msg_id for entry in refused},
        )
    }
    for entry in refused:
        first = stored.get((entry.post.actor.pk, entry.post.client_msg_id))
        if first is not None:
            try:
                outcomes[entry.index] = _replay_ack(first, entry.post.thread_id, entry.body_hash)
            except RoundsError as refusal:
                outcomes[entry.index] = refusal


# --- Envelopes -------------------------------------------------------------------


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
