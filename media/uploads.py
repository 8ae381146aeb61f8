"""Encrypted uploads: create, send in chunks, complete, download, expire (docs/media.md).

The server stores ciphertext it cannot read, so all it can check is shape:
sizes, offsets, and the SHA-256 the client states at completion.

Each chunk is its own storage object (S3 cannot append); completion joins
the parts into one blob in a single streaming pass that also hashes it.
Bytes are written to storage *before* the upload's row lock is taken and
the row re-checked under it, so a slow disk or bucket never holds a
database lock (on SQLite that lock is the whole database's), and a request
that loses a race removes only the object it wrote itself.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from core.crypto.stream import ciphertext_size as stream_ciphertext_size
from core.errors import N_, ErrorCode, InvalidRequest, NotFound, RoundsError
from media import storage
from media.models import Upload, UploadPart, UploadState
from rooms import access


class UploadTooLarge(RoundsError):
    code = ErrorCode.UPLOAD_TOO_LARGE
    default_message = N_("Too large.")


class WrongOffset(RoundsError):
    code = ErrorCode.WRONG_OFFSET
    default_message = N_("The chunk does not start where the upload stands; resume at `received`.")


class BeyondDeclaredSize(RoundsError):
    code = ErrorCode.BEYOND_DECLARED_SIZE
    default_message = N_("The chunk goes past the size declared for this upload.")


class ChunkConflict(RoundsError):
    code = ErrorCode.CHUNK_CONFLICT
    default_message = N_("A chunk was sent again with bytes that differ from those stored.")


class UploadStateError(RoundsError):
    code = ErrorCode.UPLOAD_STATE
    default_message = N_("The upload is not in a state that allows this.")


class UploadIncomplete(RoundsError):
    code = ErrorCode.UPLOAD_INCOMPLETE
    default_message = N_("Not every byte of the upload has been received.")


class HashMismatch(RoundsError):
    code = ErrorCode.HASH_MISMATCH
    default_message = N_(
        "The SHA-256 of the bytes received differs; the upload failed, start again."
    )


class UploadsRateLimited(RoundsError):
    code = ErrorCode.RATE_LIMITED
    default_message = N_("Too many uploads in the last hour.")


SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def upload_data(upload: Upload) -> dict[str, Any]:
    return {
        "id": str(upload.pk),
        "department": upload.department_id,
        "size": upload.size,
        "received": upload.received,
        "state": upload.state,
        "sha256": upload.sha256 or None,
        "chunk_max": settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES,
        "expires_at": upload.expires_at.isoformat(),
    }


def _state_error(upload: Upload) -> UploadStateError:
    return UploadStateError(
        N_("The upload is %(state)s."),
        params={"state": upload.state},
        data={"state": upload.state, "sha256": upload.sha256 or None},
    )


def _parse_id(upload_id: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(upload_id))
    except ValueError as exc:
        raise NotFound(N_("Upload not found.")) from exc


def own_upload(actor: User, upload_id: Any) -> Upload:
    """The caller's own upload; anybody else's is as missing as an unknown id."""
    access.check_authenticated(actor)
    upload = Upload.objects.filter(pk=_parse_id(upload_id), owner_id=actor.pk).first()
    if upload is None:
        raise NotFound(N_("Upload not found."))
    return upload


# --- Create ---------------------------------------------------------------------------


def check_create_upload(actor: User, department_id: int, size: int) -> dict[str, Any]:
    access.access_upload_department(actor, department_id)
    if size < 1:
        raise InvalidRequest(N_("An upload has at least one byte."), data={"size": size})
    # The setting is the largest photo; what arrives is its ciphertext, a little larger.
    largest = stream_ciphertext_size(settings.ROUNDS_UPLOAD_MAX_BYTES)
    if size > largest:
        raise UploadTooLarge(
            N_("The upload is larger than the server accepts."),
            data={"max": largest, "max_file": settings.ROUNDS_UPLOAD_MAX_BYTES},
        )
    return do_create_upload(actor, department_id, size)


def do_create_upload(actor: User, department_id: int, size: int) -> dict[str, Any]:
    """Assumes the actor is a member. Counts the last hour's uploads under the user's row
    lock, so two simultaneous creations cannot both take the last place."""
    now = timezone.now()
    with transaction.atomic():
        list(get_user_model().objects.select_for_update().filter(pk=actor.pk).values("pk"))
        recent = Upload.objects.filter(owner_id=actor.pk, created_at__gt=now - timedelta(hours=1))
        if recent.count() >= settings.ROUNDS_UPLOADS_PER_HOUR:
            raise UploadsRateLimited(data={"per_hour": settings.ROUNDS_UPLOADS_PER_HOUR})
        upload = Upload.objects.create(
            owner_id=actor.pk,
            department_id=department_id,
            size=size,
            expires_at=now + timedelta(hours=settings.ROUNDS_UPLOAD_TTL_HOURS),
        )
        record(
            "upload.created",
            actor=actor,
            department_id=department_id,
            object_type="upload",
            object_id=upload.pk,
            data={"size": size},
        )
    return upload_data(upload)


def check_upload_status(actor: User, upload_id: Any) -> dict[str, Any]:
    """Where an upload stands: what a client asks after a dropped connection."""
    return upload_data(own_upload(actor, upload_id))


# --- Chunks ---------------------------------------------------------------------------


def check_chunk_length(length: int | None) -> int:
    """A chunk's Content-Length, or refuse it: its body is then never read.

    Also called from the headers alone, before Django reads the body (media/views.py).
    """
    if length is None or length < 1:
        raise InvalidRequest(N_("A chunk has at least one byte and a Content-Length."))
    chunk_max = settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES
    if length > chunk_max:
        raise UploadTooLarge(
            N_("The chunk is larger than chunk_max."), data={"chunk_max": chunk_max}
        )
    return length


def check_put_chunk(
    actor: User, upload_id: Any, offset: int, length: int | None, body: storage.Readable
) -> dict[str, Any]:
    """Append the chunk at `offset`, or confirm a chunk sent again.

    Args:
        length: the request's Content-Length; the body is read in blocks, never whole.
    """
    # The request's own numbers first: an oversized chunk costs no database read.
    length = check_chunk_length(length)
    if offset < 0:
        raise InvalidRequest(N_("The offset is not negative."), data={"offset": offset})
    upload = own_upload(actor, upload_id)
    if upload.state != UploadState.RECEIVING:
        raise _state_error(upload)
    if offset + length > upload.size:
        raise BeyondDeclaredSize(data={"size": upload.size, "received": upload.received})
    if offset + length <= upload.received:
        return check_resent_chunk(upload, offset, length, body)
    if offset != upload.received:
        raise WrongOffset(data={"received": upload.received})
    return do_append_chunk(upload, offset, length, body)


def stored_range(upload: Upload, start: int, length: int) -> Any:
    """The bytes [start, start + length) of an upload still in parts, as blocks."""
    end = start + length
    parts = UploadPart.objects.filter(upload=upload, offset__lt=end).order_by("offset")
    for part in parts:
        if part.offset + part.size <= start:
            continue
        lo = max(start, part.offset) - part.offset
        hi = min(end, part.offset + part.size) - part.offset
        yield from storage.iter_range(part.storage_name, lo, hi - lo)


def check_resent_chunk(
    upload: Upload, offset: int, length: int, body: storage.Readable
) -> dict[str, Any]:
    """A retry is safe: the same bytes change nothing; other bytes are a conflict."""
    try:
        same = storage.same_bytes(
            storage.body_blocks(body, length), stored_range(upload, offset, length)
        )
    except storage.ShortBody as exc:
        raise InvalidRequest(N_("The body is shorter than its Content-Length.")) from exc
    except storage.BlobMissing as exc:
        raise _state_error(Upload.objects.get(pk=upload.pk)) from exc
    if not same:
        raise ChunkConflict(data={"offset": offset, "received": upload.received})
    return {"received": upload.received}


def do_append_chunk(
    upload: Upload, offset: int, length: int, body: storage.Readable
) -> dict[str, Any]:
    """Store the chunk as a part, then record it under the upload's row lock.

    Assumes the owner is the caller and `offset == received` was seen unlocked;
    both are checked again under the lock. Nothing is left stored on refusal.
    """
    try:
        name, _ = storage.save_stream(
            storage.part_name(upload.pk, offset), storage.body_blocks(body, length)
        )
    except storage.ShortBody as exc:
        raise InvalidRequest(N_("The body is shorter than its Content-Length.")) from exc
    try:
        with transaction.atomic():
            locked = Upload.objects.select_for_update().get(pk=upload.pk)
            if locked.state != UploadState.RECEIVING:
                raise _state_error(locked)
            if locked.received != offset:
                raise WrongOffset(data={"received": locked.received})
            UploadPart.objects.create(upload=locked, offset=offset, size=length, storage_name=name)
            locked.received = offset + length
            locked.save(update_fields=["received"])
    except BaseException:
        storage.delete_quietly([name])
        raise
    return {"received": locked.received}


# --- Complete -------------------------------------------------------------------------


def check_complete_upload(actor: User, upload_id: Any, sha256: str) -> dict[str, Any]:
    upload = own_upload(actor, upload_id)
    sha256 = sha256.strip().lower()
    if not SHA256_HEX.match(sha256):
        raise InvalidRequest(N_("sha256 is 64 hexadecimal characters."))
    if upload.state != UploadState.RECEIVING:
        raise _state_error(upload)
    if upload.received < upload.size:
        raise UploadIncomplete(data={"received": upload.received, "size": upload.size})
    return do_complete_upload(actor, upload, sha256)


def _part_blocks(parts: list[UploadPart]) -> Any:
    for part in parts:
        yield from storage.iter_range(part.storage_name, 0, part.size)


def do_complete_upload(actor: User, upload: Upload, sha256: str) -> dict[str, Any]:
    """Join the parts into one blob, hashing in the same pass, then settle the state.

    Assumes the caller owns the upload and saw it fully received; the state
    is checked again under the row lock, and a completion that lost a race
    removes the blob it wrote. On a hash mismatch the upload is `failed`
    (committed, audited) and its parts and blob removed before the refusal.
    """
    parts = list(UploadPart.objects.filter(upload=upload).order_by("offset"))
    try:
        name, count, digest = storage.save_hashed(storage.blob_name(upload.pk), _part_blocks(parts))
    except storage.BlobMissing as exc:
        raise _state_error(Upload.objects.get(pk=upload.pk)) from exc
    ok = digest == sha256 and count == upload.size
    try:
        with transaction.atomic():
            locked = Upload.objects.select_for_update().get(pk=upload.pk)
            if locked.state != UploadState.RECEIVING:
                raise _state_error(locked)
            UploadPart.objects.filter(upload=locked).delete()
            if ok:
                locked.state = UploadState.COMPLETE
                locked.sha256 = digest
                locked.storage_name = name
                locked.completed_at = timezone.now()
            else:
                locked.state = UploadState.FAILED
            locked.save(update_fields=["state", "sha256", "storage_name", "completed_at"])
            record(
                "upload.completed" if ok else "upload.failed",
                actor=actor,
                department_id=locked.department_id,
                object_type="upload",
                object_id=locked.pk,
                data={"size": locked.size, "parts": len(parts)},
            )
    except BaseException:
        storage.delete_quietly([name])
        raise
    storage.delete_quietly([part.storage_name for part in parts] + ([] if ok else [name]))
    if not ok:
        raise HashMismatch(data={"state": UploadState.FAILED.value, "sha256": digest})
    return upload_data(locked)


# --- Download -------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    """What the edge streams: `length` bytes of `storage_name` from `start`."""

    upload_id: str
    storage_name: str
    size: int
    sha256: str
    start: int
    length: int
    partial: bool


def check_download(
    actor: User,
    upload_id: Any,
    range_header: str | None = None,
    case_id: int | None = None,
) -> Download:
    """Authorise a download and audit it (committed) before any byte leaves.

    Compliance officers name one of their open cases that covers the photo's
    message; the photos of a redacted message are for them only (members get
    not_found).
    """
    upload = access.access_attached_upload(actor, _parse_id(upload_id), case_id)
    byte_range = storage.parse_range(range_header, upload.size)
    start, end = byte_range or (0, upload.size - 1)
    download = Download(
        upload_id=str(upload.pk),
        storage_name=upload.storage_name,
        size=upload.size,
        sha256=upload.sha256,
        start=start,
        length=end - start + 1,
        partial=byte_range is not None,
    )
    do_record_download(actor, upload, download)
    return download


def do_record_download(actor: User, upload: Upload, download: Download) -> None:
    """The audit entry of a download; under a case, it is also the case's release entry."""
    data: dict[str, Any] = {
        "upload": download.upload_id,
        "range": [download.start, download.start + download.length - 1]
        if download.partial
        else None,
        "bytes": download.length,
    }
    # Set by access_attached_upload: the case a compliance officer reads it under.
    case = getattr(upload, "case", None)
    if case is not None:
        data |= {"compliance": True, "case": case.pk, "reference": case.reference}
    with transaction.atomic():
        record(
            "attachment.downloaded",
            actor=actor,
            department_id=upload.department_id,
            object_type="upload",
            object_id=upload.pk,
            data=data,
        )


