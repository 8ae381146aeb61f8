"""On-call roles, their roster and roster imports (rooms/oncall_api.py, docs/oncall.md)."""

from typing import Literal

from core.api_schemas.common import Body, UserCard


class OnCallRole(Body):
    """A department's on-call role and who holds it now (rooms.oncall.on_duty)."""

    id: int
    department: int
    name: str
    active: bool
    created_at: str
    archived_at: str | None
    on_duty: list[UserCard]


class OnCallRoles(Body):
    """The department's roles, active first, each with who is on duty at `at` (now)."""

    department: int
    at: str
    roles: list[OnCallRole]


class OnDuty(Body):
    """Who holds a role at `at`, by start of shift: empty in a gap."""

    role: OnCallRole
    at: str
    users: list[UserCard]


class Shift(Body):
    """One person holding one role over [starts_at, ends_at); `removed_at` once removed."""

    id: int
    role: int
    user: UserCard
    starts_at: str
    ends_at: str
    created_at: str
    removed_at: str | None


class RoleName(Body):
    id: int
    name: str


class Gap(Body):
    """A period in which a role has nobody."""

    role: RoleName
    starts_at: str
    ends_at: str


class Overlap(Body):
    """A period in which a role has several people (allowed, reported)."""

    role: RoleName
    starts_at: str
    ends_at: str
    users: list[UserCard]


class Roster(Body):
    """The standing shifts with some time in [start, end) (the query's `from` and `to`),
    and each active role's gaps and overlaps there."""

    department: int
    start: str
    end: str
    shifts: list[Shift]
    gaps: list[Gap]
    overlaps: list[Overlap]


class ImportCounts(Body):
    rows: int
    accepted: int
    unchanged: int
    refused: int


class ImportRow(Body):
    """One row of the file: where it is, what it says, and what the import does with it."""

    line: int
    status: Literal["accepted", "unchanged", "refused"]
    reason: str | None
    role: str
    person: str
    user: UserCard | None
    starts_at: str | None
    ends_at: str | None


class RosterImport(Body):
    """A roster file's import, dry run (`committed` false) or done: each row's status,
    and the named roles' gaps and overlaps over the file's window, as the roster would be."""

    department: int
    format: Literal["csv", "ics"]
    committed: bool
    counts: ImportCounts
    rows: list[ImportRow]
    start: str | None
    end: str | None
    gaps: list[Gap]
    overlaps: list[Overlap]
