"""Message envelope v2: XChaCha20-Poly1305 under the room key, signed by the sender.

Wire form (a JSON object, as the server's `Envelope` frame model carries it):

    {"header": {"v": 2, "room": int, "thread": int, "key_version": int,
                "key_commitment": b64(32 bytes), "chain_seq": int,
                "chain_head": hex(32 bytes), "sender": int,
                "client_msg_id": str, "sent_at": RFC 3339,
                "nonce": b64(24 bytes), "sig": b64(64 bytes),
                "corrects": str (a correction only)},
     "ciphertext": b64(plaintext + 16-byte tag)}

- `corrects`, present only in a correction, is the `client_msg_id` of the
  message it replaces, sent by the same sender in the same thread. It is in
  the AD, so signed: a server cannot move a correction onto another
  message, because the message a reader holds carries that client_msg_id
  in its own signed header. Not its `seq`: the server numbers messages, and
  a number nobody signed binds nothing. Absent, the AD is byte for byte
  what it was before corrections existed.

- AD = canonical_json(the header without nonce and sig), so the ciphertext
  only opens in the room, thread and key version it was written for, under
  the name of its sender, and carries the chain head its sender had
  verified: a reader whose server withholds a statement the sender saw
  notices it (chain.py), and one whose server forked the chain too.
- sig = Ed25519(CONTEXT_ENVELOPE + AD + nonce + ciphertext) by the sender.
  AD is a self-delimiting JSON object and the nonce has a fixed size, so
  the concatenation is unambiguous.

The server calls `verify_envelope` with the sender's published key (it has
no room key); clients call `open_envelope`, which takes the sender's key
from the verified chain, never from the key directory.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

import nacl.bindings
import nacl.exceptions
import nacl.utils

from .chain import ChainHead, MembershipChain
from .encoding import (
    b64decode,
    b64encode,
    canonical_json,
    check_id,
    check_version,
    parse_timestamp,
)
from .errors import (
    DecryptionFailed,
    InvalidEnvelope,
    KeyCommitmentMismatch,
    SenderNotMember,
    StaleKeyVersion,
)
from .identity import CONTEXT_ENVELOPE, IdentityKeyPair, PublicIdentity
from .keyversions import KeyVersionRecord
from .roomkeys import COMMITMENT_SIZE, RoomKey, check_commitment

ENVELOPE_VERSION = 2
NONCE_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
SIGNATURE_SIZE = IdentityKeyPair.SIGNATURE_SIZE

# 47 KiB: base64 makes the ciphertext 4/3 as long, so the largest envelope
# (64,192 characters of ciphertext plus a header of at most ~650) fits the
# server's 64 KiB frame (ROUNDS_WS_MAX_FRAME_BYTES) with its message.post
# wrapper. 48 KiB would not: its ciphertext alone is 65,560 characters.
MAX_PLAINTEXT = 47 * 1024
MAX_CIPHERTEXT = MAX_PLAINTEXT + TAG_SIZE

# The same rule as core/protocol.py's ClientMsgId.
_CLIENT_MSG_ID = re.compile(r"[A-Za-z0-9_\-]{8,64}", re.ASCII)

_AD_KEYS = (
    "v",
    "room",
    "thread",
    "key_version",
    "key_commitment",
    "chain_seq",
    "chain_head",
    "sender",
    "client_msg_id",
    "sent_at",
)
_HEADER_KEYS = frozenset({*_AD_KEYS, "nonce", "sig"})
# `corrects` in a correction, `key` under a consult thread's key: each optional.
_OPTIONAL_KEYS = frozenset({"corrects", "key"})
# The one value of `key`: the envelope is under its thread's key (docs/crypto.md §14).
THREAD_KEY = "thread"


@dataclass(frozen=True)
class EnvelopeHeader:
    """A parsed envelope header, plus the raw bytes it authenticates.

    :cvar VERSION: the envelope format version.
    """

    VERSION: ClassVar[int] = ENVELOPE_VERSION

    room: int
    thread: int
    key_version: int
    key_commitment: bytes
    chain_seq: int
    chain_head: str
    sender: int
    client_msg_id: str
    sent_at: str
    nonce: bytes
    signature: bytes
    ciphertext: bytes
    corrects: str | None = None
    key: str | None = None

    @property
    def under_thread_key(self) -> bool:
        """Written under its consult thread's key rather than the room key."""
        return self.key == THREAD_KEY

    @property
    def key_thread(self) -> int | None:
        """The thread of the key it is under: its own thread's, or None for the room key."""
        return self.thread if self.under_thread_key else None

    @property
    def head(self) -> ChainHead:
        """The chain head the sender had verified when writing."""
        return ChainHead(self.chain_seq, self.chain_head)

    def associated_data(self) -> bytes:
        return _associated_data(
            room=self.room,
            thread=self.thread,
            key_version=self.key_version,
            key_commitment=self.key_commitment,
            chain_seq=self.chain_seq,
            chain_head=self.chain_head,
            sender=self.sender,
            client_msg_id=self.client_msg_id,
            sent_at=self.sent_at,
            corrects=self.corrects,
            key=self.key,
        )


