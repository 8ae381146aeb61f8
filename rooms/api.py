"""Departments over HTTP: thin views over rooms.actions."""

from typing import Any

from ninja import Router, Schema
from ninja.params import functions as params
from ninja.responses import Status
from pydantic import Field

from core.api_schemas.common import answers
from core.api_schemas.departments import (
    Chain,
    Department,
    DepartmentKeys,
    DepartmentWithHeads,
    KeyVersionPublished,
    Member,
    MemberRemoved,
    MyDepartment,
    People,
    StatementPosted,
    WrapsShared,
)
from core.protocol import MAX_REDACTION_REASON
from rooms import actions, chain, keys, people
from rounds.http import AuthedRequest

router = Router(tags=["departments"])
# The colleague directory, mounted at /api/people (rounds/http.py).
people_router = Router(tags=["people"])


class DepartmentIn(Schema):
    name: str
    head_user_id: int
    slug: str = ""


class AdmitIn(Schema):
    user_id: int
    role: str = "member"


class RoleIn(Schema):
    role: str


class RemoveIn(Schema):
    reason: str | None = Field(default=None, max_length=MAX_REDACTION_REASON)


class PeopleSearchIn(Schema):
    q: str


@router.get("", response=answers(list[MyDepartment] | list[DepartmentWithHeads]))
def my_departments(
    request: AuthedRequest,
    # What ninja.Query(...) calls; the shortcut itself is typed only as Query[T].
    every: bool = params.Query(False, alias="all"),
) -> list[dict[str, Any]]:
    """The caller's departments; `?all=true`: every department with its heads (administrators)."""
    if every:
        return actions.list_all_departments(request.user)
    return actions.list_my_departments(request.user, unread=True)


@router.post("", response=answers(Department, 201))
def create_department(request: AuthedRequest, body: DepartmentIn) -> Status[dict[str, Any]]:
    department = actions.check_create_department(
        request.user, body.name, body.head_user_id, body.slug
    )
    return Status(201, department)


@router.get("/{department_id}/members", response=answers(list[Member]))
def members(request: AuthedRequest, department_id: int) -> list[dict[str, Any]]:
    return actions.list_members(request.user, department_id)


@router.post("/{department_id}/members", response=answers(Member, 201))
def admit(request: AuthedRequest, department_id: int, body: AdmitIn) -> Status[dict[str, Any]]:
    member = actions.check_admit_member(request.user, department_id, body.user_id, body.role)
    return Status(201, member)


@router.delete("/{department_id}/members/{user_id}", response=answers(MemberRemoved))
def remove(
    request: AuthedRequest, department_id: int, user_id: int, body: RemoveIn | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else None
    return actions.check_remove_member(request.user, department_id, user_id, reason)


@router.post("/{department_id}/members/{user_id}/role", response=answers(Member))
def set_role(
    request: AuthedRequest, department_id: int, user_id: int, body: RoleIn
) -> dict[str, Any]:
    return actions.check_set_role(request.user, department_id, user_id, body.role)


class KeyVersionIn(Schema):
    version: int
    record: dict[str, Any]
    wraps: list[dict[str, Any]]


class WrapsIn(Schema):
    wraps: list[dict[str, Any]]


class StatementIn(Schema):
    signed: dict[str, Any]


@router.get("/{department_id}/keys", response=answers(DepartmentKeys))
def department_keys(request: AuthedRequest, department_id: int) -> dict[str, Any]:
    return keys.department_keys(request.user, department_id)


@router.post("/{department_id}/keys", response=answers(KeyVersionPublished, 201))
def publish_key_version(
    request: AuthedRequest, department_id: int, body: KeyVersionIn
) -> Status[dict[str, Any]]:
    result = keys.check_publish_key_version(
        request.user, department_id, body.version, body.record, body.wraps
    )
    return Status(201, result)


@router.post("/{department_id}/keys/wraps", response=answers(WrapsShared, 201))
def share_wraps(
    request: AuthedRequest, department_id: int, body: WrapsIn
) -> Status[dict[str, Any]]:
    return Status(201, keys.check_share_wraps(request.user, department_id, body.wraps))


@router.get("/{department_id}/statements", response=answers(Chain))
def statements(request: AuthedRequest, department_id: int) -> dict[str, Any]:
    return chain.list_statements(request.user, department_id)


@router.post("/{department_id}/statements", response=answers(StatementPosted, 201))
def post_statement(
    request: AuthedRequest, department_id: int, body: StatementIn
) -> Status[dict[str, Any]]:
    return Status(201, chain.check_post_statement(request.user, department_id, body.signed))


@people_router.post("/search", response=answers(People))
def search_people(request: AuthedRequest, body: PeopleSearchIn) -> dict[str, Any]:
    """What is typed travels in the body, never in the URL, as a patient search's does:
    names stay out of access and proxy logs."""
    return people.check_search_people(request.user, body.q)
