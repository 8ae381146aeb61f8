"""The rows a stored post writes: its message, its `message.new` event, its audit entry.

Every accepted post of a batch writes these three rows, in the transaction that
holds the post's locks (chat/posting.py). On PostgreSQL they are one statement
for the whole batch (the event and the audit entry name the message's id, so
they are inserted from the message insert's RETURNING, in data-modifying CTEs),
prepared once per connection and batch size (rounds/prepared.py). SQLite, which
has no round trips to save and no INSERT in a CTE, runs the same three inserts
one after the other. The ORM built each INSERT in several times what the
database took to run it (docs/performance.md).

Each value is prepared by its model field (`get_db_prep_save`), as the ORM
prepares it; the columns are the models' own.
"""

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from audit.models import AuditEvent
from chat.models import Event, Message
from core.events import EventKind
from rounds.prepared import prepared_cursor


@dataclass(frozen=True)
class PostRow:
    """What one accepted post stores, its numbers taken."""

    thread_id: int
    seq: int
    sender_id: int
    sender_username: str
    client_msg_id: str
    header: dict[str, Any]
    ciphertext: str
    body_hash: str
    department_id: int
    event_seq: int
    ciphertext_bytes: int


def _columns(model: type[Model], names: Sequence[str]) -> "list[Field[Any, Any]]":
    fields = {f.name: f for f in model._meta.concrete_fields}
    return [fields[name] for name in names]


MESSAGE_FIELDS = _columns(
    Message,
    ("thread", "seq", "sender", "client_msg_id", "header", "ciphertext", "body_hash", "created_at"),
)
EVENT_FIELDS = _columns(Event, ("department", "seq", "kind", "message", "payload", "created_at"))
AUDIT_FIELDS = _columns(
    AuditEvent,
    (
        "at",
        "actor_id",
        "actor_username",
        "action",
        "department_id",
        "object_type",
        "object_id",
        "data",
        "ip",
    ),
)
# PostgreSQL types for the VALUES lists the CTEs join on: each parameter is cast to its
# column's type, which PostgreSQL cannot infer from a VALUES list.
MESSAGE_TYPES = ("bigint", "bigint", "bigint", "text", "jsonb", "text", "text", "timestamptz")
EVENT_TYPES = ("bigint", "bigint", "text", "bigint", "jsonb", "timestamptz")
POST_TYPES = ("bigint", "bigint", "bigint", "bigint", "bigint", "text", "jsonb")
AUDIT_TYPES = ("timestamptz", "bigint", "text", "text", "bigint", "text", "text", "jsonb", "inet")


def _names(fields: "Sequence[Field[Any, Any]]") -> str:
    return ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)


def _prepared(fields: "Sequence[Field[Any, Any]]", values: Sequence[Any]) -> list[Any]:
    return [f.get_db_prep_save(value, connection) for f, value in zip(fields, values, strict=True)]


def _rows(width: int, count: int, types: Sequence[str] = ()) -> str:
    one = ", ".join(f"%s::{t}" for t in types) if types else ", ".join(["%s"] * width)
    return ", ".join([f"({one})"] * count)


def _message_values(row: PostRow, at: datetime) -> list[Any]:
    values = (
        row.thread_id,
        row.seq,
        row.sender_id,
        row.client_msg_id,
        row.header,
        row.ciphertext,
        row.body_hash,
        at,
    )
    return _prepared(MESSAGE_FIELDS, values)


def _audit_data(row: PostRow) -> dict[str, Any]:
    return {"thread_id": row.thread_id, "seq": row.seq, "bytes": row.ciphertext_bytes}


def write_posts(rows: Sequence[PostRow], at: datetime) -> dict[tuple[int, int], int]:
    """Insert the rows of these posts; each message's id by its (thread id, seq)."""
    if connection.vendor == "postgresql":
        return _write_in_one_statement(rows, at)
    return _write_one_table_at_a_time(rows, at)


