"""Downloads: only attached blobs, only to members (or compliance with a case), audited
before any byte, streamed, with single byte ranges (docs/media.md)."""

import pytest

from compliance.actions import check_close_case
from media.models import Upload
from tests.support import audit_entries
from tests.support.cases import case_header, open_case
from tests.support.uploads import attach, sha

DATA = bytes(range(256)) * 40  # 10,240 bytes
THUMB = b"thumbnail-bytes" * 10


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def photo(hospital, uploader, blob_store):
    """A photo and its thumbnail sent by Bob and attached to a message in Plastic surgery."""
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA, chunk=4096)
    thumb_id = bob.send(hospital.plastic, THUMB)
    attach(hospital, upload_id, thumb_id)
    return upload_id, thumb_id


def not_found(response) -> dict:
    assert response.status_code == 404, response
    body = response.json()
    assert body["code"] == "not_found"
    return body


def test_an_upload_not_yet_attached_is_not_readable_even_by_its_owner(
    hospital, uploader, blob_store
):
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA)
    assert not_found(bob.content(upload_id)) == not_found(
        bob.content("00000000-0000-0000-0000-000000000000")
    )
    receiving = bob.create(hospital.plastic, 10).json()["id"]
    not_found(bob.content(receiving))
    not_found(bob.content("not-a-uuid"))
    assert not audit_entries("attachment.downloaded")


@pytest.mark.parametrize("who", ["surgeon_bob", "nurse_alice", "head_carol"])
def test_a_member_downloads_the_ciphertext(hospital, uploader, photo, who):
    upload_id, thumb_id = photo
    response = uploader(hospital.user(who)).content(upload_id)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(len(DATA))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{sha(DATA)}"'
    assert response["Cache-Control"] == "private, no-store"
    assert "Content-Range" not in response
    assert body_of(response) == DATA
    thumb = uploader(hospital.user(who)).content(thumb_id)
    assert thumb.status_code == 200
    assert body_of(thumb) == THUMB


def test_the_download_is_audited_before_any_byte_is_sent(hospital, uploader, photo):
    upload_id, _ = photo
    response = uploader(hospital.nurse_alice).content(upload_id)
    # Nothing of the body read yet: the entry is already committed.
    [entry] = audit_entries("attachment.downloaded")
    assert entry.actor_id == hospital.nurse_alice.pk
    assert entry.department_id == hospital.plastic.pk
    assert (entry.object_type, entry.object_id) == ("upload", upload_id)
    assert entry.data == {"upload": upload_id, "range": None, "bytes": len(DATA)}
    assert body_of(response) == DATA


@pytest.mark.parametrize("who", ["intern_erin", "nurse_ines", "head_grace", "admin_zoe"])
def test_a_non_member_gets_the_same_not_found_as_an_unknown_id(hospital, uploader, photo, who):
    upload_id, thumb_id = photo
    client = uploader(hospital.user(who))
    unknown = not_found(client.content("00000000-0000-0000-0000-000000000000"))
    assert not_found(client.content(upload_id)) == unknown
    assert not_found(client.content(thumb_id)) == unknown
    assert not_found(client.content(upload_id, "bytes=0-1")) == unknown
    assert not audit_entries("attachment.downloaded")


def test_a_removed_member_loses_access(hospital, uploader, photo):
    from rooms.actions import do_remove_member

    upload_id, _ = photo
    alice = uploader(hospital.nurse_alice)
    assert alice.content(upload_id).status_code == 200
    do_remove_member(hospital.head_carol, hospital.plastic.pk, hospital.nurse_alice.pk)
    not_found(alice.content(upload_id))


def test_compliance_names_an_open_case_that_covers_the_photo(hospital, uploader, photo):
    upload_id, thumb_id = photo
    dan = uploader(hospital.compliance_dan)
    for query in ({}, {"case": "INC-42"}, {"case": " "}):
        response = dan.content(upload_id, **query)
        assert response.status_code == 400, query
        assert response.json()["code"] == "invalid_request"
    not_found(dan.content(upload_id, case="1000000"))
    elsewhere = open_case(hospital.compliance_dan, "INC-41", department_id=hospital.vascular.pk)
    not_found(dan.content(upload_id, case=str(elsewhere.pk)))
    assert not audit_entries("attachment.downloaded")
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    response = dan.content(upload_id, "bytes=0-9", case=str(case.pk))
    assert response.status_code == 206
    [entry] = audit_entries("attachment.downloaded")
    assert entry.actor_id == hospital.compliance_dan.pk
    assert entry.data == {
        "upload": upload_id,
        "range": [0, 9],
        "bytes": 10,
        "compliance": True,
        "case": case.pk,
        "reference": case.reference,
    }
    assert body_of(response) == DATA[:10]
    assert dan.content(thumb_id, case=str(case.pk)).status_code == 200
    # A case opens attached blobs only.
    not_found(dan.content("00000000-0000-0000-0000-000000000000", case=str(case.pk)))
    check_close_case(hospital.compliance_dan, case.pk)
    closed = dan.content(upload_id, case=str(case.pk))
    assert (closed.status_code, closed.json()["code"]) == (409, "case_closed")


def test_a_case_in_the_query_string_is_refused_and_nothing_is_downloaded(hospital, uploader, photo):
    """The case goes in the X-Rounds-Case header: a URL reaches access logs."""
    upload_id, _ = photo
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    dan = uploader(hospital.compliance_dan)
    path = f"/api/uploads/{upload_id}/content"
    for headers in ({}, case_header(case)):
        refused = dan.client.get(path, {"case": str(case.pk)}, **dan.auth, **headers)
        assert refused.status_code == 400, refused
        assert refused.json()["code"] == "invalid_request"
        assert "X-Rounds-Case" in refused.json()["message"]
    assert not audit_entries("attachment.downloaded")
    assert dan.content(upload_id, case=case.pk).status_code == 200


