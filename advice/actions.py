"""Advice requests: ask, answer, pass on, withdraw, and what a due timer does
(docs/advice.md).

Every change locks the request's row, writes one timeline step, its audit entry
and its `advice.updated` event in one transaction, and alerts on commit whoever
must now act. The question's words never come here: they are the thread message
the request points to, encrypted by the requester's client; a pass carries no
free text for the same reason.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from advice import alerts, scheduler
from advice.models import AdviceRequest, AdviceStep, Answer, Priority, Status, StepKind
from advice.routing import chain, is_active_member, next_holder
from audit.actions import record
from chat import consults
from chat.events import append_event
from core.errors import N_, Conflict, ErrorCode, InvalidRequest, NotFound, RoundsError
from core.events import EventKind
from rooms import access
from rooms.models import Department, OnCallRole
from rooms.oncall import NotAMember, user_card

LIST_LIMIT = 100
# What a step may change on the request's row (the rest is fixed at its making).
CHANGING = [
    "to_user",
    "to_role",
    "holder",
    "asked",
    "status",
    "answer",
    "answered_by",
    "answered_at",
    "step",
    "due_at",
]


# --- The timers ------------------------------------------------------------------


def escalation_delay(priority: str) -> timedelta | None:
    """How long a request waits for an answer before it moves on; None: it never does."""
    seconds = settings.ROUNDS_ADVICE_ESCALATE_SECONDS.get(priority)
    return timedelta(seconds=seconds) if seconds else None


def realert_delay(priority: str) -> timedelta | None:
    """How often the last holder is alerted again once nobody is left to escalate to."""
    configured = settings.ROUNDS_ADVICE_REALERT_SECONDS
    if configured:
        return timedelta(seconds=configured) if escalation_delay(priority) else None
    return escalation_delay(priority)


# --- What clients see --------------------------------------------------------------


def _card(user: User | None) -> dict[str, Any] | None:
    return user_card(user) if user is not None else None


def addressee(request: AdviceRequest) -> dict[str, Any]:
    if request.to_role is not None:
        return {"role": {"id": request.to_role.pk, "name": request.to_role.name}, "user": None}
    return {"role": None, "user": _card(request.to_user)}


def step_data(step: AdviceStep) -> dict[str, Any]:
    return {
        "number": step.number,
        "kind": step.kind,
        "at": step.at.isoformat(),
        "actor": _card(step.actor),
        "holder": _card(step.holder),
        "data": step.data,
    }


def request_data(request: AdviceRequest, last: AdviceStep | None = None) -> dict[str, Any]:
    """A request as its requester and its department see it: metadata only."""
    return {
        "id": request.pk,
        "department": request.department_id,
        "thread": request.thread_id,
        "patient": request.thread.patient_id,
        "message": request.message_id,
        "requester": user_card(request.requester),
        "priority": request.priority,
        "to": addressee(request),
        "holder": _card(request.holder),
        "status": request.status,
        "answer": request.answer or None,
        "answered_by": _card(request.answered_by),
        "answered_at": request.answered_at.isoformat() if request.answered_at else None,
        "due_at": request.due_at.isoformat() if request.due_at else None,
        "created_at": request.created_at.isoformat(),
        "steps": request.step,
        "last_step": step_data(last) if last is not None else None,
    }


def _loaded(queryset: Any) -> Any:
    return queryset.select_related(
        "thread", "requester", "to_user", "to_role", "holder", "answered_by"
    )


# --- One step of the timeline --------------------------------------------------------


def do_add_step(
    request: AdviceRequest,
    kind: StepKind,
    *,
    actor: User | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> AdviceStep:
    """Record a change already made on `request` (saved here): its timeline step, its
    audit entry and its event, in the caller's transaction, which holds the row lock."""
    request.step += 1
    request.save(update_fields=CHANGING)
    step = AdviceStep.objects.create(
        request=request,
        number=request.step,
        kind=kind,
        at=now,
        actor=actor,
        holder=request.holder,
        data=data or {},
    )
    record(
        f"advice.{kind}",
        actor=actor,
        department_id=request.department_id,
        object_type="advice_request",
        object_id=request.pk,
        data={
            "step": step.number,
            "priority": request.priority,
            "holder": request.holder_id,
            "thread": request.thread_id,
            **step.data,
        },
    )
    append_event(
        request.department_id,
        EventKind.ADVICE_UPDATED,
        {"request": request_data(request, step)},
        # A consult's requester is no member: their own sockets hear of it.
        guest_user_id=request.requester_id if request.thread.is_consult else None,
    )
    return step


