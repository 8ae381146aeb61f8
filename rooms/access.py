"""The one place that decides who may touch what.

Every action resolves its objects through these functions. A missing object
and a forbidden one raise the same `NotFound`, so a caller cannot learn which
departments, threads or patients exist outside their own departments.
`Forbidden` is only raised where the caller may already see the object
(a member asking for a head's action).
"""

from typing import Any

from django.db.models import OuterRef, Q, Subquery

from chat.errors import ErrorCode, Forbidden, InvalidRequest, NotFound, RoundsError
from chat.models import Message, Thread
from media.models import Attachment, Upload, UploadState
from rooms.models import Department, Membership, Role

# The grounds a compliance officer names for an access, kept in its audit entry.
CASE_MAX = 200
REASON_MAX = 1000


class NotAuthenticated(RoundsError):
    code = ErrorCode.NOT_AUTHENTICATED
    default_message = "Sign in first."


def check_authenticated(user: Any) -> None:
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        raise NotAuthenticated()


def check_admin(user: Any) -> None:
    """Institution administrators create departments and appoint their first head."""
    check_authenticated(user)
    if not (user.is_staff or user.is_superuser):
        raise Forbidden("Only an administrator may do this.")


def active_membership(user: Any, department_id: int) -> Membership | None:
    return Membership.objects.active().filter(user_id=user.pk, department_id=department_id).first()


def is_member(user: Any, department_id: int) -> bool:
    """The cheap check for hot paths that need no membership details."""
    return Membership.objects.active().filter(user_id=user.pk, department_id=department_id).exists()


def access_membership(user: Any, department_id: int, *, head: bool = False) -> Membership:
    """The caller's active membership of the department, or NotFound.

    Args:
        head: also require the head role (Forbidden if only a member).
    """
    check_authenticated(user)
    membership = active_membership(user, department_id)
    if membership is None:
        raise NotFound("Department not found.")
    if head and membership.role != Role.HEAD:
        raise Forbidden("Only a head of this department may do this.")
    return membership


def access_department(user: Any, department_id: int, *, head: bool = False) -> Department:
    membership = access_membership(user, department_id, head=head)
    return Department.objects.get(pk=membership.department_id)


def access_statements(user: Any, department_id: int) -> None:
    """A department's signed membership statements are read by its members, and by
    administrators, who appoint first heads and check that an appointment verifies."""
    check_authenticated(user)
    if user.is_staff or user.is_superuser:
        if not Department.objects.filter(pk=department_id).exists():
            raise NotFound("Department not found.")
        return
    access_membership(user, department_id)


def access_thread(user: Any, thread_id: int, *, head: bool = False) -> Thread:
    """The thread, if the caller is a member (a head, with `head`) of its department."""
    check_authenticated(user)
    # One query: the thread with the caller's role in its department (history
    # pages and every thread action start here).
    role = Membership.objects.active().filter(
        department_id=OuterRef("department_id"), user_id=user.pk
    )
    thread = (
        Thread.objects.filter(pk=thread_id)
        .annotate(caller_role=Subquery(role.values("role")[:1]))
        .first()
    )
    if thread is None or thread.caller_role is None:
        raise NotFound("Thread not found.")
    if head and thread.caller_role != Role.HEAD:
        raise Forbidden("Only a head of this department may do this.")
    return thread


def access_message(user: Any, message_id: int, *, redact: bool = False) -> Message:
    """The message (its thread loaded), if the caller is a member of its department.

    `caller_role` is set on it. With `redact`, the caller must also be its
    sender or a head of the department (Forbidden otherwise): a member's own
    "delete", or a head's moderation.
    """
    check_authenticated(user)
    role = Membership.objects.active().filter(
        department_id=OuterRef("thread__department_id"), user_id=user.pk
    )
    message = (
        Message.objects.filter(pk=message_id)
        .select_related("thread")
        .annotate(caller_role=Subquery(role.values("role")[:1]))
        .first()
    )
    if message is None or message.caller_role is None:
        raise NotFound("Message not found.")
    if redact:
        check_may_redact(user, message.sender_id, message.caller_role)
    return message


