"""Who is signed in, who is a member of what: departments, their on-call roles and
roster, advice requests, reviews, statements and the colleague directory."""

import functools
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.db.models import OuterRef, Subquery

from accounts.models import User
from chat.models import Consult, ConsultState, Thread
from core.errors import (
    N_,
    Forbidden,
    NotAuthenticated,
    NotFound,
)
from rooms.models import Department, Membership, OnCallRole, Role, RosterShift

if TYPE_CHECKING:
    from advice.models import AdviceRequest


def check_authenticated(user: User | AnonymousUser | None) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise NotAuthenticated()


def check_admin(user: User) -> None:
    """Institution administrators create departments and appoint their first head."""
    check_authenticated(user)
    if not user.is_admin:
        raise Forbidden(N_("Only an administrator may do this."))


def active_membership(user: User, department_id: int) -> Membership | None:
    return Membership.objects.active().filter(user_id=user.pk, department_id=department_id).first()


def is_member(user: User, department_id: int) -> bool:
    """The cheap check for hot paths that need no membership details."""
    return Membership.objects.active().filter(user_id=user.pk, department_id=department_id).exists()


def access_membership(user: User, department_id: int, *, head: bool = False) -> Membership:
    """The caller's active membership of the department, or NotFound.

    Args:
        head: also require the head role (Forbidden if only a member).
    """
    check_authenticated(user)
    membership = active_membership(user, department_id)
    if membership is None:
        raise NotFound(N_("Department not found."))
    if head and membership.role != Role.HEAD:
        raise Forbidden(N_("Only a head of this department may do this."))
    return membership


def access_department(user: User, department_id: int, *, head: bool = False) -> Department:
    membership = access_membership(user, department_id, head=head)
    return Department.objects.get(pk=membership.department_id)


def access_oncall(user: User, department_id: int, *, edit: bool = False) -> Membership:
    """A department's on-call roles and roster (docs/oncall.md): every member reads them
    and who is on duty; a head creates, renames and archives roles and edits the roster.
    To anyone else, administrators included, the department is not found.

    Args:
        edit: a change (Forbidden to a member who is not head).
    """
    return access_membership(user, department_id, head=edit)


def access_oncall_role(
    user: User, department_id: int, role_id: int, *, edit: bool = False
) -> OnCallRole:
    """One of the department's on-call roles, archived ones included, as access_oncall
    allows; a role of another department is not found, like a missing one."""
    access_oncall(user, department_id, edit=edit)
    role = OnCallRole.objects.filter(pk=role_id, department_id=department_id).first()
    if role is None:
        raise NotFound(N_("On-call role not found."))
    return role


def access_roster_shift(user: User, department_id: int, shift_id: int) -> RosterShift:
    """A shift of one of the department's roles, for a head to remove (the roster's
    edits are theirs); a shift of another department is not found."""
    access_oncall(user, department_id, edit=True)
    shift = (
        RosterShift.objects.filter(pk=shift_id, role__department_id=department_id)
        .select_related("role", "user")
        .first()
    )
    if shift is None:
        raise NotFound(N_("Shift not found."))
    return shift


def access_advice(
    user: User, request_id: int, *, lock: bool = False
) -> tuple["AdviceRequest", str | None]:
    """An advice request (docs/advice.md), to a member of its department or its requester,
    with the caller's role in its department (None for a requester who is not a member);
    to anyone else it is not found. With `lock`, the row is locked until commit (every
    change of a request)."""
    from advice.models import AdviceRequest

    check_authenticated(user)
    role = Membership.objects.active().filter(
        department_id=OuterRef("department_id"), user_id=user.pk
    )
    found = AdviceRequest.objects.filter(pk=request_id).annotate(
        caller_role=Subquery(role.values("role")[:1])
    )
    request = (found.select_for_update(of=("self",)) if lock else found).first()
    if request is None or (request.caller_role is None and request.requester_id != user.pk):
        raise NotFound(N_("Advice request not found."))
    return request, request.caller_role


def check_may_answer(user: User, request: "AdviceRequest", role: str | None) -> None:
    """Who may acknowledge or pass a request on: whoever has it now, anyone it was put to
    before (a late answer still counts), or a head of its department. Not its requester."""
    if user.pk == request.requester_id:
        raise Forbidden(N_("The requester cannot answer their own request."))
    asked = user.pk == request.holder_id or user.pk in request.asked
    if not asked and role != Role.HEAD:
        raise Forbidden(N_("Only the person it was put to, or a head, may answer it."))


def check_may_cancel(user: User, request: "AdviceRequest") -> None:
    if user.pk != request.requester_id:
        raise Forbidden(N_("Only its requester may withdraw a request."))


def access_review(
    user: User, department_id: int, patient_id: int | None = None, *, mark: bool = False
) -> Membership:
    """The weekly photo review: its members see the marks, its heads mark a case.

    A patient the department has no thread about was never seen by it, and is
    not found, like a department the caller is not a member of.

    Args:
        patient_id: the case's patient, if the call names one.
        mark: marking or unmarking (Forbidden to a member who is not head).
    """
    membership = access_membership(user, department_id, head=mark)
    if (
        patient_id is not None
        and not Thread.objects.filter(department_id=department_id, patient_id=patient_id).exists()
    ):
        raise NotFound(N_("Patient not found."))
    return membership


