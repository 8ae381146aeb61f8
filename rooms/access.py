"""The one place that decides who may touch what.

Every action resolves its objects through these functions. A missing object
and a forbidden one raise the same `NotFound`, so a caller cannot learn which
departments, threads or patients exist outside their own departments.
`Forbidden` is only raised where the caller may already see the object
(a member asking for a head's action).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import OuterRef, Q, QuerySet, Subquery

from accounts.models import User
from chat.models import Consult, ConsultState, Message, Thread
from compliance.models import Case
from core.errors import (
    N_,
    Conflict,
    ErrorCode,
    Forbidden,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    RoundsError,
)
from media.models import Attachment, Upload, UploadState
from patients.models import Admission, Patient
from rooms.models import Department, Membership, OnCallRole, Role, RosterShift

if TYPE_CHECKING:
    from advice.models import AdviceRequest
    from retention.models import LegalHold


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
    guest = Consult.objects.filter(thread__department_id=department_id, guest_id=user.pk).exclude(
        state=ConsultState.PENDING
    )
    if not is_member(user, department_id) and guest.exists():
        return
    access_membership(user, department_id)


# A consult's guest (docs/advice.md, "Consults") has one of these roles in its thread only.
GUEST = "guest"
FORMER_GUEST = "former_guest"


def guest_role(state: str | None) -> str | None:
    """A consult's guest reads and writes its thread while it is open; once it ended,
    they read it as it was if the hospital's rule (ROUNDS_CONSULT_READ_AFTER) says so."""
    if state == ConsultState.OPEN:
        return GUEST
    if state == ConsultState.ENDED and settings.ROUNDS_CONSULT_READ_AFTER == "record":
        return FORMER_GUEST
    return None


def _with_caller_role(rows: QuerySet[Any], user: User, thread_field: str) -> QuerySet[Any]:
    """Annotate the caller's role in the department and, as a guest, in the consult."""
    prefix = f"{thread_field}__" if thread_field else ""
    role = Membership.objects.active().filter(
        department_id=OuterRef(f"{prefix}department_id"), user_id=user.pk
    )
    guest = Consult.objects.filter(thread_id=OuterRef(thread_field or "pk"), guest_id=user.pk)
    annotated: QuerySet[Any] = rows.annotate(
        caller_role=Subquery(role.values("role")[:1]),
        guest_state=Subquery(guest.values("state")[:1]),
    )
    return annotated


def access_thread(user: User, thread_id: int, *, head: bool = False, write: bool = False) -> Thread:
    """The thread, if the caller is a member (a head, with `head`) of its department,
    or the guest of this one consult thread (while it is open, with `write`)."""
    check_authenticated(user)
    # One query: the thread with the caller's role in its department (history
    # pages and every thread action start here).
    thread = _with_caller_role(Thread.objects.filter(pk=thread_id), user, "").first()
    if thread is not None and thread.caller_role is None:
        thread.caller_role = guest_role(thread.guest_state)
    if thread is None or thread.caller_role is None:
        raise NotFound(N_("Thread not found."))
    if head and thread.caller_role != Role.HEAD:
        raise Forbidden(N_("Only a head of this department may do this."))
    if write:
        check_writer(thread.caller_role)
    return cast(Thread, thread)  # annotated with the caller's role


def check_writer(role: str) -> None:
    """A former guest reads the consult as it was; they no longer write in it."""
    if role == FORMER_GUEST:
        raise Forbidden(N_("This consult has ended: you can read it, no longer write in it."))


def access_message(user: User, message_id: int, *, redact: bool = False) -> Message:
    """The message (its thread loaded), if the caller is a member of its department
    or a guest of its consult thread.

    `caller_role` is set on it. With `redact`, the caller must also be its
    sender or a head of the department (Forbidden otherwise): a member's own
    "delete", or a head's moderation.
    """
    check_authenticated(user)
    message = _with_caller_role(
        Message.objects.filter(pk=message_id).select_related("thread"), user, "thread"
    ).first()
    if message is not None and message.caller_role is None:
        message.caller_role = guest_role(message.guest_state)
    if message is None or message.caller_role is None:
        raise NotFound(N_("Message not found."))
    if redact:
        check_writer(message.caller_role)
        check_may_redact(user, message.sender_id, message.caller_role)
    return cast(Message, message)  # annotated with the caller's role


