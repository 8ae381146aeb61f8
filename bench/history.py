"""History and resume at scale: one thread holding `rows` messages.

The deployment's database is filled in bulk with what the post path would
have written (v2 envelopes as bench/messaging.py posts them, numbered
messages, one `message.new` event each, the thread's and department's
counters moved on), but no audit entries: the audit tables are append-only
and a history read does not look at them. Stored envelopes are never
verified again, so random bytes in a real envelope's shape (docs/crypto.md
§8) stand in for signed ones.

Then a member who did not post reads it with real clients:

history — `history.fetch` over the socket and `GET /api/threads/{id}/messages`,
          a page of 50 ending at a random `before_seq` anywhere in the thread.
resume  — a new socket sends `resume` with a cursor 1 to 500 events behind the
          head (one replay batch, ROUNDS_RESUME_BATCH), as a phone back from a
          lift would; timed from the frame to its ack, the replay included.
          A cursor deep in a million events replays all of them: that is a
          catch-up (bench/catchup.py), not a resume.

A million rows take about 70 s to write and 1.3 GB on either database
(SQLite included: executemany in transactions of CHUNK rows).
"""

import asyncio
import base64
import hashlib
import json
import os
import random
import sqlite3
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.messaging import percentile, prepare_thread, signed_in
from bench.stack import Stack

# A 300-byte plaintext makes a ~920-byte envelope, header included.
PLAINTEXT_BYTES = 300
PAGE = 50
RESUME_MAX_MISSED = 500
CHUNK = 50_000

# The sender's clock, as the browser writes it (docs/crypto.md §8); never read back.
SENT_AT = "2026-01-05T08:15:00.000Z"

