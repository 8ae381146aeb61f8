"""FHIR R4 `Patient` and `Encounter` resources applied to patients and stays, with the
rules of patients/identity.py (the same as HL7 v2 ADT, interop/adt.py).

Parsed with `fhir.resources.R4B`: fhir.resources 8 ships R5 (its default), R4B and
STU3, no R4. Patient and Encounter are the same in R4 (4.0.1) and R4B (4.3.0), so R4
JSON parses as it stands; R5 would not (its `Encounter.class` is a list). Only the
Patients and Encounters of a Bundle are parsed: an entry of another type is skipped
and counted, so a resource R4B changed (MedicinalProduct…) cannot fail the rest.

One resource, one transaction, audited with `Source("fhir", "<ResourceType>/<id>")`:
a refused resource (`IdentityRefused`, with its reason in the report) changes
nothing, and an Encounter refused (an unmapped location) does not hold back its
patient's identity. Patients are applied before Encounters; a Patient whose merge
link names a record not known yet waits for the end of the Patients.
docs/interop-fhir.md.
"""

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from interop.merge import do_merge
from patients.identity import (
    IdentityRefused,
    Movement,
    PatientFacts,
    Source,
    department_for,
    do_admit,
    do_cancel_admit,
    do_discharge,
    do_record_patient,
    do_transfer,
    find_patient,
)
from patients.models import Admission, Patient, Sex

DEFAULT_IPP_SYSTEM = "urn:oid:1.2.250.1.71.4.2.7"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
BUNDLE_TYPES = {"collection", "searchset", "transaction"}
SEXES = {"male": Sex.MALE, "female": Sex.FEMALE, "other": Sex.OTHER, "unknown": Sex.UNKNOWN}
# v3 ActCode encounter classes; any other is an outpatient visit.
INPATIENT_CLASSES = {"IMP", "ACUTE", "NONAC", "SS"}
PRE_ADMISSION_CLASSES = {"PRENC"}
OPEN_STATUSES = {"arrived", "triaged", "in-progress", "onleave"}
CANCEL_STATUSES = {"cancelled", "entered-in-error"}
MERGE_LINKS = {"replaced-by", "replaces"}
_PATIENT_REFERENCE = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def ipp_system() -> str:
    return str(getattr(settings, "ROUNDS_FHIR_IPP_SYSTEM", DEFAULT_IPP_SYSTEM))


@dataclass(frozen=True)
class Outcome:
    """What happened to one resource (or one search request): applied, or why not."""

    reference: str
    applied: bool
    detail: str


@dataclass
class ImportReport:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # resourceType → count

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.applied]

    def lines(self) -> Iterator[str]:
        for outcome in self.outcomes:
            verdict = "applied" if outcome.applied else "REFUSED"
            yield f"{outcome.reference}: {verdict}, {outcome.detail}"
        skipped = ", ".join(f"{count} {kind}" for kind, count in sorted(self.skipped.items()))
        applied = len(self.outcomes) - len(self.refused)
        yield f"{applied} applied, {len(self.refused)} refused, skipped: {skipped or 'none'}"


@dataclass(frozen=True)
class Entry:
    """One resource as it came, with the Bundle's fullUrl (a reference may use it)."""

    resource: dict[str, Any]
    full_url: str = ""

    @property
    def reference(self) -> str:
        kind = self.resource.get("resourceType", "?")
        return f"{kind}/{self.resource.get('id') or self.full_url or '(no id)'}"[:64]


