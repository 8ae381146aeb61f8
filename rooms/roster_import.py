"""Importing a roster file: a dry run that writes nothing, and an all-or-nothing commit.

The file is read by rooms/roster_files.py; here each row is checked against
the department (its role by name, case ignored, among active roles; its
person by username in a CSV, by email in an iCalendar file; an active member
of the department) and given a status: `accepted` (would be added),
`unchanged` (the same standing shift already exists, or an earlier row of the
file already gives it: not added twice) or `refused` with its reason. The
report also gives each named role's gaps and overlaps over the file's window
(its earliest start to its latest end), counting the roster's standing shifts
and the accepted rows together: the roster as a commit would leave it.

A commit checks everything again under the department's lock and adds the
accepted rows only if no row is refused; otherwise nothing is written and the
refusal names the rows. It is audited with its counts, never the file.
"""

from typing import Any

from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from core.errors import N_, ErrorCode, RoundsError
from rooms import access
from rooms.actions import lock_department
from rooms.models import Membership, OnCallRole, RosterShift
from rooms.oncall import announce, coverage, shift_span, user_card
from rooms.roster_files import Format, Reason, Row, Span, as_iso, read_roster, window

# At most this many refused rows are named in a commit's refusal (the preview has them all).
REFUSALS_SHOWN = 100


class RosterRefused(RoundsError):
    code = ErrorCode.ROSTER_REFUSED
    default_message = N_(
        "The roster was not imported: %(refused)s rows are refused. Correct them and try again."
    )


def check_preview_roster(
    actor: User, department_id: int, fmt: Format, content: str
) -> dict[str, Any]:
    """What importing the file would do, row by row, with the gaps and overlaps it would
    leave; writes nothing and is not audited (a read of the caller's own file).

    Raises:
        NotFound, Forbidden: as rooms.access.access_oncall (edit).
        RosterTooLarge, InvalidRequest: as rooms.roster_files.read_roster.
    """
    access.access_oncall(actor, department_id, edit=True)
    rows = read_roster(fmt, content, timezone.get_default_timezone())
    return evaluate(department_id, fmt, rows)


def check_import_roster(
    actor: User, department_id: int, fmt: Format, content: str
) -> dict[str, Any]:
    """Import the file: as check_preview_roster, then do_import_roster.

    Raises:
        RosterRefused: some row is refused (`data.rows`: up to 100 of them); nothing written.
    """
    access.access_oncall(actor, department_id, edit=True)
    rows = read_roster(fmt, content, timezone.get_default_timezone())
    return do_import_roster(actor, department_id, fmt, rows)


def do_import_roster(
    actor: User, department_id: int, fmt: Format, rows: list[Row]
) -> dict[str, Any]:
    """Add the accepted rows, all or none. Assumes `actor` heads the department.

    The rows are checked again under the department's lock, so each person is an
    active member when their shifts are written (as rooms.oncall.do_add_shift).
    """
    with transaction.atomic():
        lock_department(department_id)
        report = evaluate(department_id, fmt, rows)
        refused = [row for row in report["rows"] if row["status"] == "refused"]
        if refused:
            raise RosterRefused(
                params={"refused": len(refused)},
                data={"refused": len(refused), "rows": refused[:REFUSALS_SHOWN]},
            )
        accepted = [row for row in rows if row.extra.get("status") == "accepted"]
        RosterShift.objects.bulk_create(new_shift(row, actor) for row in accepted)
        counts = report["counts"]
        record(
            "oncall.roster_imported",
            actor=actor,
            department_id=department_id,
            object_type="oncall_roster",
            object_id=department_id,
            data={
                "format": fmt,
                **counts,
                "gaps": len(report["gaps"]),
                "overlaps": len(report["overlaps"]),
            },
        )
        announce(actor, department_id, "roster_imported", None)
    return {**report, "committed": True}


def new_shift(row: Row, actor: User) -> RosterShift:
    """The shift an accepted row adds (evaluate gave it its role, user and times)."""
    assert row.role_id is not None and row.starts_at is not None and row.ends_at is not None
    return RosterShift(
        role_id=row.role_id,
        user=row.user,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=actor,
    )