def test_a_case_does_not_open_anything_to_a_clinician(hospital, uploader, photo):
    upload_id, _ = photo
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    ines = uploader(hospital.nurse_ines)
    refused = ines.content(upload_id, case=str(case.pk))
    unknown = ines.content("00000000-0000-0000-0000-000000000000", case=str(case.pk))
    assert refused.status_code == unknown.status_code == 403
    assert refused.json() == unknown.json()
    assert refused.json()["code"] == "forbidden"
    assert not audit_entries("attachment.downloaded")


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-199", 100, 199),
        ("bytes=10000-", 10000, len(DATA) - 1),
        ("bytes=-240", len(DATA) - 240, len(DATA) - 1),
        ("bytes=-999999", 0, len(DATA) - 1),
        ("bytes=10000-999999", 10000, len(DATA) - 1),
        ("bytes=5-5", 5, 5),
        (f"bytes={len(DATA) - 1}-", len(DATA) - 1, len(DATA) - 1),
    ],
)
def test_a_single_range_answers_206(hospital, uploader, photo, header, first, last):
    upload_id, _ = photo
    response = uploader(hospital.nurse_alice).content(upload_id, header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response["ETag"] == f'"{sha(DATA)}"'
    assert body_of(response) == DATA[first : last + 1]
    [entry] = audit_entries("attachment.downloaded")
    assert entry.data["range"] == [first, last]
    assert entry.data["bytes"] == last - first + 1


@pytest.mark.parametrize(
    "header", [f"bytes={len(DATA)}-", f"bytes={len(DATA) + 5}-99999", "bytes=-0"]
)
def test_a_range_past_the_end_is_416(hospital, uploader, photo, header):
    upload_id, _ = photo
    response = uploader(hospital.nurse_alice).content(upload_id, header)
    assert response.status_code == 416
    assert response.json()["code"] == "range_not_satisfiable"
    assert response["Content-Range"] == f"bytes */{len(DATA)}"
    assert not audit_entries("attachment.downloaded")


@pytest.mark.parametrize(
    "header", ["bytes=0-1,5-9", "bytes=9-5", "bytes=abc", "items=0-5", "bytes=-", "0-5", ""]
)
def test_several_or_malformed_ranges_get_the_whole_blob(hospital, uploader, photo, header):
    upload_id, _ = photo
    response = uploader(hospital.nurse_alice).content(upload_id, header)
    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body_of(response) == DATA


def test_every_download_is_audited(hospital, uploader, photo):
    upload_id, thumb_id = photo
    alice = uploader(hospital.nurse_alice)
    for target, header in ((upload_id, None), (upload_id, "bytes=1-2"), (thumb_id, None)):
        body_of(alice.content(target, header))
    entries = audit_entries("attachment.downloaded")
    assert [(e.object_id, e.data["range"]) for e in entries] == [
        (upload_id, None),
        (upload_id, [1, 2]),
        (thumb_id, None),
    ]


def test_failed_and_expired_uploads_are_not_readable(hospital, uploader, blob_store):
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA)
    attach(hospital, upload_id)
    for state in ("failed", "expired", "complete"):
        Upload.objects.filter(pk=upload_id).update(state=state)
        assert not_found(bob.content(upload_id))["message"]
    assert not audit_entries("attachment.downloaded")


def test_a_large_blob_streams_in_blocks(hospital, uploader, blob_store):
    data = DATA * 80  # 800 KiB: more than three 256 KiB blocks
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, data, chunk=300_000)
    attach(hospital, upload_id)
    response = bob.content(upload_id)
    blocks = list(response.streaming_content)
    assert len(blocks) >= 4
    assert max(len(b) for b in blocks) <= 256 * 1024
    assert b"".join(blocks) == data
    middle = bob.content(upload_id, "bytes=299990-600009")
    assert body_of(middle) == data[299990:600010]


@pytest.mark.django_db(transaction=True)
async def test_over_asgi_chunks_are_read_and_content_streamed_asynchronously(
    live_hospital, settings, tmp_path
):
    """Through Django's ASGI handler, as daphne serves it: the content is an async
    iterator, so Django does not first read a sync one into a list (the whole blob)."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    from tests.support import issue_token
    from tests.support.storage import disk_store

    disk_store(settings, tmp_path)
    h = live_hospital
    token = await sync_to_async(issue_token)(h.surgeon_bob)
    auth = {"Authorization": f"Bearer {token}"}
    client = AsyncClient()
    data = DATA * 60
    created = await client.post(
        "/api/uploads",
        {"department": h.plastic.pk, "size": len(data)},
        content_type="application/json",
        headers=auth,
    )
    upload_id = created.json()["id"]
    for offset in range(0, len(data), 300_000):
        put = await client.put(
            f"/api/uploads/{upload_id}/chunks?offset={offset}",
            data[offset : offset + 300_000],
            content_type="application/octet-stream",
            headers=auth,
        )
        assert put.status_code == 200, put.content
    done = await client.post(
        f"/api/uploads/{upload_id}/complete",
        {"sha256": sha(data)},
        content_type="application/json",
        headers=auth,
    )
    assert done.status_code == 200, done.content
    await sync_to_async(attach)(h, upload_id)
    response = await client.get(f"/api/uploads/{upload_id}/content", headers=auth)
    assert response.status_code == 200
    assert hasattr(response.streaming_content, "__anext__")
    blocks = [block async for block in response.streaming_content]
    assert len(blocks) > 1
    assert b"".join(blocks) == data
