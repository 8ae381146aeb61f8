"""Clinical photos in the SDK: post, open, download, and the library (docs/media.md).

`RoundsClient` inherits `PhotoMixin`. A photo post is two things bound
together: blobs the server cannot read, and a message body, signed and
encrypted like any text, that holds each blob's key, hash and size. The
server also sees an `attachments` list (upload ids, keywords, consent,
capture date) so it can index the library; `open_photo_message` refuses a
message whose signed body says something else (`attachment_mismatch`), so
the server cannot relabel or swap a photo behind the sender's back.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from client.errors import RoundsClientError, crypto_refusal
from client.media import (
    HttpHost,
    Progress,
    UploadedBlob,
    case_header,
    download_blob,
    encrypt_blob,
    upload_encrypted,
)
from client.photos import PreparedPhoto, prepare_photo
from core.crypto import CryptoError, b64decode, b64encode
from core.crypto.stream import FileKey

MAX_PHOTOS = 10
MAX_KEYWORDS = 16
CONSENTS = ("care", "teaching", "publication")
_HEX = frozenset("0123456789abcdef")


def iso_capture(moment: datetime | None) -> str | None:
    """An aware ISO date for the server; a naive EXIF time is taken as this machine's local time
    (the camera's clock and the client's are normally those of the same hospital)."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.astimezone()).isoformat()


def _blob_entry(blob: UploadedBlob, media_type: str, width: int, height: int) -> dict[str, Any]:
    return {
        "upload": blob.upload,
        "key": b64encode(bytes(blob.key)),
        "sha256": blob.sha256,
        "size": blob.size,
        "media_type": media_type,
        "width": width,
        "height": height,
    }


def photo_entry(
    photo: PreparedPhoto,
    blob: UploadedBlob,
    thumb: UploadedBlob,
    *,
    keywords: list[str],
    consent: str,
    annotates: int | None,
) -> dict[str, Any]:
    """One photo of the encrypted body, as docs/media.md lays it out."""
    entry = _blob_entry(blob, photo.media_type, photo.width, photo.height)
    entry.update(
        captured_at=iso_capture(photo.captured_at),
        keywords=keywords,
        consent=consent,
        annotates=annotates,
        thumbnail=_blob_entry(
            thumb, photo.thumbnail_media_type, photo.thumbnail_width, photo.thumbnail_height
        ),
    )
    return entry


def attachment_ref(entry: dict[str, Any]) -> dict[str, Any]:
    """What the server may see of a body's photo."""
    return {
        "upload": entry["upload"],
        "thumbnail": entry["thumbnail"]["upload"],
        "keywords": entry["keywords"],
        "consent": entry["consent"],
        "captured_at": entry["captured_at"],
        "annotates": entry["annotates"],
    }


def _invalid(message: str) -> RoundsClientError:
    return RoundsClientError("invalid_photo_body", message)


def _check_blob(entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise _invalid(f"{where} is not an object")
    sha = entry.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and set(sha) <= _HEX):
        raise _invalid(f"{where}: sha256 is not 64 hex digits")
    size = entry.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise _invalid(f"{where}: size is not a positive integer")
    try:
        b64decode(entry.get("key"), size=FileKey.KEY_SIZE, field="key")
    except CryptoError as error:
        raise crypto_refusal(error, f"{where}: ") from None
    if not isinstance(entry.get("upload"), str):
        raise _invalid(f"{where}: upload is not an id")


def parse_photo_body(plaintext: bytes) -> dict[str, Any]:
    """The decrypted body of a photo message, checked for shape.

    Raises RoundsClientError: `invalid_photo_body` (not JSON, not a photos
    body, or a photo without a well-formed key, hash, size or thumbnail).
    """
    try:
        body = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid("the body is not JSON") from None
    if not isinstance(body, dict) or body.get("type") != "photos":
        raise _invalid("the body is not a photos body")
    photos = body.get("photos")
    if not isinstance(photos, list) or not photos:
        raise _invalid("the body lists no photos")
    for index, photo in enumerate(photos):
        _check_blob(photo, f"photo {index}")
        _check_blob(photo.get("thumbnail"), f"photo {index}'s thumbnail")
    if not isinstance(body.get("text", ""), str):
        raise _invalid("the caption is not text")
    return body


