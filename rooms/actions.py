"""Department use cases: create, list, admit, remove, change roles.

`check_*` validates and authorises through rooms.access; `do_*` writes in one
transaction with its audit entry and its department event, published on
commit.
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.models import User
from audit.actions import record
from chat.events import append_event
from chat.models import Consult
from chat.unread import unread_by_department
from core.errors import N_, ErrorCode, InvalidRequest, NotFound, RoundsError
from core.events import EventKind
from core.reasons import checked_reason
from rooms import access
from rooms.models import Department, Membership, Role


def member_data(membership: Membership) -> dict[str, Any]:
    return {
        "user": {
            "id": membership.user_id,
            "username": membership.user.username,
            "display_name": membership.user.label,
        },
        "role": membership.role,
        "admitted_at": membership.admitted_at.isoformat(),
    }


def department_data(department: Department, role: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": department.pk,
        "name": department.name,
        "slug": department.slug,
        "event_seq": department.event_seq,
    }
    if role is not None:
        data["role"] = role
    return data


def my_department_ids(actor: User) -> list[int]:
    """The departments whose events the caller's socket joins, before it reads their
    numbers (list_my_departments): what is published in between is not lost."""
    return list(access.member_department_ids(actor))


def list_my_departments(actor: User, *, unread: bool = False) -> list[dict[str, Any]]:
    """The caller's departments, sorted by name.

    Args:
        unread: also give each department the caller's `unread` count
            (`GET /api/departments`), for one more query whatever the number
            of threads (chat/unread.py). The socket's `hello` has no such
            field, so it does not pay for it.
    """
    access.check_authenticated(actor)
    memberships = list(
        Membership.objects.active()
        .filter(user_id=actor.pk)
        .select_related("department")
        .order_by("department__name")
    )
    if not unread:
        return [department_data(m.department, m.role) for m in memberships]
    counts = unread_by_department([m.department_id for m in memberships], actor.pk)
    return [
        {**department_data(m.department, m.role), "unread": counts.get(m.department_id, 0)}
        for m in memberships
    ]


def list_all_departments(actor: User) -> list[dict[str, Any]]:
    """Every department with its current heads: what an administrator needs to
    appoint a first head (they are members of none)."""
    access.check_admin(actor)
    heads: dict[int, list[dict[str, Any]]] = {}
    for membership in (
        Membership.objects.active()
        .filter(role=Role.HEAD)
        .select_related("user")
        .order_by("user__username")
    ):
        heads.setdefault(membership.department_id, []).append(
            {
                "id": membership.user_id,
                "username": membership.user.username,
                "display_name": membership.user.label,
            }
        )
    return [
        {**department_data(department), "heads": heads.get(department.pk, [])}
        for department in Department.objects.order_by("name")
    ]


def list_members(actor: User, department_id: int) -> list[dict[str, Any]]:
    access.access_membership(actor, department_id)
    memberships = (
        Membership.objects.active()
        .filter(department_id=department_id)
        .select_related("user")
        .order_by("user__username")
    )
    return [member_data(m) for m in memberships]


def _find_user(user_id: int) -> Any:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound(N_("User not found."))
    return user


def check_create_department(
    actor: User, name: str, head_user_id: int, slug: str = ""
) -> dict[str, Any]:
    access.check_admin(actor)
    name = name.strip()
    if not name:
        raise InvalidRequest(N_("A department needs a name."))
    head = _find_user(head_user_id)
    return do_create_department(actor, name, slug or slugify(name), head)


def do_create_department(actor: User, name: str, slug: str, head: User) -> dict[str, Any]:
    """Create the department and appoint its first head. Assumes `actor` is an admin."""
    try:
        with transaction.atomic():
            department = Department.objects.create(name=name, slug=slug[:60])
            membership = Membership.objects.create(
                department=department, user=head, role=Role.HEAD, admitted_by=actor
            )
            record(
                "department.created",
                actor=actor,
                department_id=department.pk,
                object_type="department",
                object_id=department.pk,
                data={"head_id": head.pk},
            )
            _membership_event(membership, EventKind.MEMBER_ADMITTED, actor, "admitted")
    except IntegrityError:
        raise RoundsError(
            N_("A department with this name already exists."), code=ErrorCode.CONFLICT
        ) from None
    department.refresh_from_db()
    return department_data(department, None)


def _membership_event(membership: Membership, kind: EventKind, actor: User, change: str) -> None:
    payload = {
        "user": {"id": membership.user_id, "username": membership.user.username},
        "role": membership.role,
        "by": {"id": actor.pk, "username": actor.username},
    }
    append_event(
        membership.department_id, kind, payload, notify_user_id=membership.user_id, change=change
    )


def check_admit_member(
    actor: User, department_id: int, user_id: int, role: str = Role.MEMBER
) -> dict[str, Any]:
    access.access_membership(actor, department_id, head=True)
    if role not in Role.values:
        raise InvalidRequest(N_("Role must be 'head' or 'member'."))
    user = _find_user(user_id)
    return do_admit_member(actor, department_id, user, role)


def do_admit_member(actor: User, department_id: int, user: User, role: str) -> dict[str, Any]:
    """Admit `user`. Assumes `actor` is a head of the department."""
    try:
        with transaction.atomic():
            lock_department(department_id)
            membership = Membership.objects.create(
                department_id=department_id, user=user, role=role, admitted_by=actor
            )
            record(
                "member.admitted",
                actor=actor,
                department_id=department_id,
                object_type="user",
                object_id=user.pk,
                data={"role": role},
            )
            _membership_event(membership, EventKind.MEMBER_ADMITTED, actor, "admitted")
    except IntegrityError:
        raise RoundsError(
            N_("Already a member of this department."), code=ErrorCode.ALREADY_MEMBER
        ) from None
    return member_data(membership)


def lock_department(department_id: int) -> None:
    """Serialise membership changes of one department until commit."""
    locked = Department.objects.select_for_update().filter(pk=department_id).values_list("pk")
    if not list(locked):
        raise NotFound(N_("Department not found."))


def _locked_membership(department_id: int, user_id: int) -> Membership:
    """The active membership, read under the department lock, or NotFound."""
    lock_department(department_id)
    membership = (
        Membership.objects.active()
        .select_related("user")
        .filter(department_id=department_id, user_id=user_id)
        .first()
    )
    if membership is None:
        raise NotFound(N_("Member not found."))
    return membership


def _other_heads(department_id: int, user_id: int) -> int:
    return (
        Membership.objects.active()
        .filter(department_id=department_id, role=Role.HEAD)
        .exclude(user_id=user_id)
        .count()
    )


def check_remove_member(
    actor: User, department_id: int, user_id: int, reason: str | None = None
) -> dict[str, Any]:
    """A head removes anyone; a member may only leave (remove themself).

    Args:
        reason: an optional note (at most 200 characters, trimmed) kept in the audit
            trail, as a redaction's; members never see it.

    Raises:
        NotFound, Forbidden: as rooms.access.access_membership.
        InvalidRequest: a reason over 200 characters.
        RoundsError(last_head): the last head leaving.
    """
    access.access_membership(actor, department_id, head=(user_id != actor.pk))
    return do_remove_member(actor, department_id, user_id, checked_reason(reason))


def do_remove_member(
    actor: User, department_id: int, user_id: int, reason: str = ""
) -> dict[str, Any]:
    """Close the membership; its sockets leave the department on commit.

    The department row is locked first, so two heads removing each other
    cannot both succeed and leave the department headless.
    """
    with transaction.atomic():
        membership = _locked_membership(department_id, user_id)
        if membership.role == Role.HEAD and _other_heads(department_id, user_id) == 0:
            raise RoundsError(
                N_("The last head cannot leave; promote another head first."),
                code=ErrorCode.LAST_HEAD,
            )
        membership.removed_at = timezone.now()
        membership.removed_by = actor
        membership.save(update_fields=["removed_at", "removed_by"])
        # The removed member holds the current room key, and the keys of the department's
        # consults (docs/crypto.md §14): the next message of each needs a new one.
        Department.objects.filter(pk=department_id, key_version__gt=0).update(
            rotation_required=True
        )
        Consult.objects.filter(thread__department_id=department_id, key_version__gt=0).update(
            rotation_required=True
        )
        record(
            "member.removed",
            actor=actor,
            department_id=department_id,
            object_type="user",
            object_id=user_id,
            data={"role": membership.role, **({"reason": reason} if reason else {})},
        )
        _membership_event(membership, EventKind.MEMBER_REMOVED, actor, "removed")
    return {"user": {"id": user_id}, "removed_at": membership.removed_at.isoformat()}


def check_set_role(actor: User, department_id: int, user_id: int, role: str) -> dict[str, Any]:
    access.access_membership(actor, department_id, head=True)
    if role not in Role.values:
        raise InvalidRequest(N_("Role must be 'head' or 'member'."))
    return do_set_role(actor, department_id, user_id, role)


def do_set_role(actor: User, department_id: int, user_id: int, role: str) -> dict[str, Any]:
    """Promote or demote. Assumes `actor` is a head; the last head stays a head."""
    with transaction.atomic():
        membership = _locked_membership(department_id, user_id)
        if membership.role == role:
            return member_data(membership)
        if role == Role.MEMBER and _other_heads(department_id, user_id) == 0:
            raise RoundsError(
                N_("The last head cannot step down; promote another head first."),
                code=ErrorCode.LAST_HEAD,
            )
        membership.role = role
        membership.save(update_fields=["role"])
        record(
            "member.role_changed",
            actor=actor,
            department_id=department_id,
            object_type="user",
            object_id=user_id,
            data={"role": role},
        )
        _membership_event(membership, EventKind.MEMBER_ROLE, actor, "role")
    return member_data(membership)
