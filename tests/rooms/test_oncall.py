"""On-call roles and their roster (rooms/oncall.py, docs/oncall.md): who may do what,
who is on duty at an instant (start inclusive, end exclusive), archived roles, removal
that keeps its row, and the audit entries of every change."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from core.api_schemas.oncall import OnCallRole as RoleBody
from core.api_schemas.oncall import OnCallRoles, OnDuty, Roster, Shift
from core.errors import Conflict
from rooms import oncall, roster_import
from rooms.models import Membership, OnCallRole, RosterShift
from tests.support import Api, Hospital, assert_refused, audit_entries

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)  # 08:00 in Paris
HOUR = timedelta(hours=1)


@pytest.fixture
def h(bare_hospital: Hospital) -> Hospital:
    return bare_hospital


def base(h: Hospital) -> str:
    return f"/api/departments/{h.plastic.pk}/oncall"


def make_role(h: Hospital, name: str = "On-call plastic surgeon") -> OnCallRole:
    data = oncall.check_create_role(h.head_carol, h.plastic.pk, name)
    return OnCallRole.objects.get(pk=data["id"])


def add(h: Hospital, role: OnCallRole, who, start: datetime, end: datetime) -> RosterShift:
    data = oncall.check_add_shift(h.head_carol, h.plastic.pk, role.pk, who.pk, start, end)
    return RosterShift.objects.get(pk=data["id"])


def shift_body(role: OnCallRole, who, start: datetime, end: datetime) -> dict:
    return {
        "role": role.pk,
        "user": who.pk,
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat(),
    }


# --- Permissions ------------------------------------------------------------------------


def test_a_head_creates_renames_and_archives_a_role_each_audited(h):
    carol = Api(h.head_carol)
    response = carol.post(base(h) + "/roles", {"name": "  On-call   plastic surgeon "})
    assert response.status_code == 201, response.content
    role = RoleBody.model_validate(response.json())
    assert (role.name, role.active, role.on_duty, role.archived_at) == (
        "On-call plastic surgeon",
        True,
        [],
        None,
    )
    renamed = carol.post(base(h) + f"/roles/{role.id}/rename", {"name": "Plastic surgeon on call"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Plastic surgeon on call"
    archived = carol.post(base(h) + f"/roles/{role.id}/archive", {})
    assert archived.status_code == 200 and archived.json()["active"] is False
    assert OnCallRole.objects.filter(pk=role.id, archived_by=h.head_carol).exists()
    [created] = audit_entries("oncall.role_created", department_id=h.plastic.pk)
    assert created.data == {"name": "On-call plastic surgeon"}
    [renaming] = audit_entries("oncall.role_renamed")
    assert renaming.data["previous"] == "On-call plastic surgeon"
    assert len(audit_entries("oncall.role_archived", object_id=str(role.id))) == 1


def test_members_read_roles_roster_and_who_is_on_duty_but_change_nothing(h):
    role = make_role(h)
    now = timezone.now()
    add(h, role, h.surgeon_bob, now - HOUR, now + HOUR)
    alice = Api(h.nurse_alice)
    roles = OnCallRoles.model_validate(alice.get(base(h) + "/roles").json())
    assert [(r.name, [u.username for u in r.on_duty]) for r in roles.roles] == [
        ("On-call plastic surgeon", ["surgeon_bob"])
    ]
    duty = OnDuty.model_validate(alice.get(base(h) + f"/roles/{role.pk}/on-duty").json())
    assert [u.username for u in duty.users] == ["surgeon_bob"]
    roster = Roster.model_validate(alice.get(base(h) + "/roster").json())
    assert [s.user.username for s in roster.shifts] == ["surgeon_bob"]
    for path, body in (
        ("/roles", {"name": "Night nurse"}),
        (f"/roles/{role.pk}/rename", {"name": "Other"}),
        (f"/roles/{role.pk}/archive", {}),
        ("/shifts", shift_body(role, h.nurse_alice, now, now + HOUR)),
        ("/import/preview", {"format": "csv", "content": "x,y,z,w"}),
        ("/import", {"format": "csv", "content": "x,y,z,w"}),
    ):
        assert_refused(alice.post(base(h) + path, body), 403, "forbidden")
    shift = RosterShift.objects.get()
    assert_refused(alice.delete(base(h) + f"/shifts/{shift.pk}"), 403, "forbidden")
    assert OnCallRole.objects.get().name == "On-call plastic surgeon"
    assert RosterShift.objects.get().removed_at is None


@pytest.mark.parametrize("who", ["head_grace", "nurse_ines", "intern_erin", "admin_zoe"])
def test_outsiders_find_no_department_and_no_role(h, who):
    """A head elsewhere, a member elsewhere, a former member and an administrator meet the
    department's on-call objects as missing ones, reads and writes alike."""
    role = make_role(h)
    shift = add(h, role, h.surgeon_bob, T0, T0 + HOUR)
    api = Api(getattr(h, who))
    for response in (
        api.get(base(h) + "/roles"),
        api.get(base(h) + "/roster"),
        api.get(base(h) + f"/roles/{role.pk}/on-duty"),
        api.post(base(h) + "/roles", {"name": "Night nurse"}),
        api.post(base(h) + f"/roles/{role.pk}/archive", {}),
        api.post(base(h) + "/shifts", shift_body(role, h.surgeon_bob, T0, T0 + HOUR)),
        api.delete(base(h) + f"/shifts/{shift.pk}"),
        api.post(base(h) + "/import/preview", {"format": "csv", "content": "a,b,c,d"}),
    ):
        assert_refused(response, 404, "not_found")
    assert OnCallRole.objects.count() == 1 and RosterShift.objects.get().removed_at is None


