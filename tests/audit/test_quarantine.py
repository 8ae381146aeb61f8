"""The sealer never stops on one row, and audit_verify fails while something is wrong.

The compliance review's attack: an entry holding a lone surrogate (stored by
SQLite before the edges refused it) made `AuditEvent.canonical` raise, every
sealing round failed on it, and nothing after it was chained, while
audit_verify said "ok". Such a row is now sealed as a quarantine marker (its
id and the SHA-256 of its stored row), logged without content, counted, and
the chain goes on; audit_verify fails until it is reviewed, and fails when
entries stay unsealed past ROUNDS_AUDIT_SEAL_WINDOW_SECONDS.
"""

import logging
import os
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from audit.actions import record, seal_all, verify_chain
from audit.guard import maintenance
from audit.models import AuditEvent, AuditSeal
from audit.quarantine import marker, raw_digest

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
sqlite_only = pytest.mark.skipif(POSTGRES, reason="PostgreSQL cannot store such a row at all")

pytestmark = pytest.mark.django_db


def quarantined_count() -> float:
    return REGISTRY.get_sample_value("rounds_audit_quarantined_total") or 0.0


def verify(*args: str) -> str:
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def verify_fails(*args: str) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("audit_verify", *args, stdout=StringIO())
    return str(refused.value)


def tamper(model, pk, **changes) -> None:
    with maintenance(connection):
        assert model.objects.filter(pk=pk).update(**changes) == 1


@pytest.fixture
def unencodable(monkeypatch):
    """Make chosen entries fail to encode, as a row of any kind of bad content would."""
    bad: set[int] = set()
    original = AuditEvent.canonical

    def canonical(self):
        if self.pk in bad:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return original(self)

    monkeypatch.setattr(AuditEvent, "canonical", canonical)
    return bad


def three_entries(bad_data: dict) -> tuple[AuditEvent, AuditEvent, AuditEvent]:
    before = record("history.read", object_type="thread", object_id=1, data={"from_seq": 1})
    bad = record("report.generated", object_type="patient", object_id=7, data=bad_data)
    after = record("history.read", object_type="thread", object_id=1, data={"from_seq": 2})
    return before, bad, after


def assert_quarantined_and_chain_goes_on(before, bad, after) -> AuditSeal:
    seal = AuditSeal.objects.get(event=bad)
    assert seal.quarantined_sha256 == raw_digest(bad.pk)
    assert AuditSeal.objects.get(event=before).seq == seal.seq - 1
    assert AuditSeal.objects.get(event=after).seq == seal.seq + 1
    assert AuditEvent.objects.filter(pk=bad.pk).exists()  # kept, never changed
    report = verify_chain()
    assert report.ok and report.unsealed == 0
    assert report.quarantined == ((bad.pk, seal.seq),)
    return seal


# --- The sealer goes on --------------------------------------------------------------


@sqlite_only
def test_a_lone_surrogate_in_an_entry_no_longer_stops_the_chain(caplog):
    """The bug as reported: before, seal_all raised UnicodeEncodeError on every round."""
    counted = quarantined_count()
    caplog.set_level(logging.ERROR, logger="audit.quarantine")
    entries = three_entries({"case": "SECRET-CASE-\ud800", "photos": 1})
    assert seal_all() == AuditEvent.objects.count()
    seal = assert_quarantined_and_chain_goes_on(*entries)
    assert quarantined_count() == counted + 1
    logged = caplog.text
    assert f"audit entry {entries[1].pk} quarantined at seal {seal.seq}" in logged
    assert "SECRET" not in logged


@sqlite_only
def test_an_entry_the_driver_cannot_read_is_quarantined():
    """Bytes that are not UTF-8, written into the file by another program."""
    before = record("history.read", object_type="thread", object_id=1)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (at, actor_username, action, object_type, object_id, "
            "data) VALUES (%s, CAST(X'6D616CFF6C6F7279' AS TEXT), 'auth.login', '', '', '{}')",
            [timezone.now()],
        )
        bad_id = cursor.lastrowid
    after = record("history.read", object_type="thread", object_id=1)
    seal_all()
    bad = AuditEvent(pk=bad_id)
    assert_quarantined_and_chain_goes_on(before, bad, after)
    assert "1 quarantined entries" in verify_fails()


def test_any_entry_that_fails_to_encode_is_quarantined(unencodable):
    """On either database: whatever makes one row's encoding fail, the chain goes on."""
    counted = quarantined_count()
    entries = three_entries({"photos": 1})
    unencodable.add(entries[1].pk)
    seal_all()
    assert_quarantined_and_chain_goes_on(*entries)
    assert quarantined_count() == counted + 1
    # Once the code can encode it again, verification still uses the marker.
    unencodable.clear()
    assert verify_chain().ok


