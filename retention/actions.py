"""Legal holds: place, list, release (docs/compliance.md, "Legal holds").

Who may do what is decided in rooms/access/; here each use case validates
its input, writes in one transaction with its audit entry, and returns plain
data. A hold is never deleted: releasing it ends its effect, and it stays
listed. A hold reads nothing, so it needs no scope check against its case:
the case (open, the caller's) is the ground on which it is placed.
"""

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import record
from chat.models import Thread
from compliance.actions import clean_text
from core.errors import N_, Conflict, InvalidRequest, NotFound
from patients.models import Patient
from retention.models import REASON_MAX as REASON_MAX  # the edge's limit too
from retention.models import LegalHold
from rooms import access


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


def hold_data(hold: LegalHold) -> dict[str, Any]:
    return {
        "id": hold.pk,
        "scope": {"kind": hold.scope_kind, "id": hold.scope_id},
        "case": {"id": hold.case_id, "reference": hold.case.reference},
        "reason": hold.reason,
        "placed_by": {"id": hold.placed_by_id, "username": hold.placed_by.username},
        "placed_at": _iso(hold.placed_at),
        "active": hold.is_active,
        "released_by": None
        if hold.released_by is None  # no query when the id is None
        else {"id": hold.released_by_id, "username": hold.released_by.username},
        "released_at": _iso(hold.released_at),
        "release_reason": hold.release_reason or None,
    }


def _audit_data(hold: LegalHold) -> dict[str, Any]:
    return {
        "case": hold.case_id,
        "reference": hold.case.reference,
        "scope": {"kind": hold.scope_kind, "id": hold.scope_id},
    }


def check_place_hold(
    actor: User,
    case_id: int,
    reason: str,
    *,
    patient_id: int | None = None,
    thread_id: int | None = None,
    user_id: int | None = None,
) -> dict[str, Any]:
    """Validate and place a hold on exactly one patient, thread or user.

    Raises:
        Forbidden: the caller is not a compliance officer.
        NotFound: the case is not one of the caller's, or the target does not exist.
        CaseClosed, CaseNotApproved: the case cannot be used now.
        InvalidRequest: not exactly one target, or an unclean reason.
    """
    case = access.access_case_for_hold(actor, case_id)
    reason = clean_text(reason, "reason", REASON_MAX, lines=True)
    if sum(v is not None for v in (patient_id, thread_id, user_id)) != 1:
        raise InvalidRequest(N_("A hold names exactly one patient, thread or user."))
    found = {
        N_("Patient not found."): patient_id is None
        or Patient.objects.filter(pk=patient_id).exists(),
        N_("Thread not found."): thread_id is None or Thread.objects.filter(pk=thread_id).exists(),
        N_("User not found."): user_id is None or User.objects.filter(pk=user_id).exists(),
    }
    for missing, exists in found.items():
        if not exists:
            raise NotFound(missing)
    hold = LegalHold(
        case=case,
        reason=reason,
        patient_id=patient_id,
        thread_id=thread_id,
        user_id=user_id,
        placed_by=actor,
    )
    return do_place_hold(actor, hold)


def do_place_hold(actor: User, hold: LegalHold) -> dict[str, Any]:
    """Store the validated hold with its `hold.placed` entry. Assumes check_place_hold ran."""
    with transaction.atomic():
        hold.placed_at = timezone.now()
        hold.save(force_insert=True)
        record(
            "hold.placed",
            actor=actor,
            object_type="hold",
            object_id=hold.pk,
            data={**_audit_data(hold), "reason": hold.reason},
        )
    return hold_data(hold)


def list_holds(actor: User, *, active: bool | None = None) -> list[dict[str, Any]]:
    """Every hold, newest first: any officer sees what the purge will not touch."""
    holds = access.visible_holds(actor).select_related("case", "placed_by", "released_by")
    if active is not None:
        holds = holds.filter(released_at__isnull=active)
    return [hold_data(h) for h in holds.order_by("-placed_at", "-pk")]


def check_release_hold(actor: User, hold_id: int, reason: str) -> dict[str, Any]:
    access.access_hold_to_release(actor, hold_id)
    reason = clean_text(reason, "reason", REASON_MAX, lines=True)
    return do_release_hold(actor, hold_id, reason)


def do_release_hold(actor: User, hold_id: int, reason: str) -> dict[str, Any]:
    """Release under the hold's row lock, so two releases cannot both pass."""
    with transaction.atomic():
        hold = (
            LegalHold.objects.select_for_update(of=("self",))
            .select_related("case", "placed_by")
            .get(pk=hold_id)
        )
        if not hold.is_active:
            raise Conflict(N_("This hold is already released."))
        hold.released_by, hold.released_at = actor, timezone.now()
        hold.release_reason = reason
        hold.save(update_fields=["released_by", "released_at", "release_reason"])
        record(
            "hold.released",
            actor=actor,
            object_type="hold",
            object_id=hold.pk,
            data={**_audit_data(hold), "reason": reason},
        )
    return hold_data(hold)
