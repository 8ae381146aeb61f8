"""HL7 v2 ADT messages: read (python-hl7), applied to patients and stays, acknowledged.

One message, one transaction: it is applied whole or not at all, and kept
(`AdtMessage`) either way, keyed by its control ID (MSH-10). A message sent again
after it was applied is acknowledged as before and not applied twice; one sent
again after a refusal is tried again (the location table may have been fixed).
The acknowledgement is AA (applied), AE (the content cannot be applied: unknown
patient identifier authority, unmapped location, a discharge before its
admission…) or AR (not an ADT message Rounds can read: structure, encoding,
event), with the reason in MSA-3 and ERR. docs/interop.md.
"""

import logging
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import hl7
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from interop.merge import do_merge
from patients.identity import (
    IdentityRefused,
    Movement,
    PatientFacts,
    Source,
    do_admit,
    do_cancel_admit,
    do_cancel_discharge,
    do_cancel_transfer,
    do_discharge,
    do_record_patient,
    do_transfer,
    find_patient,
)
from patients.models import AdtMessage, Patient, Sex
from patients.statements import keep_message, message_outcome

log = logging.getLogger(__name__)

# What each event does; A05 (pre-admission) records the patient, the stay comes with A01.
EVENTS = {
    "A01": "admit",
    "A02": "transfer",
    "A03": "discharge",
    "A04": "admit",
    "A05": "register",
    "A08": "update",
    "A11": "cancel_admit",
    "A12": "cancel_transfer",
    "A13": "cancel_discharge",
    "A28": "register",
    "A31": "register",
    "A40": "merge",
}
KINDS = {"A01": "inpatient", "A04": "outpatient"}
CHARSETS = {"": "ascii", "ASCII": "ascii", "8859/1": "latin-1", "UNICODE UTF-8": "utf-8"}
ENCODING_CHARACTERS = "^~\\&"
SEXES = {"F": Sex.FEMALE, "M": Sex.MALE, "O": Sex.OTHER, "A": Sex.OTHER, "U": Sex.UNKNOWN}
_HL7_DELIMITERS = re.compile(r"[|^~\\&\r\n]")


class Rejected(Exception):
    """AR: the message is not one Rounds can read (structure, encoding, event)."""

    def __init__(self, reason: str, error_code: str = "207") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_code = error_code  # HL7 table 0357


@dataclass(frozen=True)
class Answer:
    """The acknowledgement of one message: its code, reason, and the ACK's text."""

    code: str  # AA, AE, AR
    reason: str
    ack: str


def decode(raw: bytes) -> str:
    """The message's text in the character set MSH-18 names (ASCII when it names none)."""
    head = raw.split(b"\r", 1)[0].decode("latin-1")
    if not head.startswith("MSH") or len(head) < 8:
        raise Rejected("the message does not begin with an MSH segment", "100")
    fields = head.split(head[3])
    charset = fields[17].strip() if len(fields) > 17 else ""
    codec = CHARSETS.get(charset)
    if codec is None:
        raise Rejected(f"unsupported character set {charset!r} (MSH-18)", "203")
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as error:
        raise Rejected(f"the message is not valid {charset or 'ASCII'}", "203") from error


def segments(text: str) -> str:
    """The message with its segments ended by CR alone, as HL7 has them (a file's LF or
    CRLF accepted), none empty at either end: the text parsed, and the text kept."""
    return text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")


def parse(text: str) -> Any:
    """The message (its `segments` already) parsed, with standard delimiters; Rejected
    otherwise."""
    if not text.startswith("MSH") or text[3:8] != "|" + ENCODING_CHARACTERS:
        raise Rejected("MSH-1 and MSH-2 must be |^~\\& (the standard encoding characters)", "207")
    try:
        return hl7.parse(text)
    except Exception as error:  # python-hl7 raises plain exceptions on broken structure
        raise Rejected("the message cannot be parsed", "100") from error


def field(message: Any, segment: str, number: int, component: int = 1, repeat: int = 1) -> str:
    """One component of a field of the first `segment`, "" when absent."""
    try:
        value = message.extract_field(segment, 1, number, repeat, component)
    except (KeyError, IndexError):
        return ""
    return str(value).strip()


def has_segment(message: Any, name: str) -> bool:
    try:
        message.segment(name)
    except KeyError:
        return False
    return True


def hl7_datetime(text: str, what: str) -> datetime:
    """An HL7 DTM (YYYYMMDD[HHMM[SS]][+ZZZZ]); local time of the hospital when no offset."""
    match = re.fullmatch(r"(\d{8})(\d{4})?(\d{2})?(?:\.\d+)?([+-]\d{4})?", text)
    if not match:
        raise IdentityRefused(f"{what} is not an HL7 date and time: {text!r}")
    day, hm, seconds, offset = match.groups()
    stamp = datetime.strptime(day + (hm or "0000") + (seconds or "00"), "%Y%m%d%H%M%S")
    if offset:
        return datetime.strptime(
            stamp.strftime("%Y%m%d%H%M%S") + offset, "%Y%m%d%H%M%S%z"
        ).astimezone(UTC)
    return stamp.replace(tzinfo=ZoneInfo(settings.TIME_ZONE)).astimezone(UTC)