def _hand_to(request: AdviceRequest, found: tuple[User, str] | None, now: datetime) -> str:
    """Give the request to `found` (or to nobody) and set its timer; returns why it went there."""
    holder, why = found if found is not None else (None, "nobody")
    request.holder = holder
    if holder is not None and holder.pk not in request.asked:
        request.asked = [*request.asked, holder.pk]
    delay = escalation_delay(request.priority)
    request.due_at = now + delay if delay else None
    if delay:
        transaction.on_commit(scheduler.wake)
    return why


# --- Asking --------------------------------------------------------------------------


def _addressee_of(
    department_id: int, actor: User, to_user: int | None, to_role: int | None
) -> tuple[User | None, OnCallRole | None]:
    """The person (an active member, not the caller) or the active on-call role of the
    department that a request is put to; exactly one of them."""
    if (to_user is None) == (to_role is None):
        raise InvalidRequest(N_("Name either a person or an on-call role, not both."))
    if to_role is not None:
        role = OnCallRole.objects.filter(pk=to_role, department_id=department_id).first()
        if role is None:
            raise NotFound(N_("On-call role not found."))
        if not role.is_active:
            raise Conflict(N_("This on-call role is archived."))
        return None, role
    if to_user == actor.pk:
        raise InvalidRequest(N_("You cannot put a request to yourself."))
    person = User.objects.filter(pk=to_user).first() if to_user is not None else None
    if person is None or not is_active_member(person, department_id):
        raise NotAMember(data={"user": to_user})
    return person, None


def check_request_advice(
    actor: User, message_id: int, priority: str, to_user: int | None, to_role: int | None
) -> tuple[dict[str, Any], bool]:
    """Make the caller's own message in a patient's thread an advice request.

    The message was posted first, as any message, encrypted and signed by the
    caller's client; this adds who must answer and how urgently. Asking again for
    the same message with the same priority and addressee answers the request
    already made (a retry); with others, `conflict`.

    Returns:
        The request, and whether this call made it.
    """
    message = access.access_message(actor, message_id)
    if message.sender_id != actor.pk:
        raise NotFound(N_("Message not found."))
    if message.redacted_at is not None:
        raise RoundsError(N_("This message was removed."), code=ErrorCode.MESSAGE_REDACTED)
    if message.thread.is_closed:
        raise RoundsError(N_("This thread is closed."), code=ErrorCode.THREAD_CLOSED)
    if priority not in Priority.values:
        raise InvalidRequest(N_("Unknown priority."))
    person, role = _addressee_of(message.thread.department_id, actor, to_user, to_role)
    existing = _loaded(AdviceRequest.objects.filter(message=message)).first()
    if existing is None:
        check_open_limit(actor)
        try:
            with transaction.atomic():
                made = do_request_advice(actor, message.thread, message, priority, person, role)
            return made, True
        except IntegrityError:
            existing = _loaded(AdviceRequest.objects.filter(message=message)).first()
            if existing is None:
                raise
    # The first step keeps the addressee first asked (a pass changes to_user / to_role).
    first = existing.steps.order_by("number").first()
    same = first is not None and (existing.priority, first.data.get("to")) == (
        priority,
        _to(person, role),
    )
    if not same:
        raise Conflict(N_("This message is already a request, with another addressee or priority."))
    return request_data(existing), False


def check_request_consult(
    actor: User,
    department_id: int,
    patient_id: int,
    priority: str,
    to_user: int | None,
    to_role: int | None,
) -> tuple[dict[str, Any], bool]:
    """Ask another department for a consult about a patient (docs/advice.md, "Consults").

    The caller, a clinician who is not a member of that department, becomes the
    guest of a new thread of it once a member opens the consult; until then the
    request routes and escalates as any other. One open consult per requester,
    department and patient: asking again answers it (200), as a retry would.

    Returns:
        The request, and whether this call made it.
    """
    access.check_clinician(actor)
    if not Department.objects.filter(pk=department_id).exists():
        raise NotFound(N_("Department not found."))
    if access.is_member(actor, department_id):
        raise InvalidRequest(N_("You are a member: ask in the patient's thread of the department."))
    access.access_patient_for_thread(actor, patient_id, None)
    if priority not in Priority.values:
        raise InvalidRequest(N_("Unknown priority."))
    person, role = _addressee_of(department_id, actor, to_user, to_role)
    existing = (
        _loaded(AdviceRequest.objects.filter(requester=actor, department_id=department_id))
        .filter(thread__patient_id=patient_id, thread__consult__state__in=("pending", "open"))
        .first()
    )
    if existing is not None:
        return request_data(existing), False
    check_open_limit(actor)
    with transaction.atomic():
        Department.objects.select_for_update().get(pk=department_id)
        title = _consult_title(actor)
        thread = consults.do_create_consult(actor, department_id, patient_id, title)
        made = do_request_advice(actor, thread, None, priority, person, role)
    return made, True


