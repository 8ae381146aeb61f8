"""The photos of a redacted message: hidden from members in the library and at download,
retained for compliance, who still reach them under an open case that covers them."""

from typing import Any
from urllib.parse import urlencode

import pytest

from chat.actions import check_history
from chat.redaction import check_redact_message
from media.models import Attachment
from tests.support import Api, Hospital, audit_entries
from tests.support.cases import case_header, open_case
from tests.support.uploads import attach, photo, post_photos

pytestmark = pytest.mark.django_db

DATA = bytes(range(256)) * 8
THUMB = b"thumbnail" * 20


def get(user: Any, path: str, case: Any = None, **params: Any) -> Any:
    """A library read; `case` in its X-Rounds-Case header, `params` in the URL."""
    headers = {} if case is None else case_header(case)
    return Api(user).get(f"/api/library/{path}?{urlencode(params, doseq=True)}", **headers)


def library_messages(user: Any, **params: Any) -> list[int]:
    response = get(user, "photos", **params)
    assert response.status_code == 200, response.content
    return [item["message"]["id"] for item in response.json()["items"]]


@pytest.fixture
def posts(hospital: Hospital) -> dict[str, int]:
    """Bob posts two photos, Alice one; Bob then deletes (redacts) his post."""
    h = hospital
    bobs, _ = post_photos(h, "surgeon_bob", [photo(h, "surgeon_bob") for _ in range(2)])
    alices, _ = post_photos(h, "nurse_alice", [photo(h, "nurse_alice")])
    check_redact_message(h.surgeon_bob, bobs["message_id"], "wrong patient")
    return {"bob": bobs["message_id"], "alice": alices["message_id"]}


def test_the_library_hides_a_redacted_messages_photos_from_members(hospital, posts):
    h = hospital
    for who in (h.surgeon_bob, h.nurse_alice, h.head_carol):
        assert library_messages(who) == [posts["alice"]]
        assert library_messages(who, sender=h.surgeon_bob.pk) == []
        sequences = get(who, f"patients/{h.patient.pk}/sequences").json()["sequences"]
        assert [s["message"] for s in sequences] == [posts["alice"]]
        stats = get(who, f"departments/{h.plastic.pk}/stats").json()
        assert (stats["photos"], stats["sequences"]) == (1, 1)


def lea_case(h: Hospital) -> dict[str, int]:
    """The `case` (sent as its header) of compliance_dan's case on Léa, these posts' patient."""
    return {"case": open_case(h.compliance_dan, patient_id=h.patient.pk).pk}


def test_compliance_still_finds_them_with_their_ciphertext(hospital, posts):
    h = hospital
    case = lea_case(h)
    response = get(h.compliance_dan, "photos", **case)
    assert response.status_code == 200
    items = response.json()["items"]
    assert sorted({item["message"]["id"] for item in items}) == sorted(posts.values())
    redacted = [item for item in items if item["message"]["id"] == posts["bob"]]
    assert len(redacted) == 2
    for item in redacted:
        message = item["message"]
        assert message["envelope"]["ciphertext"]
        assert sorted(a["id"] for a in message["attachments"]) == sorted(i["id"] for i in redacted)
        assert message["redacted"]["by"] == h.surgeon_bob.pk
    kept = next(item for item in items if item["message"]["id"] == posts["alice"])
    assert kept["message"]["redacted"] is None
    response = get(h.compliance_dan, f"patients/{h.patient.pk}/sequences", **case)
    sequences = response.json()["sequences"]
    assert sorted(s["message"] for s in sequences) == sorted(posts.values())
    stats = get(h.compliance_dan, f"departments/{h.plastic.pk}/stats", **case).json()
    assert stats["photos"] == 3


def test_history_shows_a_photo_post_as_a_tombstone_without_photos(hospital, posts):
    h = hospital
    page = check_history(h.nurse_alice, h.thread.pk, None, 50)
    tombstone = next(m for m in page["messages"] if m["id"] == posts["bob"])
    assert tombstone["envelope"] is None and tombstone["attachments"] == []
    assert Attachment.objects.filter(message_id=posts["bob"]).count() == 2


@pytest.fixture
def redacted_photo(hospital, uploader, blob_store) -> tuple[str, str]:
    """Bob's photo and thumbnail, attached to a message of his that he then redacted."""
    bob = uploader(hospital.surgeon_bob)
    upload_id = bob.send(hospital.plastic, DATA)
    thumb_id = bob.send(hospital.plastic, THUMB)
    attachment = attach(hospital, upload_id, thumb_id)
    check_redact_message(hospital.surgeon_bob, attachment.message_id)
    return upload_id, thumb_id


@pytest.mark.parametrize("who", ["surgeon_bob", "nurse_alice", "head_carol"])
def test_members_can_no_longer_download_them(hospital, uploader, redacted_photo, who):
    client = uploader(hospital.user(who))
    unknown = client.content("00000000-0000-0000-0000-000000000000")
    case = lea_case(hospital)
    for blob in redacted_photo:
        response = client.content(blob)
        assert response.status_code == 404
        assert response.json() == unknown.json()
        # A case opens nothing to a clinician.
        assert client.content(blob, **case).status_code == 403
    assert not audit_entries("attachment.downloaded")


def test_compliance_still_downloads_them_naming_a_case(hospital, uploader, redacted_photo):
    upload_id, thumb_id = redacted_photo
    dan = uploader(hospital.compliance_dan)
    response = dan.content(upload_id)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
    case = lea_case(hospital)
    response = dan.content(upload_id, **case)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == DATA
    [entry] = audit_entries("attachment.downloaded")
    assert entry.data["compliance"] is True
    assert entry.data["case"] == case["case"]
    assert dan.content(thumb_id, **case).status_code == 200


def test_a_member_who_is_a_compliance_officer_needs_a_case_for_them(
    hospital, uploader, redacted_photo
):
    upload_id, _ = redacted_photo
    alice = hospital.nurse_alice
    alice.is_compliance_officer = True
    alice.save(update_fields=["is_compliance_officer"])
    client = uploader(alice)
    assert client.content(upload_id).status_code == 400
    case = {"case": open_case(alice, patient_id=hospital.patient.pk).pk}
    response = client.content(upload_id, **case)
    assert response.status_code == 200
    [entry] = audit_entries("attachment.downloaded")
    assert entry.data["compliance"] is True and entry.data["case"] == case["case"]
