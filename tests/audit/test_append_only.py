"""Audit rows cannot be changed or removed: by the model, and by the database itself.

The model refuses `save()` of an existing row and `delete()`. Querysets and
raw SQL go around the model, so triggers on both audit tables refuse UPDATE
and DELETE (and TRUNCATE on PostgreSQL) unless the connection is in
maintenance mode. Each refused statement runs in a savepoint so the test's
transaction carries on after the database error.
"""

import os

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit.actions import record, seal_all
from audit.guard import maintenance
from audit.models import AppendOnlyError, AuditEvent, AuditSeal

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")

pytestmark = pytest.mark.django_db


@pytest.fixture
def sealed_entry() -> tuple[AuditEvent, AuditSeal]:
    entry = record("login.succeeded", object_type="user", object_id=7, data={"method": "token"})
    seal_all()
    return AuditEvent.objects.get(pk=entry.pk), AuditSeal.objects.get(event_id=entry.pk)


def snapshot() -> tuple[list, list]:
    events = list(AuditEvent.objects.order_by("id").values())
    seals = list(AuditSeal.objects.order_by("seq").values())
    return events, seals


def expect_refused(sql: str, params: list | None = None) -> str:
    """Run one statement in a savepoint; return the database's refusal."""
    with pytest.raises(DatabaseError) as error, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(error.value)


# --- The model --------------------------------------------------------------------


def test_the_model_refuses_to_save_a_changed_entry(sealed_entry):
    entry, _ = sealed_entry
    entry.actor_username = "mallory"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.save(update_fields=["actor_username"])
    assert AuditEvent.objects.get(pk=entry.pk).actor_username == ""


def test_the_model_refuses_to_delete_an_entry(sealed_entry):
    entry, _ = sealed_entry
    with pytest.raises(AppendOnlyError):
        entry.delete()
    assert AuditEvent.objects.filter(pk=entry.pk).exists()


def test_the_model_refuses_to_save_or_delete_a_seal(sealed_entry):
    _, seal = sealed_entry
    seal.hash = "0" * 64
    with pytest.raises(AppendOnlyError):
        seal.save()
    with pytest.raises(AppendOnlyError):
        seal.delete()
    assert AuditSeal.objects.get(pk=seal.pk).hash != "0" * 64


def test_a_new_entry_is_always_an_insert():
    entry = AuditEvent(at=timezone.now(), action="x.second")
    entry.save()
    assert AuditEvent.objects.filter(action="x.second").count() == 1


# --- The database triggers ---------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET actor_username = 'mallory' WHERE id = %s",
        "UPDATE audit_auditevent SET action = action WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
    ids=["update", "no-op-update", "delete"],
)
def test_raw_sql_cannot_change_or_remove_an_entry(sealed_entry, sql):
    entry, _ = sealed_entry
    before = snapshot()
    assert "append-only" in expect_refused(sql, [entry.pk])
    assert snapshot() == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditseal SET hash = %s WHERE seq = %s",
        "DELETE FROM audit_auditseal WHERE hash <> %s AND seq = %s",
    ],
    ids=["update", "delete"],
)
def test_raw_sql_cannot_change_or_remove_a_seal(sealed_entry, sql):
    _, seal = sealed_entry
    before = snapshot()
    assert "append-only" in expect_refused(sql, ["0" * 64, seal.seq])
    assert snapshot() == before


def test_unfiltered_statements_are_refused_too(sealed_entry):
    before = snapshot()
    assert "append-only" in expect_refused("DELETE FROM audit_auditseal")
    assert "append-only" in expect_refused("UPDATE audit_auditevent SET data = '{}'")
    assert snapshot() == before


def test_querysets_go_around_the_model_but_not_the_trigger(sealed_entry):
    entry, seal = sealed_entry
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=entry.pk).update(actor_username="mallory")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditSeal.objects.filter(pk=seal.pk).delete()
    assert AuditSeal.objects.filter(pk=seal.pk).exists()


def test_maintenance_mode_lifts_the_guard_only_while_it_lasts(sealed_entry):
    entry, _ = sealed_entry
    with maintenance(connection), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditevent SET actor_username = 'retention' WHERE id = %s", [entry.pk]
        )
    assert AuditEvent.objects.get(pk=entry.pk).actor_username == "retention"
    expect_refused(
        "UPDATE audit_auditevent SET actor_username = 'mallory' WHERE id = %s", [entry.pk]
    )
    assert AuditEvent.objects.get(pk=entry.pk).actor_username == "retention"


# Committed rows: inside the test's own transaction PostgreSQL would refuse TRUNCATE for
# the seals' pending deferred foreign-key checks, before the trigger had its say.
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not POSTGRES, reason="TRUNCATE is PostgreSQL's")
@pytest.mark.parametrize(
    "sql",
    [
        "TRUNCATE audit_auditseal",
        "TRUNCATE audit_auditevent, audit_auditseal",
        "TRUNCATE audit_auditevent CASCADE",
    ],
)
def test_truncate_is_refused_on_postgresql(sealed_entry, sql):
    before = snapshot()
    assert "append-only" in expect_refused(sql)
    assert snapshot() == before


def test_the_triggers_are_installed_on_both_tables():
    if connection.vendor == "postgresql":
        query = (
            "SELECT event_object_table, event_manipulation FROM information_schema.triggers "
            "WHERE event_object_table LIKE 'audit_%%'"
        )
    else:
        query = "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger'"
    with connection.cursor() as cursor:
        cursor.execute(query)
        rows = cursor.fetchall()
    for table in ("audit_auditevent", "audit_auditseal"):
        found = " ".join(str(what) for name, what in rows if name == table).upper()
        assert "UPDATE" in found and "DELETE" in found, (table, rows)
