"""On-call roles and their roster over HTTP: thin views over rooms.oncall and
rooms.roster_import, mounted under /api/departments (rounds/http.py)."""

from typing import Any, Literal

from ninja import Router, Schema
from ninja.params import functions as params
from ninja.responses import Status
from pydantic import AwareDatetime, Field

from core.api_schemas.common import answers
from core.api_schemas.oncall import OnCallRole, OnCallRoles, OnDuty, Roster, RosterImport, Shift
from rooms import oncall, roster_import
from rounds.http import AuthedRequest

router = Router(tags=["oncall"])
ONCALL = "/{department_id}/oncall"
# `from` is a Python keyword: the roster's window takes it as an alias, as `?all=` does.
FROM = params.Query(None, alias="from")
TO = params.Query(None, alias="to")


class RoleIn(Schema):
    name: str = Field(max_length=200)


class ShiftIn(Schema):
    role: int
    user: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime


class RosterFileIn(Schema):
    """A roster file sent as text in the JSON body (docs/oncall.md): small enough for
    one request, and read, never stored."""

    format: Literal["csv", "ics"]
    # The limit (MAX_BYTES of UTF-8) is the action's typed refusal, `upload_too_large`;
    # Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) bounds what is read at all.
    content: str


@router.get(ONCALL + "/roles", response=answers(OnCallRoles))
def roles(request: AuthedRequest, department_id: int) -> dict[str, Any]:
    return oncall.list_roles(request.user, department_id)


@router.post(ONCALL + "/roles", response=answers(OnCallRole, 201))
def create_role(request: AuthedRequest, department_id: int, body: RoleIn) -> Status[dict[str, Any]]:
    return Status(201, oncall.check_create_role(request.user, department_id, body.name))


@router.post(ONCALL + "/roles/{role_id}/rename", response=answers(OnCallRole))
def rename_role(
    request: AuthedRequest, department_id: int, role_id: int, body: RoleIn
) -> dict[str, Any]:
    return oncall.check_rename_role(request.user, department_id, role_id, body.name)


@router.post(ONCALL + "/roles/{role_id}/archive", response=answers(OnCallRole))
def archive_role(request: AuthedRequest, department_id: int, role_id: int) -> dict[str, Any]:
    return oncall.check_archive_role(request.user, department_id, role_id)


@router.get(ONCALL + "/roles/{role_id}/on-duty", response=answers(OnDuty))
def on_duty(
    request: AuthedRequest, department_id: int, role_id: int, at: AwareDatetime | None = None
) -> dict[str, Any]:
    """Who holds the role at `at`; now, on the server's clock, without it."""
    return oncall.check_on_duty(request.user, department_id, role_id, at)


@router.get(ONCALL + "/roster", response=answers(Roster))
def roster(
    request: AuthedRequest,
    department_id: int,
    start: AwareDatetime | None = FROM,
    end: AwareDatetime | None = TO,
    role: int | None = None,
) -> dict[str, Any]:
    return oncall.check_roster(request.user, department_id, start, end, role)


@router.post(ONCALL + "/shifts", response=answers(Shift, 201))
def add_shift(request: AuthedRequest, department_id: int, body: ShiftIn) -> Status[dict[str, Any]]:
    shift = oncall.check_add_shift(
        request.user, department_id, body.role, body.user, body.starts_at, body.ends_at
    )
    return Status(201, shift)


@router.delete(ONCALL + "/shifts/{shift_id}", response=answers(Shift))
def remove_shift(request: AuthedRequest, department_id: int, shift_id: int) -> dict[str, Any]:
    return oncall.check_remove_shift(request.user, department_id, shift_id)


@router.post(ONCALL + "/import/preview", response=answers(RosterImport))
def preview_import(
    request: AuthedRequest, department_id: int, body: RosterFileIn
) -> dict[str, Any]:
    return roster_import.check_preview_roster(
        request.user, department_id, body.format, body.content
    )


@router.post(ONCALL + "/import", response=answers(RosterImport, 201))
def commit_import(
    request: AuthedRequest, department_id: int, body: RosterFileIn
) -> Status[dict[str, Any]]:
    report = roster_import.check_import_roster(
        request.user, department_id, body.format, body.content
    )
    return Status(201, report)