def test_a_role_or_shift_of_another_department_is_not_found_through_this_one(h):
    vascular = OnCallRole.objects.get(
        pk=oncall.check_create_role(h.head_grace, h.vascular.pk, "On-call vascular surgeon")["id"]
    )
    shift = oncall.check_add_shift(
        h.head_grace, h.vascular.pk, vascular.pk, h.nurse_ines.pk, T0, T0 + HOUR
    )
    carol = Api(h.head_carol)
    assert_refused(carol.post(base(h) + f"/roles/{vascular.pk}/archive", {}), 404, "not_found")
    assert_refused(carol.get(base(h) + f"/roles/{vascular.pk}/on-duty"), 404, "not_found")
    assert_refused(carol.delete(base(h) + f"/shifts/{shift['id']}"), 404, "not_found")
    body = shift_body(vascular, h.surgeon_bob, T0, T0 + HOUR)
    assert_refused(carol.post(base(h) + "/shifts", body), 404, "not_found")


def test_role_names_are_unique_per_department_whatever_their_case(h):
    make_role(h)
    carol = Api(h.head_carol)
    assert_refused(
        carol.post(base(h) + "/roles", {"name": "ON-CALL plastic surgeon"}), 409, "conflict"
    )
    assert_refused(carol.post(base(h) + "/roles", {"name": "   "}), 400, "invalid_request")
    night = make_role(h, "Night nurse")
    rename = carol.post(base(h) + f"/roles/{night.pk}/rename", {"name": "on-call plastic surgeon"})
    assert_refused(rename, 409, "conflict")
    # Another department may use the same name, and an archived name may be taken again.
    oncall.check_create_role(h.head_grace, h.vascular.pk, "On-call plastic surgeon")
    oncall.check_archive_role(h.head_carol, h.plastic.pk, night.pk)
    assert carol.post(base(h) + "/roles", {"name": "Night nurse"}).status_code == 201
    assert len(audit_entries("oncall.role_created")) == 4


# --- Shifts -----------------------------------------------------------------------------


def test_a_shift_is_added_audited_and_its_times_checked(h):
    role = make_role(h)
    carol = Api(h.head_carol)
    response = carol.post(base(h) + "/shifts", shift_body(role, h.surgeon_bob, T0, T0 + 12 * HOUR))
    assert response.status_code == 201, response.content
    shift = Shift.model_validate(response.json())
    assert (shift.user.username, shift.removed_at) == ("surgeon_bob", None)
    [entry] = audit_entries("oncall.shift_added", object_id=str(shift.id))
    assert entry.data == {
        "role": role.pk,
        "user": h.surgeon_bob.pk,
        "starts_at": T0.isoformat(),
        "ends_at": (T0 + 12 * HOUR).isoformat(),
    }
    backwards = shift_body(role, h.surgeon_bob, T0, T0)
    assert_refused(carol.post(base(h) + "/shifts", backwards), 400, "invalid_request")
    naive = {**shift_body(role, h.surgeon_bob, T0, T0 + HOUR), "starts_at": "2026-12-07T08:00:00"}
    assert_refused(carol.post(base(h) + "/shifts", naive), 400, "invalid_request")
    assert RosterShift.objects.count() == 1