def hl7_date(text: str, what: str) -> date:
    try:
        return datetime.strptime(text[:8], "%Y%m%d").date()
    except ValueError as error:
        raise IdentityRefused(f"{what} is not an HL7 date: {text!r}") from error


def ipp_of(message: Any, segment: str = "PID", number: int = 3) -> str:
    """The IPP among the identifiers of PID-3 (or MRG-1): type PI, of the hospital's
    assigning authority (its namespace or its OID)."""
    try:
        repeats = message.segment(segment)[number]
    except (KeyError, IndexError):
        repeats = None
    if not repeats or not str(repeats).strip():
        raise IdentityRefused(f"{segment}-{number} (the patient identifiers) is missing")
    authority = settings.ROUNDS_ADT_IPP_AUTHORITY
    authorities = []
    for repeat in repeats:
        value = str(repeat[0]).strip() if len(repeat) > 0 else ""
        assigner = repeat[3] if len(repeat) > 3 else ""
        names = {
            str(part).strip()
            for part in (assigner if not isinstance(assigner, str) else [assigner])
        }
        kind = str(repeat[4]).strip() if len(repeat) > 4 else ""
        authorities.append("/".join(sorted(n for n in names if n)) or "(none)")
        if authority in names and kind in ("PI", "") and value:
            if len(value) > 32:
                raise IdentityRefused(f"the IPP {value[:40]!r} is longer than 32 characters")
            return value
    raise IdentityRefused(
        f"no IPP of assigning authority {authority} in {segment}-{number} "
        f"(found: {', '.join(authorities)})"
    )


def patient_facts(message: Any) -> PatientFacts:
    family, given = field(message, "PID", 5, 1), field(message, "PID", 5, 2)
    if not family:
        raise IdentityRefused("PID-5 (the patient's name) is missing")
    birth = field(message, "PID", 7)
    if not birth:
        raise IdentityRefused("PID-7 (the birth date) is missing")
    death = field(message, "PID", 29)
    return PatientFacts(
        ipp=ipp_of(message),
        family_name=family[:120],
        given_name=given[:120],
        birth_date=hl7_date(birth, "PID-7"),
        sex=SEXES.get(field(message, "PID", 8).upper(), Sex.UNKNOWN),
        died_on=hl7_date(death, "PID-29") if death else None,
    )


def event_time(message: Any) -> datetime:
    """When the movement happened: ZBE-2 (IHE PAM France), EVN-6, EVN-2, then MSH-7."""
    for segment, number in (("ZBE", 2), ("EVN", 6), ("EVN", 2), ("MSH", 7)):
        text = field(message, segment, number)
        if text:
            return hl7_datetime(text, f"{segment}-{number}")
    return timezone.now()


def movement(message: Any, kind: str = "inpatient") -> Movement:
    location = field(message, "PV1", 3)
    if not location:
        raise IdentityRefused("PV1-3 (the patient's location) is missing")
    visit = field(message, "PV1", 19)
    if not visit:
        raise IdentityRefused("PV1-19 (the visit number) is missing")
    return Movement(
        visit_number=visit[:64], location=location[:120], at=event_time(message), kind=kind
    )


def visit_of(message: Any) -> str:
    visit = field(message, "PV1", 19)
    if not visit:
        raise IdentityRefused("PV1-19 (the visit number) is missing")
    return visit[:64]


def known_patient(message: Any) -> Patient:
    patient = find_patient(ipp_of(message))
    if patient is None:
        raise IdentityRefused("the patient is unknown: no admission or registration came first")
    return patient


def apply(message: Any, event: str, source: Source) -> None:
    """Apply one parsed message's event; IdentityRefused leaves nothing changed (the
    caller's transaction rolls back)."""
    action = EVENTS[event]
    if action in ("admit", "register", "update"):
        patient = do_record_patient(patient_facts(message), source)
        if action == "admit":
            do_admit(patient, movement(message, KINDS[event]), source)
        return
    if action == "merge":
        if not has_segment(message, "MRG"):
            raise IdentityRefused("an A40 needs its MRG segment (the merged record)")
        surviving = do_record_patient(patient_facts(message), source)
        merged = Patient.objects.filter(ipp=ipp_of(message, "MRG", 1)).first()
        if merged is None:
            raise IdentityRefused("MRG-1 names no known record")
        do_merge(surviving, merged, source)
        return
    patient = known_patient(message)
    at = event_time(message)
    if action == "transfer":
        do_transfer(patient, movement(message), source)
    elif action == "discharge":
        discharged = field(message, "PV1", 45)
        at = hl7_datetime(discharged, "PV1-45") if discharged else at
        do_discharge(patient, visit_of(message), at, source)
    elif action == "cancel_admit":
        do_cancel_admit(patient, visit_of(message), at, source)
    elif action == "cancel_transfer":
        do_cancel_transfer(patient, visit_of(message), at, source)
    else:
        do_cancel_discharge(patient, visit_of(message), source)


