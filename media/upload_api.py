"""Uploads over the JSON API (docs/media.md): create, status, complete.

Chunks and content move raw bytes and live in media/views.py.
"""

from typing import Any

from ninja import Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict

from core.api_schemas.common import answers
from core.api_schemas.media import Upload
from media import uploads
from rounds.http import AuthedRequest

router = Router(tags=["uploads"])


class UploadIn(Schema):
    model_config = ConfigDict(extra="forbid")

    department: int
    size: int


class CompleteIn(Schema):
    model_config = ConfigDict(extra="forbid")

    sha256: str


@router.post("", response=answers(Upload, 201))
def create_upload(request: AuthedRequest, body: UploadIn) -> Status[dict[str, Any]]:
    return Status(201, uploads.check_create_upload(request.user, body.department, body.size))


@router.get("/{upload_id}", response=answers(Upload))
def upload_status(request: AuthedRequest, upload_id: str) -> dict[str, Any]:
    return uploads.check_upload_status(request.user, upload_id)


@router.post("/{upload_id}/complete", response=answers(Upload))
def complete_upload(request: AuthedRequest, upload_id: str, body: CompleteIn) -> dict[str, Any]:
    return uploads.check_complete_upload(request.user, upload_id, body.sha256)
