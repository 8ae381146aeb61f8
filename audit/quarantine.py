"""Entries the sealer cannot encode: kept, chained as a marker, reported.

The edges refuse text no database can store (rounds/text.py), but an entry
may still be one the canonical encoding cannot write: a lone surrogate that
reached SQLite before that check, or bytes written into the file by another
program. One such entry once stopped the chain for good, since every round
failed on it. The sealer now seals it with a *quarantine marker* in place of
its canonical encoding: its id and the SHA-256 of its row exactly as the
database stores it (`raw_digest`), so the entry keeps its place in the chain
and any later change to the stored row still breaks the chain. The seal
carries the same digest in `quarantined_sha256`, which marks it; the row
itself is never changed. audit_verify fails while a quarantined entry has not
been reviewed (docs/audit.md).
"""

import hashlib
import json
import logging
from typing import Any

from django.db import connection, transaction

from audit.models import AuditEvent

logger = logging.getLogger(__name__)

RAW_DOMAIN = b"rounds-audit-raw-v1\n"


def encode(event: AuditEvent | None) -> bytes | None:
    """The entry's canonical bytes, or None if it cannot be read or encoded."""
    if event is None:
        return None
    try:
        return event.canonical()
    except Exception:  # any failure of one row's encoding: the row, not the sealer, is bad
        return None


def load_events(ids: list[int]) -> dict[int, AuditEvent | None]:
    """The entries by id; None for a row the driver cannot read (invalid UTF-8 on SQLite).

    One query normally; a failing batch is read again row by row, each in a
    savepoint so that PostgreSQL's transaction survives the error.
    """
    try:
        with transaction.atomic():
            found: dict[int, AuditEvent | None] = dict(AuditEvent.objects.in_bulk(ids))
    except Exception:
        found = {}
        for event_id in ids:
            try:
                with transaction.atomic():
                    found[event_id] = AuditEvent.objects.filter(pk=event_id).first()
            except Exception:
                found[event_id] = None
    return found


def raw_digest(event_id: int) -> str:
    """SHA-256 of the row as stored: each column as bytes, read below the ORM's decoding.

    The encoding differs between SQLite and PostgreSQL, so a marker made on one
    does not verify on the other; a trail is verified where it was sealed.
    """
    # Every concrete field has a column; the test only narrows the type.
    columns = [field.column for field in AuditEvent._meta.concrete_fields if field.column]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        selected = [f"convert_to({quote(c)}::text, 'UTF8')" for c in columns]
    else:
        selected = [f"CAST({quote(c)} AS BLOB)" for c in columns]
    table = quote(AuditEvent._meta.db_table)
    # Names from the model, never from input.
    sql = f"SELECT {', '.join(selected)} FROM {table} WHERE id = %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [event_id])
        row = cursor.fetchone()
    digest = hashlib.sha256(RAW_DOMAIN)
    for column, value in zip(columns, row or (), strict=False):
        digest.update(column.encode() + b"\n")
        if value is None:
            digest.update(b"-\n")
        else:
            raw = bytes(value) if not isinstance(value, str) else value.encode()
            digest.update(f"{len(raw)}:".encode() + raw + b"\n")
    return digest.hexdigest()


def marker(event_id: int, digest: str) -> bytes:
    """What the chain covers in place of a quarantined entry's canonical encoding."""
    record: dict[str, Any] = {"id": event_id, "quarantined": True, "raw_sha256": digest}
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def report(event_id: int, seq: int, digest: str) -> None:
    """Logged with the id and the digest only: the content is what could not be encoded."""
    logger.error(
        "audit entry %s quarantined at seal %s: it cannot be encoded (raw sha256 %s); "
        "audit_verify fails until it is reviewed",
        event_id,
        seq,
        digest,
    )