def access_upload_department(user: User, department_id: int) -> None:
    """Photos are uploaded by the department's members, and by the guest of one of its
    open consults (attached, they must go in that thread: media/attachments.py)."""
    if active_membership(user, department_id) is not None:
        return
    check_authenticated(user)
    if not Consult.objects.filter(
        thread__department_id=department_id, guest_id=user.pk, state=ConsultState.OPEN
    ).exists():
        access_membership(user, department_id)  # raises as for any outsider


def is_consult_writer(user: User, thread_id: int) -> bool:
    """The guest of this open consult thread (the post path checks members apart)."""
    return Consult.objects.filter(
        thread_id=thread_id, guest_id=user.pk, state=ConsultState.OPEN
    ).exists()


def access_consult(user: User, thread_id: int, *, lock: bool = False) -> tuple[Consult, str]:
    """A consult, to a member of its department or to its guest (in any state), with
    the caller's role: a department role, or GUEST. With `lock`, its row is locked."""
    check_authenticated(user)
    rows = Consult.objects.filter(thread_id=thread_id).select_related("thread")
    consult = (rows.select_for_update(of=("self",)) if lock else rows).first()
    if consult is None:
        raise NotFound(N_("Consult not found."))
    membership = active_membership(user, consult.thread.department_id)
    if membership is not None:
        return consult, membership.role
    if consult.guest_id == user.pk:
        return consult, GUEST
    raise NotFound(N_("Consult not found."))


def check_may_open_consult(user: User, consult: Consult, role: str) -> None:
    """Who signs the guest in: anyone the consult's request was put to, or a head.

    The chain accepts any member's signature (docs/crypto.md §14); the roster,
    which only the server knows, narrows it to the on-call holder and the heads.
    """
    from advice.models import AdviceRequest

    if role == GUEST:
        raise Forbidden(N_("Only the department opens a consult to its guest."))
    if role == Role.HEAD:
        return
    request = AdviceRequest.objects.filter(thread_id=consult.thread_id).first()
    if request is None or not (user.pk == request.holder_id or user.pk in request.asked):
        raise Forbidden(N_("Only the person the consult was put to, or a head, may open it."))


def _consult_state(user: User, thread_id: int) -> str | None:
    return (
        Consult.objects.filter(thread_id=thread_id, guest_id=user.pk)
        .values_list("state", flat=True)
        .first()
    )


def check_may_redact(user: User, sender_id: int, role: str) -> None:
    """A message is redacted by its sender (their own "delete") or a head (moderation).

    `role` is the caller's in the message's department; chat.redaction asks
    again under the department's lock, with the role read there.
    """
    if sender_id != user.pk and role != Role.HEAD:
        raise Forbidden(N_("Only its sender or a head of this department may redact it."))


def check_thread_open_to(role: str, thread: Thread) -> None:
    """A closed thread is frozen for its members; a head of the department still moderates it."""
    if role != Role.HEAD and thread.is_closed:
        raise RoundsError(
            N_("This thread is closed; ask a head of the department to redact."),
            code=ErrorCode.THREAD_CLOSED,
        )


