"""The ADT hot path's reads in SQL (patients/statements.py) answer what the ORM queries
they stand for answer, on SQLite and on PostgreSQL: the same rows, the same order, the
same types, the same case rules."""

from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from patients import statements
from patients.models import Admission, AdtMessage, LocationMapping, Patient

pytestmark = pytest.mark.django_db


def patient(ipp: str, family: str = "Lefèvre", given: str = "Anne", **more) -> Patient:
    return Patient.objects.create(
        ipp=ipp, family_name=family, given_name=given, birth_date=date(1950, 3, 2), **more
    )


def fields(record: Patient | Admission | None) -> dict | None:
    if record is None:
        return None
    return {f.attname: getattr(record, f.attname) for f in record._meta.concrete_fields}


def test_a_patient_by_ipp_or_id_is_the_orms_with_its_types():
    anne = patient("100", died_on=date(2026, 1, 5))
    found = statements.patient_by_ipp("100")
    assert fields(found) == fields(Patient.objects.get(ipp="100"))
    assert isinstance(found.birth_date, date) and isinstance(found.died_on, date)
    assert fields(statements.patient_by_id(anne.pk)) == fields(anne)
    assert statements.patient_by_ipp("nobody") is None
    with pytest.raises(Patient.DoesNotExist):
        statements.patient_by_id(anne.pk + 1000)
    with transaction.atomic():
        assert statements.patient_by_ipp("100", lock=True).pk == anne.pk


def test_the_same_name_and_birth_is_the_orms_iexact_on_live_records():
    anne = patient("1", "Lefèvre", "Anne")
    same = [
        patient("2", "LEFEVRE", "ANNE"),  # accents and case folded in the family name
        patient("3", "lefèvre", "anne"),  # the given name in any case
    ]
    patient("4", "Lefèvre", "Annie")  # another given name
    Patient.objects.create(  # another birth date
        ipp="6", family_name="Lefèvre", given_name="Anne", birth_date=date(1951, 3, 2)
    )
    patient("7", "Lefèvre", "Anne", merged_into=anne)  # merged: not a live record
    orm = list(
        Patient.objects.filter(
            family_name_key=anne.family_name_key,
            given_name__iexact=anne.given_name,
            birth_date=anne.birth_date,
            merged_into__isnull=True,
        )
        .exclude(pk=anne.pk)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert statements.same_name_and_birth(anne) == orm == [p.pk for p in same]


def test_a_location_names_its_department_or_none(hospital):
    LocationMapping.objects.create(location="CHIR-PLAST", department=hospital.plastic)
    plastic = hospital.plastic
    assert statements.mapped_department("CHIR-PLAST") == (plastic.pk, plastic.name)
    assert statements.mapped_department("chir-plast") is None  # locations are codes: exact
    assert statements.mapped_department("ELSEWHERE") is None


def test_the_open_stay_is_the_latest_neither_ended_nor_cancelled(hospital):
    anne = patient("1")
    now = timezone.now()

    def stay(visit: str, hours: int, **more) -> Admission:
        return Admission.objects.create(
            patient=anne,
            ward="W",
            visit_number=visit,
            admitted_at=now - timedelta(hours=hours),
            **more,
        )

    stay("V1", 30, discharged_at=now - timedelta(hours=20))
    latest = stay("V1", 10)
    stay("V1", 5, cancelled_at=now)
    stay("V2", 1)
    older_open = stay("V1", 12)
    orm = (
        Admission.objects.filter(
            patient=anne, visit_number="V1", discharged_at__isnull=True, cancelled_at__isnull=True
        )
        .order_by("-admitted_at", "-pk")
        .first()
    )
    with transaction.atomic():
        found = statements.open_stay(anne.pk, "V1")
    assert fields(found) == fields(orm) == fields(latest) != fields(older_open)
    assert statements.open_stay(anne.pk, "V3") is None


def test_a_message_outcome_is_its_rows():
    AdtMessage.objects.create(
        control_id="C1", event="A01", text="MSH", source="t", outcome="applied"
    )
    AdtMessage.objects.create(
        control_id="C2", event="A01", text="MSH", source="t", outcome="refused"
    )
    assert statements.message_outcome("C1") == "applied"
    assert statements.message_outcome("C2") == "refused"
    assert statements.message_outcome("C3") is None


def test_a_stay_ended_in_sql_reads_back_as_the_orm_saved_it(hospital):
    anne = patient("1")
    at = timezone.now()
    stay = Admission.objects.create(
        patient=anne, ward="W", visit_number="V1", admitted_at=at - timedelta(hours=3)
    )
    statements.end_stay(stay, at)
    assert stay.discharged_at == at
    assert Admission.objects.get(pk=stay.pk).discharged_at == at


def test_a_message_kept_in_sql_is_the_orms_row_and_kept_once():
    applied = timezone.now()
    values = {
        "event": "A01",
        "text": "MSH|^~\\&|GAM",
        "source": "127.0.0.1:5000",
        "outcome": "applied",
        "error": "",
        "applied_at": applied,
    }
    before = timezone.now()
    statements.keep_message("C1", values)
    kept = AdtMessage.objects.get(control_id="C1")
    assert {k: getattr(kept, k) for k in values} == values
    assert before <= kept.received_at <= timezone.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        statements.keep_message("C1", values)
    assert AdtMessage.objects.filter(control_id="C1").count() == 1
