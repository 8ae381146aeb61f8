"""FHIR R4 import (interop/fhir_import.py, interop/fhir_search.py, docs/interop-fhir.md):
the official R4 examples, Patients and Encounters applied with the ADT rules, refusals
with their reason and nothing half-applied, merges, and the REST search through a real
server with paging, a bearer token and its failures."""

import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditEvent
from chat.models import Event, Thread
from interop.management.commands.fhir_import import import_files
from patients.models import Admission, LocationMapping, Patient, PotentialDuplicate
from tests.support.fhir_search_server import SearchServer, serving

IPP_SYSTEM = "urn:oid:1.2.250.1.71.4.2.7"
EXAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "fhir-r4"
EXAMPLE_FILES = [
    "Patient-example.json",
    "Patient-pat1.json",
    "Patient-pat2.json",
    "Encounter-example.json",
    "Encounter-f201.json",
    "Bundle-bundle-example.json",
]


@pytest.fixture
def mapped(hospital, settings):
    settings.ROUNDS_FHIR_IPP_SYSTEM = IPP_SYSTEM
    LocationMapping.objects.create(location="PLASTIC", department=hospital.plastic)
    LocationMapping.objects.create(location="VASC", department=hospital.vascular)
    return hospital


@pytest.fixture
def examples():
    if not EXAMPLES.is_dir():
        pytest.skip(f"the official FHIR R4 examples are not at {EXAMPLES}")
    return [EXAMPLES / name for name in EXAMPLE_FILES]


def patient(
    fhir_id: str, ipp: str, family: str = "MARTIN", given: str = "Paul", **more: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": fhir_id,
        "identifier": [{"system": IPP_SYSTEM, "value": ipp}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "male",
        "birthDate": "1960-03-04",
        **more,
    }


def encounter(
    fhir_id: str,
    subject: str = "Patient/p1",
    status: str = "in-progress",
    location: str = "PLASTIC",
    start: str = "2026-12-01T08:00:00+01:00",
    end: str | None = None,
    code: str = "IMP",
    visit: str = "V100",
) -> dict[str, Any]:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "Encounter",
        "id": fhir_id,
        "identifier": [{"system": "urn:oid:1.2.250.1.71.4.2.8", "value": visit}],
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code},
        "subject": {"reference": subject},
        "location": [{"location": {"display": location}, "status": "active"}],
        "period": period,
    }


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"fullUrl": f"urn:uuid:{i:08d}", "resource": r} for i, r in enumerate(resources)],
    }


def run_files(tmp_path: Path, *documents: dict[str, Any]) -> tuple[str, int]:
    """`manage.py fhir_import` on the documents, each a file: (its output, exit status)."""
    paths = []
    for number, document in enumerate(documents):
        path = tmp_path / f"import-{len(list(tmp_path.iterdir()))}-{number}.json"
        path.write_text(json.dumps(document))
        paths.append(str(path))
    out = io.StringIO()
    try:
        call_command("fhir_import", *paths, stdout=out)
    except CommandError as error:
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


def stays(ipp: str) -> list[tuple[str, bool, bool]]:
    """(location, discharged, cancelled) of the patient's stays, in order."""
    return [
        (a.location, a.discharged_at is not None, a.cancelled_at is not None)
        for a in Admission.objects.filter(patient__ipp=ipp).order_by("admitted_at", "pk")
    ]


def outcomes(paths: list[Path]) -> dict[str, tuple[bool, str]]:
    report = import_files(paths)
    return {o.reference: (o.applied, o.detail) for o in report.outcomes} | {
        f"skipped {kind}": (False, str(count)) for kind, count in report.skipped.items()
    }


# --- The official R4 examples ------------------------------------------------------


