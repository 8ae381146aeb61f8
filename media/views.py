"""The two upload endpoints that move raw bytes: chunk PUT and content GET.

Plain Django views, because a chunk must be read from the request in
blocks (never `request.body`) and content streamed out; they authenticate
with the API's own RoundsAuth (bearer token, or session + CSRF on unsafe
methods) and answer errors in the API's shape. Routed in rounds/urls.py
before the `api/` include.
"""

import functools
from collections.abc import Callable
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import N_, ErrorCode, InvalidRequest, NotAuthenticated, RoundsError
from media import storage, uploads
from rounds.http import AuthedRequest, RoundsAuth
from rounds.i18n import error_body
from rounds.streaming import piece_by_piece
from rounds.text import check_storable

_auth = RoundsAuth()


def error_response(error: RoundsError) -> JsonResponse:
    response = JsonResponse(error_body(error), status=error.http_status)
    if error.code == ErrorCode.RANGE_NOT_SATISFIABLE:
        response["Content-Range"] = f"bytes */{error.data['size']}"
    return response


def api_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Authenticate like the JSON API and turn typed errors into its JSON answers.

    CSRF is exempt at the middleware because RoundsAuth checks it itself for
    session logins, and a bearer token needs none.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            if _auth(request) is None:
                return error_response(NotAuthenticated())
            # The JSON API's parser does this for its routes; these two read the query
            # string themselves, and a compliance case and reason go to the audit trail.
            for key, values in request.GET.lists():
                check_storable({key: values[0] if len(values) == 1 else values})
            return view(request, *args, **kwargs)
        except RoundsError as error:
            return error_response(error)

    return csrf_exempt(wrapper)


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw not in (None, "") else None
    except ValueError:
        return None


@require_http_methods(["PUT"])
@api_view
def put_chunk(request: AuthedRequest, upload_id: str) -> HttpResponse:
    offset = _int_or_none(request.GET.get("offset"))
    if offset is None:
        raise InvalidRequest(N_("offset is a whole number of bytes."))
    length = _int_or_none(request.META.get("CONTENT_LENGTH"))
    return JsonResponse(uploads.check_put_chunk(request.user, upload_id, offset, length, request))


@require_http_methods(["GET"])
@api_view
def content(request: AuthedRequest, upload_id: str) -> StreamingHttpResponse:
    case = request.GET.get("case")
    case_id = _int_or_none(case)
    if case not in (None, "") and case_id is None:
        raise InvalidRequest(N_("case is the id of one of your open cases."))
    download = uploads.check_download(
        request.user, upload_id, request.headers.get("Range"), case_id
    )
    blocks = storage.iter_range(download.storage_name, download.start, download.length)
    # Under ASGI a sync iterator would be read into a list first: the whole blob.
    streamed = (
        piece_by_piece(blocks, thread_sensitive=False)  # storage I/O, no database
        if isinstance(request, ASGIRequest)
        else blocks
    )
    response = StreamingHttpResponse(
        streamed, status=206 if download.partial else 200, content_type="application/octet-stream"
    )
    response["Content-Length"] = str(download.length)
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = f'"{download.sha256}"'
    response["Cache-Control"] = "private, no-store"
    if download.partial:
        last = download.start + download.length - 1
        response["Content-Range"] = f"bytes {download.start}-{last}/{download.size}"
    return response
