"""Department membership over HTTP: admit, remove, leave, promote, demote, create.

A head controls membership; nothing is deleted (a removal closes the row);
a department never loses its last head; every change is an event in the
department's stream and an entry in the audit trail.
"""

from typing import Any

import pytest

from audit.models import AuditEvent
from chat.events import event_frame
from chat.models import Event
from core import outbound
from core.events import EventKind
from rooms.models import Department, Membership, Role
from tests.support import Api, Hospital, audit_entries, make_user

pytestmark = pytest.mark.django_db


def members_path(h: Hospital, user: Any = None) -> str:
    base = f"/api/departments/{h.plastic.pk}/members"
    return base if user is None else f"{base}/{user.pk}"


def active(h: Hospital, user: Any) -> Membership | None:
    return Membership.objects.active().filter(department=h.plastic, user=user).first()


def last_event(h: Hospital) -> Event:
    event = Event.objects.filter(department=h.plastic).order_by("-seq").first()
    assert event is not None
    return event


def counts(h: Hospital) -> tuple[int, int, int, int]:
    h.plastic.refresh_from_db()
    return (
        Membership.objects.count(),
        Event.objects.count(),
        AuditEvent.objects.exclude(action__startswith="auth.").count(),
        h.plastic.event_seq,
    )


@pytest.fixture
def carol(hospital) -> Api:
    return Api(hospital.head_carol)


@pytest.fixture
def fred(hospital) -> Any:
    """A locum with no department yet."""
    return make_user("locum_fred")


# --- Admit -----------------------------------------------------------------------


def test_a_head_admits_a_member(hospital, carol, fred):
    h = hospital
    seq_before = Department.objects.get(pk=h.plastic.pk).event_seq
    response = carol.post(members_path(h), {"user_id": fred.pk})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["user"] == {"id": fred.pk, "username": "locum_fred", "display_name": "Locum Fred"}
    assert body["role"] == "member"

    membership = active(h, fred)
    assert membership is not None
    assert membership.role == Role.MEMBER
    assert membership.admitted_by == h.head_carol

    event = last_event(h)
    assert event.kind == EventKind.MEMBER_ADMITTED
    assert event.seq == seq_before + 1
    assert event.payload["user"] == {"id": fred.pk, "username": "locum_fred"}
    assert event.payload["by"] == {"id": h.head_carol.pk, "username": "head_carol"}
    outbound.validate_outbound(event_frame(event))

    (entry,) = audit_entries("member.admitted", object_id=str(fred.pk))
    assert entry.actor_id == h.head_carol.pk
    assert entry.department_id == h.plastic.pk
    assert entry.data == {"role": "member"}

    # The new member sees the department and its members at once.
    fred_api = Api(fred)
    assert [d["id"] for d in fred_api.get("/api/departments").json()] == [h.plastic.pk]
    assert fred_api.get(members_path(h)).status_code == 200


def test_a_head_may_admit_straight_as_head(hospital, carol, fred):
    response = carol.post(members_path(hospital), {"user_id": fred.pk, "role": "head"})
    assert response.status_code == 201
    assert active(hospital, fred).role == Role.HEAD


def test_admitting_an_existing_member_is_409_already_member(hospital, carol):
    h = hospital
    before = counts(h)
    response = carol.post(members_path(h), {"user_id": h.nurse_alice.pk})
    assert response.status_code == 409
    assert response.json()["code"] == "already_member"
    assert counts(h) == before


def test_admitting_an_unknown_user_or_role_is_refused(hospital, carol, fred):
    h = hospital
    before = counts(h)
    unknown = carol.post(members_path(h), {"user_id": 999_999})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "not_found"
    bad_role = carol.post(members_path(h), {"user_id": fred.pk, "role": "owner"})
    assert bad_role.status_code == 400
    assert bad_role.json()["code"] == "invalid_request"
    assert counts(h) == before


def test_a_removed_member_can_be_readmitted(hospital, carol):
    h = hospital
    assert active(h, h.intern_erin) is None
    response = carol.post(members_path(h), {"user_id": h.intern_erin.pk})
    assert response.status_code == 201, response.content
    assert active(h, h.intern_erin) is not None
    # The earlier, closed membership is kept beside the new one.
    rows = Membership.objects.filter(department=h.plastic, user=h.intern_erin).order_by("pk")
    assert [row.removed_at is None for row in rows] == [False, True]
    erin = Api(h.intern_erin)
    assert erin.get(f"/api/threads/{h.thread.pk}/messages").status_code == 200


# --- Remove and leave --------------------------------------------------------------


def test_a_head_removes_a_member_and_the_row_is_kept(hospital, carol):
    h = hospital
    membership = active(h, h.surgeon_bob)
    rows_before = Membership.objects.count()
    response = carol.delete(members_path(h, h.surgeon_bob))
    assert response.status_code == 200, response.content
    assert response.json()["user"] == {"id": h.surgeon_bob.pk}

    membership.refresh_from_db()  # still there: removal closes, never deletes
    assert membership.removed_at is not None
    assert membership.removed_by == h.head_carol
    assert Membership.objects.count() == rows_before
    assert active(h, h.surgeon_bob) is None

    event = last_event(h)
    assert event.kind == EventKind.MEMBER_REMOVED
    assert event.payload["user"]["id"] == h.surgeon_bob.pk
    outbound.validate_outbound(event_frame(event))
    (entry,) = audit_entries("member.removed", object_id=str(h.surgeon_bob.pk))
    assert entry.actor_id == h.head_carol.pk

    bob = Api(h.surgeon_bob)
    gone = bob.get(f"/api/threads/{h.thread.pk}/messages")
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_found"