def test_the_official_examples_with_the_ipp_system_of_patient_example(hospital, settings, examples):
    settings.ROUNDS_FHIR_IPP_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"
    no_ipp = (
        False,
        "no IPP identifier (system urn:oid:1.2.36.146.595.217.0.1); "
        "systems found: urn:oid:0.1.2.3.4.5.6.7",
    )
    assert outcomes(examples) == {
        "Patient/example": (True, "IPP 12345 recorded"),
        "Patient/pat1": no_ipp,  # an MR of another system, no birthDate either
        "Patient/pat2": no_ipp,
        # Its subject is Patient/example, imported in the same run; it names no place.
        "Encounter/example": (False, "Encounter.location is missing (where the patient stays)"),
        "Encounter/f201": (
            False,
            "Encounter.subject Patient/f201 is not a known patient (import its Patient first, "
            "or name it by an identifier of system urn:oid:1.2.36.146.595.217.0.1)",
        ),
        # A searchset of a MedicationRequest and its included Medication: skipped.
        "skipped MedicationRequest": (False, "1"),
        "skipped Medication": (False, "1"),
    }
    chalmers = Patient.objects.get(ipp="12345")
    assert (chalmers.family_name, chalmers.given_name, chalmers.birth_date) == (
        "Chalmers",
        "Peter",
        date(1974, 12, 25),
    )
    assert (chalmers.sex, chalmers.died_on) == ("M", None)  # deceasedBoolean false
    entry = AuditEvent.objects.get(action="patient.created", object_id=str(chalmers.pk))
    assert entry.data == {"source": "fhir", "reference": "Patient/example"}
    # A later run finds Patient/example through the earlier import (its audit entry).
    again = outcomes([examples[3]])
    assert again == {
        "Encounter/example": (False, "Encounter.location is missing (where the patient stays)")
    }
    assert not Admission.objects.filter(patient=chalmers).exists()


def test_the_donald_duck_examples_lack_a_birth_date(hospital, settings, examples):
    settings.ROUNDS_FHIR_IPP_SYSTEM = "urn:oid:0.1.2.3.4.5.6.7"
    found = outcomes(examples[:3])
    assert found == {
        "Patient/example": (
            False,
            "no IPP identifier (system urn:oid:0.1.2.3.4.5.6.7); "
            "systems found: urn:oid:1.2.36.146.595.217.0.1",
        ),
        "Patient/pat1": (False, "Patient.birthDate is missing"),
        "Patient/pat2": (False, "Patient.birthDate is missing"),
    }
    assert not Patient.objects.filter(ipp__in=["654321", "123456"]).exists()


def test_with_the_hospital_system_no_example_patient_loads_and_the_command_fails(
    hospital, settings, examples
):
    settings.ROUNDS_FHIR_IPP_SYSTEM = IPP_SYSTEM
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("fhir_import", *map(str, examples), stdout=out)
    assert failed.value.returncode == 1
    text = out.getvalue()
    assert f"Patient/example: REFUSED, no IPP identifier (system {IPP_SYSTEM})" in text
    assert "0 applied, 5 refused, skipped: 1 Medication, 1 MedicationRequest" in text
    assert Patient.objects.count() == 2  # the hospital's two


# --- Files: Patients and Encounters --------------------------------------------------


def test_a_bundle_of_a_patient_and_an_encounter_gives_the_patient_and_the_stay(mapped, tmp_path):
    # The subject named by the Patient's fullUrl in the Bundle (urn:uuid:00000001).
    visit = encounter("e1", subject="urn:uuid:00000001")
    text, status = run_files(tmp_path, bundle(visit, patient("p1", "00900001")))
    assert status == 0, text
    record = Patient.objects.get(ipp="00900001")
    assert (record.family_name, record.given_name, record.sex) == ("MARTIN", "Paul", "M")
    stay = Admission.objects.get(patient=record)
    assert (stay.department_id, stay.visit_number, stay.kind, stay.location) == (
        mapped.plastic.pk,
        "V100",
        "inpatient",
        "PLASTIC",
    )
    assert stay.admitted_at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert "Encounter/e1: applied, visit V100 at PLASTIC: admitted (inpatient)" in text
    admitted = AuditEvent.objects.get(action="patient.admitted")
    assert admitted.data == {
        "source": "fhir",
        "reference": "Encounter/e1",
        "visit": "V100",
        "kind": "inpatient",
    }


def test_an_updated_patient_is_updated_and_audited(mapped, tmp_path):
    run_files(tmp_path, patient("p1", "00900001"))
    text, status = run_files(tmp_path, patient("p1", "00900001", family="MARTIN-DURAND"))
    assert status == 0, text
    assert Patient.objects.get(ipp="00900001").family_name == "MARTIN-DURAND"
    updated = AuditEvent.objects.get(action="patient.updated")
    assert updated.data == {
        "source": "fhir",
        "reference": "Patient/p1",
        "fields": ["family_name"],
    }


