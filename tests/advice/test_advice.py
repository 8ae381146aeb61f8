"""Advice requests (advice/, docs/advice.md): asked of a person or an on-call role,
resolved on the server's clock, escalated along the roster then to the head while
nobody acknowledges, alerted again at the end; every step on the timeline, audited
and announced; and every refusal."""

import json
from datetime import timedelta

import pytest
from django.test import TestCase
from django.utils import timezone

from advice import actions
from advice.models import AdviceRequest, AdviceStep
from advice.scheduler import next_due, run_due
from chat.events import event_frame
from chat.models import Event
from chat.redaction import check_redact_message
from core.api_schemas.advice import AdviceDetail, AdviceList
from core.api_schemas.advice import AdviceRequest as RequestBody
from core.outbound import validate_outbound
from rooms import oncall
from rooms.actions import do_admit_member
from rooms.models import OnCallRole
from tests.support import Api, Hospital, assert_refused, audit_entries
from tests.support.hospital import make_user
from tests.support.posts import post

pytestmark = pytest.mark.django_db

URGENT = timedelta(seconds=300)
SECOND = timedelta(seconds=1)


@pytest.fixture
def ward(hospital: Hospital) -> Hospital:
    """Plastic surgery with a role: Bob on duty now, Dave the next shift; Carol is head."""
    h = hospital
    h.surgeon_dave = make_user("surgeon_dave")  # type: ignore[attr-defined]
    do_admit_member(h.head_carol, h.plastic.pk, h.surgeon_dave, "member")
    role = oncall.check_create_role(h.head_carol, h.plastic.pk, "On-call plastic surgeon")
    h.role = OnCallRole.objects.get(pk=role["id"])  # type: ignore[attr-defined]
    now = timezone.now()
    for who, start, end in (
        (h.surgeon_bob, now - timedelta(hours=2), now + timedelta(hours=10)),
        (h.surgeon_dave, now + timedelta(hours=10), now + timedelta(hours=22)),
    ):
        oncall.check_add_shift(h.head_carol, h.plastic.pk, h.role.pk, who.pk, start, end)  # type: ignore[attr-defined]
    return h


def ask(h: Hospital, who: str = "nurse_alice", priority: str = "urgent", **to) -> dict:
    message = post(h, who, h.thread, f"q-{who}-{AdviceRequest.objects.count()}")
    to = to or {"to_role": h.role.pk}  # type: ignore[attr-defined]
    response = Api(h.user(who)).post(
        "/api/advice", {"message": message, "priority": priority, **to}
    )
    assert response.status_code == 201, response.content
    return RequestBody.model_validate(response.json()).model_dump()


def steps(request_id: int) -> list[tuple[str, str | None]]:
    rows = AdviceStep.objects.filter(request_id=request_id).order_by("number")
    return [(row.kind, row.holder.username if row.holder else None) for row in rows]


def due_at(request_id: int):
    return AdviceRequest.objects.get(pk=request_id).due_at


# --- Asking and resolving ---------------------------------------------------------------


def test_an_urgent_request_to_a_role_goes_to_whoever_is_on_duty_audited_and_announced(ward):
    h = ward
    before = timezone.now()
    with TestCase.captureOnCommitCallbacks(execute=True):
        made = ask(h)
    assert made["holder"]["username"] == "surgeon_bob"
    assert made["to"] == {
        "role": {"id": h.role.pk, "name": "On-call plastic surgeon"},
        "user": None,
    }
    assert (made["status"], made["priority"], made["patient"]) == ("open", "urgent", h.patient.pk)
    assert made["last_step"]["kind"] == "requested"
    assert made["last_step"]["data"] == {"to": {"role": h.role.pk}, "why": "on_duty"}
    assert before + URGENT <= due_at(made["id"]) <= timezone.now() + URGENT
    [entry] = audit_entries("advice.requested", object_id=str(made["id"]))
    assert entry.actor_id == h.nurse_alice.pk and entry.data["holder"] == h.surgeon_bob.pk
    event = Event.objects.filter(kind="advice.updated").get()
    frame = event_frame(event)
    validate_outbound(frame)
    assert frame["request"]["id"] == made["id"] and frame["department"] == h.plastic.pk