def check_may_correct(user: User, message: Message, thread: Thread, now: datetime) -> None:
    """A message is corrected by its sender only, while it stands (not redacted), while
    its thread is open (for heads too: a closed thread is frozen), and within
    ROUNDS_CORRECTION_WINDOW_SECONDS of its posting on the server's clock.

    The caller is a member of the department (access_message, or under the
    department's lock in chat.corrections, which asks again with `now` read there).
    """
    if message.sender_id != user.pk:
        raise Forbidden(N_("Only its sender may correct a message."))
    if message.redacted_at is not None:
        raise RoundsError(
            N_("This message was removed; it cannot be corrected."), code=ErrorCode.MESSAGE_REDACTED
        )
    if thread.is_closed:
        raise RoundsError(
            N_("This thread is closed; its messages cannot be corrected."),
            code=ErrorCode.THREAD_CLOSED,
        )
    window = settings.ROUNDS_CORRECTION_WINDOW_SECONDS
    if now - message.created_at > timedelta(seconds=window):
        raise RoundsError(
            N_("A message can be corrected only within %(minutes)s minutes of posting it."),
            params={"minutes": window // 60},
            code=ErrorCode.CORRECTION_WINDOW_CLOSED,
            data={"window_seconds": window, "posted_at": message.created_at.isoformat()},
        )


def active_member_pairs(
    user_ids: Iterable[int], department_ids: Iterable[int]
) -> set[tuple[int, int]]:
    """Which of these users are active members of which of these departments, as
    (user id, department id) pairs: `is_member` for a batch of posts, in one query."""
    return set(
        Membership.objects.active()
        .filter(department_id__in=list(department_ids), user_id__in=list(user_ids))
        .values_list("user_id", "department_id")
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


def patient_visible(user: User, patient_id: int) -> bool:
    """A patient admitted now, or with a thread in one of the caller's departments: a
    discharged patient stays reachable through their threads, and only there."""
    return (
        Admission.objects.current().filter(patient_id=patient_id).exists()
        or Thread.objects.filter(
            patient_id=patient_id, department_id__in=member_department_ids(user)
        ).exists()
    )


def access_patient_for_thread(user: User, patient_id: int, reason: str | None) -> Patient:
    """The patient a new thread (or a consult) is about: one the caller may see, or, with
    a `reason` the caller's action audits, another known patient (a follow-up after a
    discharge: docs/decisions.md). Unknown and unseen ones are alike not found."""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None or not (reason or patient_visible(user, patient_id)):
        raise NotFound(N_("Patient not found."))
    return patient


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


def access_attached_upload(user: User, upload_id: Any, case_id: int | None = None) -> Upload:
    """The blob a download may read: an attached upload (a photo or its thumbnail)
    in a department the caller is an active member of, or NotFound alike for
    unknown, not yet attached and forbidden ones. A compliance officer reads
    a blob only under one of their open cases that covers its message (`case_id`,
    which a download names in its X-Rounds-Case header).

    The photos of a redacted message are hidden from members (NotFound, as if
    missing) and retained for compliance. `case` is set on the upload
    returned: the case it is read under, or None for a member's download.
    """
    check_authenticated(user)
    # The case first: a clinician naming one is refused alike for every upload.
    case = None if case_id is None else access_case(user, case_id, release=True)
    upload = Upload.objects.filter(pk=upload_id, state=UploadState.ATTACHED).first()
    attached = (
        Attachment.objects.filter(Q(upload_id=upload_id) | Q(thumbnail_id=upload_id))
        .values_list("department_id", "message__redacted_at", "message_id", "message__thread_id")
        .first()
    )
    if upload is None or attached is None:
        raise NotFound(N_("Upload not found."))
    department_id, redacted_at, message_id, thread_id = attached
    if case is not None:
        if not case.covers_message(message_id):
            raise NotFound(N_("Upload not found."))
        upload.case = case
        return upload
    if redacted_at is None and (
        is_member(user, department_id) or guest_role(_consult_state(user, thread_id))
    ):
        upload.case = None
        return upload
    if user.is_compliance_officer:
        raise InvalidRequest(
            N_("A compliance access names one of your open cases in the X-Rounds-Case header.")
        )
    raise NotFound(N_("Upload not found."))


def library_scope(user: User, case_id: int | None = None) -> tuple[list[int] | None, Case | None]:
    """What the caller may see in the photo library: (departments, None) or (None, case).

    A member sees the departments of their active memberships. A compliance
    officer sees what one of their open (and, under four-eyes, approved)
    cases covers, naming it; without one, a compliance officer who is also a
    member sees their own departments, and one who is not is refused.
    """
    check_authenticated(user)
    if case_id is not None:
        return None, access_case(user, case_id, release=True)
    mine = member_department_ids(user)
    if user.is_compliance_officer and not mine:
        raise InvalidRequest(N_("A compliance access names one of your open cases."))
    return mine, None


# --- Compliance review cases (compliance/) ---------------------------------------------


class CaseClosed(RoundsError):
    code = ErrorCode.CASE_CLOSED
    default_message = N_("This case is closed: it releases nothing more.")


class CaseNotApproved(RoundsError):
    code = ErrorCode.CASE_NOT_APPROVED
    default_message = N_(
        "A second compliance officer must approve this case before it releases data."
    )


def check_compliance_officer(user: User) -> None:
    """Cases and what they release are for compliance officers only."""
    check_authenticated(user)
    if not user.is_compliance_officer:
        raise Forbidden(N_("Only a compliance officer may do this."))


def four_eyes_required() -> bool:
    return bool(settings.ROUNDS_COMPLIANCE_FOUR_EYES)


def access_case(user: User, case_id: int, *, release: bool = False) -> Case:
    """One of the caller's own cases, or NotFound: another officer's case is not theirs
    to use, and answers as a missing one.

    Args:
        release: the case is to release data, so it must be open (CaseClosed) and
            approved when four-eyes applies (CaseNotApproved).
    """
    check_compliance_officer(user)
    case = Case.objects.filter(pk=case_id, opened_by_id=user.pk).first()
    if case is None:
        raise NotFound(N_("Case not found."))
    if release:
        check_case_releases(case)
    return case


def check_case_releases(case: Case) -> None:
    if case.is_closed:
        raise CaseClosed()
    if case.awaits_approval(required_now=four_eyes_required()):
        raise CaseNotApproved()


def access_case_to_approve(user: User, case_id: int) -> Case:
    """A case awaiting a second officer: any officer but its opener approves it."""
    case = visible_cases(user).filter(pk=case_id).first()
    if case is None:
        raise NotFound(N_("Case not found."))
    check_case_approvable(user, case)
    return case


def check_case_approvable(user: User, case: Case) -> None:
    """Asked again under the case's row lock by compliance.actions.do_approve_case."""
    if case.opened_by_id == user.pk:
        raise Forbidden(N_("A second officer approves a case, not the one who opened it."))
    if case.is_closed:
        raise CaseClosed()
    if case.approved_at is not None:
        raise Conflict(N_("This case is already approved."))


def access_case_record(user: User, case_id: int) -> Case:
    """A case as its officers know it, open or closed: the one who opened it and the one
    who approved it close it and read its audit slice; to anyone else it is missing."""
    check_compliance_officer(user)
    case = (
        Case.objects.filter(pk=case_id)
        .filter(Q(opened_by_id=user.pk) | Q(approved_by_id=user.pk))
        .first()
    )
    if case is None:
        raise NotFound(N_("Case not found."))
    return case


def access_case_to_close(user: User, case_id: int) -> Case:
    case = access_case_record(user, case_id)
    if case.is_closed:
        raise CaseClosed()
    return case


def visible_cases(user: User) -> QuerySet[Case]:
    """The cases an officer may list: those they opened or approved, and those of other
    officers awaiting a second officer (which they may approve)."""
    check_compliance_officer(user)
    mine = Q(opened_by_id=user.pk) | Q(approved_by_id=user.pk)
    pending = Q(closed_at__isnull=True, approved_at__isnull=True)
    if not four_eyes_required():
        pending &= Q(four_eyes=True)
    return Case.objects.filter(mine | pending)


def access_case_thread(user: User, case_id: int, thread_id: int) -> tuple[Case, Thread]:
    """A thread one of the caller's releasing cases covers, or NotFound (out of scope,
    like missing)."""
    case = access_case(user, case_id, release=True)
    thread = case.covered_threads().filter(pk=thread_id).first()
    if thread is None:
        raise NotFound(N_("Thread not found."))
    return case, thread


# --- Legal holds (retention/) ------------------------------------------------------------


def check_not_purged(thread_id: int) -> None:
    """A thread the purge has begun on stays closed: its tombstone takes no new posts,
    and a purge half-done must not delete what a reopened thread would receive."""
    from retention.models import ThreadPurge

    if ThreadPurge.objects.filter(thread_id=thread_id).exists():
        raise Conflict(N_("This thread was purged at the end of retention; it stays closed."))


def access_case_for_hold(user: User, case_id: int) -> Case:
    """A hold is placed under one of the caller's own open (and, under four-eyes,
    approved) cases, as a release would be."""
    return access_case(user, case_id, release=True)


def visible_holds(user: User) -> "QuerySet[LegalHold]":
    """Every hold, to every compliance officer: what the purge will not touch is no
    secret among them, and a hold releases no patient data."""
    from retention.models import LegalHold

    check_compliance_officer(user)
    return LegalHold.objects.all()


def access_hold_to_release(user: User, hold_id: int) -> "LegalHold":
    """A hold its placer, or its case's opener or approver, releases; to other officers
    it answers as a missing one. Released twice is a Conflict (under the row lock)."""
    hold = (
        visible_holds(user)
        .filter(pk=hold_id)
        .filter(
            Q(placed_by_id=user.pk)
            | Q(case__opened_by_id=user.pk)
            | Q(case__approved_by_id=user.pk)
        )
        .first()
    )
    if hold is None:
        raise NotFound(N_("Hold not found."))
    if not hold.is_active:
        raise Conflict(N_("This hold is already released."))
    return hold


def access_case_patient(user: User, case_id: int, patient_id: int) -> Case:
    """One of the caller's releasing cases opened on this patient, or NotFound.

    A patient's access report spans every department and every kind of access,
    so only a case whose scope names the patient grounds it (a patient's
    request); a case on a department or a user that happens to cover one of
    their threads does not.
    """
    case = access_case(user, case_id, release=True)
    if case.patient_id != patient_id:
        raise NotFound(N_("Patient not found."))
    return case
