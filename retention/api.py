"""Legal holds over HTTP (docs/compliance.md, "Legal holds"): parse, call one action, reply."""

from typing import Any

from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import ConfigDict, Field

from core.api_schemas.common import answers
from core.api_schemas.compliance import Hold
from retention import actions
from retention.actions import REASON_MAX
from rounds.http import AuthedRequest

router = Router(tags=["retention"])


class HoldIn(Schema):
    model_config = ConfigDict(extra="forbid")

    case: int
    reason: str = Field(max_length=REASON_MAX * 2)
    patient: int | None = None
    thread: int | None = None
    user: int | None = None


class ReleaseIn(Schema):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(max_length=REASON_MAX * 2)


class Filter(Schema):
    active: bool | None = None


@router.get("/holds", response=answers(list[Hold]))
def holds(request: AuthedRequest, filters: Query[Filter]) -> list[dict[str, Any]]:
    return actions.list_holds(request.user, active=filters.active)


@router.post("/holds", response=answers(Hold, 201))
def place_hold(request: AuthedRequest, body: HoldIn) -> Status[dict[str, Any]]:
    return Status(
        201,
        actions.check_place_hold(
            request.user,
            body.case,
            body.reason,
            patient_id=body.patient,
            thread_id=body.thread,
            user_id=body.user,
        ),
    )


@router.post("/holds/{hold_id}/release", response=answers(Hold))
def release_hold(request: AuthedRequest, hold_id: int, body: ReleaseIn) -> dict[str, Any]:
    return actions.check_release_hold(request.user, hold_id, body.reason)
