"""Retention of a patient's record (patients/retention.py): Public Health Code R.1112-7."""

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from patients.models import Admission, Patient
from patients.retention import Rules, add_years, patient_retention, retained_until


def test_an_adult_is_kept_twenty_years_after_the_last_stay():
    until, rule = retained_until(date(2026, 3, 10), date(1960, 5, 1), None)
    assert until == date(2046, 3, 10)
    assert rule.startswith("20 years after the last stay")


def test_a_child_is_kept_until_their_28th_birthday_when_that_comes_later():
    # Born 2020, last stay 2026: 20 years end in 2046, the 28th birthday is in 2048.
    until, rule = retained_until(date(2026, 3, 10), date(2020, 7, 14), None)
    assert until == date(2048, 7, 14)
    assert "28th birthday" in rule


def test_a_teenager_whose_twenty_years_end_after_28_keeps_the_twenty_years():
    until, _ = retained_until(date(2026, 3, 10), date(2010, 1, 1), None)
    assert until == date(2046, 3, 10)  # the 28th birthday, 2038, comes first


def test_a_death_within_ten_years_of_the_last_stay_keeps_ten_years_after_it():
    until, rule = retained_until(date(2026, 3, 10), date(1940, 1, 1), date(2027, 6, 2))
    assert until == date(2037, 6, 2)
    assert "death" in rule


def test_a_death_of_a_child_within_ten_years_overrides_the_28th_birthday_too():
    # "In every case": 10 years after the death, though the 28th birthday is later.
    until, _ = retained_until(date(2026, 3, 10), date(2025, 1, 1), date(2026, 4, 1))
    assert until == date(2036, 4, 1)


def test_a_death_ten_years_or_more_after_the_last_stay_changes_nothing():
    until, rule = retained_until(date(2026, 3, 10), date(1940, 1, 1), date(2036, 3, 10))
    assert until == date(2046, 3, 10)
    assert "death" not in rule


def test_the_durations_are_the_institution_s():
    rules = Rules(years_after_last_stay=30, until_age=30, death_window_years=5, years_after_death=8)
    assert retained_until(date(2026, 1, 1), date(1960, 1, 1), None, rules)[0] == date(2056, 1, 1)
    assert retained_until(date(2026, 1, 1), date(2020, 1, 1), None, rules)[0] == date(2056, 1, 1)
    assert retained_until(date(2026, 1, 1), date(2020, 1, 1), date(2030, 1, 1), rules)[0] == (
        date(2038, 1, 1)
    )


def test_29_february_moves_to_1_march_never_a_day_earlier():
    assert add_years(date(2024, 2, 29), 20) == date(2044, 2, 29)  # a leap year again
    assert add_years(date(2024, 2, 29), 21) == date(2045, 3, 1)


@pytest.mark.django_db
def test_an_open_stay_keeps_the_record_with_no_date():
    patient = Patient.objects.create(
        ipp="RET001", family_name="Durand", given_name="Ana", birth_date=date(1970, 1, 1)
    )
    Admission.objects.create(
        patient=patient, ward="Cardiology", admitted_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    retention = patient_retention(patient)
    assert retention.until is None
    assert retention.as_dict()["rule"] == "kept while the patient's stay lasts"


@pytest.mark.django_db
def test_the_last_discharge_counts_and_a_recorded_death_shortens_it():
    patient = Patient.objects.create(
        ipp="RET002", family_name="Martin", given_name="Léo", birth_date=date(1950, 2, 2)
    )
    for admitted, discharged in (
        (datetime(2020, 1, 1), datetime(2020, 1, 9)),
        (
            datetime(2025, 5, 1),
            datetime(2025, 5, 20),
        ),
    ):
        Admission.objects.create(
            patient=patient,
            ward="Surgery",
            admitted_at=admitted.replace(tzinfo=UTC),
            discharged_at=discharged.replace(tzinfo=UTC),
        )
    assert patient_retention(patient).as_dict() == {
        "until": "2045-05-20",
        "rule": "20 years after the last stay or consultation (R.1112-7)",
        "last_care": "2025-05-20",
    }
    patient.died_on = date(2026, 2, 1)
    patient.save()
    assert patient_retention(patient).until == date(2036, 2, 1)


@pytest.mark.django_db
def test_a_patient_with_no_stay_or_thread_has_no_date_yet():
    patient = Patient.objects.create(
        ipp="RET003", family_name="Petit", given_name="Jo", birth_date=date(1990, 3, 3)
    )
    assert patient_retention(patient).until is None


def test_a_patient_known_only_by_a_thread_is_counted_from_its_activity(hospital):
    patient = hospital.thread.patient
    patient.admissions.all().delete()
    retention = patient_retention(patient)
    assert retention.last_care == timezone.localdate(hospital.thread.created_at)
    assert retention.until == add_years(retention.last_care, 20)
