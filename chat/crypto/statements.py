"""Membership statements: who may read a department, signed by a head.

The server controls membership tables, so it must not be able to add a
reader by itself. Clients wrap room keys only to members whose admission
verifies: a chain of statements, each signed by someone who is a head at
that point of the chain, rooted in the institution's admin key (whose
fingerprint is pinned in client configuration, never taken from the
server).

Signed bytes: CONTEXT_STATEMENT + canonical_json(statement.to_dict()).
"""

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from .encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_fingerprint,
    check_id,
    check_version,
)
from .errors import BadSignature, CryptoError, InvalidEnvelope, InvalidKey
from .identity import CONTEXT_STATEMENT, IdentityKeyPair, PublicIdentity

STATEMENT_VERSION = 1
KINDS = ("admit", "remove", "role")
ROLES = ("head", "member")
# RFC 3339 with a mandatory offset: what Python's isoformat() and the
# browser's toISOString() both write, and nothing looser.
_ISSUED_AT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})", re.ASCII
)

Kind = Literal["admit", "remove", "role"]
Role = Literal["head", "member"]

_FIELDS = (
    "v",
    "kind",
    "department",
    "subject_user",
    "subject_fingerprint",
    "role",
    "issued_at",
    "signer_user",
    "signer_fingerprint",
)


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str) or not _ISSUED_AT.fullmatch(value):
        raise InvalidEnvelope(
            "issued_at must be RFC 3339 with an offset, e.g. 2025-01-31T08:00:00Z"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEnvelope("issued_at is not a valid date and time") from None


@dataclass(frozen=True)
class MembershipStatement:
    """One change to a department's membership.

    - `admit`: `subject_user` joins with `role`.
    - `role`: `subject_user`, already a member, now has `role`.
    - `remove`: `subject_user` leaves; `role` is the role they held.

    `signer_user` is None only for a statement signed by the institution's
    admin key. Fingerprints are those of `PublicIdentity.fingerprint`.
    """

    kind: Kind
    department: int
    subject_user: int
    subject_fingerprint: str
    role: Role
    issued_at: str
    signer_user: int | None
    signer_fingerprint: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidEnvelope(f"kind must be one of {KINDS}")
        if self.role not in ROLES:
            raise InvalidEnvelope(f"role must be one of {ROLES}")
        check_id(self.department, "department")
        check_id(self.subject_user, "subject_user")
        if self.signer_user is not None:
            check_id(self.signer_user, "signer_user")
        check_fingerprint(self.subject_fingerprint, "subject_fingerprint")
        check_fingerprint(self.signer_fingerprint, "signer_fingerprint")
        _parse_time(self.issued_at)

    @property
    def issued(self) -> datetime:
        return _parse_time(self.issued_at)

    def to_dict(self) -> dict[str, Any]:
        return {"v": STATEMENT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> "MembershipStatement":
        if not isinstance(data, dict):
            raise InvalidEnvelope("statement must be an object")
        check_version(data, "statement")
        if set(data) != set(_FIELDS):
            raise InvalidEnvelope(f"statement: expected exactly the keys {sorted(_FIELDS)}")
        for name in ("kind", "role"):
            if not isinstance(data[name], str):
                raise InvalidEnvelope(f"{name} must be a string")
        fields = {name: data[name] for name in _FIELDS if name != "v"}
        return cls(**fields)

    def signed_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    def describe(self) -> str:
        return f"{self.kind} user {self.subject_user} as {self.role}"


@dataclass(frozen=True)
class SignedStatement:
    """A statement and the signer's 64-byte Ed25519 signature over it."""

    statement: MembershipStatement
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.statement, MembershipStatement):
            raise TypeError("statement must be a MembershipStatement")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise InvalidEnvelope("sig: expected 64 bytes")

    def to_dict(self) -> dict[str, Any]:
        return {"statement": self.statement.to_dict(), "sig": b64encode(self.signature)}

    @classmethod
    def from_dict(cls, data: Any) -> "SignedStatement":
        if not isinstance(data, dict) or set(data) != {"statement", "sig"}:
            raise InvalidEnvelope("signed statement: expected exactly statement and sig")
        return cls(
            statement=MembershipStatement.from_dict(data["statement"]),
            signature=b64decode(data["sig"], size=64, field="sig"),
        )


def sign_statement(statement: MembershipStatement, signer: IdentityKeyPair) -> SignedStatement:
    """Sign a statement; the statement must already name this signer's fingerprint."""
    if statement.signer_fingerprint != signer.fingerprint:
        raise ValueError("statement.signer_fingerprint is not this signer's fingerprint")
    return SignedStatement(statement, signer.sign(CONTEXT_STATEMENT, statement.signed_bytes()))


def verify_statement(signed: SignedStatement, signer_public: PublicIdentity) -> MembershipStatement:
    """Check that `signer_public` made this statement; return it.

    Raises:
        BadSignature: The statement names another signer, or the signature fails.
    """
    statement = signed.statement
    if statement.signer_fingerprint != signer_public.fingerprint:
        raise BadSignature("statement names another signer")
    signer_public.verify(CONTEXT_STATEMENT, statement.signed_bytes(), signed.signature)
    return statement


def _at(index: int, statement: MembershipStatement, error: CryptoError) -> CryptoError:
    error.args = (f"statement {index} ({statement.describe()}): {error.args[0]}",)
    error.statement_index = index
    return error


@dataclass(frozen=True)
class AttestedMember:
    """A member as the chain has them: their role and the key they were admitted with."""

    role: Role
    fingerprint: str


@dataclass(frozen=True)
class MembershipChain:
    """A verified chain, replayed.

    `members`: who is in the department now, by user id. `ever_admitted`:
    every identity fingerprint the chain ever admitted, so a client can
    accept a room key wrapped by someone who has since left (for the
    versions made while they were a member) and no one else.
    """

    members: dict[int, AttestedMember]
    ever_admitted: frozenset[str]

    def roles(self) -> dict[int, str]:
        return {user: member.role for user, member in self.members.items()}


def verify_membership_chain(
    statements: list[SignedStatement],
    *,
    admin_key: PublicIdentity,
    keys: Iterable[PublicIdentity],
) -> dict[int, str]:
    """Replay one department's statements in order; return its members and roles.

    See `replay_membership_chain`, which this calls, for the rules.
    """
    return replay_membership_chain(statements, admin_key=admin_key, keys=keys).roles()


def replay_membership_chain(
    statements: list[SignedStatement],
    *,
    admin_key: PublicIdentity,
    keys: Iterable[PublicIdentity],
) -> MembershipChain:
    """Replay one department's statements in order; return who is a member with which key.

    `keys` are the public identities the chain refers to (signers and
    members, including keys since replaced), in any order: each is found by
    its own fingerprint, so a key listed under a wrong name is never used.

    Rules, checked for each statement in turn:

    - All statements are for one department, and `issued_at` never goes back.
    - A statement signed by the admin key (`signer_user` None) is accepted
      only while the department has no head, and only to make someone head:
      that appoints the first head, and re-appoints one if the last head
      left. Every other statement must be signed by a user who is a head at
      that point, with the key they were admitted with.
    - `admit` needs a non-member, `role` and `remove` a member whose
      fingerprint is the one they were admitted with; `role` must change
      the role, and `remove` must name the role held.

    Finally every remaining member's admitted key must be among `keys`,
    since that is the key the caller will wrap to.

    The chain proves who was admitted by whom; it cannot prove that the
    server returned every statement (see docs/crypto.md, "Limits").

    Raises:
        BadSignature: A signature fails, or a signer is not allowed to sign
            it; the message and the `statement_index` attribute name it.
        InvalidEnvelope: A statement does not fit the membership at that point.
        InvalidKey: A signer's or member's key is missing.
    """
    by_fingerprint = {key.fingerprint: key for key in keys}
    members: dict[int, tuple[Role, str]] = {}  # user -> (role, fingerprint)
    ever_admitted: set[str] = set()
    department: int | None = None
    last_time: datetime | None = None

    for index, signed in enumerate(statements):
        st = signed.statement
        try:
            if department is None:
                department = st.department
            elif st.department != department:
                raise InvalidEnvelope(f"department {st.department}, not {department}")
            moment = st.issued
            if last_time is not None and moment < last_time:
                raise InvalidEnvelope("issued_at goes back in time")
            last_time = moment

            has_head = any(role == "head" for role, _ in members.values())
            if st.signer_user is None:
                if st.signer_fingerprint != admin_key.fingerprint:
                    raise BadSignature("signed by neither a user nor the admin key")
                if has_head:
                    raise BadSignature("the admin key may only appoint a head when there is none")
                if st.role != "head" or st.kind == "remove":
                    raise BadSignature("the admin key may only appoint a head")
                verify_statement(signed, admin_key)
            else:
                held = members.get(st.signer_user)
                if held is None or held[0] != "head":
                    raise BadSignature(f"signer {st.signer_user} is not a head at this point")
                if st.signer_fingerprint != held[1]:
                    raise InvalidKey(f"signer {st.signer_user}'s key is not the one admitted")
                signer_key = by_fingerprint.get(held[1])
                if signer_key is None:
                    raise InvalidKey(f"no key for signer {st.signer_user}")
                verify_statement(signed, signer_key)

            current = members.get(st.subject_user)
            if st.kind == "admit":
                if current is not None:
                    raise InvalidEnvelope("subject is already a member")
                members[st.subject_user] = (st.role, st.subject_fingerprint)
                ever_admitted.add(st.subject_fingerprint)
            else:
                if current is None:
                    raise InvalidEnvelope("subject is not a member")
                if current[1] != st.subject_fingerprint:
                    raise InvalidEnvelope("subject fingerprint is not the one admitted")
                if st.kind == "role":
                    if current[0] == st.role:
                        raise InvalidEnvelope("subject already has this role")
                    members[st.subject_user] = (st.role, current[1])
                else:
                    if current[0] != st.role:
                        raise InvalidEnvelope("remove names another role than the one held")
                    del members[st.subject_user]
        except CryptoError as error:
            raise _at(index, st, error) from None

    for user, (_, fingerprint) in members.items():
        if fingerprint not in by_fingerprint:
            raise InvalidKey(f"member {user}: the key they were admitted with is missing")
    return MembershipChain(
        members={user: AttestedMember(role, fp) for user, (role, fp) in members.items()},
        ever_admitted=frozenset(ever_admitted),
    )
