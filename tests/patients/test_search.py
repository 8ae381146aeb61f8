"""Finding an admitted patient the way a clinician does at the bedside.

By IPP, by birth date, or by the first letters of the family name (accents
and case folded); only patients admitted right now; only for members of a
department; every search audited with which criteria were used, never
their values.
"""

from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from patients.models import Admission, Patient
from patients.retention import add_years
from tests.support import issue_token, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def ward(hospital) -> dict[str, Patient]:
    """Besides the hospital's two admitted patients: one discharged, one not yet admitted,
    and two more admitted names that share a prefix with Lefèvre."""
    now = timezone.now()

    def patient(ipp: str, family: str, given: str, born: date, **stay: Any) -> Patient:
        p = Patient.objects.create(
            ipp=ipp, family_name=family, given_name=given, birth_date=born, sex="U"
        )
        Admission.objects.create(patient=p, ward=stay.pop("ward", "Plastic surgery"), **stay)
        return p

    return {
        "lefevre": hospital.patient,
        "garnier": hospital.other_patient,
        "lefebvre_gone": patient(
            "00800200",
            "Lefebvre",
            "Paul",
            date(1985, 1, 30),
            admitted_at=now - timedelta(days=10),
            discharged_at=now - timedelta(days=1),
        ),
        "lefort_later": patient(
            "00800201", "Lefort", "Anne", date(1990, 3, 3), admitted_at=now + timedelta(days=1)
        ),
        "lefranc": patient(
            "00800202",
            "Lefranc",
            "Émile",
            date(1970, 7, 14),
            admitted_at=now - timedelta(hours=3),
            ward="Vascular surgery",
        ),
        "leger": patient(
            "00800203",
            "Léger",
            "Zoé",
            date(1985, 1, 30),
            admitted_at=now - timedelta(days=1),
            discharged_at=now + timedelta(days=2),
        ),
    }


def search(user: Any, **params: str):
    return Client().post(
        "/api/patients/search",
        params,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(user)}",
    )


def ipps(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["ipp"] for p in response.json()]


def test_by_ipp(hospital, ward):
    response = search(hospital.nurse_alice, ipp="00800100")
    (found,) = response.json()
    assert found == {
        "id": hospital.patient.pk,
        "ipp": "00800100",
        "family_name": "Lefèvre",
        "given_name": "Léa",
        "birth_date": "1985-01-30",
        "sex": "F",
        "ward": "Plastic surgery",
    }


def test_by_ipp_is_exact(hospital, ward):
    assert ipps(search(hospital.nurse_alice, ipp="008001")) == []
    assert ipps(search(hospital.nurse_alice, ipp=" 00800107 ")) == ["00800107"]


def test_by_birth_date(hospital, ward):
    found = ipps(search(hospital.nurse_alice, birth_date="1985-01-30"))
    # Lefebvre shares the date but has gone home.
    assert sorted(found) == ["00800100", "00800203"]


def test_by_name_prefix_folds_accents_and_case(hospital, ward):
    for prefix in ("lefe", "LEFE", "Lefè", "lefÈ"):
        assert ipps(search(hospital.nurse_alice, name=prefix)) == ["00800100"], prefix
    # Ordered by folded family name: Lefèvre (lefevre) before Lefranc.
    assert ipps(search(hospital.nurse_alice, name="lef")) == ["00800100", "00800202"]
    assert ipps(search(hospital.nurse_alice, name="  lég ")) == ["00800203"]
    assert ipps(search(hospital.nurse_alice, name="leg")) == ["00800203"]


def test_criteria_combine(hospital, ward):
    assert ipps(search(hospital.nurse_alice, name="le", birth_date="1985-01-30")) == [
        "00800100",
        "00800203",
    ]
    assert ipps(search(hospital.nurse_alice, name="lefe", birth_date="1951-06-02")) == []


def test_discharged_and_future_patients_are_not_found(hospital, ward):
    alice = hospital.nurse_alice
    assert ipps(search(alice, ipp="00800200")) == []
    assert ipps(search(alice, name="lefeb")) == []
    assert ipps(search(alice, ipp="00800201")) == []
    assert ipps(search(alice, name="lefo")) == []


