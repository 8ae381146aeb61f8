"""Roster files read into rows, and a roster's gaps and overlaps: no database here.

Two formats (docs/oncall.md, "Importing a roster"):

- **CSV**: four columns, `role,username,start,end`, one shift a line; a first
  line that is exactly that header is skipped. A time is ISO 8601 with its
  offset (`2026-12-07T20:00:00+01:00`, `…Z`), or without one, read in the
  institution's `TIME_ZONE`: a wall time that zone skips (the spring change)
  is refused as `bad_time`, one it repeats (the autumn change) is its first
  occurrence. A date alone is no time: refused.
- **iCalendar** (RFC 5545, read by the `icalendar` library): each VEVENT is a
  shift. DTSTART and DTEND (or DURATION) are date-times in UTC, with a TZID,
  or floating (read in `TIME_ZONE` as above); a whole-day event is refused.
  The role is the SUMMARY; the person is the event's one ATTENDEE, named by
  its `mailto:` address, which must be exactly one active user's email.
  Recurring events (RRULE, RDATE, RECURRENCE-ID) are refused, one by one:
  not supported yet. A cancelled event (STATUS:CANCELLED) is refused too.

Each row keeps its line (the CSV line, or the event's `BEGIN:VEVENT` line)
so a refusal names where to look. Refusals found here are a row's own
(its fields, its times); rooms/roster_import.py adds those that need the
database (unknown role or user, not a member).
"""

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from enum import StrEnum
from typing import Any, Literal

import icalendar

from core.errors import N_, ErrorCode, InvalidRequest, RoundsError

MAX_BYTES = 1024 * 1024
MAX_ROWS = 5000
HEADER = ["role", "username", "start", "end"]
Format = Literal["csv", "ics"]


class Reason(StrEnum):
    """Why a row is refused: what a client shows beside its line (docs/oncall.md)."""

    WRONG_COLUMNS = "wrong_columns"
    MISSING_FIELD = "missing_field"
    BAD_TIME = "bad_time"
    END_BEFORE_START = "end_before_start"
    RECURRENCE_NOT_SUPPORTED = "recurrence_not_supported"
    CANCELLED_EVENT = "cancelled_event"
    SEVERAL_PEOPLE = "several_people"
    UNKNOWN_ROLE = "unknown_role"
    ARCHIVED_ROLE = "archived_role"
    UNKNOWN_USER = "unknown_user"
    NOT_A_MEMBER = "not_a_member"


@dataclass
class Row:
    """One shift as the file says it; `person` is a username (CSV) or an email (iCalendar)."""

    line: int
    role: str = ""
    person: str = ""
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    refusal: Reason | None = None
    # Filled by rooms/roster_import.py once the row is checked against the database.
    role_id: int | None = None
    user: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def refuse(self, reason: Reason) -> None:
        if self.refusal is None:
            self.refusal = reason


class RosterTooLarge(RoundsError):
    code = ErrorCode.UPLOAD_TOO_LARGE
    default_message = N_("A roster file has at most %(max_bytes)s bytes and %(max_rows)s shifts.")


def read_roster(fmt: Format, content: str, tz: tzinfo) -> list[Row]:
    """The file's rows, each with its own refusal if it has one.

    Raises:
        RosterTooLarge: over MAX_BYTES (UTF-8) or MAX_ROWS rows.
        InvalidRequest: a file that is not CSV or iCalendar at all.
    """
    limits = {"max_bytes": MAX_BYTES, "max_rows": MAX_ROWS}
    if len(content.encode()) > MAX_BYTES:
        raise RosterTooLarge(params=limits, data=limits)
    rows = read_csv(content, tz) if fmt == "csv" else read_ics(content, tz)
    if len(rows) > MAX_ROWS:
        raise RosterTooLarge(params=limits, data=limits)
    if not rows:
        raise InvalidRequest(N_("The roster file holds no shift."))
    return rows


def read_csv(content: str, tz: tzinfo) -> list[Row]:
    rows: list[Row] = []
    reader = csv.reader(io.StringIO(content))
    try:
        for record in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in record]
            if not any(cells) or (line == 1 and [c.lower() for c in cells] == HEADER):
                continue
            row = Row(line=line)
            rows.append(row)
            if len(cells) != len(HEADER):
                row.refuse(Reason.WRONG_COLUMNS)
                continue
            row.role, row.person, start, end = cells
            if not all(cells):
                row.refuse(Reason.MISSING_FIELD)
                continue
            row.starts_at, row.ends_at = parse_time(start, tz), parse_time(end, tz)
            check_times(row)
            if len(rows) > MAX_ROWS:
                break
    except csv.Error:
        raise InvalidRequest(
            N_("The CSV file cannot be read near line %(line)s."), params={"line": reader.line_num}
        ) from None
    return rows


