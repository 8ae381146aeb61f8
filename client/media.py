"""Encrypted blobs over HTTP: upload in resumable chunks, download with Range, check, decrypt.

docs/media.md is the contract. The server only ever holds ciphertext: a
blob is encrypted here with a fresh `FileKey` (core/crypto/stream.py), and
the key, the ciphertext's SHA-256 and its size go into the signed message
body, never to the upload endpoints.

Hospital Wi-Fi drops. An upload therefore survives a lost connection, a
5xx or a timeout: the client asks the server how much it `received` and
goes on from there, a bounded number of times with a growing pause. A chunk
sent twice is harmless (the server compares it with what it stored). A
download resumes with `Range` the same way, and its SHA-256 is checked
against the message body's before a single byte is decrypted, so a blob
swapped on the server is refused as `hash_mismatch`.
"""

import asyncio
import hashlib
import io
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, Any, Protocol, TypeVar

import httpx
from tqdm import tqdm

from client.errors import RoundsClientError, crypto_refusal
from client.transport import refusal
from core.crypto import CryptoError
from core.crypto.stream import FileKey, decrypt_stream, encrypt_stream

CHUNK_SIZE = 1024 * 1024
MAX_ATTEMPTS = 6
FIRST_PAUSE = 0.25
MAX_PAUSE = 8.0
# Blobs up to this size are encrypted in memory; bigger ones spill to a temporary file.
IN_MEMORY_BYTES = 8 * 1024 * 1024
# A compliance officer's case travels in this header, never in a URL (access logs keep URLs).
CASE_HEADER = "X-Rounds-Case"

ProgressCallback = Callable[[int, int], None]
T = TypeVar("T")


class Progress:
    """Bytes moved so far, shown as a tqdm bar on stderr and/or reported to a callback."""

    def __init__(
        self,
        total: int,
        *,
        show: bool = False,
        callback: ProgressCallback | None = None,
        description: str = "",
    ) -> None:
        self.total = total
        self.done = 0
        self.callback = callback
        self.bar = tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=description or None,
            file=sys.stderr,
            disable=not show,
            leave=True,
        )

    def advance(self, count: int) -> None:
        if count <= 0:
            return
        self.done += count
        self.bar.update(count)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def close(self) -> None:
        self.bar.close()


class EncryptedFile:
    """A blob's ciphertext, held for the upload (spooled to disk when large)."""

    def __init__(self, key: FileKey, sha256: str, size: int, file: IO[bytes]) -> None:
        self.key = key
        self.sha256 = sha256
        self.size = size
        self._file = file

    def read_at(self, offset: int, length: int) -> bytes:
        self._file.seek(offset)
        return self._file.read(length)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "EncryptedFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def encrypt_blob(data: bytes | IO[bytes], key: FileKey | None = None) -> EncryptedFile:
    """Encrypt a blob under a new file key (or `key`, for tests)."""
    key = key or FileKey.generate()
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    sink = tempfile.SpooledTemporaryFile(max_size=IN_MEMORY_BYTES, prefix="rounds-up-")  # noqa: SIM115
    info = encrypt_stream(key, source, sink)
    return EncryptedFile(key, info.sha256.hex(), info.size, sink)


@dataclass(frozen=True)
class UploadedBlob:
    """What the message body needs about one uploaded blob."""

    upload: str
    key: FileKey
    sha256: str
    size: int


class HttpHost(Protocol):
    """What the blob transfers use of a client (`RoundsClient`): its HTTP side."""

    @property
    def http(self) -> httpx.AsyncClient: ...

    @property
    def token(self) -> str | None: ...


def _headers(client: HttpHost) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"} if client.token else {}


def case_header(case: int | None) -> dict[str, str]:
    """The header naming a compliance officer's case, or none without a case."""
    return {} if case is None else {CASE_HEADER: str(case)}


def retryable(error: RoundsClientError) -> bool:
    """A lost connection or a server failure: worth asking again. A refusal is not."""
    return error.code == "connection_lost" or (error.status or 0) >= 500