# --- Expiry ---------------------------------------------------------------------------

EXPIRABLE = (UploadState.RECEIVING, UploadState.COMPLETE, UploadState.FAILED)


def expire_orphans(now: Any = None) -> int:
    """Expire every upload no message took within its time to live. Returns how many."""
    now = now or timezone.now()
    due = Upload.objects.filter(
        state__in=EXPIRABLE,
        attached_at__isnull=True,
        expires_at__lt=now,
        attachment__isnull=True,
        thumbnail_of__isnull=True,
    ).values_list("pk", flat=True)
    return sum(do_expire_upload(pk, now) for pk in list(due))


def do_expire_upload(upload_id: Any, now: Any) -> bool:
    """Mark one orphan expired (audited), then remove its stored objects.

    Re-checked under the row lock: a message may have attached it meanwhile.
    """
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if (
            upload is None
            or upload.state not in EXPIRABLE
            or upload.attached_at is not None
            or upload.expires_at >= now
        ):
            return False
        names = list(upload.parts.values_list("storage_name", flat=True))
        names.append(upload.storage_name)
        previous = upload.state
        upload.parts.all().delete()
        upload.state = UploadState.EXPIRED
        upload.storage_name = ""
        upload.save(update_fields=["state", "storage_name"])
        record(
            "upload.expired",
            department_id=upload.department_id,
            object_type="upload",
            object_id=upload.pk,
            data={"size": upload.size, "received": upload.received, "was": previous},
        )
    storage.delete_quietly(names)
    return True
