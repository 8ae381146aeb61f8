"""Uploads and photo posts: an upload client per persona, uploads made complete (or attached)
straight in the ORM (the upload endpoints have their own tests), photo refs, and posts
whose published frames are captured and validated against core/outbound.py."""

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.test import Client, TestCase
from django.utils import timezone

from chat.actions import check_post_message
from chat.events import collecting_publications
from core import outbound
from tests.support.api import issue_token
from tests.support.hospital import Hospital, sealed


def complete_upload(owner: Any, department: Any, *, state: str = "complete", size: int = 4096):
    """An upload of `owner` for `department`, as the upload endpoints leave it."""
    from media.models import Upload

    now = timezone.now()
    return Upload.objects.create(
        owner=owner,
        department_id=getattr(department, "pk", department),
        size=size,
        received=size if state != "receiving" else 0,
        state=state,
        sha256="ab" * 32 if state != "receiving" else "",
        completed_at=now if state != "receiving" else None,
        expires_at=now + timedelta(hours=24),
    )


def photo(
    h: Hospital,
    who: str,
    department: Any = None,
    *,
    keywords: tuple[str, ...] = ("hand",),
    consent: str = "care",
    captured_at: str | None = None,
    annotates: int | None = None,
    thumbnail: bool = True,
) -> dict[str, Any]:
    """A ref to a fresh complete photo upload (and thumbnail) of `who`."""
    department = department or h.plastic
    user = h.user(who)
    return {
        "upload": str(complete_upload(user, department).pk),
        "thumbnail": str(complete_upload(user, department).pk) if thumbnail else None,
        "keywords": list(keywords),
        "consent": consent,
        "captured_at": captured_at,
        "annotates": annotates,
    }


def published_frames(callbacks: list) -> list[dict[str, Any]]:
    """Run captured on-commit callbacks, keep what they publish, validate each frame."""
    _, published = collecting_publications(lambda: [callback() for callback in callbacks])
    frames = [json.loads(message["frame"]) for _, message in published if "frame" in message]
    for frame in frames:
        outbound.validate_outbound(frame)
    return frames


def post_photos(
    h: Hospital,
    who: str,
    refs: list[dict[str, Any]],
    *,
    thread: Any = None,
    cmid: str | None = None,
    envelope: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Post through the action: (ack, frames published on commit, validated)."""
    thread = thread or h.thread
    cmid = cmid or uuid.uuid4().hex
    envelope = envelope or sealed(h, who, thread, cmid, b'{"type":"photos"}')
    with TestCase.captureOnCommitCallbacks() as callbacks:
        ack = check_post_message(h.user(who), thread.pk, cmid, envelope, refs)
    return ack, published_frames(callbacks)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class UploadClient:
    """One persona's bearer-token client for /api/uploads."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.client = Client()
        self.auth = {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user)}"}

    def create(self, department: Any, size: int):
        body = {"department": getattr(department, "pk", department), "size": size}
        return self.client.post("/api/uploads", body, content_type="application/json", **self.auth)

    def status(self, upload_id: str):
        return self.client.get(f"/api/uploads/{upload_id}", **self.auth)

    def put(self, upload_id: str, offset: Any, data: bytes):
        return self.client.put(
            f"/api/uploads/{upload_id}/chunks?offset={offset}",
            data,
            content_type="application/octet-stream",
            **self.auth,
        )

    def complete(self, upload_id: str, digest: str):
        return self.client.post(
            f"/api/uploads/{upload_id}/complete",
            {"sha256": digest},
            content_type="application/json",
            **self.auth,
        )

    def content(
        self,
        upload_id: str,
        range_header: str | None = None,
        case: str | int | None = None,
        **query: str,
    ):
        """A download; `case` goes in the X-Rounds-Case header, `query` in the URL."""
        extra = dict(self.auth)
        if range_header is not None:
            extra["HTTP_RANGE"] = range_header
        if case is not None:
            extra["HTTP_X_ROUNDS_CASE"] = str(case)
        return self.client.get(f"/api/uploads/{upload_id}/content", query, **extra)

    def send(self, department: Any, data: bytes, chunk: int = 1 << 20) -> str:
        """Create, send in chunks and complete: the id of a complete upload."""
        response = self.create(department, len(data))
        assert response.status_code == 201, response.content
        upload_id = response.json()["id"]
        for offset in range(0, len(data), chunk):
            put = self.put(upload_id, offset, data[offset : offset + chunk])
            assert put.status_code == 200, put.content
        done = self.complete(upload_id, sha(data))
        assert done.status_code == 200, done.content
        return upload_id


def attach(hospital: Any, upload_id: str, thumbnail_id: str | None = None, *, thread=None):
    """Reference complete uploads from a message, as message.post will: straight in the ORM.

    The message row carries a dummy envelope; only the attachment matters here.
    """
    from chat.models import Message
    from media.models import Attachment, Upload, UploadState

    thread = thread or hospital.thread
    now = timezone.now()
    upload = Upload.objects.get(pk=upload_id)
    thread.last_seq += 1
    thread.save(update_fields=["last_seq"])
    message = Message.objects.create(
        thread=thread,
        seq=thread.last_seq,
        sender=upload.owner,
        client_msg_id=uuid.uuid4().hex,
        header={},
        ciphertext="x",
        body_hash="0" * 64,
        created_at=now,
    )
    ids = [upload_id] + ([thumbnail_id] if thumbnail_id else [])
    Upload.objects.filter(pk__in=ids).update(state=UploadState.ATTACHED, attached_at=now)
    return Attachment.objects.create(
        message=message,
        position=0,
        upload_id=upload_id,
        thumbnail_id=thumbnail_id,
        department_id=thread.department_id,
        thread=thread,
        patient_id=thread.patient_id,
        sender=upload.owner,
        captured_at=now,
        consent="care",
        created_at=now,
    )
