"""The patient's access report: every access to one patient's threads and photos, from
the audit trail alone, under a case opened on that patient (docs/compliance.md)."""

import csv
import io
from datetime import UTC
from typing import Any

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from chat.actions import check_history, check_post_message, check_read_receipt
from compliance.access_report import POSSIBLE
from media.library import PhotoQuery, check_search_photos
from media.uploads import check_download
from patients.actions import check_get_patient
from tests.support import Api, Hospital, assert_refused, sealed
from tests.support.cases import CASES, open_case, report_path, second_officer
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db


@pytest.fixture
def ward(hospital: Hospital) -> dict[str, Any]:
    """Léa's thread: Bob posts, Alice posts a photo and reads; Bob reads the history,
    downloads the photo and opens Léa's record; Alice searches the library by patient
    and by department only. Hugo's vascular thread gets the same from Ines."""
    h = hospital
    cmid = "bob-0001"
    check_post_message(h.surgeon_bob, h.thread.pk, cmid, sealed(h, "surgeon_bob", h.thread, cmid))
    ack, _ = post_photos(h, "nurse_alice", [photo(h, "nurse_alice")])
    check_read_receipt(h.nurse_alice, h.thread.pk, 2)
    check_history(h.surgeon_bob, h.thread.pk, None, 50)
    upload = _upload_of(ack["message_id"])
    check_download(h.surgeon_bob, upload)
    check_get_patient(h.surgeon_bob, h.patient.pk)
    check_search_photos(h.nurse_alice, PhotoQuery(patient=h.patient.pk))
    check_search_photos(h.nurse_alice, PhotoQuery(department=h.plastic.pk))
    # Hugo, in Vascular surgery: none of this is Léa's.
    cmid = "ines-0001"
    check_post_message(
        h.nurse_ines, h.vascular_thread.pk, cmid, sealed(h, "nurse_ines", h.vascular_thread, cmid)
    )
    post_photos(h, "nurse_ines", [photo(h, "nurse_ines", h.vascular)], thread=h.vascular_thread)
    check_history(h.nurse_ines, h.vascular_thread.pk, None, 50)
    check_get_patient(h.nurse_ines, h.other_patient.pk)
    check_search_photos(h.nurse_ines, PhotoQuery(patient=h.other_patient.pk))
    return {"upload": upload, "photo_message": ack["message_id"]}


def _upload_of(message_id: int) -> str:
    from media.models import Attachment

    return str(Attachment.objects.get(message_id=message_id).upload_id)


def officer_reads(h: Hospital, case: Any, upload: str) -> None:
    """The officer's own accesses under the case: the thread list, the timeline, a photo."""
    api = Api(h.compliance_dan)
    assert api.get(f"{CASES}/{case.pk}/threads").status_code == 200
    assert api.get(f"{CASES}/{case.pk}/threads/{h.thread.pk}/timeline").status_code == 200
    check_download(h.compliance_dan, upload, case_id=case.pk)