def test_unacknowledged_it_escalates_to_the_next_shift_then_the_head_then_alerts_again(ward):
    h = ward
    made = ask(h)
    first = due_at(made["id"])
    assert run_due(first - SECOND) == 0
    assert run_due(first) == 1
    assert steps(made["id"])[-1] == ("escalated", "surgeon_dave")
    second = due_at(made["id"])
    assert second == AdviceStep.objects.get(request_id=made["id"], number=2).at + URGENT
    assert run_due(second) == 1
    assert steps(made["id"])[-1] == ("escalated", "head_carol")
    assert run_due(due_at(made["id"])) == 1
    assert run_due(due_at(made["id"])) == 1
    assert steps(made["id"]) == [
        ("requested", "surgeon_bob"),
        ("escalated", "surgeon_dave"),
        ("escalated", "head_carol"),
        ("realerted", "head_carol"),
        ("realerted", "head_carol"),
    ]
    escalation = AdviceStep.objects.get(request_id=made["id"], number=2)
    assert escalation.actor is None
    assert escalation.data["why"] == "next_shift" and escalation.data["from"] == h.surgeon_bob.pk
    assert escalation.data["due_at"] == first.isoformat()
    assert [e.data["step"] for e in audit_entries("advice.escalated")] == [2, 3]
    assert len(audit_entries("advice.realerted")) == 2
    # Each step is announced once, in order.
    kinds = [
        e.payload["request"]["last_step"]["kind"]
        for e in Event.objects.order_by("seq")
        if e.kind == "advice.updated"
    ]
    assert kinds == ["requested", "escalated", "escalated", "realerted", "realerted"]


def test_a_timer_fires_once_however_often_the_scheduler_runs(ward):
    h = ward
    made = ask(h)
    moment = due_at(made["id"])
    assert run_due(moment) == 1
    assert run_due(moment) == 0
    assert run_due(moment + SECOND) == 0
    assert len(steps(made["id"])) == 2


def test_the_role_resolves_again_at_each_step_on_the_server_clock(ward):
    """Bob's shift is removed after the request went to him: the escalation finds who
    holds the role then, not who held it at the send."""
    h = ward
    made = ask(h)
    bob_shift = h.role.shifts.get(user=h.surgeon_bob)
    oncall.check_remove_shift(h.head_carol, h.plastic.pk, bob_shift.pk)
    now = timezone.now()
    oncall.check_add_shift(
        h.head_carol, h.plastic.pk, h.role.pk, h.nurse_alice.pk, now - SECOND, now + URGENT * 10
    )
    oncall.check_add_shift(
        h.head_carol, h.plastic.pk, h.role.pk, h.head_carol.pk, now - SECOND, now + URGENT * 10
    )
    run_due(due_at(made["id"]))
    # Alice (on duty now) is the requester, so never asked: Carol on duty is next.
    assert steps(made["id"])[-1] == ("escalated", "head_carol")
    assert AdviceStep.objects.get(request_id=made["id"], number=2).data["why"] == "on_duty"


def test_nobody_on_duty_goes_to_the_next_shift_and_a_person_to_then_the_head(ward):
    h = ward
    h.role.shifts.filter(user=h.surgeon_bob).update(
        removed_at=timezone.now(), removed_by=h.head_carol
    )
    made = ask(h)
    assert made["holder"]["username"] == "surgeon_dave"
    assert made["last_step"]["data"]["why"] == "next_shift"
    direct = ask(h, to_user=h.surgeon_bob.pk)
    assert direct["holder"]["username"] == "surgeon_bob"
    run_due(due_at(direct["id"]))
    assert steps(direct["id"])[-1] == ("escalated", "head_carol")


def test_a_routine_request_has_no_timer(ward):
    h = ward
    made = ask(h, priority="routine")
    assert made["due_at"] is None and due_at(made["id"]) is None
    assert run_due(timezone.now() + URGENT * 100) == 0


def test_an_emergency_escalates_sooner(ward, settings):
    settings.ROUNDS_ADVICE_ESCALATE_SECONDS = {"urgent": 300, "emergency": 60}
    h = ward
    before = timezone.now()
    made = ask(h, priority="emergency")
    assert due_at(made["id"]) - before < timedelta(seconds=61)
    assert next_due() == due_at(made["id"])


