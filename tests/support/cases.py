"""Review cases: opened through the use case, so every check runs; the paths that name them."""

from typing import Any

from compliance.actions import check_open_case
from compliance.models import Case
from tests.support.hospital import make_user

CASES = "/api/compliance/cases"


def second_officer() -> Any:
    """compliance_fay: the second officer four-eyes needs."""
    from accounts.models import User

    found = User.objects.filter(username="compliance_fay").first()
    return found or make_user("compliance_fay", is_compliance_officer=True)


def open_case(officer: Any, reference: str = "INC-2026-042", **scope: Any) -> Case:
    """A case opened by `officer`; `scope` takes check_open_case's keywords
    (patient_id, department_id, user_id, date_from, date_to)."""
    opened = check_open_case(officer, reference, "Patient request of 2026-11-20", **scope)
    return Case.objects.get(pk=opened["id"])


def case_header(case: Any) -> dict[str, str]:
    """The header a library read or a download names its case with (a Case or its id),
    as Django's test client takes it."""
    return {"HTTP_X_ROUNDS_CASE": str(getattr(case, "pk", case))}


def report_path(case: Any, patient: Any, query: str = "") -> str:
    """The access report of `patient` under `case`, with `query` if any."""
    path = f"{CASES}/{case.pk}/patients/{patient.pk}/access-report"
    return f"{path}?{query}" if query else path