MESSAGE_COLUMNS = (
    "id, thread_id, seq, sender_id, client_msg_id, header, ciphertext, body_hash, created_at"
)
EVENT_COLUMNS = "id, department_id, seq, kind, message_id, payload, created_at"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def stored_message(department: int, thread: int, sender: int) -> tuple[str, dict, str, str]:
    """(client_msg_id, header, ciphertext, body_hash) as check_post_message would store them."""
    client_msg_id = uuid.uuid4().hex
    noise = os.urandom(32 + 32 + 24 + 64 + PLAINTEXT_BYTES + 16)
    header = {
        "v": 2,
        "room": department,
        "thread": thread,
        "key_version": 1,
        "key_commitment": b64(noise[:32]),
        "chain_seq": 5,
        "chain_head": noise[32:64].hex(),
        "sender": sender,
        "client_msg_id": client_msg_id,
        "sent_at": SENT_AT,
        "nonce": b64(noise[64:88]),
        "sig": b64(noise[88:152]),
    }
    ciphertext = b64(noise[152:])
    canonical = json.dumps(
        {"header": header, "ciphertext": ciphertext},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return client_msg_id, header, ciphertext, hashlib.sha256(canonical.encode()).hexdigest()


class Filler:
    """Row ids, counters and timestamps for the bulk insert, engine aside."""

    def __init__(self, department: int, thread: int, senders: list[int], total: int) -> None:
        self.department = department
        self.thread = thread
        self.senders = senders
        # One message every 5 s, the last one now.
        self.start = datetime.now(UTC) - timedelta(seconds=5 * total)

    def rows(
        self,
        count: int,
        first_message_id: int,
        first_seq: int,
        first_event_id: int,
        first_event_seq: int,
    ) -> Iterator[tuple[tuple, tuple]]:
        """(message row, event row) pairs, numbered on from the given ids and counters."""
        for offset in range(count):
            seq = first_seq + offset
            sender = self.senders[offset % len(self.senders)]
            client_msg_id, header, ciphertext, body_hash = stored_message(
                self.department, self.thread, sender
            )
            created_at = self.start + timedelta(seconds=5 * seq)
            message_id = first_message_id + offset
            yield (
                (message_id, self.thread, seq, sender, client_msg_id, json.dumps(header),
                 ciphertext, body_hash, created_at),
                (first_event_id + offset, self.department, first_event_seq + offset,
                 "message.new", message_id, "{}", created_at),
            )  # fmt: skip


def fill_postgresql(database_url: str, filler: Filler, rows: int) -> None:
    """COPY in chunks, each in one transaction with the counters it moves on."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        for done in range(0, rows, CHUNK):
            count = min(CHUNK, rows - done)
            with conn.transaction(), conn.cursor() as cursor:
                (event_seq,) = cursor.execute(
                    "SELECT event_seq FROM rooms_department WHERE id = %s FOR UPDATE",
                    [filler.department],
                ).fetchone()
                (last_seq,) = cursor.execute(
                    "SELECT last_seq FROM chat_thread WHERE id = %s FOR UPDATE", [filler.thread]
                ).fetchone()
                (message_id,) = cursor.execute(
                    "SELECT COALESCE(MAX(id), 0) FROM chat_message"
                ).fetchone()
                (event_id,) = cursor.execute(
                    "SELECT COALESCE(MAX(id), 0) FROM chat_event"
                ).fetchone()
                batch = list(
                    filler.rows(count, message_id + 1, last_seq + 1, event_id + 1, event_seq + 1)
                )
                with cursor.copy(f"COPY chat_message ({MESSAGE_COLUMNS}) FROM STDIN") as copy:
                    for message, _ in batch:
                        copy.write_row(message)
                with cursor.copy(f"COPY chat_event ({EVENT_COLUMNS}) FROM STDIN") as copy:
                    for _, event in batch:
                        copy.write_row(event)
                move_counters(cursor, filler, count, "%s")
                for table in ("chat_message", "chat_event"):
                    cursor.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))"
                    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        # What autovacuum would have done to tables grown over years.
        conn.execute("VACUUM ANALYZE chat_message")
        conn.execute("VACUUM ANALYZE chat_event")


def move_counters(cursor, filler: Filler, count: int, placeholder: str) -> None:
    cursor.execute(
        f"UPDATE chat_thread SET last_seq = last_seq + {placeholder} WHERE id = {placeholder}",
        [count, filler.thread],
    )
    cursor.execute(
        f"UPDATE rooms_department SET event_seq = event_seq + {placeholder} "
        f"WHERE id = {placeholder}",
        [count, filler.department],
    )


def sqlite_datetime(moment: datetime) -> str:
    """As Django's SQLite backend stores an aware datetime: naive UTC text."""
    return str(moment.astimezone(UTC).replace(tzinfo=None))


def fill_sqlite(path: Path, filler: Filler, rows: int) -> None:
    """executemany in chunks, each in one write transaction with its counters."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        for done in range(0, rows, CHUNK):
            count = min(CHUNK, rows - done)
            conn.execute("BEGIN IMMEDIATE")
            (event_seq,) = conn.execute(
                "SELECT event_seq FROM rooms_department WHERE id = ?", [filler.department]
            ).fetchone()
            (last_seq,) = conn.execute(
                "SELECT last_seq FROM chat_thread WHERE id = ?", [filler.thread]
            ).fetchone()
            (message_id,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM chat_message").fetchone()
            (event_id,) = conn.execute("SELECT COALESCE(MAX(id), 0) FROM chat_event").fetchone()
            batch = list(
                filler.rows(count, message_id + 1, last_seq + 1, event_id + 1, event_seq + 1)
            )
            conn.executemany(
                f"INSERT INTO chat_message ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*m[:-1], sqlite_datetime(m[-1])) for m, _ in batch],
            )
            conn.executemany(
                f"INSERT INTO chat_event ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(*e[:-1], sqlite_datetime(e[-1])) for _, e in batch],
            )
            move_counters(conn, filler, count, "?")
            conn.execute("COMMIT")
    finally:
        conn.close()


def database_size_mb(database_url: str) -> float:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        files = [path, path.with_name(path.name + "-wal")]
        return round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 1)
    import psycopg

    with psycopg.connect(database_url) as conn:
        (size,) = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return round(size / 2**20, 1)


def department_members(database_url: str, department: int) -> list[int]:
    query = "SELECT user_id FROM rooms_membership WHERE department_id = {} AND removed_at IS NULL"
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            return [row[0] for row in conn.execute(query.format("?"), [department])]
    import psycopg

    with psycopg.connect(database_url) as conn:
        return [row[0] for row in conn.execute(query.format("%s"), [department])]


def timed_ms(values: list[float]) -> dict:
    return {
        "p50_ms": round(statistics.median(values), 2),
        "p99_ms": round(percentile(values, 99), 2),
    }


def is_full_page(page: dict, before_seq: int) -> bool:
    """The PAGE messages just before `before_seq`, oldest first, none missing."""
    return [m["seq"] for m in page["messages"]] == list(range(before_seq - PAGE, before_seq))


async def measure(
    url: str, thread: int, department: int, rows: int, samples: int
) -> dict[str, float | int]:
    reader = await signed_in(url, "nurse_alice")
    await reader.connect()
    head = int(reader.hello["cursor"][str(department)])
    socket_ms: list[float] = []
    http_ms: list[float] = []
    full_pages = 0
    for _ in range(samples):
        before_seq = random.randint(PAGE + 1, rows + 1)
        started = time.perf_counter()
        page = await reader.history(thread, before_seq=before_seq, limit=PAGE)
        socket_ms.append((time.perf_counter() - started) * 1000)
        full_pages += is_full_page(page, before_seq)
        before_seq = random.randint(PAGE + 1, rows + 1)
        started = time.perf_counter()
        page = await reader.call(
            "GET",
            f"/api/threads/{thread}/messages",
            params={"before_seq": before_seq, "limit": PAGE},
        )
        http_ms.append((time.perf_counter() - started) * 1000)
        full_pages += is_full_page(page, before_seq)
    await reader.disconnect()
    resume_ms: list[float] = []
    replayed = 0
    complete = 0
    for _ in range(samples):
        missed = random.randint(1, min(RESUME_MAX_MISSED, rows))
        await reader.connect()
        started = time.perf_counter()
        await reader.resume({str(department): head - missed})
        resume_ms.append((time.perf_counter() - started) * 1000)
        frames = [reader.events.get_nowait() for _ in range(reader.events.qsize())]
        seqs = [f["event_seq"] for f in frames if f.get("type") == "message.new"]
        replayed += len(seqs)
        complete += seqs == list(range(head - missed + 1, head + 1))
        await reader.disconnect()
    await reader.aclose()
    return {
        "pages": samples * 2,
        "pages_full": full_pages,
        **{f"history_ws_{k}": v for k, v in timed_ms(socket_ms).items()},
        **{f"history_http_{k}": v for k, v in timed_ms(http_ms).items()},
        "resumes": samples,
        "resumes_complete": complete,
        "resume_events_mean": round(replayed / samples, 1),
        **{f"resume_{k}": v for k, v in timed_ms(resume_ms).items()},
    }


def run_history(stack: Stack, rows: int = 1_000_000, samples: int = 300) -> dict:
    """Fill a new thread with `rows` messages, then time `samples` pages of each kind and resumes.

    Takes the Stack, not only its urls: the fill writes to its database
    directly. The stack must lift the frame rate limit (BENCH_LIMITS).
    """
    if float(stack.env.get("ROUNDS_WS_RATE_PER_SECOND", "30")) < 1000:
        raise ValueError("start the stack with bench.messaging.BENCH_LIMITS (frame rate limit)")
    database_url = stack.env["DATABASE_URL"]
    sqlite = database_url.startswith("sqlite:///")

    async def new_thread() -> tuple[int, int]:
        bob = await signed_in(stack.urls[0], "surgeon_bob")
        try:
            return await prepare_thread(bob)
        finally:
            await bob.aclose()

    department, thread = asyncio.run(new_thread())
    filler = Filler(department, thread, department_members(database_url, department), rows)
    started = time.perf_counter()
    if sqlite:
        fill_sqlite(Path(database_url.removeprefix("sqlite:///")), filler, rows)
    else:
        fill_postgresql(database_url, filler, rows)
    fill_seconds = time.perf_counter() - started
    figures = asyncio.run(measure(stack.urls[-1], thread, department, rows, samples))
    return {
        "rows": rows,
        "database": "SQLite" if sqlite else "PostgreSQL",
        "fill_seconds": round(fill_seconds, 1),
        "fill_rows_per_s": round(rows / fill_seconds),
        "database_mb": database_size_mb(database_url),
        "samples": samples,
        **figures,
    }
