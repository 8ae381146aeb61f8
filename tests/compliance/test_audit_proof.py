"""A case's audit slice proved to a signed checkpoint: every entry, nothing else released."""

import pytest

from audit.models import AuditEvent, AuditSeal
from compliance.release import check_case_threads
from core.crypto.audit_proof import (
    canonical_record,
    chain_hash,
    checkpoint_signature_ok,
    leaf_hash,
    verify_inclusion,
)
from tests.support import Api, assert_refused
from tests.support.cases import open_case, second_officer

pytestmark = pytest.mark.django_db


def proof_url(case) -> str:
    return f"/api/compliance/cases/{case.pk}/audit/proof"


def assert_proved(body: dict, public_key: bytes) -> None:
    """What verify-export checks of each entry, done here on the server's answer."""
    checkpoint = body["checkpoint"]
    assert checkpoint_signature_ok(checkpoint, public_key)
    root = bytes.fromhex(checkpoint["root"])
    for entry in body["entries"]:
        seal, record = entry["seal"], entry["record"]
        assert record["id"] == entry["id"] and record["action"] == entry["action"]
        assert seal["hash"] == chain_hash(seal["seq"], seal["prev_hash"], canonical_record(record))
        leaf = leaf_hash(bytes.fromhex(seal["hash"]))
        path = [bytes.fromhex(step) for step in entry["path"]]
        assert verify_inclusion(seal["seq"] - 1, checkpoint["seq"], leaf, path, root)


def test_every_entry_of_the_slice_is_proved_and_no_other_is_released(hospital, checkpoint_sink):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    check_case_threads(h.compliance_dan, case.pk)
    for n in range(5):  # other people's entries, before and after the case's
        AuditEvent.objects.create(at=case.opened_at, action="history.read", object_id=str(n))
    response = Api(h.compliance_dan).post(proof_url(case), {})
    assert response.status_code == 200, response.content
    body = response.json()
    assert_proved(body, checkpoint_sink)
    actions = [e["action"] for e in body["entries"]]
    assert actions == ["case.opened", "case.released"]
    assert body["checkpoint"]["seq"] == AuditSeal.objects.count()  # sealed first
    assert body["later"] == 0
    assert "history.read" not in response.content.decode()


def test_a_second_call_reuses_the_checkpoint_until_the_slice_grows(
    hospital, checkpoint_sink, settings
):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    first = Api(h.compliance_dan).post(proof_url(case), {}).json()
    again = Api(h.compliance_dan).post(proof_url(case), {}).json()
    assert again["checkpoint_name"] == first["checkpoint_name"]
    check_case_threads(h.compliance_dan, case.pk)
    grown = Api(h.compliance_dan).post(proof_url(case), {}).json()
    assert grown["checkpoint_name"] != first["checkpoint_name"]
    assert grown["checkpoint"]["seq"] > first["checkpoint"]["seq"]
    assert_proved(grown, checkpoint_sink)
    assert len(list(settings.ROUNDS_AUDIT_CHECKPOINT_DIR.glob("*.json"))) == 2


def test_without_a_checkpoint_key_nothing_is_proved(hospital, checkpoint_sink, settings):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    settings.ROUNDS_AUDIT_CHECKPOINT_KEY = settings.ROUNDS_AUDIT_CHECKPOINT_KEY.with_name("none")
    response = Api(h.compliance_dan).post(proof_url(case), {})
    body = assert_refused(response, 503, "checkpoint_unavailable")
    assert "cannot be proved" in body["message"]


def test_a_sink_that_refuses_gives_the_same_typed_error(hospital, checkpoint_sink, settings):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    settings.ROUNDS_AUDIT_CHECKPOINT_SINK = "tape"
    assert_refused(Api(h.compliance_dan).post(proof_url(case), {}), 503, "checkpoint_unavailable")


def test_another_officers_case_is_not_found_and_a_clinician_is_forbidden(hospital, checkpoint_sink):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    assert_refused(Api(second_officer()).post(proof_url(case), {}), 404, "not_found")
    assert_refused(Api(h.head_carol).post(proof_url(case), {}), 403, "forbidden")
