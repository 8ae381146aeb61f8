"""The purge at scale: one expired patient's thread of `rows` messages, purged while
members keep posting.

The deployment's database is filled in bulk as bench/history.py fills it
(v2 envelopes of random bytes, one `message.new` event each), for a patient
discharged 30 years ago whose messages are as old; the demo patients are
not expired, so `purge_expired` finds that thread only. Then:

before — a member posts at a steady rate (acked posts, timed from the frame to
         its ack: a write, which a purge holding the database would delay) and
         pings, with nothing else running;
during — the same, while `purge_expired` runs in a process of its own beside
         the servers, as cron would start it.

Reported: the purge's own time (`python -m bench.purge purge`, in the
deployment's database), messages purged per second, and p50/p99 of the post
and the ping before and during.
"""

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.history import Filler, department_members, fill_postgresql, fill_sqlite
from bench.messaging import demo_institution, percentile, prepare_thread, signed_in
from bench.stack import ROOT, Stack, run_in_deployment

YEARS_AGO = timedelta(days=365 * 30)
RATE = 20.0  # posts per second, and as many pings


def timed(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2) if values else None,
        "p99_ms": round(percentile(values, 99), 2) if values else None,
    }


# --- In the deployment's database (python -m bench.purge fill|purge) ------------------


def fill(rows: int) -> dict:
    """An expired patient, their thread in surgeon_bob's department, `rows` messages."""
    from django.db import connection
    from django.db.models import F

    from accounts.models import User
    from chat.models import Message, Thread
    from patients.models import Admission, Patient
    from rooms.models import Membership

    bob = User.objects.get(username="surgeon_bob")
    department_id = (
        Membership.objects.active().filter(user=bob).values_list("department_id", flat=True)[0]
    )
    now = datetime.now(UTC)
    patient = Patient.objects.create(
        ipp=f"PURGE{uuid.uuid4().hex[:8]}",
        family_name="Expired",
        given_name="Bench",
        birth_date=(now - YEARS_AGO - timedelta(days=365 * 50)).date(),
    )
    Admission.objects.create(
        patient=patient,
        ward="Bench",
        admitted_at=now - YEARS_AGO - timedelta(days=10),
        discharged_at=now - YEARS_AGO,
    )
    thread = Thread.objects.create(
        department_id=department_id, patient=patient, title="Bench purge", created_by=bob
    )
    database_url = os.environ["DATABASE_URL"]  # the deployment's (Stack.env)
    connection.close()
    filler = Filler(department_id, thread.pk, department_members(database_url, department_id), rows)
    started = time.perf_counter()
    if database_url.startswith("sqlite:///"):
        fill_sqlite(Path(database_url.removeprefix("sqlite:///")), filler, rows)
    else:
        fill_postgresql(database_url, filler, rows)
    Message.objects.filter(thread=thread).update(created_at=F("created_at") - YEARS_AGO)
    Thread.objects.filter(pk=thread.pk).update(created_at=now - YEARS_AGO)
    return {"thread": thread.pk, "fill_seconds": round(time.perf_counter() - started, 1)}


def purge() -> dict:
    """Run the purge in this process, timing each batch (its reads and its one write
    transaction): the longest is how long a post may wait behind it on SQLite."""
    from retention import purge as engine

    batches: list[float] = []

    def timed_batch(step):
        def run(*args):
            started = time.perf_counter()
            try:
                return step(*args)
            finally:
                batches.append((time.perf_counter() - started) * 1000)

        return run

    engine._purge_messages = timed_batch(engine._purge_messages)
    engine._purge_rows = timed_batch(engine._purge_rows)
    started = time.perf_counter()
    report = engine.purge_expired()
    seconds = time.perf_counter() - started
    removed = {"messages": 0, "events": 0}
    for done in report.purged:
        for name in removed:
            removed[name] += done.get("removed", {}).get(name, 0)
    return {
        "purge_seconds": round(seconds, 2),
        "threads": len(report.purged),
        **removed,
        "batches": len(batches),
        "batch_p50_ms": round(statistics.median(batches), 1),
        "batch_max_ms": round(max(batches), 1),
    }


# --- Beside the servers ----------------------------------------------------------------


async def steady_load(bob, thread: int, keys, until: asyncio.Future | float) -> dict:
    """Post and ping at RATE until `until` (a time.perf_counter() deadline, or a future
    that completes): the latencies of each."""
    posts: list[float] = []
    pings: list[float] = []
    interval = 1.0 / RATE
    next_at = time.perf_counter()

    def done() -> bool:
        if isinstance(until, float):
            return time.perf_counter() >= until
        return until.done()

    while not done():
        cmid = uuid.uuid4().hex
        envelope = keys.envelope(bob.user["id"], thread, cmid)
        started = time.perf_counter()
        await bob.post(thread, envelope, cmid)
        posts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await bob.request({"type": "ping"})
        pings.append((time.perf_counter() - started) * 1000)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    return {"post": timed(posts), "ping": timed(pings)}


async def before_and_during(stack: Stack, before_seconds: float) -> tuple[dict, dict, dict]:
    """The steady load alone, then beside `python -m bench.purge purge` (its own process,
    as cron would start it): (before, purge's figures, during)."""
    from bench.keys import enable_encryption

    bob = await signed_in(stack.urls[-1], "surgeon_bob")
    department, thread = await prepare_thread(bob)
    keys = await enable_encryption([bob], department, demo_institution(stack.var_dir))
    await bob.connect()
    before = await steady_load(bob, thread, keys, time.perf_counter() + before_seconds)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.purge",
        "purge",
        env=stack.env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    finished = asyncio.ensure_future(process.communicate())
    during = await steady_load(bob, thread, keys, finished)
    stdout, _ = await finished
    await bob.aclose()
    if process.returncode != 0:
        raise RuntimeError(f"the purge failed (exit {process.returncode})")
    return before, json.loads(stdout.decode().strip().splitlines()[-1]), during


def run_purge(stack: Stack, rows: int = 100_000, before_seconds: float = 10.0) -> dict:
    """Fill an expired thread of `rows` messages, then purge it under a steady load
    (measured alone for `before_seconds` first)."""
    if float(stack.env.get("ROUNDS_WS_RATE_PER_SECOND", "30")) < 1000:
        raise ValueError("start the stack with bench.messaging.BENCH_LIMITS (frame rate limit)")
    filled = run_in_deployment(stack.env, "bench.purge", "fill", str(rows))
    before, purged, during = asyncio.run(before_and_during(stack, before_seconds))
    database = "SQLite" if stack.env["DATABASE_URL"].startswith("sqlite") else "PostgreSQL"
    return {
        "rows": rows,
        "database": database,
        **filled,
        **purged,
        "msg_per_s": round(purged["messages"] / purged["purge_seconds"]),
        **{f"before_{k}_{q}": v[q] for k, v in before.items() for q in ("p50_ms", "p99_ms")},
        **{f"during_{k}_{q}": v[q] for k, v in during.items() for q in ("p50_ms", "p99_ms")},
        "during_posts": during["post"]["n"],
    }


if __name__ == "__main__":
    import django

    django.setup()
    command = sys.argv[1]
    result = fill(int(sys.argv[2])) if command == "fill" else purge()
    print(json.dumps(result), flush=True)
