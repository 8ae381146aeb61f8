"""Membership statements (v2): who may read a department, signed by a head, hash-linked.

The server controls membership tables, so it must not be able to add a
reader by itself, nor hide a removal. Every change to a department's
membership is a statement signed by someone who is a head at that point
(the first head by the institution's admin key, whose fingerprint clients
pin), numbered (`seq`, from 1) and linked to the statement before it
(`prev`, the previous statement's hash), so the department's history is one
chain: a statement left out of the middle breaks it, and a chain cut short
is caught by any client that knows a later head (chain.py).

Signed bytes: CONTEXT_STATEMENT + canonical_json(statement.to_dict()).
Hash: SHA-256(CHAIN_DOMAIN + canonical_json(signed.to_dict())), over the
statement and its signature.
"""

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from .encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_fingerprint,
    check_hash,
    check_id,
    check_version,
    parse_timestamp,
)
from .errors import BadSignature, InvalidEnvelope
from .identity import CONTEXT_STATEMENT, IdentityKeyPair, PublicIdentity

STATEMENT_VERSION = 2
KINDS = ("admit", "remove", "role", "replace", "guest", "unguest")
# A consult's guest reads and writes one thread of the department (docs/crypto.md §14).
GUEST_KINDS = ("guest", "unguest")
ROLES = ("head", "member", "guest")
# The `prev` of a department's first statement, and the hash of the empty chain.
GENESIS = "0" * 64
CHAIN_DOMAIN = b"rounds-chain-v2\0"

Kind = Literal["admit", "remove", "role", "replace", "guest", "unguest"]
Role = Literal["head", "member", "guest"]

_FIELDS = (
    "v",
    "department",
    "seq",
    "prev",
    "kind",
    "subject_user",
    "subject_fingerprint",
    "replaces",
    "role",
    "issued_at",
    "signer_user",
    "signer_fingerprint",
)


@dataclass(frozen=True)
class MembershipStatement:
    """One change to a department's membership, at position `seq` of its chain.

    - `admit`: `subject_user` joins with `role` and the key `subject_fingerprint`.
    - `role`: `subject_user`, already a member, now has `role`.
    - `remove`: `subject_user` leaves; `role` is the role they held.
    - `replace`: `subject_user`'s key `replaces` is replaced by
      `subject_fingerprint` (a lost phone and recovery code, a compromised
      key); `role` is the role they hold, unchanged.

    - `guest`: `subject_user`, with the key `subject_fingerprint`, may read
      and write the one thread `thread` of the department (a consult);
      `unguest` ends it. `role` is "guest" in both, and only in them.

    `replaces` is None for every other kind, `thread` None for every kind but
    `guest` and `unguest` (and then absent from the signed bytes, which keep
    their exact form). `signer_user` is None only for a
    statement signed by the institution's admin key. Fingerprints are those
    of `PublicIdentity.fingerprint`; `prev` is the previous statement's hash
    (`GENESIS` for `seq` 1).
    """

    department: int
    seq: int
    prev: str
    kind: Kind
    subject_user: int
    subject_fingerprint: str
    replaces: str | None
    role: Role
    issued_at: str
    signer_user: int | None
    signer_fingerprint: str
    thread: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidEnvelope(f"kind must be one of {KINDS}")
        if self.role not in ROLES:
            raise InvalidEnvelope(f"role must be one of {ROLES}")
        if (self.kind in GUEST_KINDS) != (self.role == "guest"):
            raise InvalidEnvelope("role is guest exactly for a guest or unguest statement")
        if self.kind in GUEST_KINDS:
            check_id(self.thread, "thread")
        elif self.thread is not None:
            raise InvalidEnvelope("thread is only for a guest or unguest statement")
        check_id(self.department, "department")
        check_id(self.seq, "seq")
        check_hash(self.prev, "prev")
        if (self.seq == 1) != (self.prev == GENESIS):
            raise InvalidEnvelope("prev is the genesis value exactly for the first statement")
        check_id(self.subject_user, "subject_user")
        if self.signer_user is not None:
            check_id(self.signer_user, "signer_user")
        check_fingerprint(self.subject_fingerprint, "subject_fingerprint")
        check_fingerprint(self.signer_fingerprint, "signer_fingerprint")
        if self.kind == "replace":
            check_fingerprint(self.replaces, "replaces")
            if self.replaces == self.subject_fingerprint:
                raise InvalidEnvelope("a replacement names a new key")
        elif self.replaces is not None:
            raise InvalidEnvelope("replaces is only for a replace statement")
        parse_timestamp(self.issued_at, "issued_at")

    @property
    def issued(self) -> datetime:
        return parse_timestamp(self.issued_at, "issued_at")

    def to_dict(self) -> dict[str, Any]:
        data = {"v": STATEMENT_VERSION, **asdict(self)}
        if self.thread is None:
            del data["thread"]
        return data

    @classmethod
    def from_dict(cls, data: Any) -> "MembershipStatement":
        if not isinstance(data, dict):
            raise InvalidEnvelope("statement must be an object")
        check_version(data, "statement", STATEMENT_VERSION)
        expected = (*_FIELDS, "thread") if data.get("kind") in GUEST_KINDS else _FIELDS
        if set(data) != set(expected):
            raise InvalidEnvelope(f"statement: expected exactly the keys {sorted(expected)}")
        for name in ("kind", "role"):
            if not isinstance(data[name], str):
                raise InvalidEnvelope(f"{name} must be a string")
        fields = {name: data[name] for name in expected if name != "v"}
        return cls(**fields)

    def signed_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    def describe(self) -> str:
        if self.thread is not None:
            return f"{self.kind} user {self.subject_user} in thread {self.thread}"
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

    @property
    def hash(self) -> str:
        """This statement's link: what the next statement names as `prev`."""
        return statement_hash(self)


def statement_hash(signed: SignedStatement) -> str:
    """SHA-256 over the domain, the statement and its signature, in hex."""
    return hashlib.sha256(CHAIN_DOMAIN + canonical_json(signed.to_dict())).hexdigest()


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
