"""Importing a roster from CSV or iCalendar (rooms/roster_import.py, docs/oncall.md): each
refusal with its line, gaps and overlaps, a dry run that writes nothing, an all-or-nothing
commit, the size limits and the audit entry (counts, never the file)."""

from datetime import UTC, datetime, timedelta

import pytest

from core.api_schemas.oncall import RosterImport
from rooms import oncall, roster_files
from rooms.models import Membership, OnCallRole, RosterShift
from tests.support import Api, Hospital, assert_refused, audit_entries

pytestmark = pytest.mark.django_db

HEADER = "role,username,start,end\n"


@pytest.fixture
def h(bare_hospital: Hospital) -> Hospital:
    for name in ("On-call plastic surgeon", "Night nurse"):
        oncall.check_create_role(bare_hospital.head_carol, bare_hospital.plastic.pk, name)
    bare_hospital.surgeon_bob.email = "bob.martin@hospital.example"
    bare_hospital.surgeon_bob.save(update_fields=["email"])
    bare_hospital.nurse_alice.email = "alice.durand@hospital.example"
    bare_hospital.nurse_alice.save(update_fields=["email"])
    bare_hospital.nurse_ines.email = "ines.faure@hospital.example"
    bare_hospital.nurse_ines.save(update_fields=["email"])
    return bare_hospital


def preview(h: Hospital, content: str, fmt: str = "csv", who: str = "head_carol"):
    api = Api(getattr(h, who))
    return api.post(
        f"/api/departments/{h.plastic.pk}/oncall/import/preview",
        {"format": fmt, "content": content},
    )


def commit(h: Hospital, content: str, fmt: str = "csv"):
    return Api(h.head_carol).post(
        f"/api/departments/{h.plastic.pk}/oncall/import", {"format": fmt, "content": content}
    )


def report(response) -> RosterImport:
    assert response.status_code in (200, 201), response.content
    return RosterImport.model_validate(response.json())


# --- CSV ---------------------------------------------------------------------------------

GOOD_CSV = HEADER + (
    "On-call plastic surgeon,surgeon_bob,2026-12-07T08:00:00+01:00,2026-12-07T20:00:00+01:00\n"
    # No offset: Paris time (the institution's TIME_ZONE). Role names ignore case.
    "on-call PLASTIC surgeon,head_carol,2026-12-07T20:00:00,2026-12-08T08:00:00\n"
    "Night nurse,nurse_alice,2026-12-07T19:00:00Z,2026-12-08T07:00:00Z\n"
)


