"""Consults over HTTP (docs/advice.md, "Consults"): thin views over chat.consults,
mounted at /api/consults. A consult is asked for with POST /api/advice."""

from typing import Any

from ninja import Router, Schema

from chat import consults
from core.api_schemas.common import answers
from core.api_schemas.consults import (
    ConsultKeys,
    ConsultList,
    ConsultTargets,
    KeyPublished,
    WrapsShared,
)
from core.outbound import ConsultOut
from rounds.http import AuthedRequest

router = Router(tags=["consults"])


class OpenIn(Schema):
    """The `guest` statement and the thread key's first version with its wraps."""

    statement: dict[str, Any]
    key_version: dict[str, Any]
    wraps: list[dict[str, Any]]


class EndIn(Schema):
    statement: dict[str, Any]


class WrapsIn(Schema):
    wraps: list[dict[str, Any]]


class VersionIn(Schema):
    key_version: dict[str, Any]
    wraps: list[dict[str, Any]]


@router.get("", response=answers(ConsultList))
def mine(request: AuthedRequest, department: int | None = None) -> dict[str, Any]:
    """The consults the caller is the guest of; with `department`, that department's
    (to its members)."""
    return consults.my_consults(request.user, department)


@router.get("/targets", response=answers(ConsultTargets))
def targets(request: AuthedRequest) -> dict[str, Any]:
    """The departments the caller may ask for a consult, with their on-call roles."""
    return consults.consult_targets(request.user)


@router.get("/{thread_id}", response=answers(ConsultOut))
def detail(request: AuthedRequest, thread_id: int) -> dict[str, Any]:
    return consults.read_consult(request.user, thread_id)


@router.post("/{thread_id}/open", response=answers(ConsultOut))
def open_consult(request: AuthedRequest, thread_id: int, body: OpenIn) -> dict[str, Any]:
    return consults.check_open_consult(
        request.user, thread_id, body.statement, body.key_version, body.wraps
    )


@router.post("/{thread_id}/end", response=answers(ConsultOut))
def end_consult(request: AuthedRequest, thread_id: int, body: EndIn) -> dict[str, Any]:
    return consults.check_end_consult(request.user, thread_id, body.statement)


@router.get("/{thread_id}/keys", response=answers(ConsultKeys))
def keys(request: AuthedRequest, thread_id: int) -> dict[str, Any]:
    return consults.consult_keys(request.user, thread_id)


@router.post("/{thread_id}/keys", response=answers(KeyPublished))
def publish_key(request: AuthedRequest, thread_id: int, body: VersionIn) -> dict[str, Any]:
    return consults.check_publish_thread_key(request.user, thread_id, body.key_version, body.wraps)


@router.post("/{thread_id}/keys/wraps", response=answers(WrapsShared))
def share_wraps(request: AuthedRequest, thread_id: int, body: WrapsIn) -> dict[str, Any]:
    """Earlier versions of the thread key, wrapped for a member who lacks them."""
    return consults.check_share_thread_wraps(request.user, thread_id, body.wraps)
