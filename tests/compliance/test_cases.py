"""Review cases: opened, listed, approved (four-eyes) and closed by compliance officers
only, each step audited, and a case never removed (docs/compliance.md)."""

from typing import Any

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from compliance.actions import check_open_case
from compliance.models import Case, CaseDeletionError
from core.errors import RoundsError
from tests.support import Api, assert_refused
from tests.support.cases import CASES, case_header, open_case, second_officer

pytestmark = pytest.mark.django_db


def new_case(h, **extra: Any) -> dict[str, Any]:
    return {"reference": "INC-2026-042", "reason": "Patient request", "patient": h.patient.pk} | (
        extra
    )


def test_an_officer_opens_a_case_and_it_is_audited(hospital):
    h = hospital
    body = new_case(
        h,
        reference="  INC-2026-042 ",
        reason="Patient request\nreceived by mail",
        department=h.plastic.pk,
        date_from="2026-11-01T00:00:00+01:00",
    )
    response = Api(h.compliance_dan).post(CASES, body)
    assert response.status_code == 201, response.content
    case = response.json()
    assert case["reference"] == "INC-2026-042"
    assert case["reason"] == "Patient request\nreceived by mail"
    assert case["scope"] == {
        "patient": h.patient.pk,
        "department": h.plastic.pk,
        "user": None,
        "date_from": "2026-10-31T23:00:00+00:00",
        "date_to": None,
    }
    assert case["opened_by"] == {"id": h.compliance_dan.pk, "username": "compliance_dan"}
    assert (case["four_eyes"], case["awaits_approval"], case["closed_at"]) == (False, False, None)
    entry = AuditEvent.objects.get(action="case.opened")
    assert (entry.actor_id, entry.object_type, entry.object_id) == (
        h.compliance_dan.pk,
        "case",
        str(case["id"]),
    )
    assert entry.department_id == h.plastic.pk
    assert entry.data["reference"] == "INC-2026-042"
    assert entry.data["reason"] == case["reason"]
    assert entry.data["scope"] == case["scope"]


@pytest.mark.parametrize("who", ["nurse_alice", "head_carol", "admin_zoe"])
def test_a_clinician_or_an_administrator_opens_no_case(hospital, who):
    response = Api(hospital.user(who)).post(CASES, new_case(hospital))
    assert_refused(response, 403, "forbidden")
    assert_refused(Api(hospital.user(who)).get(CASES), 403, "forbidden")
    assert not Case.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="case.").exists()


@pytest.mark.parametrize(
    "change",
    [
        {"reference": ""},
        {"reference": "   "},
        {"reason": ""},
        {"reference": "x" * 65},
        {"reason": "x" * 1001},
        {"reference": "INC\n42"},
        {"reason": "why\x1b[31m"},
        {"reason": "looks \u202eharmless"},
        {"patient": None},
        {
            "patient": None,
            "date_from": "2026-11-02T00:00:00+00:00",
            "date_to": "2026-11-01T00:00:00+00:00",
        },
        {"date_from": "2026-11-01T10:00:00"},
        {"unknown": 1},
    ],
)
def test_a_case_without_clean_grounds_or_a_scope_is_refused(hospital, change):
    body = {k: v for k, v in (new_case(hospital) | change).items() if v is not None}
    assert_refused(Api(hospital.compliance_dan).post(CASES, body), 400, "invalid_request")
    assert not Case.objects.exists()


@pytest.mark.parametrize("reference", ["INC-\ud800", "INC\x0042"])
def test_text_no_database_stores_is_refused_by_the_use_case_too(hospital, reference):
    """The API's parser refuses these first; the use case does not rely on it."""
    with pytest.raises(RoundsError) as refusal:
        check_open_case(hospital.compliance_dan, reference, "r", patient_id=hospital.patient.pk)
    assert refusal.value.code == "invalid_request"


@pytest.mark.parametrize("field", ["patient", "department", "user"])
def test_a_scope_naming_nothing_that_exists_is_not_found(hospital, field):
    body = new_case(hospital) | {field: 10**6}
    assert_refused(Api(hospital.compliance_dan).post(CASES, body), 404, "not_found")


def test_a_patient_is_named_by_ipp_as_a_request_quotes_it(hospital):
    h = hospital
    dan = Api(h.compliance_dan)
    body = new_case(h, patient=None) | {"ipp": " 00800100 "}
    del body["patient"]
    response = dan.post(CASES, body)
    assert response.status_code == 201, response.content
    assert response.json()["scope"]["patient"] == h.patient.pk
    entry = AuditEvent.objects.get(action="case.opened")
    assert "00800100" not in str(entry.data)
    assert_refused(
        dan.post(CASES, body | {"reference": "INC-2", "ipp": "99999999"}), 404, "not_found"
    )
    both = new_case(h, reference="INC-3") | {"ipp": "00800100"}
    assert_refused(dan.post(CASES, both), 400, "invalid_request")


def test_a_reference_names_one_case(hospital):
    open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    body = assert_refused(Api(second_officer()).post(CASES, new_case(hospital)), 409, "conflict")
    assert body["data"] == {"reference": "INC-2026-042"}
    assert Case.objects.count() == 1


def test_an_officer_lists_their_own_cases_only(hospital):
    dan, fay = hospital.compliance_dan, second_officer()
    mine = open_case(dan, "INC-1", patient_id=hospital.patient.pk)
    open_case(fay, "INC-2", department_id=hospital.vascular.pk)
    listed = Api(dan).get(CASES).json()
    assert [c["id"] for c in listed] == [mine.pk]


