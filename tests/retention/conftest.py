"""Expired patients for the purge: their stays ended, and the clock is set 21 years on.

The blob stores of tests/media (disk, and a real S3 server) are reused, so
the purge's blob deletion is tested on both.
"""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from chat.actions import check_post_message
from tests.media.conftest import blob_store, moto_endpoint, uploader  # noqa: F401
from tests.support import PLAINTEXT, Hospital, sealed

# Retention is 20 years after the last care (today, in these tests): a day 21 years
# on is past it for both patients of the hospital (born 1985 and 1951).
FUTURE = timezone.localdate().replace(year=timezone.localdate().year + 21)


def discharge(*patients: Any) -> None:
    """End the patients' stays yesterday: their retention now has a date."""
    from patients.models import Admission

    Admission.objects.filter(patient__in=patients).update(
        discharged_at=timezone.now() - timedelta(days=1)
    )


def post(h: Hospital, who: str, thread: Any, cmid: str, text: bytes = PLAINTEXT) -> int:
    ack = check_post_message(h.user(who), thread.pk, cmid, sealed(h, who, thread, cmid, text))
    return ack["message_id"]


def run(**kwargs: Any):
    from retention.purge import purge_expired

    lines: list[str] = []
    report = purge_expired(today=kwargs.pop("today", FUTURE), say=lines.append, **kwargs)
    report.lines = lines  # type: ignore[attr-defined]
    return report


@pytest.fixture
def expired(hospital: Hospital) -> Hospital:
    """Both patients discharged: every thread of the hospital is past retention on FUTURE."""
    discharge(hospital.patient, hospital.other_patient)
    return hospital


def crash_after_one_batch(monkeypatch: Any) -> Any:
    """The purge killed after its first batch of messages, as a crash mid-thread would;
    returns the real batch function, to put back."""
    from retention import purge

    real = purge._purge_messages
    calls = {"n": 0}

    def crashing(record, batch):
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("killed")
        return real(record, batch)

    monkeypatch.setattr(purge, "_purge_messages", crashing)
    return real
