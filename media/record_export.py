"""Photos sent to the patient record: the metadata a device needs, and the trace of a sending.

The photo goes from the clinician's device straight to the hospital's FHIR
server (a transaction Bundle: a Binary and the DocumentReference that points
to it), never through Rounds, whose server never sees a plaintext photo
(docs/interop-photos.md). Rounds' part is metadata: who the photo is of (the
IPP the record knows them by), the stay it was taken in, when, which
keywords, who took it; then, once the FHIR server has answered, the ids it
gave, kept on the photo (`PhotoExport`) and audited (`photo.exported`).

Settings: `ROUNDS_FHIR_BASE_URL` (empty: off) and `ROUNDS_FHIR_IPP_SYSTEM`.
"""

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from core.errors import InvalidRequest
from media.models import Attachment, AttachmentKeyword, PhotoExport
from patients.models import Admission
from rooms import access

# The identifier system of the patient's IPP when the deployment names none: the
# placeholder OID arc of a French hospital's IPP domain (an ASIP-style OID); every
# deployment sets its own, the one its FHIR server files patients under.
DEFAULT_IPP_SYSTEM = "urn:oid:1.2.250.1.71.4.2.7"
# The identifier system of a Rounds username (a DocumentReference's author): Rounds'
# own namespace, since a hospital's FHIR server knows no Rounds logins.
USER_SYSTEM = "urn:rounds:username"


def fhir_base_url() -> str | None:
    """The hospital's FHIR base URL without a trailing slash, or None when the feature is off."""
    base = str(getattr(settings, "ROUNDS_FHIR_BASE_URL", "") or "").strip().rstrip("/")
    return base or None


def ipp_system() -> str:
    return str(getattr(settings, "ROUNDS_FHIR_IPP_SYSTEM", "") or DEFAULT_IPP_SYSTEM)


def check_photo_record(actor: User, attachment_id: int) -> dict[str, Any]:
    """What a device needs to send the photo to the record, and where it has been sent.

    Raises:
        NotFound: the photo is not one the caller sees in the library (missing,
            in another department, of a redacted message: alike).
    """
    attachment = access.access_library_photo(actor, attachment_id)
    patient = attachment.patient
    sender = attachment.sender
    return {
        "attachment": attachment.pk,
        "fhir_base_url": fhir_base_url(),
        "ipp_system": ipp_system(),
        "user_system": USER_SYSTEM,
        "patient": {
            "ipp": patient.ipp,
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "birth_date": patient.birth_date.isoformat(),
        },
        "encounter": encounter_at(patient.pk, attachment.captured_at),
        "captured_at": _iso(attachment.captured_at),
        "consent": attachment.consent,
        "keywords": [
            {"code": code, "label": label}
            for code, label in AttachmentKeyword.objects.filter(attachment_id=attachment.pk)
            .order_by("id")
            .values_list("keyword_id", "keyword__label")
        ],
        "author": {"username": sender.username, "display_name": sender.label},
        "authenticator": {"username": actor.username, "display_name": actor.label},
        "exports": [
            _export(e)
            for e in PhotoExport.objects.filter(attachment_id=attachment.pk)
            .select_related("by")
            .order_by("at", "pk")
        ],
    }


def check_record_export(
    actor: User, attachment_id: int, *, server: str, document_reference: str, binary: str
) -> dict[str, Any]:
    """Record that the caller's device sent the photo to the FHIR server, which gave these ids.

    The ids' shape is checked at the edge (a FHIR id); the server must be the one
    configured, so that the trace never points at a server the hospital did not name.

    Raises:
        NotFound: as `check_photo_record`.
        InvalidRequest: the feature is off (`data.reason` `fhir_off`), or another server
            than the configured one (`other_server`).
    """
    attachment = access.access_library_photo(actor, attachment_id)
    base = fhir_base_url()
    # The catalogue's generic refusal and a reason for programs: clients hide the action
    # when the feature is off, so no person is meant to read these.
    if base is None:
        raise InvalidRequest(data={"reason": "fhir_off"})
    if server.strip().rstrip("/") != base:
        raise InvalidRequest(data={"reason": "other_server"})
    return do_record_export(
        actor, attachment, server=base, document_reference=document_reference, binary=binary
    )


def do_record_export(
    actor: User, attachment: Attachment, *, server: str, document_reference: str, binary: str
) -> dict[str, Any]:
    """Write the `PhotoExport` and its `photo.exported` entry in one transaction.

    Assumes the caller may see the photo and the ids are FHIR ids. The audit
    entry holds ids only: the photo's, the patient's and the FHIR resources'.
    """
    with transaction.atomic():
        export = PhotoExport.objects.create(
            attachment=attachment,
            by=actor,
            server=server,
            document_reference=document_reference,
            binary=binary,
            at=timezone.now(),
        )
        record(
            "photo.exported",
            actor=actor,
            department_id=attachment.department_id,
            object_type="attachment",
            object_id=attachment.pk,
            data={
                "export": export.pk,
                "patient_id": attachment.patient_id,
                "document_reference": document_reference,
                "binary": binary,
            },
        )
    return _export(export)


def encounter_at(patient_id: int, captured_at: datetime) -> str | None:
    """The visit number of the patient's stay at `captured_at` (admitted at or before it,
    discharged after it or not yet, not cancelled); the latest such stay when they overlap."""
    stay = (
        Admission.objects.current(at=captured_at)
        .filter(patient_id=patient_id)
        .exclude(visit_number="")
        .order_by("-admitted_at", "-pk")
        .values_list("visit_number", flat=True)
        .first()
    )
    return stay or None


def _export(export: PhotoExport) -> dict[str, Any]:
    return {
        "id": export.pk,
        "attachment": export.attachment_id,
        "server": export.server,
        "document_reference": export.document_reference,
        "binary": export.binary,
        "by": {
            "id": export.by.pk,
            "username": export.by.username,
            "display_name": export.by.label,
        },
        "at": _iso(export.at),
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()
