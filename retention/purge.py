"""The purge at the end of retention (docs/audit.md, "Retention").

For each thread of a patient whose retention date has passed
(patients/retention.py) and that no active hold keeps (retention/holds.py):

1. `start_thread`: the manifest of what is to go (every message, attachment,
   receipt and event, one line each) is hashed outside any transaction; then,
   under the thread's row lock, a `ThreadPurge` is written with the counts and
   the digest, the title (plaintext clinical text) is replaced and the thread
   closed (no post can land in it), and `retention.purge_started` audited.
2. `purge_batch`, repeated: photos' blobs first (disk or S3, through media's
   storage layer), then, in one short transaction, up to
   ROUNDS_PURGE_BATCH messages with their attachment rows, uploads and
   `message.new` events; then receipts, then the thread's other events. Each
   transaction adds what it deleted to the record's counts.
3. `finish_thread`: the record is completed, the title becomes the tombstone
   and `retention.purged` is audited with counts and digest.

A crash anywhere leaves a record not completed, which the next run finishes
first. Blobs go before their rows: a crash in between leaves rows naming
missing blobs (the next run removes them; deleting a missing blob is no
error), never a blob no row names. Every step is idempotent, so two runs on
one thread could not double-count; a lock keeps them apart anyway (`run_lock`).
"""

import contextlib
import fcntl
import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from audit.actions import record
from chat.models import Correction, Event, Message, Receipt, Thread
from core.events import EventKind
from media.models import Attachment, AttachmentKeyword, Upload, UploadPart
from media.storage import delete_quietly
from patients.models import Patient
from patients.retention import patient_retention
from retention.holds import kept_threads
from retention.models import LegalHold, PurgeRun, ThreadPurge

LOCK_KEY = 0x526F756E6450  # "RoundP", for pg_try_advisory_lock
THREAD_EVENTS = (EventKind.THREAD_CREATED, EventKind.THREAD_CLOSED, EventKind.THREAD_REOPENED)


# --- What goes ------------------------------------------------------------------------


def thread_events(thread: Thread) -> QuerySet[Event]:
    """Every event of the department's stream that is about `thread`."""
    return Event.objects.filter(department_id=thread.department_id).filter(
        Q(message__thread_id=thread.pk)
        | Q(kind=EventKind.RECEIPT_NEW, payload__thread=thread.pk)
        | Q(kind__in=THREAD_EVENTS, payload__thread__id=thread.pk)
        | Q(kind=EventKind.MESSAGE_REDACTED, payload__message__thread=thread.pk)
    )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_lines(thread: Thread) -> Iterator[str]:
    """One line per thing the purge removes, in a fixed order; their SHA-256 (each
    line ends with a newline) is the digest the record and the audit entry keep."""
    yield f"thread {thread.pk} patient {thread.patient_id} title-sha256 {_sha(thread.title)}"
    messages = Message.objects.filter(thread_id=thread.pk).order_by("seq")
    for row in messages.values_list(
        "pk", "seq", "sender_id", "created_at", "body_hash", "ciphertext"
    ).iterator(chunk_size=2000):
        pk, seq, sender, created, body_hash, ciphertext = row
        yield f"message {pk} {seq} {sender} {created.isoformat()} {body_hash} {_sha(ciphertext)}"
    attachments = Attachment.objects.filter(thread_id=thread.pk).order_by("pk")
    for attachment in attachments.values_list(
        "pk", "message_id", "upload_id", "upload__sha256", "thumbnail_id", "thumbnail__sha256"
    ).iterator(chunk_size=2000):
        yield "attachment {} message {} upload {} {} thumbnail {} {}".format(*attachment)
    receipts = Receipt.objects.filter(thread_id=thread.pk).order_by("pk")
    for pk, user, up_to, read_at in receipts.values_list(
        "pk", "user_id", "up_to_seq", "read_at"
    ).iterator(chunk_size=2000):
        yield f"receipt {pk} {user} {up_to} {read_at.isoformat()}"
    events = thread_events(thread).order_by("seq")
    for seq, kind, message in events.values_list("seq", "kind", "message_id").iterator(
        chunk_size=2000
    ):
        yield f"event {thread.department_id}:{seq} {kind} {message}"


