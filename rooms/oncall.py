"""On-call roles and their roster: who holds "On-call plastic surgeon" when (docs/oncall.md).

A department's head creates, renames and archives its roles and edits the
roster; every member reads them and who is on duty. `on_duty` is the one
resolution rule the later steps of issue 16 (requests, escalation) call, on
the server's clock: the standing shifts whose half-open period
[starts_at, ends_at) holds the instant, of people still active members of
the department, by start. Nothing here is deleted: a role is archived, a
shift is marked removed, and each change is audited in its transaction.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from chat.events import append_event
from core.errors import N_, Conflict, ErrorCode, InvalidRequest, NotFound, RoundsError
from core.events import EventKind
from rooms import access
from rooms.actions import lock_department
from rooms.models import Membership, OnCallRole, RosterShift
from rooms.roster_files import Span, gaps, overlaps

MAX_NAME = 120
MAX_WINDOW = timedelta(days=31)
DEFAULT_WINDOW = timedelta(days=7)


class NotAMember(RoundsError):
    code = ErrorCode.NOT_A_MEMBER
    default_message = N_("Only an active member of the department may hold its on-call roles.")


def user_card(user: User) -> dict[str, Any]:
    return {"id": user.pk, "username": user.username, "display_name": user.label}


def role_data(role: OnCallRole, holders: list[User]) -> dict[str, Any]:
    return {
        "id": role.pk,
        "department": role.department_id,
        "name": role.name,
        "active": role.is_active,
        "created_at": role.created_at.isoformat(),
        "archived_at": role.archived_at.isoformat() if role.archived_at else None,
        "on_duty": [user_card(user) for user in holders],
    }


def shift_data(shift: RosterShift) -> dict[str, Any]:
    return {
        "id": shift.pk,
        "role": shift.role_id,
        "user": user_card(shift.user),
        "starts_at": shift.starts_at.isoformat(),
        "ends_at": shift.ends_at.isoformat(),
        "created_at": shift.created_at.isoformat(),
        "removed_at": shift.removed_at.isoformat() if shift.removed_at else None,
    }


def announce(actor: User, department_id: int, change: str, role_id: int | None) -> None:
    """Tell the department's open screens that its roster changed (`oncall.changed`), in
    the caller's transaction: they read it again. The event says what kind of change and
    by whom, never who is on duty: that stays the roster's to answer."""
    append_event(
        department_id,
        EventKind.ONCALL_CHANGED,
        {"change": change, "role": role_id, "by": {"id": actor.pk, "username": actor.username}},
    )


# --- Resolution ----------------------------------------------------------------------


def on_duty(role: OnCallRole, at: datetime | None = None) -> list[User]:
    """Who holds `role` at `at` (default: now, on the server's clock), by start of shift.

    A shift covers [starts_at, ends_at): its start inclusive, its end exclusive, so
    at a handover only the incoming person is on duty. An archived role has nobody,
    and neither does a shift whose person has since left the department or been
    deactivated: the roster may lag a departure, the answer may not.

    Returns:
        The users, possibly several (an overlap) or none (a gap): empty, never an error.
    """
    if not role.is_active:
        return []
    return holders(role.department_id, [role.pk], at or timezone.now()).get(role.pk, [])


def holders(department_id: int, role_ids: list[int], at: datetime) -> dict[int, list[User]]:
    """on_duty's rule for several roles of a department at once, in one query: each
    role id with a holder at `at`, its holders by start of shift (the caller keeps
    archived roles out)."""
    members = Membership.objects.active().filter(department_id=department_id)
    shifts = (
        RosterShift.objects.covering(at)
        .filter(
            role_id__in=role_ids,
            user__is_active=True,
            user_id__in=members.values("user_id"),
        )
        .select_related("user")
        .order_by("starts_at", "pk")
    )
    found: dict[int, list[User]] = {}
    for shift in shifts:
        found.setdefault(shift.role_id, []).append(shift.user)
    return found


def check_aware(*moments: datetime) -> None:
    """Refuse a time without its offset: a roster's instants are never guessed."""
    if any(timezone.is_naive(moment) for moment in moments):
        raise InvalidRequest(N_("A time needs its UTC offset."))


def check_on_duty(
    actor: User, department_id: int, role_id: int, at: datetime | None = None
) -> dict[str, Any]:
    """Who holds one role at `at` (now if None), for a member of its department."""
    role = access.access_oncall_role(actor, department_id, role_id)
    now = timezone.now()
    at = at or now
    check_aware(at)
    found = on_duty(role, at)
    return {
        "role": role_data(role, found if at == now else on_duty(role, now)),
        "at": at.isoformat(),
        "users": [user_card(user) for user in found],
    }


# --- Reading ------------------------------------------------------------------------


