"""Uploads: create, chunks, resume, retries, completion, and every refusal (docs/media.md).

Each refusal leaves nothing stored: no row changes, no object in storage.
Every test using `blob_store` runs on disk and on S3 (moto).
"""

import io

import pytest
from django.test import Client

from media.models import Upload, UploadPart, UploadState
from tests.support import PASSWORD, audit_entries
from tests.support.uploads import sha

DATA = bytes(range(256)) * 40  # 10,240 bytes


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code, body
    return body


def started(client, hospital, data: bytes = DATA) -> str:
    response = client.create(hospital.plastic, len(data))
    assert response.status_code == 201, response.content
    return response.json()["id"]


# --- Create -------------------------------------------------------------------------


def test_a_member_creates_an_upload(hospital, uploader, settings):
    response = uploader(hospital.nurse_alice).create(hospital.plastic, 1234)
    assert response.status_code == 201
    body = response.json()
    assert body["department"] == hospital.plastic.pk
    assert (body["size"], body["received"], body["state"]) == (1234, 0, "receiving")
    assert body["chunk_max"] == settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES
    assert body["expires_at"]
    [entry] = audit_entries("upload.created")
    assert entry.object_id == body["id"]
    assert entry.data == {"size": 1234}
    assert entry.actor_id == hospital.nurse_alice.pk


@pytest.mark.parametrize("who", ["intern_erin", "nurse_ines", "compliance_dan"])
def test_a_non_member_cannot_upload_for_a_department(hospital, uploader, who):
    refused = uploader(hospital.user(who)).create(hospital.plastic, 100)
    missing = uploader(hospital.user(who)).create(999999, 100)
    assert error(refused, 404, "not_found") == error(missing, 404, "not_found")
    assert not Upload.objects.exists()
    assert not audit_entries("upload.created")


def test_an_upload_over_the_maximum_is_refused(hospital, uploader, settings):
    settings.ROUNDS_UPLOAD_MAX_BYTES = 1000
    # A 1000-byte file, encrypted in one chunk: prefix, header, the bytes and one tag.
    largest = 9 + 24 + 1000 + 17
    body = error(
        uploader(hospital.nurse_alice).create(hospital.plastic, largest + 1),
        413,
        "upload_too_large",
    )
    assert body["data"] == {"max": largest, "max_file": 1000}
    assert uploader(hospital.nurse_alice).create(hospital.plastic, largest).status_code == 201


@pytest.mark.parametrize("size", [0, -5])
def test_an_empty_upload_is_refused(hospital, uploader, size):
    error(uploader(hospital.nurse_alice).create(hospital.plastic, size), 400, "invalid_request")
    assert not Upload.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"department": 1},
        {"size": 5},
        {"department": "x", "size": 5},
        {"department": 1, "size": 5, "x": 1},
    ],
)
def test_a_malformed_create_is_refused(hospital, uploader, body):
    client = uploader(hospital.nurse_alice)
    response = client.client.post(
        "/api/uploads", body, content_type="application/json", **client.auth
    )
    error(response, 400, "invalid_request")
    assert not Upload.objects.exists()


def test_uploads_per_hour_are_limited(hospital, uploader, settings):
    from datetime import timedelta

    settings.ROUNDS_UPLOADS_PER_HOUR = 2
    client = uploader(hospital.nurse_alice)
    first = started(client, hospital)
    started(client, hospital)
    body = error(client.create(hospital.plastic, 10), 429, "rate_limited")
    assert body["data"] == {"per_hour": 2}
    assert Upload.objects.count() == 2
    # Someone else is not limited by Alice's uploads.
    assert uploader(hospital.surgeon_bob).create(hospital.plastic, 10).status_code == 201
    # The hour rolls: an upload older than an hour no longer counts.
    Upload.objects.filter(pk=first).update(
        created_at=Upload.objects.get(pk=first).created_at - timedelta(hours=1, seconds=1)
    )
    assert client.create(hospital.plastic, 10).status_code == 201


