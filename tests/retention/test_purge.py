"""manage.py purge_expired: what goes, what stays (the tombstone, the audit entries), and
a run that crashes, runs twice, or meets another run (retention/purge.py)."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from audit.models import AuditEvent
from chat.actions import check_read_receipt
from chat.models import Event, Message, Receipt, Thread
from chat.redaction import check_redact_message
from media.models import Attachment, AttachmentKeyword, Upload
from retention import purge
from retention.models import PurgeRun, ThreadPurge
from tests.retention.support import FUTURE, crash_after_one_batch, discharge, run
from tests.support.posts import post
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db


def rows_of(thread) -> dict[str, int]:
    return {
        "messages": Message.objects.filter(thread=thread).count(),
        "attachments": Attachment.objects.filter(thread=thread).count(),
        "receipts": Receipt.objects.filter(thread=thread).count(),
        "events": purge.thread_events(thread).count(),
    }


@pytest.fixture
def ward(expired, uploader, blob_store):
    """Léa's thread: two notes (one redacted), a photo whose blobs are stored, a receipt."""
    h = expired
    first = post(h, "surgeon_bob", h.thread, "bob-0001")
    post(h, "nurse_alice", h.thread, "alice-0001")
    client = uploader(h.nurse_alice)
    ref = photo(h, "nurse_alice")
    ref["upload"] = client.send(h.plastic, b"encrypted photo" * 100)
    ref["thumbnail"] = client.send(h.plastic, b"encrypted thumb" * 10)
    post_photos(h, "nurse_alice", [ref])
    check_read_receipt(h.surgeon_bob, h.thread.pk, 3)
    check_redact_message(h.surgeon_bob, first, "wrong patient")
    post(h, "nurse_ines", h.vascular_thread, "ines-0001")
    return h


@pytest.mark.slow
def test_a_purge_removes_the_thread_content_and_blobs_and_leaves_a_tombstone(ward, blob_store):
    h = ward
    assert len(blob_store.names()) == 2
    digest, planned = purge.manifest(h.thread)
    assert planned == {"messages": 3, "attachments": 1, "receipts": 1, "events": 6}

    report = run(batch=2)

    assert {p["thread"] for p in report.purged} == {h.thread.pk, h.vascular_thread.pk}
    assert rows_of(h.thread) == {"messages": 0, "attachments": 0, "receipts": 0, "events": 0}
    assert not Upload.objects.filter(state="attached").exists()
    assert not AttachmentKeyword.objects.exists()
    assert blob_store.names() == []
    # The tombstone: the row stays, closed, its clinical title replaced by the counts.
    thread = Thread.objects.get(pk=h.thread.pk)
    assert "Wound" not in thread.title
    assert thread.title.startswith("Purged ") and "3 messages, 1 photos" in thread.title
    assert thread.closed_at is not None
    record = ThreadPurge.objects.get(thread=thread)
    assert record.completed_at is not None and record.sha256 == digest
    assert record.removed() == {
        "messages": 3,
        "attachments": 1,
        "blobs": 2,
        "receipts": 1,
        "events": 6,
    }
    purged = AuditEvent.objects.get(action="retention.purged", object_id=str(h.thread.pk))
    assert purged.data["sha256"] == digest and purged.data["removed"] == record.removed()
    assert purged.data["planned"] == planned
    assert AuditEvent.objects.filter(action="retention.purge_started").count() == 2
    summary = AuditEvent.objects.get(action="retention.run")
    assert sorted(summary.data["purged"]) == sorted([h.thread.pk, h.vascular_thread.pk])
    # Nothing else of the department's stream went: its membership events stay.
    assert Event.objects.filter(department=h.plastic).exists()


def test_the_manifest_digest_is_its_lines_hashed(ward):
    import hashlib

    lines = list(purge.manifest_lines(ward.thread))
    assert lines[0].startswith(f"thread {ward.thread.pk} ")
    joined = b"".join(line.encode() + b"\n" for line in lines)
    assert purge.manifest(ward.thread)[0] == hashlib.sha256(joined).hexdigest()


