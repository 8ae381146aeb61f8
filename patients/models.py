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
        return self.filter(admitted_at__lte=at).filter(
            Q(discharged_at__isnull=True) | Q(discharged_at__gt=at)
        )


class Admission(models.Model):
    """A stay: the patient is 'admitted' between its two dates."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="admissions")
    ward = models.CharField(max_length=120)
    admitted_at = models.DateTimeField()
    discharged_at = models.DateTimeField(null=True, blank=True)

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
