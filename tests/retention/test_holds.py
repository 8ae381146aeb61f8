"""Legal holds: placed under an open case, listed, released, each audited; and what an
active hold keeps from the purge (retention/holds.py), which the purge reports."""

import pytest

from audit.models import AuditEvent
from chat.actions import do_create_thread
from chat.models import Message, Thread
from retention.models import HoldDeletionError, LegalHold, ThreadPurge
from tests.retention.support import crash_after_one_batch, run
from tests.support import Api, assert_refused
from tests.support.cases import open_case, second_officer
from tests.support.posts import post
from tests.support.uploads import photo, post_photos

pytestmark = pytest.mark.django_db

HOLDS = "/api/retention/holds"


@pytest.fixture
def case(hospital):
    return open_case(hospital.compliance_dan, patient_id=hospital.patient.pk)


def place(officer, case, **target):
    return Api(officer).post(HOLDS, {"case": case.pk, "reason": "Litigation 2026-17", **target})


@pytest.mark.slow
def test_a_hold_is_placed_listed_and_released_each_audited(hospital, case):
    h = hospital
    placed = place(h.compliance_dan, case, patient=h.patient.pk)
    assert placed.status_code == 201, placed.content
    hold = placed.json()
    assert hold["scope"] == {"kind": "patient", "id": h.patient.pk}
    assert hold["case"] == {"id": case.pk, "reference": case.reference} and hold["active"]
    entry = AuditEvent.objects.get(action="hold.placed")
    assert entry.actor_id == h.compliance_dan.pk and entry.object_id == str(hold["id"])
    assert entry.data["case"] == case.pk and entry.data["scope"]["kind"] == "patient"

    # Every officer sees every hold.
    listed = Api(second_officer()).get(HOLDS).json()
    assert [x["id"] for x in listed] == [hold["id"]]

    released = Api(h.compliance_dan).post(f"{HOLDS}/{hold['id']}/release", {"reason": "Settled"})
    assert released.status_code == 200, released.content
    assert released.json()["active"] is False
    assert released.json()["released_by"]["username"] == "compliance_dan"
    assert AuditEvent.objects.get(action="hold.released").data["reason"] == "Settled"
    assert Api(h.compliance_dan).get(f"{HOLDS}?active=true").json() == []
    assert len(Api(h.compliance_dan).get(f"{HOLDS}?active=false").json()) == 1


def test_a_hold_is_never_deleted(hospital, case):
    place(hospital.compliance_dan, case, thread=hospital.thread.pk)
    with pytest.raises(HoldDeletionError):
        LegalHold.objects.get().delete()


def test_clinicians_are_refused(hospital, case):
    for who in (hospital.head_carol, hospital.nurse_alice, hospital.admin_zoe):
        assert_refused(place(who, case, patient=hospital.patient.pk), 403, "forbidden")
        assert_refused(Api(who).get(HOLDS), 403, "forbidden")
    assert not LegalHold.objects.exists()


def test_a_hold_needs_one_of_ones_own_open_cases(hospital, case, settings):
    h = hospital
    assert_refused(place(second_officer(), case, patient=h.patient.pk), 404, "not_found")
    missing = type(case)(pk=999_999)
    assert_refused(place(h.compliance_dan, missing, patient=h.patient.pk), 404, "not_found")
    settings.ROUNDS_COMPLIANCE_FOUR_EYES = True
    assert_refused(place(h.compliance_dan, case, patient=h.patient.pk), 409, "case_not_approved")
    settings.ROUNDS_COMPLIANCE_FOUR_EYES = False
    Api(h.compliance_dan).post(f"/api/compliance/cases/{case.pk}/close", {})
    assert_refused(place(h.compliance_dan, case, patient=h.patient.pk), 409, "case_closed")
    assert not LegalHold.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="hold.").exists()


def test_a_hold_names_exactly_one_existing_target(hospital, case):
    h = hospital
    dan = h.compliance_dan
    assert_refused(place(dan, case), 400, "invalid_request")
    assert_refused(
        place(dan, case, patient=h.patient.pk, user=h.surgeon_bob.pk), 400, "invalid_request"
    )
    assert_refused(place(dan, case, thread=999_999), 404, "not_found")
    assert_refused(place(dan, case, user=999_999), 404, "not_found")
    assert_refused(place(dan, case, patient=h.patient.pk, extra=1), 400, "invalid_request")
    bad = Api(dan).post(HOLDS, {"case": case.pk, "reason": "  ", "patient": h.patient.pk})
    assert_refused(bad, 400, "invalid_request")
    assert not LegalHold.objects.exists()


def test_a_hold_is_released_once_by_its_officers_only(hospital, case):
    h = hospital
    hold = place(h.compliance_dan, case, patient=h.patient.pk).json()
    release = f"{HOLDS}/{hold['id']}/release"
    assert_refused(Api(second_officer()).post(release, {"reason": "no"}), 404, "not_found")
    assert_refused(Api(h.head_carol).post(release, {"reason": "no"}), 403, "forbidden")
    assert_refused(Api(h.compliance_dan).post(release, {"reason": ""}), 400, "invalid_request")
    assert_refused(
        Api(h.compliance_dan).post(f"{HOLDS}/999999/release", {"reason": "x"}), 404, "not_found"
    )
    assert Api(h.compliance_dan).post(release, {"reason": "Settled"}).status_code == 200
    assert_refused(Api(h.compliance_dan).post(release, {"reason": "again"}), 409, "conflict")
    assert AuditEvent.objects.filter(action="hold.released").count() == 1


# --- What a hold keeps --------------------------------------------------------------


