"""Streaming file encryption: crypto_secretstream_xchacha20poly1305 in fixed-size chunks.

For photos and thumbnails. A random `FileKey` per file; the key, the
ciphertext's SHA-256 and its size travel inside the signed, encrypted
message body, so the server can neither read nor swap the blob.

Stream v1:

    magic       4   b"RNDS"
    version     1   0x01
    chunk_size  4   plaintext bytes per chunk, big-endian (1 .. MAX_CHUNK_SIZE)
    header     24   the secretstream header (random, from init_push)
    chunks          each `chunk_size + 17` bytes, the last one may be shorter

Every chunk but the last holds exactly `chunk_size` plaintext bytes and is
tagged TAG_MESSAGE; the last holds 0 .. chunk_size bytes and is tagged
TAG_FINAL (an empty file is one empty FINAL chunk). Every chunk is pushed
with the 9-byte prefix (magic, version, chunk_size) as additional data, so
the prefix cannot be altered either.

Encryption hashes the ciphertext on a second thread once a file passes
128 KiB, so that hashing overlaps encrypting (`_CiphertextHash`); the thread
ends before `encrypt_stream` returns or raises, and memory stays at a few
chunks whatever the file size.

Decryption reads one chunk at a time (memory does not grow with the file)
and refuses truncation, data after the final chunk, reordered, repeated or
altered chunks. It writes each chunk's plaintext to the sink as soon as it
authenticates, so **on an error the sink holds a partial file: write to a
temporary file and delete it if `decrypt_stream` raises**, and only then
move it into place. `decrypt_to_bytes` does this for small blobs in memory.
"""

import hashlib
import io
import queue
import struct
import threading
from dataclasses import dataclass
from typing import IO, ClassVar

import nacl.bindings
import nacl.exceptions
import nacl.utils

from .errors import (
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    TruncatedStream,
    UnsupportedVersion,
)

MAGIC = b"RNDS"
STREAM_VERSION = 1
_PREFIX = struct.Struct(">4sBI")
PREFIX_SIZE = _PREFIX.size
HEADER_SIZE = nacl.bindings.crypto_secretstream_xchacha20poly1305_HEADERBYTES
ABYTES = nacl.bindings.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = nacl.bindings.crypto_secretstream_xchacha20poly1305_TAG_FINAL

CHUNK_SIZE = 64 * 1024
# The chunk size is read from the stream, which comes from the server: cap
# it so a hostile prefix cannot make the reader allocate gigabytes.
MAX_CHUNK_SIZE = 1024 * 1024

# Encrypting a file spends about 40 % of its time on the SHA-256 of the
# ciphertext. secretstream and hashlib both release the GIL, so once a file
# passes one batch a second thread hashes while the caller's thread
# encrypts. Blocks go to an idle worker in batches because each hand-over
# wakes it (a hand-over per 64 KiB chunk gained nothing); batches stay
# small and few because every block held for the worker is memory the
# allocator may have to fault in again, and the last batch is hashed after
# the last chunk is encrypted. Batches of 128 KiB, two at most in flight,
# measured best on 4 and 50 MiB files (docs/performance.md); the bound keeps
# memory flat in the file size.
_HASH_BATCH_BYTES = 128 * 1024
_HASH_BATCHES_IN_FLIGHT = 2
# hashlib keeps the GIL for less than 2 KiB: such blocks are hashed in the caller.
_HASH_THREAD_MIN_BLOCK = 2048


class FileKey:
    """A file's 32-byte secretstream key.

    :cvar KEY_SIZE: the size of the key.
    """

    KEY_SIZE: ClassVar[int] = nacl.bindings.crypto_secretstream_xchacha20poly1305_KEYBYTES

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != self.KEY_SIZE:
            raise InvalidKey(f"file key must be {self.KEY_SIZE} bytes")
        self._key = key

    @classmethod
    def generate(cls) -> "FileKey":
        return cls(nacl.utils.random(cls.KEY_SIZE))

    def __bytes__(self) -> bytes:
        return self._key

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileKey):
            return NotImplemented
        return nacl.bindings.sodium_memcmp(self._key, other._key)

    # Equal keys would need equal hashes, and a hash of the key is not worth
    # exposing: file keys are not meant to be set members or dict keys.
    __hash__ = None  # type: ignore[assignment]  # Python's way to say: unhashable

    def __repr__(self) -> str:
        return "FileKey(…)"


@dataclass(frozen=True)
class StreamInfo:
    """What a message body records about an encrypted file.

    `size` and `sha256` are those of the whole ciphertext as stored (prefix,
    header and chunks); `chunks` counts the chunks, the final one included;
    `plaintext_size` is the file's size.
    """

    size: int
    sha256: bytes
    chunks: int
    plaintext_size: int


def _read_exact(source: IO[bytes], size: int) -> bytes:
    # A raw file or socket may return fewer bytes than asked before EOF.
    data = source.read(size)
    if len(data) == size or not data:
        return bytes(data)
    parts = [data]
    remaining = size - len(data)
    while remaining:
        more = source.read(remaining)
        if not more:
            break
        parts.append(more)
        remaining -= len(more)
    return b"".join(parts)


