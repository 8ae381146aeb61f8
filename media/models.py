"""Encrypted blobs (uploads), the attachments that make them readable, and keywords.

The server holds ciphertext only. An `Upload` is a blob on its way in or
stored; it becomes readable when a message references it, through an
`Attachment`, which is also the photo library's index row (department,
patient, capture date, keywords, consent): the library is a view over
attachments, with no second copy of anything. docs/media.md describes the
flow and its rules.
"""

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from chat.models import Message, Thread
from patients.models import Patient
from rooms.models import Department

if TYPE_CHECKING:
    from compliance.models import Case


class UploadState(models.TextChoices):
    RECEIVING = "receiving"
    COMPLETE = "complete"
    ATTACHED = "attached"
    FAILED = "failed"
    EXPIRED = "expired"


class Upload(models.Model):
    """One encrypted blob, sent in chunks by its owner for one department.

    `received` only grows, by whole chunks appended at `received`; the blob
    is assembled from its parts and its SHA-256 checked at completion.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    size = models.BigIntegerField()
    received = models.BigIntegerField(default=0)
    state = models.CharField(
        max_length=16, choices=UploadState.choices, default=UploadState.RECEIVING
    )
    sha256 = models.CharField(max_length=64, blank=True, default="")
    storage_name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    attached_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    # Not a column: rooms.access.access_attached_upload sets it on the object it returns,
    # the case a compliance officer reads the upload under (None otherwise).
    case: "Case | None"

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(size__gt=0), name="upload_size_positive"),
            models.CheckConstraint(
                condition=Q(received__gte=0) & Q(received__lte=F("size")),
                name="upload_received_within_size",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in UploadState]), name="upload_state_known"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["state", "expires_at"]),
        ]

    def __str__(self) -> str:
        return f"upload {self.pk} ({self.state})"


class UploadPart(models.Model):
    """A chunk stored as it came, until completion joins the parts into one blob."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="parts")
    offset = models.BigIntegerField()
    size = models.IntegerField()
    storage_name = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["upload", "offset"], name="upload_part_unique"),
            models.CheckConstraint(condition=Q(size__gt=0), name="upload_part_size_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.upload_id}@{self.offset}"


class KeywordCategory(models.TextChoices):
    SITE = "site", "Anatomical site"
    CONTEXT = "context", "Context"


class Keyword(models.Model):
    """One term of the institution's nomenclature, the only indexable words of a photo.

    Free text stays in the encrypted body; these codes are what the server
    may see and search. Administrators edit them (`/admin/`); a retired
    term is deactivated, never deleted, so older photos keep it.
    """

    code = models.SlugField(primary_key=True, max_length=64)
    label = models.CharField(max_length=200)
    category = models.CharField(max_length=16, choices=KeywordCategory.choices)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["category", "label"]

    def __str__(self) -> str:
        return self.label


class Consent(models.TextChoices):
    CARE = "care", "Care only"
    TEACHING = "teaching", "Teaching"
    PUBLICATION = "publication", "Publication"


class Attachment(models.Model):
    """A photo (and its thumbnail) referenced by a message: the library's row.

    Department, thread and patient are copied from the message's thread so
    that library queries filter one table. The sequence of a photo is its
    message (the photos of one patient posted together).
    """

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="attachment_rows")
    position = models.PositiveSmallIntegerField()
    upload = models.OneToOneField(Upload, on_delete=models.PROTECT, related_name="attachment")
    thumbnail = models.OneToOneField(
        Upload, on_delete=models.PROTECT, null=True, blank=True, related_name="thumbnail_of"
    )
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    thread = models.ForeignKey(Thread, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    captured_at = models.DateTimeField()
    consent = models.CharField(max_length=16, choices=Consent.choices)
    annotates = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="annotations"
    )
    keywords = models.ManyToManyField(Keyword, through="AttachmentKeyword", related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "position"], name="attachment_position_unique"
            ),
            models.CheckConstraint(
                condition=Q(consent__in=[c.value for c in Consent]), name="attachment_consent_known"
            ),
        ]
        indexes = [
            models.Index(fields=["department", "-captured_at", "-id"]),
            models.Index(fields=["patient", "-captured_at", "-id"]),
            models.Index(fields=["sender", "-captured_at", "-id"]),
        ]

    def __str__(self) -> str:
        return f"attachment {self.pk} of message {self.message_id}"


class AttachmentKeyword(models.Model):
    attachment = models.ForeignKey(Attachment, on_delete=models.PROTECT, related_name="+")
    keyword = models.ForeignKey(Keyword, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["attachment", "keyword"], name="attachment_keyword_unique"
            ),
        ]
        indexes = [models.Index(fields=["keyword", "attachment"])]

    def __str__(self) -> str:
        return f"{self.attachment_id}:{self.keyword_id}"


class ReviewMark(models.Model):
    """A case (a patient's photos of one week) marked reviewed at a department's weekly review.

    One row per department, ISO week and patient: marking twice keeps the first
    mark, unmarking deletes the row; both are in the audit trail, which is where
    the history lives.
    """

    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="+")
    week = models.CharField(max_length=8)  # ISO week, "2026-W49"
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["department", "week", "patient"], name="review_mark_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.department_id} {self.week} patient {self.patient_id}"


class PhotoExport(models.Model):
    """A photo a clinician's device sent to the hospital's FHIR server (docs/interop-photos.md).

    The device posted the plaintext straight to the FHIR server; this row only
    keeps where it went and the resource ids the FHIR server gave, so that the
    photo shows it is in the patient record, and who put it there.
    """

    attachment = models.ForeignKey(Attachment, on_delete=models.PROTECT, related_name="exports")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    server = models.CharField(max_length=500)  # the FHIR base URL posted to
    document_reference = models.CharField(max_length=64)  # a FHIR id: [A-Za-z0-9.-]{1,64}
    binary = models.CharField(max_length=64)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["attachment", "at"])]

    def __str__(self) -> str:
        return f"attachment {self.attachment_id} → DocumentReference/{self.document_reference}"