def test_a_purge_over_a_patient_hold_keeps_every_thread_of_the_patient(expired, case):
    h = expired
    post(h, "surgeon_bob", h.thread, "bob-00001")
    hold = place(h.compliance_dan, case, patient=h.patient.pk).json()
    report = run()
    assert report.kept == [
        {"thread": h.thread.pk, "holds": [{"hold": hold["id"], "case": case.reference}]}
    ]
    assert [p["thread"] for p in report.purged] == [h.vascular_thread.pk]
    assert Message.objects.filter(thread=h.thread).count() == 1
    assert Thread.objects.get(pk=h.thread.pk).title == "Wound follow-up"
    assert any(f"hold {hold['id']} (case {case.reference})" in line for line in report.lines)
    summary = AuditEvent.objects.get(action="retention.run")
    assert summary.data["kept"] == report.kept

    # Released, it keeps nothing: the next run purges the thread.
    Api(h.compliance_dan).post(f"{HOLDS}/{hold['id']}/release", {"reason": "Settled"})
    assert [p["thread"] for p in run().purged] == [h.thread.pk]
    assert Message.objects.filter(thread=h.thread).count() == 0


def test_a_thread_hold_keeps_that_thread_only(expired, case):
    h = expired
    other = do_create_thread(h.surgeon_bob, h.plastic.pk, h.patient.pk, "Second opinion")
    place(h.compliance_dan, case, thread=h.thread.pk)
    report = run()
    assert [k["thread"] for k in report.kept] == [h.thread.pk]
    assert {p["thread"] for p in report.purged} == {other["id"], h.vascular_thread.pk}


def test_a_user_hold_keeps_the_threads_of_their_departments(expired, case):
    h = expired
    place(h.compliance_dan, case, user=h.nurse_ines.pk)
    kept = {k["thread"] for k in run(dry_run=True).kept}
    assert kept == {h.vascular_thread.pk}  # her department's thread, not plastic's
    place(h.compliance_dan, case, user=h.surgeon_bob.pk)
    kept = {k["thread"] for k in run(dry_run=True).kept}
    assert kept == {h.thread.pk, h.vascular_thread.pk}


def test_a_user_hold_covers_memberships_during_the_thread_and_what_they_wrote(expired, case):
    from django.utils import timezone

    h = expired
    # Erin left plastic surgery before Léa's thread began: she could never read it.
    place(h.compliance_dan, case, user=h.intern_erin.pk)
    assert run(dry_run=True).kept == []
    # A message she wrote keeps its thread, whatever her memberships say now.
    Message.objects.create(
        thread=h.vascular_thread,
        seq=1,
        sender=h.intern_erin,
        client_msg_id="erin-00001",
        header={},
        ciphertext="x",
        body_hash="0" * 64,
        created_at=timezone.now(),
    )
    assert {k["thread"] for k in run(dry_run=True).kept} == {h.vascular_thread.pk}


def test_a_hold_keeps_the_photos_its_threads_overlays_draw_on(expired, case):
    h = expired
    other = Thread.objects.get(
        pk=do_create_thread(h.surgeon_bob, h.plastic.pk, h.patient.pk, "Second opinion")["id"]
    )
    ack, _ = post_photos(h, "nurse_alice", [photo(h, "nurse_alice")], thread=other)
    from media.models import Attachment

    original = Attachment.objects.get(message_id=ack["message_id"]).pk
    post_photos(h, "nurse_alice", [photo(h, "nurse_alice", annotates=original)])
    place(h.compliance_dan, case, thread=h.thread.pk)
    report = run()
    assert {k["thread"] for k in report.kept} == {h.thread.pk, other.pk}
    assert Attachment.objects.filter(pk=original).exists()
    assert not ThreadPurge.objects.filter(thread__in=[h.thread, other]).exists()


def test_a_hold_placed_on_a_half_purged_thread_stops_the_purge_there(expired, case, monkeypatch):
    from retention import purge

    h = expired
    for i in range(3):
        post(h, "surgeon_bob", h.thread, f"bob-half-{i:04d}")
    real = crash_after_one_batch(monkeypatch)
    with pytest.raises(RuntimeError):
        run(batch=2, limit=1)
    monkeypatch.setattr(purge, "_purge_messages", real)
    place(h.compliance_dan, case, thread=h.thread.pk)

    report = run()

    assert h.thread.pk in {k["thread"] for k in report.kept}
    assert Message.objects.filter(thread=h.thread).count() == 1  # what the crash left
    assert ThreadPurge.objects.get(thread=h.thread).completed_at is None


def test_a_hold_placed_while_a_run_goes_counts_for_the_threads_not_yet_begun(
    expired, case, monkeypatch
):
    from retention import purge

    h = expired
    real = purge.start_thread

    def place_hold_first(thread_id, run, until):
        if not LegalHold.objects.exists():
            place(h.compliance_dan, case, patient=h.other_patient.pk)
        return real(thread_id, run, until)

    monkeypatch.setattr(purge, "start_thread", place_hold_first)
    report = run()
    assert [p["thread"] for p in report.purged] == [h.thread.pk]
    assert [k["thread"] for k in report.kept] == [h.vascular_thread.pk]


def test_the_command_prints_what_it_purged_and_what_holds_kept(expired, case, monkeypatch):
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    from tests.retention.support import FUTURE

    h = expired
    real = timezone.localdate
    monkeypatch.setattr(timezone, "localdate", lambda value=None: real(value) if value else FUTURE)
    hold = place(h.compliance_dan, case, patient=h.patient.pk).json()
    out = StringIO()
    call_command("purge_expired", stdout=out)
    lines = out.getvalue().splitlines()
    assert f"kept   thread {h.thread.pk}: hold {hold['id']} (case {case.reference})" in lines
    assert any(line.startswith(f"purged thread {h.vascular_thread.pk}: ") for line in lines)
    assert lines[-1] == "purged 1 threads; holds kept 1 threads"
