"""Patient look-up among the admitted."""

from datetime import date

from ninja import Router

from patients import actions

router = Router(tags=["patients"])


@router.get("")
def search(
    request, ipp: str | None = None, birth_date: date | None = None, name: str | None = None
):
    return actions.check_search_admitted(request.user, ipp=ipp, birth_date=birth_date, name=name)


@router.get("/{patient_id}")
def get_patient(request, patient_id: int):
    return actions.check_get_patient(request.user, patient_id)