def _write_in_one_statement(rows: Sequence[PostRow], at: datetime) -> dict[tuple[int, int], int]:
    """Message, event and audit rows in one statement (PostgreSQL)."""
    params: list[Any] = []
    for row in rows:
        params += _message_values(row, at)
    for row in rows:
        params += [
            row.thread_id,
            row.seq,
            row.department_id,
            row.event_seq,
            row.sender_id,
            row.sender_username,
            json.dumps(_audit_data(row), separators=(",", ":")),
        ]
    at_value = MESSAGE_FIELDS[-1].get_db_prep_save(at, connection)
    params += [EventKind.MESSAGE_NEW.value, at_value, at_value, "message.posted", "message"]
    with prepared_cursor() as cursor:
        cursor.execute(_one_statement_sql(len(rows)), params)
        return {(int(t), int(s)): int(pk) for t, s, pk in cursor.fetchall()}


@functools.lru_cache(maxsize=64)  # a batch holds at most 64 posts (chat/consumers/batching.py)
def _one_statement_sql(n: int) -> str:
    """The statement for a batch of `n` posts, built once per size: building it (the
    quoted column names, the VALUES lists) took a third as long as PostgreSQL took to
    run it."""
    return (
        f"WITH m AS (INSERT INTO chat_message ({_names(MESSAGE_FIELDS)}) "  # noqa: S608
        f"VALUES {_rows(8, n, MESSAGE_TYPES)} RETURNING id, thread_id, seq), "
        "p (thread_id, seq, department_id, event_seq, sender_id, username, data) AS "
        f"(VALUES {_rows(7, n, POST_TYPES)}), "
        f"e AS (INSERT INTO chat_event ({_names(EVENT_FIELDS)}) "
        "SELECT p.department_id, p.event_seq, %s::text, m.id, '{}'::jsonb, %s::timestamptz "
        "FROM m JOIN p USING (thread_id, seq)), "
        f"a AS (INSERT INTO audit_auditevent ({_names(AUDIT_FIELDS)}) "
        "SELECT %s::timestamptz, p.sender_id, p.username, %s::text, p.department_id, %s::text, "
        "m.id::text, p.data, NULL FROM m JOIN p USING (thread_id, seq) ORDER BY p.event_seq) "
        "SELECT thread_id, seq, id FROM m"
    )


def _write_one_table_at_a_time(rows: Sequence[PostRow], at: datetime) -> dict[tuple[int, int], int]:
    """The same rows, a statement per table (SQLite: no INSERT in a CTE, no round trip)."""
    n = len(rows)
    with connection.cursor() as cursor:
        values: list[Any] = []
        for row in rows:
            values += _message_values(row, at)
        cursor.execute(
            f"INSERT INTO chat_message ({_names(MESSAGE_FIELDS)}) VALUES {_rows(8, n)} "  # noqa: S608
            "RETURNING thread_id, seq, id",
            values,
        )
        ids = {(int(t), int(s)): int(pk) for t, s, pk in cursor.fetchall()}
        events: list[Any] = []
        entries: list[Any] = []
        for row in rows:
            message_id = ids[(row.thread_id, row.seq)]
            events += _prepared(
                EVENT_FIELDS,
                (row.department_id, row.event_seq, EventKind.MESSAGE_NEW, message_id, {}, at),
            )
            entries += _prepared(
                AUDIT_FIELDS,
                (
                    at,
                    row.sender_id,
                    row.sender_username,
                    "message.posted",
                    row.department_id,
                    "message",
                    str(message_id),
                    _audit_data(row),
                    None,
                ),
            )
        cursor.execute(
            f"INSERT INTO chat_event ({_names(EVENT_FIELDS)}) VALUES {_rows(6, n)}",  # noqa: S608
            events,
        )
        cursor.execute(
            f"INSERT INTO audit_auditevent ({_names(AUDIT_FIELDS)}) VALUES {_rows(9, n)}",  # noqa: S608
            entries,
        )
    return ids
