"""The demo hospital's keys: what its clinicians' clients and the key ceremony would make.

**For the demo only.** In a real hospital every clinician's browser makes
their identity and shows their recovery code once; an administrator appoints
each department's first head with the institution's admin key file, which
never leaves IT; and a head signs each colleague's admission after comparing
fingerprints with them (docs/crypto.md §6 and §9, R7). `seed_demo` does all
of it at once so that two clinicians can exchange a message a minute after
`make run`: it holds the demo's admin key (var/demo-keys/, demo only), makes
every clinician's identity itself, and seals its backup under a recovery code
derived from the demo password and the login (`demo_recovery_code`), printed
next to the logins and listed in the README. Anyone who knows the demo
password can therefore read every demo clinician's keys: nothing here may be
used for real patients.

`seed_demo_roster` gives the demo its on-call roles and a roster of the next
two weeks, so that "who is on duty now" answers in a fresh demo.

The material is made with core.crypto and kept through the server's own
checks (`check_publish_identity`, `check_store_backup`,
`check_post_statement`, `check_publish_key_version`), so the chain and the
wraps are exactly what a client would have posted and every client verifies
them from the pinned admin key. `sign_membership` and `new_key_version` are
the pure steps; tests/support/hospital.py builds the test personas' keys
with them too.
"""

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from django.utils import timezone

from accounts.keys import check_publish_identity, check_store_backup
from accounts.models import User
from core.crypto import (
    EMPTY_HEAD,
    ChainHead,
    IdentityKeyPair,
    MembershipStatement,
    PublicIdentity,
    RoomKey,
    SignedKeyVersion,
    SignedStatement,
    WrapRecord,
    b64encode,
    make_key_version,
    seal_backup,
    sign_statement,
    wrap_room_key,
)
from core.crypto.backup import CROCKFORD, SECRET_CHARS, format_recovery_secret
from core.crypto.statements import Kind, Role
from rooms.chain import check_post_statement
from rooms.keys import check_publish_key_version
from rooms.models import OnCallRole
from rooms.oncall import do_add_shift, do_create_role

# Domain separation for the demo's recovery codes (BLAKE2b's personalisation, 16 bytes at most).
RECOVERY_PERSON = b"rounds-demo-rc1"


def demo_recovery_code(username: str, password: str) -> str:
    """The demo login's recovery code: 28 Crockford characters in groups of 4, as a
    generated secret is shown (docs/crypto.md §4), derived from the demo password and
    the login instead of drawn at random, so the README can list them.

    Each character takes 5 bits of a byte of BLAKE2b (256 is a multiple of 32: no
    bias); 140 bits, like a generated secret, but only as secret as the password.
    """
    digest = hashlib.blake2b(
        f"{password}\0{username}".encode(), digest_size=SECRET_CHARS, person=RECOVERY_PERSON
    ).digest()
    chars = "".join(CROCKFORD[byte % 32] for byte in digest)
    return format_recovery_secret(chars)


def sign_membership(
    *,
    department: int,
    at: ChainHead,
    kind: Kind,
    subject_user: int,
    subject_fingerprint: str,
    role: Role,
    signing: IdentityKeyPair,
    signer_user: int | None,
    replaces: str | None = None,
    thread: int | None = None,
) -> SignedStatement:
    """A membership statement placed after `at`, signed by `signing`: a head's identity
    (`signer_user` their id), or the institution's admin key (`signer_user` None); a
    consult's `guest` or `unguest` names its `thread` (docs/crypto.md §14)."""
    statement = MembershipStatement(
        department=department,
        seq=at.seq + 1,
        prev=at.hash,
        kind=kind,
        subject_user=subject_user,
        subject_fingerprint=subject_fingerprint,
        replaces=replaces,
        role=role,
        issued_at=timezone.now().isoformat(),
        signer_user=signer_user,
        signer_fingerprint=signing.fingerprint,
        thread=thread,
    )
    return sign_statement(statement, signing)


def new_key_version(
    room_key: RoomKey,
    *,
    at: ChainHead,
    creator_user: int,
    creator: IdentityKeyPair,
    recipients: Iterable[PublicIdentity],
) -> tuple[SignedKeyVersion, list[WrapRecord]]:
    """A room key version's signed record, made at the chain head `at`, and its wraps
    for `recipients` (the members at that head and the compliance key), each signed by
    the creator."""
    record = make_key_version(room_key, head=at, creator_user=creator_user, creator=creator)
    wraps = [wrap_room_key(room_key, recipient=public, wrapper=creator) for public in recipients]
    return record, wraps


@dataclass
class DemoDepartment:
    id: int
    head: User
    members: Sequence[User]


