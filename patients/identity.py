"""Patients and their stays as the hospital's systems announce them: one set of rules for
HL7 v2 ADT (interop/adt.py) and FHIR (interop/fhir_import.py), docs/interop.md.

Every change is audited with its source (`adt` with the message's control ID, or
`fhir`), has no actor (the patient administration system is not a Rounds user), and
happens in the caller's transaction, so a message is applied whole or not at all.
A refusal is an `IdentityRefused` with a short reason the ADT acknowledgement quotes.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db.models import QuerySet

from audit.actions import record
from core.errors import N_, ErrorCode, RoundsError
from patients import statements
from patients.models import Admission, Patient, PotentialDuplicate, Sex
from patients.statements import MappedDepartment


class IdentityRefused(RoundsError):
    """A message that cannot be applied as it stands: kept, refused, replayable."""

    code = ErrorCode.INVALID_REQUEST
    default_message = N_("The patient administration message cannot be applied.")


@dataclass(frozen=True)
class PatientFacts:
    """Who the patient is, as the message says (PID, or a FHIR Patient)."""

    ipp: str
    family_name: str
    given_name: str
    birth_date: date
    sex: str = Sex.UNKNOWN
    died_on: date | None = None


@dataclass(frozen=True)
class Movement:
    """Where a visit (an encounter) is, from when (PV1, or a FHIR Encounter)."""

    visit_number: str
    location: str
    at: datetime
    kind: str = "inpatient"


@dataclass(frozen=True)
class Source:
    """Where a change comes from, for the audit trail: `adt` (a control ID) or `fhir`."""

    system: str
    reference: str = ""

    def data(self, **more: Any) -> dict[str, Any]:
        return {"source": self.system, "reference": self.reference[:64], **more}


def _refuse(reason: str) -> IdentityRefused:
    return IdentityRefused(reason)


def _audit(
    action: str,
    patient: Patient,
    source: Source,
    department_id: int | None = None,
    **data: Any,
) -> None:
    """One entry of a change to the patient's record, naming where it came from."""
    record(
        action,
        object_type="patient",
        object_id=patient.pk,
        department_id=department_id,
        data=source.data(**data),
    )


def find_patient(ipp: str) -> Patient | None:
    """The record an IPP names, followed to the surviving one when it was merged."""
    patient = statements.patient_by_ipp(ipp)
    while patient is not None and patient.merged_into_id is not None:
        patient = statements.patient_by_id(patient.merged_into_id)
    return patient


def do_record_patient(facts: PatientFacts, source: Source) -> Patient:
    """Create or update the record of `facts.ipp`; a new one, or one whose name or birth
    date changed, is compared with the others for identity vigilance."""
    patient = statements.patient_by_ipp(facts.ipp, lock=True)
    if patient is not None and patient.merged_into_id is not None:
        raise _refuse(f"IPP {facts.ipp} was merged into another record")
    fields = {
        "family_name": facts.family_name,
        "given_name": facts.given_name,
        "birth_date": facts.birth_date,
        "sex": facts.sex,
        "died_on": facts.died_on,
    }
    if patient is None:
        patient = Patient.objects.create(ipp=facts.ipp, **fields)
        _audit("patient.created", patient, source)
        flag_duplicates(patient)
        return patient
    changed = sorted(k for k, v in fields.items() if getattr(patient, k) != v)
    if changed:
        for name, value in fields.items():
            setattr(patient, name, value)
        patient.save()
        _audit("patient.updated", patient, source, fields=changed)
        if {"family_name", "given_name", "birth_date"} & set(changed):
            flag_duplicates(patient)
    return patient


def flag_duplicates(patient: Patient) -> int:
    """Flag other live records with this name and birth date (never merged here)."""
    flagged = 0
    for other in statements.same_name_and_birth(patient):
        first, second = sorted((patient.pk, other))
        _, created = PotentialDuplicate.objects.get_or_create(patient_id=first, other_id=second)
        if created:
            flagged += 1
            record(
                "patient.duplicate_flagged",
                object_type="patient",
                object_id=first,
                data={"other": second},
            )
    return flagged


def department_for(location: str) -> MappedDepartment:
    """The department the location table names for `location` (its id and name)."""
    found = statements.mapped_department(location)
    if found is None:
        raise _refuse(f"unmapped location {location!r}: add it to the location table")
    return found


