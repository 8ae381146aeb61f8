"""Writing, sealing and verifying the audit trail."""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit import quarantine
from audit.models import GENESIS_HASH, AuditEvent, AuditSeal, chain_hash, latest_prune
from audit.stragglers import PassedOver
from rounds import metrics

if TYPE_CHECKING:
    # The user model is the accounts app's, above audit: the trail names the base class.
    from django.contrib.auth.base_user import AbstractBaseUser

logger = logging.getLogger(__name__)

# An entry written by a transaction that commits later than its neighbours is
# still found and sealed if it is at most this much older than the last
# sealed entry. `audit_seal --full` looks at every unsealed entry.
STRAGGLER_WINDOW = timedelta(minutes=10)
# The ids this process's rounds passed over, looked for again by the next rounds.
PASSED_OVER = PassedOver(keep_for=STRAGGLER_WINDOW)
SEAL_LOCK_KEY = 0x526F756E6473  # "Rounds", for pg_advisory_xact_lock


def record(
    action: str,
    *,
    actor: "AbstractBaseUser | None" = None,
    department_id: int | None = None,
    object_type: str = "",
    object_id: Any = "",
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append an entry in the caller's transaction; it is sealed after commit.

    `data` holds identifiers and counts, never message content.
    """
    event = AuditEvent(
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
    _insert(event)
    transaction.on_commit(request_seal)
    return event


_COLUMNS = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
_INSERT = "INSERT INTO audit_auditevent ({}) VALUES ({})".format(  # noqa: S608 (the model's own columns)
    ", ".join(connection.ops.quote_name(str(f.column)) for f in _COLUMNS),
    ", ".join(["%s"] * len(_COLUMNS)),
)


def _insert(event: AuditEvent) -> None:
    """`event.save()` as one statement written once: every action writes an entry, and
    the ORM spent longer building each INSERT than the database took to run it. Each
    value is prepared by its field, as the ORM prepares it."""
    params = [f.get_db_prep_save(getattr(event, f.attname), connection) for f in _COLUMNS]
    with connection.cursor() as cursor:
        if connection.features.can_return_columns_from_insert:
            cursor.execute(_INSERT + " RETURNING id", params)
            event.pk = cursor.fetchone()[0]
        else:
            cursor.execute(_INSERT, params)
            event.pk = cursor.lastrowid
    event._state.adding = False
    event._state.db = connection.alias


def record_many(
    entries: list[dict[str, Any]], *, actors: "Sequence[AbstractBaseUser | None]"
) -> None:
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


def seal_pending(
    *, wait: bool = True, full: bool = False, limit: int | None = None, sweep: bool = True
) -> int:
    """Chain every committed, unsealed entry, oldest id first. Returns how many.

    `sweep` looks at every unsealed entry of the straggler window (`full`: at every
    one); without it, a round looks only above the highest sealed id and at the ids
    this process passed over (audit/stragglers.py), which is what the sealer's thread
    does between its sweeps. Runs in its own transaction, never inside an action's, so
    chaining adds nothing to the time an action holds its locks. An entry that cannot
    be read or encoded is quarantined (audit/quarantine.py) and the chain goes on: one
    bad row must never stop the sealer.
    """
    limit = limit or settings.ROUNDS_AUDIT_SEAL_BATCH
    with transaction.atomic():
        if not _take_seal_lock(wait):
            return 0
        tip = None if sweep or full else _tip()
        above: int | None = None
        new_ids: list[int] = []
        if tip is None:
            head = _head()
            ids = list(_pending(head, full).order_by("id").values_list("id", flat=True)[:limit])
            seq, prev = (head[0], head[1]) if head else (0, GENESIS_HASH)
        else:
            seq, prev, above = tip
            ids, new_ids = _passed_over_and_new(above, limit)
        sealed, quarantined = _chain(ids, seq, prev)
    PASSED_OVER.settle(ids)
    if above is not None:
        PASSED_OVER.note_gaps(above, new_ids)
    for event_id, at_seq, digest in quarantined:
        quarantine.report(event_id, at_seq, digest)
        metrics.AUDIT_QUARANTINED.inc()
    return sealed


def _chain(ids: list[int], seq: int, prev: str) -> tuple[int, list[tuple[int, int, str]]]:
    """Seal these entries in this order after seal `seq` (whose hash is `prev`); how many,
    and the quarantined ones."""
    events = quarantine.load_events(ids)
    sealed_at = _SEALED_AT.get_db_prep_save(timezone.now(), connection)
    rows: list[tuple[Any, ...]] = []
    quarantined = []
    for event_id in ids:
        seq += 1
        canonical, digest = quarantine.encode(events.get(event_id)), None
        if canonical is None:
            digest = quarantine.raw_digest(event_id)
            canonical = quarantine.marker(event_id, digest)
            quarantined.append((event_id, seq, digest))
        hashed = chain_hash(seq, prev, canonical)
        rows.append((seq, event_id, prev, hashed, sealed_at, digest))
        prev = hashed
    _insert_seals(rows)
    return len(rows), quarantined


_SEALED_AT = AuditSeal._meta.get_field("sealed_at")
_SEAL_INSERT = (
    "INSERT INTO audit_auditseal "
    "(seq, event_id, prev_hash, hash, sealed_at, quarantined_sha256) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)


def _insert_seals(rows: list[tuple[Any, ...]]) -> None:
    """The seals, one short statement run for each (psycopg pipelines them; SQLite's
    driver steps one prepared statement): bulk_create spent longer preparing each row's
    values field by field than the database took to insert them, and one statement with
    a placeholder per value cost psycopg more to parse than to run. The values need no
    preparing: numbers, hex text, and one time prepared once."""
    with connection.cursor() as cursor:
        cursor.executemany(_SEAL_INSERT, rows)


def _tip() -> tuple[int, str, int] | None:
    """The last seal's (seq, hash) and the highest entry id sealed, by their indexes;
    None before the first seal, or once every seal is pruned (a sweep then starts from
    the anchor)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT seq, hash, (SELECT MAX(event_id) FROM audit_auditseal) "
            "FROM audit_auditseal ORDER BY seq DESC LIMIT 1"
        )
        row = cursor.fetchone()
    return None if row is None else (int(row[0]), str(row[1]), int(row[2]))