def evaluate(department_id: int, fmt: Format, rows: list[Row]) -> dict[str, Any]:
    """Each row's status, the counts, and the named roles' gaps and overlaps."""
    resolve(department_id, fmt, rows)
    standing = standing_shifts(rows)
    existing = {(s.role_id, s.user_id, s.starts_at, s.ends_at) for s in standing}
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        if row.refusal is not None:
            row.extra["status"] = "refused"
            continue
        key = (row.role_id, row.user.pk, row.starts_at, row.ends_at)
        row.extra["status"] = "unchanged" if key in seen or key in existing else "accepted"
        seen.add(key)
    counts = {
        "rows": len(rows),
        **{
            status: sum(1 for row in rows if row.extra["status"] == status)
            for status in ("accepted", "unchanged", "refused")
        },
    }
    return {
        "department": department_id,
        "format": fmt,
        "committed": False,
        "counts": counts,
        "rows": [row_data(row) for row in rows],
        **roster_after(rows, standing),
    }


def resolve(department_id: int, fmt: Format, rows: list[Row]) -> None:
    """Give each row its role and user, or its refusal (unknown, archived, not a member)."""
    roles = OnCallRole.objects.filter(department_id=department_id)
    active = {role.name.lower(): role for role in roles.active()}
    archived = {role.name.lower() for role in roles.filter(archived_at__isnull=False)}
    wanted = {row.person for row in rows if row.person}
    users: dict[str, list[User]] = {}
    if fmt == "csv":
        for user in User.objects.filter(username__in=wanted, is_active=True):
            users.setdefault(user.username, []).append(user)
    else:
        folded = {person.lower() for person in wanted}
        for user in User.objects.annotate(folded=Lower("email")).filter(
            folded__in=folded, is_active=True
        ):
            users.setdefault(user.email.lower(), []).append(user)
    members = set(
        Membership.objects.active()
        .filter(department_id=department_id)
        .values_list("user_id", flat=True)
    )
    for row in rows:
        if row.refusal is not None:
            continue
        role = active.get(row.role.lower())
        if role is None:
            row.refuse(
                Reason.ARCHIVED_ROLE if row.role.lower() in archived else Reason.UNKNOWN_ROLE
            )
            continue
        row.role_id = role.pk
        row.extra["role_name"] = role.name
        # A username is exact; an email is matched without case and must name one user.
        found = users.get(row.person if fmt == "csv" else row.person.lower(), [])
        if len(found) != 1:
            row.refuse(Reason.UNKNOWN_USER)
            continue
        row.user = found[0]
        if row.user.pk not in members:
            row.refuse(Reason.NOT_A_MEMBER)


def standing_shifts(rows: list[Row]) -> list[RosterShift]:
    """The standing shifts of the roles the checked rows name, over the rows' window: what
    a row may repeat, and what the roster holds besides the file. Read once for both."""
    span = window(row for row in rows if row.refusal is None)
    if span is None:
        return []
    role_ids = {row.role_id for row in rows if row.refusal is None}
    return list(
        RosterShift.objects.overlapping(*span).filter(role_id__in=role_ids).select_related("user")
    )


def roster_after(rows: list[Row], standing: list[RosterShift]) -> dict[str, Any]:
    """Gaps and overlaps of the roles the file names, over its window, the accepted rows
    added to the standing shifts (an unchanged row is already one of them)."""
    kept = [row for row in rows if row.refusal is None]
    span = window(kept)
    if span is None:
        return {"start": None, "end": None, "gaps": [], "overlaps": []}
    start, end = span
    roles = list(
        OnCallRole.objects.filter(pk__in={row.role_id for row in kept}).order_by("name", "pk")
    )
    spans = [shift_span(shift) for shift in standing]
    spans += [
        (row.role_id, Span(row.user, row.starts_at, row.ends_at))
        for row in kept
        if row.extra["status"] == "accepted" and row.role_id and row.starts_at and row.ends_at
    ]
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        **coverage(roles, spans, start, end),
    }


def row_data(row: Row) -> dict[str, Any]:
    return {
        "line": row.line,
        "status": row.extra["status"],
        "reason": str(row.refusal) if row.refusal else None,
        "role": row.extra.get("role_name", row.role),
        "person": row.person,
        "user": user_card(row.user) if row.user is not None and row.refusal is None else None,
        "starts_at": as_iso(row.starts_at),
        "ends_at": as_iso(row.ends_at),
    }
