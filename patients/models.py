"""Patient identity and admissions, as the patient administration system knows them."""

from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from rounds.text import fold


def name_key(name: str) -> str:
    """Fold case and accents so 'Lefèvre' is found by 'lefe'."""
    return fold(name)


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "O", "Other"
    UNKNOWN = "U", "Unknown"


class Patient(models.Model):
    """A patient, keyed by the hospital's IPP (identifiant permanent du patient)."""

    ipp = models.CharField(max_length=32, unique=True)
    family_name = models.CharField(max_length=120)
    given_name = models.CharField(max_length=120)
    birth_date = models.DateField(db_index=True)
    sex = models.CharField(max_length=1, choices=Sex.choices, default=Sex.UNKNOWN)
    # From the patient administration system, when known: it shortens or sets the
    # retention of the record (patients/retention.py).
    died_on = models.DateField(null=True, blank=True)
    family_name_key = models.CharField(max_length=120, db_index=True, editable=False)
    # A record merged into another (HL7 A40, FHIR Patient.link replaced-by) keeps its
    # row and IPP, pointing to the surviving one; its threads and photos moved there
    # (patients/merge.py).
    merged_into = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="merged_records"
    )
    merged_at = models.DateTimeField(null=True, blank=True)
    # The id of the FHIR Patient resource it was imported from (interop/fhir_import.py),
    # so that an Encounter naming `Patient/<id>` in a later import finds it.
    fhir_id = models.CharField(max_length=64, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(sex__in=["F", "M", "O", "U"]), name="patient_sex"),
        ]

    def __str__(self) -> str:
        return f"{self.ipp} {self.family_name.upper()} {self.given_name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.family_name_key = name_key(self.family_name)
        super().save(*args, **kwargs)


class AdmissionQuerySet(models.QuerySet["Admission"]):
    def current(self, at: datetime | None = None) -> "AdmissionQuerySet":
        at = at or timezone.now()
        return self.filter(admitted_at__lte=at, cancelled_at__isnull=True).filter(
            Q(discharged_at__isnull=True) | Q(discharged_at__gt=at)
        )


class Admission(models.Model):
    """A stay in one place: the patient is 'admitted' there between its two dates.

    A transfer ends one row and opens the next, with the same visit number (the
    encounter: HL7 PV1-19, FHIR Encounter.identifier), so the departments a patient
    went through stay known for follow-up. A cancelled row (A11, A12) is kept,
    marked, never deleted.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="admissions")
    ward = models.CharField(max_length=120)
    admitted_at = models.DateTimeField()
    discharged_at = models.DateTimeField(null=True, blank=True)
    # The department the location maps to (LocationMapping); None when unmapped.
    department = models.ForeignKey(
        "rooms.Department", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    visit_number = models.CharField(max_length=64, blank=True, db_index=True)
    # The location as the patient administration system names it (PV1-3).
    location = models.CharField(max_length=120, blank=True)
    kind = models.CharField(max_length=16, blank=True)  # inpatient, outpatient, pre-admission
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = AdmissionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(discharged_at__isnull=True)
                | Q(discharged_at__gte=models.F("admitted_at")),
                name="admission_dates_ordered",
            ),
        ]
        indexes = [models.Index(fields=["discharged_at", "admitted_at"])]

    def __str__(self) -> str:
        return f"{self.patient_id} in {self.ward}"


class LocationMapping(models.Model):
    """Which department a location of the patient administration system belongs to.

    Kept by IT (admin site, or `manage.py adt_locations`); a location no row names is
    refused and reported, never guessed (docs/interop.md).
    """

    location = models.CharField(max_length=120, unique=True)
    department = models.ForeignKey("rooms.Department", on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.location} → {self.department_id}"


class PotentialDuplicate(models.Model):
    """Two records with one name and birth date but two IPPs, for identity vigilance.

    Never merged by Rounds: the patient administration system merges (A40), and
    Rounds follows.
    """

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    other = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    flagged_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "other"], name="one_duplicate_flag"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_id} ~ {self.other_id}"


class AdtMessage(models.Model):
    """An ADT message as it came (HL7 v2 over MLLP, or a file), kept for replay.

    Keyed by its control ID (MSH-10): a message sent again after it was applied is
    answered as before and not applied twice. Reading these rows is audited (they
    name patients).
    """

    class Outcome(models.TextChoices):
        APPLIED = "applied"
        REFUSED = "refused"

    control_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=8)  # A01, A08…
    text = models.TextField()
    source = models.CharField(max_length=64)  # the peer's address, or the file's name
    received_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    # The refusal's code and text (as in the ACK's ERR segment), when refused.
    error = models.CharField(max_length=300, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.event} {self.control_id} {self.outcome}"