def test_anonymous_callers_are_refused_everywhere(hospital, uploader, blob_store):
    upload_id = started(uploader(hospital.nurse_alice), hospital)
    anonymous = Client()
    error(
        anonymous.post(
            "/api/uploads",
            {"department": hospital.plastic.pk, "size": 5},
            content_type="application/json",
        ),
        401,
        "not_authenticated",
    )
    error(anonymous.get(f"/api/uploads/{upload_id}"), 401, "not_authenticated")
    error(
        anonymous.put(
            f"/api/uploads/{upload_id}/chunks?offset=0",
            b"abc",
            content_type="application/octet-stream",
        ),
        401,
        "not_authenticated",
    )
    error(anonymous.get(f"/api/uploads/{upload_id}/content"), 401, "not_authenticated")
    bad = {"HTTP_AUTHORIZATION": "Bearer nope"}
    error(
        anonymous.put(
            f"/api/uploads/{upload_id}/chunks?offset=0",
            b"abc",
            content_type="application/octet-stream",
            **bad,
        ),
        401,
        "not_authenticated",
    )
    assert Upload.objects.get(pk=upload_id).received == 0
    assert blob_store.names() == []


def test_a_browser_session_needs_the_csrf_token_to_send_a_chunk(hospital, blob_store):
    client = Client(enforce_csrf_checks=True)
    login = client.post(
        "/api/auth/login",
        {"username": "nurse_alice", "password": PASSWORD},
        content_type="application/json",
    )
    assert login.status_code == 200
    created = client.post(
        "/api/uploads",
        {"department": hospital.plastic.pk, "size": 3},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=login.json()["csrf_token"],
    )
    assert created.status_code == 201
    path = f"/api/uploads/{created.json()['id']}/chunks?offset=0"
    refused = client.put(path, b"abc", content_type="application/octet-stream")
    error(refused, 403, "forbidden")
    assert blob_store.names() == []
    done = client.put(
        path,
        b"abc",
        content_type="application/octet-stream",
        HTTP_X_CSRFTOKEN=login.json()["csrf_token"],
    )
    assert done.status_code == 200, done.content
    assert done.json() == {"received": 3}


# --- Chunks ---------------------------------------------------------------------------


