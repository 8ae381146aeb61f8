"""Threads, history, receipts and redaction over HTTP; posting is on the socket."""

from typing import Any

from ninja import Router, Schema
from ninja.responses import Status
from pydantic import Field

from chat import actions, redaction
from core.api_schemas.common import answers
from core.api_schemas.threads import (
    DepartmentThread,
    History,
    LatestReceipts,
    MessageReaders,
    Redacted,
    ThreadOut,
)
from core.protocol import MAX_REDACTION_REASON
from rounds.http import AuthedRequest

router = Router(tags=["threads"])


class RedactIn(Schema):
    reason: str | None = Field(default=None, max_length=MAX_REDACTION_REASON)


class CloseIn(Schema):
    reason: str | None = Field(default=None, max_length=MAX_REDACTION_REASON)


class ThreadIn(Schema):
    department: int
    patient: int
    title: str
    # Needed only for a patient neither admitted now nor discussed in one's departments
    # (a follow-up after a discharge): kept in the audit trail (docs/decisions.md).
    reason: str | None = Field(default=None, max_length=MAX_REDACTION_REASON)


@router.post("threads", response=answers(ThreadOut, 201))
def create_thread(request: AuthedRequest, body: ThreadIn) -> Status[dict[str, Any]]:
    return Status(
        201,
        actions.check_create_thread(
            request.user, body.department, body.patient, body.title, body.reason
        ),
    )


@router.get("departments/{department_id}/threads", response=answers(list[DepartmentThread]))
def department_threads(request: AuthedRequest, department_id: int) -> list[dict[str, Any]]:
    return actions.list_department_threads(request.user, department_id)


@router.get("patients/{patient_id}/threads", response=answers(list[ThreadOut]))
def patient_threads(request: AuthedRequest, patient_id: int) -> list[dict[str, Any]]:
    return actions.list_patient_threads(request.user, patient_id)


@router.post("threads/{thread_id}/close", response=answers(ThreadOut))
def close_thread(
    request: AuthedRequest, thread_id: int, body: CloseIn | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else None
    return actions.check_set_thread_closed(request.user, thread_id, closed=True, reason=reason)


@router.post("threads/{thread_id}/reopen", response=answers(ThreadOut))
def reopen_thread(request: AuthedRequest, thread_id: int) -> dict[str, Any]:
    return actions.check_set_thread_closed(request.user, thread_id, closed=False)


@router.get("threads/{thread_id}/messages", response=answers(History))
def history(
    request: AuthedRequest, thread_id: int, before_seq: int | None = None, limit: int = 50
) -> dict[str, Any]:
    return actions.check_history(request.user, thread_id, before_seq, limit)


@router.get("threads/{thread_id}/receipts", response=answers(LatestReceipts | MessageReaders))
def receipts(request: AuthedRequest, thread_id: int, seq: int | None = None) -> dict[str, Any]:
    return actions.check_receipts(request.user, thread_id, seq)


@router.post("messages/{message_id}/redact", response=answers(Redacted))
def redact_message(
    request: AuthedRequest, message_id: int, body: RedactIn | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else None
    return redaction.check_redact_message(request.user, message_id, reason)