def check_matches_attachments(body: dict[str, Any], attachments: Sequence[dict[str, Any]]) -> None:
    """The server-visible attachments must be the signed body's: same uploads, in order,
    same keywords and consent.

    Raises RoundsClientError: `attachment_mismatch`.
    """
    photos = body["photos"]
    mismatch = len(photos) != len(attachments)
    for photo, seen in zip(photos, attachments, strict=False):
        mismatch = mismatch or (
            str(seen.get("upload")) != photo["upload"]
            or str(seen.get("thumbnail")) != photo["thumbnail"]["upload"]
            or sorted(seen.get("keywords") or []) != sorted(photo.get("keywords") or [])
            or seen.get("consent") != photo.get("consent")
        )
    if mismatch:
        raise RoundsClientError(
            "attachment_mismatch",
            "The server lists other photos, keywords or consent than the sender signed; "
            "the message is not shown.",
        )


class PhotoHost(HttpHost, Protocol):
    """What `PhotoMixin` uses of the client it is mixed into (`RoundsClient`)."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Any: ...

    async def thread_department(self, thread_id: int) -> int: ...

    async def post_body(
        self,
        thread: dict[str, Any] | int,
        plaintext: bytes,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]: ...

    async def open_message(
        self, frame_or_message: dict[str, Any], *, department: int | None = None
    ) -> bytes: ...

    async def library(self, **filters: Any) -> dict[str, Any]: ...
    def library_pages(self, **filters: Any) -> AsyncIterator[dict[str, Any]]: ...


class PhotoMixin:
    """Photo methods of `RoundsClient` (they use its HTTP client, socket and keys)."""

    async def send_photos(
        self: "PhotoHost",
        thread: dict[str, Any] | int,
        photos: Sequence[str | Path | bytes],
        *,
        keywords: Sequence[str] = (),
        consent: str = "care",
        text: str = "",
        annotates: int | None = None,
        progress: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        department: int | None = None,
    ) -> dict[str, Any]:
        """Prepare, encrypt, upload and post photos (with a caption) in one message.

        Every photo is prepared before anything is uploaded, so a refused
        file (`PhotoRefused`) leaves nothing on the server. `annotates` is the
        attachment id of the photo these annotate (the original is kept).
        Returns the post's ack, with the plaintext body under `body`.

        Raises:
            PhotoRefused: a file that is not an acceptable photo.
            RoundsClientError: `invalid_request` (count, keywords, consent) or the
                server's refusal of an upload or of the post.
        """
        if not 1 <= len(photos) <= MAX_PHOTOS:
            raise RoundsClientError("invalid_request", f"Post 1 to {MAX_PHOTOS} photos.")
        codes = list(dict.fromkeys(keywords))
        if len(codes) > MAX_KEYWORDS:
            raise RoundsClientError("invalid_request", f"At most {MAX_KEYWORDS} keywords.")
        if consent not in CONSENTS:
            raise RoundsClientError("invalid_request", f"consent is one of {', '.join(CONSENTS)}.")
        # Pillow and secretstream are CPU work: off the event loop, so the socket keeps reading.
        prepared = [await asyncio.to_thread(prepare_photo, source) for source in photos]
        thread_id = thread["id"] if isinstance(thread, dict) else thread
        if department is None and isinstance(thread, dict):
            department = thread.get("department")
        if department is None:
            department = await self.thread_department(thread_id)

        encrypted = []
        try:
            for photo in prepared:
                encrypted.append(
                    (
                        await asyncio.to_thread(encrypt_blob, photo.data),
                        await asyncio.to_thread(encrypt_blob, photo.thumbnail),
                    )
                )
            total = sum(full.size + thumb.size for full, thumb in encrypted)
            bar = Progress(total, show=progress, callback=on_progress, description="upload")
            try:
                entries = []
                for photo, (full, thumb) in zip(prepared, encrypted, strict=True):
                    blob = await upload_encrypted(self, department, full, progress=bar)
                    small = await upload_encrypted(self, department, thumb, progress=bar)
                    entries.append(
                        photo_entry(
                            photo, blob, small, keywords=codes, consent=consent, annotates=annotates
                        )
                    )
            finally:
                bar.close()
        finally:
            for pair in encrypted:
                for blob_file in pair:
                    blob_file.close()
        body = {"type": "photos", "text": text, "photos": entries}
        plaintext = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ack = await self.post_body(
            thread_id,
            plaintext,
            department=department,
            attachments=[attachment_ref(entry) for entry in entries],
        )
        return {**ack, "body": body}

    async def open_photo_message(
        self: "PhotoHost", frame_or_message: dict[str, Any], *, department: int | None = None
    ) -> dict[str, Any]:
        """Verify, decrypt and check a photo message against its server-visible attachments.

        Returns the body (`type`, `text`, `photos`), each photo with the
        server's `attachment` id added when the server gave one.

        Raises RoundsClientError: `invalid_photo_body`, `attachment_mismatch`,
        or what `open_message` raises.
        """
        message = frame_or_message.get("message", frame_or_message)
        plaintext = await self.open_message(frame_or_message, department=department)
        body = parse_photo_body(plaintext)
        attachments = message.get("attachments") or []
        check_matches_attachments(body, attachments)
        for photo, seen in zip(body["photos"], attachments, strict=True):
            photo["attachment"] = seen.get("id")
        return body

    async def download_photo(
        self: "PhotoHost",
        photo: dict[str, Any],
        *,
        thumbnail: bool = False,
        out: str | Path | None = None,
        case: int | None = None,
        progress: bool = False,
    ) -> bytes:
        """A photo (or its thumbnail) of an opened body: downloaded, hash-checked, decrypted.

        With `out`, also written there (only once it has decrypted in full).
        `case`: a compliance officer's open case that covers the photo (its id).
        """
        entry = photo["thumbnail"] if thumbnail else photo
        bar = Progress(entry["size"], show=progress, description="download")
        try:
            data = await download_blob(
                self,
                entry["upload"],
                key=FileKey(b64decode(entry["key"], size=FileKey.KEY_SIZE, field="key")),
                sha256=entry["sha256"],
                size=entry["size"],
                case=case,
                progress=bar,
            )
        finally:
            bar.close()
        if out is not None:
            await asyncio.to_thread(Path(out).write_bytes, data)
        return data

    # --- the library --------------------------------------------------------------------

    async def photo_keywords(self: "PhotoHost") -> list[dict[str, Any]]:
        """The institution's nomenclature: [{code, label, category}]."""
        result: list[dict[str, Any]] = await self.call("GET", "/api/library/keywords")
        return result

    async def library(self: "PhotoHost", **filters: Any) -> dict[str, Any]:
        """One page of the photo library: {items, next_cursor}, newest capture first.

        Filters as in docs/media.md (`patient`, `ipp`, `department`, `date_from`,
        `date_to`, `keyword` (a code or a list, combined with AND), `sender`,
        `consent`, `cursor`, `limit`); None values are left out. A compliance
        officer's `case` goes in its header, not with the filters in the URL.
        """
        headers = case_header(filters.pop("case", None))
        params = {k: v for k, v in filters.items() if v is not None and v != []}
        result: dict[str, Any] = await self.call(
            "GET", "/api/library/photos", params=params, headers=headers
        )
        return result

    async def library_pages(self: "PhotoHost", **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every page of the library matching the filters: {items, next_cursor, time_zone}."""
        cursor = filters.pop("cursor", None)
        while True:
            page = await self.library(**filters, cursor=cursor)
            yield page
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def library_items(self: "PhotoHost", **filters: Any) -> AsyncIterator[dict[str, Any]]:
        """Every library item matching the filters, page after page."""
        async for page in self.library_pages(**filters):
            for item in page.get("items", []):
                yield item

    async def photo_sequences(self: "PhotoHost", patient: int) -> Any:
        """A patient's photo sequences (one sequence = the photos of one message)."""
        return await self.call("GET", f"/api/library/patients/{patient}/sequences")

    async def department_stats(
        self: "PhotoHost",
        department: int,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
    ) -> dict[str, Any]:
        """{patients, sequences, photos, mean_sequences_per_patient} over a period."""
        params = {k: v for k, v in (("date_from", date_from), ("date_to", date_to)) if v}
        result: dict[str, Any] = await self.call(
            "GET", f"/api/library/departments/{department}/stats", params=params
        )
        return result

    async def record_report(self: "PhotoHost", patient: int, photos: int) -> dict[str, Any]:
        """Tell the server a follow-up report was generated (it audits; it never sees the PDF)."""
        result: dict[str, Any] = await self.call(
            "POST", "/api/library/reports", json={"patient": patient, "photos": photos}
        )
        return result