def test_chunks_in_order_then_complete(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    for offset in range(0, len(DATA), 4096):
        response = client.put(upload_id, offset, DATA[offset : offset + 4096])
        assert response.status_code == 200, response.content
        assert response.json() == {"received": min(offset + 4096, len(DATA))}
    assert len(blob_store.names()) == 3
    done = client.complete(upload_id, sha(DATA))
    assert done.status_code == 200, done.content
    body = done.json()
    assert (body["id"], body["size"], body["state"], body["sha256"]) == (
        upload_id,
        len(DATA),
        "complete",
        sha(DATA),
    )
    upload = Upload.objects.get(pk=upload_id)
    assert blob_store.names() == [upload.storage_name] == [f"blobs/{upload_id}"]
    assert not UploadPart.objects.exists()
    from media.storage import iter_range

    assert b"".join(iter_range(upload.storage_name, 0, upload.size)) == DATA
    [entry] = audit_entries("upload.completed")
    assert entry.data == {"size": len(DATA), "parts": 3}


def test_resume_after_a_dropped_connection(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    client.put(upload_id, 0, DATA[:3000])
    # The connection drops; a new device session asks where the upload stands.
    again = uploader(hospital.nurse_alice)
    status = again.status(upload_id).json()
    assert (status["received"], status["state"], status["sha256"]) == (3000, "receiving", None)
    assert again.put(upload_id, status["received"], DATA[3000:]).json() == {"received": len(DATA)}
    assert again.complete(upload_id, sha(DATA)).status_code == 200


def test_the_same_chunk_sent_again_changes_nothing(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    client.put(upload_id, 0, DATA[:4000])
    client.put(upload_id, 4000, DATA[4000:6000])
    stored = blob_store.names()
    # The ack of the first was lost: sent again, and again across both parts.
    assert client.put(upload_id, 0, DATA[:4000]).json() == {"received": 6000}
    assert client.put(upload_id, 1000, DATA[1000:5000]).json() == {"received": 6000}
    assert client.put(upload_id, 4000, DATA[4000:6000]).json() == {"received": 6000}
    assert blob_store.names() == stored
    assert UploadPart.objects.count() == 2
    assert client.put(upload_id, 6000, DATA[6000:]).json() == {"received": len(DATA)}
    assert client.complete(upload_id, sha(DATA)).status_code == 200


def test_a_chunk_sent_again_with_other_bytes_is_a_conflict(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    client.put(upload_id, 0, DATA[:4000])
    stored = blob_store.names()
    changed = bytearray(DATA[:4000])
    changed[3999] ^= 1
    body = error(client.put(upload_id, 0, bytes(changed)), 409, "chunk_conflict")
    assert body["data"] == {"offset": 0, "received": 4000}
    error(client.put(upload_id, 10, b"\x00" * 10), 409, "chunk_conflict")
    assert blob_store.names() == stored
    assert Upload.objects.get(pk=upload_id).received == 4000


@pytest.mark.parametrize("offset", [4001, 3999, 5000])
def test_a_chunk_not_at_received_is_refused(hospital, uploader, blob_store, offset):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    client.put(upload_id, 0, DATA[:4000])
    stored = blob_store.names()
    body = error(client.put(upload_id, offset, DATA[offset : offset + 100]), 409, "wrong_offset")
    assert body["data"] == {"received": 4000}
    assert blob_store.names() == stored
    assert Upload.objects.get(pk=upload_id).received == 4000


def test_a_chunk_beyond_the_declared_size_is_refused(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital, DATA[:100])
    body = error(client.put(upload_id, 0, DATA[:101]), 400, "beyond_declared_size")
    assert body["data"] == {"size": 100, "received": 0}
    client.put(upload_id, 0, DATA[:60])
    error(client.put(upload_id, 60, DATA[60:120]), 400, "beyond_declared_size")
    assert Upload.objects.get(pk=upload_id).received == 60
    assert len(blob_store.names()) == 1


def test_a_chunk_over_chunk_max_is_refused(hospital, uploader, blob_store, settings):
    settings.ROUNDS_UPLOAD_CHUNK_MAX_BYTES = 1024
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    body = error(client.put(upload_id, 0, DATA[:1025]), 413, "upload_too_large")
    assert body["data"] == {"chunk_max": 1024}
    assert blob_store.names() == []
    assert client.put(upload_id, 0, DATA[:1024]).json() == {"received": 1024}


@pytest.mark.parametrize("offset", ["", "abc", "-1", "1.5"])
def test_a_chunk_without_a_valid_offset_is_refused(hospital, uploader, blob_store, offset):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    error(client.put(upload_id, offset, DATA[:10]), 400, "invalid_request")
    assert blob_store.names() == []


def test_an_empty_chunk_is_refused(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    error(client.put(upload_id, 0, b""), 400, "invalid_request")
    assert blob_store.names() == []


def test_a_chunk_after_completion_is_refused(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = client.send(hospital.plastic, DATA)
    stored = blob_store.names()
    body = error(client.put(upload_id, 0, DATA[:10]), 409, "upload_state")
    assert body["data"] == {"state": "complete", "sha256": sha(DATA)}
    error(client.put(upload_id, len(DATA), b"x"), 409, "upload_state")
    assert blob_store.names() == stored


@pytest.mark.parametrize("who", ["surgeon_bob", "nurse_ines", "compliance_dan"])
def test_someone_elses_upload_does_not_exist(hospital, uploader, blob_store, who):
    upload_id = started(uploader(hospital.nurse_alice), hospital)
    other = uploader(hospital.user(who))
    missing = "00000000-0000-0000-0000-000000000000"
    for target in (upload_id, missing, "not-a-uuid"):
        error(other.status(target), 404, "not_found")
        error(other.put(target, 0, DATA[:10]), 404, "not_found")
        error(other.complete(target, sha(DATA)), 404, "not_found")
    assert blob_store.names() == []
    assert Upload.objects.get(pk=upload_id).received == 0


# --- Complete ---------------------------------------------------------------------------


def test_a_hash_mismatch_fails_the_upload_and_removes_its_parts(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    client.put(upload_id, 0, DATA[:5000])
    client.put(upload_id, 5000, DATA[5000:])
    body = error(client.complete(upload_id, sha(b"other bytes")), 409, "hash_mismatch")
    assert body["data"] == {"state": "failed", "sha256": sha(DATA)}
    upload = Upload.objects.get(pk=upload_id)
    assert upload.state == UploadState.FAILED
    assert (upload.sha256, upload.storage_name) == ("", "")
    assert blob_store.names() == []
    assert not UploadPart.objects.exists()
    [entry] = audit_entries("upload.failed")
    assert entry.object_id == upload_id
    # Start again: the failed upload takes nothing more.
    error(client.put(upload_id, 0, DATA[:10]), 409, "upload_state")
    error(client.complete(upload_id, sha(DATA)), 409, "upload_state")


def test_completing_a_truncated_upload_is_refused(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    client.put(upload_id, 0, DATA[:5000])
    stored = blob_store.names()
    body = error(client.complete(upload_id, sha(DATA)), 409, "upload_incomplete")
    assert body["data"] == {"received": 5000, "size": len(DATA)}
    assert Upload.objects.get(pk=upload_id).state == UploadState.RECEIVING
    assert blob_store.names() == stored


def test_completing_twice_is_refused(hospital, uploader, blob_store):
    client = uploader(hospital.nurse_alice)
    upload_id = client.send(hospital.plastic, DATA)
    body = error(client.complete(upload_id, sha(DATA)), 409, "upload_state")
    assert body["data"] == {"state": "complete", "sha256": sha(DATA)}
    assert len(audit_entries("upload.completed")) == 1
    assert blob_store.names() == [f"blobs/{upload_id}"]


@pytest.mark.parametrize("digest", ["", "abc", "g" * 64, "a" * 63])
def test_a_malformed_sha256_is_refused(hospital, uploader, blob_store, digest):
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital, DATA[:10])
    client.put(upload_id, 0, DATA[:10])
    error(client.complete(upload_id, digest), 400, "invalid_request")
    assert Upload.objects.get(pk=upload_id).state == UploadState.RECEIVING


def test_completion_streams_the_parts_in_bounded_blocks(
    hospital, uploader, blob_store, monkeypatch
):
    """The blob is joined block by block: the writer never gets all of it in one read.

    Disk storage pulls 64 KiB at a time; boto3 up to one part (8 MiB, our
    TransferConfig), so on S3 this small blob goes as one part.
    """
    from media import storage

    given: list[int] = []
    original = storage.BlockReader.read

    def spy(self, size=-1, /):
        data = original(self, size)
        given.append(len(data))
        return data

    monkeypatch.setattr(storage.BlockReader, "read", spy)
    data = DATA * 40  # 400 KiB
    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital, data)
    client.put(upload_id, 0, data)
    given.clear()
    assert client.complete(upload_id, sha(data)).status_code == 200
    assert sum(given) == len(data)
    limit = 64 * 1024 if blob_store.kind == "disk" else 8 * 1024 * 1024
    assert max(given) <= limit


def test_of_two_racing_appends_at_one_offset_only_one_is_kept(hospital, uploader, blob_store):
    """The second writer saw `received == offset` before the first committed: under the
    row lock it finds the offset taken, refuses, and removes the part it stored."""
    from media.uploads import WrongOffset, do_append_chunk

    client = uploader(hospital.nurse_alice)
    upload_id = started(client, hospital)
    stale = Upload.objects.get(pk=upload_id)  # as read by the slower request
    assert client.put(upload_id, 0, DATA[:4000]).json() == {"received": 4000}
    stored = blob_store.names()
    with pytest.raises(WrongOffset) as refused:
        do_append_chunk(stale, 0, 4000, io.BytesIO(DATA[:4000]))
    assert refused.value.data == {"received": 4000}
    assert blob_store.names() == stored
    assert UploadPart.objects.count() == 1
