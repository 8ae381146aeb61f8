"""The database side of 'append-only': triggers, and the one way past them.

Triggers on both audit tables refuse UPDATE, DELETE (and TRUNCATE on
PostgreSQL) unless the connection is in maintenance mode. Maintenance mode is
for the retention purge and for a test database being emptied between tests;
no request path enters it. The database owner can always drop a trigger, which
is why the entries are also hash-chained: the chain, not the trigger, is what
makes tampering evident.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.signals import connection_created

AUDIT_TABLES = ("audit_auditevent", "audit_auditseal")
SQLITE_GUARD_FUNCTION = "rounds_audit_writable"
PG_SETTING = "rounds.audit_maintenance"


def _register_sqlite_function(
    sender: object, connection: BaseDatabaseWrapper, **kwargs: Any
) -> None:
    if connection.vendor != "sqlite":
        return
    # Looked up on the wrapper at call time, so maintenance() can flip it.
    connection.connection.create_function(
        SQLITE_GUARD_FUNCTION,
        0,
        lambda: 1 if getattr(connection, "audit_maintenance", False) else 0,
    )


def connect() -> None:
    connection_created.connect(_register_sqlite_function, dispatch_uid="rounds-audit-guard")


@contextmanager
def maintenance(connection: BaseDatabaseWrapper) -> Iterator[None]:
    """Let this connection change audit rows for the duration of the block."""
    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, 'on', false)", [PG_SETTING])
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, 'off', false)", [PG_SETTING])
    else:
        connection.audit_maintenance = True  # type: ignore[attr-defined]  # Rounds' own flag
        try:
            yield
        finally:
            connection.audit_maintenance = False  # type: ignore[attr-defined]  # see above


def install_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        statements = [
            f"""
            CREATE OR REPLACE FUNCTION rounds_audit_append_only() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
              IF current_setting('{PG_SETTING}', true) = 'on' THEN
                IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                RETURN NEW;
              END IF;
              RAISE EXCEPTION 'audit log is append-only (% on %)', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
            END $$;
            """
        ]
        for table in AUDIT_TABLES:
            statements += [
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION rounds_audit_append_only();",
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION rounds_audit_append_only();",
            ]
        return statements
    if vendor == "sqlite":
        statements = []
        for table in AUDIT_TABLES:
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"WHEN {SQLITE_GUARD_FUNCTION}() = 0 "
                    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
                )
        return statements
    return []


def uninstall_sql(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f"DROP TRIGGER IF EXISTS {table}_{suffix} ON {table};"
            for table in AUDIT_TABLES
            for suffix in ("append_only", "no_truncate")
        ] + ["DROP FUNCTION IF EXISTS rounds_audit_append_only();"]
    if vendor == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_{op};"
            for table in AUDIT_TABLES
            for op in ("update", "delete")
        ]
    return []
