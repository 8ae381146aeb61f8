"""Expired patients for the purge: their stays ended, and the clock is set 21 years on
(tests/retention/support.py).

The blob stores of tests/conftest.py (disk, and a real S3 server) are the
media tests' ones, so the purge's blob deletion is tested on both.
"""

import pytest

from tests.retention.support import discharge
from tests.support import Hospital


@pytest.fixture
def expired(hospital: Hospital) -> Hospital:
    """Both patients discharged: every thread of the hospital is past retention on FUTURE."""
    discharge(hospital.patient, hospital.other_patient)
    return hospital
