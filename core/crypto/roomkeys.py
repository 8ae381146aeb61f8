"""Room keys, their commitments, and the signed wrap records that deliver them (v2).

A room (department) has a 32-byte key per numbered version. The member who
creates or shares a version seals it for each recipient's X25519 key
(`crypto_box_seal`, an anonymous sealed box) and signs a wrap record, so a
recipient knows who handed them the key and the server cannot slip in a key
of its own: it has no member's signing key.

The sealed content names its own department and version, and the recipient
checks them against the record: a wrap moved to another room or version,
even by a member who can sign, is refused. Every key version has one
commitment (`key_commitment`), signed in its key version record
(keyversions.py), in every wrap and in every envelope: a recipient checks
the key it unwraps against it, so a version cannot carry one key for some
members and another for others.
"""

from dataclasses import dataclass, field
from typing import Any, ClassVar

import nacl.bindings
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.utils

from .encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_fingerprint,
    check_id,
    check_version,
    parse_canonical_json,
)
from .errors import (
    BadSignature,
    DecryptionFailed,
    InvalidEnvelope,
    InvalidKey,
    KeyCommitmentMismatch,
)
from .identity import CONTEXT_WRAP, IdentityKeyPair, PublicIdentity

WRAP_VERSION = 2
COMMITMENT_DOMAIN = b"rounds-key-commitment-v2\0"
# A consult thread's key (docs/crypto.md §14): another domain, so a room key
# version can never pass for a thread key version, nor the other way round.
THREAD_COMMITMENT_DOMAIN = b"rounds-thread-key-commitment-v1\0"
COMMITMENT_SIZE = 32
SEAL_OVERHEAD = nacl.bindings.crypto_box_SEALBYTES  # ephemeral public key + tag
# The sealed content is about 80 bytes; anything much larger is not a wrap.
MAX_SEALED_SIZE = 512


class RoomKey:
    """Version `version` of department `department`'s 32-byte key.

    With a `thread`, the key of that one consult thread of the department
    (docs/crypto.md §14), versioned on its own; None for the room key.

    :cvar KEY_SIZE: the size of the key.
    """

    KEY_SIZE: ClassVar[int] = 32

    def __init__(
        self, key: bytes, *, department: int, version: int, thread: int | None = None
    ) -> None:
        if not isinstance(key, bytes) or len(key) != self.KEY_SIZE:
            raise InvalidKey(f"room key must be {self.KEY_SIZE} bytes")
        self.department = check_id(department, "department", ValueError)
        self.version = check_id(version, "version", ValueError)
        self.thread = None if thread is None else check_id(thread, "thread", ValueError)
        self._key = key

    @classmethod
    def generate(cls, *, department: int, version: int, thread: int | None = None) -> "RoomKey":
        return cls(
            nacl.utils.random(cls.KEY_SIZE), department=department, version=version, thread=thread
        )

    def __bytes__(self) -> bytes:
        return self._key

    @property
    def commitment(self) -> bytes:
        """32 bytes that bind this key to its department, thread and version (`key_commitment`)."""
        return key_commitment(
            self._key, department=self.department, version=self.version, thread=self.thread
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RoomKey):
            return NotImplemented
        return (self.department, self.thread, self.version) == (
            other.department,
            other.thread,
            other.version,
        ) and nacl.bindings.sodium_memcmp(self._key, other._key)

    def __hash__(self) -> int:
        return hash((self.department, self.thread, self.version))

    def __repr__(self) -> str:
        thread = "" if self.thread is None else f", thread={self.thread}"
        return f"RoomKey(department={self.department}{thread}, version={self.version})"


def key_commitment(
    key: bytes, *, department: int, version: int, thread: int | None = None
) -> bytes:
    """BLAKE2b-256 keyed with the room key, over the domain and canonical {department, version}.

    A thread key's commitment is over its own domain and {department,
    thread, version}. Keyed BLAKE2b is collision resistant in its key as
    well: no one, the key's creator included, can find a second key with the
    same commitment.
    """
    if thread is None:
        message = COMMITMENT_DOMAIN + canonical_json({"department": department, "version": version})
    else:
        message = THREAD_COMMITMENT_DOMAIN + canonical_json(
            {"department": department, "thread": thread, "version": version}
        )
    return nacl.hash.blake2b(
        message, digest_size=COMMITMENT_SIZE, key=key, encoder=nacl.encoding.RawEncoder
    )