def manifest(thread: Thread) -> tuple[str, dict[str, int]]:
    """The digest of `manifest_lines` and how many of each kind it lists."""
    digest = hashlib.sha256()
    counts = {"messages": 0, "attachments": 0, "receipts": 0, "events": 0}
    for line in manifest_lines(thread):
        digest.update(line.encode() + b"\n")
        kind = line.split(" ", 1)[0] + "s"
        if kind in counts:
            counts[kind] += 1
    return digest.hexdigest(), counts


# --- One thread -------------------------------------------------------------------------


def start_thread(thread_id: int, run: PurgeRun, until: date) -> ThreadPurge | None:
    """The thread's purge record: the one already started, or a new one.

    Returns None when a post landed between the manifest and the lock (the
    thread is no longer expired as seen; the next run looks again).
    """
    existing = ThreadPurge.objects.filter(thread_id=thread_id).first()
    if existing is not None:
        return existing
    thread = Thread.objects.get(pk=thread_id)
    digest, counts = manifest(thread)
    with transaction.atomic():
        locked = Thread.objects.select_for_update().get(pk=thread_id)
        existing = ThreadPurge.objects.filter(thread_id=thread_id).first()
        if existing is not None:
            return existing
        if locked.last_seq != thread.last_seq:
            return None
        now = timezone.now()
        purge = ThreadPurge.objects.create(
            thread=locked,
            run=run,
            patient_id=locked.patient_id,
            retained_until=until,
            upto_seq=locked.last_seq,
            sha256=digest,
            planned=counts,
            started_at=now,
        )
        locked.title = f"Purge in progress (retention ended {until.isoformat()}, run {run.pk})"
        locked.closed_at = locked.closed_at or now
        locked.save(update_fields=["title", "closed_at"])
        record(
            "retention.purge_started",
            department_id=locked.department_id,
            object_type="thread",
            object_id=locked.pk,
            data={
                "run": run.pk,
                "patient": locked.patient_id,
                "retained_until": until.isoformat(),
                "planned": counts,
                "sha256": digest,
            },
        )
    return purge


def _delete(rows: QuerySet[Any]) -> int:
    """DELETE … WHERE, without Django's collector, which loads every row (ciphertext
    included) to check PROTECT relations whose rows the batch has already removed; the
    database's own foreign keys still refuse a row something else points to."""
    return rows._raw_delete(rows.db)


def _count(purge: ThreadPurge, **deleted: int) -> None:
    ThreadPurge.objects.filter(pk=purge.pk).update(
        **{f"removed_{name}": F(f"removed_{name}") + n for name, n in deleted.items() if n}
    )


def _purge_messages(purge: ThreadPurge, batch: int) -> bool:
    ids = list(
        Message.objects.filter(thread_id=purge.thread_id, seq__lte=purge.upto_seq)
        .order_by("seq")
        .values_list("pk", flat=True)[:batch]
    )
    if not ids:
        return False
    rows = list(
        Attachment.objects.filter(message_id__in=ids).values_list("pk", "upload_id", "thumbnail_id")
    )
    attachment_ids = [pk for pk, _, _ in rows]
    upload_ids = [u for _, upload, thumb in rows for u in (upload, thumb) if u is not None]
    uploads = Upload.objects.filter(pk__in=upload_ids)
    parts = UploadPart.objects.filter(upload_id__in=upload_ids)
    names = list(uploads.values_list("storage_name", flat=True))
    names += list(parts.values_list("storage_name", flat=True))
    delete_quietly(names)
    with transaction.atomic():
        # Overlays drawn on these photos lose their link (only expired threads' can:
        # a kept thread's overlays keep the photos under them, retention/holds.py).
        Attachment.objects.filter(annotates_id__in=attachment_ids).update(annotates=None)
        _delete(AttachmentKeyword.objects.filter(attachment_id__in=attachment_ids))
        attachments = _delete(Attachment.objects.filter(pk__in=attachment_ids))
        _delete(parts)
        blobs = _delete(uploads)
        events = _delete(Event.objects.filter(message_id__in=ids))
        _delete(Correction.objects.filter(message_id__in=ids))
        messages = _delete(Message.objects.filter(pk__in=ids))
        _count(purge, messages=messages, attachments=attachments, blobs=blobs, events=events)
    return True


