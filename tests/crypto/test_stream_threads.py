"""encrypt_stream's hashing thread: the same digest, clean failures, no thread left, flat memory."""

import hashlib
import io
import threading
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import core.crypto.stream as stream
from core.crypto import CHUNK_SIZE, FileKey, decrypt_to_bytes, encrypt_stream
from core.crypto.stream import ABYTES

WORKER = "rounds-stream-hash"
BLOCK = CHUNK_SIZE + ABYTES
# Enough chunks for the worker to start and take several batches.
LARGE = 3 * 1024 * 1024 + 5
REAL_SHA256 = hashlib.sha256


@pytest.fixture(scope="module")
def key() -> FileKey:
    return FileKey.generate()


def _workers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER]


def _data(size: int) -> bytes:
    """Not all zeros, and no period that lines up with a chunk."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


class WatchingSink(io.BytesIO):
    """Keeps what is written and notes whether the hashing thread ran meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.saw_worker = False

    def write(self, data) -> int:
        self.saw_worker = self.saw_worker or bool(_workers())
        return super().write(data)


class FailingSink(io.RawIOBase):
    def __init__(self, fail_at: int) -> None:
        self.writes = 0
        self.fail_at = fail_at
        self.error = OSError("disk full")

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.writes += 1
        if self.writes == self.fail_at:
            raise self.error
        return len(data)


class FailingSource(io.RawIOBase):
    def __init__(self, data: bytes, fail_at: int) -> None:
        self._data = io.BytesIO(data)
        self.reads = 0
        self.fail_at = fail_at
        self.error = ConnectionResetError("camera upload dropped")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.reads == self.fail_at:
            raise self.error
        return self._data.read(size)


def test_a_large_file_is_hashed_on_the_worker(key):
    data = _data(LARGE)
    sink = WatchingSink()
    info = encrypt_stream(key, io.BytesIO(data), sink)
    assert sink.saw_worker
    assert not _workers()
    stream_bytes = sink.getvalue()
    assert info.sha256 == hashlib.sha256(stream_bytes).digest()
    assert info.size == len(stream_bytes)
    assert info.plaintext_size == len(data)
    assert decrypt_to_bytes(key, stream_bytes, expected_sha256=info.sha256) == data


def test_a_thumbnail_starts_no_thread(key):
    sink = WatchingSink()
    encrypt_stream(key, io.BytesIO(_data(stream._HASH_BATCH_BYTES - BLOCK)), sink)
    assert not sink.saw_worker


@pytest.mark.parametrize("chunks", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20], ids=lambda n: f"{n}_chunks")
@pytest.mark.parametrize("extra", [0, 1, CHUNK_SIZE - 1])
def test_threaded_and_inline_hashes_agree(key, monkeypatch, chunks, extra):
    """Around every batch boundary, both paths hash exactly the bytes written."""
    data = _data(chunks * CHUNK_SIZE + extra)
    results = []
    for min_block in (stream._HASH_THREAD_MIN_BLOCK, BLOCK + 1):  # threaded, then inline
        monkeypatch.setattr(stream, "_HASH_THREAD_MIN_BLOCK", min_block)
        sink = io.BytesIO()
        info = encrypt_stream(key, io.BytesIO(data), sink)
        assert info.sha256 == hashlib.sha256(sink.getvalue()).digest()
        assert decrypt_to_bytes(key, sink.getvalue(), expected_sha256=info.sha256) == data
        results.append((info.size, info.chunks, info.plaintext_size))
    assert results[0] == results[1]
    assert not _workers()


@settings(max_examples=60, deadline=None)
@given(
    blocks=st.lists(st.binary(max_size=40), min_size=1, max_size=60),
    batch=st.integers(1, 100),
    in_flight=st.integers(1, 3),
)
def test_digest_equals_hashlib_for_any_batching(blocks, batch, in_flight):
    """Many small hand-overs: the worker and the caller hash in stream order."""
    patch = pytest.MonkeyPatch()
    patch.setattr(stream, "_HASH_BATCH_BYTES", batch)
    patch.setattr(stream, "_HASH_BATCHES_IN_FLIGHT", in_flight)
    patch.setattr(stream, "_HASH_THREAD_MIN_BLOCK", 0)
    try:
        with stream._CiphertextHash(b"start", 0) as ciphertext_hash:
            for block in blocks[:-1]:
                ciphertext_hash.update(block)
            digest = ciphertext_hash.finish(blocks[-1])
    finally:
        patch.undo()
    assert digest == hashlib.sha256(b"start" + b"".join(blocks)).digest()
    assert not _workers()