async def _request(
    client: HttpHost,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> Any:
    headers = {**_headers(client), **(headers or {})}
    try:
        response = await client.http.request(method, path, headers=headers, **kwargs)
    except httpx.TransportError as error:
        raise RoundsClientError("connection_lost", f"{method} {path}: {error!r}") from None
    if response.status_code >= 400:
        raise refusal(response)
    return response.json() if response.content else {}


async def _pause(attempt: int) -> None:
    await asyncio.sleep(min(FIRST_PAUSE * 2**attempt, MAX_PAUSE))


async def create_upload(client: HttpHost, department: int, size: int) -> dict[str, Any]:
    result: dict[str, Any] = await _request(
        client, "POST", "/api/uploads", json={"department": department, "size": size}
    )
    return result


async def upload_state(client: HttpHost, upload_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await _request(client, "GET", f"/api/uploads/{upload_id}")
    return result


async def send_chunks(
    client: HttpHost,
    upload_id: str,
    blob: EncryptedFile,
    *,
    start: int = 0,
    stop: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
) -> int:
    """Send the ciphertext from `start` until the server has `stop` (default: all) bytes.

    On a lost connection or a 5xx, asks the server where the upload stands
    and goes on from there, at most MAX_ATTEMPTS times in a row; on
    `wrong_offset`, goes on from the server's `received`. Returns `received`.
    """
    stop = blob.size if stop is None else min(stop, blob.size)
    received = start
    reported = start
    failures = 0
    while received < stop:
        chunk = blob.read_at(received, min(chunk_size, stop - received))
        try:
            answer = await _request(
                client,
                "PUT",
                f"/api/uploads/{upload_id}/chunks",
                params={"offset": received},
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
            )
            received = int(answer["received"])
            failures = 0
        except RoundsClientError as error:
            if error.code == "wrong_offset" and "received" in error.data:
                received = int(error.data["received"])
                failures += 1
            elif retryable(error):
                failures += 1
                if failures >= MAX_ATTEMPTS:
                    raise
                await _pause(failures)
                received = await _received_after_failure(client, upload_id, received)
            else:
                raise
            if failures >= MAX_ATTEMPTS:
                raise
        if progress is not None:
            progress.advance(received - reported)
        reported = max(reported, received)
    return received


async def _received_after_failure(client: HttpHost, upload_id: str, fallback: int) -> int:
    """Where the upload stands; `fallback` if the server cannot say right now (retried later)."""
    try:
        return int((await upload_state(client, upload_id))["received"])
    except RoundsClientError as error:
        if retryable(error):
            return fallback
        raise


async def _retried(call: Callable[[], Awaitable[T]]) -> T:
    """An idempotent request, asked again after a lost connection or a 5xx (bounded)."""
    failures = 0
    while True:
        try:
            return await call()
        except RoundsClientError as error:
            failures += 1
            if not retryable(error) or failures >= MAX_ATTEMPTS:
                raise
            await _pause(failures)


async def complete_upload(client: HttpHost, upload_id: str, sha256: str) -> dict[str, Any]:
    """Complete; an `upload_state` answer with the same hash means an earlier try did it."""
    try:
        result: dict[str, Any] = await _request(
            client, "POST", f"/api/uploads/{upload_id}/complete", json={"sha256": sha256}
        )
        return result
    except RoundsClientError as error:
        if error.code == "upload_state" and error.data.get("sha256") == sha256:
            return {"id": upload_id, "sha256": sha256, "state": error.data.get("state")}
        raise


async def _finish(
    client: HttpHost,
    upload_id: str,
    blob: EncryptedFile,
    *,
    chunk_size: int,
    progress: Progress | None,
) -> UploadedBlob:
    """Complete the upload; if the server still misses bytes, send them and complete again."""
    for _ in range(MAX_ATTEMPTS):
        try:
            await _retried(lambda: complete_upload(client, upload_id, blob.sha256))
            return UploadedBlob(upload_id, blob.key, blob.sha256, blob.size)
        except RoundsClientError as error:
            if error.code != "upload_incomplete" or "received" not in error.data:
                raise
            await send_chunks(
                client,
                upload_id,
                blob,
                start=int(error.data["received"]),
                chunk_size=chunk_size,
                progress=progress,
            )
    raise RoundsClientError("upload_incomplete", "The server keeps missing part of the upload.")


async def resume_upload(
    client: HttpHost,
    upload_id: str,
    blob: EncryptedFile,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
) -> UploadedBlob:
    """Finish an upload from wherever the server says it stands (after a crash, say)."""
    state = await _retried(lambda: upload_state(client, upload_id))
    if state.get("state") == "receiving":
        received = int(state["received"])
        if progress is not None:
            progress.advance(received - progress.done)
        await send_chunks(
            client, upload_id, blob, start=received, chunk_size=chunk_size, progress=progress
        )
    return await _finish(client, upload_id, blob, chunk_size=chunk_size, progress=progress)


async def upload_encrypted(
    client: HttpHost,
    department: int,
    blob: EncryptedFile,
    *,
    chunk_size: int = CHUNK_SIZE,
    progress: Progress | None = None,
) -> UploadedBlob:
    """Create an upload for the department, send the ciphertext, complete it.

    Creating is not retried: a second upload would be an orphan (it expires).
    """
    created = await create_upload(client, department, blob.size)
    upload_id = str(created["id"])
    chunk_size = min(chunk_size, int(created.get("chunk_max") or chunk_size))
    await send_chunks(client, upload_id, blob, chunk_size=chunk_size, progress=progress)
    return await _finish(client, upload_id, blob, chunk_size=chunk_size, progress=progress)


def _short_blob(upload_id: str, size: int, have: int) -> RoundsClientError:
    return RoundsClientError(
        "hash_mismatch",
        f"The stored blob is {have} bytes, not the {size} the sender signed for.",
        {"upload": upload_id, "expected_size": size, "received_size": have},
    )


async def fetch_ciphertext(
    client: HttpHost,
    upload_id: str,
    sink: IO[bytes],
    *,
    size: int,
    case: int | None = None,
    progress: Progress | None = None,
) -> str:
    """Stream a blob's ciphertext into `sink`, resuming with Range; return its SHA-256 (hex).

    Never writes more than `size` bytes (the body's size): a server sending
    more is cut short, and the hash check that follows refuses it. `case`: the
    compliance officer's case the download is made under.
    """
    digest = hashlib.sha256()
    have = 0
    failures = 0
    path = f"/api/uploads/{upload_id}/content"
    while have < size:
        headers = _headers(client) | case_header(case)
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            async with client.http.stream("GET", path, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code == 416 and have:
                        raise _short_blob(upload_id, size, have)
                    raise refusal(response)
                if have and response.status_code != 206:
                    # The server ignored the range: start again from the first byte.
                    sink.seek(0)
                    sink.truncate()
                    digest, have = hashlib.sha256(), 0
                async for part in response.aiter_bytes():
                    part = part[: size - have]
                    sink.write(part)
                    digest.update(part)
                    have += len(part)
                    if progress is not None:
                        progress.advance(len(part))
                    if have >= size:
                        break
            if have < size:
                # httpx raises on a connection cut before Content-Length: a clean
                # end means the server holds fewer bytes than the sender signed for.
                raise _short_blob(upload_id, size, have)
            failures = 0
        except httpx.TransportError as error:
            failures += 1
            if failures >= MAX_ATTEMPTS:
                raise RoundsClientError("connection_lost", f"GET {path}: {error!r}") from None
            await _pause(failures)
        except RoundsClientError as error:
            failures += 1
            if not retryable(error) or failures >= MAX_ATTEMPTS:
                raise
            await _pause(failures)
    return digest.hexdigest()


async def download_blob(
    client: HttpHost,
    upload_id: str,
    *,
    key: FileKey,
    sha256: str,
    size: int,
    case: int | None = None,
    progress: Progress | None = None,
) -> bytes:
    """Download, check the hash against the message body's, then decrypt.

    Raises RoundsClientError: `hash_mismatch` (the stored blob is not the one
    the sender signed for; nothing is decrypted), a core.crypto code, or the
    server's refusal.
    """
    with tempfile.TemporaryFile(prefix="rounds-down-") as ciphertext:
        got = await fetch_ciphertext(
            client, upload_id, ciphertext, size=size, case=case, progress=progress
        )
        if got != sha256.lower():
            raise RoundsClientError(
                "hash_mismatch",
                "The downloaded blob is not the one the sender signed for; it was not decrypted.",
                {"upload": upload_id, "expected": sha256, "received": got},
            )
        ciphertext.seek(0)
        plaintext = io.BytesIO()
        try:
            await asyncio.to_thread(
                decrypt_stream, key, ciphertext, plaintext, expected_sha256=bytes.fromhex(sha256)
            )
        except CryptoError as error:
            raise crypto_refusal(error, f"blob {upload_id}: ") from None
    return plaintext.getvalue()
