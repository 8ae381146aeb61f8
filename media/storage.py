"""Where encrypted blobs live, through Django's storage API (alias "attachments").

On disk by default, on S3-compatible object storage when ROUNDS_S3_BUCKET is
set (rounds/settings.py). Everything here moves bytes in bounded blocks: an
upload of 50 MiB must not cost 50 MiB of server memory, whichever backend.

Reading from S3 goes through ranged GETs on the storage's boto3 bucket, not
`storage.open()`: django-storages' S3File downloads the whole object into a
SpooledTemporaryFile that stays in memory unless AWS_S3_MAX_MEMORY_SIZE is
set, which would hold a whole blob per download.
"""

import contextlib
import hashlib
import re
from collections.abc import Generator, Iterable, Iterator
from typing import IO, Any, Protocol, cast

from django.core.files.storage import Storage, storages

from core.errors import N_, ErrorCode, RoundsError

ALIAS = "attachments"
BLOCK = 256 * 1024


class BlobMissing(Exception):
    """A stored object is gone (expired or removed meanwhile)."""


class ShortBody(Exception):
    """The request body ended before the length it declared."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def blob_storage() -> Storage:
    return storages[ALIAS]


def part_name(upload_id: Any, offset: int) -> str:
    return f"uploads/{upload_id}/parts/{offset:012d}"


def blob_name(upload_id: Any) -> str:
    return f"blobs/{upload_id}"


def _s3_bucket(storage: Storage) -> Any:
    """The boto3 bucket of an S3Storage, or None for any other backend."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # the s3 extra is not installed
        return None
    return storage.bucket if isinstance(storage, S3Storage) else None


def iter_range(
    name: str, start: int, length: int, block: int = BLOCK
) -> Generator[bytes, None, None]:
    """Yield `length` bytes of stored object `name` from `start`, in blocks of at most `block`.

    Raises:
        BlobMissing: the object does not exist.
    """
    if length <= 0:
        return
    storage = blob_storage()
    bucket = _s3_bucket(storage)
    if bucket is not None:
        yield from _iter_s3_range(storage, bucket, name, start, length, block)
        return
    try:
        handle = storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise BlobMissing(name) from exc
    with handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            data = handle.read(min(block, remaining))
            if not data:
                raise BlobMissing(name)
            remaining -= len(data)
            yield data


def _iter_s3_range(
    storage: Any, bucket: Any, name: str, start: int, length: int, block: int
) -> Iterator[bytes]:
    from botocore.exceptions import ClientError

    key = storage._normalize_name(name)  # the storage's `location` prefix, as its own _open does
    try:
        body = bucket.Object(key).get(Range=f"bytes={start}-{start + length - 1}")["Body"]
    except ClientError as exc:
        raise BlobMissing(name) from exc
    try:
        remaining = length
        for data in body.iter_chunks(block):
            remaining -= len(data)
            yield data
        if remaining:
            raise BlobMissing(name)
    finally:
        body.close()


class BlockReader:
    """A read-only, non-seekable file over an iterator of byte blocks.

    What storage.save() reads from: Django's FileSystemStorage pulls chunks
    from it, boto3 uploads it part by part; neither holds all of it at once.
    `on_block` sees every block once, in order (hashing in the same pass).
    """

    def __init__(self, blocks: Iterable[bytes], on_block: Any = None) -> None:
        self._blocks = iter(blocks)
        self._buffer = b""
        self._on_block = on_block
        self.count = 0
        self.closed = False
        self.name = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True

    def _next_block(self) -> bytes:
        for data in self._blocks:
            if data:
                if self._on_block is not None:
                    self._on_block(data)
                self.count += len(data)
                return data
        return b""

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer, *iter(self._next_block, b"")]
            self._buffer = b""
            return b"".join(parts)
        while len(self._buffer) < size:
            data = self._next_block()
            if not data:
                break
            self._buffer += data
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


def body_blocks(body: Readable, length: int, block: int = 64 * 1024) -> Iterator[bytes]:
    """Exactly `length` bytes of a request body, read in blocks (never `request.body`).

    Raises:
        ShortBody: the body ended first.
    """
    remaining = length
    while remaining > 0:
        data = body.read(min(block, remaining))
        if not data:
            raise ShortBody()
        remaining -= len(data)
        yield data


def save_stream(name: str, blocks: Iterable[bytes], on_block: Any = None) -> tuple[str, int]:
    """Store the blocks under `name` (or a free variant of it). Returns (stored name, bytes).

    The backend never overwrites (FileSystemStorage by design, S3 with
    file_overwrite=False), so two racing writers each get their own object.
    """
    reader = BlockReader(blocks, on_block)
    # Storage.save reads the content with read() only; the stubs ask for a whole IO.
    stored = blob_storage().save(name, cast(IO[bytes], reader))
    return stored, reader.count


def save_hashed(name: str, blocks: Iterable[bytes]) -> tuple[str, int, str]:
    """`save_stream`, with the SHA-256 of what was stored computed in the same pass."""
    digest = hashlib.sha256()
    stored, count = save_stream(name, blocks, digest.update)
    return stored, count, digest.hexdigest()


def delete_quietly(names: Iterable[str]) -> None:
    """Remove stored objects; one already gone is not an error (expiry may race)."""
    storage = blob_storage()
    for name in names:
        if name:
            with contextlib.suppress(FileNotFoundError):
                storage.delete(name)


def same_bytes(left: Iterable[bytes], right: Iterable[bytes]) -> bool:
    """Whether two block streams hold the same bytes, whatever their block sizes.

    Stops at the first difference.
    """
    a, b = BlockReader(left), BlockReader(right)
    while True:
        x = a.read(BLOCK)
        y = b.read(len(x)) if x else b.read(1)
        if x != y:
            return False
        if not x:
            return True


class RangeNotSatisfiable(RoundsError):
    """`data.size` gives the edge its `Content-Range: bytes */size` header."""

    code = ErrorCode.RANGE_NOT_SATISFIABLE
    default_message = N_("The range starts at or after the end of the blob.")


RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
# No blob reaches 10^18 bytes. A longer number (leading zeros count) is refused before
# int() reads it: past 4,300 digits int() raises, and the request was a 500.
RANGE_MAX_DIGITS = 18


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One byte range as (first, last), or None to send the whole blob.

    Several ranges, another unit or a malformed value are ignored (whole
    blob, 200), as RFC 9110 §14.2 allows; a satisfiable-looking range that
    starts at or past the end is refused (416).
    """
    match = RANGE.match((header or "").strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if max(len(first), len(last)) > RANGE_MAX_DIGITS:
        raise RangeNotSatisfiable(data={"size": size})
    if not first:  # the last n bytes
        n = int(last)
        if n == 0:
            raise RangeNotSatisfiable(data={"size": size})
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(data={"size": size})
    return start, min(int(last), size - 1) if last else size - 1