def _passed_over_and_new(above: int, limit: int) -> tuple[list[int], list[int]]:
    """What a round without sweep seals, in this order: the passed-over ids now committed
    and unsealed, then the entries above `above` (none of which can be sealed yet);
    and the latter alone, whose gaps are the next ids passed over."""
    passed_over = PASSED_OVER.ids()
    found: list[int] = []
    if passed_over:
        rows = list(AuditEvent.objects.filter(pk__in=passed_over).values_list("pk", "seal__seq"))
        found = sorted(pk for pk, sealed in rows if sealed is None)[:limit]
        PASSED_OVER.settle(pk for pk, sealed in rows if sealed is not None)
    new_ids = list(
        AuditEvent.objects.filter(pk__gt=above)
        .order_by("pk")
        .values_list("pk", flat=True)[: limit - len(found)]
    )
    return found + new_ids, new_ids


def _head() -> tuple[int, str, datetime | None] | None:
    """The last seal's (seq, hash), and the time the straggler window hangs on: that of
    the last entry sealed normally. A quarantined entry's time may not be readable (it
    may be why it was quarantined), and one bad row must not stop every round after it."""
    head = AuditSeal.objects.order_by("-seq").values_list("seq", "hash").first()
    if head is None:
        anchor = latest_prune()  # every seal pruned: the chain goes on from the anchor
        return None if anchor is None else (anchor.seq, anchor.hash, None)
    encoded = AuditSeal.objects.filter(quarantined_sha256__isnull=True).order_by("-seq")
    try:
        with transaction.atomic():
            at = encoded.values_list("event__at", flat=True).first()
    except Exception:  # a sealed entry changed since into one that cannot be read
        logger.warning("the last sealed audit entry's time cannot be read; sealing without window")
        at = None
    return head[0], head[1], at


