"""The two upload endpoints that move raw bytes: chunk PUT and content GET.

Plain Django views, because a chunk must be read from the request in
blocks (never `request.body`) and content streamed out; they authenticate
with the API's own RoundsAuth (bearer token, or session + CSRF on unsafe
methods) and answer errors in the API's shape. Routed in rounds/urls.py
before the `api/` include.
"""

import functools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from core.errors import N_, ErrorCode, InvalidRequest, NotAuthenticated, RoundsError
from media import storage, uploads
from rounds.http import AuthedRequest, RoundsAuth, compliance_case
from rounds.i18n import error_body, scope_language
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
            # string themselves.
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


CHUNK_PATH = re.compile(r"^/api/uploads/[^/]+/chunks$")
# (scope, receive, send): Django's handler and Channels' router type them apart.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def refuse_chunks_early(app: ASGIApp) -> ASGIApp:
    """Refuse a chunk PUT on its headers alone, before Django reads its body.

    Django's ASGI handler reads a request's whole body (to a temporary file past
    2.5 MB) before any view runs, so a 300 MiB chunk without credentials was read
    in full to be answered 401. A chunk with no credentials at all, or a
    Content-Length over the chunk limit, is answered here instead; the view checks
    both again (it looks the token or session up). Daphne has buffered the body
    before the application runs: the proxy in front bounds it (docs/operations.md).
    """

    async def guard(scope: Any, receive: Any, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PUT" and CHUNK_PATH.match(scope["path"]):
            try:
                _check_chunk_headers(scope["headers"])
            except RoundsError as error:
                await _send_error(scope, send, error)
                return
        await app(scope, receive, send)

    return guard


def _check_chunk_headers(headers: list[tuple[bytes, bytes]]) -> None:
    named: dict[bytes, bytes] = {name.lower(): value for name, value in headers}
    session_cookie = f"{settings.SESSION_COOKIE_NAME}=".encode()
    if b"authorization" not in named and session_cookie not in named.get(b"cookie", b""):
        raise NotAuthenticated()
    length = named.get(b"content-length", b"").decode("latin-1")
    # More digits than any chunk limit has: int() is never asked to read 5,000 of them.
    if len(length) > len(str(settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES)):
        length = str(settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES + 1)
    uploads.check_chunk_length(_int_or_none(length))


async def _send_error(scope: Any, send: Send, error: RoundsError) -> None:
    with translation.override(scope_language(scope)):
        body = json.dumps(error_body(error)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {
            "type": "http.response.start",
            "status": error.http_status,
            "headers": headers,
            "trailers": False,
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


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
    download = uploads.check_download(
        request.user, upload_id, request.headers.get("Range"), compliance_case(request)
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
