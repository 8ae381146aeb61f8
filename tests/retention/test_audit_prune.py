"""The audit trail's own retention: `manage.py purge_audit` removes the chain's oldest
whole blocks of entries, signed and anchored, and keeps what a hold or an open case
needs; a prefix removed any other way is named by audit_verify --checkpoints."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from audit.actions import record, seal_all, verify_chain
from audit.checkpoints import write_checkpoint
from audit.guard import maintenance
from audit.models import AuditEvent, AuditPrune, AuditSeal
from audit.tree import CHUNK, SealTree
from chat.models import Thread
from core.crypto.audit_proof import leaf_hash, verify_inclusion
from retention import audit_prune
from retention.actions import check_place_hold
from tests.support.cases import open_case

pytestmark = pytest.mark.django_db
YEARS_AGO_7 = timedelta(days=7 * 365)


def old_entries(count: int) -> None:
    """`count` access traces from seven years ago, sealed, then a few from today. The
    hospital's own entries (written as it was set up) are moved back with them."""
    then = timezone.now() - YEARS_AGO_7
    with maintenance(connection):
        AuditSeal.objects.all().delete()
        AuditEvent.objects.update(at=then)
    AuditEvent.objects.bulk_create(
        AuditEvent(at=then, action="history.read", object_type="thread", object_id=str(n))
        for n in range(count)
    )
    for n in range(3):
        record("history.read", object_type="thread", object_id=f"today-{n}")
    seal_all()


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_audit", *args, stdout=out)
    return out.getvalue()


def verify() -> str:
    out = StringIO()
    call_command("audit_verify", "--checkpoints", stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    with pytest.raises(CommandError) as refused:
        call_command("audit_verify", "--checkpoints", stdout=StringIO())
    return str(refused.value)


@pytest.mark.slow
def test_the_oldest_whole_blocks_go_and_the_chain_still_verifies(hospital, checkpoint_sink):
    old_entries(2 * CHUNK + 100)
    first_young = AuditSeal.objects.filter(event__at__gte=timezone.now() - timedelta(days=1))
    young_from = min(first_young.values_list("seq", flat=True))
    before = AuditEvent.objects.count()
    out = purge()
    upto = (young_from - 1) - (young_from - 1) % CHUNK
    assert f"pruned seals 1..{upto}: {upto} entries" in out
    assert AuditEvent.objects.count() == before - upto + 1  # and one audit.pruned entry
    assert not AuditSeal.objects.filter(seq__lte=upto).exists()
    anchor = AuditPrune.objects.get()
    assert (anchor.seq, anchor.removed) == (upto, upto)
    pruned = AuditEvent.objects.get(action="audit.pruned")
    assert pruned.data["upto"] == upto and pruned.data["record"] == anchor.record
    seal_all()
    report = verify_chain()
    assert report.ok and report.head_seq == AuditSeal.objects.count() + upto
    write_checkpoint()
    assert f"the prefix up to seal {upto} pruned (1 prune(s))" in verify()


def test_proofs_still_hold_after_a_prune(hospital, checkpoint_sink):
    old_entries(CHUNK + 10)
    purge()
    record("history.read", object_type="thread", object_id="after")
    seal_all()
    checkpoint, _ = write_checkpoint()
    seals = list(AuditSeal.objects.order_by("seq"))
    tree = SealTree(checkpoint.seq, proving=[s.seq for s in seals])
    assert tree.root().hex() == checkpoint.root
    for seal in seals:
        leaf = leaf_hash(bytes.fromhex(seal.hash))
        root = bytes.fromhex(checkpoint.root)
        assert verify_inclusion(seal.seq - 1, checkpoint.seq, leaf, tree.path(seal.seq), root)


def test_a_dry_run_removes_nothing(hospital, checkpoint_sink):
    old_entries(CHUNK + 10)
    before = (AuditEvent.objects.count(), AuditSeal.objects.count())
    assert f"would prune seals 1..{CHUNK}: {CHUNK} entries" in purge("--dry-run")
    assert (AuditEvent.objects.count(), AuditSeal.objects.count()) == before
    assert not AuditPrune.objects.exists()


def test_a_hold_keeps_the_trail_from_the_first_day_of_what_it_holds(hospital, checkpoint_sink):
    h = hospital
    Thread.objects.filter(pk=h.thread.pk).update(created_at=timezone.now() - 2 * YEARS_AGO_7)
    old_entries(CHUNK + 10)
    case = open_case(h.compliance_dan, reference="HOLD-1", patient_id=h.patient.pk)
    check_place_hold(h.compliance_dan, case.pk, "Litigation", patient_id=h.patient.pk)
    before = AuditEvent.objects.count()
    out = purge()
    assert "nothing to prune" in out and "HOLD-1" in out
    assert AuditEvent.objects.count() == before


def test_an_open_case_keeps_the_trail_of_what_it_covers(hospital, checkpoint_sink):
    h = hospital
    Thread.objects.filter(pk=h.thread.pk).update(created_at=timezone.now() - 2 * YEARS_AGO_7)
    old_entries(CHUNK + 10)
    open_case(h.compliance_dan, reference="CASE-OPEN", patient_id=h.patient.pk)
    assert "kept from" in (out := purge()) and "case CASE-OPEN" in out
    assert not AuditPrune.objects.exists()


def test_a_retention_under_six_months_is_refused(hospital, checkpoint_sink, settings):
    old_entries(CHUNK + 10)
    settings.ROUNDS_AUDIT_RETENTION_DAYS = 30
    with pytest.raises(CommandError, match="at least 183 days"):
        purge()
    assert not AuditPrune.objects.exists()


def test_a_sink_that_refuses_the_record_leaves_everything(hospital, checkpoint_sink, settings):
    old_entries(CHUNK + 10)
    before = AuditEvent.objects.count()
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "tape"
    with pytest.raises(CommandError, match="nothing removed"):
        purge()
    assert AuditEvent.objects.count() == before and not AuditPrune.objects.exists()


def test_a_prune_that_stopped_after_its_anchor_is_finished_by_the_next_run(
    hospital, checkpoint_sink, monkeypatch
):
    old_entries(CHUNK + 10)
    monkeypatch.setattr(audit_prune, "_delete_prefix", lambda upto: 0)
    purge()
    assert AuditPrune.objects.exists() and AuditSeal.objects.filter(seq__lte=CHUNK).exists()
    assert verify_chain().ok  # the chain starts after the anchor, leftovers or not
    monkeypatch.undo()
    assert f"finished an interrupted prune: {CHUNK} entries removed" in purge()
    assert not AuditSeal.objects.filter(seq__lte=CHUNK).exists()


def test_a_prefix_removed_without_a_signed_record_is_named(hospital, checkpoint_sink):
    old_entries(CHUNK + 10)
    purge()
    anchor = AuditPrune.objects.get()
    with maintenance(connection), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditprune SET record = 'prune-forged.json'")
    assert f"the prune up to seal {anchor.seq} has no signed record" in verify_fails()


def test_an_anchor_that_disagrees_with_its_signed_record_is_named(hospital, checkpoint_sink):
    old_entries(CHUNK + 10)
    purge()
    anchor = AuditPrune.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditprune SET removed = removed - 1")
    assert f"the prune up to seal {anchor.seq}: the database's anchor is not what" in (
        verify_fails()
    )