def _associated_data(
    *,
    room: int,
    thread: int,
    key_version: int,
    key_commitment: bytes,
    chain_seq: int,
    chain_head: str,
    sender: int,
    client_msg_id: str,
    sent_at: str,
    corrects: str | None = None,
    key: str | None = None,
) -> bytes:
    fields: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "room": room,
        "thread": thread,
        "key_version": key_version,
        "key_commitment": b64encode(key_commitment),
        "chain_seq": chain_seq,
        "chain_head": chain_head,
        "sender": sender,
        "client_msg_id": client_msg_id,
        "sent_at": sent_at,
    }
    if corrects is not None:
        fields["corrects"] = corrects
    if key is not None:
        fields["key"] = key
    return canonical_json(fields)


def _check_client_msg_id(value: Any, field: str = "client_msg_id") -> str:
    if not isinstance(value, str) or not _CLIENT_MSG_ID.fullmatch(value):
        raise InvalidEnvelope(f"{field} must be 8 to 64 of A-Z a-z 0-9 _ -")
    return value


def _check_sent_at(value: Any) -> str:
    parse_timestamp(value, "sent_at")
    return value  # type: ignore[no-any-return]  # parse_timestamp took it: a str


def now_timestamp() -> str:
    """This moment as the browser's `toISOString()` writes it: UTC, milliseconds, `Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encrypt_message(
    plaintext: bytes,
    *,
    room_key: RoomKey,
    head: ChainHead,
    thread: int,
    sender: int,
    client_msg_id: str,
    signer: IdentityKeyPair,
    sent_at: str | None = None,
    nonce: bytes | None = None,
    corrects: str | None = None,
) -> dict[str, Any]:
    """Encrypt and sign a message body; return the wire dict.

    Args:
        plaintext: The body, at most MAX_PLAINTEXT bytes.
        room_key: The room's current key; its department, version and
            commitment go in the header. A consult thread's key (one with a
            `thread`) adds `"key": "thread"` and must be the key of `thread`.
        head: The head of the department's chain as the sender verified it.
        thread, sender, client_msg_id: Bound into the additional data.
        signer: The sender's identity (the key the chain admitted for them).
        sent_at: The sender's clock, RFC 3339; now when omitted.
        nonce: 24 bytes for test vectors only; random when omitted. Never
            reuse a nonce with the same room key.
        corrects: For a correction, the client_msg_id of the sender's
            message it replaces (signed in the header); None for a post.

    Raises:
        ValueError: The plaintext is too long, a nonce of the wrong size, or
            a thread key of another thread.
        InvalidEnvelope: An id, client_msg_id, corrects or sent_at out of range.
    """
    if not isinstance(plaintext, bytes):
        raise TypeError("plaintext must be bytes")
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"plaintext over MAX_PLAINTEXT ({MAX_PLAINTEXT} bytes)")
    if not isinstance(room_key, RoomKey) or not isinstance(signer, IdentityKeyPair):
        raise TypeError("room_key must be a RoomKey and signer an IdentityKeyPair")
    if not isinstance(head, ChainHead):
        raise TypeError("head must be a ChainHead")
    if nonce is None:
        nonce = nacl.utils.random(NONCE_SIZE)
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    check_id(thread, "thread")
    if room_key.thread is not None and room_key.thread != thread:
        raise ValueError(f"a key of thread {room_key.thread} for a message in thread {thread}")
    check_id(sender, "sender")
    _check_client_msg_id(client_msg_id)
    if corrects is not None:
        _check_client_msg_id(corrects, "corrects")
    sent_at = _check_sent_at(sent_at if sent_at is not None else now_timestamp())

    header: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "room": room_key.department,
        "thread": thread,
        "key_version": room_key.version,
        "key_commitment": b64encode(room_key.commitment),
        "chain_seq": head.seq,
        "chain_head": head.hash,
        "sender": sender,
        "client_msg_id": client_msg_id,
        "sent_at": sent_at,
    }
    if corrects is not None:
        header["corrects"] = corrects
    if room_key.thread is not None:
        header["key"] = THREAD_KEY
    ad = canonical_json(header)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, ad, nonce, bytes(room_key)
    )
    signature = signer.sign(CONTEXT_ENVELOPE, ad + nonce + ciphertext)
    header["nonce"] = b64encode(nonce)
    header["sig"] = b64encode(signature)
    return {"header": header, "ciphertext": b64encode(ciphertext)}


def parse_envelope(envelope: Any) -> EnvelopeHeader:
    """Parse an envelope strictly, without checking its signature.

    Exact key sets (`corrects` and `key` the optional keys), integers that are not
    booleans, ids within 1 .. 2**53 - 1, canonical base64 of the exact sizes,
    a chain head as chain.py has it, ciphertext of 16 .. MAX_CIPHERTEXT bytes.

    Raises:
        UnsupportedVersion: `header.v` is an integer other than 2.
        InvalidEnvelope: Anything else.
    """
    if not isinstance(envelope, dict) or set(envelope) != {"header", "ciphertext"}:
        raise InvalidEnvelope("envelope: expected exactly header and ciphertext")
    header = envelope["header"]
    if not isinstance(header, dict):
        raise InvalidEnvelope("envelope: header must be an object")
    check_version(header, "envelope", ENVELOPE_VERSION)
    keys = set(header)
    if not keys >= _HEADER_KEYS or not keys - _HEADER_KEYS <= _OPTIONAL_KEYS:
        raise InvalidEnvelope(
            f"envelope header: expected exactly the keys {sorted(_HEADER_KEYS)}, "
            "corrects in a correction and key under a thread key"
        )
    if "key" in header and header["key"] != THREAD_KEY:
        raise InvalidEnvelope(f'key: the only value is "{THREAD_KEY}"')
    text = envelope["ciphertext"]
    # Refuse an oversized ciphertext before decoding it.
    if not isinstance(text, str) or len(text) > 4 * (MAX_CIPHERTEXT // 3 + 1):
        raise InvalidEnvelope("ciphertext: expected base64 of at most MAX_CIPHERTEXT bytes")
    ciphertext = b64decode(text, field="ciphertext")
    if not TAG_SIZE <= len(ciphertext) <= MAX_CIPHERTEXT:
        raise InvalidEnvelope(f"ciphertext: expected {TAG_SIZE} to {MAX_CIPHERTEXT} bytes")
    head = ChainHead(header["chain_seq"], header["chain_head"])
    return EnvelopeHeader(
        room=check_id(header["room"], "room"),
        thread=check_id(header["thread"], "thread"),
        key_version=check_id(header["key_version"], "key_version"),
        key_commitment=b64decode(
            header["key_commitment"], size=COMMITMENT_SIZE, field="key_commitment"
        ),
        chain_seq=head.seq,
        chain_head=head.hash,
        sender=check_id(header["sender"], "sender"),
        client_msg_id=_check_client_msg_id(header["client_msg_id"]),
        sent_at=_check_sent_at(header["sent_at"]),
        nonce=b64decode(header["nonce"], size=NONCE_SIZE, field="nonce"),
        signature=b64decode(header["sig"], size=SIGNATURE_SIZE, field="sig"),
        ciphertext=ciphertext,
        corrects=None
        if "corrects" not in header
        else _check_client_msg_id(header["corrects"], "corrects"),
        key=header.get("key"),
    )


def _check_signature(parsed: EnvelopeHeader, sender_key: PublicIdentity) -> None:
    sender_key.verify(
        CONTEXT_ENVELOPE,
        parsed.associated_data() + parsed.nonce + parsed.ciphertext,
        parsed.signature,
    )


def verify_envelope(envelope: Any, *, sender_key: PublicIdentity) -> EnvelopeHeader:
    """Parse an envelope and check the sender's signature; no decryption.

    This is the server's check: it has the sender's registered public key,
    not the room key. The caller still compares `room`, `thread` and
    `sender` of the result with the route and the authenticated user.

    Raises:
        UnsupportedVersion, InvalidEnvelope: See `parse_envelope`.
        BadSignature: The signature is not the sender's over this envelope.
    """
    parsed = parse_envelope(envelope)
    _check_signature(parsed, sender_key)
    return parsed


def _decrypt(parsed: EnvelopeHeader, room_key: RoomKey) -> bytes:
    if (parsed.room, parsed.key_thread, parsed.key_version) != (
        room_key.department,
        room_key.thread,
        room_key.version,
    ):
        raise DecryptionFailed(
            f"envelope is for room {parsed.room} key {parsed.key_thread or 'room'} version "
            f"{parsed.key_version}, not room {room_key.department} key "
            f"{room_key.thread or 'room'} version {room_key.version}"
        )
    check_commitment(room_key, parsed.key_commitment)
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            parsed.ciphertext, parsed.associated_data(), parsed.nonce, bytes(room_key)
        )
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed("ciphertext does not authenticate under this room key") from None


def decrypt_message(envelope: Any, *, room_key: RoomKey, sender_key: PublicIdentity) -> bytes:
    """Verify the envelope against `sender_key`, then decrypt it with the room key.

    The primitive step of `open_envelope`, for callers that already chose
    the sender's key (test vectors). Returns the whole plaintext or raises;
    there is no partial result.

    Raises:
        UnsupportedVersion, InvalidEnvelope, BadSignature: See `verify_envelope`.
        KeyCommitmentMismatch: `room_key` is not the key the envelope commits to.
        DecryptionFailed: `room_key` is of another room or key version, or
            the ciphertext does not authenticate.
    """
    return _decrypt(verify_envelope(envelope, sender_key=sender_key), room_key)


def verify_envelope_in_chain(envelope: Any, chain: MembershipChain) -> EnvelopeHeader:
    """Parse an envelope and check its signature with the key the chain admitted for its sender.

    The sender must be a member at the chain head the envelope names (or,
    under a thread key, a guest of that thread), and that head must be in
    `chain` (the reader's verified chain of the room): a head beyond it
    means the server withholds statements from the reader.

    Raises:
        UnsupportedVersion, InvalidEnvelope: See `parse_envelope`, or another room.
        ChainWithheld, ChainFork: The sender's head is not in `chain`.
        SenderNotMember: The sender was not a member at that head.
        BadSignature: The signature is not by the key the chain admitted.
    """
    parsed = parse_envelope(envelope)
    if chain.department is not None and parsed.room != chain.department:
        raise InvalidEnvelope("the envelope names another department than the chain")
    chain.check_covers(parsed.head)
    member = chain.member_at(parsed.sender, parsed.chain_seq)
    if member is None and parsed.under_thread_key:
        member = chain.guest_at(parsed.thread, parsed.sender, parsed.chain_seq)
    if member is None:
        raise SenderNotMember(
            f"user {parsed.sender} was not a member at statement {parsed.chain_seq}"
            + (f", nor a guest of thread {parsed.thread}" if parsed.under_thread_key else "")
        )
    _check_signature(parsed, chain.key_of(member.fingerprint))
    return parsed


def check_key_version_of(
    parsed: EnvelopeHeader, record: KeyVersionRecord, chain: MembershipChain
) -> None:
    """The envelope's key version against its verified record and the sender's chain head.

    A sender who knew of a removal (or key replacement) must write under a
    version made after it; the version cannot postdate the sender's head.

    Raises:
        InvalidEnvelope: The record is of another version, or newer than the sender's head.
        KeyCommitmentMismatch: The envelope commits to another key than the record.
        StaleKeyVersion: The version was made before a removal the sender knew of.
    """
    if (record.department, record.thread, record.version) != (
        parsed.room,
        parsed.key_thread,
        parsed.key_version,
    ):
        raise InvalidEnvelope("the key version record is of another department, thread or version")
    if not nacl.bindings.sodium_memcmp(record.commitment, parsed.key_commitment):
        raise KeyCommitmentMismatch("the envelope commits to another key than its key version")
    if record.chain_seq > parsed.chain_seq:
        raise InvalidEnvelope("the envelope's chain head is older than its key version")
    excluded_at = chain.last_exclusion_at(parsed.chain_seq, parsed.key_thread)
    if record.chain_seq < excluded_at:
        raise StaleKeyVersion(
            f"written under key version {record.version} (statement {record.chain_seq}) after "
            f"the removal or key replacement of statement {excluded_at}"
        )


def open_envelope(
    envelope: Any, *, chain: MembershipChain, record: KeyVersionRecord, room_key: RoomKey
) -> tuple[EnvelopeHeader, bytes]:
    """Everything a reader checks, then the plaintext: the client's one way in.

    `chain` is the reader's verified chain of the room, `record` the
    verified record of the envelope's key version (keyversions.py) and
    `room_key` its key. Returns the header and the whole plaintext, or raises.

    Raises:
        See `verify_envelope_in_chain`, `check_key_version_of`, and
        DecryptionFailed when the ciphertext does not authenticate.
    """
    parsed = verify_envelope_in_chain(envelope, chain)
    check_key_version_of(parsed, record, chain)
    return parsed, _decrypt(parsed, room_key)