def test_four_eyes_holds_every_release_until_a_second_officer_approves(hospital, settings):
    settings.ROUNDS_COMPLIANCE_FOUR_EYES = True
    h = hospital
    dan, fay = Api(h.compliance_dan), Api(second_officer())
    case = dan.post(CASES, new_case(h)).json()
    assert (case["four_eyes"], case["awaits_approval"]) == (True, True)
    threads = f"{CASES}/{case['id']}/threads"
    assert_refused(dan.get(threads), 409, "case_not_approved")
    assert_refused(dan.post(f"{CASES}/{case['id']}/approve", {}), 403, "forbidden")
    # The second officer sees it waiting, approves it, and may not release under it.
    assert [c["id"] for c in fay.get(CASES).json()] == [case["id"]]
    approved = fay.post(f"{CASES}/{case['id']}/approve", {})
    assert approved.status_code == 200, approved.content
    assert approved.json()["approved_by"]["username"] == "compliance_fay"
    assert approved.json()["awaits_approval"] is False
    assert_refused(fay.post(f"{CASES}/{case['id']}/approve", {}), 409, "conflict")
    assert_refused(fay.get(threads), 404, "not_found")
    assert dan.get(threads).status_code == 200
    entry = AuditEvent.objects.get(action="case.approved")
    assert entry.actor_username == "compliance_fay"
    assert entry.data == {"reference": "INC-2026-042", "opened_by": h.compliance_dan.pk}
    assert_refused(Api(h.nurse_alice).post(f"{CASES}/{case['id']}/approve", {}), 403, "forbidden")


def test_turning_four_eyes_on_holds_cases_opened_before(hospital, settings):
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    dan = Api(hospital.compliance_dan)
    assert dan.get(f"{CASES}/{case.pk}/threads").status_code == 200
    settings.ROUNDS_COMPLIANCE_FOUR_EYES = True
    assert_refused(dan.get(f"{CASES}/{case.pk}/threads"), 409, "case_not_approved")


def test_without_four_eyes_there_is_nothing_to_approve(hospital):
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    assert_refused(Api(second_officer()).post(f"{CASES}/{case.pk}/approve", {}), 404, "not_found")


def test_a_closed_case_releases_nothing_and_is_kept(hospital):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    dan = Api(h.compliance_dan)
    assert_refused(Api(second_officer()).post(f"{CASES}/{case.pk}/close", {}), 404, "not_found")
    closed = dan.post(f"{CASES}/{case.pk}/close", {})
    assert closed.status_code == 200, closed.content
    assert closed.json()["closed_by"]["username"] == "compliance_dan"
    assert_refused(dan.post(f"{CASES}/{case.pk}/close", {}), 409, "case_closed")
    assert_refused(dan.get(f"{CASES}/{case.pk}/threads"), 409, "case_closed")
    timeline = f"{CASES}/{case.pk}/threads/{h.thread.pk}/timeline"
    assert_refused(dan.get(timeline), 409, "case_closed")
    assert [c["closed_at"] is not None for c in dan.get(CASES).json()] == [True]
    assert AuditEvent.objects.filter(action="case.closed", object_id=str(case.pk)).count() == 1
    assert not AuditEvent.objects.filter(action="case.released").exists()
    with pytest.raises(CaseDeletionError):
        case.delete()


def test_the_approving_officer_may_close_the_case(hospital, settings):
    settings.ROUNDS_COMPLIANCE_FOUR_EYES = True
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    fay = Api(second_officer())
    assert fay.post(f"{CASES}/{case.pk}/approve", {}).status_code == 200
    assert fay.post(f"{CASES}/{case.pk}/close", {}).status_code == 200


def test_another_officers_case_looks_missing(hospital):
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    fay = Api(second_officer())
    for path in (f"{CASES}/{case.pk}/threads", f"{CASES}/10000000/threads"):
        assert_refused(fay.get(path), 404, "not_found")
    assert (
        fay.get(f"{CASES}/{case.pk}/threads").json() == fay.get(f"{CASES}/10000000/threads").json()
    )


@override_settings(ROUNDS_COMPLIANCE_FOUR_EYES=True)
def test_a_case_opened_under_four_eyes_keeps_needing_approval_when_it_is_turned_off(hospital):
    case = open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)
    with override_settings(ROUNDS_COMPLIANCE_FOUR_EYES=False):
        response = Api(hospital.compliance_dan).get(f"{CASES}/{case.pk}/threads")
        assert_refused(response, 409, "case_not_approved")


def test_a_cases_audit_slice_holds_everything_done_under_it(hospital, settings):
    settings.ROUNDS_COMPLIANCE_FOUR_EYES = True
    h = hospital
    dan, fay = Api(h.compliance_dan), Api(second_officer())
    case = dan.post(CASES, new_case(h)).json()
    other = dan.post(CASES, new_case(h, reference="INC-2")).json()
    fay.post(f"{CASES}/{case['id']}/approve", {})
    dan.get(f"{CASES}/{case['id']}/threads")
    dan.get("/api/library/photos", **case_header(case["id"]))
    dan.post(f"{CASES}/{case['id']}/close", {})
    slice_ = dan.get(f"{CASES}/{case['id']}/audit")
    assert slice_.status_code == 200, slice_.content
    actions = [e["action"] for e in slice_.json()["entries"]]
    assert actions == [
        "case.opened",
        "case.approved",
        "case.released",
        "case.released",
        "library.query",
        "case.closed",
    ]
    assert fay.get(f"{CASES}/{case['id']}/audit").status_code == 200
    assert [e["action"] for e in dan.get(f"{CASES}/{other['id']}/audit").json()["entries"]] == [
        "case.opened"
    ]
    assert_refused(fay.get(f"{CASES}/{other['id']}/audit"), 404, "not_found")
    assert_refused(Api(h.nurse_alice).get(f"{CASES}/{case['id']}/audit"), 403, "forbidden")
