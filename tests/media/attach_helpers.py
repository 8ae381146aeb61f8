"""Helpers for the tests of photo posts and the library: complete uploads made in the ORM
(the upload endpoints have their own tests), photo refs, and posts whose published
frames are captured and validated against core/protocol.py."""

import json
import uuid
from datetime import timedelta
from typing import Any

from django.test import TestCase
from django.utils import timezone

from chat.actions import check_post_message
from chat.events import collecting_publications
from core import protocol
from tests.support import Hospital, sealed


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
        protocol.validate_outbound(frame)
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
