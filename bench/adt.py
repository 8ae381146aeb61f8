"""HL7 v2 ADT over MLLP: sustained messages per second with ACKs, and a merge at scale.

throughput — `manage.py adt_listen` runs as a process of its own on the
             deployment's database, as it would in production. Distinct patients
             each go through one stay: A01 (admitted to CHIR-PLAST), A08 (their
             given name corrected), A02 (to CHIR-VASC), A03 (discharged), the
             locations those of the demo's table (seed_demo `DEMO_LOCATIONS`). A
             sender does what a patient administration system does: one message,
             wait for its ACK, the next. Measured over one connection, then over
             `connections` at once (each its own patients), then over one
             connection that pipelines (up to PIPELINE_WINDOW messages sent ahead of
             their ACKs, as interface engines may: the listener commits the
             messages waiting together); messages/s from the first send to the last
             ACK, and p50/p99 of send → ACK. Anything but AA for the message's own
             control ID is an error, counted and reported.
merge      — in the deployment's database (`python -m bench.adt merge`): a record
             with a thread of `merge_messages` messages (filled in bulk as
             bench/history.py fills) and `merge_photos` photos on it (upload and
             attachment rows, no blobs: a merge reads none), and a second record
             of the same person; then one A40 through `interop.adt.handle`, the
             whole path (parse, one transaction, threads/photos/stays moved, an
             event per thread, the audit entry), timed, and checked afterwards.
"""

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.messaging import percentile
from bench.ports import free_port
from bench.stack import ROOT, Stack, run_in_deployment

GOAL_PER_SECOND = 500
AUTHORITY = "ROUNDS-DEMO"  # seed_demo's ROUNDS_ADT_IPP_AUTHORITY
ADMIT_TO, TRANSFER_TO = "CHIR-PLAST", "CHIR-VASC"
WARM_UP_PATIENTS = 5
ACK_TIMEOUT = 30.0
# Messages a pipelining sender keeps in flight before their ACKs (interface engines do).
PIPELINE_WINDOW = 32


@dataclass(frozen=True)
class Person:
    ipp: str
    family: str
    given: str
    birth: str  # YYYYMMDD
    sex: str


def hl7_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def adt_message(
    event: str,
    person: Person,
    *,
    control: str,
    location: str,
    visit: str,
    at: datetime,
    merged_ipp: str | None = None,
) -> bytes:
    """One message as an IHE PAM France sender writes it (MSH, EVN, PID, [MRG], PV1, ZBE)."""
    stamp = hl7_time(at)
    pid3 = f"{person.ipp}^^^{AUTHORITY}&1.2.250.1.71.4.2.7.1&ISO^PI"
    lines = [
        f"MSH|^~\\&|GAM|CHU|ROUNDS|CHU|{stamp}||ADT^{event}^ADT_{event}|{control}|P|2.5"
        "|||||FRA|UNICODE UTF-8",
        f"EVN|{event}|{stamp}",
        f"PID|1||{pid3}||{person.family}^{person.given}^^^^^L||{person.birth}|{person.sex}",
    ]
    if merged_ipp:
        lines.append(f"MRG|{merged_ipp}^^^{AUTHORITY}^PI")
    lines.append(f"PV1|1|I|{location}^401^1^CHU" + "|" * 16 + f"{visit}^^^{AUTHORITY}^VN")
    lines.append(f"ZBE|MVT{control}^CHU|{stamp}||INSERT|N")
    return "\r".join(lines).encode("utf-8")


def letters(number: int) -> str:
    """A family name of its own for each patient (digits would not be a name)."""
    text = ""
    for _ in range(6):
        number, digit = divmod(number, 26)
        text = chr(ord("A") + digit) + text
    return text


def person(tag: str, number: int) -> Person:
    """Someone of their own: the tag (one per sender and run) is in the IPP and, as
    letters, in the family name, so no two runs or modes make the same person twice
    under two IPPs (which the listener would rightly flag as potential duplicates)."""
    return Person(
        ipp=f"{tag}{number:07d}",
        family=f"BENCH-{letters(zlib.crc32(tag.encode()))}-{letters(number)}",
        given="Camille",
        birth=f"{1930 + number % 80}{1 + number % 12:02d}{1 + number % 28:02d}",
        sex="FM"[number % 2],
    )