def check_commitment(room_key: "RoomKey", commitment: bytes) -> None:
    """Refuse a room key that is not the one `commitment` names.

    Raises:
        KeyCommitmentMismatch: It is another key (or another department or version).
    """
    if not nacl.bindings.sodium_memcmp(room_key.commitment, commitment):
        raise KeyCommitmentMismatch(
            f"room key version {room_key.version} does not match its signed commitment"
        )


@dataclass(frozen=True)
class WrapRecord:
    """A room key version sealed for one recipient and signed by the wrapper.

    Signed bytes: CONTEXT_WRAP + canonical_json({"v", "department",
    "version", "commitment", "recipient_fp", "wrapper_fp"}, plus "thread"
    for a thread key) + sealed. The canonical JSON is a self-delimiting
    object, so the split is unambiguous.
    """

    department: int
    version: int
    commitment: bytes = field(repr=False)
    recipient_fp: str
    wrapper_fp: str
    sealed: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    thread: int | None = None

    def __post_init__(self) -> None:
        check_id(self.department, "department", InvalidEnvelope)
        check_id(self.version, "version", InvalidEnvelope)
        if self.thread is not None:
            check_id(self.thread, "thread", InvalidEnvelope)
        if not isinstance(self.commitment, bytes) or len(self.commitment) != COMMITMENT_SIZE:
            raise InvalidEnvelope(f"commitment: expected {COMMITMENT_SIZE} bytes")
        check_fingerprint(self.recipient_fp, "recipient_fp")
        check_fingerprint(self.wrapper_fp, "wrapper_fp")
        if (
            not isinstance(self.sealed, bytes)
            or not SEAL_OVERHEAD < len(self.sealed) <= MAX_SEALED_SIZE
        ):
            raise InvalidEnvelope("sealed: wrong size")
        if not isinstance(self.signature, bytes) or len(self.signature) != 64:
            raise InvalidEnvelope("sig: expected 64 bytes")

    def _fields(self) -> dict[str, Any]:
        return _record_fields(
            self.department,
            self.thread,
            self.version,
            self.commitment,
            self.recipient_fp,
            self.wrapper_fp,
        )

    def signed_bytes(self) -> bytes:
        return canonical_json(self._fields()) + self.sealed

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._fields(),
            "sealed": b64encode(self.sealed),
            "sig": b64encode(self.signature),
        }

    @classmethod
    def from_dict(cls, data: Any) -> "WrapRecord":
        """Parse a wrap record strictly: exact keys, types and sizes.

        Raises:
            UnsupportedVersion: `v` is an integer other than 2.
            InvalidEnvelope: Anything else that does not parse.
        """
        if not isinstance(data, dict):
            raise InvalidEnvelope("wrap record must be an object")
        check_version(data, "wrap record", WRAP_VERSION)
        expected = {
            "v",
            "department",
            "version",
            "commitment",
            "recipient_fp",
            "wrapper_fp",
            "sealed",
            "sig",
        }
        if "thread" in data:
            expected.add("thread")
        if set(data) != expected:
            raise InvalidEnvelope(f"wrap record: expected exactly the keys {sorted(expected)}")
        return cls(
            department=check_id(data["department"], "department", InvalidEnvelope),
            version=check_id(data["version"], "version", InvalidEnvelope),
            commitment=b64decode(data["commitment"], size=COMMITMENT_SIZE, field="commitment"),
            recipient_fp=check_fingerprint(data["recipient_fp"], "recipient_fp"),
            wrapper_fp=check_fingerprint(data["wrapper_fp"], "wrapper_fp"),
            sealed=b64decode(data["sealed"], field="sealed"),
            signature=b64decode(data["sig"], size=64, field="sig"),
            thread=None
            if "thread" not in data
            else check_id(data["thread"], "thread", InvalidEnvelope),
        )


