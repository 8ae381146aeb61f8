"""The department event stream: allocate, store, and fan out after commit.

Each department numbers its events densely under its row lock; an event is
stored in the action's transaction and sent to the channel layer only once
that transaction commits, so nobody hears of what might roll back. The JSON
text of a frame is encoded once here and relayed as is to every socket.
"""

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from chat.models import Event, Message
from chat.numbering import next_event_seq
from core.events import EventKind
from push.notify import message_posted
from rounds import metrics

logger = logging.getLogger(__name__)


def dumps(frame: dict[str, Any]) -> str:
    """A frame's compact JSON text. orjson, with `json` for the little it refuses
    (integers beyond 64 bits, lone surrogates), so what can be sent stays the same."""
    try:
        return orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def stored_json(text: str | None) -> orjson.Fragment | None:
    """A JSON column's text as the database returned it, embedded in a frame as it is by
    `dumps`: a history page's envelope headers are not decoded to be encoded again."""
    return None if text is None else orjson.Fragment(text)


def department_group(department_id: int) -> str:
    return f"dept.{department_id}"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_group(auth_session_id: int) -> str:
    return f"authsession.{auth_session_id}"


def message_payload(message: Message, sender_username: str) -> dict[str, Any]:
    return message_row_payload(
        (
            message.pk,
            message.thread_id,
            message.seq,
            message.sender_id,
            sender_username,
            message.client_msg_id,
            message.header,
            message.ciphertext,
            message.created_at,
            message.attachments,
            message.redacted_at,
            message.redacted_by_id,
            message.correction,
        )
    )


# The columns a message's frame needs, for `values_list`: pages and resumes
# read thousands of rows, and building model objects (the sender's whole
# user row included) was most of their time.
MESSAGE_COLUMNS = (
    "id",
    "thread_id",
    "seq",
    "sender_id",
    "sender__username",
    "client_msg_id",
    "header",
    "ciphertext",
    "created_at",
    "attachments",
    "redacted_at",
    "redacted_by_id",
    "correction",
)


def message_row_payload(row: tuple[Any, ...], *, retained: bool = False) -> dict[str, Any]:
    """`message_payload` from a row of MESSAGE_COLUMNS.

    A redacted message is a tombstone: no envelope and no photos, only who
    redacted it and when, so a member's client never receives its ciphertext
    again. `retained` keeps them, with the tombstone's `redacted` beside:
    for a compliance access (case and reason given), never for a member.
    A corrected message carries its latest version as `correction` (None
    when never corrected, hidden with the rest on a tombstone).
    """
    (
        pk,
        thread_id,
        seq,
        sender_id,
        username,
        client_msg_id,
        header,
        ciphertext,
        created_at,
        attachments,
        redacted_at,
        redacted_by,
        correction,
    ) = row
    hidden = redacted_at is not None and not retained
    return {
        "id": pk,
        "thread": thread_id,
        "seq": seq,
        "sender": {"id": sender_id, "username": username},
        "client_msg_id": client_msg_id,
        "envelope": None if hidden else {"header": header, "ciphertext": ciphertext},
        "created_at": created_at.isoformat(),
        "attachments": [] if hidden else attachments or [],
        "redacted": None
        if redacted_at is None
        else {"at": redacted_at.isoformat(), "by": redacted_by},
        "correction": None if hidden else correction,
    }


def event_frame(event: Event, message_data: dict[str, Any] | None = None) -> dict[str, Any]:
    """The server → client frame for a stored event."""
    frame: dict[str, Any] = {
        "type": event.kind,
        "department": event.department_id,
        "event_seq": event.seq,
    }
    if event.kind == EventKind.MESSAGE_NEW:
        frame["message"] = message_data
    else:
        frame.update(event.payload)
    return frame


def append_event(
    department_id: int,
    kind: EventKind,
    payload: dict[str, Any] | None = None,
    *,
    message: Message | None = None,
    message_data: dict[str, Any] | None = None,
    notify_user_id: int | None = None,
    change: str | None = None,
    seq: int | None = None,
    guest_user_id: int | None = None,
) -> Event:
    """Store an event in the current transaction and publish it on commit.

    `notify_user_id` and `change` also tell that user's sockets, first, that
    their membership changed ("admitted" / "removed"), so a removed member's
    sockets leave the department before any later event is sent to it.
    `seq` is given when the caller already took the number (and the lock).
    `guest_user_id`, a consult's guest, also receives it on their own sockets:
    they are no member, so the department's group does not reach them.
    """
    if seq is None:
        seq = next_event_seq(department_id)
    event = Event.objects.create(
        department_id=department_id,
        seq=seq,
        kind=kind,
        message=message,
        payload=payload or {},
        created_at=timezone.now(),
    )
    _publish_on_commit(
        event, message_data, notify_user_id=notify_user_id, change=change, guest=guest_user_id
    )
    return event


def publish_message_events(events: list[tuple[int, int, dict[str, Any], int | None]]) -> None:
    """Publish the `message.new` events of a batch of posts on commit, in order: each
    (department id, seq, message payload, consult guest or None). Their rows are
    written with the messages' (chat/post_rows.py)."""
    for department_id, seq, message_data, guest in events:
        event = Event(department_id=department_id, seq=seq, kind=EventKind.MESSAGE_NEW)
        _publish_on_commit(event, message_data, guest=guest)


