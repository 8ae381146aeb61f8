"""Issue 17's upload findings: a Range of 5,000-digit numbers, and a huge chunk PUT read in
full before authentication.

A chunk is now refused on its headers before Django reads its body (no credentials:
401; a Content-Length over the chunk limit: 413), by the ASGI guard in front of
Django (media/views.py refuse_chunks_early); the view checks the length before it
reads the upload too. What daphne buffers before the application runs is bounded by
the proxy in front (docs/operations.md, "Request bodies").
"""

import json
import uuid

import pytest
from channels.testing import HttpCommunicator

from media.views import refuse_chunks_early
from tests.support.api import assert_refused
from tests.support.uploads import attach

DATA = bytes(range(256)) * 16  # 4,096 bytes
HUGE = "9" * 5000


@pytest.fixture
def photo(hospital, uploader, blob_store):
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA)
    attach(hospital, upload_id)
    return bob, upload_id


# --- Range ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        f"bytes={HUGE}-",
        f"bytes=0-{HUGE}",
        f"bytes=-{HUGE}",
        f"bytes={HUGE}-{HUGE}",
        "bytes=1" + "0" * 18 + "-",
    ],
)
def test_a_range_of_enormous_numbers_is_416_never_a_500(photo, header):
    bob, upload_id = photo
    response = bob.content(upload_id, header)
    body = assert_refused(response, 416, "range_not_satisfiable")
    assert body["data"] == {"size": len(DATA)}
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


def test_eighteen_digits_are_still_read(photo):
    bob, upload_id = photo
    response = bob.content(upload_id, "bytes=0-" + "9" * 18)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-{len(DATA) - 1}/{len(DATA)}"


# --- Chunks: the view -------------------------------------------------------------------


@pytest.mark.django_db
def test_an_oversized_chunk_is_refused_before_its_upload_is_read(hospital, settings, uploader):
    """413 even for an upload that does not exist: the length is checked first."""
    settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES = 1024
    response = uploader(hospital.surgeon_bob).put(str(uuid.uuid4()), 0, b"x" * 1025)
    assert assert_refused(response, 413, "upload_too_large")["data"] == {"chunk_max": 1024}


@pytest.mark.django_db
def test_an_offset_of_5000_digits_is_a_typed_400(hospital, uploader):
    """int() refuses past 4,300 digits with a ValueError: read as no offset at all."""
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.create(hospital.plastic, len(DATA)).json()["id"]
    assert_refused(bob.put(upload_id, HUGE, b"x"), 400, "invalid_request")


# --- Chunks: before Django reads the body -------------------------------------------------


async def never_read():
    raise AssertionError("the body was read")


async def guarded(headers: list[tuple[bytes, bytes]], path: str = "/api/uploads/u1/chunks"):
    """Run the guard around an application that must not be reached: the answer sent."""
    reached: list[bool] = []
    sent: list[dict] = []

    async def django(scope, receive, send):
        reached.append(True)

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "PUT", "path": path, "headers": headers}
    await refuse_chunks_early(django)(scope, never_read, send)
    if reached:
        return None
    return sent[0]["status"], json.loads(sent[1]["body"])


@pytest.mark.parametrize(
    "headers",
    [
        [(b"content-length", b"314572800")],  # the 300 MiB, without credentials
        [(b"content-length", b"10"), (b"cookie", b"csrftoken=abc")],
    ],
)
async def test_a_chunk_without_credentials_is_refused_unread(headers):
    status, body = await guarded(headers)
    assert (status, body["code"]) == (401, "not_authenticated")


@pytest.mark.parametrize("length", [b"314572800", HUGE.encode(), b"8388609"])
async def test_a_chunk_over_the_limit_is_refused_unread(settings, length):
    settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES = 8 * 1024 * 1024
    status, body = await guarded([(b"authorization", b"Bearer t"), (b"content-length", length)])
    assert (status, body["code"]) == (413, "upload_too_large")
    assert body["data"] == {"chunk_max": 8 * 1024 * 1024}


@pytest.mark.parametrize("length", [None, b"0", b"-5", b"ten"])
async def test_a_chunk_without_a_length_is_refused_unread(length):
    headers = [(b"cookie", b"sessionid=s; csrftoken=c")]
    if length is not None:
        headers.append((b"content-length", length))
    status, body = await guarded(headers)
    assert (status, body["code"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ([(b"authorization", b"Bearer t"), (b"content-length", b"1024")], "/api/uploads/u1/chunks"),
        ([(b"content-length", b"314572800")], "/api/uploads/u1"),  # not a chunk
    ],
)
async def test_everything_else_goes_on_to_django(headers, path):
    assert await guarded(headers, path) is None


@pytest.mark.django_db(transaction=True)
async def test_the_served_application_refuses_an_unauthenticated_chunk_on_its_headers():
    from rounds.asgi import application

    communicator = HttpCommunicator(
        application,
        "PUT",
        f"/api/uploads/{uuid.uuid4()}/chunks?offset=0",
        body=b"x" * 4096,
        headers=[(b"content-length", b"314572800"), (b"accept-language", b"fr")],
    )
    response = await communicator.get_response()
    assert response["status"] == 401
    assert json.loads(response["body"])["code"] == "not_authenticated"