def _consult_title(actor: User) -> str:
    """The consult thread's name: who asks, from which department (no patient data)."""
    mine = access.member_department_ids(actor)
    names = list(Department.objects.filter(pk__in=mine).values_list("name", flat=True)[:1])
    where = f" ({names[0]})" if names else ""
    return f"Consult — {actor.get_full_name() or actor.username}{where}"[:200]


def check_open_limit(actor: User) -> None:
    """At most ROUNDS_ADVICE_MAX_OPEN open requests per requester: each alerts someone until
    answered, so a runaway script or a stuck button must not page a department without end.
    (Checked before the insert: two racing requests may both pass at the limit, once.)"""
    limit = settings.ROUNDS_ADVICE_MAX_OPEN
    open_now = AdviceRequest.objects.filter(requester=actor, status=Status.OPEN).count()
    if open_now >= limit:
        raise RoundsError(
            N_("You have %(count)s open requests: withdraw one or wait for an answer first."),
            code=ErrorCode.RATE_LIMITED,
            params={"count": open_now},
            data={"open": open_now, "max": limit},
        )


def _to(person: User | None, role: OnCallRole | None) -> dict[str, int]:
    return {"role": role.pk} if role is not None else {"user": person.pk if person else 0}


def do_request_advice(
    actor: User,
    thread: Any,
    message: Any,
    priority: str,
    person: User | None,
    role: OnCallRole | None,
) -> dict[str, Any]:
    """Store the request and hand it to the first of its chain (already authorised;
    the caller's transaction). The unique message makes a racing retry fail here."""
    now = timezone.now()
    request = AdviceRequest.objects.create(
        department_id=thread.department_id,
        thread=thread,
        message=message,
        requester=actor,
        priority=priority,
        to_user=person,
        to_role=role,
        created_at=now,
    )
    why = _hand_to(request, next_holder(request, now), now)
    step = do_add_step(
        request,
        StepKind.REQUESTED,
        actor=actor,
        now=now,
        data={"to": _to(person, role), "why": why},
    )
    alerts.alert_holder(request, StepKind.REQUESTED)
    return request_data(request, step)


# --- Answering -----------------------------------------------------------------------


def _open_for_answer(actor: User, request_id: int) -> AdviceRequest:
    """The request, locked, if the caller may answer it and it is still open."""
    request, role = access.access_advice(actor, request_id, lock=True)
    access.check_may_answer(actor, request, role)
    _check_open(request)
    return request


def _check_open(request: AdviceRequest) -> None:
    if request.status != Status.OPEN:
        raise Conflict(
            N_("This request has already been answered or withdrawn."),
            data={"status": request.status},
        )


def check_acknowledge(actor: User, request_id: int, answer: str) -> dict[str, Any]:
    """ "I'm on it" or "Call me": the caller takes the request and its timer stops."""
    if answer not in Answer.values:
        raise InvalidRequest(N_("Unknown answer."))
    with transaction.atomic():
        request = _open_for_answer(actor, request_id)
        now = timezone.now()
        request.status = Status.ACKNOWLEDGED
        request.answer = answer
        request.answered_by = actor
        request.answered_at = now
        request.holder = actor
        request.due_at = None
        step = do_add_step(
            request, StepKind.ACKNOWLEDGED, actor=actor, now=now, data={"answer": answer}
        )
        alerts.alert_requester(request)
        return request_data(_reload(request), step)