def handle(raw: bytes, source_name: str) -> Answer:
    """Read, apply and acknowledge one message (the bytes between MLLP's frame marks)."""
    try:
        text = decode(raw)
    except Rejected as rejected:
        return Answer("AR", rejected.reason, _bare_ack("AR", rejected))
    return handle_text(text, source_name)


def handle_text(text: str, source_name: str) -> Answer:
    """Apply and acknowledge one message already decoded (a replay of a kept one)."""
    text = segments(text)
    try:
        message = parse(text)
    except Rejected as rejected:
        return Answer("AR", rejected.reason, _bare_ack("AR", rejected))
    control_id = field(message, "MSH", 10)
    message_type = field(message, "MSH", 9, 1)
    event = field(message, "MSH", 9, 2) or field(message, "EVN", 1)
    if not control_id or len(control_id) > 64:
        return _answer(message, "AR", Rejected("MSH-10 (the message control ID) is missing", "101"))
    if message_type != "ADT" or event not in EVENTS:
        return _answer(
            message, "AR", Rejected(f"unsupported message type {message_type} {event}", "200")
        )
    outcome = message_outcome(control_id)
    if outcome == AdtMessage.Outcome.APPLIED:
        return _answer(message, "AA", None)  # sent again: answered as before, not applied twice
    source = Source("adt", control_id)
    known = outcome is not None
    try:
        with transaction.atomic():
            apply(message, event, source)
            _keep(known, control_id, event, text, source_name, AdtMessage.Outcome.APPLIED, "")
    except IdentityRefused as refused:
        reason = refused.message
        _keep(known, control_id, event, text, source_name, AdtMessage.Outcome.REFUSED, reason)
        return _answer(message, "AE", refused)
    except IntegrityError as clash:
        applied = AdtMessage.Outcome.APPLIED
        if AdtMessage.objects.filter(control_id=control_id, outcome=applied).exists():
            return _answer(message, "AA", None)  # applied by another connection meanwhile
        broken = IdentityRefused("the message breaks a rule of the patient's record")
        log.warning("adt: %s refused by the database: %s", control_id, type(clash).__name__)
        stored = AdtMessage.objects.filter(control_id=control_id).exists()
        reason = broken.message
        _keep(stored, control_id, event, text, source_name, AdtMessage.Outcome.REFUSED, reason)
        return _answer(message, "AE", broken)
    return _answer(message, "AA", None)


def _keep(
    known: bool, control_id: str, event: str, text: str, source: str, outcome: str, error: str
) -> None:
    """Keep the message with its outcome: one insert, or one update when sent before."""
    applied_at = timezone.now() if outcome == AdtMessage.Outcome.APPLIED else None
    values = {
        "event": event,
        "text": text,
        "source": source[:64],
        "outcome": outcome,
        "error": error[:300],
        "applied_at": applied_at,
    }
    if known:
        AdtMessage.objects.filter(control_id=control_id).update(**values)
        return
    if outcome == AdtMessage.Outcome.APPLIED:
        # Inside the message's own transaction: a unique clash (another connection kept
        # it first) undoes the message whole, and handle_text answers it.
        keep_message(control_id, values)
        return
    with transaction.atomic():  # a savepoint: a unique clash must not spoil the caller's
        keep_message(control_id, values)


def _clean(text: str) -> str:
    """A reason fit for an ACK: no delimiter, ASCII (the ACK names no character set)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _HL7_DELIMITERS.sub(" ", ascii_text)[:200]


def _answer(message: Any, code: str, error: Exception | None) -> Answer:
    reason = _clean(getattr(error, "reason", None) or getattr(error, "message", "") or "")
    ack = message.create_ack(
        code,
        message_id=f"ACK{timezone.now():%Y%m%d%H%M%S%f}"[:20],
        application="ROUNDS",
        facility=settings.ROUNDS_ADT_FACILITY,
    )
    text = str(ack)
    if error is not None:
        text = text.rstrip("\r") + f"|{reason}"
        hl7_code = getattr(error, "error_code", "207")
        text += f"\rERR||||E|{hl7_code}^{_error_name(hl7_code)}^HL70357|||{reason}"
    return Answer(code, reason, text)


def _error_name(code: str) -> str:
    return {
        "100": "Segment sequence error",
        "101": "Required field missing",
        "200": "Unsupported message type",
        "203": "Unsupported version id",
        "204": "Unknown key identifier",
        "207": "Application internal error",
    }.get(code, "Application error")


def _bare_ack(code: str, rejected: Rejected) -> str:
    """The ACK of a message too broken to read its header from."""
    reason = _clean(rejected.reason)
    now = timezone.now().strftime("%Y%m%d%H%M%S")
    return "\r".join(
        [
            f"MSH|^~\\&|ROUNDS|{settings.ROUNDS_ADT_FACILITY}|||{now}||ACK|ACK{now}|P|2.5",
            f"MSA|{code}||{reason}",
            f"ERR||||E|{rejected.error_code}^{_error_name(rejected.error_code)}^HL70357|||{reason}",
        ]
    )
