"""The purge's clock and its runs, for the retention tests: patients discharged, the day
21 years on, and the purge run (or killed after one batch) on that day."""

from datetime import timedelta
from typing import Any

from django.utils import timezone

# Retention is 20 years after the last care (today, in these tests): a day 21 years
# on is past it for both patients of the hospital (born 1985 and 1951).
FUTURE = timezone.localdate().replace(year=timezone.localdate().year + 21)


def discharge(*patients: Any) -> None:
    """End the patients' stays yesterday: their retention now has a date."""
    from patients.models import Admission

    Admission.objects.filter(patient__in=patients).update(
        discharged_at=timezone.now() - timedelta(days=1)
    )


def run(**kwargs: Any):
    from retention.purge import purge_expired

    lines: list[str] = []
    report = purge_expired(today=kwargs.pop("today", FUTURE), say=lines.append, **kwargs)
    report.lines = lines  # type: ignore[attr-defined]
    return report


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