def test_a_member_may_leave(hospital):
    h = hospital
    alice = Api(h.nurse_alice)
    response = alice.delete(members_path(h, h.nurse_alice))
    assert response.status_code == 200, response.content
    assert active(h, h.nurse_alice) is None
    (entry,) = audit_entries("member.removed", object_id=str(h.nurse_alice.pk))
    assert entry.actor_id == h.nurse_alice.pk
    assert alice.get(members_path(h)).status_code == 404


def test_removing_someone_who_is_not_a_member_is_404(hospital, carol):
    h = hospital
    before = counts(h)
    for user in (h.intern_erin, h.nurse_ines):
        response = carol.delete(members_path(h, user))
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert counts(h) == before


def test_the_last_head_cannot_leave(hospital, carol):
    h = hospital
    before = counts(h)
    response = carol.delete(members_path(h, h.head_carol))
    assert response.status_code == 409
    assert response.json()["code"] == "last_head"
    assert counts(h) == before
    assert active(h, h.head_carol).role == Role.HEAD


def test_the_last_head_cannot_step_down(hospital, carol):
    h = hospital
    before = counts(h)
    response = carol.post(members_path(h, h.head_carol) + "/role", {"role": "member"})
    assert response.status_code == 409
    assert response.json()["code"] == "last_head"
    assert counts(h) == before
    assert active(h, h.head_carol).role == Role.HEAD


# --- Roles -------------------------------------------------------------------------


def test_a_head_promotes_another_head(hospital, carol, fred):
    h = hospital
    response = carol.post(members_path(h, h.surgeon_bob) + "/role", {"role": "head"})
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "head"
    assert active(h, h.surgeon_bob).role == Role.HEAD

    event = last_event(h)
    assert event.kind == EventKind.MEMBER_ROLE
    assert event.payload["role"] == "head"
    outbound.validate_outbound(event_frame(event))
    (entry,) = audit_entries("member.role_changed", object_id=str(h.surgeon_bob.pk))
    assert entry.data == {"role": "head"}

    # The new head holds a head's powers.
    bob = Api(h.surgeon_bob)
    assert bob.post(members_path(h), {"user_id": fred.pk}).status_code == 201


def test_with_two_heads_one_may_step_down_or_leave(hospital, carol):
    h = hospital
    carol.post(members_path(h, h.surgeon_bob) + "/role", {"role": "head"})
    stepped = carol.post(members_path(h, h.head_carol) + "/role", {"role": "member"})
    assert stepped.status_code == 200
    assert active(h, h.head_carol).role == Role.MEMBER
    # Bob is now the last head.
    bob = Api(h.surgeon_bob)
    refused = bob.delete(members_path(h, h.surgeon_bob))
    assert refused.status_code == 409
    assert refused.json()["code"] == "last_head"
    assert carol.delete(members_path(h, h.head_carol)).status_code == 200


def test_setting_the_same_role_changes_nothing(hospital, carol):
    h = hospital
    before = counts(h)
    response = carol.post(members_path(h, h.nurse_alice) + "/role", {"role": "member"})
    assert response.status_code == 200
    assert counts(h) == before


def test_an_unknown_role_is_400(hospital, carol):
    h = hospital
    response = carol.post(members_path(h, h.nurse_alice) + "/role", {"role": "admin"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"


def test_listing_members_shows_the_active_ones_with_their_roles(hospital):
    h = hospital
    body = Api(h.nurse_alice).get(members_path(h)).json()
    assert {m["user"]["username"]: m["role"] for m in body} == {
        "head_carol": "head",
        "nurse_alice": "member",
        "surgeon_bob": "member",
    }


# --- Creating a department ------------------------------------------------------------


def test_an_admin_creates_a_department_with_its_first_head(hospital, fred):
    h = hospital
    zoe = Api(h.admin_zoe)
    response = zoe.post("/api/departments", {"name": "Dermatology", "head_user_id": fred.pk})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Dermatology"
    assert body["slug"] == "dermatology"
    department = Department.objects.get(pk=body["id"])
    (membership,) = Membership.objects.filter(department=department)
    assert (membership.user, membership.role) == (fred, Role.HEAD)
    assert membership.admitted_by == h.admin_zoe
    (event,) = Event.objects.filter(department=department)
    assert (event.kind, event.seq) == (EventKind.MEMBER_ADMITTED, 1)
    (entry,) = audit_entries("department.created", department_id=department.pk)
    assert entry.actor_id == h.admin_zoe.pk
    assert entry.data == {"head_id": fred.pk}
    # The admin appointed a head, not themself.
    assert not Membership.objects.filter(department=department, user=h.admin_zoe).exists()
    assert Api(fred).get(f"/api/departments/{department.pk}/members").status_code == 200


def test_a_department_name_is_unique(hospital, fred):
    zoe = Api(hospital.admin_zoe)
    before = Department.objects.count()
    response = zoe.post("/api/departments", {"name": "Plastic surgery", "head_user_id": fred.pk})
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert Department.objects.count() == before


def test_a_department_needs_a_name_and_a_real_head(hospital, fred):
    zoe = Api(hospital.admin_zoe)
    before = Department.objects.count()
    blank = zoe.post("/api/departments", {"name": "  ", "head_user_id": fred.pk})
    assert blank.status_code == 400
    assert blank.json()["code"] == "invalid_request"
    nobody = zoe.post("/api/departments", {"name": "Dermatology", "head_user_id": 999_999})
    assert nobody.status_code == 404
    assert nobody.json()["code"] == "not_found"
    assert Department.objects.count() == before
