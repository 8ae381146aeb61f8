"""What the rest of Rounds calls to push: after commit, off the request thread.

`push_on_commit` is the interface advice requests and their escalation use;
`message_posted` is chat's hook for ordinary new messages (chat/events.py).
Both only register or enqueue: the sender (push/sender.py) resolves who
gets what and talks to the push services. A payload names what happened and
where to look ("advice.request", its department's name, its id), never
anything of a patient: the app fetches the content once it is unlocked.
"""

import json
import re
from collections.abc import Iterable
from functools import partial
from typing import Any, Literal

from django.db import transaction

from push import sender

MAX_PAYLOAD_BYTES = 2048  # a push service takes ~4 KiB after encryption; keep room
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4: base64url alphabet, 32 at most


def push_on_commit(
    user_ids: Iterable[int],
    payload: dict[str, Any],
    *,
    urgency: Literal["normal", "high"] = "normal",
    routine: bool = False,
    topic: str | None = None,
    ttl: int = 3600,
) -> None:
    """Push `payload` to every live subscription of `user_ids` once the transaction commits.

    Args:
        user_ids: who to push to (the caller has decided they may know).
        payload: a small JSON object, `kind` first; never patient data (docs/push.md).
        urgency: RFC 8030 §5.3; "high" wakes a phone that saves its battery.
        routine: skip users in quiet mode who are off duty at sending time.
        topic: RFC 8030 §5.4; a later push with the same topic replaces an
            undelivered earlier one (a request alerting again).
        ttl: seconds the push service keeps it for a phone that is offline.

    Raises:
        ValueError: a payload too large or not JSON, a bad topic or TTL (a bug of the caller).
    """
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if not isinstance(payload.get("kind"), str) or len(body.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError("a push payload is a small JSON object with a `kind`")
    if topic is not None and not TOPIC.fullmatch(topic):
        raise ValueError("a push topic is 1 to 32 characters of the base64url alphabet")
    if urgency not in ("normal", "high") or not 0 <= ttl <= 28 * 24 * 3600:
        raise ValueError("bad urgency or TTL")
    job = sender.Send(
        user_ids=tuple(dict.fromkeys(int(u) for u in user_ids)),
        body=body,
        urgency=urgency,
        routine=routine,
        topic=topic,
        ttl=ttl,
    )
    if job.user_ids:
        transaction.on_commit(partial(sender.enqueue, job))


def message_posted(
    department_id: int, sender_id: int, thread_id: int, guest_id: int | None = None
) -> None:
    """A message was committed: push "message.new" to the department's other members,
    and to the guest of the consult it is in, if any.

    Called after commit on the posting path, so it only enqueues three numbers; the
    sender finds the members, applies quiet mode and coalescing, and sends.
    """
    sender.enqueue(sender.MessagePosted(department_id, sender_id, thread_id, guest_id))


def drain(timeout: float = 30.0) -> bool:
    """Wait until everything enqueued in this process has been sent (tests, benchmarks).

    Returns:
        False when `timeout` seconds passed first.
    """
    return sender.drain(timeout)
