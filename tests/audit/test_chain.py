"""The hash chain: how entries are sealed, and how `audit_verify` finds tampering.

Tampering is done the way a database owner could: through maintenance mode
(which lifts the append-only triggers) and a queryset update, below the
model's own refusal. The chain, not the trigger, is what must catch it, and
the verifier must name the first seal and audit entry that do not match.
"""

import os
import threading
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from audit import sealer
from audit.actions import (
    PASSED_OVER,
    STRAGGLER_WINDOW,
    record,
    seal_all,
    seal_pending,
    verify_chain,
)
from audit.guard import maintenance
from audit.models import GENESIS_HASH, AuditEvent, AuditSeal, chain_hash
from audit.stragglers import MAX_REMEMBERED, PassedOver
from chat import actions as chat_actions
from tests.support import sealed

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")


def seals() -> list[AuditSeal]:
    return list(AuditSeal.objects.select_related("event").order_by("seq"))


def verify_ok(*args: str) -> str:
    out = StringIO()
    call_command("audit_verify", *args, stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    with pytest.raises(CommandError) as refused:
        call_command("audit_verify", stdout=StringIO())
    return str(refused.value)


def broken_at(seal: AuditSeal) -> str:
    return f"audit chain broken at seal {seal.seq} (audit entry {seal.event_id})"


def tamper(model, pk, **changes) -> None:
    """Change rows as only the database owner can: past the trigger, below the model."""
    with maintenance(connection):
        updated = model.objects.filter(pk=pk).update(**changes)
    assert updated == 1


@pytest.fixture
def chain(hospital) -> list[AuditSeal]:
    """The hospital's entries plus a short conversation, all sealed."""
    h = hospital
    for n in range(4):
        chat_actions.check_post_message(
            h.surgeon_bob,
            h.thread.pk,
            f"bob-c{n:07d}",
            sealed(h, "surgeon_bob", h.thread, f"bob-c{n:07d}"),
        )
    chat_actions.check_read_receipt(h.nurse_alice, h.thread.pk, 4)
    chat_actions.check_set_thread_closed(h.head_carol, h.thread.pk, closed=True)
    seal_all()
    made = seals()
    assert len(made) >= 10
    return made


# --- A good chain ------------------------------------------------------------------


@pytest.mark.django_db
def test_every_entry_is_sealed_in_id_order_into_one_dense_chain(chain):
    assert [s.seq for s in chain] == list(range(1, len(chain) + 1))
    assert [s.event_id for s in chain] == sorted(s.event_id for s in chain)
    assert AuditEvent.objects.filter(seal__isnull=True).count() == 0
    prev = GENESIS_HASH
    for seal in chain:
        assert seal.prev_hash == prev
        assert seal.hash == chain_hash(seal.seq, prev, seal.event.canonical())
        prev = seal.hash


@pytest.mark.django_db
def test_verify_passes_and_prints_the_head_hash(chain):
    head = chain[-1]
    out = verify_ok()
    assert out.strip() == (
        f"audit chain ok: {len(chain)} entries, head seal {head.seq} hash {head.hash}, "
        "0 not yet sealed"
    )


@pytest.mark.django_db
def test_verify_of_an_empty_trail_starts_from_the_genesis_hash():
    assert f"0 entries, head seal 0 hash {GENESIS_HASH}" in verify_ok()


@pytest.mark.django_db
def test_verify_counts_waiting_entries_and_seals_them_first_when_asked(chain):
    # Under the test database's outer transaction nothing commits, so no on-commit sealing.
    record("patient.searched", object_type="patient_search", data={"ipp": True})
    record("history.read", object_type="thread", object_id=1)
    assert "2 not yet sealed" in verify_ok()
    out = verify_ok("--seal-first")
    assert f"{len(chain) + 2} entries" in out and "0 not yet sealed" in out


@pytest.mark.django_db
def test_the_seal_command_reports_and_is_idempotent(hospital):
    first, second = StringIO(), StringIO()
    call_command("audit_seal", stdout=first)
    call_command("audit_seal", stdout=second)
    assert first.getvalue().strip() == f"sealed {AuditEvent.objects.count()} audit entries"
    assert second.getvalue().strip() == "sealed 0 audit entries"


@pytest.mark.django_db
def test_seal_all_is_idempotent(hospital):
    assert seal_all() == AuditEvent.objects.count() > 0
    before = [(s.seq, s.event_id, s.prev_hash, s.hash) for s in seals()]
    assert seal_all() == 0
    assert seal_all(full=True) == 0
    assert seal_pending() == 0
    assert [(s.seq, s.event_id, s.prev_hash, s.hash) for s in seals()] == before


@pytest.mark.django_db
def test_small_batches_chain_on_from_each_other(hospital, settings):
    settings.ROUNDS_AUDIT_SEAL_BATCH = 3
    total = AuditEvent.objects.count()
    assert seal_pending() == 3
    assert seal_all() == total - 3
    assert verify_chain().ok


# --- Tampering ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "field", ["data", "actor_id", "actor_username", "action", "at", "object_id", "ip"]
)
def test_an_edited_entry_is_named_by_the_verifier(chain, field):
    target = chain[len(chain) // 2]
    forged = {
        "data": {**target.event.data, "forged": True},
        "actor_id": (target.event.actor_id or 0) + 1,
        "actor_username": "someone_else",
        "action": "history.read",
        "at": target.event.at - timedelta(seconds=1),
        "object_id": "999999",
        "ip": "10.66.0.1",
    }[field]
    tamper(AuditEvent, target.event_id, **{field: forged})
    message = verify_fails()
    assert broken_at(target) in message
    assert "entry content does not match its hash" in message
    assert f"{target.seq - 1} entries verified before it" in message


@pytest.mark.django_db
def test_the_first_of_two_edits_is_named(chain):
    early, late = chain[3], chain[-2]
    tamper(AuditEvent, late.event_id, actor_username="mallory")
    tamper(AuditEvent, early.event_id, actor_username="mallory")
    assert broken_at(early) in verify_fails()


@pytest.mark.django_db
def test_a_resealed_edit_breaks_the_next_link(chain):
    """Recomputing the edited entry's own seal is not enough: the next seal still points back."""
    target, after = chain[4], chain[5]
    tamper(AuditEvent, target.event_id, data={"forged": True})
    edited = AuditEvent.objects.get(pk=target.event_id)
    tamper(AuditSeal, target.seq, hash=chain_hash(target.seq, target.prev_hash, edited.canonical()))
    message = verify_fails()
    assert broken_at(after) in message
    assert "previous-hash link does not match" in message


@pytest.mark.django_db
@pytest.mark.parametrize("position", ["first", "middle"])
def test_a_deleted_seal_is_reported_as_a_gap(chain, position):
    index = 0 if position == "first" else len(chain) // 2
    removed, after = chain[index], chain[index + 1]
    with maintenance(connection):
        assert AuditSeal.objects.filter(pk=removed.seq).delete()[0] == 1
    message = verify_fails()
    assert broken_at(after) in message
    assert f"seal {removed.seq} is missing" in message


@pytest.mark.django_db
def test_a_deleted_head_seal_shows_as_a_changed_head_and_an_unsealed_entry(chain):
    """Cutting the chain's end leaves a valid shorter chain: the printed head hash is what
    an operator compares with the one recorded earlier, and the orphaned entry shows."""
    head = chain[-1]
    with maintenance(connection):
        AuditSeal.objects.filter(pk=head.seq).delete()
    out = verify_ok()
    assert f"head seal {head.seq - 1} hash {chain[-2].hash}" in out
    assert "1 not yet sealed" in out


@pytest.mark.django_db
def test_a_broken_previous_hash_link_is_named(chain):
    target = chain[6]
    tamper(AuditSeal, target.seq, prev_hash="f" * 64)
    message = verify_fails()
    assert broken_at(target) in message
    assert "previous-hash link does not match" in message


@pytest.mark.django_db
def test_a_forged_seal_hash_is_named(chain):
    target = chain[2]
    tamper(AuditSeal, target.seq, hash="0" * 64)
    # The forged seal's own content check fails first.
    assert broken_at(target) in verify_fails()


# --- Stragglers: entries that commit after later ones were sealed ------------------------


def write_entry(pk: int, at, action: str = "straggler.test") -> AuditEvent:
    return AuditEvent.objects.create(id=pk, at=at, action=action, data={})


@pytest.mark.django_db
def test_a_straggler_within_the_window_is_sealed_next_and_verifies(chain):
    """Entry ids are taken when a transaction inserts, not when it commits, so an entry
    with a lower id than the last sealed one can still arrive; it is chained next."""
    base = chain[-1].event_id
    now = timezone.now()
    later = write_entry(base + 200, now)
    assert seal_pending() == 1
    straggler = write_entry(base + 100, now - timedelta(minutes=1))
    assert seal_pending() == 1
    straggler_seal = AuditSeal.objects.get(event=straggler)
    assert straggler_seal.seq == AuditSeal.objects.get(event=later).seq + 1
    assert verify_chain().ok
    assert "0 not yet sealed" in verify_ok()


@pytest.mark.django_db
def test_a_straggler_beyond_the_window_waits_for_a_full_seal(chain):
    base = chain[-1].event_id
    write_entry(base + 200, timezone.now())
    seal_pending()
    old = write_entry(base + 100, timezone.now() - STRAGGLER_WINDOW - timedelta(minutes=5))
    assert seal_pending() == 0
    # Older than ROUNDS_AUDIT_SEAL_WINDOW_SECONDS and still unsealed: the verifier says so.
    assert "1 entries unsealed for longer than" in verify_fails()
    assert f"the oldest entry {old.pk} " in verify_fails()
    assert seal_all(full=True) == 1
    assert AuditSeal.objects.filter(event=old).exists()
    assert "0 not yet sealed" in verify_ok()


@pytest.fixture
def forgetful_sealer():
    """No id remembered from another test's rounds, none left to the next test."""
    PASSED_OVER.clear()
    yield PASSED_OVER
    PASSED_OVER.clear()


@pytest.mark.django_db
def test_a_round_without_sweep_seals_above_the_tip_and_comes_back_for_what_it_passed(
    chain, forgetful_sealer
):
    """Between sweeps a round reads only above the highest sealed id, and the ids it
    passed over: the one that commits later is sealed next, without a window scan."""
    base = chain[-1].event_id
    now = timezone.now()
    later = write_entry(base + 200, now)
    assert seal_pending(sweep=False) == 1
    assert forgetful_sealer.ids() == list(range(base + 1, base + 200))
    straggler = write_entry(base + 100, now)
    assert seal_pending(sweep=False) == 1
    assert AuditSeal.objects.get(event=straggler).seq == AuditSeal.objects.get(event=later).seq + 1
    assert base + 100 not in forgetful_sealer.ids()
    assert verify_chain().ok


@pytest.mark.django_db
def test_a_round_without_sweep_misses_what_it_never_passed_over_and_a_sweep_finds_it(
    chain, forgetful_sealer
):
    base = chain[-1].event_id
    write_entry(base + 200, timezone.now())
    assert seal_pending(sweep=False) == 1
    forgetful_sealer.clear()  # as if another process's round had passed it over
    straggler = write_entry(base + 100, timezone.now())
    assert seal_pending(sweep=False) == 0
    assert seal_pending() == 1
    assert AuditSeal.objects.filter(event=straggler).exists()


@pytest.mark.django_db
def test_an_id_passed_over_and_sealed_elsewhere_is_forgotten(chain, forgetful_sealer):
    base = chain[-1].event_id
    write_entry(base + 3, timezone.now())
    assert seal_pending(sweep=False) == 1
    assert forgetful_sealer.ids() == [base + 1, base + 2]
    write_entry(base + 1, timezone.now())
    assert seal_pending() == 1  # a sweep, as another process's would
    assert forgetful_sealer.ids() == [base + 2]
    assert seal_pending(sweep=False) == 0
    assert forgetful_sealer.ids() == [base + 2]  # never committed (yet): still looked for


@pytest.mark.django_db
def test_the_thread_sweeps_on_its_first_round_then_once_a_minute(
    chain, forgetful_sealer, monkeypatch
):
    monkeypatch.setattr(sealer, "close_old_connections", lambda: None)  # the test's transaction
    base = chain[-1].event_id
    write_entry(base + 200, timezone.now())
    assert seal_pending(sweep=False) == 1
    forgetful_sealer.clear()
    straggler = write_entry(base + 100, timezone.now())
    sealer._last_sweep = time.monotonic()
    sealer.run_round()
    assert not AuditSeal.objects.filter(event=straggler).exists()
    sealer._last_sweep = time.monotonic() - sealer.SWEEP_SECONDS - 1
    sealer.run_round()
    assert AuditSeal.objects.filter(event=straggler).exists()
    sealer._last_sweep = None
    assert verify_chain().ok


def test_passed_over_ids_are_the_gaps_below_each_taken_id_within_a_bound():
    passed = PassedOver(keep_for=timedelta(minutes=10))
    passed.note_gaps(10, [11, 14, 15, 18], now=0.0)
    assert passed.ids(now=1.0) == [12, 13, 16, 17]
    passed.note_gaps(18, [18 + MAX_REMEMBERED + 10], now=0.0)  # a jump: left to the sweep
    assert passed.ids(now=1.0) == [12, 13, 16, 17]
    passed.settle([13, 16])
    assert passed.ids(now=1.0) == [12, 17]
    assert passed.ids(now=601.0) == []  # past the straggler window: forgotten


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="two concurrent writers need PostgreSQL")
def test_a_real_straggler_from_a_slow_transaction_is_sealed_on_its_commit(live_hospital):
    """A slow action holds its entry uncommitted while a fast one commits and is sealed."""
    inserted, release = threading.Event(), threading.Event()
    slow: dict[str, int] = {}
    failure: list[BaseException] = []

    def slow_action() -> None:
        try:
            with transaction.atomic():
                slow["id"] = record("straggler.slow", object_type="test").pk
                inserted.set()
                assert release.wait(10)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
            inserted.set()
        finally:
            connection.close()

    worker = threading.Thread(target=slow_action)
    worker.start()
    assert inserted.wait(10)
    fast = record("straggler.fast", object_type="test")  # autocommit: sealed at once
    fast_seal = AuditSeal.objects.get(event=fast)
    release.set()
    worker.join(10)
    assert not failure, failure
    assert slow["id"] < fast.pk
    slow_seal = AuditSeal.objects.get(event_id=slow["id"])
    assert slow_seal.seq > fast_seal.seq
    report = verify_chain()
    assert report.ok and report.unsealed == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="two concurrent writers need PostgreSQL")
def test_a_real_straggler_is_found_by_the_next_round_without_sweep(
    live_hospital, settings, forgetful_sealer
):
    """The thread's rounds between sweeps: the slow entry, invisible when the fast one
    was sealed, is remembered as passed over and sealed by the round after its commit."""
    settings.ROUNDS_AUDIT_SEALER = "off"
    seal_all()
    inserted, release, done = threading.Event(), threading.Event(), threading.Event()
    slow: dict[str, int] = {}

    def slow_action() -> None:
        try:
            with transaction.atomic():
                slow["id"] = record("straggler.slow", object_type="test").pk
                inserted.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    worker = threading.Thread(target=slow_action)
    worker.start()
    assert inserted.wait(10)
    fast = record("straggler.fast", object_type="test")
    assert seal_pending(sweep=False) == 1
    assert slow["id"] in forgetful_sealer.ids()
    release.set()
    assert done.wait(10)
    worker.join(10)
    assert seal_pending(sweep=False) == 1
    slow_seal = AuditSeal.objects.get(event_id=slow["id"])
    assert slow_seal.seq == AuditSeal.objects.get(event=fast).seq + 1
    assert verify_chain().ok
