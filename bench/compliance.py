"""A compliance case exported at scale: `rounds compliance export`, then `rounds verify-export`.

The ward is made through the SDK (client.RoundsClient), as clinicians'
devices make it and as tests/client/test_compliance_live.py does: the demo
admin key appoints head_carol in Plastic surgery, she attests four members
after comparing their fingerprints, and the five of them write `messages`
messages over `threads` threads on one demo patient (five sockets, WINDOW
posts in flight each). Every message is a real v2 envelope, encrypted under
the department's key version (wrapped for the compliance key) and signed by
its sender's identity; the server checks each as it would any post.

- Text: clinical notes of 40 to 600 characters.
- Photos: `photos` photos, 1 to 4 per message, each a 2048 x 1536 JPEG
  (about 0.9 MB once prepared) encrypted under a file key of its own and
  uploaded with its thumbnail, then posted with its signed photos body
  (client/photo_sdk.py: `send_photos` with `prepare_photo` run once per
  image: PHOTO_IMAGES images are prepared and used again, each upload still
  its own ciphertext).
- Receipts: every member reads each thread up to its end every 15 to 40
  messages (a receipt is a history of advances), as a ward reads.

compliance_dan opens a case on the patient (no four-eyes in the bench
deployment) and the real `rounds` command runs in a process of its own:

export — `rounds compliance export CASE --key … --signing-key … --out DIR`:
         wall time, messages per second, the bundle's size, and the peak
         resident memory of that process: `ru_maxrss` from os.wait4 on its
         pid, in a small launcher (LAUNCHER: that process alone, not the
         servers, the seeding nor the bench process's own peak). For
         scale, the same of `rounds compliance cases` (sign in and list: the
         command's own footprint).
verify — `rounds verify-export DIR --signing-public-key …`: wall time and
         peak memory the same way. A bundle it refuses, or an export that
         does not exit 0 (3: a message failed its checks), is a problem
         (`problems`): `python -m bench` then exits 1.
"""

import asyncio
import contextlib
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nacl.signing
from PIL import Image

from bench.keys import demo_key
from bench.stack import DEMO_PASSWORD, ROOT, Stack
from client import RoundsClient, cases
from client.media import encrypt_blob, upload_encrypted
from client.photo_sdk import attachment_ref, photo_entry
from client.photos import PreparedPhoto, prepare_photo
from client.transport import Connection

DEPARTMENT = "Plastic surgery"
HEAD = "head_carol"
MEMBERS = ("surgeon_bob", "nurse_alice", "intern_erin", "nurse_frank")
WINDOW = 8  # posts in flight per member's socket
PHOTO_SIZE = (2048, 1536)
PHOTO_IMAGES = 8
KEYWORDS = ("hand", "wound-follow-up", "sacrum", "pre-op", "post-op")
# Argon2id of the members' key backups at its minimum: the seeding is not what is measured.
BACKUP_LIMITS = {"opslimit": 1, "memlimit": 8192}
TIMEOUT = 3600.0
# The hourly upload cap per user protects a real deployment; the seeding uploads a photo
# and a thumbnail per photo from five members within minutes (EXTRA_ENV in bench/__main__).
UPLOAD_LIMITS = {"ROUNDS_UPLOADS_PER_HOUR": "1000000"}

NOTES = (
    "Dressing changed, wound edges clean, no discharge.",
    "Pain {n}/10 at rest, paracetamol given at {h}:00.",
    "Temperature {t} C, heart rate {r}, blood pressure {s}/{d}.",
    "Flap warm and pink, capillary refill under 2 s, Doppler signal present.",
    "Drain output {m} ml over the last 8 h, serous.",
    "Seen by the team on the round: continue the current plan, review in 48 h.",
    "Patient asks about discharge; physiotherapy to assess mobility tomorrow.",
    "Blood results back: Hb {hb} g/dl, CRP {crp} mg/l, white cells {wbc}.",
)


# --- Seeding ---------------------------------------------------------------------------