# --- Answering --------------------------------------------------------------------------


def test_acknowledging_stops_the_timer_and_tells_both_sides(ward):
    h = ward
    made = ask(h)
    response = Api(h.surgeon_bob).post(
        f"/api/advice/{made['id']}/acknowledge", {"answer": "call_me"}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["answer"], body["answered_by"]["username"]) == (
        "acknowledged",
        "call_me",
        "surgeon_bob",
    )
    assert body["due_at"] is None
    assert run_due(timezone.now() + URGENT * 10) == 0
    [entry] = audit_entries("advice.acknowledged")
    assert entry.data["answer"] == "call_me"
    detail = AdviceDetail.model_validate(Api(h.nurse_alice).get(f"/api/advice/{made['id']}").json())
    assert [step.kind for step in detail.timeline] == ["requested", "acknowledged"]
    assert len(audit_entries("advice.viewed")) == 1


def test_someone_asked_earlier_may_still_answer_and_a_head_always_may(ward):
    h = ward
    made = ask(h)
    run_due(due_at(made["id"]))  # now Dave's
    late = Api(h.surgeon_bob).post(f"/api/advice/{made['id']}/acknowledge", {"answer": "on_it"})
    assert late.status_code == 200
    other = ask(h)
    head = Api(h.head_carol).post(f"/api/advice/{other['id']}/acknowledge", {"answer": "on_it"})
    assert head.status_code == 200 and head.json()["holder"]["username"] == "head_carol"