def access_statements(user: User, department_id: int) -> None:
    """A department's signed membership statements are read by its members, by
    administrators, who appoint first heads and check that an appointment verifies,
    and by the guest of one of its consults, whose client verifies its admission."""
    check_authenticated(user)
    if user.is_admin:
        if not Department.objects.filter(pk=department_id).exists():
            raise NotFound(N_("Department not found."))
        return
    if is_member(user, department_id):
        return
    guest = Consult.objects.filter(thread__department_id=department_id, guest_id=user.pk)
    if not guest.exclude(state=ConsultState.PENDING).exists():
        access_membership(user, department_id)  # raises, as for any outsider


class PostRights(NamedTuple):
    """Who may post where, read under the departments' locks (chat/posting.py).

    `members`: (user id, department id) pairs of active memberships; `identity`:
    each sender's current identity signing key (base64 Ed25519), so a post
    verified with a key the process had cached is known to be verified with
    the current one.
    """

    members: frozenset[tuple[int, int]]
    identity: dict[int, str]


def post_rights(user_ids: Iterable[int], department_ids: Iterable[int]) -> PostRights:
    """The senders' memberships of these departments and their current identity keys,
    in one statement: `is_member` for a batch of posts, and the key check the cache
    of parsed keys needs (a key replaced on another process is seen here).

    One row per (sender, department of theirs among these), or one with no
    department; none for a sender without a published key.
    """
    users, departments = sorted(set(user_ids)), sorted(set(department_ids))
    if not users:
        return PostRights(frozenset(), {})
    with connection.cursor() as cursor:
        cursor.execute(_post_rights_sql(len(users), len(departments)), [*departments, *users])
        return post_rights_of(cursor.fetchall())


def post_rights_of(rows: Sequence[tuple[Any, ...]]) -> PostRights:
    """PostRights from the rows of `post_rights`' statement or `POST_RIGHTS_IN_THREAD`."""
    return PostRights(
        frozenset((int(user), int(department)) for user, _, department in rows if department),
        {int(user): str(key) for user, key, _ in rows},
    )


# `Membership.objects.active().filter(user_id__in=…, department_id__in=…)` joined to
# `IdentityKey.objects.filter(user_id__in=…, replaced_at__isnull=True)`, written once:
# the departments' and the users' conditions are filled in by the two forms below.
_POST_RIGHTS = (
    "SELECT k.user_id, k.ed25519, m.department_id FROM accounts_identitykey k "
    "LEFT JOIN rooms_membership m ON m.user_id = k.user_id AND m.removed_at IS NULL "
    "AND {departments} WHERE k.replaced_at IS NULL AND {users}"
)

# `post_rights` for the department of one thread, with named parameters (%(thread)s,
# %(users)s: a list of user ids). Sent with a post's numbers in the same round trip
# (chat/numbering.py `take_post_numbers`), as a statement of its own after them.
POST_RIGHTS_IN_THREAD = _POST_RIGHTS.format(
    departments="m.department_id = (SELECT department_id FROM chat_thread WHERE id = %(thread)s)",
    users="k.user_id = ANY(%(users)s)",
)


@functools.lru_cache(maxsize=256)
def _post_rights_sql(users: int, departments: int) -> str:
    """`_POST_RIGHTS` for `users` senders and `departments` departments (positional)."""
    return _POST_RIGHTS.format(
        departments=(
            "m.department_id IN ({})".format(", ".join(["%s"] * departments))
            if departments
            else "FALSE"
        ),
        users="k.user_id IN ({})".format(", ".join(["%s"] * users)),
    )


def check_clinician(user: User) -> None:
    """Patient look-ups are for members of at least one department."""
    check_authenticated(user)
    if not Membership.objects.active().filter(user_id=user.pk).exists():
        raise Forbidden(N_("Only members of a department may look up patients."))


def check_may_search_people(user: User) -> None:
    """The colleague directory (rooms/people.py) is for those who admit: a head of some
    department, or an administrator (who appoints first heads). A member who heads
    nothing is refused (Forbidden), as a clinician without a department is refused
    patient look-ups: the directory lists the institution's staff and where they work."""
    check_authenticated(user)
    if user.is_admin:
        return
    if not Membership.objects.active().filter(user_id=user.pk, role=Role.HEAD).exists():
        raise Forbidden(N_("Only a head of department or an administrator may search colleagues."))


def member_department_ids(user: User) -> list[int]:
    return list(
        Membership.objects.active().filter(user_id=user.pk).values_list("department_id", flat=True)
    )


def access_identity_of(user: User, other_user_id: int) -> None:
    """Public keys are shown to oneself, to colleagues of a shared department,
    to compliance officers and to administrators (who appoint heads with the
    institution's admin key); to anyone else the user does not exist."""
    check_authenticated(user)
    if user.pk == other_user_id or user.is_compliance_officer or user.is_staff:
        return
    mine = Membership.objects.active().filter(user_id=user.pk).values("department_id")
    shared = Membership.objects.active().filter(user_id=other_user_id, department_id__in=mine)
    if not shared.exists():
        raise NotFound(N_("User not found."))