def list_roles(actor: User, department_id: int) -> dict[str, Any]:
    """The department's roles, active first by name then archived ones, each active role
    with who is on duty now (one instant for all of them)."""
    access.access_oncall(actor, department_id)
    now = timezone.now()
    # Active (no archived_at) first on every database: PostgreSQL sorts NULL last.
    roles = list(
        OnCallRole.objects.filter(department_id=department_id).order_by(
            F("archived_at").asc(nulls_first=True), "name", "pk"
        )
    )
    held = holders(department_id, [role.pk for role in roles if role.is_active], now)
    return {
        "department": department_id,
        "at": now.isoformat(),
        "roles": [role_data(role, held.get(role.pk, [])) for role in roles],
    }


def check_roster(
    actor: User,
    department_id: int,
    start: datetime | None = None,
    end: datetime | None = None,
    role_id: int | None = None,
) -> dict[str, Any]:
    """The standing shifts with some time in [start, end) (default: the next 7 days from
    now), of every role or of `role_id`, with each active role's gaps and overlaps there.

    Raises:
        InvalidRequest: a naive time, an end not after the start, or over 31 days.
    """
    access.access_oncall(actor, department_id)
    start = start or timezone.now()
    end = end or start + DEFAULT_WINDOW
    check_aware(start, end)
    if end <= start or end - start > MAX_WINDOW:
        raise InvalidRequest(
            N_("A roster window ends after it starts and spans at most %(days)s days."),
            params={"days": MAX_WINDOW.days},
        )
    roles = OnCallRole.objects.filter(department_id=department_id)
    if role_id is not None:
        roles = roles.filter(pk=role_id)
        if not roles.exists():
            raise NotFound(N_("On-call role not found."))
    shifts = list(
        RosterShift.objects.overlapping(start, end)
        .filter(role__in=roles)
        .select_related("user")
        .order_by("starts_at", "pk")
    )
    return {
        "department": department_id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "shifts": [shift_data(shift) for shift in shifts],
        **coverage(
            list(roles.active().order_by("name", "pk")),
            [shift_span(s) for s in shifts],
            start,
            end,
        ),
    }


def shift_span(shift: RosterShift) -> tuple[int, Span]:
    return shift.role_id, Span(shift.user, shift.starts_at, shift.ends_at)


