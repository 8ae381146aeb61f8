"""Whom a new thread may be about (chat/actions.py check_create_thread, rooms/access/
access_patient_for_thread; docs/decisions.md): a patient the caller may see, that is one
admitted now or already discussed in one of their departments; any other known patient
only with a reason, kept in the audit trail. Issue 17's finding: creating a thread about a
discharged patient never seen by the department used to reveal their IPP and name."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from patients.models import Admission, Patient
from tests.support.api import Api, assert_refused
from tests.support.audit import audit_entries

pytestmark = pytest.mark.django_db


@pytest.fixture
def discharged(hospital) -> Patient:
    """Known to the hospital, discharged last month, never discussed in any department."""
    patient = Patient.objects.create(
        ipp="00800199", family_name="Rousseau", given_name="Anna", birth_date=date(1970, 3, 1)
    )
    now = timezone.now()
    Admission.objects.create(
        patient=patient,
        ward="Vascular surgery",
        admitted_at=now - timedelta(days=40),
        discharged_at=now - timedelta(days=30),
    )
    return patient


def create(hospital, patient_id: int, **extra):
    body = {"department": hospital.plastic.pk, "patient": patient_id, "title": "Follow-up"}
    return Api(hospital.surgeon_bob).post("/api/threads", {**body, **extra})


def test_a_discharged_patient_never_seen_here_looks_unknown(hospital, discharged):
    refused = create(hospital, discharged.pk)
    unknown = create(hospital, 999_999)
    assert_refused(refused, 404, "not_found")
    assert refused.json()["message"] == unknown.json()["message"]
    assert "00800199" not in refused.content.decode()
    assert Api(hospital.surgeon_bob).get(f"/api/patients/{discharged.pk}").status_code == 404


def test_with_a_reason_it_is_allowed_and_the_reason_audited(hospital, discharged):
    made = create(hospital, discharged.pk, reason="Follow-up consultation after discharge")
    assert made.status_code == 201, made.content
    [entry] = audit_entries("thread.created", object_id=str(made.json()["id"]))
    assert entry.data["reason"] == "Follow-up consultation after discharge"
    # From then on the patient is reachable through that thread, as any discussed patient.
    assert Api(hospital.surgeon_bob).get(f"/api/patients/{discharged.pk}").status_code == 200


def test_a_reason_does_not_make_an_unknown_patient_known(hospital):
    assert_refused(create(hospital, 999_999, reason="Follow-up"), 404, "not_found")


def test_an_admitted_patient_or_one_discussed_here_needs_no_reason(hospital, discharged):
    assert create(hospital, hospital.patient.pk).status_code == 201
    Admission.objects.filter(patient=hospital.patient).update(discharged_at=timezone.now())
    # Discharged now, but already discussed in Plastic surgery: still reachable there.
    assert create(hospital, hospital.patient.pk).status_code == 201


def test_a_consult_about_an_unseen_patient_is_refused_alike(hospital, discharged):
    from advice.actions import check_request_consult
    from core.errors import RoundsError

    with pytest.raises(RoundsError) as caught:
        check_request_consult(
            hospital.nurse_ines,
            hospital.plastic.pk,
            discharged.pk,
            "urgent",
            hospital.surgeon_bob.pk,
            None,
        )
    assert caught.value.code == "not_found"


def test_an_overlong_reason_is_refused(hospital, discharged):
    assert_refused(create(hospital, discharged.pk, reason="x" * 201), 400, "invalid_request")