@pytest.mark.parametrize("who", ["intern_erin", "nurse_ines", "compliance_dan"])
def test_a_shift_is_for_an_active_member_of_the_department_only(h, who):
    role = make_role(h)
    body = shift_body(role, getattr(h, who), T0, T0 + HOUR)
    refused = assert_refused(Api(h.head_carol).post(base(h) + "/shifts", body), 409, "not_a_member")
    assert refused["data"] == {"user": getattr(h, who).pk}
    assert not RosterShift.objects.exists() and not audit_entries("oncall.shift_added")


def test_removal_keeps_the_row_and_its_history(h):
    role = make_role(h)
    shift = add(h, role, h.surgeon_bob, T0, T0 + HOUR)
    carol = Api(h.head_carol)
    response = carol.delete(base(h) + f"/shifts/{shift.pk}")
    assert response.status_code == 200, response.content
    assert Shift.model_validate(response.json()).removed_at is not None
    shift.refresh_from_db()
    assert (shift.removed_by, shift.user) == (h.head_carol, h.surgeon_bob)
    assert oncall.on_duty(role, T0) == []
    [entry] = audit_entries("oncall.shift_removed", object_id=str(shift.pk))
    assert entry.data == {"role": role.pk, "user": h.surgeon_bob.pk}
    assert_refused(carol.delete(base(h) + f"/shifts/{shift.pk}"), 409, "conflict")
    assert_refused(carol.delete(base(h) + "/shifts/999999"), 404, "not_found")
    assert len(audit_entries("oncall.shift_removed")) == 1


# --- Resolution -------------------------------------------------------------------------


def test_on_duty_takes_the_start_and_leaves_the_end(h):
    role = make_role(h)
    add(h, role, h.surgeon_bob, T0, T0 + 12 * HOUR)
    add(h, role, h.head_carol, T0 + 12 * HOUR, T0 + 24 * HOUR)
    assert oncall.on_duty(role, T0 - timedelta(microseconds=1)) == []
    assert oncall.on_duty(role, T0) == [h.surgeon_bob]
    assert oncall.on_duty(role, T0 + 12 * HOUR - timedelta(microseconds=1)) == [h.surgeon_bob]
    assert oncall.on_duty(role, T0 + 12 * HOUR) == [h.head_carol]  # the handover
    assert oncall.on_duty(role, T0 + 24 * HOUR) == []


def test_on_duty_lists_an_overlap_by_start_and_answers_a_gap_with_nobody(h):
    role = make_role(h)
    add(h, role, h.nurse_alice, T0 + HOUR, T0 + 3 * HOUR)
    add(h, role, h.surgeon_bob, T0, T0 + 2 * HOUR)
    assert oncall.on_duty(role, T0 + 90 * timedelta(minutes=1)) == [h.surgeon_bob, h.nurse_alice]
    api = Api(h.nurse_alice)
    at = (T0 + 10 * HOUR).isoformat().replace("+00:00", "Z")
    answer = api.client.get(base(h) + f"/roles/{role.pk}/on-duty", {"at": at}, **api.auth)
    assert answer.status_code == 200 and answer.json()["users"] == []
    naive = api.client.get(
        base(h) + f"/roles/{role.pk}/on-duty", {"at": "2026-12-07T08:00"}, **api.auth
    )
    assert_refused(naive, 400, "invalid_request")


def test_on_duty_is_now_by_default_on_the_servers_clock(h):
    role = make_role(h)
    now = timezone.now()
    add(h, role, h.surgeon_bob, now - HOUR, now + HOUR)
    add(h, role, h.nurse_alice, now + HOUR, now + 2 * HOUR)
    assert oncall.on_duty(role) == [h.surgeon_bob]


def test_an_archived_role_has_nobody_and_takes_no_shift(h):
    role = make_role(h)
    add(h, role, h.surgeon_bob, T0, T0 + HOUR)
    oncall.check_archive_role(h.head_carol, h.plastic.pk, role.pk)
    role.refresh_from_db()
    assert oncall.on_duty(role, T0) == []
    carol = Api(h.head_carol)
    body = shift_body(role, h.surgeon_bob, T0, T0 + HOUR)
    assert_refused(carol.post(base(h) + "/shifts", body), 409, "conflict")
    assert_refused(carol.post(base(h) + f"/roles/{role.pk}/archive", {}), 409, "conflict")
    assert_refused(carol.post(base(h) + f"/roles/{role.pk}/rename", {"name": "X"}), 409, "conflict")
    # Kept, with its shift, and listed after the active roles.
    make_role(h, "Night nurse")
    listed = carol.get(base(h) + "/roles").json()["roles"]
    assert [(r["name"], r["active"]) for r in listed] == [
        ("Night nurse", True),
        ("On-call plastic surgeon", False),
    ]
    assert RosterShift.objects.filter(role=role).count() == 1


