"""Threads, messages, consults' guests, patients and photos: what a member, a consult's
guest or a compliance officer under a case may read and write."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery

from accounts.models import User
from chat.models import Consult, ConsultState, Message, Thread
from compliance.models import Case
from core.errors import (
    N_,
    ErrorCode,
    Forbidden,
    InvalidRequest,
    NotFound,
    RoundsError,
)
from media.models import Attachment, Upload, UploadState
from patients.models import Admission, Patient
from rooms.models import Membership, Role

if TYPE_CHECKING:
    pass
from rooms.access.base import (
    access_membership,
    active_membership,
    check_authenticated,
    is_member,
    member_department_ids,
)
from rooms.access.cases import (
    access_case,
)

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


LARGEST_ID = 2**63 - 1  # a bigint's

# `_with_caller_role` for one thread, written once: history pages and every thread
# action start here, and the ORM took longer to build this query (0.7 ms) than
# PostgreSQL to run it. tests/rooms/test_access_threads.py holds the two to one answer.
THREAD_WITH_CALLER_ROLE = f"""
SELECT t.*,
    (SELECT m.role FROM {Membership._meta.db_table} m
     WHERE m.department_id = t.department_id AND m.user_id = %s AND m.removed_at IS NULL
     LIMIT 1) AS caller_role,
    (SELECT c.state FROM {Consult._meta.db_table} c
     WHERE c.thread_id = t.id AND c.guest_id = %s
     LIMIT 1) AS guest_state
FROM {Thread._meta.db_table} t WHERE t.id = %s
"""  # noqa: S608 (the models' own tables)


def access_thread(user: User, thread_id: int, *, head: bool = False, write: bool = False) -> Thread:
    """The thread, if the caller is a member (a head, with `head`) of its department,
    or the guest of this one consult thread (while it is open, with `write`)."""
    _check_caller_and_id(user, thread_id)
    # One query: the thread with the caller's role in its department and consult.
    rows = Thread.objects.raw(THREAD_WITH_CALLER_ROLE, [user.pk, user.pk, thread_id])
    return _checked_thread(next(iter(rows), None), head=head, write=write)


def access_thread_and_read(
    user: User, thread_id: int, read: str, params: Sequence[Any]
) -> tuple[Thread, list[tuple[Any, ...]]]:
    """`access_thread` (a reader's), and the rows of the statement `read`, which the
    caller gets only if the access is granted.

    On PostgreSQL both statements go in one round trip (one simple-protocol query,
    run in order): a history page is read in the time of one statement, not two.
    When the access is refused, the rows read are dropped here, unseen. `read`'s
    parameters are positional (%s) and follow the access statement's.
    """
    if connection.vendor != "postgresql":  # one statement per query: two round trips
        granted = access_thread(user, thread_id)
        with connection.cursor() as cursor:
            cursor.execute(read, params)
            return granted, cursor.fetchall()
    _check_caller_and_id(user, thread_id)
    with connection.cursor() as cursor:
        access_params = [user.pk, user.pk, thread_id]
        cursor.execute(f"{THREAD_WITH_CALLER_ROLE};\n{read}", [*access_params, *params])
        found = cursor.fetchone()
        names = [column.name for column in cursor.description]
        cursor.nextset()
        rows = cursor.fetchall()
    thread: Any = None
    if found is not None:
        by_name = dict(zip(names, found, strict=True))
        thread = cast(Any, Thread).from_db(
            connection.alias,
            [field.attname for field in Thread._meta.concrete_fields],
            [by_name[field.column] for field in Thread._meta.concrete_fields],
        )
        thread.caller_role, thread.guest_state = by_name["caller_role"], by_name["guest_state"]
    return _checked_thread(thread), rows


def _check_caller_and_id(user: User, thread_id: int) -> None:
    """Signed in, and a thread id that can exist (a bigint's range), before any query."""
    check_authenticated(user)
    if not 0 < thread_id <= LARGEST_ID:  # no such row, and a number the database refuses
        raise NotFound(N_("Thread not found."))


def _checked_thread(thread: Any, *, head: bool = False, write: bool = False) -> Thread:
    """The thread read with the caller's role, or the refusal."""
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


def patient_visible(user: User, patient_id: int) -> bool:
    """Whether the caller's departments have a relationship with the patient: a stay
    there, now or past (follow-up), or a thread there (a consult's too). A stay no
    department is known for (entered by hand, before the location table) is seen by
    every clinician while it lasts, as before the hospital's systems were connected.
    docs/decisions.md, "Who sees a patient"."""
    departments = member_department_ids(user)
    stays = Admission.objects.filter(patient_id=patient_id, cancelled_at__isnull=True)
    return (
        stays.filter(department_id__in=departments).exists()
        or stays.current().filter(department__isnull=True).exists()
        or Thread.objects.filter(patient_id=patient_id, department_id__in=departments).exists()
    )


def admitted_for(user: User) -> QuerySet[Admission]:
    """The stays going on now that the caller's patient search looks among: in their
    departments, and the ones no department is known for."""
    return Admission.objects.current().filter(
        Q(department_id__in=member_department_ids(user)) | Q(department__isnull=True)
    )


def access_patient_for_thread(user: User, patient_id: int, reason: str | None) -> Patient:
    """The patient a new thread (or a consult) is about: one the caller may see, or, with
    a `reason` the caller's action audits, another known patient (a follow-up after a
    discharge: docs/decisions.md). Unknown and unseen ones are alike not found."""
    patient = Patient.objects.filter(pk=patient_id).first()
    if patient is None or not (reason or patient_visible(user, patient_id)):
        raise NotFound(N_("Patient not found."))
    return patient


def access_library_photo(user: User, attachment_id: int) -> Attachment:
    """A photo the library shows the caller as a member (not under a case: sending one to
    the patient record is a clinician's act, never a compliance read): in one of their
    departments, of a message not removed; NotFound alike otherwise."""
    check_authenticated(user)
    found = (
        Attachment.objects.filter(
            pk=attachment_id,
            department_id__in=member_department_ids(user),
            message__redacted_at__isnull=True,
        )
        .select_related("patient", "sender")
        .first()
    )
    if found is None:
        raise NotFound(N_("Upload not found."))
    return found


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