def test_passing_it_on_hands_it_over_and_restarts_the_timer(ward):
    h = ward
    made = ask(h)
    response = Api(h.surgeon_bob).post(
        f"/api/advice/{made['id']}/pass", {"to_user": h.surgeon_dave.pk}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["holder"]["username"] == "surgeon_dave"
    assert body["to"]["user"]["username"] == "surgeon_dave"
    passed = AdviceStep.objects.get(request_id=made["id"], number=2)
    assert (passed.kind, passed.actor, passed.data["to"]) == (
        "passed",
        h.surgeon_bob,
        {"user": h.surgeon_dave.pk},
    )
    assert due_at(made["id"]) > passed.at + URGENT - SECOND
    run_due(due_at(made["id"]))
    assert steps(made["id"])[-1] == ("escalated", "head_carol")
    # Passed to the role Bob holds: it does not come back to Bob.
    other = ask(h)
    back = Api(h.surgeon_bob).post(f"/api/advice/{other['id']}/pass", {"to_role": h.role.pk})
    assert back.json()["holder"]["username"] == "surgeon_dave"


def test_the_requester_withdraws_it(ward):
    h = ward
    made = ask(h)
    response = Api(h.nurse_alice).post(f"/api/advice/{made['id']}/cancel", {})
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert run_due(timezone.now() + URGENT * 10) == 0
    assert len(audit_entries("advice.cancelled")) == 1


def test_the_holder_is_alerted_with_no_patient_data(ward, monkeypatch):
    from push import sender

    sent = []
    monkeypatch.setattr(sender, "enqueue", sent.append)
    h = ward
    with TestCase.captureOnCommitCallbacks(execute=True):
        made = ask(h)
    with TestCase.captureOnCommitCallbacks(execute=True):
        run_due(due_at(made["id"]))
    with TestCase.captureOnCommitCallbacks(execute=True):
        Api(h.surgeon_dave).post(f"/api/advice/{made['id']}/acknowledge", {"answer": "on_it"})
    alerts = [job for job in sent if isinstance(job, sender.Send)]
    assert [job.user_ids for job in alerts] == [
        (h.surgeon_bob.pk,),
        (h.surgeon_dave.pk,),
        (h.nurse_alice.pk,),
    ]
    bodies = [json.loads(job.body) for job in alerts]
    assert bodies[0] == {
        "kind": "advice.request",
        "department": "Plastic surgery",
        "priority": "urgent",
        "request": made["id"],
        "step": "requested",
    }
    assert bodies[2]["kind"] == "advice.answered" and bodies[2]["answer"] == "on_it"
    for job in alerts:
        assert job.urgency == "high" and job.topic == f"advice-{made['id']}"
        for words in ("Lefèvre", "Léa", "00800100", "Wound", "nurse_alice"):
            assert words not in job.body


# --- Reading ----------------------------------------------------------------------------


def test_lists_show_mine_and_my_departments(ward):
    h = ward
    made = ask(h)
    ask(h, priority="routine", to_user=h.head_carol.pk)
    mine = AdviceList.model_validate(Api(h.surgeon_bob).get("/api/advice").json())
    assert [r.id for r in mine.requests] == [made["id"]]
    asked_by_me = AdviceList.model_validate(Api(h.nurse_alice).get("/api/advice").json())
    assert len(asked_by_me.requests) == 2
    department = Api(h.surgeon_dave).get(f"/api/advice?department={h.plastic.pk}")
    assert len(department.json()["requests"]) == 2
    Api(h.nurse_alice).post(f"/api/advice/{made['id']}/cancel", {})
    ordered = Api(h.nurse_alice).get("/api/advice").json()["requests"]
    assert [r["status"] for r in ordered] == ["open", "cancelled"]


# --- Refusals ---------------------------------------------------------------------------


def test_only_the_senders_own_standing_message_in_an_open_thread_becomes_a_request(ward):
    h = ward
    bobs = post(h, "surgeon_bob", h.thread, "bobs-own-message")
    alice = Api(h.nurse_alice)
    body = {"priority": "urgent", "to_role": h.role.pk}
    assert_refused(alice.post("/api/advice", {**body, "message": bobs}), 404, "not_found")
    theirs = post(h, "nurse_ines", h.vascular_thread, "ines-own-message")
    assert_refused(alice.post("/api/advice", {**body, "message": theirs}), 404, "not_found")
    assert_refused(alice.post("/api/advice", {**body, "message": 10**9}), 404, "not_found")
    mine = post(h, "nurse_alice", h.thread, "alice-redacted")
    check_redact_message(h.nurse_alice, mine)
    assert_refused(alice.post("/api/advice", {**body, "message": mine}), 409, "message_redacted")
    mine = post(h, "nurse_alice", h.thread, "alice-closed")
    h.thread.closed_at, h.thread.closed_by = timezone.now(), h.head_carol
    h.thread.save()
    assert_refused(alice.post("/api/advice", {**body, "message": mine}), 409, "thread_closed")
    assert not AdviceRequest.objects.exists()


def test_the_addressee_is_one_member_or_one_active_role_of_the_department(ward):
    h = ward
    message = post(h, "nurse_alice", h.thread, "alice-question")
    alice = Api(h.nurse_alice)

    def asking(**fields):
        return alice.post("/api/advice", {"message": message, "priority": "urgent", **fields})

    assert_refused(asking(), 400, "invalid_request")
    assert_refused(asking(to_user=h.surgeon_bob.pk, to_role=h.role.pk), 400, "invalid_request")
    assert_refused(asking(to_user=h.nurse_alice.pk), 400, "invalid_request")
    refused = assert_refused(asking(to_user=h.nurse_ines.pk), 409, "not_a_member")
    assert refused["data"] == {"user": h.nurse_ines.pk}
    assert_refused(asking(to_user=h.intern_erin.pk), 409, "not_a_member")  # removed
    vascular_role = oncall.check_create_role(h.head_grace, h.vascular.pk, "On-call vascular")
    assert_refused(asking(to_role=vascular_role["id"]), 404, "not_found")
    archived = oncall.check_create_role(h.head_carol, h.plastic.pk, "Night nurse")
    oncall.check_archive_role(h.head_carol, h.plastic.pk, archived["id"])
    assert_refused(asking(to_role=archived["id"]), 409, "conflict")
    assert_refused(asking(to_role=h.role.pk, priority="whenever"), 400, "invalid_request")
    assert not AdviceRequest.objects.exists()


def test_asking_again_is_a_retry_but_not_with_other_terms(ward):
    h = ward
    message = post(h, "nurse_alice", h.thread, "alice-retry")
    alice = Api(h.nurse_alice)
    body = {"message": message, "priority": "urgent", "to_role": h.role.pk}
    first = alice.post("/api/advice", body)
    again = alice.post("/api/advice", body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert_refused(alice.post("/api/advice", {**body, "priority": "emergency"}), 409, "conflict")
    assert_refused(
        alice.post("/api/advice", {**body, "to_role": None, "to_user": h.surgeon_bob.pk}),
        409,
        "conflict",
    )
    assert AdviceRequest.objects.count() == 1 and len(audit_entries("advice.requested")) == 1


def test_who_may_answer_pass_withdraw_and_read(ward):
    h = ward
    made = ask(h)
    path = f"/api/advice/{made['id']}"
    on_it = {"answer": "on_it"}
    # The requester does not answer their own; a member never asked may not either.
    assert_refused(Api(h.nurse_alice).post(path + "/acknowledge", on_it), 403, "forbidden")
    assert_refused(Api(h.surgeon_dave).post(path + "/acknowledge", on_it), 403, "forbidden")
    assert_refused(
        Api(h.surgeon_dave).post(path + "/pass", {"to_role": h.role.pk}), 403, "forbidden"
    )
    # Outside the department it does not exist.
    for outsider in (h.nurse_ines, h.head_grace, h.intern_erin, h.compliance_dan, h.admin_zoe):
        api = Api(outsider)
        assert_refused(api.get(path), 404, "not_found")
        assert_refused(api.post(path + "/acknowledge", on_it), 404, "not_found")
        assert_refused(api.post(path + "/cancel", {}), 404, "not_found")
    assert_refused(Api(h.surgeon_bob).post(path + "/cancel", {}), 403, "forbidden")
    assert_refused(
        Api(h.surgeon_bob).post(path + "/acknowledge", {"answer": "maybe"}), 400, "invalid_request"
    )
    assert_refused(
        Api(h.surgeon_bob).post(path + "/pass", {"to_user": h.nurse_alice.pk}),
        400,
        "invalid_request",
    )
    assert_refused(
        Api(h.surgeon_bob).post(path + "/pass", {"to_user": h.nurse_ines.pk}), 409, "not_a_member"
    )
    assert Api(h.surgeon_bob).post(path + "/acknowledge", on_it).status_code == 200
    refused = assert_refused(Api(h.surgeon_bob).post(path + "/acknowledge", on_it), 409, "conflict")
    assert refused["data"] == {"status": "acknowledged"}
    assert_refused(Api(h.nurse_alice).post(path + "/cancel", {}), 409, "conflict")
    assert_refused(Api(h.surgeon_bob).post(path + "/pass", {"to_role": h.role.pk}), 409, "conflict")
    assert_refused(
        Api(h.nurse_ines).get(f"/api/advice?department={h.plastic.pk}"), 404, "not_found"
    )
    assert len(steps(made["id"])) == 2


def test_a_request_of_a_departed_member_no_longer_reaches_them(ward):
    from rooms.actions import do_remove_member

    h = ward
    made = ask(h, to_user=h.surgeon_dave.pk)
    do_remove_member(h.head_carol, h.plastic.pk, h.surgeon_dave.pk)
    assert_refused(
        Api(h.surgeon_dave).post(f"/api/advice/{made['id']}/acknowledge", {"answer": "on_it"}),
        404,
        "not_found",
    )
    run_due(due_at(made["id"]))
    assert steps(made["id"])[-1] == ("escalated", "head_carol")
    assert (
        actions.request_data(AdviceRequest.objects.get(pk=made["id"]))["holder"]["id"]
        == h.head_carol.pk
    )


def test_a_requester_has_at_most_so_many_open_requests(ward, settings):
    settings.ROUNDS_ADVICE_MAX_OPEN = 2
    h = ward
    first = ask(h)
    ask(h, priority="routine", to_user=h.surgeon_bob.pk)
    message = post(h, "nurse_alice", h.thread, "alice-third-question")
    body = {"message": message, "priority": "urgent", "to_role": h.role.pk}
    refused = assert_refused(Api(h.nurse_alice).post("/api/advice", body), 429, "rate_limited")
    assert refused["data"] == {"open": 2, "max": 2}
    assert AdviceRequest.objects.count() == 2
    # A retry of a request already made is not a new one; an answered one frees a place.
    Api(h.surgeon_bob).post(f"/api/advice/{first['id']}/acknowledge", {"answer": "on_it"})
    assert Api(h.nurse_alice).post("/api/advice", body).status_code == 201
    assert Api(h.nurse_alice).post("/api/advice", body).status_code == 200
