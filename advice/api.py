"""Advice requests over HTTP: thin views over advice.actions, mounted at /api/advice
(rounds/http.py). The socket's `advice.updated` event announces every change."""

from typing import Any, Literal

from ninja import Router, Schema
from ninja.responses import Status

from advice import actions
from core.api_schemas.advice import AdviceDetail, AdviceList, AdviceRequest
from core.api_schemas.common import ERROR_STATUSES, ErrorBody, answers
from core.errors import N_, InvalidRequest
from rounds.http import AuthedRequest

router = Router(tags=["advice"])


class ConsultIn(Schema):
    """A consult: the department asked, which the caller is not a member of, and the patient."""

    department: int
    patient: int


class AskIn(Schema):
    """The caller's own message, already posted in the patient's thread, made a request
    to one person or one on-call role of that department; or, with `consult` instead
    of `message`, a consult of another department (docs/advice.md, "Consults")."""

    message: int | None = None
    consult: ConsultIn | None = None
    priority: Literal["routine", "urgent", "emergency"]
    to_user: int | None = None
    to_role: int | None = None


class AnswerIn(Schema):
    answer: Literal["on_it", "call_me"]


class PassIn(Schema):
    to_user: int | None = None
    to_role: int | None = None


@router.post("", response={200: AdviceRequest, 201: AdviceRequest, ERROR_STATUSES: ErrorBody})
def ask(request: AuthedRequest, body: AskIn) -> Status[dict[str, Any]]:
    """201 when made, 200 when the same request was already made (a retry)."""
    if (body.message is None) == (body.consult is None):
        raise InvalidRequest(N_("Name either your message or a consult, not both."))
    if body.consult is not None:
        made, created = actions.check_request_consult(
            request.user,
            body.consult.department,
            body.consult.patient,
            body.priority,
            body.to_user,
            body.to_role,
        )
    else:
        assert body.message is not None  # exactly one of the two, above
        made, created = actions.check_request_advice(
            request.user, body.message, body.priority, body.to_user, body.to_role
        )
    return Status(201 if created else 200, made)


@router.get("", response=answers(AdviceList))
def requests(request: AuthedRequest, department: int | None = None) -> dict[str, Any]:
    return actions.list_advice(request.user, department)


@router.get("/{request_id}", response=answers(AdviceDetail))
def detail(request: AuthedRequest, request_id: int) -> dict[str, Any]:
    return actions.read_advice(request.user, request_id)


@router.post("/{request_id}/acknowledge", response=answers(AdviceRequest))
def acknowledge(request: AuthedRequest, request_id: int, body: AnswerIn) -> dict[str, Any]:
    return actions.check_acknowledge(request.user, request_id, body.answer)


@router.post("/{request_id}/pass", response=answers(AdviceRequest))
def pass_on(request: AuthedRequest, request_id: int, body: PassIn) -> dict[str, Any]:
    return actions.check_pass(request.user, request_id, body.to_user, body.to_role)


@router.post("/{request_id}/cancel", response=answers(AdviceRequest))
def cancel(request: AuthedRequest, request_id: int) -> dict[str, Any]:
    return actions.check_cancel(request.user, request_id)
