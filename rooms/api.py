"""Departments over HTTP: thin views over rooms.actions."""

from ninja import Router, Schema
from ninja.responses import Status

from rooms import actions

router = Router(tags=["departments"])


class DepartmentIn(Schema):
    name: str
    head_user_id: int
    slug: str = ""


class AdmitIn(Schema):
    user_id: int
    role: str = "member"


class RoleIn(Schema):
    role: str


@router.get("")
def my_departments(request):
    return actions.list_my_departments(request.user)


@router.post("", response={201: dict})
def create_department(request, body: DepartmentIn):
    department = actions.check_create_department(
        request.user, body.name, body.head_user_id, body.slug
    )
    return Status(201, department)


@router.get("/{department_id}/members")
def members(request, department_id: int):
    return actions.list_members(request.user, department_id)


@router.post("/{department_id}/members", response={201: dict})
def admit(request, department_id: int, body: AdmitIn):
    member = actions.check_admit_member(request.user, department_id, body.user_id, body.role)
    return Status(201, member)


@router.delete("/{department_id}/members/{user_id}")
def remove(request, department_id: int, user_id: int):
    return actions.check_remove_member(request.user, department_id, user_id)


@router.post("/{department_id}/members/{user_id}/role")
def set_role(request, department_id: int, user_id: int, body: RoleIn):
    return actions.check_set_role(request.user, department_id, user_id, body.role)