def publish_identity(user: User, recovery_code: str) -> IdentityKeyPair:
    """A new identity for `user`, published and backed up under `recovery_code`, as the
    browser's "Create my keys" does (the moderate Argon2id limits of a generated code)."""
    pair = IdentityKeyPair.generate()
    check_publish_identity(user, pair.public.to_dict())
    check_store_backup(user, b64encode(seal_backup(pair, recovery_code)))
    return pair


def admit_department(
    admin: User,
    admin_key: IdentityKeyPair,
    compliance: PublicIdentity,
    department: DemoDepartment,
    keys: dict[int, IdentityKeyPair],
) -> RoomKey:
    """The department's chain and its first room key: the head appointed by the admin
    key (posted by the administrator), every member admitted by the head, then
    version 1 made by the head at that head of the chain and wrapped for every member
    and the compliance key. `keys` holds each user's identity by user id."""
    head = department.head
    appointed = sign_membership(
        department=department.id,
        at=EMPTY_HEAD,
        kind="admit",
        subject_user=head.pk,
        subject_fingerprint=keys[head.pk].fingerprint,
        role="head",
        signing=admin_key,
        signer_user=None,
    )
    check_post_statement(admin, department.id, appointed.to_dict())
    at = ChainHead(appointed.statement.seq, appointed.hash)
    for member in department.members:
        admitted = sign_membership(
            department=department.id,
            at=at,
            kind="admit",
            subject_user=member.pk,
            subject_fingerprint=keys[member.pk].fingerprint,
            role="member",
            signing=keys[head.pk],
            signer_user=head.pk,
        )
        check_post_statement(head, department.id, admitted.to_dict())
        at = ChainHead(admitted.statement.seq, admitted.hash)
    room_key = RoomKey.generate(department=department.id, version=1)
    everyone = [head, *department.members]
    record, wraps = new_key_version(
        room_key,
        at=at,
        creator_user=head.pk,
        creator=keys[head.pk],
        recipients=[*(keys[user.pk].public for user in everyone), compliance],
    )
    check_publish_key_version(
        head, department.id, 1, record.to_dict(), [wrap.to_dict() for wrap in wraps]
    )
    return room_key


def seed_demo_keys(
    admin: User,
    admin_key: IdentityKeyPair,
    compliance: PublicIdentity,
    departments: Sequence[DemoDepartment],
    password: str,
) -> dict[str, str]:
    """Every clinician's keys, each department's signed membership and room key version 1,
    for the demo only (module docstring). Returns each clinician's recovery code by
    username, to print."""
    keys: dict[int, IdentityKeyPair] = {}
    codes: dict[str, str] = {}
    for department in departments:
        for user in (department.head, *department.members):
            codes[user.username] = demo_recovery_code(user.username, password)
            keys[user.pk] = publish_identity(user, codes[user.username])
    for department in departments:
        admit_department(admin, admin_key, compliance, department, keys)
    return codes


# --- The demo's on-call roster (docs/oncall.md) ----------------------------------------

# Each department's roles: (name, who takes turns, day and night or nights only).
ROSTER_DAYS = 14
DAY_STARTS, NIGHT_STARTS = 8, 20  # local hours of the two handovers


@dataclass
class DemoRole:
    name: str
    holders: Sequence[User]
    nights_only: bool = False


def demo_shift_starts(now: datetime, tz: tzinfo, days: int = ROSTER_DAYS) -> list[datetime]:
    """The handovers (08:00 and 20:00 local) from the last one before `now` to the first
    one at least `days` days after it: the shifts between them cover `now` and the
    `days` days that follow."""
    local = now.astimezone(tz)
    hour = DAY_STARTS if DAY_STARTS <= local.hour < NIGHT_STARTS else NIGHT_STARTS
    first = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if local.hour < DAY_STARTS:
        first -= timedelta(days=1)
    starts = [first]
    while starts[-1] < now + timedelta(days=days):
        # Wall-clock arithmetic, then back to an aware time: a DST change keeps 08:00.
        following = starts[-1].replace(tzinfo=None) + timedelta(hours=12)
        starts.append(following.replace(tzinfo=tz))
    return starts


def seed_demo_roster(
    head: User, department_id: int, roles: Sequence[DemoRole], now: datetime, tz: tzinfo
) -> int:
    """The department's on-call roles and a roster of 12-hour shifts covering the next
    `ROSTER_DAYS` days, taken in turn by each role's holders, through the head's own
    actions (audited as a head's would be). Returns the number of shifts."""
    starts = demo_shift_starts(now, tz)
    count = 0
    for spec in roles:
        role = OnCallRole.objects.get(pk=do_create_role(head, department_id, spec.name)["id"])
        turn = 0
        for index, start in enumerate(starts[:-1]):
            if spec.nights_only and start.astimezone(tz).hour != NIGHT_STARTS:
                continue
            holder = spec.holders[turn % len(spec.holders)]
            turn += 1
            do_add_shift(head, role, holder.pk, start, starts[index + 1])
            count += 1
    return count
