"""Encrypted photos through the server, and the photo library at scale.

transfer — a 4 MiB and a 20 MiB blob, encrypted as a client would
           (core/crypto/stream.py), uploaded in chunks (create, PUT by
           offset, complete with SHA-256), attached to a real signed
           message (a v2 envelope, bench/keys.py), then downloaded whole;
           MB/s of each, next to copying the same ciphertext file on disk in
           the same run (the baseline: what the machine's disk and page
           cache do with no server in the way).
memory   — the receiving daphne process's resident memory (VmRSS, sampled
           every 10 ms from /proc) while a 4 MiB and then a 50 MiB blob go
           through it: the growth must not follow the file's size.
library  — `attachments` photos written in bulk (bench/fill_library.py), then
           `samples` library queries per filter (none, patient, date range,
           one keyword, two keywords, sender, consent; page of 50) as a
           member, over HTTP: p50/p99 per filter, plus a department's
           statistics and a patient's sequences.
"""

import asyncio
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.keys import Keys, enable_encryption
from bench.messaging import demo_institution, percentile, prepare_thread, signed_in
from bench.stack import Stack, run_in_deployment
from client.transport import Connection
from core.crypto import FileKey
from core.crypto.stream import encrypt_stream

MiB = 1 << 20
CHUNK = 4 * MiB


def ciphertext_file(directory: Path, size: int) -> tuple[Path, int, str]:
    """`size` random bytes encrypted with a new file key: (path, its size, SHA-256 hex)."""
    plain = directory / f"plain-{size}"
    plain.write_bytes(os.urandom(size))
    path = directory / f"cipher-{size}"
    with plain.open("rb") as source, path.open("wb") as sink:
        info = encrypt_stream(FileKey.generate(), source, sink)
    plain.unlink()
    return path, info.size, info.sha256.hex()


def disk_copy_mb_s(path: Path) -> float:
    """The baseline: the same bytes copied file to file, flushed to disk."""
    target = path.with_suffix(".copy")
    started = time.perf_counter()
    shutil.copyfile(path, target)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - started
    target.unlink()
    return os.path.getsize(path) / MiB / elapsed


async def upload(client: Connection, department: int, path: Path, size: int, sha256: str) -> str:
    """Create, send in CHUNK-sized pieces, complete; the file is local and read blocking."""
    created = await client.call(
        "POST", "/api/uploads", json={"department": department, "size": size}
    )
    headers = {
        "Authorization": f"Bearer {client.token}",
        "Content-Type": "application/octet-stream",
    }
    chunk = min(CHUNK, int(created.get("chunk_max", CHUNK)))
    with path.open("rb") as source:
        offset = 0
        while offset < size:
            block = source.read(chunk)
            response = await client.http.put(
                f"/api/uploads/{created['id']}/chunks",
                params={"offset": offset},
                content=block,
                headers=headers,
            )
            response.raise_for_status()
            offset += len(block)
    await client.call("POST", f"/api/uploads/{created['id']}/complete", json={"sha256": sha256})
    return created["id"]


async def download(client: Connection, upload_id: str) -> int:
    received = 0
    headers = {"Authorization": f"Bearer {client.token}"}
    async with client.http.stream(
        "GET", f"/api/uploads/{upload_id}/content", headers=headers
    ) as response:
        response.raise_for_status()
        async for block in response.aiter_bytes(1 << 18):
            received += len(block)
    return received


async def attach(client: Connection, keys: Keys, thread: int, uploads: list[str]) -> None:
    """A signed message referencing the uploads: what makes them readable."""
    client_msg_id = uuid.uuid4().hex
    envelope = keys.envelope(client.user["id"], thread, client_msg_id)
    await client.request(
        {
            "type": "message.post",
            "thread": thread,
            "client_msg_id": client_msg_id,
            "envelope": envelope,
            "attachments": [
                {"upload": upload_id, "thumbnail": None, "keywords": ["hand"], "consent": "care"}
                for upload_id in uploads
            ],
        }
    )