def test_gender_death_and_an_ipp_typed_pi_without_a_system(mapped, tmp_path):
    pi = {
        "type": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI"}]
        },
        "value": "00900005",
    }
    documents = [
        patient("p2", "00900002", gender="female", deceasedDateTime="2026-11-30T23:30:00+00:00"),
        patient("p3", "00900003", gender="other", deceasedBoolean=True),
        {**patient("p5", "", gender="unknown", active=False), "identifier": [pi]},
    ]
    text, status = run_files(tmp_path, bundle(*documents))
    assert status == 0, text
    found = {p.ipp: (p.sex, p.died_on) for p in Patient.objects.filter(ipp__startswith="009")}
    assert found == {
        "00900002": ("F", date(2026, 12, 1)),  # 00:30 in Paris
        "00900003": ("O", timezone.localdate()),  # the day Rounds learned it
        "00900005": ("U", None),  # active false: recorded all the same
    }


def test_an_encounter_through_its_life_admitted_transferred_finished(mapped, tmp_path):
    run_files(tmp_path, patient("p1", "00900001"), encounter("e1"))
    moved = encounter("e1", location="VASC")
    moved["location"][0]["period"] = {"start": "2026-12-02T10:00:00+01:00"}
    run_files(tmp_path, moved)
    finished = {**moved, "status": "finished"}
    finished["period"] = {"start": "2026-12-01T08:00:00+01:00", "end": "2026-12-03T12:00:00+01:00"}
    text, status = run_files(tmp_path, finished)
    assert status == 0, text
    assert stays("00900001") == [("PLASTIC", True, False), ("VASC", True, False)]
    last = Admission.objects.get(patient__ipp="00900001", location="VASC")
    assert last.discharged_at == datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
    assert AuditEvent.objects.filter(action="patient.transferred").count() == 1
    assert AuditEvent.objects.filter(action="patient.discharged").count() == 1


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error"])
def test_a_cancelled_encounter_cancels_its_stay(mapped, tmp_path, status):
    run_files(tmp_path, patient("p1", "00900001"), encounter("e1"))
    text, code = run_files(tmp_path, encounter("e1", status=status))
    assert code == 0, text
    assert stays("00900001") == [("PLASTIC", False, True)]
    assert f"Encounter/e1: applied, visit V100: {status}, 1 stay(s) cancelled" in text
    again, code = run_files(tmp_path, encounter("e1", status=status))
    assert code == 0 and f"visit V100: {status}, no stay to cancel" in again


def test_an_unmapped_location_is_refused_with_its_reason(mapped, tmp_path):
    text, status = run_files(
        tmp_path, bundle(patient("p1", "00900001"), encounter("e1", location="BURNS"))
    )
    assert status == 1
    assert "Encounter/e1: REFUSED, unmapped location 'BURNS': add it to the location table" in text
    # The patient is its own resource, applied; the stay is not, and nothing of it is kept.
    assert Patient.objects.filter(ipp="00900001").exists()
    assert stays("00900001") == []
    assert not AuditEvent.objects.filter(action="patient.admitted").exists()


def test_a_refusal_half_way_through_an_encounter_leaves_nothing(mapped, tmp_path):
    backwards = encounter(
        "e1", status="finished", start="2026-12-03T08:00:00+01:00", end="2026-12-01T08:00:00+01:00"
    )
    text, status = run_files(tmp_path, patient("p1", "00900001"), backwards)
    assert status == 1
    assert "Encounter/e1: REFUSED, the discharge is dated before the stay it ends" in text
    assert stays("00900001") == []  # the admission made before the refusal rolled back
    assert not AuditEvent.objects.filter(action="patient.admitted").exists()


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (
            {**patient("p9", "00900009"), "birthDate": "1960"},
            "Patient.birthDate '1960' is not a full date",
        ),
        (
            {**patient("p9", "00900009"), "name": [{"given": ["Paul"]}]},
            "Patient.name has no family name",
        ),
        ({**patient("p9", "00900009"), "shoeSize": 42}, "not a valid R4 Patient: shoeSize"),
        (
            encounter("e9", status="planned"),
            "Encounter.status 'planned' is not a stay Rounds records",
        ),
        (
            encounter("e9", subject="Patient/nobody"),
            "Encounter.subject Patient/nobody is not a known",
        ),
        (
            {**encounter("e9", status="finished"), "period": {"start": "2026-12-01"}},
            "needs period.end",
        ),
        (
            {"resourceType": "Bundle", "type": "history", "id": "h1"},
            "Bundle.type 'history' is not read",
        ),
    ],
)
def test_what_rounds_cannot_apply_is_refused_with_its_reason(mapped, tmp_path, document, reason):
    # Patient/p1, the Encounters' subject, comes along (and is applied).
    text, status = run_files(tmp_path, patient("p1", "00900001"), document)
    assert status == 1
    assert reason in text, text
    assert not Patient.objects.filter(ipp="00900009").exists()
    assert not Admission.objects.filter(visit_number="V100").exists()
    assert "1 applied, 1 refused" in text


