"""The ADT hot path's statements, written in SQL.

An ADT listener applies each message in a few milliseconds, and most of that went
into the ORM building its queries (about 0.3 ms each here, fifteen times what the
database takes to answer them). These are the same reads, and the commonest writes,
as plain statements; the other writes stay with the models. Each function says which
ORM call it stands for, and tests/interop/test_statements.py checks each against it
on both databases.
"""

from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

from django.db import connection, models
from django.utils import timezone

from patients.models import Admission, Patient

M = TypeVar("M", bound=models.Model)


def _locking(sql: str, lock: bool) -> str:
    """`select_for_update()`: on PostgreSQL; SQLite's write transactions already are
    exclusive (BEGIN IMMEDIATE)."""
    return sql + " FOR UPDATE" if lock and connection.features.has_select_for_update else sql


def _first(model: type[M], sql: str, params: list[Any]) -> M | None:
    """The first instance `sql` reads, through `Model.objects.raw` (which applies the
    fields' conversions: a date is a `date`, a time is aware), None when none."""
    return next(iter(model._default_manager.raw(sql, params)), None)


def _one(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        return row


def message_outcome(control_id: str) -> str | None:
    """`AdtMessage.objects.filter(control_id=…)`'s outcome, None when never received."""
    row = _one("SELECT outcome FROM patients_adtmessage WHERE control_id = %s", [control_id])
    return None if row is None else str(row[0])


def patient_by_ipp(ipp: str, *, lock: bool = False) -> Patient | None:
    """`Patient.objects.filter(ipp=…).first()` (`select_for_update()` with `lock`)."""
    return _first(Patient, _locking("SELECT * FROM patients_patient WHERE ipp = %s", lock), [ipp])


def patient_by_id(pk: int) -> Patient:
    """`Patient.objects.get(pk=…)`."""
    found = _first(Patient, "SELECT * FROM patients_patient WHERE id = %s", [pk])
    if found is None:
        raise Patient.DoesNotExist(pk)
    return found


def same_name_and_birth(patient: Patient) -> list[int]:
    """The ids of the other live records with this family name (folded), given name (in
    any case) and birth date: `flag_duplicates`' query."""
    birth: date = patient.birth_date
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM patients_patient WHERE family_name_key = %s AND birth_date = %s"
            " AND UPPER(given_name) = UPPER(%s) AND merged_into_id IS NULL AND id <> %s"
            " ORDER BY id",
            [
                patient.family_name_key,
                connection.ops.adapt_datefield_value(birth),
                patient.given_name,
                patient.pk,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


class MappedDepartment(NamedTuple):
    id: int
    name: str


def mapped_department(location: str) -> MappedDepartment | None:
    """The department the location table names for `location`: its id and name."""
    row = _one(
        "SELECT d.id, d.name FROM patients_locationmapping m JOIN rooms_department d"
        " ON d.id = m.department_id WHERE m.location = %s",
        [location],
    )
    return None if row is None else MappedDepartment(int(row[0]), str(row[1]))


def open_stay(patient_id: int, visit_number: str) -> Admission | None:
    """The visit's stay still open (neither ended nor cancelled), the latest first, locked:
    `Admission.objects.select_for_update().filter(…).order_by("-admitted_at", "-pk")`."""
    sql = (
        "SELECT * FROM patients_admission WHERE patient_id = %s AND visit_number = %s"
        " AND discharged_at IS NULL AND cancelled_at IS NULL"
        " ORDER BY admitted_at DESC, id DESC LIMIT 1"
    )
    return _first(Admission, _locking(sql, True), [patient_id, visit_number])


def end_stay(stay: Admission, at: datetime) -> None:
    """`stay.discharged_at = at; stay.save(update_fields=["discharged_at"])`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE patients_admission SET discharged_at = %s WHERE id = %s",
            [connection.ops.adapt_datetimefield_value(at), stay.pk],
        )
    stay.discharged_at = at


def keep_message(control_id: str, values: dict[str, Any]) -> None:
    """`AdtMessage.objects.create(control_id=…, **values)`, received now; a control ID
    kept already raises IntegrityError, as the model's unique constraint would."""
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO patients_adtmessage"
            " (control_id, event, text, source, received_at, outcome, error, applied_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                control_id,
                values["event"],
                values["text"],
                values["source"],
                adapt(timezone.now()),
                values["outcome"],
                values["error"],
                adapt(values["applied_at"]),
            ],
        )