class RssSampler:
    """Peak VmRSS of one process while the block runs (a thread reading /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.rss_kib())
            time.sleep(0.01)

    def __enter__(self) -> "RssSampler":
        self.before_kib = self.rss_kib()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, self.rss_kib())


async def measure_transfers(
    stack: Stack, sizes: list[int], repeats: int, memory_sizes: list[int], workdir: Path
) -> dict:
    bob = await signed_in(stack.urls[0], "surgeon_bob")
    alice = await signed_in(stack.urls[0], "nurse_alice")
    department, thread = await prepare_thread(bob)
    keys = await enable_encryption([bob], department, demo_institution(stack.var_dir))
    await bob.connect()
    figures: dict = {}
    for size in sizes:
        path, stored, sha256 = ciphertext_file(workdir, size)
        disk, up, down = [], [], []
        for _ in range(repeats):
            disk.append(disk_copy_mb_s(path))
            started = time.perf_counter()
            upload_id = await upload(bob, department, path, stored, sha256)
            up.append(stored / MiB / (time.perf_counter() - started))
            await attach(bob, keys, thread, [upload_id])
            started = time.perf_counter()
            received = await download(alice, upload_id)
            down.append(received / MiB / (time.perf_counter() - started))
            assert received == stored
        label = f"{size // MiB}mib"
        figures[f"disk_copy_{label}_mb_s"] = round(statistics.median(disk), 1)
        figures[f"upload_{label}_mb_s"] = round(statistics.median(up), 1)
        figures[f"download_{label}_mb_s"] = round(statistics.median(down), 1)
        figures[f"upload_{label}_ratio"] = round(statistics.median(up) / statistics.median(disk), 3)
        figures[f"download_{label}_ratio"] = round(
            statistics.median(down) / statistics.median(disk), 3
        )
        path.unlink()
    server = stack.processes[0].pid
    for size in memory_sizes:
        path, stored, sha256 = ciphertext_file(workdir, size)
        with RssSampler(server) as sampler:
            await upload(bob, department, path, stored, sha256)
        label = f"{size // MiB}mib"
        figures[f"rss_before_{label}_mb"] = round(sampler.before_kib / 1024, 1)
        figures[f"rss_growth_{label}_mb"] = round((sampler.peak_kib - sampler.before_kib) / 1024, 1)
        path.unlink()
    for client in (bob, alice):
        await client.aclose()
    return figures


def fill_library(env: dict[str, str], count: int) -> dict:
    return run_in_deployment(env, "bench.fill_library", str(count))


async def measure_library(url: str, samples: int) -> dict:
    bob = await signed_in(url, "surgeon_bob")
    department = (await bob.departments())[0]["id"]
    sample_page = await bob.call("GET", "/api/library/photos", params={"department": department})
    item = sample_page["items"][0]
    patient = item["patient"]["id"]
    keyword_a, keyword_b = "hand", "wound-follow-up"
    captured = item["captured_at"][:10]
    filters = {
        "department": {"department": department},
        "patient": {"patient": patient},
        "date_range": {"department": department, "date_from": "2026-01-01", "date_to": captured},
        "keyword": {"keyword": keyword_a},
        "two_keywords": {"keyword": [keyword_a, keyword_b]},
        "sender": {"sender": bob.user["id"]},
        "consent": {"consent": "teaching"},
    }
    figures: dict = {}
    for name, params in filters.items():
        times = []
        items = 0
        for _ in range(samples):
            started = time.perf_counter()
            page = await bob.call("GET", "/api/library/photos", params=params)
            times.append((time.perf_counter() - started) * 1000)
            items = len(page["items"])
        figures[f"{name}_p50_ms"] = round(statistics.median(times), 2)
        figures[f"{name}_p99_ms"] = round(percentile(times, 99), 2)
        figures[f"{name}_items"] = items
    for name, path in {
        "stats": f"/api/library/departments/{department}/stats",
        "sequences": f"/api/library/patients/{patient}/sequences",
    }.items():
        times = []
        for _ in range(max(10, samples // 4)):
            started = time.perf_counter()
            await bob.call("GET", path)
            times.append((time.perf_counter() - started) * 1000)
        figures[f"{name}_p50_ms"] = round(statistics.median(times), 2)
        figures[f"{name}_p99_ms"] = round(percentile(times, 99), 2)
    await bob.aclose()
    return figures


def run_media(
    stack: Stack,
    sizes: tuple[int, ...] = (4 * MiB, 20 * MiB),
    repeats: int = 3,
    memory_sizes: tuple[int, ...] = (4 * MiB, 50 * MiB),
    attachments: int = 100_000,
    samples: int = 200,
) -> dict:
    """Transfers and memory on a fresh deployment, then the library filled to `attachments`."""
    with tempfile.TemporaryDirectory(prefix="rounds-media-") as tmp:
        figures = asyncio.run(
            measure_transfers(stack, list(sizes), repeats, list(memory_sizes), Path(tmp))
        )
    fill = fill_library(stack.env, attachments)
    figures["library_attachments"] = fill["attachments"]
    figures["library_fill_seconds"] = fill["fill_seconds"]
    library = asyncio.run(measure_library(stack.urls[-1], samples))
    figures.update({f"library_{k}": v for k, v in library.items()})
    return figures