def check_may_redact(user: Any, sender_id: int, role: str) -> None:
    """A message is redacted by its sender (their own "delete") or a head (moderation).

    `role` is the caller's in the message's department; chat.redaction asks
    again under the department's lock, with the role read there.
    """
    if sender_id != user.pk and role != Role.HEAD:
        raise Forbidden("Only its sender or a head of this department may redact it.")


def compliance_grounds(user: Any, case: str | None, reason: str | None) -> bool:
    """Whether a compliance officer names the grounds of this access: a case and a reason.

    Grounds given by anyone else change nothing (False). An officer who gives
    only one of them, or too long ones, is refused, so that nothing is ever
    read on grounds the audit entry does not hold.
    """
    case, reason = (case or "").strip(), (reason or "").strip()
    if not getattr(user, "is_compliance_officer", False) or not (case or reason):
        return False
    if not (case and reason) or len(case) > CASE_MAX or len(reason) > REASON_MAX:
        raise InvalidRequest(
            f"A compliance access names a case (at most {CASE_MAX} characters) "
            f"and a reason (at most {REASON_MAX})."
        )
    return True


def check_clinician(user: Any) -> None:
    """Patient look-ups are for members of at least one department."""
    check_authenticated(user)
    if not Membership.objects.active().filter(user_id=user.pk).exists():
        raise Forbidden("Only members of a department may look up patients.")


def member_department_ids(user: Any) -> list[int]:
    return list(
        Membership.objects.active().filter(user_id=user.pk).values_list("department_id", flat=True)
    )


def access_identity_of(user: Any, other_user_id: int) -> None:
    """Public keys are shown to oneself, to colleagues of a shared department,
    to compliance officers and to administrators (who appoint heads with the
    institution's admin key); to anyone else the user does not exist."""
    check_authenticated(user)
    if user.pk == other_user_id or user.is_compliance_officer or user.is_staff:
        return
    mine = Membership.objects.active().filter(user_id=user.pk).values("department_id")
    shared = Membership.objects.active().filter(user_id=other_user_id, department_id__in=mine)
    if not shared.exists():
        raise NotFound("User not found.")


def access_attached_upload(user: Any, upload_id: Any, *, compliance: bool = False) -> Any:
    """The blob a download may read: an attached upload (a photo or its thumbnail)
    in a department the caller is an active member of, or NotFound alike for
    unknown, not yet attached and forbidden ones. A compliance officer reads
    any attached blob, but only naming a case and a reason (`compliance`).

    The photos of a redacted message are hidden from members (NotFound, as if
    missing) and retained for compliance. `as_compliance` is set on the upload
    returned: True when only the compliance grounds allowed it.
    """
    check_authenticated(user)
    upload = Upload.objects.filter(pk=upload_id, state=UploadState.ATTACHED).first()
    attached = (
        Attachment.objects.filter(Q(upload_id=upload_id) | Q(thumbnail_id=upload_id))
        .values_list("department_id", "message__redacted_at")
        .first()
    )
    if upload is None or attached is None:
        raise NotFound("Upload not found.")
    department_id, redacted_at = attached
    if redacted_at is None and is_member(user, department_id):
        upload.as_compliance = False
        return upload
    if user.is_compliance_officer:
        if not compliance:
            raise InvalidRequest("A compliance access names a case and a reason.")
        upload.as_compliance = True
        return upload
    raise NotFound("Upload not found.")


def library_department_ids(user: Any, *, case: str = "", reason: str = "") -> list[int] | None:
    """The departments whose photos the caller may see in the library; None means all.

    A member sees the departments of their active memberships. A compliance
    officer sees every department, but only naming a case and a reason
    (both audited with the query); without them, a compliance officer who is
    also a member sees their own departments, and one who is not is refused.
    """
    check_authenticated(user)
    if compliance_grounds(user, case, reason):
        return None
    mine = member_department_ids(user)
    if user.is_compliance_officer and not mine:
        raise InvalidRequest("A compliance access names a case and a reason.")
    return mine