def one_stay(tag: str, number: int, start: datetime) -> list[tuple[str, bytes]]:
    """(control ID, message) of a patient's stay: admit, update, transfer, discharge."""
    someone = person(tag, number)
    corrected = Person(someone.ipp, someone.family, "Camille-Marie", someone.birth, someone.sex)
    visit = f"V{tag}{number:07d}"
    steps = [
        ("A01", someone, ADMIT_TO, start),
        ("A08", corrected, ADMIT_TO, start + timedelta(minutes=20)),
        ("A02", corrected, TRANSFER_TO, start + timedelta(hours=6)),
        ("A03", corrected, TRANSFER_TO, start + timedelta(days=3)),
    ]
    messages = []
    for index, (event, who, location, at) in enumerate(steps):
        control = f"{tag}{number:07d}-{index}"
        messages.append(
            (
                control,
                adt_message(event, who, control=control, location=location, visit=visit, at=at),
            )
        )
    return messages


def stays(tag: str, first: int, patients: int) -> list[tuple[str, bytes]]:
    start = datetime.now(UTC) - timedelta(days=10)
    return [m for number in range(first, first + patients) for m in one_stay(tag, number, start)]


# --- The listener and its senders -------------------------------------------------------


@contextlib.contextmanager
def adt_listener(env: dict[str, str]) -> Iterator[int]:
    """`manage.py adt_listen` on a free port, on the deployment's database; its port once
    it says it listens. Stopped (SIGTERM) when the block ends."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "adt_listen", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until it listens, or exits
        if "ADT listener on" not in line:
            raise RuntimeError(f"adt_listen did not start (exit {process.poll()}): {line!r}")
        yield port
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Sent:
    latencies_ms: list[float]
    errors: list[str]
    seconds: float

    @property
    def count(self) -> int:
        return len(self.latencies_ms)


async def converse(port: int, messages: list[tuple[str, bytes]], sent: Sent) -> None:
    """One connection: each message, then its ACK, then the next."""
    import hl7.mllp

    reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
    try:
        for control, raw in messages:
            started = time.perf_counter()
            writer.writeblock(raw)
            await writer.drain()
            ack = await asyncio.wait_for(reader.readblock(), ACK_TIMEOUT)
            sent.latencies_ms.append((time.perf_counter() - started) * 1000)
            segments = ack.decode("ascii", "replace").split("\r")
            msa = next((s for s in segments if s.startswith("MSA|")), "MSA|?")
            code, acked = [*msa.split("|"), "", ""][1:3]
            if (code, acked) != ("AA", control):
                sent.errors.append(f"{control}: {msa}")
    finally:
        writer.close()


async def pipelined(port: int, messages: list[tuple[str, bytes]], window: int) -> Sent:
    """One connection, up to `window` messages sent ahead of their ACKs (as an interface
    engine that pipelines does); ACKs come back in order."""
    import hl7.mllp

    sent = Sent([], [], 0.0)
    reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", port)
    room = asyncio.Semaphore(window)
    started_at: list[float] = []
    began = time.perf_counter()

    async def write() -> None:
        for _, raw in messages:
            await room.acquire()
            started_at.append(time.perf_counter())
            writer.writeblock(raw)
            await writer.drain()

    async def read() -> None:
        for index, (control, _) in enumerate(messages):
            ack = await asyncio.wait_for(reader.readblock(), ACK_TIMEOUT)
            sent.latencies_ms.append((time.perf_counter() - started_at[index]) * 1000)
            room.release()
            msa = next(
                (s for s in ack.decode("ascii", "replace").split("\r") if s.startswith("MSA|")),
                "MSA|?",
            )
            if [*msa.split("|"), "", ""][1:3] != ["AA", control]:
                sent.errors.append(f"{control}: {msa}")

    try:
        await asyncio.gather(write(), read())
    finally:
        writer.close()
    sent.seconds = time.perf_counter() - began
    return sent


async def send(port: int, per_connection: list[list[tuple[str, bytes]]]) -> Sent:
    """Every connection's messages at once; the time from the first send to the last ACK."""
    sent = Sent([], [], 0.0)
    started = time.perf_counter()
    await asyncio.gather(*(converse(port, messages, sent) for messages in per_connection))
    sent.seconds = time.perf_counter() - started
    return sent


