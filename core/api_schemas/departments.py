"""Departments, their members, room keys and signed chain (rooms/api.py)."""

from typing import Any, Literal

from core.api_schemas.common import Body, ChainHead, KeyHolder, PublicKey, UserCard

Role = Literal["head", "member"]


class Department(Body):
    """A department, and the number of its latest event (a socket resumes from it)."""

    id: int
    name: str
    slug: str
    event_seq: int


class MyDepartment(Department):
    """One of the caller's departments: their role there and their unread messages."""

    role: Role
    unread: int


class DepartmentWithHeads(Department):
    """Any department with its current heads (`?all=true`, administrators)."""

    heads: list[UserCard]


class Member(Body):
    """A current member of a department: who, in which role, since when."""

    user: UserCard
    role: Role
    admitted_at: str


class UserId(Body):
    """A user named by id only."""

    id: int


class MemberRemoved(Body):
    """A membership closed: whose, and when."""

    user: UserId
    removed_at: str


class KeyVersion(Body):
    """A room key version as its creator signed its record (docs/crypto.md §7)."""

    version: int
    signed: dict[str, Any]
    created_at: str


class KeyMember(Body):
    """A member as the key directory has them: their current key, if any, and whether
    the signed chain holds them with that key (`attested`: clients wrap only for them)."""

    user: int
    role: Role
    identity: PublicKey | None
    fingerprint: str | None
    attested: bool


class Wrapper(Body):
    """Who made a wrap, by one of their published keys (replaced ones included)."""

    user: int
    public: PublicKey


class DepartmentKeys(Body):
    """Everything a member's client needs to read and post: the current version and
    every version's record, the chain's head, the members' keys, the compliance key,
    the caller's own wraps and who made them (keyed by fingerprint)."""

    department: int
    key_version: int
    rotation_required: bool
    chain: ChainHead
    versions: list[KeyVersion]
    members: list[KeyMember]
    compliance: KeyHolder | None
    my_wraps: list[dict[str, Any]]
    wrappers: dict[str, Wrapper]


class KeyVersionPublished(Body):
    """A new room key version is stored, with this many wraps."""

    department: int
    key_version: int
    wraps: int


class WrapsShared(Body):
    """Wraps of earlier versions added for members who lacked them."""

    department: int
    added: int


class StoredStatement(Body):
    """A signed membership statement at its place in the chain."""

    id: int
    seq: int
    signed: dict[str, Any]
    created_at: str


class Chain(Body):
    """A department's signed membership chain in order, its head, the public key of every
    fingerprint it names (a client checks each against it), and the admin key."""

    department: int
    statements: list[StoredStatement]
    head: ChainHead
    keys: dict[str, PublicKey]
    admin: KeyHolder | None


class StatementPosted(Body):
    """A statement kept at the chain's head (or found there already)."""

    id: int
    kind: Literal["admit", "remove", "role", "replace"]
    subject: int
    seq: int
    hash: str


class PersonDepartment(Body):
    """A department a colleague works in, and their role there."""

    id: int
    name: str
    role: Role


class Person(Body):
    """A colleague as the directory shows them: a name and where they work, and the
    fingerprint of their published identity (null before they set up keys), which a
    head compares aloud with them before signing their admission."""

    id: int
    display_name: str
    departments: list[PersonDepartment]
    fingerprint: str | None


class People(Body):
    """At most 20 colleagues, by name; `more`: others match too (type more of the name)."""

    people: list[Person]
    more: bool