def test_a_readmitted_patient_is_found_once(hospital, ward):
    Admission.objects.create(
        patient=ward["lefebvre_gone"], ward="Plastic surgery", admitted_at=timezone.now()
    )
    assert ipps(search(hospital.nurse_alice, ipp="00800200")) == ["00800200"]


def test_a_member_of_any_department_may_search_every_ward(hospital, ward):
    # Patients are found hospital-wide: the intake ward is not the department.
    assert ipps(search(hospital.nurse_ines, name="lefr")) == ["00800202"]
    assert ipps(search(hospital.nurse_alice, name="lefr")) == ["00800202"]


@pytest.mark.parametrize(
    "params",
    [{}, {"name": ""}, {"name": "   "}, {"ipp": ""}],
    ids=["none", "empty-name", "blank-name", "empty-ipp"],
)
def test_no_criteria_is_400_invalid_request(hospital, ward, params):
    response = search(hospital.nurse_alice, **params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert not AuditEvent.objects.filter(action="patient.searched").exists()


@pytest.mark.parametrize("params", [{"name": "l"}, {"birth_date": "30/01/1985"}])
def test_malformed_criteria_are_400(hospital, ward, params):
    response = search(hospital.nurse_alice, **params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize("who", ["compliance_dan", "intern_erin", "stranger"])
def test_only_members_of_a_department_may_search(hospital, ward, who):
    user = make_user("stranger") if who == "stranger" else getattr(hospital, who)
    response = search(user, name="lefe")
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "forbidden"
    assert "Lefèvre" not in response.content.decode()
    assert not AuditEvent.objects.filter(action="patient.searched").exists()


def test_anonymous_search_is_401(hospital, ward):
    response = Client().post(
        "/api/patients/search", {"name": "lefe"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_each_search_is_audited_without_the_criteria_values(hospital, ward):
    alice = hospital.nurse_alice
    search(alice, ipp="00800100")
    search(alice, name="lefe", birth_date="1985-01-30")
    search(alice, name="zzz")
    entries = list(AuditEvent.objects.filter(action="patient.searched").order_by("id"))
    assert len(entries) == 3
    assert all(e.actor_id == alice.pk and e.object_type == "patient_search" for e in entries)
    assert [e.data for e in entries] == [
        {"ipp": True, "birth_date": False, "name": False, "results": 1},
        {"ipp": False, "birth_date": True, "name": True, "results": 1},
        {"ipp": False, "birth_date": False, "name": True, "results": 0},
    ]
    trail = "".join(e.canonical().decode() for e in entries)
    for value in ("00800100", "lefe", "1985-01-30", "zzz"):
        assert value not in trail


def test_viewing_a_patient_is_audited(hospital, ward):
    response = Client().get(
        f"/api/patients/{hospital.patient.pk}",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(hospital.nurse_alice)}",
    )
    assert response.status_code == 200
    assert response.json()["ward"] == "Plastic surgery"
    assert response.json()["retention"]["until"] is None  # kept while the stay lasts
    (entry,) = AuditEvent.objects.filter(action="patient.viewed")
    assert (entry.actor_id, entry.object_id) == (hospital.nurse_alice.pk, str(hospital.patient.pk))


def test_search_criteria_never_travel_in_the_url(hospital, ward):
    response = Client().get(
        "/api/patients/search?ipp=00800100",
        HTTP_AUTHORIZATION=f"Bearer {issue_token(hospital.nurse_alice)}",
    )
    assert response.status_code in (404, 405)


def test_a_discharged_patient_is_reachable_only_through_a_thread(hospital, ward):
    from chat.actions import do_create_thread

    token = issue_token(hospital.nurse_alice)
    patient = hospital.other_patient
    Admission.objects.filter(patient=patient).update(discharged_at=timezone.now())
    url = f"/api/patients/{patient.pk}"
    refused = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert refused.status_code == 404
    assert refused.json()["code"] == "not_found"
    do_create_thread(hospital.surgeon_bob, hospital.plastic.pk, patient.pk, "Scar review")
    allowed = Client().get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert allowed.status_code == 200
    assert allowed.json()["ward"] is None
    # Discharged today: the thread banner states the rule and the date it gives.
    retention = allowed.json()["retention"]
    assert retention["until"] == add_years(timezone.localdate(), 20).isoformat()
    assert retention["rule"] == "20 years after the last stay or consultation (R.1112-7)"