def _pending(
    head: tuple[int, str, datetime | None] | None, full: bool = False
) -> QuerySet[AuditEvent]:
    """The unsealed entries a sealer takes after the head seal: those of the straggler
    window on, or all of them (`full`, or no time to hang the window on)."""
    pending = AuditEvent.objects.filter(seal__isnull=True)
    if head is not None and head[2] is not None and not full:
        pending = pending.filter(at__gte=head[2] - STRAGGLER_WINDOW)
    return pending


# Past this, /metrics says "at least": counting a huge backlog would slow every scrape.
BACKLOG_COUNT_CAP = 100_000


def unsealed_backlog() -> tuple[int, datetime | None]:
    """For /metrics: how many entries wait for the sealer (up to BACKLOG_COUNT_CAP), and
    when the oldest was written. The sealer's own query: the head seal by its key, then
    the straggler window on the indexed `at`."""
    pending = _pending(_head())
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
    # (entry id, seal) of every quarantined entry met on the way.
    quarantined: tuple[tuple[int, int], ...] = ()


def _seals_in_order(chunk: int = 2000) -> Iterator[tuple[AuditSeal, bytes | None]]:
    """Each seal with what its hash must cover: the entry's canonical encoding, or the
    quarantine marker of its stored row; None when a normal entry cannot be read or
    encoded (it was sealed, so it changed since). Seals of a pruned prefix that an
    interrupted prune left are skipped: the chain starts after its anchor."""
    anchor = latest_prune()
    after = anchor.seq if anchor is not None else 0
    while True:
        rows = list(AuditSeal.objects.filter(seq__gt=after).order_by("seq")[:chunk])
        if not rows:
            return
        events = quarantine.load_events([s.event_id for s in rows if not s.quarantined_sha256])
        for seal in rows:
            if seal.quarantined_sha256:
                digest = quarantine.raw_digest(seal.event_id)
                yield seal, quarantine.marker(seal.event_id, digest)
            else:
                yield seal, quarantine.encode(events.get(seal.event_id))
        after = rows[-1].seq


def verify_chain() -> VerifyReport:
    """Recompute the whole chain and name the first seal that does not match."""
    anchor = latest_prune()  # the chain starts after a pruned prefix (retention/audit_prune.py)
    prev, expected_seq, checked = GENESIS_HASH, 1, 0
    if anchor is not None:
        prev, expected_seq = anchor.hash, anchor.seq + 1
    quarantined: list[tuple[int, int]] = []
    for seal, covered in _seals_in_order():
        reason = ""
        if seal.seq != expected_seq:
            reason = f"seal {expected_seq} is missing"
        elif seal.prev_hash != prev:
            reason = "previous-hash link does not match"
        elif covered is None:
            reason = "entry cannot be read or encoded"
        elif chain_hash(seal.seq, prev, covered) != seal.hash:
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
                quarantined=tuple(quarantined),
            )
        if seal.quarantined_sha256:
            quarantined.append((seal.event_id, seal.seq))
        prev, expected_seq, checked = seal.hash, expected_seq + 1, checked + 1
    return VerifyReport(
        ok=True,
        checked=checked,
        head_seq=expected_seq - 1,
        head_hash=prev,
        unsealed=_count_unsealed(),
        quarantined=tuple(quarantined),
    )


def _count_unsealed() -> int:
    return AuditEvent.objects.filter(seal__isnull=True).count()


def overdue_unsealed(now: datetime | None = None) -> tuple[int, int | None, datetime | None]:
    """Entries unsealed for longer than ROUNDS_AUDIT_SEAL_WINDOW_SECONDS: how many, and the
    oldest's id and time. A count above zero means the sealer is failing or stopped, or
    an entry lies beyond the straggler window (audit_seal --full seals it)."""
    window = timedelta(seconds=settings.ROUNDS_AUDIT_SEAL_WINDOW_SECONDS)
    overdue = AuditEvent.objects.filter(seal__isnull=True, at__lt=(now or timezone.now()) - window)
    oldest = overdue.order_by("at", "id").values_list("id", "at").first()
    if oldest is None:
        return 0, None, None
    return overdue.count(), oldest[0], oldest[1]
