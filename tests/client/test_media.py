"""client/media.py and the photo body checks, against an in-memory upload server (no daphne).

`FakeUploads` follows docs/media.md's upload endpoints closely enough to
drop connections at chosen moments: before a chunk is stored, after it is
stored but before the answer arrives, with a 503, or in the middle of a
download. The real endpoints are exercised in tests/live/test_photos_live.py.
"""

import hashlib
import io
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from PIL import Image

from client.errors import RoundsClientError
from client.media import (
    MAX_ATTEMPTS,
    Progress,
    create_upload,
    download_blob,
    encrypt_blob,
    resume_upload,
    send_chunks,
    upload_encrypted,
)
from client.photo_sdk import check_matches_attachments, parse_photo_body
from client.photos import PhotoRefused
from client.sdk import RoundsClient
from core.crypto import b64encode
from core.crypto.stream import FileKey

Fault = Callable[[httpx.Request], httpx.Response | None]


class FakeUploads:
    def __init__(self) -> None:
        self.uploads: dict[str, dict] = {}
        self.faults: dict[int, str] = {}  # n-th chunk PUT (from 1) → fault
        self.puts = 0
        self.tamper = False
        self.cut_download_at: int | None = None
        self.downloads: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @staticmethod
    def error(status: int, code: str, **data: object) -> httpx.Response:
        return httpx.Response(status, json={"code": code, "message": code, "data": data})

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/uploads" and request.method == "POST":
            body = json.loads(request.content)
            upload_id = str(uuid.uuid4())
            self.uploads[upload_id] = {
                "id": upload_id,
                "size": body["size"],
                "data": bytearray(),
                "state": "receiving",
                "sha256": None,
            }
            return httpx.Response(
                201, json={"id": upload_id, "size": body["size"], "received": 0, "chunk_max": 4096}
            )
        match = re.fullmatch(r"/api/uploads/([^/]+)(/chunks|/complete|/content)?", path)
        assert match, path
        upload = self.uploads.get(match[1])
        if upload is None:
            return self.error(404, "not_found")
        action = match[2]
        if action is None:
            return httpx.Response(200, json={**self.public(upload)})
        if action == "/chunks":
            return self.put_chunk(request, upload)
        if action == "/complete":
            sha = json.loads(request.content)["sha256"]
            if upload["state"] != "receiving":
                return self.error(
                    409, "upload_state", state=upload["state"], sha256=upload["sha256"]
                )
            if len(upload["data"]) < upload["size"]:
                return self.error(409, "upload_incomplete", received=len(upload["data"]))
            if hashlib.sha256(upload["data"]).hexdigest() != sha:
                upload["state"] = "failed"
                return self.error(409, "hash_mismatch")
            upload.update(state="complete", sha256=sha)
            return httpx.Response(
                200, json={"id": upload["id"], "state": "complete", "sha256": sha}
            )
        return self.content(request, upload)

    @staticmethod
    def public(upload: dict) -> dict:
        return {k: v for k, v in upload.items() if k != "data"} | {"received": len(upload["data"])}

    def put_chunk(self, request: httpx.Request, upload: dict) -> httpx.Response:
        self.puts += 1
        fault = self.faults.get(self.puts)
        if fault == "refuse_connection":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "503":
            return httpx.Response(503, text="Service Unavailable")
        offset = int(request.url.params["offset"])
        data = upload["data"]
        if offset != len(data):
            return self.error(409, "wrong_offset", received=len(data))
        data.extend(request.content)
        if fault == "lose_answer":
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(200, json={"received": len(data)})

    def content(self, request: httpx.Request, upload: dict) -> httpx.Response:
        self.downloads.append(request)
        blob = bytes(upload["data"])
        if self.tamper:
            blob = blob[:-1] + bytes([blob[-1] ^ 1])
        start = 0
        if (header := request.headers.get("range")) is not None:
            start = int(header.removeprefix("bytes=").rstrip("-"))
        part = blob[start:]
        cut = self.cut_download_at
        self.cut_download_at = None

        async def body() -> AsyncIterator[bytes]:
            if cut is not None:
                yield part[:cut]
                raise httpx.ReadError("connection reset", request=request)
            yield part

        return httpx.Response(206 if start else 200, content=body())