def parse_time(value: str, tz: tzinfo) -> datetime | None:
    """An ISO 8601 date-time, aware; None if it is not one (a date alone included)."""
    if ":" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else local_time(parsed, tz)


def local_time(naive: datetime, tz: tzinfo) -> datetime | None:
    """A wall time in `tz`, or None if `tz` skips it (no such time that day)."""
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return aware


def check_times(row: Row) -> None:
    if row.starts_at is None or row.ends_at is None:
        row.refuse(Reason.BAD_TIME)
    elif row.ends_at <= row.starts_at:
        row.refuse(Reason.END_BEFORE_START)


def read_ics(content: str, tz: tzinfo) -> list[Row]:
    try:
        calendar = icalendar.Calendar.from_ical(content)
    except ValueError:
        raise InvalidRequest(N_("This is not an iCalendar file.")) from None
    if not isinstance(calendar, icalendar.Calendar):
        raise InvalidRequest(N_("This is not an iCalendar file."))
    starts = [
        number
        for number, text in enumerate(content.splitlines(), start=1)
        if text.strip().upper() == "BEGIN:VEVENT"
    ]
    rows = []
    for index, event in enumerate(calendar.walk("VEVENT")):
        if not isinstance(event, icalendar.Event):  # what walk("VEVENT") gives; for the types
            continue
        row = Row(line=starts[index] if index < len(starts) else 0)
        read_event(event, row, tz)
        rows.append(row)
        if len(rows) > MAX_ROWS:
            break
    return rows


def read_event(event: icalendar.Event, row: Row, tz: tzinfo) -> None:
    row.extra["uid"] = str(event.get("UID", ""))
    row.role = str(event.get("SUMMARY", "")).strip()
    attendees = event.get("ATTENDEE")
    people = attendees if isinstance(attendees, list) else [attendees] if attendees else []
    if len(people) > 1:
        row.refuse(Reason.SEVERAL_PEOPLE)
    elif people:
        address = str(people[0])
        row.person = address[7:].strip() if address.lower().startswith("mailto:") else ""
    if any(name in event for name in ("RRULE", "RDATE", "RECURRENCE-ID")):
        row.refuse(Reason.RECURRENCE_NOT_SUPPORTED)
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        row.refuse(Reason.CANCELLED_EVENT)
    if not row.role or not row.person or "DTSTART" not in event:
        row.refuse(Reason.MISSING_FIELD)
        return
    try:
        row.starts_at = event_time(event.start, tz)
        row.ends_at = event_time(event.end, tz)
    except Exception:
        row.starts_at = row.ends_at = None
    check_times(row)


def event_time(value: object, tz: tzinfo) -> datetime | None:
    """DTSTART or DTEND as a time: aware, or floating and read in `tz`; a date is none."""
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else local_time(value, tz)


# --- Gaps and overlaps -----------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A shift as coverage sees it: who (any key the caller reads back) from when to when."""

    who: Any
    starts_at: datetime
    ends_at: datetime


def gaps(spans: Iterable[Span], start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The periods of [start, end) no span covers, in order."""
    found = []
    cursor = start
    for span in sorted(spans, key=lambda s: s.starts_at):
        if cursor >= end:
            break
        if span.starts_at > cursor:
            found.append((cursor, min(span.starts_at, end)))
        cursor = max(cursor, span.ends_at)
    if cursor < end:
        found.append((cursor, end))
    return found


def overlaps(
    spans: Sequence[Span], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, list[Any]]]:
    """The periods of [start, end) two spans or more cover at once, each with who holds
    them (in the spans' order); adjacent periods held by the same people are one.

    A span ending when another starts does not overlap it (periods are half-open).
    """
    events = sorted(
        (t, kind, index)
        for index, s in enumerate(spans)
        for t, kind in ((s.starts_at, 1), (s.ends_at, 0))  # at one instant, ends first
    )
    active: set[int] = set()
    found: list[tuple[datetime, datetime, list[Any]]] = []
    for position, (at, kind, index) in enumerate(events):
        if kind:
            active.add(index)
        else:
            active.discard(index)
        following = events[position + 1][0] if position + 1 < len(events) else at
        left, right = max(at, start), min(following, end)
        if following == at or left >= right or len(active) < 2:
            continue
        holders = [spans[i].who for i in sorted(active)]
        if found and found[-1][1] == left and found[-1][2] == holders:
            found[-1] = (found[-1][0], right, holders)
        else:
            found.append((left, right, holders))
    return found


def window(rows: Iterable[Row]) -> tuple[datetime, datetime] | None:
    """From the earliest start to the latest end of these rows, or None if none has times."""
    timed = [(r.starts_at, r.ends_at) for r in rows if r.starts_at and r.ends_at]
    if not timed:
        return None
    return min(s for s, _ in timed), max(e for _, e in timed)


def as_iso(value: datetime | date | None) -> str | None:
    return None if value is None else value.isoformat()