class _CiphertextHash:
    """The SHA-256 of a stream's ciphertext, hashed by a worker thread past one batch.

    `update` takes the very bytes objects written to the sink, in order, and
    `finish` the final block; a stream of one batch or less (a thumbnail)
    never starts a thread. Use it as a context manager: leaving it, normally
    or on an error from the source or sink, stops the worker, so no thread
    outlives the stream.
    """

    def __init__(self, data: bytes, block_size: int) -> None:
        self._digest = hashlib.sha256(data)
        self._threaded = block_size >= _HASH_THREAD_MIN_BLOCK
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._thread: threading.Thread | None = None
        self._todo: queue.SimpleQueue[list[bytes] | None] = queue.SimpleQueue()
        self._free_slots: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        # Set by the worker while it has batches; a stale value costs time, not blocks.
        self._worker_busy = False

    def __enter__(self) -> "_CiphertextHash":
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Normally finish() has stopped the worker already. After an error
        # elsewhere, the worker ends once the (at most two) batches it has
        # are hashed; an error of its own would only hide the first one.
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None

    def update(self, block: bytes) -> None:
        if not self._threaded:
            self._digest.update(block)
            return
        self._batch.append(block)
        self._batch_bytes += len(block)
        # A busy worker takes each block at once, for free: only waking an
        # idle one costs, so it is woken once per full batch.
        if self._worker_busy or self._batch_bytes >= _HASH_BATCH_BYTES:
            self._hand_over()

    def finish(self, final_block: bytes) -> bytes:
        """Hash the final block and whatever is pending; stop the worker; return the digest.

        The last batch is not handed over if the worker has hashed all it
        was given: it is hashed here while the worker stops, so the end of
        the stream does not wait for a thread to wake up.
        """
        self._batch.append(final_block)
        if self._thread is not None:
            if self._free_slots.qsize() < _HASH_BATCHES_IN_FLIGHT:
                self._hand_over()  # still busy: the rest queues behind its batches
            self._todo.put(None)
        try:
            for block in self._batch:
                self._digest.update(block)
            self._batch = []
        finally:
            if self._thread is not None:
                self._thread.join()
                self._thread = None
        if self._error is not None:
            raise self._error
        return self._digest.digest()

    def _hand_over(self) -> None:
        if self._thread is None:
            for _ in range(_HASH_BATCHES_IN_FLIGHT):
                self._free_slots.put(None)
            thread = threading.Thread(
                target=self._hash_batches, name="rounds-stream-hash", daemon=True
            )
            thread.start()
            self._thread = thread
        self._free_slots.get()  # waits while the worker is that many batches behind
        self._todo.put(self._batch)
        self._batch = []
        self._batch_bytes = 0

    def _hash_batches(self) -> None:
        # Every batch gives its slot back, even after an error, so that
        # _hand_over never waits for a worker that stopped hashing.
        update = self._digest.update
        while (batch := self._todo.get()) is not None:
            self._worker_busy = True
            try:
                if self._error is None:
                    for block in batch:
                        update(block)
            except BaseException as error:
                self._error = error
            finally:
                del batch  # free the blocks now, not when the next batch comes
                self._free_slots.put(None)
                self._worker_busy = not self._todo.empty()


def _check_chunk_size(chunk_size: int, error: type[Exception]) -> None:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise error("chunk_size must be an integer")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise error(f"chunk_size must be 1 .. {MAX_CHUNK_SIZE}")


def encrypt_stream(
    key: FileKey, source: IO[bytes], sink: IO[bytes], chunk_size: int = CHUNK_SIZE
) -> StreamInfo:
    """Encrypt `source` to `sink` chunk by chunk; return the ciphertext's size and hash.

    Reads one chunk ahead, so that the last chunk (even a full one) carries
    TAG_FINAL and no empty chunk follows a file whose size is a multiple of
    `chunk_size`. An error from `source` or `sink` propagates as it is,
    once the hashing thread, if any, has ended.
    """
    if not isinstance(key, FileKey):
        raise TypeError("key must be a FileKey")
    _check_chunk_size(chunk_size, ValueError)
    prefix = _PREFIX.pack(MAGIC, STREAM_VERSION, chunk_size)
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    start = prefix + nacl.bindings.crypto_secretstream_xchacha20poly1305_init_push(
        state, bytes(key)
    )
    push = nacl.bindings.crypto_secretstream_xchacha20poly1305_push
    write = sink.write
    write(start)
    size = len(start)
    chunks = 0
    plaintext_size = 0

    with _CiphertextHash(start, chunk_size + ABYTES) as ciphertext_hash:
        current = _read_exact(source, chunk_size)
        while True:
            following = _read_exact(source, chunk_size) if len(current) == chunk_size else b""
            tag = TAG_MESSAGE if following else TAG_FINAL
            block = push(state, current, prefix, tag)
            write(block)
            size += len(block)
            chunks += 1
            plaintext_size += len(current)
            if tag == TAG_FINAL:
                break
            ciphertext_hash.update(block)  # the same bytes object as written
            current = following
        sha256 = ciphertext_hash.finish(block)
    return StreamInfo(size=size, sha256=sha256, chunks=chunks, plaintext_size=plaintext_size)