def test_a_good_csv_is_previewed_then_committed_with_its_audit_entry(h):
    dry = report(preview(h, GOOD_CSV))
    assert dry.committed is False
    assert [(r.line, r.status, r.role) for r in dry.rows] == [
        (2, "accepted", "On-call plastic surgeon"),
        (3, "accepted", "On-call plastic surgeon"),
        (4, "accepted", "Night nurse"),
    ]
    assert dry.rows[1].starts_at == "2026-12-07T20:00:00+01:00"
    assert dry.counts.model_dump() == {"rows": 3, "accepted": 3, "unchanged": 0, "refused": 0}
    assert (dry.start, dry.end) == ("2026-12-07T08:00:00+01:00", "2026-12-08T08:00:00+01:00")
    assert not RosterShift.objects.exists() and not audit_entries("oncall.roster_imported")
    done = commit(h, GOOD_CSV)
    assert done.status_code == 201
    assert report(done).committed is True
    surgeon = OnCallRole.objects.get(name="On-call plastic surgeon")
    assert oncall.on_duty(surgeon, datetime(2026, 12, 7, 21, 0, tzinfo=UTC)) == [h.head_carol]
    assert RosterShift.objects.filter(created_by=h.head_carol).count() == 3
    [entry] = audit_entries("oncall.roster_imported", department_id=h.plastic.pk)
    assert entry.data == {
        "format": "csv",
        "rows": 3,
        "accepted": 3,
        "unchanged": 0,
        "refused": 0,
        "gaps": 1,  # Night nurse, 07:00-08:00 Paris (the window starts at 08:00 for the surgeon)
        "overlaps": 0,
    }
    assert "surgeon_bob" not in str(entry.data)
    # The same file again adds nothing: every row is already on the roster.
    again = report(commit(h, GOOD_CSV))
    assert again.counts.unchanged == 3 and RosterShift.objects.count() == 3


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            "Cardiology on call,surgeon_bob,2026-12-07T08:00:00Z,2026-12-07T20:00:00Z",
            "unknown_role",
        ),
        (
            "On-call plastic surgeon,nobody,2026-12-07T08:00:00Z,2026-12-07T20:00:00Z",
            "unknown_user",
        ),
        (
            "On-call plastic surgeon,nurse_ines,2026-12-07T08:00:00Z,2026-12-07T20:00:00Z",
            "not_a_member",
        ),
        (
            "On-call plastic surgeon,intern_erin,2026-12-07T08:00:00Z,2026-12-07T20:00:00Z",
            "not_a_member",
        ),
        ("On-call plastic surgeon,surgeon_bob,tomorrow 8am,2026-12-07T20:00:00Z", "bad_time"),
        ("On-call plastic surgeon,surgeon_bob,2026-12-07,2026-12-08", "bad_time"),
        # 02:30 does not exist in Paris on 29 March 2026 (the clocks go from 02:00 to 03:00).
        ("On-call plastic surgeon,surgeon_bob,2026-03-29T02:30:00,2026-03-29T08:00:00", "bad_time"),
        (
            "On-call plastic surgeon,surgeon_bob,2026-12-07T20:00:00Z,2026-12-07T08:00:00Z",
            "end_before_start",
        ),
        (
            "On-call plastic surgeon,surgeon_bob,2026-12-07T20:00:00Z,2026-12-07T20:00:00Z",
            "end_before_start",
        ),
        ("On-call plastic surgeon,surgeon_bob,2026-12-07T20:00:00Z", "wrong_columns"),
        ("On-call plastic surgeon,,2026-12-07T08:00:00Z,2026-12-07T20:00:00Z", "missing_field"),
    ],
)
def test_each_csv_refusal_names_its_line_and_a_commit_writes_nothing(h, line, reason):
    content = GOOD_CSV + line + "\n"
    dry = report(preview(h, content))
    assert [(r.line, r.status, r.reason) for r in dry.rows][-1] == (5, "refused", reason)
    assert dry.counts.refused == 1 and dry.counts.accepted == 3
    refused = assert_refused(commit(h, content), 400, "roster_refused")
    assert refused["data"]["refused"] == 1
    assert [(r["line"], r["reason"]) for r in refused["data"]["rows"]] == [(5, reason)]
    assert not RosterShift.objects.exists() and not audit_entries("oncall.roster_imported")


def test_an_archived_role_is_named_as_such(h):
    night = OnCallRole.objects.get(name="Night nurse")
    oncall.check_archive_role(h.head_carol, h.plastic.pk, night.pk)
    dry = report(preview(h, GOOD_CSV))
    assert dry.rows[2].reason == "archived_role"