def coverage(
    roles: list[OnCallRole], spans: list[tuple[int, Span]], start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Each role's gaps and overlaps in [start, end): `{"gaps": [...], "overlaps": [...]}`,
    by role then time, in UTC; the spans' `who` are users."""
    found: dict[str, list[dict[str, Any]]] = {"gaps": [], "overlaps": []}
    for role in roles:
        mine = [span for role_id, span in spans if role_id == role.pk]
        ref = {"id": role.pk, "name": role.name}
        for left, right in gaps(mine, start, end):
            found["gaps"].append({"role": ref, "starts_at": utc(left), "ends_at": utc(right)})
        for left, right, holders in overlaps(mine, start, end):
            found["overlaps"].append(
                {
                    "role": ref,
                    "starts_at": utc(left),
                    "ends_at": utc(right),
                    "users": [user_card(user) for user in holders],
                }
            )
    return found


def utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


# --- Roles ---------------------------------------------------------------------------


def checked_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise InvalidRequest(
            N_("An on-call role's name has 1 to %(max)s characters."), params={"max": MAX_NAME}
        )
    return name


def name_taken() -> Conflict:
    return Conflict(N_("The department already has an on-call role of this name."))


def check_create_role(actor: User, department_id: int, name: str) -> dict[str, Any]:
    access.access_oncall(actor, department_id, edit=True)
    return do_create_role(actor, department_id, checked_name(name))


def do_create_role(actor: User, department_id: int, name: str) -> dict[str, Any]:
    """Create the role. Assumes `actor` heads the department and `name` is checked."""
    try:
        with transaction.atomic():
            role = OnCallRole.objects.create(
                department_id=department_id, name=name, created_by=actor
            )
            record(
                "oncall.role_created",
                actor=actor,
                department_id=department_id,
                object_type="oncall_role",
                object_id=role.pk,
                data={"name": name},
            )
            announce(actor, department_id, "role_created", role.pk)
    except IntegrityError:
        raise name_taken() from None
    return role_data(role, [])


def check_rename_role(actor: User, department_id: int, role_id: int, name: str) -> dict[str, Any]:
    role = access.access_oncall_role(actor, department_id, role_id, edit=True)
    if not role.is_active:
        raise Conflict(N_("This on-call role is archived."))
    return do_rename_role(actor, role, checked_name(name))


def do_rename_role(actor: User, role: OnCallRole, name: str) -> dict[str, Any]:
    """Rename the role (its shifts follow). Assumes `actor` heads its department."""
    if role.name == name:
        return role_data(role, on_duty(role))
    previous = role.name
    try:
        with transaction.atomic():
            role.name = name
            role.save(update_fields=["name"])
            record(
                "oncall.role_renamed",
                actor=actor,
                department_id=role.department_id,
                object_type="oncall_role",
                object_id=role.pk,
                data={"name": name, "previous": previous},
            )
            announce(actor, role.department_id, "role_renamed", role.pk)
    except IntegrityError:
        raise name_taken() from None
    return role_data(role, on_duty(role))


def check_archive_role(actor: User, department_id: int, role_id: int) -> dict[str, Any]:
    role = access.access_oncall_role(actor, department_id, role_id, edit=True)
    return do_archive_role(actor, role)


def do_archive_role(actor: User, role: OnCallRole) -> dict[str, Any]:
    """Archive the role: it resolves to nobody from now on and takes no new shift; its
    shifts stay as they are, for the record. Assumes `actor` heads its department.

    Raises:
        Conflict: already archived (read under the row lock).
    """
    with transaction.atomic():
        locked = OnCallRole.objects.select_for_update().get(pk=role.pk)
        if not locked.is_active:
            raise Conflict(N_("This on-call role is archived."))
        locked.archived_at = timezone.now()
        locked.archived_by = actor
        locked.save(update_fields=["archived_at", "archived_by"])
        record(
            "oncall.role_archived",
            actor=actor,
            department_id=locked.department_id,
            object_type="oncall_role",
            object_id=locked.pk,
            data={"name": locked.name},
        )
        announce(actor, locked.department_id, "role_archived", locked.pk)
    return role_data(locked, [])


# --- Shifts --------------------------------------------------------------------------


def check_add_shift(
    actor: User, department_id: int, role_id: int, user_id: int, start: datetime, end: datetime
) -> dict[str, Any]:
    """Raises:
    NotFound, Forbidden: as rooms.access.access_oncall_role (edit).
    Conflict: an archived role.
    InvalidRequest: a naive time, or an end not after the start.
    NotAMember: the user is not an active member of the department (see do_add_shift).
    """
    role = access.access_oncall_role(actor, department_id, role_id, edit=True)
    check_aware(start, end)
    if end <= start:
        raise InvalidRequest(N_("A shift ends after it starts."))
    return do_add_shift(actor, role, user_id, start, end)


def do_add_shift(
    actor: User, role: OnCallRole, user_id: int, start: datetime, end: datetime
) -> dict[str, Any]:
    """Add the shift. Assumes `actor` heads the role's department and the times are checked.

    The department row is locked first, as a removal of a member does: the person
    is an active member when the shift is written, not only when it was asked for.
    """
    with transaction.atomic():
        lock_department(role.department_id)
        if not OnCallRole.objects.active().filter(pk=role.pk).exists():
            raise Conflict(N_("This on-call role is archived."))
        membership = (
            Membership.objects.active()
            .filter(department_id=role.department_id, user_id=user_id, user__is_active=True)
            .select_related("user")
            .first()
        )
        if membership is None:
            raise NotAMember(data={"user": user_id})
        shift = RosterShift.objects.create(
            role=role, user=membership.user, starts_at=start, ends_at=end, created_by=actor
        )
        record(
            "oncall.shift_added",
            actor=actor,
            department_id=role.department_id,
            object_type="oncall_shift",
            object_id=shift.pk,
            data={
                "role": role.pk,
                "user": user_id,
                "starts_at": start.isoformat(),
                "ends_at": end.isoformat(),
            },
        )
        announce(actor, role.department_id, "shift_added", role.pk)
    return shift_data(shift)


def check_remove_shift(actor: User, department_id: int, shift_id: int) -> dict[str, Any]:
    shift = access.access_roster_shift(actor, department_id, shift_id)
    return do_remove_shift(actor, shift)


def do_remove_shift(actor: User, shift: RosterShift) -> dict[str, Any]:
    """Mark the shift removed; the row stays. Assumes `actor` heads its department.

    Raises:
        Conflict: already removed (read under the row lock).
    """
    with transaction.atomic():
        locked = RosterShift.objects.select_for_update().select_related("user").get(pk=shift.pk)
        if locked.removed_at is not None:
            raise Conflict(N_("This shift is already removed."))
        locked.removed_at = timezone.now()
        locked.removed_by = actor
        locked.save(update_fields=["removed_at", "removed_by"])
        record(
            "oncall.shift_removed",
            actor=actor,
            department_id=shift.role.department_id,
            object_type="oncall_shift",
            object_id=locked.pk,
            data={"role": locked.role_id, "user": locked.user_id},
        )
        announce(actor, shift.role.department_id, "shift_removed", locked.role_id)
    return shift_data(locked)
