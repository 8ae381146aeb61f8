"""Photos sent to the patient record, Rounds' side (docs/interop-photos.md): the metadata a
device builds its FHIR Bundle from, and the trace of a sending, each only for a photo the
caller sees in the library, the trace audited with ids only. Every answer is checked
against its model in core/api_schemas/record.py (extra keys forbidden).
"""

from datetime import UTC, datetime, timedelta

import pytest

from chat.redaction import check_redact_message
from core.api_schemas.record import PhotoExportOut, PhotoRecord
from media import record_export
from media.models import Attachment, PhotoExport
from patients.models import Admission
from tests.support import Api, Hospital, assert_refused, audit_entries
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db

FHIR = "https://fhir.hospital.example/fhir"
IPP_SYSTEM = "urn:oid:1.2.250.1.999.1"
CAPTURED = datetime(2026, 11, 23, 8, 15, tzinfo=UTC)


@pytest.fixture
def fhir_on(settings):
    settings.ROUNDS_FHIR_BASE_URL = FHIR + "/"  # a trailing slash is not part of the base
    settings.ROUNDS_FHIR_IPP_SYSTEM = IPP_SYSTEM
    return settings


@pytest.fixture
def photo_id(hospital: Hospital) -> int:
    """A photo of Léa by surgeon_bob in plastic surgery, during a stay with a visit number."""
    h = hospital
    Admission.objects.create(
        patient=h.patient,
        ward="Plastic surgery",
        admitted_at=CAPTURED - timedelta(days=1),
        discharged_at=CAPTURED + timedelta(days=3),
        visit_number="V2026-0042",
    )
    ref = photo(
        h, "surgeon_bob", keywords=("hand", "post-operative"), captured_at=CAPTURED.isoformat()
    )
    ack, _ = post_photos(h, "surgeon_bob", [ref])
    return Attachment.objects.get(message_id=ack["message_id"]).pk


def path(attachment_id: int) -> str:
    return f"/api/library/photos/{attachment_id}/record"


def sent(document_reference: str = "123", binary: str = "122") -> dict[str, str]:
    return {"server": FHIR, "document_reference": document_reference, "binary": binary}


def test_a_member_gets_what_the_bundle_needs(fhir_on, hospital, photo_id):
    response = Api(hospital.nurse_alice).get(path(photo_id))

    assert response.status_code == 200, response.content
    body = PhotoRecord.model_validate(response.json()).model_dump()
    assert body["fhir_base_url"] == FHIR
    assert body["ipp_system"] == IPP_SYSTEM
    assert body["user_system"] == record_export.USER_SYSTEM
    assert body["patient"] == {
        "ipp": "00800100",
        "family_name": "Lefèvre",
        "given_name": "Léa",
        "birth_date": "1985-01-30",
    }
    assert body["encounter"] == "V2026-0042"
    assert body["captured_at"] == "2026-11-23T08:15:00+00:00"
    assert [k["code"] for k in body["keywords"]] == ["hand", "post-operative"]
    assert all(k["label"] for k in body["keywords"])
    assert body["author"]["username"] == "surgeon_bob"  # who took it
    assert body["authenticator"]["username"] == "nurse_alice"  # who sends it
    assert body["consent"] == "care"
    assert body["exports"] == []


def test_no_stay_at_the_capture_time_means_no_encounter(fhir_on, hospital):
    h = hospital
    # The fixture's stay of Léa began two days ago; this photo is from a year before.
    long_ago = (CAPTURED - timedelta(days=365)).isoformat()
    ack, _ = post_photos(h, "surgeon_bob", [photo(h, "surgeon_bob", captured_at=long_ago)])
    Admission.objects.create(
        patient=h.patient,
        ward="Plastic surgery",
        admitted_at=CAPTURED - timedelta(days=366),
        discharged_at=CAPTURED - timedelta(days=360),
        visit_number="CANCELLED-1",
        cancelled_at=CAPTURED - timedelta(days=359),
    )

    attachment = Attachment.objects.get(message_id=ack["message_id"])
    body = Api(h.surgeon_bob).get(path(attachment.pk)).json()

    assert body["encounter"] is None


def test_the_stay_ends_before_its_discharge_instant(hospital):
    h = hospital
    Admission.objects.create(
        patient=h.patient,
        ward="Plastic surgery",
        admitted_at=CAPTURED - timedelta(days=3),
        discharged_at=CAPTURED,
        visit_number="V-ENDED",
    )

    assert record_export.encounter_at(h.patient.pk, CAPTURED) is None
    assert record_export.encounter_at(h.patient.pk, CAPTURED - timedelta(seconds=1)) == "V-ENDED"


