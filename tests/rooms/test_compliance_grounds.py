"""The one rule for a compliance officer's grounds, shared by downloads and the library."""

import pytest

from chat.errors import RoundsError
from rooms.access import CASE_MAX, REASON_MAX, compliance_grounds

pytestmark = pytest.mark.django_db


def test_an_officer_naming_a_case_and_a_reason_has_grounds(hospital):
    assert compliance_grounds(hospital.compliance_dan, " INC-42 ", "patient request") is True


def test_no_grounds_given_is_no_compliance_access(hospital):
    assert compliance_grounds(hospital.compliance_dan, None, "  ") is False


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("INC-42", ""),
        ("", "patient request"),
        ("x" * (CASE_MAX + 1), "patient request"),
        ("INC-42", "x" * (REASON_MAX + 1)),
    ],
)
def test_incomplete_or_oversized_grounds_are_refused(hospital, case, reason):
    with pytest.raises(RoundsError) as refused:
        compliance_grounds(hospital.compliance_dan, case, reason)
    assert refused.value.code == "invalid_request"


def test_grounds_given_by_a_clinician_change_nothing(hospital):
    assert compliance_grounds(hospital.nurse_alice, "INC-42", "curious") is False