def note(rng: random.Random) -> str:
    """A clinical note of 40 to 600 characters, made of the sentences above."""
    parts = []
    target = rng.choice((40, 80, 150, 250, 400, 600))
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(
            rng.choice(NOTES).format(
                n=rng.randint(0, 6),
                h=rng.randint(6, 22),
                t=round(rng.uniform(36.2, 38.9), 1),
                r=rng.randint(55, 120),
                s=rng.randint(95, 160),
                d=rng.randint(55, 95),
                m=rng.randint(0, 250),
                hb=round(rng.uniform(8.5, 15.5), 1),
                crp=rng.randint(1, 180),
                wbc=round(rng.uniform(3.5, 18.0), 1),
            )
        )
    return " ".join(parts)[:600]


def photo_images(count: int) -> list[PreparedPhoto]:
    """`count` distinct 3-megapixel photos (a gradient under noise, which JPEG cannot
    flatten), each prepared as the SDK prepares a clinician's photo."""
    width, height = PHOTO_SIZE
    prepared = []
    for index in range(count):
        gradient = Image.linear_gradient("L").resize((width, height)).rotate(90 * index)
        gradient = gradient.resize((width, height))
        noise = Image.effect_noise((width, height), 40 + index)
        image = Image.merge(
            "RGB",
            (
                Image.blend(gradient, noise, 0.3),
                gradient,
                Image.blend(gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise, 0.3),
            ),
        )
        out = io.BytesIO()
        image.save(out, "JPEG", quality=92)
        prepared.append(prepare_photo(out.getvalue()))
    return prepared


def photo_counts(photos: int, messages: int, rng: random.Random) -> list[int]:
    """Photos per photo message, 1 to 4 each, `photos` in all, at most `messages` of them."""
    counts: list[int] = []
    while sum(counts) < photos:
        counts.append(min(rng.randint(1, 4), photos - sum(counts)))
    if len(counts) > messages:
        raise ValueError(f"{photos} photos need more than {messages} messages")
    return counts


@dataclass
class Post:
    thread: int
    text: str
    photos: list[PreparedPhoto]


async def post_photos(client: RoundsClient, thread: int, department: int, post: Post) -> dict:
    """What `send_photos` does after `prepare_photo`: each photo and its thumbnail
    encrypted under a new file key and uploaded, then the signed photos body posted."""
    entries = []
    for photo in post.photos:
        with (
            await asyncio.to_thread(encrypt_blob, photo.data) as full,
            await asyncio.to_thread(encrypt_blob, photo.thumbnail) as small,
        ):
            blob = await upload_encrypted(client, department, full)
            thumb = await upload_encrypted(client, department, small)
        entries.append(
            photo_entry(
                photo, blob, thumb, keywords=["hand", "wound-follow-up"], consent="care",
                annotates=None,
            )
        )  # fmt: skip
    body = {"type": "photos", "text": post.text, "photos": entries}
    plaintext = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return await client.post_body(
        thread,
        plaintext,
        department=department,
        attachments=[attachment_ref(entry) for entry in entries],
    )


async def post_one(
    client: RoundsClient, department: int, post: Post, last_seq: dict[int, int]
) -> None:
    """One post, text or photos; `last_seq` keeps the highest seq acked per thread."""
    if post.photos:
        ack = await post_photos(client, post.thread, department, post)
    else:
        ack = await client.send_text(post.thread, post.text, department=department)
    last_seq[post.thread] = max(last_seq.get(post.thread, 0), int(ack["seq"]))


async def post_all(
    client: RoundsClient, department: int, posts: list[Post], last_seq: dict[int, int]
) -> None:
    """This member's posts, WINDOW in flight."""
    queue = list(reversed(posts))

    async def worker() -> None:
        while queue:
            await post_one(client, department, queue.pop(), last_seq)

    await asyncio.gather(*(worker() for _ in range(WINDOW)))


async def read_along(client: RoundsClient, thread: int, last_seq: int, rng: random.Random) -> int:
    """Receipts every 15 to 40 messages up to the end; how many."""
    count, seq = 0, 0
    while seq < last_seq:
        seq = min(last_seq, seq + rng.randint(15, 40))
        await client.read(thread, seq)
        count += 1
    return count


