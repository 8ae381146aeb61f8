"""Stays drive who sees a patient (rooms/access/ `patient_visible`, `admitted_for`;
docs/decisions.md, "Who sees a patient"): the departments the patient stays or stayed
in, and those with a thread about them; a stay no department is known for is seen by
every clinician while it lasts. Discharge and cancellation feed the retention date."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from patients.identity import (
    Movement,
    PatientFacts,
    Source,
    do_admit,
    do_cancel_admit,
    do_discharge,
    do_record_patient,
)
from patients.models import LocationMapping, Patient
from patients.retention import patient_retention
from tests.support.api import Api, assert_refused

pytestmark = pytest.mark.django_db

ADT = Source("adt", "test")


@pytest.fixture
def vascular_patient(hospital):
    """A patient the hospital's system put in Vascular surgery (not Plastic surgery)."""
    LocationMapping.objects.create(location="VASC", department=hospital.vascular)
    LocationMapping.objects.create(location="PLASTIC", department=hospital.plastic)
    patient = do_record_patient(
        PatientFacts("00777001", "ROUX", "Jeanne", timezone.localdate() - timedelta(days=80 * 365)),
        ADT,
    )
    do_admit(patient, Movement("V9", "VASC", timezone.now() - timedelta(days=2)), ADT)
    return patient


def search(user, ipp: str) -> list[str]:
    response = Api(user).post("/api/patients/search", {"ipp": ipp})
    assert response.status_code == 200, response.content
    return [p["ipp"] for p in response.json()]


def test_a_patient_is_found_by_the_departments_they_stay_in(hospital, vascular_patient):
    assert search(hospital.nurse_ines, "00777001") == ["00777001"]
    assert search(hospital.nurse_alice, "00777001") == []
    assert Api(hospital.nurse_ines).get(f"/api/patients/{vascular_patient.pk}").status_code == 200
    assert_refused(
        Api(hospital.nurse_alice).get(f"/api/patients/{vascular_patient.pk}"), 404, "not_found"
    )


def test_a_department_without_a_stay_needs_a_reason_for_a_thread(hospital, vascular_patient):
    body = {
        "department": hospital.plastic.pk,
        "patient": vascular_patient.pk,
        "title": "Skin graft?",
    }
    assert_refused(Api(hospital.surgeon_bob).post("/api/threads", body), 404, "not_found")
    with_reason = Api(hospital.surgeon_bob).post(
        "/api/threads", {**body, "reason": "Asked by the vascular team"}
    )
    assert with_reason.status_code == 201, with_reason.content
    created = AuditEvent.objects.filter(action="thread.created").latest("id")
    assert created.data["reason"] == "Asked by the vascular team"


def test_a_past_stay_keeps_the_patient_for_follow_up(hospital, vascular_patient):
    do_discharge(vascular_patient, "V9", timezone.now() - timedelta(hours=1), ADT)
    assert search(hospital.nurse_ines, "00777001") == []  # no longer staying anywhere
    body = {
        "department": hospital.vascular.pk,
        "patient": vascular_patient.pk,
        "title": "Follow-up",
    }
    assert Api(hospital.nurse_ines).post("/api/threads", body).status_code == 201


def test_a_cancelled_stay_gives_no_one_the_patient(hospital, vascular_patient):
    do_cancel_admit(vascular_patient, "V9", timezone.now(), ADT)
    assert search(hospital.nurse_ines, "00777001") == []
    assert_refused(
        Api(hospital.nurse_ines).get(f"/api/patients/{vascular_patient.pk}"), 404, "not_found"
    )


def test_a_stay_of_no_known_department_is_seen_by_every_clinician(hospital):
    """The hospital's own admissions (no department: entered before the location table)."""
    assert search(hospital.nurse_alice, hospital.other_patient.ipp) == [hospital.other_patient.ipp]
    assert search(hospital.nurse_ines, hospital.patient.ipp) == [hospital.patient.ipp]


def test_discharge_and_cancellation_feed_the_retention_date(hospital, vascular_patient):
    assert patient_retention(vascular_patient).until is None  # kept while the stay lasts
    discharged_at = timezone.now() - timedelta(days=1)
    do_discharge(vascular_patient, "V9", discharged_at, ADT)
    retention = patient_retention(Patient.objects.get(pk=vascular_patient.pk))
    assert retention.last_care == timezone.localdate(discharged_at)
    assert retention.until is not None
    do_admit(vascular_patient, Movement("V10", "PLASTIC", timezone.now()), ADT)
    do_cancel_admit(vascular_patient, "V10", timezone.now(), ADT)
    # The cancelled stay neither holds the record open nor moves its date.
    assert patient_retention(Patient.objects.get(pk=vascular_patient.pk)).until == retention.until