def test_a_dry_run_reports_and_writes_nothing(ward):
    h = ward
    before = (
        rows_of(h.thread),
        AuditEvent.objects.count(),
        Thread.objects.get(pk=h.thread.pk).title,
    )
    report = run(dry_run=True)
    assert {p["thread"] for p in report.purged} == {h.thread.pk, h.vascular_thread.pk}
    assert any(line.startswith(f"would purge thread {h.thread.pk}") for line in report.lines)
    after = (
        rows_of(h.thread),
        AuditEvent.objects.count(),
        Thread.objects.get(pk=h.thread.pk).title,
    )
    assert after == before
    assert not PurgeRun.objects.exists() and not ThreadPurge.objects.exists()


def test_nothing_goes_before_the_retention_date_or_while_a_stay_is_open(hospital):
    h = hospital
    post(h, "surgeon_bob", h.thread, "bob-0001")
    assert run().purged == []  # both stays are open: no date
    discharge(h.patient)
    assert run(today=FUTURE.replace(year=FUTURE.year - 2)).purged == []  # 19 years on
    assert [p["thread"] for p in run().purged] == [h.thread.pk]  # Hugo's stay is still open
    assert Message.objects.filter(thread=h.vascular_thread).count() == 0  # never had any
    assert Thread.objects.get(pk=h.vascular_thread.pk).title == "Ulcer"


def test_a_run_that_crashes_mid_thread_is_finished_by_the_next(ward, blob_store, monkeypatch):
    h = ward
    digest, planned = purge.manifest(h.thread)
    real = crash_after_one_batch(monkeypatch)
    with pytest.raises(RuntimeError):
        run(batch=2, limit=1)
    record = ThreadPurge.objects.get(thread=h.thread)
    assert record.completed_at is None and record.removed_messages == 2
    assert Thread.objects.get(pk=h.thread.pk).title.startswith("Purge in progress")
    monkeypatch.setattr(purge, "_purge_messages", real)

    report = run(batch=2, limit=1)

    assert [p["thread"] for p in report.purged] == [h.thread.pk]  # the unfinished one first
    record.refresh_from_db()
    assert record.completed_at is not None and record.sha256 == digest
    assert record.removed()["messages"] == planned["messages"]
    assert record.removed()["events"] == planned["events"]
    assert record.completed_run_id != record.run_id
    assert rows_of(h.thread)["messages"] == 0 and blob_store.names() == []
    assert (
        AuditEvent.objects.filter(
            action="retention.purge_started", object_id=str(h.thread.pk)
        ).count()
        == 1
    )
    assert (
        AuditEvent.objects.filter(action="retention.purged", object_id=str(h.thread.pk)).count()
        == 1
    )


@pytest.mark.slow
def test_a_second_run_finds_nothing_to_do(ward):
    run()
    entries = AuditEvent.objects.filter(action__startswith="retention.purge").count()
    again = run()
    assert again.purged == [] and again.kept == []
    assert AuditEvent.objects.filter(action__startswith="retention.purge").count() == entries


@pytest.mark.slow
def test_limit_purges_that_many_threads(ward):
    assert len(run(limit=1).purged) == 1
    assert len(run(limit=1).purged) == 1
    assert run(limit=1).purged == []


@pytest.mark.django_db(transaction=True)
def test_a_second_run_while_one_holds_the_lock_does_nothing(expired):
    h = expired
    post(h, "surgeon_bob", h.thread, "bob-0001")
    holding, done = threading.Event(), threading.Event()

    def other_run():
        try:
            with purge.run_lock() as held:
                assert held
                holding.set()
                done.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    assert holding.wait(10)
    try:
        report = run()
    finally:
        done.set()
        thread.join()
    assert report.locked_out and report.purged == []
    assert Message.objects.filter(thread=h.thread).count() == 1
    assert run().purged  # once the lock is free


def test_the_command_prints_what_it_purged(ward):
    out = StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)
    assert "purged 0 threads" not in out.getvalue()  # the clock is today: nothing yet
    assert out.getvalue().strip().endswith("would purge 0 threads; holds kept 0 threads")


@pytest.mark.slow
def test_a_purged_thread_cannot_be_reopened(ward):
    from chat.actions import check_set_thread_closed
    from core.errors import RoundsError

    run()
    with pytest.raises(RoundsError) as refused:
        check_set_thread_closed(ward.head_carol, ward.thread.pk, False)
    assert refused.value.code == "conflict"
    assert Thread.objects.get(pk=ward.thread.pk).closed_at is not None