async def seed_case(
    stack: Stack, messages: int, photos: int, threads: int, state_dir: Path
) -> dict:
    """The ward, its threads and messages, and compliance_dan's case on the patient;
    the members' devices remember what they sent under `state_dir`."""
    rng = random.Random(20261205)
    url, pins = stack.urls[0], stack.var_dir / "institution.json"
    started = time.perf_counter()
    images = await asyncio.to_thread(photo_images, min(PHOTO_IMAGES, max(1, photos)))
    async with contextlib.AsyncExitStack() as exit_stack:
        admin = RoundsClient(url, pins_file=pins, state_dir=state_dir, timeout=60)
        await exit_stack.enter_async_context(admin)
        await admin.login("admin", DEMO_PASSWORD)
        people: list[RoundsClient] = []
        for username in (HEAD, *MEMBERS):
            person = await exit_stack.enter_async_context(
                RoundsClient(url, pins_file=pins, state_dir=state_dir, timeout=60)
            )
            await person.login(username, DEMO_PASSWORD)
            await person.setup_keys(**BACKUP_LIMITS)
            await person.connect()
            people.append(person)
        head = people[0]
        department = next(d["id"] for d in await head.departments() if d["name"] == DEPARTMENT)
        await admin.appoint_head(
            department, head.me(), demo_key(stack.var_dir, "admin"),
            fingerprint=head.keys.identity.fingerprint,
        )  # fmt: skip
        for member in people[1:]:
            await head.attest(department, member.me(), fingerprint=member.keys.identity.fingerprint)
        patient = (await head.find_patients(name="le"))[0]
        made = [
            await people[1].create_thread(department, patient["id"], f"Stay review {n + 1}")
            for n in range(threads)
        ]
        counts = photo_counts(photos, messages, rng)
        with_photos = set(rng.sample(range(messages), len(counts)))
        plan: dict[int, list[Post]] = {i: [] for i in range(len(people))}
        images_left = iter(counts)
        for index in range(messages):
            pictures: list[PreparedPhoto] = []
            if index in with_photos:
                pictures = [rng.choice(images) for _ in range(next(images_left))]
            thread = made[rng.randrange(threads)]["id"]
            plan[rng.randrange(len(people))].append(Post(thread, note(rng), pictures))
        last_seq: dict[int, int] = {}
        # Each member's first post alone, one member after another: the first makes the
        # department's key version, the others load it. Made concurrently, a member could
        # be refused `key_version_rollback`: GET …/keys reads the department's current
        # version and the list of versions in two statements, so a version published
        # between them is listed (and kept as verified) while the current one reads none.
        for index, person in enumerate(people):
            if plan[index]:
                await post_one(person, department, plan[index].pop(0), last_seq)
        await asyncio.gather(
            *(post_all(person, department, plan[i], last_seq) for i, person in enumerate(people))
        )
        receipts = 0
        for thread, seq in last_seq.items():
            for person in people:
                receipts += await read_along(person, thread, seq, rng)
    seed_seconds = time.perf_counter() - started
    async with Connection(url, timeout=60) as dan:
        await dan.login("compliance_dan", DEMO_PASSWORD)
        case = await cases.open_case(
            dan, "BENCH-EXPORT", "Bench: export of a long stay", ipp=patient["ipp"]
        )
        covered = (await cases.case_threads(dan, case["id"]))["threads"]
    return {
        "case": case["id"],
        "threads": len(covered),
        "receipts": receipts,
        "seed_seconds": round(seed_seconds, 1),
    }


# --- The `rounds` command, measured -----------------------------------------------------


@dataclass
class Run:
    code: int
    seconds: float
    peak_rss_kib: int
    out: str
    err: str