@pytest.fixture
async def fake() -> AsyncIterator[tuple[RoundsClient, FakeUploads]]:
    server = FakeUploads()
    client = RoundsClient(
        "http://rounds.test",
        pinned_admin_fingerprint="ad" * 32,
        pinned_compliance_fingerprint="c0" * 32,
        http_transport=server.transport(),
    )
    client.token = "t"
    yield client, server
    await client.aclose()


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch):
    monkeypatch.setattr("client.media.FIRST_PAUSE", 0.0)


PLAINTEXT = bytes(range(256)) * 80  # 20 KiB: several 4 KiB chunks


async def test_an_upload_survives_every_kind_of_drop(fake):
    client, server = fake
    server.faults = {2: "refuse_connection", 3: "lose_answer", 5: "503"}
    seen: list[tuple[int, int]] = []
    with encrypt_blob(PLAINTEXT) as blob:
        progress = Progress(blob.size, callback=lambda done, total: seen.append((done, total)))
        uploaded = await upload_encrypted(client, 1, blob, progress=progress)
        assert uploaded.sha256 == blob.sha256 and uploaded.size == blob.size
    stored = server.uploads[uploaded.upload]
    assert stored["state"] == "complete"
    assert hashlib.sha256(stored["data"]).hexdigest() == uploaded.sha256
    assert seen[-1] == (blob.size, blob.size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


async def test_a_fresh_call_resumes_a_half_done_upload_where_the_server_stands(fake):
    client, server = fake
    with encrypt_blob(PLAINTEXT) as blob:
        created = await create_upload(client, 1, blob.size)
        half = await send_chunks(client, created["id"], blob, stop=blob.size // 2, chunk_size=4096)
        assert 0 < half < blob.size
        puts_before = server.puts
        uploaded = await resume_upload(client, created["id"], blob, chunk_size=4096)
    assert server.uploads[uploaded.upload]["state"] == "complete"
    # Only the missing half was sent again.
    assert server.puts - puts_before == -(-(blob.size - half) // 4096)


async def test_an_upload_gives_up_after_bounded_retries(fake):
    client, server = fake
    server.faults = dict.fromkeys(range(1, 50), "503")
    with encrypt_blob(PLAINTEXT) as blob, pytest.raises(RoundsClientError) as failed:
        await upload_encrypted(client, 1, blob)
    assert failed.value.status == 503
    assert server.puts == MAX_ATTEMPTS  # one run of retries, not retries of retries


async def download(client: RoundsClient, uploaded, key: FileKey) -> bytes:
    return await download_blob(
        client, uploaded.upload, key=key, sha256=uploaded.sha256, size=uploaded.size
    )


async def test_a_download_resumes_with_range_and_decrypts(fake):
    client, server = fake
    with encrypt_blob(PLAINTEXT) as blob:
        uploaded = await upload_encrypted(client, 1, blob)
    server.cut_download_at = 5000
    assert await download(client, uploaded, uploaded.key) == PLAINTEXT


async def test_a_download_under_a_case_names_it_in_a_header_never_in_the_url(fake):
    client, server = fake
    with encrypt_blob(PLAINTEXT) as blob:
        uploaded = await upload_encrypted(client, 1, blob)
    server.cut_download_at = 5000  # the resumed request names the case too
    got = await download_blob(
        client,
        uploaded.upload,
        key=uploaded.key,
        sha256=uploaded.sha256,
        size=uploaded.size,
        case=7,
    )
    assert got == PLAINTEXT
    assert len(server.downloads) == 2
    for request in server.downloads:
        assert request.headers["X-Rounds-Case"] == "7"
        assert not request.url.query


async def test_a_tampered_blob_is_refused_before_decrypting(fake, monkeypatch):
    client, server = fake
    with encrypt_blob(PLAINTEXT) as blob:
        uploaded = await upload_encrypted(client, 1, blob)
    server.tamper = True
    decrypted = []
    monkeypatch.setattr("client.media.decrypt_stream", lambda *a, **k: decrypted.append(a))
    with pytest.raises(RoundsClientError) as refused:
        await download(client, uploaded, uploaded.key)
    assert refused.value.code == "hash_mismatch" and decrypted == []


async def test_a_truncated_blob_is_refused(fake):
    client, server = fake
    with encrypt_blob(PLAINTEXT) as blob:
        uploaded = await upload_encrypted(client, 1, blob)
    server.uploads[uploaded.upload]["data"] = server.uploads[uploaded.upload]["data"][:-10]
    with pytest.raises(RoundsClientError) as refused:
        await download(client, uploaded, uploaded.key)
    assert refused.value.code == "hash_mismatch"


async def test_a_refused_photo_uploads_nothing(fake):
    client, server = fake
    good = io.BytesIO()
    Image.new("RGB", (64, 48)).save(good, "JPEG")
    with pytest.raises(PhotoRefused) as refused:
        await client.send_photos(
            {"id": 3, "department": 1}, [good.getvalue(), b"GIF89a not really"], keywords=["hand"]
        )
    assert refused.value.code == "unreadable_image"
    assert server.uploads == {}


# --- the body checks ----------------------------------------------------------------------


def blob_entry(upload: str) -> dict:
    return {
        "upload": upload,
        "key": b64encode(bytes(32)),
        "sha256": "ab" * 32,
        "size": 100,
        "media_type": "image/jpeg",
        "width": 1,
        "height": 1,
    }


def body(*uploads: str) -> dict:
    photos = [
        blob_entry(u)
        | {"thumbnail": blob_entry(u + "-t"), "keywords": ["hand", "burn"]}
        | {"consent": "care", "captured_at": None, "annotates": None}
        for u in uploads
    ]
    return {"type": "photos", "text": "", "photos": photos}


def seen(*uploads: str, **change: object) -> list[dict]:
    return [
        {
            "id": n,
            "upload": u,
            "thumbnail": u + "-t",
            "keywords": ["burn", "hand"],
            "consent": "care",
        }
        | change
        for n, u in enumerate(uploads, 1)
    ]


def test_the_server_visible_attachments_must_match_the_signed_body():
    signed = parse_photo_body(json.dumps(body("a", "b")).encode())
    check_matches_attachments(signed, seen("a", "b"))  # keyword order does not matter
    for listed in (
        seen("b", "a"),
        seen("a"),
        seen("a", "b", "c"),
        seen("a", "b", consent="teaching"),
        seen("a", "b", keywords=["hand"]),
        seen("a", "b", thumbnail="x"),
    ):
        with pytest.raises(RoundsClientError) as refused:
            check_matches_attachments(signed, listed)
        assert refused.value.code == "attachment_mismatch"


@pytest.mark.parametrize(
    "plaintext",
    [
        b"just a text message",
        json.dumps({"type": "text"}).encode(),
        json.dumps({"type": "photos", "photos": []}).encode(),
        json.dumps(body("a") | {"photos": [blob_entry("a") | {"thumbnail": None}]}).encode(),
        json.dumps(body("a") | {"photos": [blob_entry("a") | {"sha256": "zz"}]}).encode(),
    ],
)
def test_a_malformed_photo_body_is_refused(plaintext):
    with pytest.raises(RoundsClientError):
        parse_photo_body(plaintext)


async def test_a_library_read_under_a_case_names_it_in_a_header():
    seen: list[httpx.Request] = []

    def library(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None, "time_zone": "UTC"})

    client = RoundsClient(
        "http://rounds.test",
        pinned_admin_fingerprint="ad" * 32,
        pinned_compliance_fingerprint="c0" * 32,
        http_transport=httpx.MockTransport(library),
    )
    client.token = "t"
    try:
        await client.library(ipp="00800100", case=3)
        await client.library(ipp="00800100")
    finally:
        await client.aclose()
    assert [request.headers.get("X-Rounds-Case") for request in seen] == ["3", None]
    assert all(dict(request.url.params) == {"ipp": "00800100"} for request in seen)
    assert seen[0].headers["Authorization"] == "Bearer t"