def test_importing_again_duplicates_nothing(mapped, tmp_path):
    document = bundle(
        patient("p1", "00900001"),
        encounter("e1", status="finished", end="2026-12-02T08:00:00+01:00"),
        encounter("e2", visit="V200", code="AMB"),
    )
    run_files(tmp_path, document)
    again, status = run_files(tmp_path, document)
    assert status == 0, again
    assert stays("00900001") == [("PLASTIC", True, False), ("PLASTIC", False, False)]
    assert "Encounter/e1: applied, visit V100 at PLASTIC: already recorded" in again
    assert Admission.objects.get(visit_number="V200").kind == "outpatient"
    assert AuditEvent.objects.filter(action="patient.admitted").count() == 2
    assert AuditEvent.objects.filter(action="patient.discharged").count() == 1
    assert AuditEvent.objects.filter(action="patient.created").count() == 1


def test_a_same_name_and_birth_date_is_flagged_never_merged(mapped, tmp_path):
    twin = patient(
        "p7", "00900007", family=mapped.patient.family_name, given=mapped.patient.given_name
    )
    twin["birthDate"] = mapped.patient.birth_date.isoformat()
    text, status = run_files(tmp_path, twin)
    assert status == 0, text
    flag = PotentialDuplicate.objects.get()
    assert {flag.patient_id, flag.other_id} == {
        mapped.patient.pk,
        Patient.objects.get(ipp="00900007").pk,
    }
    assert not Patient.objects.filter(merged_into__isnull=False).exists()


# --- Merges (Patient.link) ----------------------------------------------------------


def _old_record(hospital: Any, link_type: str, other: dict[str, Any]) -> dict[str, Any]:
    old = patient("old", hospital.patient.ipp, family=hospital.patient.family_name, given="Léa")
    old["birthDate"] = hospital.patient.birth_date.isoformat()
    old["link"] = [{"type": link_type, "other": other}]
    return old


def test_replaced_by_merges_the_record_into_the_linked_one(mapped, tmp_path):
    merged = mapped.patient  # who has a thread
    old = _old_record(mapped, "replaced-by", {"reference": "Patient/new"})
    new = patient("new", "00900003", family=merged.family_name, given="Léa")
    new["birthDate"] = merged.birth_date.isoformat()
    # The obsolete record first: it waits for the survivor of the same import.
    text, status = run_files(tmp_path, bundle(old, new))
    assert status == 0, text
    surviving = Patient.objects.get(ipp="00900003")
    assert Patient.objects.get(pk=merged.pk).merged_into_id == surviving.pk
    assert Thread.objects.get(pk=mapped.thread.pk).patient_id == surviving.pk
    event = Event.objects.get(kind="thread.patient_changed")
    assert event.payload["previous"] == {"id": merged.pk, "ipp": merged.ipp}
    entry = AuditEvent.objects.get(action="patient.merged")
    assert (entry.data["reference"], entry.data["threads"]) == ("Patient/old", 1)
    assert f"Patient/old: applied, IPP {merged.ipp} merged into IPP 00900003" in text
    again, status = run_files(tmp_path, bundle(old, new))
    assert status == 0 and f"IPP {merged.ipp} already merged into IPP 00900003" in again
    assert AuditEvent.objects.filter(action="patient.merged").count() == 1


def test_replaces_merges_the_linked_record_named_by_its_ipp(mapped, tmp_path):
    survivor = patient("new", "00900003")
    survivor["link"] = [
        {
            "type": "replaces",
            "other": {"identifier": {"system": IPP_SYSTEM, "value": mapped.patient.ipp}},
        }
    ]
    text, status = run_files(tmp_path, survivor)
    assert status == 0, text
    assert Thread.objects.get(pk=mapped.thread.pk).patient.ipp == "00900003"
    assert Patient.objects.get(pk=mapped.patient.pk).merged_into.ipp == "00900003"


def test_replaced_by_an_unknown_record_is_refused(mapped, tmp_path):
    old = _old_record(mapped, "replaced-by", {"reference": "Patient/elsewhere"})
    text, status = run_files(tmp_path, old)
    assert status == 1
    assert (
        "Patient/old: REFUSED, Patient.link replaced-by names a record Rounds does not know" in text
    )
    assert Patient.objects.get(pk=mapped.patient.pk).merged_into_id is None
    assert Thread.objects.get(pk=mapped.thread.pk).patient_id == mapped.patient.pk


