"""The push sender: one daemon thread per process, fed by a queue (docs/push.md).

`ROUNDS_PUSH_SENDER` picks the mode, as audit/sealer.py's does: "thread" (the
default) hands each job to the thread, so neither a request thread nor the
event loop ever waits for a push service; "inline" runs it in the committing
thread (tests observe it deterministically); "off" sends nothing.

A job is resolved here, not where it was enqueued: who the recipients are,
who is in quiet mode and off duty, which subscriptions are live. Then each
subscription gets one POST (pywebpush: aes128gcm, RFC 8291; VAPID, RFC 8292;
TTL, Urgency and Topic, RFC 8030 §5.2-5.4). A 404 or 410 marks it gone. The
log names the push service's host and status, never a payload, a key or an
endpoint.
"""

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from pywebpush import WebPushException, webpush  # type: ignore[import-untyped]

from push.duty import on_duty_user_ids
from push.models import PushPreference, PushSubscription
from push.subscriptions import push_host
from push.vapid import signer
from rooms.models import Department, Membership
from rounds import metrics
from rounds.daemon import Daemon

logger = logging.getLogger(__name__)

QUEUE_MAX = 10_000
GONE = frozenset({404, 410})


@dataclass(frozen=True)
class Send:
    """A payload for the live subscriptions of some users (push.notify.push_on_commit)."""

    user_ids: tuple[int, ...]
    body: str
    urgency: str
    routine: bool
    topic: str | None
    ttl: int


@dataclass(frozen=True)
class MessagePosted:
    """A message committed in a thread: the other members may hear of it, and the
    guest of the consult it is in (`guest_id`, no member: docs/advice.md "Consults")."""

    department_id: int
    sender_id: int
    thread_id: int
    guest_id: int | None = None


Job = Send | MessagePosted

_queue: "queue.Queue[Job]" = queue.Queue(maxsize=QUEUE_MAX)
_pending = 0  # enqueued and not yet finished, for drain()
_pending_lock = threading.Condition()
_local = threading.local()


def enqueue(job: Job) -> None:
    """Hand a job to the sender; never raises (a lost push must not fail a commit)."""
    mode = getattr(settings, "ROUNDS_PUSH_SENDER", "thread")
    if mode == "off":
        return
    if mode == "inline":
        run(job)
        return
    global _pending
    with _pending_lock:
        try:
            _queue.put_nowait(job)
        except queue.Full:
            metrics.PUSH_SKIPPED.labels("dropped").inc()
            return
        _pending += 1
    metrics.PUSH_QUEUE.inc()
    _sender.ensure()


def drain(timeout: float) -> bool:
    """Wait until every job enqueued so far in this process is done; False on timeout."""
    deadline = time.monotonic() + timeout
    with _pending_lock:
        while _pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _pending_lock.wait(left)
    return True


def _work() -> None:
    """Run each job as it comes, except a new message's: it waits
    ROUNDS_PUSH_MESSAGE_GATHER_SECONDS for the rest of the burst, and the same
    sender's posts in one thread make one push (the coalescing window would send
    the later ones to nobody). A burst costs one look-up of recipients per thread,
    not one per message, and the look-ups stop competing with the posts themselves
    for the process; an advice alert (`Send`) never waits behind them."""
    held: dict[MessagePosted, float] = {}  # each waiting message job, and when it is due
    while True:
        job = _next_job(held)
        if isinstance(job, MessagePosted):
            if job in held:
                _finished()  # the same push already waits
            else:
                held[job] = time.monotonic() + settings.ROUNDS_PUSH_MESSAGE_GATHER_SECONDS
        elif job is not None:
            _run_and_finish(job)
        now = time.monotonic()
        for message in [message for message, due in held.items() if due <= now]:
            del held[message]
            _run_and_finish(message)


def _next_job(held: dict[MessagePosted, float]) -> Job | None:
    """The next queued job, or None once the first held message job is due."""
    due = min(held.values(), default=None)
    try:
        job = _queue.get(timeout=None if due is None else max(0.0, due - time.monotonic()))
    except queue.Empty:
        return None
    metrics.PUSH_QUEUE.dec()
    return job


def _run_and_finish(job: Job) -> None:
    try:
        close_old_connections()
        run(job)
    finally:
        _finished()


def _finished() -> None:
    global _pending
    with _pending_lock:
        _pending -= 1
        _pending_lock.notify_all()


_sender = Daemon("rounds-push-sender", _work)


def run(job: Job) -> None:
    """Resolve and send one job; a failure is counted and logged, never raised."""
    try:
        if isinstance(job, MessagePosted):
            _message_posted(job)
        else:
            _send(job)
    except Exception:
        metrics.PUSH_SKIPPED.labels("failed_job").inc()
        logger.exception("a push job failed")


# --- Resolving recipients ----------------------------------------------------------------