def check_pass(
    actor: User, request_id: int, to_user: int | None, to_role: int | None
) -> dict[str, Any]:
    """ "Not for me": the caller puts the request to another member or role of the
    department; it goes to the first of that one's chain (not the caller), and its
    timer starts again."""
    with transaction.atomic():
        request = _open_for_answer(actor, request_id)
        person, role = _addressee_of(request.department_id, actor, to_user, to_role)
        if person is not None and person.pk == request.requester_id:
            raise InvalidRequest(N_("The request comes from this person."))
        now = timezone.now()
        request.to_user, request.to_role = person, role
        candidates = [found for found in chain(request, now) if found[0].pk != actor.pk]
        fresh = [found for found in candidates if found[0].pk not in request.asked]
        chosen = (fresh or candidates)[:1]
        why = _hand_to(request, chosen[0] if chosen else None, now)
        step = do_add_step(
            request,
            StepKind.PASSED,
            actor=actor,
            now=now,
            data={"to": _to(person, role), "why": why},
        )
        alerts.alert_holder(request, StepKind.PASSED)
        return request_data(_reload(request), step)


def check_cancel(actor: User, request_id: int) -> dict[str, Any]:
    """The requester withdraws the request (answered elsewhere, no longer needed)."""
    with transaction.atomic():
        request, _ = access.access_advice(actor, request_id, lock=True)
        access.check_may_cancel(actor, request)
        _check_open(request)
        request.status = Status.CANCELLED
        request.due_at = None
        step = do_add_step(request, StepKind.CANCELLED, actor=actor, now=timezone.now())
        return request_data(_reload(request), step)


def _reload(request: AdviceRequest) -> AdviceRequest:
    reloaded: AdviceRequest = _loaded(AdviceRequest.objects.filter(pk=request.pk)).get()
    return reloaded


# --- When a timer is due (advice/scheduler.py) --------------------------------------------


def do_fire(request: AdviceRequest, now: datetime) -> AdviceStep:
    """Move an open request whose timer is due on: to the next person of its chain, or,
    when everyone has been asked, alert its holder again. Assumes the row is locked and
    was read under the lock (the scheduler's transaction)."""
    due_at = request.due_at
    assert due_at is not None
    lateness = {"due_at": due_at.isoformat()}
    found = next_holder(request, now)
    if found is None:
        delay = realert_delay(request.priority)
        request.due_at = now + delay if delay else None
        step = do_add_step(request, StepKind.REALERTED, actor=None, now=now, data=lateness)
        alerts.alert_holder(request, StepKind.REALERTED)
        return step
    previous = request.holder_id
    why = _hand_to(request, found, now)
    step = do_add_step(
        request,
        StepKind.ESCALATED,
        actor=None,
        now=now,
        data={**lateness, "why": why, "from": previous},
    )
    alerts.alert_holder(request, StepKind.ESCALATED)
    return step


# --- Reading -------------------------------------------------------------------------


def read_advice(actor: User, request_id: int) -> dict[str, Any]:
    """One request with its whole timeline, for its requester or its department's
    members. Audited: who looked at a request, and when, is part of its record."""
    found, _ = access.access_advice(actor, request_id)
    request = _reload(found)
    steps = list(request.steps.select_related("actor", "holder").order_by("number"))
    with transaction.atomic():
        record(
            "advice.viewed",
            actor=actor,
            department_id=request.department_id,
            object_type="advice_request",
            object_id=request.pk,
        )
    data = request_data(request, steps[-1] if steps else None)
    data["timeline"] = [step_data(step) for step in steps]
    return data


def list_advice(actor: User, department_id: int | None = None) -> dict[str, Any]:
    """The caller's requests (made, or put to them at some step), or a department's
    (for its members), open ones first, then newest first; at most LIST_LIMIT."""
    access.check_authenticated(actor)
    if department_id is not None:
        access.access_membership(actor, department_id)
        rows = AdviceRequest.objects.filter(department_id=department_id)
    else:
        asked = AdviceStep.objects.filter(holder=actor).values("request_id")
        rows = AdviceRequest.objects.filter(requester=actor) | AdviceRequest.objects.filter(
            pk__in=asked, department_id__in=access.member_department_ids(actor)
        )
    # Backwards, "open" comes before "cancelled" and "acknowledged".
    ordered = _loaded(rows).order_by("-status", "-created_at", "-pk")
    requests = list(ordered[: LIST_LIMIT + 1])
    return {
        "requests": [request_data(request) for request in requests[:LIST_LIMIT]],
        "more": len(requests) > LIST_LIMIT,
    }
