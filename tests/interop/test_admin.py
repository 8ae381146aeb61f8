"""The admin site's pages on the patient administration data (patients/admin.py): the
location table kept by IT, potential duplicates marked dealt with, and ADT messages
read-only with every look audited (they name patients)."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from patients.identity import PatientFacts, Source, do_record_patient
from patients.models import AdtMessage, PotentialDuplicate
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


def admin_client(hospital) -> Client:
    client = Client()
    answer = client.post(
        "/api/auth/login",
        {"username": "admin_zoe", "password": PASSWORD},
        content_type="application/json",
    )
    assert answer.status_code == 200
    return client


def test_reading_kept_adt_messages_is_audited(hospital):
    kept = AdtMessage.objects.create(
        control_id="C-1", event="A01", text="MSH|…", source="test", outcome="refused", error="x"
    )
    client = admin_client(hospital)
    assert client.get("/admin/patients/adtmessage/").status_code == 200
    assert client.get(f"/admin/patients/adtmessage/{kept.pk}/change/").status_code == 200
    actions = list(
        AuditEvent.objects.filter(action__startswith="adt.")
        .order_by("id")
        .values_list("action", "actor_username")
    )
    assert actions == [("adt.messages_listed", "admin_zoe"), ("adt.message_read", "admin_zoe")]
    # Read-only: no edit, no deletion.
    assert (
        client.post(f"/admin/patients/adtmessage/{kept.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AdtMessage.objects.filter(pk=kept.pk).exists()


def test_a_potential_duplicate_is_marked_dealt_with(hospital):
    twin = hospital.patient
    facts = PatientFacts("00999001", twin.family_name, twin.given_name, twin.birth_date)
    do_record_patient(facts, Source("adt", "T-1"))
    flag = PotentialDuplicate.objects.get()
    client = admin_client(hospital)
    answer = client.post(
        "/admin/patients/potentialduplicate/",
        {"action": "mark_resolved", "_selected_action": [flag.pk]},
    )
    assert answer.status_code == 302
    assert PotentialDuplicate.objects.get().resolved_at is not None
    assert AuditEvent.objects.filter(
        action="patient.duplicate_resolved", actor_username="admin_zoe"
    ).exists()


def test_a_clinician_has_no_admin_pages(hospital):
    client = Client()
    client.post(
        "/api/auth/login",
        {"username": "nurse_alice", "password": PASSWORD},
        content_type="application/json",
    )
    assert client.get("/admin/patients/adtmessage/").status_code == 302
    assert not AuditEvent.objects.filter(action__startswith="adt.").exists()