def _publish_on_commit(
    event: Event,
    message_data: dict[str, Any] | None,
    *,
    notify_user_id: int | None = None,
    change: str | None = None,
    guest: int | None = None,
) -> None:
    department_id, seq = event.department_id, event.seq
    text = dumps(event_frame(event, message_data))
    group_message = {"type": "rounds.event", "department": department_id, "seq": seq, "frame": text}

    def publish() -> None:
        group_message["committed_at"] = time.time()  # for ack-to-delivery (rounds/metrics.py)
        if notify_user_id is not None:
            _send(
                user_group(notify_user_id),
                {
                    "type": "rounds.membership",
                    "department": department_id,
                    "seq": seq,
                    "change": change,
                    "frame": text,
                },
            )
        if guest is not None:
            # Before the department's: a member's post is acknowledged before its event
            # reaches them (the batcher sets the outcome once the last send is done).
            _send(
                user_group(guest),
                {"type": "rounds.guest", "department": department_id, "frame": text},
            )
        _send(department_group(department_id), group_message)
        if event.kind == EventKind.MESSAGE_NEW and message_data is not None:
            # Phones hear of it by Web Push (docs/push.md): three numbers on a queue.
            message_posted(
                department_id, message_data["sender"]["id"], message_data["thread"], guest
            )

    transaction.on_commit(publish)


_local = threading.local()


def channel_layer() -> BaseChannelLayer:
    """The configured channel layer (rounds/settings.py always configures one)."""
    layer = get_channel_layer()
    if layer is None:
        raise ImproperlyConfigured("CHANNEL_LAYERS has no default layer.")
    return layer


def _send(group: str, message: dict[str, Any]) -> None:
    """Publish now, or, inside `collecting_publications`, leave it for the async caller."""
    outbox = getattr(_local, "outbox", None)
    if outbox is not None:
        outbox.append((group, message))
        return
    try:
        async_to_sync(channel_layer().group_send)(group, message)
    except Exception:
        # Committed is committed: the sockets are caught up by their process's sweep.
        metrics.PUBLISH_FAILED.inc()
        logger.warning("publishing to %s failed", group, exc_info=True)


def collecting_publications(
    func: Callable[..., Any], *args: Any
) -> tuple[Any, list[tuple[str, dict[str, Any]]]]:
    """Run `func` (in the posting thread) keeping what it publishes on commit.

    Publishing from the posting thread makes it wait for the event loop and
    the channel layer before it can take the next request; the async caller
    publishes the returned (group, message) pairs itself (`publish_all`),
    in commit order, while the posting thread goes on.
    """
    _local.outbox = []
    try:
        return func(*args), _local.outbox
    finally:
        _local.outbox = None


async def publish_all(publications: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish in order, a run of one department's events as one message (`coalesced`);
    raises the channel layer's error (the caller logs it: the events are stored, and
    every process's sweep delivers what a lost publication left out)."""
    layer = channel_layer()
    for group, message in coalesced(publications):
        await layer.group_send(group, message)


def coalesced(
    publications: list[tuple[str, dict[str, Any]]],
) -> list[tuple[str, dict[str, Any]]]:
    """Adjacent `rounds.event` messages to one department's group, as one message: the
    first event as before, the ones after it under "then", as [seq, frame, committed_at].

    A batch of posts publishes one event each; one channel message per event made the
    publication the posting loop's slowest stage (about 0.9 ms an event in the
    throughput benchmark, docs/performance.md) and woke every member's consumer once
    per event. Order is kept: only neighbours merge. A process of an earlier release
    reads the first event and not "then": its sockets see a gap at the next event and
    read the rest back from the database, so a rolling restart loses nothing.
    """
    merged: list[tuple[str, dict[str, Any]]] = []
    for group, message in publications:
        if merged and message["type"] == "rounds.event":
            last_group, last = merged[-1]
            if last_group == group and last["type"] == "rounds.event":
                last.setdefault("then", []).append(
                    [message["seq"], message["frame"], message.get("committed_at")]
                )
                continue
        merged.append((group, message))
    return merged


async def send_ephemeral(department_id: int, frame: dict[str, Any], origin: str) -> None:
    """Typing and the like: relayed to connected members, never stored."""
    await channel_layer().group_send(
        department_group(department_id),
        {
            "type": "rounds.ephemeral",
            "department": department_id,
            "frame": dumps(frame),
            "origin": origin,
        },
    )


def close_session_sockets(auth_session_id: int, reason: str) -> None:
    transaction.on_commit(
        lambda: _send(
            session_group(auth_session_id), {"type": "rounds.session_revoked", "reason": reason}
        )
    )


def close_user_sockets(user_id: int, reason: str) -> None:
    """After commit, close every socket of the user, on every process."""
    transaction.on_commit(
        lambda: _send(user_group(user_id), {"type": "rounds.session_revoked", "reason": reason})
    )