def _purge_rows(purge: ThreadPurge, rows: QuerySet[Any], name: str, batch: int) -> bool:
    ids = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
    if not ids:
        return False
    with transaction.atomic():
        deleted = _delete(rows.model.objects.filter(pk__in=ids))
        _count(purge, **{name: deleted})
    return True


def purge_batch(purge: ThreadPurge, batch: int) -> bool:
    """Delete one batch of what the thread still holds; False once nothing is left."""
    if _purge_messages(purge, batch):
        return True
    if _purge_rows(purge, Receipt.objects.filter(thread_id=purge.thread_id), "receipts", batch):
        return True
    thread = Thread.objects.get(pk=purge.thread_id)
    return _purge_rows(purge, thread_events(thread), "events", batch)


def finish_thread(purge: ThreadPurge, run: PurgeRun) -> ThreadPurge:
    """Complete the record, leave the tombstone title, audit what went."""
    with transaction.atomic():
        purge = ThreadPurge.objects.select_for_update().get(pk=purge.pk)
        if purge.completed_at is not None:
            return purge
        thread = Thread.objects.select_for_update().get(pk=purge.thread_id)
        purge.completed_at, purge.completed_run = timezone.now(), run
        purge.save(update_fields=["completed_at", "completed_run"])
        removed = purge.removed()
        thread.title = (
            f"Purged {purge.completed_at.date().isoformat()} (retention ended "
            f"{purge.retained_until.isoformat()}): {removed['messages']} messages, "
            f"{removed['attachments']} photos; sha256 {purge.sha256[:16]}"
        )
        thread.save(update_fields=["title"])
        record(
            "retention.purged",
            department_id=thread.department_id,
            object_type="thread",
            object_id=thread.pk,
            data={
                "run": run.pk,
                "started_run": purge.run_id,
                "patient": purge.patient_id,
                "retained_until": purge.retained_until.isoformat(),
                "planned": purge.planned,
                "removed": removed,
                "sha256": purge.sha256,
            },
        )
    return purge


# --- A run ------------------------------------------------------------------------------


@dataclass
class Report:
    dry_run: bool
    purged: list[dict[str, Any]] = field(default_factory=list)
    kept: list[dict[str, Any]] = field(default_factory=list)
    locked_out: bool = False


def expired_threads(today: date) -> Iterator[tuple[int, date]]:
    """(thread id, retention date) of every thread not yet purged whose patient's
    retention date is before `today`, patient by patient."""
    started = ThreadPurge.objects.values("thread_id")
    pending = Thread.objects.exclude(pk__in=started)
    for patient in Patient.objects.filter(pk__in=pending.values("patient_id")).order_by("pk"):
        until = patient_retention(patient).until
        if until is not None and until < today:
            for thread_id in (
                pending.filter(patient=patient).order_by("pk").values_list("pk", flat=True)
            ):
                yield thread_id, until


