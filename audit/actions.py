"""Writing, sealing and verifying the audit trail."""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.models import GENESIS_HASH, AuditEvent, AuditSeal, chain_hash

logger = logging.getLogger(__name__)

# An entry written by a transaction that commits later than its neighbours is
# still found and sealed if it is at most this much older than the last
# sealed entry. `audit_seal --full` looks at every unsealed entry.
STRAGGLER_WINDOW = timedelta(minutes=10)
SEAL_LOCK_KEY = 0x526F756E6473  # "Rounds", for pg_advisory_xact_lock


def record(
    action: str,
    *,
    actor: Any = None,
    department_id: int | None = None,
    object_type: str = "",
    object_id: Any = "",
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append an entry in the caller's transaction; it is sealed after commit.

    `data` holds identifiers and counts, never message content.
    """
    event = AuditEvent.objects.create(
        at=timezone.now(),
        actor_id=getattr(actor, "pk", None),
        actor_username=getattr(actor, "username", "") or "",
        action=action,
        department_id=department_id,
        object_type=object_type,
        object_id=str(object_id) if object_id != "" else "",
        data=data or {},
        ip=ip,
    )
    transaction.on_commit(request_seal)
    return event


def record_many(entries: list[dict[str, Any]], *, actors: list[Any]) -> None:
    """Append several entries in one insert (a batch of posts); same fields as `record`."""
    now = timezone.now()
    AuditEvent.objects.bulk_create(
        AuditEvent(
            at=now,
            actor_id=getattr(actor, "pk", None),
            actor_username=getattr(actor, "username", "") or "",
            action=entry["action"],
            department_id=entry.get("department_id"),
            object_type=entry.get("object_type", ""),
            object_id=str(entry.get("object_id", "")),
            data=entry.get("data") or {},
            ip=None,
        )
        for entry, actor in zip(entries, actors, strict=True)
    )
    transaction.on_commit(request_seal)


def request_seal() -> None:
    from audit import sealer

    sealer.request()


def _take_seal_lock(wait: bool) -> bool:
    """One sealer at a time. SQLite's IMMEDIATE transactions already are exclusive."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        return bool(cursor.fetchone()[0])


def seal_pending(*, wait: bool = True, full: bool = False, limit: int | None = None) -> int:
    """Chain every committed, unsealed entry, oldest id first. Returns how many.

    Runs in its own transaction, never inside an action's, so chaining adds
    nothing to the time an action holds its locks.
    """
    limit = limit or settings.ROUNDS_AUDIT_SEAL_BATCH
    with transaction.atomic():
        if not _take_seal_lock(wait):
            return 0
        last = AuditSeal.objects.select_related("event").order_by("-seq").first()
        batch = list(_pending(last, full).order_by("id")[:limit])
        seq, prev = (last.seq, last.hash) if last else (0, GENESIS_HASH)
        now = timezone.now()
        seals = []
        for event in batch:
            seq += 1
            digest = chain_hash(seq, prev, event.canonical())
            seals.append(
                AuditSeal(seq=seq, event=event, prev_hash=prev, hash=digest, sealed_at=now)
            )
            prev = digest
        AuditSeal.objects.bulk_create(seals)
    return len(seals)


def _pending(last: AuditSeal | None, full: bool = False) -> QuerySet[AuditEvent]:
    """The unsealed entries a sealer takes after seal `last`: those of the straggler window
    on, or all of them (`full`)."""
    pending = AuditEvent.objects.filter(seal__isnull=True)
    if last is not None and not full:
        pending = pending.filter(at__gte=last.event.at - STRAGGLER_WINDOW)
    return pending


# Past this, /metrics says "at least": counting a huge backlog would slow every scrape.
BACKLOG_COUNT_CAP = 100_000


def unsealed_backlog() -> tuple[int, datetime | None]:
    """For /metrics: how many entries wait for the sealer (up to BACKLOG_COUNT_CAP), and
    when the oldest was written. The sealer's own query: the head seal by its key, then
    the straggler window on the indexed `at`."""
    last = AuditSeal.objects.select_related("event").order_by("-seq").first()
    pending = _pending(last)
    count = pending.order_by()[:BACKLOG_COUNT_CAP].count()
    oldest = pending.order_by("at").values_list("at", flat=True).first() if count else None
    return count, oldest


def seal_all(*, full: bool = False) -> int:
    total = 0
    while sealed := seal_pending(wait=True, full=full):
        total += sealed
    return total


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    unsealed: int
    first_bad_seq: int | None = None
    first_bad_event_id: int | None = None
    reason: str = ""


def _seals_in_order(chunk: int = 2000) -> Iterator[AuditSeal]:
    after = 0
    while True:
        rows = list(
            AuditSeal.objects.select_related("event").filter(seq__gt=after).order_by("seq")[:chunk]
        )
        if not rows:
            return
        yield from rows
        after = rows[-1].seq


def verify_chain() -> VerifyReport:
    """Recompute the whole chain and name the first seal that does not match."""
    prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for seal in _seals_in_order():
        reason = ""
        if seal.seq != expected_seq:
            reason = f"seal {expected_seq} is missing"
        elif seal.prev_hash != prev:
            reason = "previous-hash link does not match"
        elif chain_hash(seal.seq, prev, seal.event.canonical()) != seal.hash:
            reason = "entry content does not match its hash"
        if reason:
            return VerifyReport(
                ok=False,
                checked=checked,
                head_seq=expected_seq - 1,
                head_hash=prev,
                unsealed=_count_unsealed(),
                first_bad_seq=seal.seq,
                first_bad_event_id=seal.event_id,
                reason=reason,
            )
        prev, expected_seq, checked = seal.hash, expected_seq + 1, checked + 1
    return VerifyReport(
        ok=True,
        checked=checked,
        head_seq=expected_seq - 1,
        head_hash=prev,
        unsealed=_count_unsealed(),
    )


def _count_unsealed() -> int:
    return AuditEvent.objects.filter(seal__isnull=True).count()