def _open_stay(patient: Patient, visit_number: str) -> Admission | None:
    return statements.open_stay(patient.pk, visit_number)


def _stay(patient: Patient, movement: Movement) -> Admission:
    department = department_for(movement.location)
    return Admission.objects.create(
        patient=patient,
        ward=department.name,
        location=movement.location,
        department_id=department.id,
        visit_number=movement.visit_number,
        kind=movement.kind,
        admitted_at=movement.at,
    )


def do_admit(patient: Patient, movement: Movement, source: Source) -> Admission:
    """A01 / A04 / A05: the visit starts at its location. Announced twice, it is one stay
    (its location updated)."""
    stay = _open_stay(patient, movement.visit_number)
    if stay is not None:
        if stay.location != movement.location:
            department = department_for(movement.location)
            stay.location, stay.department_id, stay.ward = (
                movement.location,
                department.id,
                department.name,
            )
            stay.save(update_fields=["location", "department", "ward"])
        return stay
    stay = _stay(patient, movement)
    _audit(
        "patient.admitted",
        patient,
        source,
        department_id=stay.department_id,
        visit=movement.visit_number,
        kind=movement.kind,
    )
    return stay


def do_transfer(patient: Patient, movement: Movement, source: Source) -> Admission:
    """A02: the visit leaves its place at `at` for another."""
    current = _open_stay(patient, movement.visit_number)
    if current is None:
        raise _refuse(f"no open stay for visit {movement.visit_number} to transfer")
    if movement.at < current.admitted_at:
        raise _refuse("the transfer is dated before the stay it ends")
    statements.end_stay(current, movement.at)
    stay = _stay(patient, movement)
    _audit(
        "patient.transferred",
        patient,
        source,
        department_id=stay.department_id,
        visit=movement.visit_number,
        from_department=current.department_id,
    )
    return stay


def do_discharge(patient: Patient, visit_number: str, at: datetime, source: Source) -> Admission:
    """A03: the visit ends. Before its admission is known (out of order), refused."""
    current = _open_stay(patient, visit_number)
    if current is None:
        raise _refuse(f"no open stay for visit {visit_number} to discharge")
    if at < current.admitted_at:
        raise _refuse("the discharge is dated before the stay it ends")
    statements.end_stay(current, at)
    _audit(
        "patient.discharged",
        patient,
        source,
        department_id=current.department_id,
        visit=visit_number,
    )
    return current


def _visit_rows(patient: Patient, visit_number: str) -> QuerySet[Admission]:
    return Admission.objects.select_for_update().filter(
        patient=patient, visit_number=visit_number, cancelled_at__isnull=True
    )


def do_cancel_admit(patient: Patient, visit_number: str, at: datetime, source: Source) -> int:
    """A11: the visit never was; its rows are kept, marked cancelled."""
    cancelled = _visit_rows(patient, visit_number).update(cancelled_at=at)
    if not cancelled:
        raise _refuse(f"no stay for visit {visit_number} to cancel")
    _audit("patient.admission_cancelled", patient, source, visit=visit_number, stays=cancelled)
    return int(cancelled)


def do_cancel_transfer(patient: Patient, visit_number: str, at: datetime, source: Source) -> None:
    """A12: the last move did not happen; the place before it is current again."""
    rows = list(_visit_rows(patient, visit_number).order_by("-admitted_at", "-pk")[:2])
    if len(rows) < 2 or rows[0].discharged_at is not None:
        raise _refuse(f"no transfer of visit {visit_number} to cancel")
    last, before = rows
    last.cancelled_at = at
    last.save(update_fields=["cancelled_at"])
    before.discharged_at = None
    before.save(update_fields=["discharged_at"])
    _audit(
        "patient.transfer_cancelled",
        patient,
        source,
        department_id=before.department_id,
        visit=visit_number,
    )


def do_cancel_discharge(patient: Patient, visit_number: str, source: Source) -> Admission:
    """A13: the patient did not leave; the visit's last place is current again."""
    last = _visit_rows(patient, visit_number).order_by("-admitted_at", "-pk").first()
    if last is None or last.discharged_at is None:
        raise _refuse(f"no discharge of visit {visit_number} to cancel")
    last.discharged_at = None
    last.save(update_fields=["discharged_at"])
    _audit(
        "patient.discharge_cancelled",
        patient,
        source,
        department_id=last.department_id,
        visit=visit_number,
    )
    return last