def _record_fields(
    department: int,
    thread: int | None,
    version: int,
    commitment: bytes,
    recipient_fp: str,
    wrapper_fp: str,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "v": WRAP_VERSION,
        "department": department,
        "version": version,
        "commitment": b64encode(commitment),
        "recipient_fp": recipient_fp,
        "wrapper_fp": wrapper_fp,
    }
    if thread is not None:
        fields["thread"] = thread
    return fields


def _sealed_content(room_key: RoomKey) -> bytes:
    content: dict[str, Any] = {
        "department": room_key.department,
        "version": room_key.version,
        "key": b64encode(bytes(room_key)),
    }
    if room_key.thread is not None:
        content["thread"] = room_key.thread
    return canonical_json(content)


def wrap_room_key(
    room_key: RoomKey, *, recipient: PublicIdentity, wrapper: IdentityKeyPair
) -> WrapRecord:
    """Seal `room_key` for `recipient` and sign the record as `wrapper`.

    Only wrap for a member at the head of the department's verified chain
    (chain.py), or for the pinned compliance key.
    """
    if not isinstance(room_key, RoomKey):
        raise TypeError("room_key must be a RoomKey")
    if not isinstance(recipient, PublicIdentity) or not isinstance(wrapper, IdentityKeyPair):
        raise TypeError("recipient must be a PublicIdentity, wrapper an IdentityKeyPair")
    sealed = nacl.public.SealedBox(nacl.public.PublicKey(recipient.x25519)).encrypt(
        _sealed_content(room_key)
    )
    commitment = room_key.commitment
    fields = _record_fields(
        room_key.department,
        room_key.thread,
        room_key.version,
        commitment,
        recipient.fingerprint,
        wrapper.fingerprint,
    )
    return WrapRecord(
        department=room_key.department,
        version=room_key.version,
        commitment=commitment,
        recipient_fp=recipient.fingerprint,
        wrapper_fp=wrapper.fingerprint,
        sealed=bytes(sealed),
        signature=wrapper.sign(CONTEXT_WRAP, canonical_json(fields) + bytes(sealed)),
        thread=room_key.thread,
    )


def unwrap_room_key(
    record: WrapRecord, *, recipient: IdentityKeyPair, wrapper: PublicIdentity
) -> RoomKey:
    """Check the wrapper's signature, open the sealed key, check it belongs to this record.

    The key must match the record's commitment; the caller checks that
    commitment against the key version's record (keyversions.py).

    Raises:
        BadSignature: The record names another wrapper, or the signature fails.
        DecryptionFailed: The record is for another recipient, or does not open.
        InvalidEnvelope: The sealed content does not parse, or names another
            department or version than the record.
        KeyCommitmentMismatch: The sealed key is not the one the record commits to.
    """
    if not isinstance(record, WrapRecord):
        raise TypeError("record must be a WrapRecord")
    if record.wrapper_fp != wrapper.fingerprint:
        raise BadSignature("wrap record was not made by this wrapper")
    wrapper.verify(CONTEXT_WRAP, record.signed_bytes(), record.signature)
    if record.recipient_fp != recipient.fingerprint:
        raise DecryptionFailed("wrap record is for another recipient")
    try:
        content = nacl.public.SealedBox(recipient.box_key).decrypt(record.sealed)
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed("sealed room key does not open") from None
    data = parse_canonical_json(content)
    expected = {"department", "version", "key"} | ({"thread"} if record.thread else set())
    if not isinstance(data, dict) or set(data) != expected:
        raise InvalidEnvelope(f"sealed room key: expected exactly {sorted(expected)}")
    department = check_id(data["department"], "sealed department")
    version = check_id(data["version"], "sealed version")
    thread = check_id(data["thread"], "sealed thread") if record.thread else None
    if (department, thread, version) != (record.department, record.thread, record.version):
        raise InvalidEnvelope(
            "sealed room key names another department, thread or version than its record"
        )
    key = b64decode(data["key"], size=RoomKey.KEY_SIZE, field="key")
    room_key = RoomKey(key, department=department, version=version, thread=thread)
    check_commitment(room_key, record.commitment)
    return room_key