def figures(prefix: str, sent: Sent) -> dict:
    return {
        f"{prefix}_msg_per_s": round(sent.count / sent.seconds, 1),
        f"{prefix}_p50_ms": round(statistics.median(sent.latencies_ms), 2),
        f"{prefix}_p99_ms": round(percentile(sent.latencies_ms, 99), 2),
    }


def run_throughput(port: int, messages: int, connections: int) -> tuple[dict, list[str]]:
    """`messages` over one connection, then as many over `connections`: figures, errors."""
    patients = max(1, messages // 4)
    tag = secrets.token_hex(2).upper()
    asyncio.run(send(port, [stays(f"W{tag}", 0, WARM_UP_PATIENTS)]))
    one = asyncio.run(send(port, [stays(f"S{tag}", 0, patients)]))
    share = max(1, patients // connections)
    many = asyncio.run(send(port, [stays(f"C{tag}", i * share, share) for i in range(connections)]))
    ahead = asyncio.run(pipelined(port, stays(f"P{tag}", 0, patients), PIPELINE_WINDOW))
    result = {
        "messages": one.count,
        **figures("one_connection", one),
        "connections": connections,
        **figures(f"{connections}_connections", many),
        "pipeline_window": PIPELINE_WINDOW,
        **figures("pipelined", ahead),
        "errors": len(one.errors) + len(many.errors) + len(ahead.errors),
    }
    best = max(
        result["one_connection_msg_per_s"],
        result[f"{connections}_connections_msg_per_s"],
        result["pipelined_msg_per_s"],
    )
    result["goal_500_met"] = best >= GOAL_PER_SECOND
    return result, (one.errors + many.errors + ahead.errors)[:10]


def run_adt(
    stack: Stack,
    messages: int = 3000,
    connections: int = 4,
    merge_messages: int = 1000,
    merge_photos: int = 100,
) -> dict:
    """The listener's throughput with ACKs, then one merge at scale (module docstring).
    Messages not acknowledged AA, and a merge that left anything behind, are `problems`."""
    with adt_listener(stack.env) as port:
        throughput, errors = run_throughput(port, messages, connections)
    merged = run_in_deployment(
        stack.env, "bench.adt", "merge", str(merge_messages), str(merge_photos)
    )
    problems = [f"not AA: {error}" for error in errors] + merged.pop("problems")
    database = "SQLite" if stack.env["DATABASE_URL"].startswith("sqlite") else "PostgreSQL"
    return {"database": database, **throughput, **merged, "problems": problems}


# --- In the deployment's database (python -m bench.adt merge MESSAGES PHOTOS) -----------


def merge(messages: int, photos: int) -> dict:
    """A record with a thread of `messages` messages and `photos` photos, a second record of
    the same person, then the A40 merging the first into the second through
    `interop.adt.handle`: its time, and what did not end up on the survivor. A small merge
    goes first, untimed: a listener that has run a while has its imports (the channel
    layer's client) done and its database connection open."""
    from chat.models import Thread
    from interop.adt import handle
    from media.models import Attachment
    from patients.models import Patient

    warm_up, _, _, _ = _merge_case(1, 0)
    handle(warm_up, "bench")
    raw, thread, survivor, fill_seconds = _merge_case(messages, photos)
    started = time.perf_counter()
    answer = handle(raw, "bench")
    merge_seconds = time.perf_counter() - started
    surviving = Patient.objects.get(ipp=survivor)
    problems = [] if answer.code == "AA" else [f"A40 answered {answer.code}: {answer.reason}"]
    if Thread.objects.get(pk=thread).patient_id != surviving.pk:
        problems.append("the thread was not moved to the surviving record")
    moved = Attachment.objects.filter(thread_id=thread, patient=surviving).count()
    if moved != photos:
        problems.append(f"{moved} of {photos} photos on the surviving record")
    return {
        "merge_messages": messages,
        "merge_photos": moved,
        "merge_fill_seconds": round(fill_seconds, 1),
        "merge_seconds": round(merge_seconds, 3),
        "problems": problems,
    }


def _merge_case(messages: int, photos: int) -> tuple[bytes, int, str, float]:
    """The record to merge (a stay, a thread of `messages` messages, `photos` photos) and
    the A40 naming a new record of the same person as the survivor: (the A40, the thread,
    the survivor's IPP, the fill's seconds)."""
    from django.db import connection

    from bench.history import Filler, department_members, fill_postgresql, fill_sqlite
    from patients.models import Admission, Patient

    tag = secrets.token_hex(3).upper()
    someone = Person(f"S{tag}", f"FUSION-{letters(int(tag, 16))}", "Bench", "19610314", "F")
    old = Patient.objects.create(
        ipp=f"M{tag}", family_name=someone.family, given_name="Bench", birth_date="1961-03-14"
    )
    thread, department, sender = _bench_thread(old)
    Admission.objects.create(
        patient=old, ward="Bench", admitted_at=datetime.now(UTC) - timedelta(days=30)
    )
    database_url = os.environ["DATABASE_URL"]  # the deployment's (Stack.env)
    connection.close()
    filler = Filler(department, thread, department_members(database_url, department), messages)
    started = time.perf_counter()
    if database_url.startswith("sqlite:///"):
        fill_sqlite(Path(database_url.removeprefix("sqlite:///")), filler, messages)
    else:
        fill_postgresql(database_url, filler, messages)
    _attach_photos(old, thread, photos, sender)
    fill_seconds = time.perf_counter() - started
    raw = adt_message(
        "A40",
        someone,
        control=f"MERGE{tag}",
        location=ADMIT_TO,
        visit=f"VM{tag}",
        at=datetime.now(UTC),
        merged_ipp=old.ipp,
    )
    return raw, thread, someone.ipp, fill_seconds


def _bench_thread(patient) -> tuple[int, int, int]:
    """(thread, department, sender): a thread about `patient` in surgeon_bob's department."""
    from accounts.models import User
    from chat.models import Thread
    from rooms.models import Membership

    bob = User.objects.get(username="surgeon_bob")
    department = (
        Membership.objects.active().filter(user=bob).values_list("department_id", flat=True)[0]
    )
    thread = Thread.objects.create(
        department_id=department, patient=patient, title="Bench merge", created_by=bob
    )
    return thread.pk, department, bob.pk


def _attach_photos(patient, thread: int, photos: int, sender: int) -> None:
    """One photo (and its thumbnail) on each of the thread's first `photos` messages, as
    bench/fill_library.py writes them: rows only."""
    from django.db import transaction
    from django.utils import timezone

    from chat.models import Message
    from media.models import Attachment, Upload, UploadState

    now = timezone.now()
    carriers = list(Message.objects.filter(thread_id=thread).order_by("seq")[:photos])
    if len(carriers) < photos:
        raise ValueError(f"{photos} photos need as many messages; the thread has {len(carriers)}")
    uploads, attachments = [], []
    for message in carriers:
        photo, thumbnail = (
            Upload(
                id=uuid.uuid4(),
                owner_id=sender,
                department_id=message.header["room"],
                size=size,
                received=size,
                state=UploadState.ATTACHED,
                sha256=secrets.token_hex(32),
                storage_name="",
                expires_at=now,
                attached_at=message.created_at,
            )
            for size in (2_500_000, 12_000)
        )
        uploads += [photo, thumbnail]
        attachments.append(
            Attachment(
                message=message,
                position=0,
                upload=photo,
                thumbnail=thumbnail,
                department_id=photo.department_id,
                thread_id=thread,
                patient=patient,
                sender_id=sender,
                captured_at=message.created_at,
                consent="care",
                created_at=message.created_at,
            )
        )
    with transaction.atomic():
        Upload.objects.bulk_create(uploads)
        Attachment.objects.bulk_create(attachments)


if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(merge(int(sys.argv[2]), int(sys.argv[3]))), flush=True)