def entries_of(document: Any, report: ImportReport) -> Iterator[Entry]:
    """The resources of a JSON document: itself, or a Bundle's entries (nested Bundles too)."""
    if not isinstance(document, dict) or "resourceType" not in document:
        report.outcomes.append(
            Outcome("(document)", False, "not a FHIR resource (no resourceType)")
        )
        return
    if document["resourceType"] != "Bundle":
        yield Entry(document)
        return
    if document.get("type") not in BUNDLE_TYPES:
        report.outcomes.append(
            Outcome(
                f"Bundle/{document.get('id') or '(no id)'}",
                False,
                f"Bundle.type {document.get('type')!r} is not read "
                f"({', '.join(sorted(BUNDLE_TYPES))} are)",
            )
        )
        return
    for item in document.get("entry") or []:
        resource = item.get("resource") if isinstance(item, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Bundle":
            yield from entries_of(resource, report)
        elif isinstance(resource, dict):
            yield Entry(resource, str(item.get("fullUrl") or ""))


class FhirImport:
    """One import run: the FHIR ids of its Patients (for references), its report."""

    def __init__(self) -> None:
        self.report = ImportReport()
        self.ipps: dict[str, str] = {}  # "Patient/<id>" or a fullUrl → IPP
        self.waiting: list[tuple[Entry, FhirPatient]] = []

    def do_entries(self, entries: Iterable[Entry]) -> None:
        """Patients first, then Encounters; other types skipped and counted."""
        encounters = []
        for entry in entries:
            kind = entry.resource.get("resourceType")
            if kind == "Patient":
                self.do_patient_entry(entry)
            elif kind == "Encounter":
                encounters.append(entry)
            else:
                self.report.skipped[str(kind)] += 1
        self.finish_patients()
        for entry in encounters:
            self.do_encounter_entry(entry)

    def do_patient_entry(self, entry: Entry) -> None:
        """Apply a Patient, or keep it for `finish_patients` when the record its merge
        link names is not known yet (it may come later in this import)."""
        patient = self._parse(entry, FhirPatient)
        if patient is None:
            return
        try:
            ipp = ipp_of(patient)
        except IdentityRefused as refused:
            self.report.outcomes.append(Outcome(entry.reference, False, refused.message))
            return
        for key in (f"Patient/{patient.id}" if patient.id else "", entry.full_url):
            if key:
                self.ipps[key] = ipp
        if any(self._other_record(link) is None for link in merge_links(patient)):
            self.waiting.append((entry, patient))
            return
        self._apply(entry, partial(self._do_patient, patient, ipp))

    def finish_patients(self) -> None:
        """The Patients that waited: survivors (`replaces`) before merged records."""
        waiting, self.waiting = self.waiting, []
        waiting.sort(key=lambda item: merge_links(item[1])[0].type != "replaces")
        for entry, patient in waiting:
            self._apply(entry, partial(self._do_patient, patient, ipp_of(patient)))

    def do_encounter_entry(self, entry: Entry) -> None:
        encounter = self._parse(entry, Encounter)
        if encounter is not None:
            self._apply(entry, partial(self._do_encounter, encounter))

    def do_entry(self, entry: Entry) -> None:
        """One entry of a search page, applied at once (a server's Patients are all
        searched before its Encounters)."""
        kind = entry.resource.get("resourceType")
        if kind == "Patient":
            self.do_patient_entry(entry)
        elif kind == "Encounter":
            self.do_encounter_entry(entry)
        else:
            self.report.skipped[str(kind)] += 1

    def refuse(self, reference: str, reason: str) -> None:
        self.report.outcomes.append(Outcome(reference, False, reason))

    def _parse(self, entry: Entry, model: Any) -> Any:
        try:
            return model.model_validate(entry.resource)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(resource)"
            reason = f"not a valid R4 {model.__name__}: {where}: {first['msg']}"
            self.report.outcomes.append(Outcome(entry.reference, False, reason[:300]))
            return None

    def _apply(self, entry: Entry, action: Any) -> None:
        source = Source("fhir", entry.reference)
        try:
            with transaction.atomic():
                detail = action(source)
        except IdentityRefused as refused:
            self.report.outcomes.append(Outcome(entry.reference, False, refused.message))
            return
        self.report.outcomes.append(Outcome(entry.reference, True, detail))

    def _other_record(self, link: Any) -> Patient | None:
        """The record a merge link names, if Rounds knows it."""
        ipp = self._ipp_of_reference(link.other)
        if ipp is not None:
            return Patient.objects.filter(ipp=ipp).first()
        return known_by_fhir_id(link.other.reference or "")

    def _ipp_of_reference(self, reference: Any) -> str | None:
        identifier = reference.identifier
        if identifier is not None and identifier.system == ipp_system() and identifier.value:
            return str(identifier.value)
        text = reference.reference or ""
        if text in self.ipps:
            return self.ipps[text]
        match = _PATIENT_REFERENCE.search(text)
        return self.ipps.get(f"Patient/{match.group(1)}") if match else None

    def _do_patient(self, patient: FhirPatient, ipp: str, source: Source) -> str:
        links = merge_links(patient)
        if len(links) > 1:
            raise IdentityRefused(
                "more than one replaced-by / replaces link: merge them one by one"
            )
        facts = patient_facts(patient, ipp)
        if not links:
            record_with_fhir_id(facts, source, patient.id)
            return f"IPP {ipp} recorded"
        link, other = links[0], self._other_record(links[0])
        if link.type == "replaces":
            surviving = record_with_fhir_id(facts, source, patient.id)
            if other is None:
                return f"IPP {ipp} recorded; the record it replaces is unknown, nothing merged"
            moved = do_merge(surviving, other, source)
            return f"IPP {ipp} recorded, IPP {other.ipp} merged into it ({_counts(moved)})"
        if other is None:
            raise IdentityRefused(
                "Patient.link replaced-by names a record Rounds does not know "
                f"(an identifier of system {ipp_system()}, or a Patient of this import)"
            )
        surviving = find_patient(other.ipp) or other
        current = find_patient(ipp)
        if current is not None and current.pk == surviving.pk:
            return f"IPP {ipp} already merged into IPP {surviving.ipp}"
        merged = record_with_fhir_id(facts, source, patient.id)
        moved = do_merge(surviving, merged, source)
        return f"IPP {ipp} merged into IPP {surviving.ipp} ({_counts(moved)})"

    def _do_encounter(self, encounter: Encounter, source: Source) -> str:
        visit = visit_number(encounter)
        patient = self._subject(encounter)
        status = encounter.status
        if status in CANCEL_STATUSES:
            if not Admission.objects.filter(
                patient=patient, visit_number=visit, cancelled_at__isnull=True
            ).exists():
                return f"visit {visit}: {status}, no stay to cancel"
            at = _meta_time(encounter) or timezone.now()
            cancelled = do_cancel_admit(patient, visit, at, source)
            return f"visit {visit}: {status}, {cancelled} stay(s) cancelled"
        if status not in OPEN_STATUSES and status != "finished":
            raise IdentityRefused(
                f"Encounter.status {status!r} is not a stay Rounds records "
                "(arrived, triaged, in-progress, onleave, finished, cancelled, entered-in-error)"
            )
        location, located_at = location_of(encounter)
        department_for(location)  # an unmapped location is refused, never guessed
        start = encounter.period.start if encounter.period else None
        if start is None and located_at is None:
            raise IdentityRefused("Encounter.period.start (when the stay began) is missing")
        if located_at is not None:
            at = fhir_time(located_at, "Encounter.location[].period.start")
        else:
            at = fhir_time(start, "Encounter.period.start")
        movement = Movement(visit, location, at, kind_of(encounter))
        detail = self._do_stay(patient, movement, source)
        if status == "finished":
            end = encounter.period.end if encounter.period else None
            if end is None:
                raise IdentityRefused("a finished Encounter needs period.end (the discharge)")
            if (
                Admission.objects.filter(
                    patient=patient, visit_number=visit, cancelled_at__isnull=True
                )
                .filter(discharged_at__isnull=True)
                .exists()
            ):
                do_discharge(patient, visit, fhir_time(end, "Encounter.period.end"), source)
                detail += ", discharged"
        return detail

    def _do_stay(self, patient: Patient, movement: Movement, source: Source) -> str:
        """The stay at `movement`: the same patient, visit, location and start is the
        same stay (a resource imported again); another location of an open visit is a
        transfer."""
        same = Admission.objects.filter(
            patient=patient,
            visit_number=movement.visit_number,
            location=movement.location,
            admitted_at=movement.at,
            cancelled_at__isnull=True,
        ).exists()
        where = f"visit {movement.visit_number} at {movement.location}"
        if same:
            return f"{where}: already recorded"
        current = Admission.objects.filter(
            patient=patient,
            visit_number=movement.visit_number,
            discharged_at__isnull=True,
            cancelled_at__isnull=True,
        ).first()
        if current is not None and current.location != movement.location:
            do_transfer(patient, movement, source)
            return f"{where}: transferred from {current.location}"
        if current is not None:
            return f"{where}: already open since {current.admitted_at:%Y-%m-%d %H:%M} UTC"
        do_admit(patient, movement, source)
        return f"{where}: admitted ({movement.kind})"

    def _subject(self, encounter: Encounter) -> Patient:
        subject = encounter.subject
        if subject is None:
            raise IdentityRefused("Encounter.subject (the patient) is missing")
        ipp = self._ipp_of_reference(subject)
        patient = find_patient(ipp) if ipp else known_by_fhir_id(subject.reference or "")
        if patient is None:
            named = subject.reference or (subject.identifier and subject.identifier.value) or "?"
            raise IdentityRefused(
                f"Encounter.subject {named} is not a known patient (import its Patient first, "
                f"or name it by an identifier of system {ipp_system()})"
            )
        return patient


def merge_links(patient: FhirPatient) -> list[Any]:
    return [link for link in patient.link or [] if link.type in MERGE_LINKS]


def known_by_fhir_id(reference: str) -> Patient | None:
    """A Patient of an earlier FHIR import, by the `Patient/<id>` it was imported as."""
    match = _PATIENT_REFERENCE.search(reference)
    if match is None:
        return None
    patient = Patient.objects.filter(fhir_id=match.group(1)).order_by("-pk").first()
    return find_patient(patient.ipp) if patient else None


def record_with_fhir_id(facts: Any, source: Source, fhir_id: str | None) -> Patient:
    """`do_record_patient`, remembering the resource id the record came as."""
    patient = do_record_patient(facts, source)
    if fhir_id and patient.fhir_id != fhir_id[:64]:
        Patient.objects.filter(pk=patient.pk).update(fhir_id=fhir_id[:64])
        patient.fhir_id = fhir_id[:64]
    return patient


def ipp_of(patient: FhirPatient) -> str:
    """The IPP: the identifier of the configured system; failing that, one without a
    system whose type is PI (v2-0203), the patient administration system's own."""
    system = ipp_system()
    identifiers = patient.identifier or []
    chosen = [i for i in identifiers if i.system == system and i.value]
    if not chosen:
        chosen = [i for i in identifiers if not i.system and i.value and _is_pi(i)]
    if not chosen:
        found = ", ".join(sorted({i.system or "(none)" for i in identifiers})) or "none"
        raise IdentityRefused(f"no IPP identifier (system {system}); systems found: {found}")
    value = str(chosen[0].value).strip()
    if len(value) > 32:
        raise IdentityRefused(f"the IPP {value[:40]!r} is longer than 32 characters")
    return value


def _is_pi(identifier: Any) -> bool:
    codings = identifier.type.coding if identifier.type and identifier.type.coding else []
    return any(c.code == "PI" and c.system in (None, V2_0203) for c in codings)


def patient_facts(patient: FhirPatient, ipp: str) -> PatientFacts:
    names = patient.name or []
    name = next((n for n in names if n.use == "official"), names[0] if names else None)
    if name is None or not name.family:
        raise IdentityRefused("Patient.name has no family name")
    if patient.birthDate is None:
        raise IdentityRefused("Patient.birthDate is missing")
    if not isinstance(patient.birthDate, date):
        raise IdentityRefused(f"Patient.birthDate {patient.birthDate!r} is not a full date")
    return PatientFacts(
        ipp=ipp,
        family_name=name.family[:120],
        given_name=str((name.given[0] if name.given else "") or "")[:120],
        birth_date=patient.birthDate,
        sex=SEXES.get(patient.gender or "", Sex.UNKNOWN),
        died_on=died_on(patient, ipp),
    )


def died_on(patient: FhirPatient, ipp: str) -> date | None:
    """deceasedDateTime's day in the hospital's time zone; deceasedBoolean true without
    a date keeps the day already known, else the day of this import (never earlier than
    the death: retention that counts from it is never shortened)."""
    if patient.deceasedDateTime is not None:
        moment = fhir_time(patient.deceasedDateTime, "Patient.deceasedDateTime")
        return moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    if patient.deceasedBoolean:
        known = Patient.objects.filter(ipp=ipp).values_list("died_on", flat=True).first()
        return known or timezone.localdate()
    return None


def visit_number(encounter: Encounter) -> str:
    for identifier in encounter.identifier or []:
        if identifier.value:
            return str(identifier.value)[:64]
    if not encounter.id:
        raise IdentityRefused("the Encounter has neither an identifier nor an id")
    return str(encounter.id)[:64]


def location_of(encounter: Encounter) -> tuple[str, Any]:
    """The code of the current location (the `active` one, else the last listed), and
    when the patient arrived there."""
    places = [p for p in encounter.location or [] if p.location is not None]
    if not places:
        raise IdentityRefused("Encounter.location is missing (where the patient stays)")
    place = next((p for p in places if p.status == "active"), places[-1])
    identifier = place.location.identifier
    code = place.location.display or (identifier.value if identifier else None)
    if not code:
        raise IdentityRefused("Encounter.location[].location has neither display nor identifier")
    return str(code)[:120], place.period.start if place.period else None


def kind_of(encounter: Encounter) -> str:
    code = encounter.class_fhir.code if encounter.class_fhir else None
    if code in INPATIENT_CLASSES:
        return "inpatient"
    if code in PRE_ADMISSION_CLASSES:
        return "pre-admission"
    return "outpatient"


def fhir_time(value: Any, what: str) -> datetime:
    """An aware datetime: a date alone is midnight in the hospital's time zone; a
    partial date (a year, a month) is refused."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), ZoneInfo(settings.TIME_ZONE)).astimezone(UTC)
    raise IdentityRefused(f"{what} {value!r} is not a full date")


def _meta_time(resource: Any) -> datetime | None:
    updated = resource.meta.lastUpdated if resource.meta else None
    return updated.astimezone(UTC) if isinstance(updated, datetime) else None


def _counts(moved: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in moved.items() if count) or "nothing moved"