# --- The REST search -----------------------------------------------------------------


def _served() -> dict[str, list[dict[str, Any]]]:
    updated = {"lastUpdated": "2026-12-02T08:00:00Z"}
    patients = [
        {**patient(f"p{n}", f"0090010{n}", family=f"NOM{n}"), "meta": updated} for n in range(1, 6)
    ]
    encounters = [
        {**encounter(f"e{n}", subject=f"Patient/p{n}", visit=f"V{n}"), "meta": updated}
        for n in range(1, 4)
    ]
    stale = {**patient("p0", "00900200"), "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}
    return {"Patient": [stale, *patients], "Encounter": encounters}


def run_server(server: SearchServer, *args: str) -> tuple[str, int]:
    out = io.StringIO()
    try:
        call_command("fhir_import", "--server", server.base_url, *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), error.returncode
    return out.getvalue(), 0


def test_the_rest_import_follows_the_pages_with_the_token(mapped, monkeypatch):
    monkeypatch.setenv("ROUNDS_FHIR_TOKEN", "s3cret")
    with serving(SearchServer(_served(), token="s3cret", page_size=2)) as server:
        text, status = run_server(server, "--since", "2026-12-01")
    assert status == 0, text
    paths = [path for path, _ in server.requests]
    assert paths == [
        "/Patient?_count=50&_lastUpdated=ge2026-12-01",
        "/Patient?_count=2&_page=2&_lastUpdated=ge2026-12-01",
        "/Patient?_count=2&_page=3&_lastUpdated=ge2026-12-01",
        "/Encounter?_count=50&_lastUpdated=ge2026-12-01",
        "/Encounter?_count=2&_page=2&_lastUpdated=ge2026-12-01",
    ]
    assert {auth for _, auth in server.requests} == {"Bearer s3cret"}
    assert set(Patient.objects.filter(ipp__startswith="0090010").values_list("ipp", flat=True)) == {
        f"0090010{n}" for n in range(1, 6)
    }
    assert not Patient.objects.filter(ipp="00900200").exists()  # not updated since
    assert sorted(
        Admission.objects.filter(visit_number__startswith="V").values_list(
            "patient__ipp", "visit_number"
        )
    ) == [("00900101", "V1"), ("00900102", "V2"), ("00900103", "V3")]
    assert "8 applied, 0 refused" in text


def test_a_wrong_token_is_a_clear_refusal(mapped, monkeypatch):
    monkeypatch.setenv("ROUNDS_FHIR_TOKEN", "stale")
    with serving(SearchServer(_served(), token="s3cret")) as server:
        text, status = run_server(server)
    assert status == 1
    assert f"GET {server.base_url}/Patient?_count=50: REFUSED, HTTP 401: missing or wrong" in text
    assert not Patient.objects.filter(ipp__startswith="0090010").exists()


def test_a_server_error_stops_the_run_with_its_reason(mapped, monkeypatch):
    monkeypatch.delenv("ROUNDS_FHIR_TOKEN", raising=False)
    failing = SearchServer(_served(), fail_status=500, fail_on="Encounter", page_size=50)
    with serving(failing) as server:
        text, status = run_server(server)
    assert status == 1
    assert "/Encounter?_count=50: REFUSED, HTTP 500: the database is down" in text
    assert {auth for _, auth in server.requests} == {""}  # no token set: none sent
    # The Patients came before the failure, each in its own transaction: applied.
    assert Patient.objects.filter(ipp__startswith="0090010").count() == 5
    assert not Admission.objects.filter(visit_number__startswith="V").exists()


def test_a_server_that_does_not_answer_in_time_is_a_clear_refusal(mapped):
    with serving(SearchServer(_served(), delay=1.0)) as server:
        text, status = run_server(server, "--timeout", "0.1")
    assert status == 1
    assert "/Patient?_count=50: REFUSED, no answer within 0.1 s (timeout)" in text


def test_a_next_link_to_another_server_is_not_followed(mapped, monkeypatch):
    monkeypatch.setenv("ROUNDS_FHIR_TOKEN", "s3cret")
    elsewhere = "http://203.0.113.9:8080/Patient?page=2"
    with serving(SearchServer(_served(), token="s3cret", next_link=elsewhere)) as server:
        text, status = run_server(server)
    assert status == 1
    assert "the next link leaves the server for http://203.0.113.9:8080: not followed" in text
    assert len(server.requests) == 1