def test_someone_who_left_the_department_is_no_longer_on_duty(h):
    role = make_role(h)
    add(h, role, h.surgeon_bob, T0, T0 + HOUR)
    Membership.objects.filter(user=h.surgeon_bob, department=h.plastic).update(
        removed_at=timezone.now()
    )
    assert oncall.on_duty(role, T0) == []


# --- The roster -------------------------------------------------------------------------


def test_the_roster_of_a_window_with_its_gaps_and_overlaps(h):
    role = make_role(h)
    make_role(h, "Night nurse")
    add(h, role, h.surgeon_bob, T0, T0 + 12 * HOUR)
    add(h, role, h.head_carol, T0 + 10 * HOUR, T0 + 24 * HOUR)
    add(h, role, h.nurse_alice, T0 + 40 * HOUR, T0 + 50 * HOUR)  # outside the window
    api = Api(h.nurse_alice)
    query = {"from": T0.isoformat(), "to": (T0 + 30 * HOUR).isoformat()}
    response = api.client.get(base(h) + "/roster", query, **api.auth)
    roster = Roster.model_validate(response.json())
    assert [s.user.username for s in roster.shifts] == ["surgeon_bob", "head_carol"]
    gaps = [(g.role.name, g.starts_at, g.ends_at) for g in roster.gaps]
    assert gaps == [
        ("Night nurse", T0.isoformat(), (T0 + 30 * HOUR).isoformat()),
        ("On-call plastic surgeon", (T0 + 24 * HOUR).isoformat(), (T0 + 30 * HOUR).isoformat()),
    ]
    [overlap] = roster.overlaps
    assert (overlap.starts_at, overlap.ends_at) == (
        (T0 + 10 * HOUR).isoformat(),
        (T0 + 12 * HOUR).isoformat(),
    )
    assert [u.username for u in overlap.users] == ["surgeon_bob", "head_carol"]
    only = api.client.get(base(h) + "/roster", {**query, "role": 999999}, **api.auth)
    assert_refused(only, 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-12-01T00:00:00+00:00", "to": "2026-01-02T00:00:01+00:00"},
        {"from": "2026-12-01T00:00:00+00:00", "to": "2027-01-01T00:00:01+00:00"},
        {"from": "2026-12-01T00:00:00"},
    ],
    ids=["backwards", "over-31-days", "naive"],
)
def test_a_roster_window_is_refused_if_backwards_longer_than_31_days_or_naive(h, query):
    api = Api(h.nurse_alice)
    assert_refused(api.client.get(base(h) + "/roster", query, **api.auth), 400, "invalid_request")


def test_a_31_day_window_is_the_longest_answered(h):
    api = Api(h.nurse_alice)
    query = {"from": "2026-12-01T00:00:00+00:00", "to": "2027-01-01T00:00:00+00:00"}
    assert api.client.get(base(h) + "/roster", query, **api.auth).status_code == 200


# --- The live event ---------------------------------------------------------------------


def test_every_change_of_roles_and_roster_is_announced_once(h):
    from chat.events import event_frame
    from chat.models import Event
    from core.outbound import validate_outbound

    role = make_role(h)
    oncall.check_rename_role(h.head_carol, h.plastic.pk, role.pk, "Plastic surgeon on call")
    shift = add(h, role, h.surgeon_bob, T0, T0 + 12 * HOUR)
    oncall.check_remove_shift(h.head_carol, h.plastic.pk, shift.pk)
    roster_import.check_import_roster(
        h.head_carol,
        h.plastic.pk,
        "csv",
        f"Plastic surgeon on call,nurse_alice,{T0.isoformat()},{(T0 + HOUR).isoformat()}\n",
    )
    oncall.check_archive_role(h.head_carol, h.plastic.pk, role.pk)
    # Refused changes announce nothing.
    with pytest.raises(Conflict):
        oncall.check_archive_role(h.head_carol, h.plastic.pk, role.pk)
    events = Event.objects.filter(kind="oncall.changed").order_by("seq")
    frames = [event_frame(event) for event in events]
    for frame in frames:
        validate_outbound(frame)
        assert frame["department"] == h.plastic.pk
        assert frame["by"] == {"id": h.head_carol.pk, "username": "head_carol"}
    assert [(f["change"], f["role"]) for f in frames] == [
        ("role_created", role.pk),
        ("role_renamed", role.pk),
        ("shift_added", role.pk),
        ("shift_removed", role.pk),
        ("roster_imported", None),
        ("role_archived", role.pk),
    ]