@contextlib.contextmanager
def run_lock() -> Iterator[bool]:
    """One purge at a time: PostgreSQL's session advisory lock, or on SQLite (one
    host, one writer) an exclusive lock on a file beside the database. Yields
    False when another run holds it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        return
    name = str(connection.settings_dict["NAME"])
    path = Path(name + ".purge.lock")
    if name.startswith(("file:", ":memory:")):
        path = Path(settings.VAR_DIR) / "purge.lock"  # a database in memory (tests)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _held(thread_ids: list[int]) -> tuple[dict[int, list[int]], dict[int, str]]:
    kept = kept_threads(thread_ids)
    hold_ids = {h for holds in kept.values() for h in holds}
    cases = dict(LegalHold.objects.filter(pk__in=hold_ids).values_list("pk", "case__reference"))
    return kept, cases


def purge_expired(
    *,
    dry_run: bool = False,
    limit: int | None = None,
    today: date | None = None,
    batch: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> Report:
    """Purge what retention no longer keeps and no hold keeps; see the module docstring.

    Args:
        dry_run: report what would go and what holds keep; write nothing.
        limit: purge at most this many threads (the unfinished ones first).
    """
    today = today or timezone.localdate()
    batch = batch or settings.ROUNDS_PURGE_BATCH
    report = Report(dry_run=dry_run)
    with run_lock() as held:
        if not held:
            report.locked_out = True
            say("another purge_expired is running: nothing done")
            return report
        unfinished = list(
            ThreadPurge.objects.filter(completed_at__isnull=True)
            .order_by("pk")
            .values_list("thread_id", "retained_until")
        )
        todo = unfinished + list(expired_threads(today))
        kept, cases = _held([thread_id for thread_id, _ in todo])
        run = None if dry_run else PurgeRun.objects.create(started_at=timezone.now())
        for thread_id, until in todo:
            if thread_id not in kept and run is not None:
                # A hold placed since the run began counts: ask again, just before.
                kept_now, cases_now = _held([thread_id])
                kept.update(kept_now)
                cases.update(cases_now)
            if thread_id in kept:
                holds = [{"hold": h, "case": cases[h]} for h in kept[thread_id]]
                report.kept.append({"thread": thread_id, "holds": holds})
                say(
                    f"kept   thread {thread_id}: "
                    + ", ".join(f"hold {h['hold']} (case {h['case']})" for h in holds)
                )
                continue
            if limit is not None and len(report.purged) >= limit:
                continue
            report.purged.append(_purge_one(thread_id, until, run, batch, dry_run, say))
        if run is not None:
            _close_run(run, report)
    return report


def _purge_one(
    thread_id: int,
    until: date,
    run: PurgeRun | None,
    batch: int,
    dry_run: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    if run is None:
        digest, counts = manifest(Thread.objects.get(pk=thread_id))
        say(f"would purge thread {thread_id}: {_counts(counts)}; sha256 {digest}")
        return {"thread": thread_id, "planned": counts, "sha256": digest}
    purge = start_thread(thread_id, run, until)
    if purge is None:
        say(f"skipped thread {thread_id}: a post landed while it was read; next run")
        return {"thread": thread_id, "skipped": True}
    pause = batch_pause()
    while purge_batch(purge, batch):
        time.sleep(pause)
    purge = finish_thread(purge, run)
    say(f"purged thread {thread_id}: {_counts(purge.removed())}; sha256 {purge.sha256}")
    return {"thread": thread_id, "removed": purge.removed(), "sha256": purge.sha256}


def batch_pause() -> float:
    """Seconds between two batches: SQLite has one write lock and its busy handler is
    no queue, so a writer that takes it again at once can starve the server's posts."""
    configured = settings.ROUNDS_PURGE_PAUSE_MS
    if configured != "":
        return int(configured) / 1000
    return 0.05 if connection.vendor == "sqlite" else 0.0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items())


def _close_run(run: PurgeRun, report: Report) -> None:
    with transaction.atomic():
        run.finished_at = timezone.now()
        run.threads_purged = sum(1 for p in report.purged if not p.get("skipped"))
        run.threads_kept = len(report.kept)
        run.save(update_fields=["finished_at", "threads_purged", "threads_kept"])
        record(
            "retention.run",
            object_type="purge_run",
            object_id=run.pk,
            data={
                "purged": [p["thread"] for p in report.purged if not p.get("skipped")],
                "kept": report.kept,
            },
        )
