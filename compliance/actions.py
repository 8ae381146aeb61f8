"""Review cases: open, approve (four-eyes), close and list (docs/compliance.md).

Who may do what to which case is decided in rooms/access/; here each use
case validates its input, writes in one transaction with its audit entry,
and returns plain data. A case is never deleted or reopened.
"""

import unicodedata
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from audit.models import AuditEvent
from compliance.models import REASON_MAX as REASON_MAX  # the edge's limits too
from compliance.models import REFERENCE_MAX as REFERENCE_MAX
from compliance.models import Case
from core.errors import N_, Conflict, InvalidRequest, NotFound
from patients.models import Patient
from rooms import access
from rooms.models import Department


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def _person(user_id: int | None, username: str | None) -> dict[str, Any] | None:
    return None if user_id is None else {"id": user_id, "username": username}


def case_data(case: Case) -> dict[str, Any]:
    return {
        "id": case.pk,
        "reference": case.reference,
        "reason": case.reason,
        "scope": scope_data(case),
        "opened_by": _person(case.opened_by_id, case.opened_by.username),
        "opened_at": _iso(case.opened_at),
        "four_eyes": case.four_eyes,
        "awaits_approval": case.awaits_approval(required_now=access.four_eyes_required()),
        "approved_by": _person(case.approved_by_id, getattr(case.approved_by, "username", None)),
        "approved_at": _iso(case.approved_at),
        "closed_by": _person(case.closed_by_id, getattr(case.closed_by, "username", None)),
        "closed_at": _iso(case.closed_at),
    }


def scope_data(case: Case) -> dict[str, Any]:
    return {
        "patient": case.patient_id,
        "department": case.department_id,
        "user": case.subject_user_id,
        "date_from": _iso(case.date_from),
        "date_to": _iso(case.date_to),
    }


def clean_text(value: str, name: str, limit: int, *, lines: bool = False) -> str:
    """Trimmed text of 1 to `limit` characters, with no control character (a newline is
    allowed with `lines`) and no lone surrogate: it is shown to people and kept in the
    audit trail."""
    value = value.strip()
    allowed = "\n" if lines else ""
    # Cf holds the bidirectional overrides that make text read other than it is stored.
    bad = any(unicodedata.category(ch) in ("Cc", "Cs", "Cf") and ch not in allowed for ch in value)
    if not value or len(value) > limit or bad:
        raise InvalidRequest(
            N_("%(name)s is 1 to %(limit)s characters of text, without control characters."),
            params={"name": name, "limit": limit},
            data={"field": name},
        )
    return value


# --- Open -------------------------------------------------------------------------


def check_open_case(
    actor: User,
    reference: str,
    reason: str,
    *,
    patient_id: int | None = None,
    ipp: str | None = None,
    department_id: int | None = None,
    user_id: int | None = None,
    date_from: datetime | None = None,
    date_to: datetime | None = None,
) -> dict[str, Any]:
    """Validate and open a case on the caller's name.

    The patient is named by id or by IPP (what a patient's request usually
    quotes; officers cannot search patients); the case keeps the id.

    Raises:
        Forbidden: the caller is not a compliance officer.
        InvalidRequest: a missing or unclean reference or reason, no scope, dates reversed.
        NotFound: a patient, department or user in the scope that does not exist.
        Conflict: the reference is already another case's.
    """
    access.check_compliance_officer(actor)
    reference = clean_text(reference, "reference", REFERENCE_MAX)
    reason = clean_text(reason, "reason", REASON_MAX, lines=True)
    if ipp is not None:
        if patient_id is not None:
            raise InvalidRequest(N_("A case names its patient by id or by IPP, not both."))
        patient_id = Patient.objects.filter(ipp=ipp.strip()).values_list("pk", flat=True).first()
        if patient_id is None:
            raise NotFound(N_("Patient not found."))
    if all(v is None for v in (patient_id, department_id, user_id, date_from, date_to)):
        raise InvalidRequest(
            N_("A case names its scope: a patient, a department, a user or dates.")
        )
    if date_from is not None and date_to is not None and date_from > date_to:
        raise InvalidRequest(N_("date_from is not after date_to."))
    if patient_id is not None and not Patient.objects.filter(pk=patient_id).exists():
        raise NotFound(N_("Patient not found."))
    if department_id is not None and not Department.objects.filter(pk=department_id).exists():
        raise NotFound(N_("Department not found."))
    if user_id is not None and not User.objects.filter(pk=user_id).exists():
        raise NotFound(N_("User not found."))
    if Case.objects.filter(reference=reference).exists():
        raise Conflict(N_("A case already has this reference."), data={"reference": reference})
    case = Case(
        reference=reference,
        reason=reason,
        patient_id=patient_id,
        department_id=department_id,
        subject_user_id=user_id,
        date_from=date_from,
        date_to=date_to,
        opened_by=actor,
        four_eyes=access.four_eyes_required(),
    )
    return do_open_case(actor, case)


