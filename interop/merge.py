"""Merging two records of one patient (HL7 A40, FHIR Patient.link replaced-by).

The patient administration system decides; Rounds follows, in one transaction:
the merged record's threads, photos, stays, weekly-review marks, review cases and
legal holds go to the surviving record, the merged record keeps its row and IPP
(pointing to the survivor, so a late message naming it still finds the patient),
each moved thread's department hears `thread.patient_changed`, and one audit entry
counts what moved. Two records are never merged by Rounds on its own: a potential
duplicate is only flagged (patients/identity.py).

Undoing a merge (A37) is not automated: docs/interop.md says how IT does it.
"""

from typing import Any

from django.utils import timezone

from audit.actions import record
from chat.actions import thread_data
from chat.events import append_event
from chat.models import Thread
from compliance.models import Case
from core.events import EventKind
from media.models import Attachment, ReviewMark
from patients.actions import patient_data
from patients.identity import IdentityRefused, Source
from patients.models import Admission, Patient, PotentialDuplicate
from retention.models import LegalHold


def do_merge(surviving: Patient, merged: Patient, source: Source) -> dict[str, int]:
    """Move everything of `merged` to `surviving`; runs in the caller's transaction.

    A merge announced again (the same two records) moves nothing and says so.
    """
    if surviving.pk == merged.pk:
        raise IdentityRefused("a record cannot be merged into itself")
    merged = Patient.objects.select_for_update().get(pk=merged.pk)
    if merged.merged_into_id == surviving.pk:
        return {"threads": 0, "photos": 0, "stays": 0}
    if merged.merged_into_id is not None or surviving.merged_into_id is not None:
        raise IdentityRefused("one of the two records was already merged into another")
    threads = list(Thread.objects.select_for_update().filter(patient=merged).order_by("pk"))
    moved = {
        "threads": Thread.objects.filter(patient=merged).update(patient=surviving),
        "photos": Attachment.objects.filter(patient=merged).update(patient=surviving),
        "stays": Admission.objects.filter(patient=merged).update(patient=surviving),
        "review_marks": _move_review_marks(merged, surviving),
        "cases": Case.objects.filter(patient=merged).update(patient=surviving),
        "holds": LegalHold.objects.filter(patient=merged).update(patient=surviving),
    }
    PotentialDuplicate.objects.filter(
        patient__in=(merged, surviving), other__in=(merged, surviving), resolved_at__isnull=True
    ).update(resolved_at=timezone.now())
    merged.merged_into, merged.merged_at = surviving, timezone.now()
    merged.save(update_fields=["merged_into", "merged_at"])
    record(
        "patient.merged",
        object_type="patient",
        object_id=surviving.pk,
        data=source.data(merged=merged.pk, **moved),
    )
    for thread in threads:
        thread.patient = surviving
        append_event(
            thread.department_id,
            EventKind.THREAD_PATIENT_CHANGED,
            {
                "thread": thread_data(thread),
                "patient": patient_data(surviving),
                "previous": {"id": merged.pk, "ipp": merged.ipp},
                "reason": "merge",
            },
        )
    return moved


def _move_review_marks(merged: Patient, surviving: Patient) -> int:
    """A week both records were marked reviewed in keeps the survivor's mark."""
    moved = 0
    for mark in ReviewMark.objects.filter(patient=merged):
        if ReviewMark.objects.filter(
            department_id=mark.department_id, week=mark.week, patient=surviving
        ).exists():
            mark.delete()
        else:
            ReviewMark.objects.filter(pk=mark.pk).update(patient=surviving)
            moved += 1
    return moved


def merge_summary(moved: dict[str, Any]) -> str:
    return ", ".join(f"{count} {name}" for name, count in moved.items() if count)