def decrypt_stream(
    key: FileKey,
    source: IO[bytes],
    sink: IO[bytes],
    *,
    expected_sha256: bytes | None = None,
) -> StreamInfo:
    """Decrypt a stream from `source` to `sink`, one chunk at a time.

    On any error the sink may hold the plaintext of the chunks before it:
    the caller must discard it (write to a temporary file; see the module
    docstring).

    Args:
        expected_sha256: The ciphertext hash from the message body; checked
            once the final chunk is read (the chunks themselves are already
            authenticated, this also pins the exact stored bytes).

    Raises:
        InvalidEnvelope: Not a Rounds stream (magic), a chunk size out of
            range, or a chunk tagged other than MESSAGE or FINAL.
        UnsupportedVersion: A stream of another version.
        TruncatedStream: The stream ends before its final chunk.
        DecryptionFailed: A chunk does not authenticate (altered, reordered,
            repeated, cut in the middle, wrong key), data follows the final
            chunk, or the hash differs from `expected_sha256`.
    """
    if not isinstance(key, FileKey):
        raise TypeError("key must be a FileKey")
    prefix = _read_exact(source, PREFIX_SIZE)
    if len(prefix) < PREFIX_SIZE:
        if MAGIC.startswith(prefix[: len(MAGIC)]):
            raise TruncatedStream("stream ends inside its prefix")
        raise InvalidEnvelope("not a Rounds encrypted stream")
    magic, version, chunk_size = _PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise InvalidEnvelope("not a Rounds encrypted stream")
    if version != STREAM_VERSION:
        raise UnsupportedVersion(f"stream version {version} is not supported")
    _check_chunk_size(chunk_size, InvalidEnvelope)
    header = _read_exact(source, HEADER_SIZE)
    if len(header) < HEADER_SIZE:
        raise TruncatedStream("stream ends inside its header")
    digest = hashlib.sha256(prefix + header)
    size = PREFIX_SIZE + HEADER_SIZE
    state = nacl.bindings.crypto_secretstream_xchacha20poly1305_state()
    nacl.bindings.crypto_secretstream_xchacha20poly1305_init_pull(state, header, bytes(key))

    block_size = chunk_size + ABYTES
    chunks = 0
    plaintext_size = 0
    while True:
        block = _read_exact(source, block_size)
        if not block:
            raise TruncatedStream(f"stream ends after chunk {chunks} without a final chunk")
        if len(block) < ABYTES:
            raise TruncatedStream(f"stream ends inside chunk {chunks}")
        try:
            plaintext, tag = nacl.bindings.crypto_secretstream_xchacha20poly1305_pull(
                state, block, prefix
            )
        except nacl.exceptions.CryptoError:
            raise DecryptionFailed(f"chunk {chunks} does not authenticate") from None
        digest.update(block)
        size += len(block)
        chunks += 1
        if tag == TAG_FINAL:
            break
        if tag != TAG_MESSAGE:
            raise InvalidEnvelope(f"chunk {chunks - 1} has an unexpected tag {tag}")
        if len(block) != block_size:
            # Only a final chunk may be short; an authentic short MESSAGE
            # chunk means the writer broke the format.
            raise InvalidEnvelope(f"chunk {chunks - 1} is short but not final")
        sink.write(plaintext)
        plaintext_size += len(plaintext)
    if source.read(1):
        raise DecryptionFailed("data after the final chunk")
    sink.write(plaintext)
    plaintext_size += len(plaintext)
    info = StreamInfo(
        size=size, sha256=digest.digest(), chunks=chunks, plaintext_size=plaintext_size
    )
    if expected_sha256 is not None and not nacl.bindings.sodium_memcmp(
        info.sha256, expected_sha256
    ):
        raise DecryptionFailed("stream hash differs from the one in the message")
    return info


def decrypt_to_bytes(key: FileKey, data: bytes, *, expected_sha256: bytes | None = None) -> bytes:
    """Decrypt a whole stream held in memory: all of the plaintext, or an error."""
    sink = io.BytesIO()
    decrypt_stream(key, io.BytesIO(data), sink, expected_sha256=expected_sha256)
    return sink.getvalue()


def encrypt_to_bytes(key: FileKey, data: bytes, chunk_size: int = CHUNK_SIZE) -> bytes:
    """Encrypt a small file held in memory (a thumbnail)."""
    sink = io.BytesIO()
    encrypt_stream(key, io.BytesIO(data), sink, chunk_size)
    return sink.getvalue()


def ciphertext_size(plaintext_size: int, chunk_size: int = CHUNK_SIZE) -> int:
    """The stored size of a file of `plaintext_size` bytes, so that a limit stated on the
    photo (what the user sees) becomes the limit on what the server receives."""
    if plaintext_size < 0:
        raise ValueError("plaintext_size must not be negative")
    _check_chunk_size(chunk_size, ValueError)
    chunks = max(1, -(-plaintext_size // chunk_size))
    return PREFIX_SIZE + HEADER_SIZE + plaintext_size + chunks * ABYTES