def test_gaps_and_overlaps_count_the_standing_roster_and_the_file(h):
    surgeon = OnCallRole.objects.get(name="On-call plastic surgeon")
    start = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)
    oncall.check_add_shift(
        h.head_carol, h.plastic.pk, surgeon.pk, h.nurse_alice.pk, start, start + timedelta(hours=4)
    )
    content = HEADER + (
        "On-call plastic surgeon,surgeon_bob,2026-12-07T07:00:00Z,2026-12-07T19:00:00Z\n"
        "On-call plastic surgeon,head_carol,2026-12-07T21:00:00Z,2026-12-08T07:00:00Z\n"
    )
    dry = report(preview(h, content))
    assert [(g.role.name, g.starts_at, g.ends_at) for g in dry.gaps] == [
        ("On-call plastic surgeon", "2026-12-07T19:00:00+00:00", "2026-12-07T21:00:00+00:00")
    ]
    [overlap] = dry.overlaps
    assert (overlap.starts_at, overlap.ends_at) == (
        "2026-12-07T07:00:00+00:00",
        "2026-12-07T11:00:00+00:00",
    )
    assert sorted(u.username for u in overlap.users) == ["nurse_alice", "surgeon_bob"]
    # Overlaps are allowed: the commit goes through and they stay reported.
    assert report(commit(h, content)).overlaps == dry.overlaps
    assert audit_entries("oncall.roster_imported")[0].data["overlaps"] == 1


def test_a_commit_rechecks_membership_under_the_lock(h, monkeypatch):
    """Bob leaves between the preview and the commit: the commit refuses his rows."""
    assert report(preview(h, GOOD_CSV)).counts.refused == 0
    Membership.objects.filter(user=h.surgeon_bob, department=h.plastic).update(
        removed_at=datetime.now(UTC)
    )
    refused = assert_refused(commit(h, GOOD_CSV), 400, "roster_refused")
    assert refused["data"]["rows"][0]["reason"] == "not_a_member"
    assert not RosterShift.objects.exists()


def test_size_limits(h, monkeypatch):
    big = HEADER + "x" * roster_files.MAX_BYTES
    body = assert_refused(preview(h, big), 413, "upload_too_large")
    assert body["data"] == {"max_bytes": roster_files.MAX_BYTES, "max_rows": roster_files.MAX_ROWS}
    monkeypatch.setattr(roster_files, "MAX_ROWS", 2)
    assert_refused(commit(h, GOOD_CSV), 413, "upload_too_large")
    assert not RosterShift.objects.exists()


def test_a_file_with_no_shift_or_an_unknown_format_is_refused(h):
    assert_refused(preview(h, HEADER), 400, "invalid_request")
    assert_refused(preview(h, GOOD_CSV, fmt="xlsx"), 400, "invalid_request")
    assert_refused(preview(h, "just some text", fmt="ics"), 400, "invalid_request")


def test_a_member_may_not_preview(h):
    assert_refused(preview(h, GOOD_CSV, who="surgeon_bob"), 403, "forbidden")
    assert_refused(preview(h, GOOD_CSV, who="head_grace"), 404, "not_found")


# --- iCalendar ---------------------------------------------------------------------------


def ics(*events: str) -> str:
    """A calendar as a rota tool would export it (CRLF lines)."""
    body = "\n".join(events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Ward rota//Test//EN\n{body}\nEND:VCALENDAR\n"
    return text.replace("\n", "\r\n")


def event(uid: str, summary: str, start: str, end: str, *extra: str, who: str | None = None) -> str:
    attendee = f"ATTENDEE;CN=Someone;ROLE=REQ-PARTICIPANT:mailto:{who}" if who else ""
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20261201T120000Z", f"SUMMARY:{summary}",
             start, end, attendee, *extra, "END:VEVENT"]  # fmt: skip
    return "\n".join(line for line in lines if line)


BOB = "Bob.Martin@hospital.example"  # emails match without case
GOOD_ICS = ics(
    event(
        "d1",
        "On-call plastic surgeon",
        "DTSTART;TZID=Europe/Paris:20261207T080000",
        "DTEND;TZID=Europe/Paris:20261207T200000",
        who=BOB,
    ),
    event(
        "n1",
        "Night nurse",
        "DTSTART:20261207T190000Z",
        "DURATION:PT12H",
        who="alice.durand@hospital.example",
    ),
    # Floating times: read in the institution's TIME_ZONE (Europe/Paris).
    event(
        "d2", "On-call plastic surgeon", "DTSTART:20261207T200000", "DTEND:20261208T080000", who=BOB
    ),
)


