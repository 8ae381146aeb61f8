"""How long a patient's conversations are kept: France, Public Health Code R.1112-7.

A medical record is kept 20 years after the patient's last stay or
consultation. If those 20 years end before the patient's 28th birthday, it
is kept until that birthday. If the patient died less than 10 years after
their last stay, it is kept 10 years after the death, whatever the rest
says. A legal proceeding suspends the deadline (a legal hold, which the
purge honours on its own). The durations are institution settings
(`ROUNDS_RETENTION_*`, docs/operations.md).

`retained_until` is pure: the dates in, the date out (and the rule's sentence, in
the active language: the request's, for the API that shows it). `patient_retention`
reads what Rounds knows of a patient. A stay still open keeps the record
with no date. A patient with no stay Rounds knows of is counted from the
last activity of their threads: the conversation is itself the trace of
care, and the purge must never come before the evidence of care.
"""

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from patients.models import Patient


@dataclass(frozen=True)
class Rules:
    """The institution's durations, in years (R.1112-7 by default)."""

    years_after_last_stay: int = 20
    until_age: int = 28
    death_window_years: int = 10
    years_after_death: int = 10

    @classmethod
    def from_settings(cls) -> "Rules":
        return cls(
            years_after_last_stay=settings.ROUNDS_RETENTION_YEARS,
            until_age=settings.ROUNDS_RETENTION_UNTIL_AGE,
            death_window_years=settings.ROUNDS_RETENTION_DEATH_WINDOW_YEARS,
            years_after_death=settings.ROUNDS_RETENTION_YEARS_AFTER_DEATH,
        )


@dataclass(frozen=True)
class Retention:
    """A patient's retention: until when (None: a stay is open), and which rule says so."""

    until: date | None
    rule: str
    last_care: date | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "until": self.until.isoformat() if self.until else None,
            "rule": self.rule,
            "last_care": self.last_care.isoformat() if self.last_care else None,
        }


def add_years(day: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 1 March (the later day: a record
    is never purged a day early)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def retained_until(
    last_care: date, birth_date: date, died_on: date | None, rules: Rules = Rules()
) -> tuple[date, str]:
    """The last day the record is kept, and the rule that decided it, in the active
    language."""
    if died_on is not None and died_on < add_years(last_care, rules.death_window_years):
        return (
            add_years(died_on, rules.years_after_death),
            _(
                "%(years)s years after the patient's death, which came less than %(window)s "
                "years after the last stay or consultation (R.1112-7)"
            )
            % {"years": rules.years_after_death, "window": rules.death_window_years},
        )
    after_stay = add_years(last_care, rules.years_after_last_stay)
    birthday = add_years(birth_date, rules.until_age)
    if after_stay < birthday:
        return (
            birthday,
            # Translators: %(age)sth is an ordinal (28th); the rule of a retention banner.
            _(
                "until the patient's %(age)sth birthday, later than %(years)s years after "
                "the last stay or consultation (R.1112-7)"
            )
            % {"age": rules.until_age, "years": rules.years_after_last_stay},
        )
    return (
        after_stay,
        _("%(years)s years after the last stay or consultation (R.1112-7)")
        % {"years": rules.years_after_last_stay},
    )


def _day(moment: datetime | None) -> date | None:
    return timezone.localdate(moment) if moment is not None else None


def patient_retention(patient: Patient, rules: Rules | None = None) -> Retention:
    """What Rounds knows of `patient`'s care, turned into a retention date."""
    from chat.models import Message

    rules = rules or Rules.from_settings()
    # A cancelled stay (A11, A12; FHIR entered-in-error) was never care.
    stays = patient.admissions.filter(cancelled_at__isnull=True)
    if stays.filter(discharged_at__isnull=True).exists():
        return Retention(None, _("kept while the patient's stay lasts"), None)
    last_stay = _day(stays.aggregate(last=Max("discharged_at"))["last"])
    last_message = _day(
        Message.objects.filter(thread__patient=patient).aggregate(last=Max("created_at"))["last"]
    )
    last_thread = _day(patient.threads.aggregate(last=Max("created_at"))["last"])
    known = [d for d in (last_stay, last_message, last_thread) if d is not None]
    if not known:
        return Retention(None, _("no stay or conversation known yet"), None)
    last_care = max(known)
    until, rule = retained_until(last_care, patient.birth_date, patient.died_on, rules)
    return Retention(until, rule, last_care)