def _without_quiet(user_ids: list[int]) -> list[int]:
    """Drop the users in quiet mode who hold no on-call shift now."""
    quiet = set(
        PushPreference.objects.filter(user_id__in=user_ids, quiet_off_duty=True).values_list(
            "user_id", flat=True
        )
    )
    if not quiet:
        return user_ids
    on_duty = on_duty_user_ids(quiet, timezone.now())
    held = quiet - on_duty
    if held:
        metrics.PUSH_SKIPPED.labels("quiet").inc(len(held))
    return [user_id for user_id in user_ids if user_id not in held]


def _send(job: Send) -> None:
    user_ids = list(job.user_ids)
    if job.routine:
        user_ids = _without_quiet(user_ids)
    if not user_ids:
        return
    for subscription in PushSubscription.objects.live().filter(user_id__in=user_ids):
        deliver(subscription, job.body, urgency=job.urgency, topic=job.topic, ttl=job.ttl)


_coalesce_lock = threading.Lock()
_last_message_push: dict[tuple[int, int], float] = {}


def _not_coalesced(user_ids: list[int], thread_id: int) -> list[int]:
    """Those not pushed about this thread in the window; marks them pushed now.

    Kept per process (a few bytes a pair, pruned as it ages): with several
    processes a user may hear of one thread once per process per window.
    """
    window = settings.ROUNDS_PUSH_MESSAGE_COALESCE_SECONDS
    now = time.monotonic()
    kept: list[int] = []
    with _coalesce_lock:
        if len(_last_message_push) > 50_000:
            for key, at in list(_last_message_push.items()):
                if now - at >= window:
                    del _last_message_push[key]
        for user_id in user_ids:
            last = _last_message_push.get((user_id, thread_id))
            if last is not None and now - last < window:
                metrics.PUSH_SKIPPED.labels("coalesced").inc()
                continue
            _last_message_push[(user_id, thread_id)] = now
            kept.append(user_id)
    return kept


def _message_posted(job: MessagePosted) -> None:
    members = list(
        Membership.objects.active()
        .filter(department_id=job.department_id, user__is_active=True)
        .exclude(user_id=job.sender_id)
        .values_list("user_id", flat=True)
    )
    if job.guest_id is not None and job.guest_id != job.sender_id:
        members.append(job.guest_id)
    # Read once: only members with a live subscription count against the window, and
    # those subscriptions are the ones sent to.
    subscriptions = list(PushSubscription.objects.live().filter(user_id__in=members))
    subscribed = {subscription.user_id for subscription in subscriptions}
    recipients = _not_coalesced(
        _without_quiet([m for m in members if m in subscribed]), job.thread_id
    )
    if not recipients:
        return
    name = Department.objects.filter(pk=job.department_id).values_list("name", flat=True).first()
    body = json.dumps(
        {"kind": "message.new", "department": name or "", "thread": job.thread_id},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    chosen = set(recipients)
    for subscription in subscriptions:
        if subscription.user_id in chosen:
            deliver(subscription, body, urgency="normal", topic=f"t{job.thread_id}", ttl=3600)


# --- Sending -------------------------------------------------------------------------------


def _session() -> requests.Session:
    """One HTTP session per sending thread: push services keep the connection open."""
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def deliver(
    subscription: PushSubscription, body: str, *, urgency: str, topic: str | None, ttl: int
) -> str:
    """POST one encrypted push; returns the outcome (delivered, gone, failed)."""
    headers: dict[str, Any] = {"Urgency": urgency}
    if topic:
        headers["Topic"] = topic
    host = push_host(subscription.endpoint)
    try:
        webpush(
            {
                "endpoint": subscription.endpoint,
                "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
            },
            data=body,
            vapid_private_key=signer(),
            # A new dict each time: webpush writes the audience and expiry into it.
            vapid_claims={"sub": settings.ROUNDS_VAPID_SUBJECT},
            ttl=ttl,
            headers=headers,
            timeout=settings.ROUNDS_PUSH_TIMEOUT_SECONDS,
            requests_session=_session(),
        )
    except WebPushException as error:
        status = getattr(error.response, "status_code", None)
        if status in GONE:
            PushSubscription.objects.filter(pk=subscription.pk, gone_at__isnull=True).update(
                gone_at=timezone.now()
            )
            metrics.PUSH_SENT.labels("gone").inc()
            logger.info("push service %s: subscription %s is gone", host, subscription.pk)
            return "gone"
        metrics.PUSH_SENT.labels("failed").inc()
        logger.warning("push to %s failed with status %s", host, status)
        return "failed"
    except requests.RequestException as error:
        metrics.PUSH_SENT.labels("failed").inc()
        logger.warning("push to %s failed: %s", host, type(error).__name__)
        return "failed"
    PushSubscription.objects.filter(pk=subscription.pk).update(last_sent_at=timezone.now())
    metrics.PUSH_SENT.labels("delivered").inc()
    return "delivered"
