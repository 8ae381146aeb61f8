"""The audit trail's own retention: its oldest entries removed, the chain anchored.

Audit records and access traces are kept ROUNDS_AUDIT_RETENTION_DAYS (six
years by default; never under six months, the floor for access traces), not
with the patient's record (docs/audit.md, "Retention"). The trail is one hash
chain, so what goes is always a prefix: every entry up to a seal K, and no
later one. K is the last seal before the first entry still needed, rounded
down to a whole block of the seal tree (audit/tree.py), and never the head.
An entry is still needed while it is younger than the retention, and from
the first day of what an active legal hold keeps or an open case covers:
a hold or a case keeps the whole trail from then on (coarse, and never
wrong).

The order makes a crash harmless and a prune provable:
1. every waiting entry is sealed, and a checkpoint of the head is signed;
2. the prune itself is signed with the checkpoint key and written to the
   checkpoint sink (`prune-…json`: up to which seal, its hash, the tree root
   over the prefix, how many entries go, the retention's date); if that
   fails, nothing is removed;
3. the anchor (audit.AuditPrune: the same, and the prefix's tree frontier)
   and an `audit.pruned` entry commit together; from then on the chain
   starts after K, and the tree goes on from the frontier;
4. the prefix's seals and entries are deleted in batches, in maintenance
   mode. A run that stops here is finished by the next one.
`manage.py audit_verify --checkpoints` then requires every anchor to match
its signed record, so a prefix removed any other way is named.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from audit.actions import record, seal_all
from audit.checkpoints import write_checkpoint, write_prune_record
from audit.guard import maintenance
from audit.models import AuditEvent, AuditPrune, AuditSeal, latest_prune
from audit.tree import CHUNK, seal_leaves
from chat.models import Thread
from compliance.models import Case
from core.crypto.audit_proof import fold, frontier_after
from retention.holds import active_holds, threads_held_by
from retention.purge import run_lock

logger = logging.getLogger(__name__)

MIN_DAYS = 183  # access traces: at least six months
BATCH = 5000


class AuditRetentionError(Exception):
    """A setting that would cut the trail shorter than the law allows."""


@dataclass
class AuditPruneReport:
    before: datetime | None = None  # entries older than this may go
    kept_from: datetime | None = None  # a hold or an open case needs the trail from then
    kept_by: list[str] = field(default_factory=list)
    upto: int = 0  # the prefix pruned (or that would be), up to this seal
    previous: int = 0  # the prefix pruned before this run
    entries: int = 0
    record: str = ""
    finished: int = 0  # entries an interrupted run left, removed now
    locked_out: bool = False


def retention_start(now: datetime | None = None) -> datetime:
    days = settings.ROUNDS_AUDIT_RETENTION_DAYS
    if days < MIN_DAYS:
        raise AuditRetentionError(
            f"ROUNDS_AUDIT_RETENTION_DAYS is {days}: access traces are kept at least "
            f"{MIN_DAYS} days (six months)"
        )
    return (now or timezone.now()) - timedelta(days=days)


def still_needed() -> tuple[datetime | None, list[str]]:
    """The earliest moment whose trail an active hold or an open case still needs, and
    which ones need it then."""
    marks: list[tuple[datetime, str]] = []
    for hold in active_holds().select_related("case"):
        first = threads_held_by(hold, Thread.objects.all()).aggregate(m=Min("created_at"))["m"]
        if hold.user_id is not None:
            acted = AuditEvent.objects.filter(actor_id=hold.user_id).aggregate(m=Min("at"))["m"]
            first = min(filter(None, (first, acted)), default=None)
        marks.append((first or hold.placed_at, f"hold {hold.pk} ({hold.case.reference})"))
    for case in Case.objects.filter(closed_at__isnull=True):
        first = case.covered_threads().aggregate(m=Min("created_at"))["m"]
        marks.append((min(filter(None, (first, case.opened_at))), f"case {case.reference}"))
    if not marks:
        return None, []
    earliest = min(at for at, _ in marks)
    return earliest, [why for at, why in sorted(marks) if at == earliest]


def plan(now: datetime | None = None) -> AuditPruneReport:
    """Where this run would cut: the last whole block of seals all older than what is
    still needed, never the head."""
    report = AuditPruneReport(before=retention_start(now))
    report.kept_from, report.kept_by = still_needed()
    limit = min(filter(None, (report.before, report.kept_from)))
    anchor = latest_prune()
    report.previous = anchor.seq if anchor is not None else 0
    head = AuditSeal.objects.aggregate(m=Max("seq"))["m"] or report.previous
    young = AuditSeal.objects.filter(event__at__gte=limit).aggregate(m=Min("seq"))["m"]
    cut = min(head - 1, young - 1 if young is not None else head - 1)
    cut -= cut % CHUNK
    report.upto = max(cut, report.previous)
    if report.upto > report.previous:
        report.entries = AuditSeal.objects.filter(
            seq__gt=report.previous, seq__lte=report.upto
        ).count()
    return report


def purge_audit(*, dry_run: bool = False, say: Callable[[str], None] = print) -> AuditPruneReport:
    """One run of `manage.py purge_audit`; see the module's docstring for the order."""
    with run_lock() as held:
        if not held:
            say("another purge is running; nothing done")
            return AuditPruneReport(locked_out=True)
        if not dry_run:
            seal_all()
        report = plan()
        if not dry_run:
            report.finished = _delete_prefix(report.previous)
        if report.upto <= report.previous or dry_run:
            return report
        write_checkpoint()
        _prune(report)
        _delete_prefix(report.upto)
        return report


def _prune(report: AuditPruneReport) -> None:
    assert report.before is not None  # plan() sets it on every run that got the lock
    anchor = latest_prune()
    frontier = frontier_after(
        seal_leaves(report.upto, first=report.previous + 1),
        anchor.frontier_hashes() if anchor is not None else None,
    )
    digest = AuditSeal.objects.get(seq=report.upto).hash
    now = timezone.now()
    fields = {
        "seq": report.upto,
        "hash": digest,
        "root": fold(frontier).hex(),
        "removed": report.entries,
        "before": report.before.isoformat(),
        "at": now.isoformat(),
    }
    report.record = write_prune_record(fields)  # signed, out of reach, before any removal
    with transaction.atomic():
        AuditPrune.objects.create(
            seq=report.upto,
            hash=digest,
            frontier=[[w, h.hex()] for w, h in frontier],
            removed=report.entries,
            before=report.before,
            at=now,
            record=report.record,
        )
        record(
            "audit.pruned",
            object_type="audit_prune",
            object_id=report.upto,
            data={
                "upto": report.upto,
                "previous": report.previous,
                "removed": report.entries,
                "before": report.before.isoformat(),
                "kept_from": report.kept_from.isoformat() if report.kept_from else None,
                "kept_by": report.kept_by,
                "record": report.record,
            },
        )


def _delete_prefix(upto: int) -> int:
    """Remove the seals up to `upto` and their entries, in batches; how many entries."""
    removed = 0
    while True:
        with transaction.atomic(), maintenance(connection):
            seals = list(
                AuditSeal.objects.filter(seq__lte=upto)
                .order_by("seq")
                .values_list("seq", "event_id")[:BATCH]
            )
            if not seals:
                return removed
            AuditSeal.objects.filter(seq__in=[s for s, _ in seals]).delete()
            AuditEvent.objects.filter(pk__in=[e for _, e in seals]).delete()
            removed += len(seals)
