"""Patient look-up among the admitted.

Search criteria travel in a POST body, never in the URL, so an IPP, a name
or a birth date does not land in access logs or proxy logs.
"""

from datetime import date
from typing import Any

from ninja import Router, Schema

from core.api_schemas.common import answers
from core.api_schemas.threads import Patient, PatientRecord
from patients import actions
from rounds.http import AuthedRequest

router = Router(tags=["patients"])


class SearchIn(Schema):
    ipp: str | None = None
    birth_date: date | None = None
    name: str | None = None


@router.post("/search", response=answers(list[Patient]))
def search(request: AuthedRequest, body: SearchIn) -> list[dict[str, Any]]:
    return actions.check_search_admitted(
        request.user, ipp=body.ipp, birth_date=body.birth_date, name=body.name
    )


@router.get("/{patient_id}", response=answers(PatientRecord))
def get_patient(request: AuthedRequest, patient_id: int) -> dict[str, Any]:
    return actions.check_get_patient(request.user, patient_id)
