"""Compliance review cases and legal holds: who reads what under which case."""

from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Q, QuerySet

from accounts.models import User
from chat.models import Thread
from compliance.models import Case
from core.errors import (
    N_,
    Conflict,
    ErrorCode,
    Forbidden,
    NotFound,
    RoundsError,
)

if TYPE_CHECKING:
    from retention.models import LegalHold
from rooms.access.base import (
    check_authenticated,
)

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
