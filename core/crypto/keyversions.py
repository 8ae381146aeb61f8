"""Key version records: a room key version bound to the membership chain that made it.

The member who creates version N of a department's room key signs a record
naming the chain head they verified (`chain_seq`, `chain_head`), the version,
themselves, and the key's commitment:

    {"record": {"v": 2, "department": 12, "version": 4,
                "chain_seq": 9, "chain_head": "<64 hex>",
                "commitment": "<b64 of 32 bytes>",
                "creator_user": 7, "creator_fingerprint": "<64 hex>"},
     "sig": "<b64 of 64 bytes>"}

Signed bytes: CONTEXT_KEY_VERSION + canonical_json(record).

A client uses a version only if its creator was a member, with that key, at
the head the record names, and that head is in the chain it verified
(`verify_key_version`); it writes under a version only if no removal or key
replacement came after that head (`check_current`); and it keeps a key only
if the key matches the record's commitment (`roomkeys.check_commitment`).
So a server can neither hand out a key made by a removed member, nor keep
members writing under a key the removed member holds.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from .chain import ChainHead, MembershipChain
from .encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_fingerprint,
    check_hash,
    check_id,
    check_version,
)
from .errors import InvalidEnvelope, KeyVersionUnauthorized, StaleKeyVersion
from .identity import CONTEXT_KEY_VERSION, IdentityKeyPair
from .roomkeys import COMMITMENT_SIZE, RoomKey, check_commitment

KEY_VERSION_FORMAT = 2

_FIELDS = (
    "v",
    "department",
    "version",
    "chain_seq",
    "chain_head",
    "commitment",
    "creator_user",
    "creator_fingerprint",
)


@dataclass(frozen=True)
class KeyVersionRecord:
    """Version `version` of `department`'s room key, as its creator made it.

    With a `thread`, a version of that consult thread's key (docs/crypto.md
    §14); the key "thread" is then in the record, and absent otherwise.
    """

    department: int
    version: int
    chain_seq: int
    chain_head: str
    commitment: bytes = field(repr=False)
    creator_user: int
    creator_fingerprint: str
    thread: int | None = None

    def __post_init__(self) -> None:
        check_id(self.department, "department")
        check_id(self.version, "version")
        if self.thread is not None:
            check_id(self.thread, "thread")
        check_hash(self.chain_head, "chain_head")
        ChainHead(self.chain_seq, self.chain_head)  # the same rules as any head
        if not isinstance(self.commitment, bytes) or len(self.commitment) != COMMITMENT_SIZE:
            raise InvalidEnvelope(f"commitment: expected {COMMITMENT_SIZE} bytes")
        check_id(self.creator_user, "creator_user")
        check_fingerprint(self.creator_fingerprint, "creator_fingerprint")

    @property
    def head(self) -> ChainHead:
        return ChainHead(self.chain_seq, self.chain_head)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["commitment"] = b64encode(self.commitment)
        if self.thread is None:
            del data["thread"]
        return {"v": KEY_VERSION_FORMAT, **data}

    @classmethod
    def from_dict(cls, data: Any) -> "KeyVersionRecord":
        if not isinstance(data, dict):
            raise InvalidEnvelope("key version record must be an object")
        check_version(data, "key version record", KEY_VERSION_FORMAT)
        expected = (*_FIELDS, "thread") if "thread" in data else _FIELDS
        if set(data) != set(expected):
            raise InvalidEnvelope(f"key version record: expected exactly the keys {expected}")
        fields = {name: data[name] for name in expected if name != "v"}
        fields["commitment"] = b64decode(
            data["commitment"], size=COMMITMENT_SIZE, field="commitment"
        )
        return cls(**fields)

    def signed_bytes(self) -> bytes:
        return canonical_json(self.to_dict())


@dataclass(frozen=True)
class SignedKeyVersion:
    """A key version record and its creator's signature."""

    record: KeyVersionRecord
    signature: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.record, KeyVersionRecord):
            raise TypeError("record must be a KeyVersionRecord")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise InvalidEnvelope("sig: expected 64 bytes")

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record.to_dict(), "sig": b64encode(self.signature)}

    @classmethod
    def from_dict(cls, data: Any) -> "SignedKeyVersion":
        if not isinstance(data, dict) or set(data) != {"record", "sig"}:
            raise InvalidEnvelope("signed key version: expected exactly record and sig")
        return cls(
            record=KeyVersionRecord.from_dict(data["record"]),
            signature=b64decode(data["sig"], size=64, field="sig"),
        )


def make_key_version(
    room_key: RoomKey, *, head: ChainHead, creator_user: int, creator: IdentityKeyPair
) -> SignedKeyVersion:
    """The signed record of a new version, made at the chain head `head` by `creator`."""
    record = KeyVersionRecord(
        department=room_key.department,
        version=room_key.version,
        chain_seq=head.seq,
        chain_head=head.hash,
        commitment=room_key.commitment,
        creator_user=creator_user,
        creator_fingerprint=creator.fingerprint,
        thread=room_key.thread,
    )
    return SignedKeyVersion(record, creator.sign(CONTEXT_KEY_VERSION, record.signed_bytes()))


def verify_key_version(signed: SignedKeyVersion, chain: MembershipChain) -> KeyVersionRecord:
    """Check a key version against a verified chain of its department; return its record.

    Raises:
        InvalidEnvelope: The record is for another department.
        ChainWithheld, ChainFork: The head it names is not in `chain`.
        KeyVersionUnauthorized: Its creator was not a member, with the key
            named, at that head.
        BadSignature: The creator's signature does not verify.
    """
    record = signed.record
    if chain.department is not None and record.department != chain.department:
        raise InvalidEnvelope("the key version names another department")
    chain.check_covers(record.head)
    member = chain.member_at(record.creator_user, record.chain_seq)
    if member is None or member.fingerprint != record.creator_fingerprint:
        raise KeyVersionUnauthorized(
            f"key version {record.version} was made by user {record.creator_user}, who was not "
            f"a member with that key at statement {record.chain_seq}"
        )
    chain.key_of(record.creator_fingerprint).verify(
        CONTEXT_KEY_VERSION, record.signed_bytes(), signed.signature
    )
    return record


def check_current(record: KeyVersionRecord, chain: MembershipChain) -> None:
    """Refuse to write under a version made before the chain's latest removal or replacement.

    For a thread key, the end of a guest of that thread (`unguest`) counts too.

    Raises:
        StaleKeyVersion: A member removed (or a key replaced, or a guest
            ended) after this version was made may hold it.
    """
    excluded_at = chain.last_exclusion_at(chain.head.seq, record.thread)
    if record.chain_seq < excluded_at:
        raise StaleKeyVersion(
            f"key version {record.version} was made at statement {record.chain_seq}, before "
            f"the removal or key replacement of statement {excluded_at}"
        )


def check_key_matches(record: KeyVersionRecord, room_key: RoomKey) -> None:
    """Refuse a room key (from a wrap) that is not the one this version committed to.

    Raises:
        InvalidEnvelope: A key of another department or version.
        KeyCommitmentMismatch: Another key.
    """
    if (room_key.department, room_key.thread, room_key.version) != (
        record.department,
        record.thread,
        record.version,
    ):
        raise InvalidEnvelope("the room key is of another department, thread or version")
    check_commitment(room_key, record.commitment)
