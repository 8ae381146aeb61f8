"""What a case releases: the threads it covers, and each thread's whole timeline for an
offline review, every release audited before anything is read (docs/compliance.md)."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from chat.actions import check_read_receipt
from chat.redaction import check_redact_message
from compliance import release, timeline
from core.crypto import PublicIdentity, WrapRecord, decrypt_message, unwrap_room_key
from tests.support import Api, Hospital, assert_refused
from tests.support.cases import CASES, open_case, second_officer
from tests.support.posts import post
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db


@pytest.fixture
def ward(hospital: Hospital) -> dict[str, int]:
    """Léa's thread: Bob's note (then redacted by Bob, with a reason), Alice's photo, and
    Alice's receipt up to both. Ines posts in Hugo's vascular thread."""
    h = hospital
    first = post(h, "surgeon_bob", h.thread, "bob-0001", b"Wrong patient, sorry")
    ack, _ = post_photos(h, "nurse_alice", [photo(h, "nurse_alice")])
    check_read_receipt(h.nurse_alice, h.thread.pk, 2)
    check_redact_message(h.surgeon_bob, first, "posted in the wrong thread")
    post(h, "nurse_ines", h.vascular_thread, "ines-0001")
    return {"redacted": first, "photo": ack["message_id"]}


def timeline_of(officer: Any, case: Any, thread: Any, **query: Any):
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return Api(officer).get(f"{CASES}/{case.pk}/threads/{thread.pk}/timeline?{params}")


def test_a_patient_case_lists_that_patients_threads_only(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = Api(h.compliance_dan).get(f"{CASES}/{case.pk}/threads")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [t["id"] for t in body["threads"]] == [h.thread.pk]
    assert body["threads"][0]["patient"] == {
        "id": h.patient.pk,
        "ipp": "00800100",
        "family_name": "Lefèvre",
        "given_name": "Léa",
        "birth_date": "1985-01-30",
    }
    assert body["truncated"] is False
    entry = AuditEvent.objects.get(action="case.released")
    assert (entry.actor_id, entry.object_type, entry.object_id) == (
        h.compliance_dan.pk,
        "case",
        str(case.pk),
    )
    assert entry.data == {"case": case.pk, "reference": case.reference, "what": "threads"}


def test_the_timeline_holds_what_an_offline_review_needs(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = timeline_of(h.compliance_dan, case, h.thread)
    assert response.status_code == 200, response.content
    page = response.json()
    assert (page["case"], page["thread"]["id"], page["has_more"]) == (case.pk, h.thread.pk, False)
    assert page["thread"]["patient"]["ipp"] == "00800100"
    redacted, pictured = page["messages"]
    # A redacted message keeps its envelope for the officer, marked with who, when and why.
    assert redacted["id"] == ward["redacted"]
    assert redacted["envelope"]["ciphertext"]
    assert redacted["redacted"]["by"] == h.surgeon_bob.pk
    assert redacted["redacted"]["reason"] == "posted in the wrong thread"
    assert redacted["redacted"]["right"] == "sender"
    assert pictured["redacted"] is None and pictured["attachments"]
    [attachment] = page["attachments"]
    assert attachment["message"] == ward["photo"]
    assert attachment["keywords"] == ["hand"]
    assert [(r["user"]["username"], r["up_to_seq"]) for r in page["receipts"]] == [
        ("nurse_alice", 2)
    ]
    department = page["department"]
    members = {(m["user"]["username"], m["removed_at"] is None) for m in department["memberships"]}
    assert ("intern_erin", False) in members and ("nurse_alice", True) in members
    assert department["chain"]["statements"]
    assert department["compliance"]["fingerprint"] == h.compliance_key.fingerprint
    [version] = department["key_versions"]
    [wrap] = version["compliance_wraps"]
    assert wrap["recipient_fingerprint"] == h.compliance_key.fingerprint
    # The tool holding the compliance private key opens every message from this alone.
    wrapper = department["wrappers"][wrap["record"]["wrapper_fp"]]
    room_key = unwrap_room_key(
        WrapRecord.from_dict(wrap["record"]),
        recipient=h.compliance_key,
        wrapper=PublicIdentity.from_dict(wrapper["public"]),
    )
    senders = {
        i["user"]: PublicIdentity.from_dict(i["public"]) for i in page["identities"].values()
    }
    opened = [
        decrypt_message(m["envelope"], room_key=room_key, sender_key=senders[m["sender"]["id"]])
        for m in page["messages"]
    ]
    assert opened[0] == b"Wrong patient, sorry"


def test_each_release_is_audited_before_anything_is_read(hospital, ward, monkeypatch):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    seen: list[dict] = []
    read = timeline.thread_page

    def reading(*args: Any, **kwargs: Any) -> dict:
        seen.extend(
            AuditEvent.objects.filter(action="case.released").values_list("data", flat=True)
        )
        return read(*args, **kwargs)

    monkeypatch.setattr(timeline, "thread_page", reading)
    assert timeline_of(h.compliance_dan, case, h.thread, after_seq=1, limit=5).status_code == 200
    assert seen == [
        {
            "case": case.pk,
            "reference": case.reference,
            "what": "timeline",
            "thread_id": h.thread.pk,
            "after_seq": 1,
            "limit": 5,
        }
    ]
    entry = AuditEvent.objects.get(action="case.released")
    assert (entry.object_type, entry.department_id) == ("thread", h.plastic.pk)


def test_a_failed_release_still_leaves_its_entry(hospital, ward, monkeypatch):
    """Over-recording is safe; a release without its entry is not."""
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)

    def broken(*args: Any, **kwargs: Any) -> dict:
        raise RuntimeError("storage went away")

    monkeypatch.setattr(timeline, "thread_page", broken)
    with pytest.raises(RuntimeError):
        release.check_thread_timeline(h.compliance_dan, case.pk, h.thread.pk)
    assert AuditEvent.objects.filter(action="case.released").count() == 1


def test_pages_split_messages_and_receipts_without_overlap(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    first = timeline_of(h.compliance_dan, case, h.thread, limit=1).json()
    assert ([m["seq"] for m in first["messages"]], first["has_more"]) == ([1], True)
    assert first["receipts"] == []
    rest = timeline_of(h.compliance_dan, case, h.thread, after_seq=1).json()
    assert ([m["seq"] for m in rest["messages"]], rest["has_more"]) == ([2], False)
    assert [r["up_to_seq"] for r in rest["receipts"]] == [2]
    assert_refused(timeline_of(h.compliance_dan, case, h.thread, limit=501), 400, "invalid_request")


def test_a_thread_out_of_scope_looks_missing(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    outside = assert_refused(
        timeline_of(h.compliance_dan, case, h.vascular_thread), 404, "not_found"
    )
    missing = Api(h.compliance_dan).get(f"{CASES}/{case.pk}/threads/10000000/timeline")
    assert missing.json() == outside
    assert not AuditEvent.objects.filter(action="case.released").exists()


def test_a_user_case_covers_the_threads_they_took_part_in(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, user_id=h.nurse_ines.pk)
    threads = Api(h.compliance_dan).get(f"{CASES}/{case.pk}/threads").json()["threads"]
    assert [t["id"] for t in threads] == [h.vascular_thread.pk]
    # Alice posted a photo in Léa's thread and read it: both are taking part.
    alices = open_case(h.compliance_dan, "INC-2", user_id=h.nurse_alice.pk)
    threads = Api(h.compliance_dan).get(f"{CASES}/{alices.pk}/threads").json()["threads"]
    assert [t["id"] for t in threads] == [h.thread.pk]


def test_dates_limit_the_threads_and_the_messages(hospital, ward):
    h = hospital
    later = timezone.now() + timedelta(days=1)
    case = open_case(h.compliance_dan, patient_id=h.patient.pk, date_from=later)
    assert Api(h.compliance_dan).get(f"{CASES}/{case.pk}/threads").json()["threads"] == []
    assert_refused(timeline_of(h.compliance_dan, case, h.thread), 404, "not_found")
    combined = open_case(
        h.compliance_dan,
        "INC-2",
        department_id=h.plastic.pk,
        date_to=later,
        user_id=h.surgeon_bob.pk,
    )
    page = timeline_of(h.compliance_dan, combined, h.thread).json()
    assert len(page["messages"]) == 2


@pytest.mark.parametrize("who", ["nurse_alice", "head_carol", "surgeon_bob", "admin_zoe"])
def test_clinicians_call_no_compliance_route(hospital, ward, who):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    assert_refused(Api(h.user(who)).get(f"{CASES}/{case.pk}/threads"), 403, "forbidden")
    assert_refused(timeline_of(h.user(who), case, h.thread), 403, "forbidden")
    assert not AuditEvent.objects.filter(action="case.released").exists()


def test_another_officers_case_releases_nothing_to_them(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    assert_refused(timeline_of(second_officer(), case, h.thread), 404, "not_found")


def test_members_still_never_see_a_redacted_envelope(hospital, ward):
    h = hospital
    page = Api(h.nurse_alice).get(f"/api/threads/{h.thread.pk}/messages").json()
    assert page["messages"][0]["envelope"] is None
