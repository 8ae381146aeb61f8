"""Advice requests over HTTP: thin views over advice.actions, mounted at /api/advice
(rounds/http.py). The socket's `advice.updated` event announces every change."""

from typing import Any, Literal

from ninja import Router, Schema
from ninja.responses import Status

from advice import actions
from core.api_schemas.advice import AdviceDetail, AdviceList, AdviceRequest
from core.api_schemas.common import ERROR_STATUSES, ErrorBody, answers
from rounds.http import AuthedRequest

router = Router(tags=["advice"])


class AskIn(Schema):
    """The caller's own message, already posted in the patient's thread, made a request
    to one person or one on-call role of that department."""

    message: int
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