@settings(max_examples=30, deadline=None)
@given(data=st.binary(max_size=600), chunk_size=st.integers(1, 48))
def test_small_chunks_through_the_worker_round_trip(key, data, chunk_size):
    patch = pytest.MonkeyPatch()
    patch.setattr(stream, "_HASH_BATCH_BYTES", 50)
    patch.setattr(stream, "_HASH_THREAD_MIN_BLOCK", 0)
    try:
        sink = io.BytesIO()
        info = encrypt_stream(key, io.BytesIO(data), sink, chunk_size)
    finally:
        patch.undo()
    assert info.sha256 == hashlib.sha256(sink.getvalue()).digest()
    assert decrypt_to_bytes(key, sink.getvalue(), expected_sha256=info.sha256) == data


# --- Failures -----------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [2, 5, 30, 50])  # write 1 is the prefix and header
def test_sink_failure_mid_stream(key, fail_at):
    before = threading.active_count()
    sink = FailingSink(fail_at)
    with pytest.raises(OSError) as raised:
        encrypt_stream(key, io.BytesIO(_data(LARGE)), sink)
    assert raised.value is sink.error
    assert not _workers()
    assert threading.active_count() == before


@pytest.mark.parametrize("fail_at", [1, 2, 5, 30, 50])
def test_source_failure_mid_stream(key, fail_at):
    before = threading.active_count()
    source = FailingSource(_data(LARGE), fail_at)
    with pytest.raises(ConnectionResetError) as raised:
        encrypt_stream(key, source, io.BytesIO())
    assert raised.value is source.error
    assert not _workers()
    assert threading.active_count() == before


class WorkerFails:
    """A SHA-256 whose update fails on the worker thread (say, out of memory)."""

    error = MemoryError("no memory for the hash")

    def __init__(self, data: bytes = b"") -> None:
        self._hash = REAL_SHA256(data)

    def update(self, data) -> None:
        if threading.current_thread().name == WORKER:
            raise self.error
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


def test_worker_failure_is_raised_by_encrypt_stream(key, monkeypatch):
    monkeypatch.setattr(stream.hashlib, "sha256", WorkerFails)
    before = threading.active_count()
    with pytest.raises(MemoryError) as raised:
        encrypt_stream(key, io.BytesIO(_data(LARGE)), io.BytesIO())
    assert raised.value is WorkerFails.error
    assert not _workers()
    assert threading.active_count() == before


def test_a_sink_error_is_not_hidden_by_a_worker_error(key, monkeypatch):
    monkeypatch.setattr(stream.hashlib, "sha256", WorkerFails)
    sink = FailingSink(40)
    with pytest.raises(OSError) as raised:
        encrypt_stream(key, io.BytesIO(_data(LARGE)), sink)
    assert raised.value is sink.error
    assert not _workers()


# --- Memory -------------------------------------------------------------------


class SlowHash:
    """A SHA-256 that takes 1 ms per block on the worker: the caller must wait for it."""

    def __init__(self, data: bytes = b"") -> None:
        self._hash = REAL_SHA256(data)

    def update(self, data) -> None:
        if threading.current_thread().name == WORKER:
            time.sleep(0.001)
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()


class HashingSink(io.RawIOBase):
    """Keeps nothing but a hash, so the sink itself does not grow."""

    def __init__(self) -> None:
        self.hash = REAL_SHA256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return len(data)


@pytest.mark.parametrize("slow_worker", [False, True], ids=["normal", "slow_worker"])
def test_encryption_memory_is_flat(key, monkeypatch, slow_worker):
    """8 MiB in, a traced peak under 1 MiB out, even when the worker lags behind."""
    if slow_worker:
        monkeypatch.setattr(stream.hashlib, "sha256", SlowHash)
    size = 8 * 1024 * 1024
    source = io.BytesIO(bytes(size))
    out = HashingSink()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline, _ = tracemalloc.get_traced_memory()
        info = encrypt_stream(key, source, out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.sha256 == out.hash.digest()
    assert out.size == info.size > size
    assert peak - baseline < 1024 * 1024, f"peak {peak - baseline} bytes"