def do_open_case(actor: User, case: Case) -> dict[str, Any]:
    """Store the validated case and its `case.opened` entry. Assumes check_open_case ran."""
    case.opened_at = timezone.now()
    try:
        with transaction.atomic():
            case.save(force_insert=True)
            record(
                "case.opened",
                actor=actor,
                department_id=case.department_id,
                object_type="case",
                object_id=case.pk,
                data={
                    "reference": case.reference,
                    "reason": case.reason,
                    "scope": scope_data(case),
                    "four_eyes": case.four_eyes,
                },
            )
    except IntegrityError:
        # Two officers opening the same reference at once: the second meets the first.
        raise Conflict(
            N_("A case already has this reference."), data={"reference": case.reference}
        ) from None
    return case_data(case)


# --- Approve and close ----------------------------------------------------------------


def check_approve_case(actor: User, case_id: int) -> dict[str, Any]:
    access.access_case_to_approve(actor, case_id)
    return do_approve_case(actor, case_id)


def do_approve_case(actor: User, case_id: int) -> dict[str, Any]:
    """Approve under the case's row lock, so two approvals or an approval racing a
    close cannot both pass. Assumes access_case_to_approve allowed it."""
    with transaction.atomic():
        case = (
            Case.objects.select_for_update(of=("self",)).select_related("opened_by").get(pk=case_id)
        )
        access.check_case_approvable(actor, case)
        case.approved_by, case.approved_at = actor, timezone.now()
        case.save(update_fields=["approved_by", "approved_at"])
        record(
            "case.approved",
            actor=actor,
            department_id=case.department_id,
            object_type="case",
            object_id=case.pk,
            data={"reference": case.reference, "opened_by": case.opened_by_id},
        )
    return case_data(case)


def check_close_case(actor: User, case_id: int) -> dict[str, Any]:
    access.access_case_to_close(actor, case_id)
    return do_close_case(actor, case_id)


def do_close_case(actor: User, case_id: int) -> dict[str, Any]:
    """Close under the row lock; a closed case releases nothing more and is kept."""
    with transaction.atomic():
        case = (
            Case.objects.select_for_update(of=("self",))
            .select_related("opened_by", "approved_by")
            .get(pk=case_id)
        )
        if case.is_closed:
            raise access.CaseClosed()
        case.closed_by, case.closed_at = actor, timezone.now()
        case.save(update_fields=["closed_by", "closed_at"])
        record(
            "case.closed",
            actor=actor,
            department_id=case.department_id,
            object_type="case",
            object_id=case.pk,
            data={"reference": case.reference},
        )
    return case_data(case)


def list_cases(actor: User) -> list[dict[str, Any]]:
    """The caller's cases and those awaiting a second officer, newest first."""
    cases = (
        access.visible_cases(actor)
        .select_related("opened_by", "approved_by", "closed_by")
        .order_by("-opened_at", "-id")
    )
    return [case_data(case) for case in cases]


def check_case_audit(actor: User, case_id: int) -> dict[str, Any]:
    """The case's audit slice: every entry that names it (opened, approved, released
    under it, closed; downloads and library queries under it), oldest first, each with
    its seal (its place in the hash chain) once sealed. Not itself audited: it releases
    no patient data, only the trail of the case."""
    case = access.access_case_record(actor, case_id)
    return {"case": case.pk, "entries": [slice_entry(e) for e in case_slice(case)]}


def case_slice(case: Case) -> Any:
    """The audit entries naming the case, oldest first, with their seals."""
    return (
        AuditEvent.objects.filter(
            Q(object_type="case", object_id=str(case.pk)) | Q(data__case=case.pk)
        )
        .select_related("seal")
        .order_by("id")
    )


def slice_entry(entry: AuditEvent) -> dict[str, Any]:
    return {
        "id": entry.pk,
        "at": _iso(entry.at),
        "actor": _person(entry.actor_id, entry.actor_username),
        "action": entry.action,
        "department": entry.department_id,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "data": entry.data,
        "seal": _seal(entry),
    }


def _seal(entry: AuditEvent) -> dict[str, Any] | None:
    seal = getattr(entry, "seal", None)
    return None if seal is None else {"seq": seal.seq, "hash": seal.hash}