@pytest.mark.parametrize("who", ["nurse_ines", "intern_erin", "compliance_dan"])
def test_whoever_does_not_see_the_photo_is_refused_alike_and_nothing_is_recorded(
    fhir_on, hospital, photo_id, who
):
    """Another department's nurse, a removed member, an officer without a membership."""
    api = Api(hospital.user(who))

    missing = assert_refused(api.get(path(999_999)), 404, "not_found")
    assert assert_refused(api.get(path(photo_id)), 404, "not_found") == missing
    assert_refused(api.post(path(photo_id), sent()), 404, "not_found")

    assert not PhotoExport.objects.exists()
    assert audit_entries("photo.exported") == []


def test_a_redacted_messages_photo_is_not_found(fhir_on, hospital, photo_id):
    message_id = Attachment.objects.get(pk=photo_id).message_id
    check_redact_message(hospital.surgeon_bob, message_id, "wrong patient")

    assert_refused(Api(hospital.surgeon_bob).get(path(photo_id)), 404, "not_found")


def test_with_the_feature_off_the_server_says_so_and_records_nothing(settings, hospital, photo_id):
    settings.ROUNDS_FHIR_BASE_URL = ""
    api = Api(hospital.surgeon_bob)

    body = PhotoRecord.model_validate(api.get(path(photo_id)).json())
    assert body.fhir_base_url is None
    assert body.ipp_system == record_export.DEFAULT_IPP_SYSTEM

    refused = assert_refused(api.post(path(photo_id), sent()), 400, "invalid_request")
    assert refused["data"] == {"reason": "fhir_off"}
    assert not PhotoExport.objects.exists()
    assert audit_entries("photo.exported") == []


def test_a_sending_is_recorded_on_the_photo_and_audited_with_ids_only(fhir_on, hospital, photo_id):
    h = hospital
    api = Api(h.nurse_alice)

    response = api.post(path(photo_id), sent("123", "122"))

    assert response.status_code == 201, response.content
    export = PhotoExportOut.model_validate(response.json())
    assert (export.attachment, export.server) == (photo_id, FHIR)
    assert (export.document_reference, export.binary) == ("123", "122")
    assert export.by.username == "nurse_alice"
    row = PhotoExport.objects.get()
    assert (row.attachment_id, row.by_id, row.document_reference) == (
        photo_id,
        h.nurse_alice.pk,
        "123",
    )
    (entry,) = audit_entries("photo.exported")
    assert entry.actor_id == h.nurse_alice.pk
    assert entry.department_id == h.plastic.pk
    assert (entry.object_type, entry.object_id) == ("attachment", str(photo_id))
    assert entry.data == {
        "export": row.pk,
        "patient_id": h.patient.pk,
        "document_reference": "123",
        "binary": "122",
    }
    text = str(entry.data)
    assert "00800100" not in text and "Lefèvre" not in text and FHIR not in text
    # The photo now shows where it went, to every member who opens it.
    listed = Api(h.surgeon_bob).get(path(photo_id)).json()["exports"]
    assert listed == [response.json()]


@pytest.mark.parametrize(
    "body",
    [
        {"server": "https://elsewhere.example/fhir", "document_reference": "1", "binary": "2"},
        {"server": FHIR, "document_reference": "DocumentReference/1", "binary": "2"},
        {"server": FHIR, "document_reference": "1", "binary": "x" * 65},
        {"server": FHIR, "document_reference": "1"},
    ],
    ids=["another-server", "a-reference-not-an-id", "an-id-too-long", "no-binary"],
)
def test_a_bad_trace_is_refused_and_nothing_is_recorded(fhir_on, hospital, photo_id, body):
    refused = assert_refused(
        Api(hospital.surgeon_bob).post(path(photo_id), body), 400, "invalid_request"
    )

    if body["server"] != FHIR:
        assert refused["data"] == {"reason": "other_server"}
    assert not PhotoExport.objects.exists()
    assert audit_entries("photo.exported") == []


def test_signed_out_is_refused(fhir_on, hospital, photo_id):
    from django.test import Client

    assert_refused(Client().get(path(photo_id)), 401, "not_authenticated")


def test_a_sending_to_the_record_is_in_the_patients_access_report(fhir_on, hospital, photo_id):
    """The patient's access report (compliance/access_report.py) names the photo sent."""
    from django.utils import timezone

    from compliance.access_report import CERTAIN, candidates, footprint, resolve
    from compliance.models import Case

    answer = Api(hospital.surgeon_bob).post(path(photo_id), sent("7", "8"))
    assert answer.status_code == 201, answer.content
    case = Case.objects.create(
        reference="AR-1",
        reason="The patient's request",
        opened_by=hospital.compliance_dan,
        opened_at=timezone.now(),
        patient=hospital.patient,
    )
    fp = footprint(hospital.patient.pk)
    found = [e for e in candidates(fp, case) if e.action == "photo.exported"]
    assert [resolve(e, fp) for e in found] == [CERTAIN]