def test_a_good_ics_is_imported(h):
    dry = report(preview(h, GOOD_ICS, fmt="ics"))
    assert [(r.line, r.status, r.role, r.user.username if r.user else None) for r in dry.rows] == [
        (4, "accepted", "On-call plastic surgeon", "surgeon_bob"),
        (12, "accepted", "Night nurse", "nurse_alice"),
        (20, "accepted", "On-call plastic surgeon", "surgeon_bob"),
    ]
    assert dry.rows[0].starts_at == "2026-12-07T08:00:00+01:00"
    assert dry.rows[1].ends_at == "2026-12-08T07:00:00+00:00"
    assert dry.rows[2].starts_at == "2026-12-07T20:00:00+01:00"
    assert not RosterShift.objects.exists()
    assert report(commit(h, GOOD_ICS, fmt="ics")).counts.accepted == 3
    assert RosterShift.objects.count() == 3
    assert audit_entries("oncall.roster_imported")[0].data["format"] == "ics"


@pytest.mark.parametrize(
    ("extra_event", "reason"),
    [
        (
            event(
                "r1",
                "Night nurse",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                "RRULE:FREQ=DAILY;COUNT=5",
                who=BOB,
            ),
            "recurrence_not_supported",
        ),
        (
            event(
                "r2",
                "Night nurse",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                "RECURRENCE-ID:20261209T190000Z",
                who=BOB,
            ),
            "recurrence_not_supported",
        ),
        (
            event(
                "c1",
                "Night nurse",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                "STATUS:CANCELLED",
                who=BOB,
            ),
            "cancelled_event",
        ),
        (
            event(
                "u1",
                "Night nurse",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                who="stranger@elsewhere.example",
            ),
            "unknown_user",
        ),
        (
            event(
                "m1",
                "Night nurse",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                who="ines.faure@hospital.example",
            ),
            "not_a_member",
        ),
        (
            event(
                "k1",
                "Radiology on call",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                who=BOB,
            ),
            "unknown_role",
        ),
        (
            event(
                "a1",
                "Night nurse",
                "DTSTART;VALUE=DATE:20261209",
                "DTEND;VALUE=DATE:20261210",
                who=BOB,
            ),
            "bad_time",
        ),
        (
            event(
                "b1", "Night nurse", "DTSTART:20261210T070000Z", "DTEND:20261209T190000Z", who=BOB
            ),
            "end_before_start",
        ),
        (
            event("e1", "Night nurse", "DTSTART:20261209T190000Z", "DTEND:20261210T070000Z"),
            "missing_field",
        ),
        (
            event(
                "s1",
                "Night nurse",
                "DTSTART:20261209T190000Z",
                "DTEND:20261210T070000Z",
                "ATTENDEE:mailto:alice.durand@hospital.example",
                who=BOB,
            ),
            "several_people",
        ),
    ],
)
def test_each_ics_refusal_names_its_event(h, extra_event, reason):
    content = GOOD_ICS.replace(
        "END:VCALENDAR", extra_event.replace("\n", "\r\n") + "\r\nEND:VCALENDAR"
    )
    dry = report(preview(h, content, fmt="ics"))
    last = dry.rows[-1]
    assert (last.line, last.status, last.reason) == (28, "refused", reason)
    assert dry.counts.accepted == 3
    assert_refused(commit(h, content, fmt="ics"), 400, "roster_refused")
    assert not RosterShift.objects.exists()


def test_gaps_are_reported_for_an_ics_roster(h):
    dry = report(preview(h, GOOD_ICS, fmt="ics"))
    # The window runs 08:00 Paris to 08:00 the next day; Night nurse is empty until 20:00.
    assert [(g.role.name, g.starts_at, g.ends_at) for g in dry.gaps] == [
        ("Night nurse", "2026-12-07T07:00:00+00:00", "2026-12-07T19:00:00+00:00")
    ]
    assert dry.overlaps == []