def rounds_env(stack: Stack, state_dir: Path, username: str) -> dict[str, str]:
    """What a user's terminal would hold (docs/client.md): the server, the pins, the user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDS_")}
    env.update(
        ROUNDS_URL=stack.urls[0],
        ROUNDS_USER=username,
        ROUNDS_PASSWORD=DEMO_PASSWORD,
        ROUNDS_PINS_FILE=str(stack.var_dir / "institution.json"),
        ROUNDS_STATE_DIR=str(state_dir),
    )
    return env


# Starts the command and reports its own peak RSS. Why a launcher: Linux carries a
# process's peak RSS across exec from the memory it replaced, and a child the bench
# process spawns (vfork or fork) starts from the bench's own (its images, its clients),
# so os.wait4 in the bench process would report at least that. This fresh, small
# interpreter forks the command and reaps it with os.wait4 (that process's ru_maxrss:
# max of its own peak and the ~10 MB of the launcher it was forked from), writes it to
# the file named first, and exits with the command's code.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_rounds(env: dict[str, str], *args: str) -> Run:
    """`rounds ARGS` in a process of its own; its wall time, exit code, output, and its
    own peak RSS (`ru_maxrss` from os.wait4, KiB on Linux: see LAUNCHER)."""
    script = Path(sys.executable).parent / "rounds"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "client.cli"]
    with tempfile.NamedTemporaryFile("r", prefix="rounds-rss-") as peak:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, peak.name, *command, *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        peak_kib = int(peak.read() or 0)
    return Run(done.returncode, seconds, peak_kib, done.stdout, done.stderr)


def tree_bytes(folder: Path) -> tuple[int, int]:
    """(files, bytes) under a folder."""
    sizes = [p.stat().st_size for p in folder.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def run_compliance(
    stack: Stack, messages: int = 10_000, photos: int = 500, threads: int = 4
) -> dict:
    """Seed a case of `messages` messages and `photos` photos over `threads` threads, export
    it with `rounds compliance export`, verify it with `rounds verify-export`."""
    if float(stack.env.get("ROUNDS_WS_RATE_PER_SECOND", "30")) < 1000:
        raise ValueError("start the stack with bench.messaging.BENCH_LIMITS (frame rate limit)")
    if int(stack.env.get("ROUNDS_UPLOADS_PER_HOUR", "120")) < 2 * photos:
        raise ValueError("start the stack with bench.compliance.UPLOAD_LIMITS (uploads per hour)")
    with tempfile.TemporaryDirectory(prefix="rounds-export-") as tmp:
        work = Path(tmp)
        seeding = seed_case(stack, messages, photos, threads, work / "devices")
        seeded = asyncio.run(asyncio.wait_for(seeding, TIMEOUT))
        signer = nacl.signing.SigningKey.generate()
        signing_key = work / "export.key"
        signing_key.write_text(signer.encode().hex() + "\n")
        public = signer.verify_key.encode().hex()
        env = rounds_env(stack, work / "state", "compliance_dan")
        bundle = work / "bundle"
        baseline = run_rounds(env, "compliance", "cases")
        export = run_rounds(
            env, "compliance", "export", str(seeded["case"]),
            "--key", str(stack.var_dir / "demo-keys" / "compliance.key"),
            "--signing-key", str(signing_key), "--out", str(bundle),
        )  # fmt: skip
        problems = []
        if export.code != 0:
            problems.append(f"compliance export exited {export.code}: {last_line(export.err)}")
        files, size = tree_bytes(bundle) if bundle.exists() else (0, 0)
        verify = run_rounds(env, "verify-export", str(bundle), "--signing-public-key", public)
        verified = verify.code == 0 and verify.out.startswith("export ok")
        if not verified:
            problems.append(f"verify-export exited {verify.code}: {last_line(verify.err)}")
        photo_files = len(list(bundle.glob("threads/*/photos/*"))) if bundle.exists() else 0
        shutil.rmtree(bundle, ignore_errors=True)
    exported = re.search(r"(\d+) thread\(s\)", export.out)
    database = "SQLite" if stack.env["DATABASE_URL"].startswith("sqlite") else "PostgreSQL"
    return {
        "messages": messages,
        "photos": photos,
        "database": database,
        **seeded,
        "exported_threads": int(exported.group(1)) if exported else 0,
        "export_seconds": round(export.seconds, 1),
        "export_msg_per_s": round(messages / export.seconds, 1),
        "bundle_files": files,
        "bundle_mb": round(size / 1e6, 1),
        "photo_files": photo_files,
        "export_peak_rss_mb": round(export.peak_rss_kib / 1024, 1),
        "cli_baseline_rss_mb": round(baseline.peak_rss_kib / 1024, 1),
        "rss_measured_by": "ru_maxrss of the rounds process (os.wait4)",
        "verify_seconds": round(verify.seconds, 1),
        "verify_peak_rss_mb": round(verify.peak_rss_kib / 1024, 1),
        "verified": verified,
        "problems": problems,
    }