def test_a_quarantine_marker_names_the_entry_and_its_stored_row():
    assert marker(17, "ab" * 32) == (
        b'{"id":17,"quarantined":true,"raw_sha256":"' + b"ab" * 32 + b'"}'
    )


# --- Tampering with a quarantined entry or a mark --------------------------------------


@pytest.fixture
def quarantined(unencodable) -> AuditSeal:
    entries = three_entries({"photos": 1})
    unencodable.add(entries[1].pk)
    seal_all()
    return AuditSeal.objects.get(event=entries[1])


def test_a_changed_quarantined_row_breaks_the_chain(quarantined):
    tamper(AuditEvent, quarantined.event_id, data={"photos": 2})
    message = verify_fails()
    assert f"broken at seal {quarantined.seq} (audit entry {quarantined.event_id})" in message
    assert "entry content does not match its hash" in message


def test_a_quarantine_mark_put_on_a_good_seal_breaks_the_chain(quarantined):
    target = AuditSeal.objects.get(seq=quarantined.seq + 1)
    tamper(AuditSeal, target.seq, quarantined_sha256=raw_digest(target.event_id))
    assert f"broken at seal {target.seq}" in verify_fails()


def test_a_quarantine_mark_removed_breaks_the_chain(quarantined, unencodable):
    unencodable.clear()
    tamper(AuditSeal, quarantined.seq, quarantined_sha256=None)
    message = verify_fails()
    assert f"broken at seal {quarantined.seq}" in message
    assert "entry content does not match its hash" in message


def test_a_removed_mark_on_an_entry_that_still_cannot_be_encoded_is_named(quarantined):
    tamper(AuditSeal, quarantined.seq, quarantined_sha256=None)
    message = verify_fails()
    assert f"broken at seal {quarantined.seq}" in message
    assert "entry cannot be read or encoded" in message


# --- audit_verify fails until reviewed ----------------------------------------------------


def test_verify_fails_while_a_quarantined_entry_is_unreviewed(quarantined):
    entry, seq = quarantined.event_id, quarantined.seq
    message = verify_fails()
    assert "1 quarantined entries could not be encoded" in message
    assert f"entry {entry} (seal {seq})" in message
    assert "audit chain ok" in verify(f"--accept-quarantined={entry}")
    assert f"entry {entry}" in verify_fails(f"--accept-quarantined={entry + 1000}")


def test_accept_quarantined_takes_ids_only():
    assert "takes entry ids" in verify_fails("--accept-quarantined=seventeen")


# --- audit_verify fails on entries left unsealed past the window -------------------------


def test_verify_fails_when_an_entry_stays_unsealed_past_the_window(settings):
    settings.ROUNDS_AUDIT_SEAL_WINDOW_SECONDS = 300
    seal_all()
    now = timezone.now()
    # Under the test's outer transaction nothing commits, so nothing seals these.
    fresh = AuditEvent.objects.create(at=now - timedelta(seconds=60), action="x.fresh")
    assert "1 not yet sealed" in verify()
    old = AuditEvent.objects.create(at=now - timedelta(seconds=600), action="x.stuck")
    AuditEvent.objects.create(at=now - timedelta(seconds=400), action="x.stuck")
    message = verify_fails()
    assert "2 entries unsealed for longer than ROUNDS_AUDIT_SEAL_WINDOW_SECONDS (300 s)" in message
    assert f"the oldest entry {old.pk} written at {old.at.isoformat()}" in message
    assert f"entry {fresh.pk} " not in message
    seal_all(full=True)
    assert "0 not yet sealed" in verify()


def test_the_window_is_a_setting(settings):
    AuditEvent.objects.create(at=timezone.now() - timedelta(seconds=600), action="x.stuck")
    settings.ROUNDS_AUDIT_SEAL_WINDOW_SECONDS = 3600
    assert "1 not yet sealed" in verify()
    settings.ROUNDS_AUDIT_SEAL_WINDOW_SECONDS = 60
    assert "(60 s)" in verify_fails()


@sqlite_only
def test_a_quarantined_head_whose_time_cannot_be_read_stops_no_later_round():
    """The straggler window hangs on the head entry's time: a quarantined head with a time
    that is not even text must not make every later round fail."""
    record("history.read", object_type="thread", object_id=1)
    seal_all()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_auditevent (at, actor_username, action, object_type, object_id, "
            "data) VALUES (CAST(X'FF' AS TEXT), '', 'auth.login', '', '', '{}')"
        )
        bad_id = cursor.lastrowid
    assert seal_all() == 1
    assert AuditSeal.objects.get(event_id=bad_id).quarantined_sha256
    later = record("history.read", object_type="thread", object_id=2)
    assert seal_all() == 1
    assert AuditSeal.objects.filter(event=later).exists()
    report = verify_chain()
    assert report.ok and report.quarantined == ((bad_id, report.head_seq - 1),)