def test_the_report_lists_every_users_access_and_nothing_of_another_patient(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    officer_reads(h, case, ward["upload"])
    response = Api(h.compliance_dan).get(report_path(case, h.patient))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["patient"]["ipp"] == "00800100"
    assert body["case"] == {"id": case.pk, "reference": case.reference}
    assert body["next_after"] is None
    seen = {(r["who"]["username"], r["action"]) for r in body["entries"] if r["who"]}
    assert {
        ("surgeon_bob", "thread.created"),
        ("surgeon_bob", "message.posted"),
        ("nurse_alice", "message.posted"),
        ("nurse_alice", "attachment.attached"),
        ("nurse_alice", "receipt.read"),
        ("surgeon_bob", "history.read"),
        ("surgeon_bob", "attachment.downloaded"),
        ("surgeon_bob", "patient.viewed"),
        ("nurse_alice", "library.query"),
        ("compliance_dan", "case.opened"),
        ("compliance_dan", "case.released"),
        ("compliance_dan", "attachment.downloaded"),
    } <= seen
    # Nothing of Hugo: not Ines, not his thread, not his record, not his photo search.
    assert all(r["who"]["username"] != "nurse_ines" for r in body["entries"] if r["who"])
    hugos_thread = str(h.vascular_thread.pk)
    assert all(not r["object"]["label"].endswith(f"thread {hugos_thread}") for r in body["entries"])
    assert ("thread", hugos_thread) not in {
        (r["object"]["type"], r["object"]["id"]) for r in body["entries"]
    }
    hugo = str(h.other_patient.pk)
    for r in body["entries"]:
        assert not (r["object"]["type"] == "patient" and r["object"]["id"] == hugo)
    download = next(
        r
        for r in body["entries"]
        if r["action"] == "attachment.downloaded" and r["who"]["username"] == "surgeon_bob"
    )
    assert download["who"] == {
        "id": h.surgeon_bob.pk,
        "username": "surgeon_bob",
        "name": "Surgeon Bob",
        "role": "member",
    }
    assert download["what"] == "downloaded a photo"
    assert download["case"] is None and download["certainty"] == "certain"
    under_case = [r for r in body["entries"] if r["who"]["username"] == "compliance_dan"]
    assert all(r["case"] == case.pk for r in under_case)
    assert {r["who"]["role"] for r in under_case} == {"compliance officer"}
    # The department-wide search did not say whose photos it showed: possible, not certain.
    [search] = [r for r in body["entries"] if r["certainty"] == POSSIBLE]
    assert (search["action"], search["who"]["username"]) == ("library.query", "nurse_alice")
    assert "filters: department" in search["what"]


def test_the_release_is_audited_before_the_report_is_read(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = Api(h.compliance_dan).get(report_path(case, h.patient, "limit=3"))
    assert response.status_code == 200
    entry = AuditEvent.objects.filter(action="case.released").latest("id")
    assert (entry.object_type, entry.object_id) == ("patient", str(h.patient.pk))
    assert entry.data == {
        "case": case.pk,
        "reference": case.reference,
        "what": "access_report",
        "patient_id": h.patient.pk,
        "format": "json",
        "after": 0,
        "limit": 3,
    }
    # Committed before the read: the report holds its own release.
    assert case.pk in [r["case"] for r in _all_pages(h, case)]
    assert entry.pk in [r["id"] for r in _all_pages(h, case)]


def _all_pages(h: Hospital, case: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = 0
    while True:
        query = f"limit=4&after={after}"
        body = Api(h.compliance_dan).get(report_path(case, h.patient, query)).json()
        rows += body["entries"]
        if body["next_after"] is None:
            return rows
        after = body["next_after"]


def test_pages_follow_each_other_without_gap_or_repeat(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    whole = Api(h.compliance_dan).get(report_path(case, h.patient, "limit=500")).json()
    paged = _all_pages(h, case)
    ids = [r["id"] for r in paged]
    assert ids == sorted(set(ids))
    # Each page is itself a release, so the paged walk holds more releases than the whole.
    assert {r["id"] for r in whole["entries"]} <= set(ids)


def test_csv_and_pdf_name_the_patient_the_case_and_the_dates(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    api = Api(h.compliance_dan)
    response = api.get(report_path(case, h.patient, "format=csv"))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = response.getvalue().decode()
    lines = text.splitlines()
    assert lines[1].startswith("# Patient: LEFÈVRE Léa, born 1985-01-30, IPP 00800100")
    assert lines[2] == f"# Case: {case.reference} (id {case.pk})"
    assert lines[3].startswith("# Accesses from the first entry to ")
    rows = list(csv.DictReader(io.StringIO("\n".join(line for line in lines if line[:1] != "#"))))
    assert {"surgeon_bob", "nurse_alice", "compliance_dan"} <= {r["username"] for r in rows}
    assert "nurse_ines" not in {r["username"] for r in rows}
    pdf = api.get(report_path(case, h.patient, "format=pdf"))
    assert pdf.status_code == 200
    content = pdf.getvalue()
    assert pdf["Content-Type"] == "application/pdf" and content.startswith(b"%PDF")
    # The document's title (its metadata, not compressed) names the case.
    assert f"Access report, case {case.reference}".encode() in content
    formats = [
        e.data["format"]
        for e in AuditEvent.objects.filter(action="case.released").order_by("id")
        if e.data.get("what") == "access_report"
    ]
    assert formats == ["csv", "pdf"]


def test_a_case_with_dates_limits_the_report_to_accesses_made_in_them(hospital, ward):
    h = hospital
    last = AuditEvent.objects.latest("id")
    case = open_case(h.compliance_dan, patient_id=h.patient.pk, date_from=last.at)
    check_history(h.nurse_alice, h.thread.pk, None, 50)
    body = Api(h.compliance_dan).get(report_path(case, h.patient)).json()
    assert body["date_from"] == case.date_from.astimezone(UTC).isoformat()
    assert all(r["at"] >= body["date_from"] for r in body["entries"])
    assert ("nurse_alice", "history.read") in {
        (r["who"]["username"], r["action"]) for r in body["entries"]
    }
    assert "surgeon_bob" not in {r["who"]["username"] for r in body["entries"]}


# --- Refusals: each writes nothing ------------------------------------------------------


def _assert_refused_silently(api: Api, path: str, status: int, code: str) -> None:
    before = AuditEvent.objects.count()
    assert_refused(api.get(path), status, code)
    assert AuditEvent.objects.count() == before


def test_no_case_is_not_found(hospital):
    h = hospital
    path = f"{CASES}/999999/patients/{h.patient.pk}/access-report"
    _assert_refused_silently(Api(h.compliance_dan), path, 404, "not_found")


def test_a_closed_case_releases_no_report(hospital):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    Api(h.compliance_dan).post(f"{CASES}/{case.pk}/close", {})
    _assert_refused_silently(
        Api(h.compliance_dan), report_path(case, h.patient), 409, "case_closed"
    )


@override_settings(ROUNDS_COMPLIANCE_FOUR_EYES=True)
def test_an_unapproved_case_under_four_eyes_releases_no_report(hospital):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    path = report_path(case, h.patient)
    _assert_refused_silently(Api(h.compliance_dan), path, 409, "case_not_approved")
    approved = Api(second_officer()).post(f"{CASES}/{case.pk}/approve", {})
    assert approved.status_code == 200
    assert Api(h.compliance_dan).get(path).status_code == 200


def test_a_patient_the_case_is_not_on_is_not_found(hospital, ward):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    _assert_refused_silently(
        Api(h.compliance_dan), report_path(case, h.other_patient), 404, "not_found"
    )
    # A department case covers Léa's thread, yet was not opened on her: no report either.
    department = open_case(h.compliance_dan, "INC-2026-043", department_id=h.plastic.pk)
    _assert_refused_silently(
        Api(h.compliance_dan), report_path(department, h.patient), 404, "not_found"
    )


def test_another_officers_case_is_not_found(hospital):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    _assert_refused_silently(Api(second_officer()), report_path(case, h.patient), 404, "not_found")


@pytest.mark.parametrize("who", ["surgeon_bob", "head_carol", "admin_zoe"])
def test_clinicians_and_administrators_are_forbidden(hospital, who):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    _assert_refused_silently(Api(h.user(who)), report_path(case, h.patient), 403, "forbidden")


def test_an_unknown_format_is_refused(hospital):
    h = hospital
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    response = Api(h.compliance_dan).get(report_path(case, h.patient, "format=xlsx"))
    assert response.status_code == 400


def test_resolved_through_what_entries_name(hospital, ward):
    """A resume names a department and event numbers, a search without a patient its
    filter names: each is listed only if it reached the patient's objects."""
    from chat.actions import record_resume
    from chat.models import Event

    h = hospital
    plastic_last = Event.objects.filter(department=h.plastic).latest("seq").seq
    record_resume(h.nurse_alice, h.plastic.pk, 0, plastic_last)
    # After the photo message: only receipt events, none of Léa's messages.
    photo_seq = Event.objects.get(message_id=ward["photo_message"]).seq
    record_resume(h.surgeon_bob, h.plastic.pk, photo_seq, plastic_last)
    vascular_last = Event.objects.filter(department=h.vascular).latest("seq").seq
    record_resume(h.nurse_ines, h.vascular.pk, 0, vascular_last)
    # No filter at all: Alice's departments held Léa's photo, Ines's did not.
    check_search_photos(h.nurse_alice, PhotoQuery())
    check_search_photos(h.nurse_ines, PhotoQuery())
    # A keyword Léa's photo does not carry cannot have shown it.
    check_search_photos(h.nurse_alice, PhotoQuery(keywords=("face",)))
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    entries = Api(h.compliance_dan).get(report_path(case, h.patient)).json()["entries"]
    resumes = [r["who"]["username"] for r in entries if r["action"] == "events.resumed"]
    assert resumes == ["nurse_alice"]
    searches = [(r["who"]["username"], r["what"]) for r in entries if r["certainty"] == POSSIBLE]
    assert searches == [
        ("nurse_alice", "searched the photo library (filters: department; 1 photo)"),
        ("nurse_alice", "searched the photo library (filters: none; 1 photo)"),
    ]


def test_another_case_counts_only_for_what_it_released_of_the_patient(hospital, ward):
    h = hospital
    department = open_case(h.compliance_dan, "INC-2026-050", department_id=h.plastic.pk)
    elsewhere = open_case(h.compliance_dan, "INC-2026-051", department_id=h.vascular.pk)
    api = Api(h.compliance_dan)
    for other in (department, elsewhere):
        assert api.get(f"{CASES}/{other.pk}/threads").status_code == 200
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    entries = api.get(report_path(case, h.patient)).json()["entries"]
    by_case = {(r["case"], r["action"]) for r in entries}
    assert (department.pk, "case.released") in by_case
    assert (department.pk, "case.opened") not in by_case
    assert elsewhere.pk not in {r["case"] for r in entries}


def test_entries_on_purged_messages_and_photos_still_resolve(hospital, ward):
    """The purge at the end of retention keeps the thread's row and removes its messages,
    photos and events: entries naming them are found again through the thread the trail
    recorded with them (and the photos' ids, through their attachment entries)."""
    from chat.models import Event, Message
    from media.models import Attachment, AttachmentKeyword, Upload

    h = hospital
    messages = Message.objects.filter(thread=h.thread)
    attachments = Attachment.objects.filter(message__in=messages)
    uploads = [a.upload_id for a in attachments] + [a.thumbnail_id for a in attachments]
    AttachmentKeyword.objects.filter(attachment__in=attachments).delete()
    attachments.delete()
    Upload.objects.filter(pk__in=uploads).delete()
    Event.objects.filter(message__in=messages).delete()
    messages.delete()
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    entries = Api(h.compliance_dan).get(report_path(case, h.patient)).json()["entries"]
    seen = {(r["who"]["username"], r["action"]) for r in entries}
    assert {
        ("surgeon_bob", "message.posted"),
        ("nurse_alice", "message.posted"),
        ("nurse_alice", "attachment.attached"),
        ("surgeon_bob", "attachment.downloaded"),
        ("surgeon_bob", "history.read"),
    } <= seen
    assert "nurse_ines" not in {username for username, _ in seen}
    [download] = [r for r in entries if r["action"] == "attachment.downloaded"]
    assert download["object"]["label"] == f"photo {ward['upload']} in thread {h.thread.pk}"


def test_a_csv_cell_is_never_a_spreadsheet_formula(hospital, ward):
    h = hospital
    h.surgeon_bob.display_name = '=HYPERLINK("http://example.org")'
    h.surgeon_bob.save(update_fields=["display_name"])
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    text = Api(h.compliance_dan).get(report_path(case, h.patient, "format=csv")).getvalue().decode()
    rows = csv.DictReader(io.StringIO("\n".join(x for x in text.splitlines() if x[:1] != "#")))
    names = {r["name"] for r in rows if r["username"] == "surgeon_bob"}
    assert names == {'\'=HYPERLINK("http://example.org")'}


def test_the_role_is_the_one_held_at_the_time_of_the_access(hospital, ward):
    from rooms.actions import do_set_role

    h = hospital
    do_set_role(h.head_carol, h.plastic.pk, h.nurse_alice.pk, "head")
    check_history(h.nurse_alice, h.thread.pk, None, 50)
    case = open_case(h.compliance_dan, patient_id=h.patient.pk)
    entries = Api(h.compliance_dan).get(report_path(case, h.patient)).json()["entries"]
    roles = {
        r["action"]: r["who"]["role"]
        for r in entries
        if r["who"]["username"] == "nurse_alice" and r["action"] in ("receipt.read", "history.read")
    }
    assert roles == {"receipt.read": "member", "history.read": "head"}
