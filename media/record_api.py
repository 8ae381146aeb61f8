"""Photos sent to the patient record (docs/interop-photos.md): parse, call one action, reply.

Registered under /api/library (`api.add_router("/library", record_router)` in
rounds/http.py): `GET` and `POST /api/library/photos/{attachment_id}/record`.
"""

from typing import Any

from ninja import Router
from ninja.responses import Status

from core.api_schemas.common import answers
from core.api_schemas.record import PhotoExportIn, PhotoExportOut, PhotoRecord
from media import record_export
from rounds.http import AuthedRequest

router = Router(tags=["library"])

RECORD = "photos/{attachment_id}/record"


@router.get(RECORD, response=answers(PhotoRecord))
def photo_record(request: AuthedRequest, attachment_id: int) -> dict[str, Any]:
    return record_export.check_photo_record(request.user, attachment_id)


@router.post(RECORD, response=answers(PhotoExportOut, 201))
def record_sent(
    request: AuthedRequest, attachment_id: int, body: PhotoExportIn
) -> Status[dict[str, Any]]:
    return Status(
        201,
        record_export.check_record_export(
            request.user,
            attachment_id,
            server=body.server,
            document_reference=body.document_reference,
            binary=body.binary,
        ),
    )
