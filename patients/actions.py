"""Finding a patient among the admitted, the way a clinician at the bedside does."""

from datetime import date
from typing import Any

from accounts.models import User
from audit.actions import record
from core.errors import N_, InvalidRequest, NotFound
from patients.models import Admission, Patient, name_key
from patients.retention import patient_retention
from rooms import access

SEARCH_LIMIT = 25


def patient_data(patient: Patient, ward: str | None = None) -> dict[str, Any]:
    return {
        "id": patient.pk,
        "ipp": patient.ipp,
        "family_name": patient.family_name,
        "given_name": patient.given_name,
        "birth_date": patient.birth_date.isoformat(),
        "sex": patient.sex,
        "ward": ward,
    }


def check_search_admitted(
    actor: User, *, ipp: str | None = None, birth_date: date | None = None, name: str | None = None
) -> list[dict[str, Any]]:
    """Patients staying now in the caller's departments (or in no known department)
    matching every criterion given (IPP exact, birth date, name prefix).

    Only members of a department may search. Every search is audited with
    which criteria were used and how many patients matched, not their values.
    """
    access.check_clinician(actor)
    name = (name or "").strip()
    if not (ipp or birth_date or name):
        raise InvalidRequest(N_("Give an IPP, a birth date or the start of a name."))
    if name and len(name) < 2:
        raise InvalidRequest(N_("Give at least two letters of the name."))
    admissions = access.admitted_for(actor).select_related("patient")
    if ipp:
        admissions = admissions.filter(patient__ipp=ipp.strip())
    if birth_date:
        admissions = admissions.filter(patient__birth_date=birth_date)
    if name:
        admissions = admissions.filter(patient__family_name_key__startswith=name_key(name))
    rows = list(
        admissions.order_by("patient__family_name_key", "patient__given_name")[:SEARCH_LIMIT]
    )
    record(
        "patient.searched",
        actor=actor,
        object_type="patient_search",
        data={
            "ipp": bool(ipp),
            "birth_date": bool(birth_date),
            "name": bool(name),
            "results": len(rows),
        },
    )
    return [patient_data(a.patient, a.ward) for a in rows]


def check_get_patient(actor: User, patient_id: int) -> dict[str, Any]:
    """A patient the caller's departments have a relationship with (rooms/access/
    `patient_visible`): a stay there, now or past, or a thread there."""
    access.check_clinician(actor)
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None:
        raise NotFound(N_("Patient not found."))
    if not access.patient_visible(actor, patient.pk):
        raise NotFound(N_("Patient not found."))
    admission = Admission.objects.current().filter(patient=patient).first()
    record("patient.viewed", actor=actor, object_type="patient", object_id=patient.pk)
    # Until when the record, conversations included, is kept: the thread banner says so.
    retention = patient_retention(patient).as_dict()
    return {**patient_data(patient, admission.ward if admission else None), "retention": retention}
