"""Who a request goes to: the one rule the first send, every escalation and every pass
call, on the server's clock (docs/advice.md, "Who has it").

For a role: the people on duty now (rooms.oncall.on_duty, by start of shift), then
whoever takes the role over next (the next shift to start), then the department's
heads. For a person: that person, then the heads. Nobody already asked and never the
requester: an escalation moves on, it does not go round in circles. An empty answer
means everyone has been asked, and the holder is alerted again instead.
"""

from collections.abc import Iterator
from datetime import datetime

from accounts.models import User
from advice.models import AdviceRequest
from rooms.models import Membership, OnCallRole, Role, RosterShift
from rooms.oncall import on_duty


def next_shift_holders(role: OnCallRole, at: datetime) -> list[User]:
    """The people of the role's next standing shifts to start after `at`, earliest
    first, who are still active members of its department."""
    members = Membership.objects.active().filter(department_id=role.department_id)
    shifts = (
        RosterShift.objects.standing()
        .filter(
            role=role,
            starts_at__gt=at,
            user__is_active=True,
            user_id__in=members.values("user_id"),
        )
        .select_related("user")
        .order_by("starts_at", "pk")[:5]
    )
    return [shift.user for shift in shifts]


def is_active_member(user: User, department_id: int) -> bool:
    """Still someone a request may go to: active, and a member of the department."""
    return (
        user.is_active
        and Membership.objects.active().filter(department_id=department_id, user=user).exists()
    )


def heads(department_id: int) -> list[User]:
    """The department's active heads, longest-serving first."""
    rows = (
        Membership.objects.active()
        .filter(department_id=department_id, role=Role.HEAD, user__is_active=True)
        .select_related("user")
        .order_by("admitted_at", "pk")
    )
    return [row.user for row in rows]


def _stages(request: AdviceRequest, at: datetime) -> Iterator[tuple[list[User], str]]:
    """The chain's stages, each read only when the one before has nobody left: an
    escalation mostly stops at the first or second, and each stage is a query."""
    if request.to_role_id is not None:
        role = request.to_role
        assert role is not None
        yield on_duty(role, at), "on_duty"
        yield next_shift_holders(role, at), "next_shift"
    elif request.to_user is not None and is_active_member(request.to_user, request.department_id):
        yield [request.to_user], "addressee"
    yield heads(request.department_id), "head"


def chain(request: AdviceRequest, at: datetime) -> Iterator[tuple[User, str]]:
    """Everyone the request may go to at `at`, in order, each with why: "on_duty",
    "next_shift", "addressee" or "head". Duplicates are kept out, so is the requester."""
    seen: set[int] = {request.requester_id}
    for users, why in _stages(request, at):
        for user in users:
            if user.pk not in seen:
                seen.add(user.pk)
                yield user, why


def next_holder(request: AdviceRequest, at: datetime) -> tuple[User, str] | None:
    """The first of the chain not asked yet, or None when everyone has been."""
    for user, why in chain(request, at):
        if user.pk not in request.asked:
            return user, why
    return None
