"""Message envelope v1: XChaCha20-Poly1305 under the room key, signed by the sender.

Wire form (a JSON object, as the server's `Envelope` frame model carries it):

    {"header": {"v": 1, "room": int, "thread": int, "key_version": int,
                "sender": int, "client_msg_id": str,
                "nonce": b64(24 bytes), "sig": b64(64 bytes)},
     "ciphertext": b64(plaintext + 16-byte tag)}

- AD = canonical_json({v, room, thread, key_version, sender, client_msg_id}),
  so the ciphertext only opens in the room, thread and key version it was
  written for, under the name of its sender.
- sig = Ed25519(CONTEXT_ENVELOPE + AD + nonce + ciphertext) by the sender.
  AD is a self-delimiting JSON object and the nonce has a fixed size, so
  the concatenation is unambiguous.

The server calls `verify_envelope` (it has no room key); clients call
`decrypt_message`, which verifies first.
"""

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import nacl.bindings
import nacl.exceptions
import nacl.utils

from .encoding import b64decode, b64encode, canonical_json, check_id, check_version
from .errors import DecryptionFailed, InvalidEnvelope
from .identity import CONTEXT_ENVELOPE, IdentityKeyPair, PublicIdentity
from .roomkeys import RoomKey

ENVELOPE_VERSION = 1
NONCE_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_SIZE = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
SIGNATURE_SIZE = IdentityKeyPair.SIGNATURE_SIZE

# 47 KiB: base64 makes the ciphertext 4/3 as long, so the largest envelope
# (64,192 characters of ciphertext plus a header of at most ~400) fits the
# server's 64 KiB frame (ROUNDS_WS_MAX_FRAME_BYTES) with its message.post
# wrapper. 48 KiB would not: its ciphertext alone is 65,560 characters.
MAX_PLAINTEXT = 47 * 1024
MAX_CIPHERTEXT = MAX_PLAINTEXT + TAG_SIZE

# The same rule as chat/protocol.py's ClientMsgId.
_CLIENT_MSG_ID = re.compile(r"[A-Za-z0-9_\-]{8,64}", re.ASCII)

_HEADER_KEYS = frozenset(
    {"v", "room", "thread", "key_version", "sender", "client_msg_id", "nonce", "sig"}
)


@dataclass(frozen=True)
class EnvelopeHeader:
    """A parsed, signature-checked envelope header, plus the raw bytes it authenticates.

    :cvar VERSION: the envelope format version.
    """

    VERSION: ClassVar[int] = ENVELOPE_VERSION

    room: int
    thread: int
    key_version: int
    sender: int
    client_msg_id: str
    nonce: bytes
    signature: bytes
    ciphertext: bytes

    def associated_data(self) -> bytes:
        return _associated_data(
            self.room, self.thread, self.key_version, self.sender, self.client_msg_id
        )


def _associated_data(
    room: int, thread: int, key_version: int, sender: int, client_msg_id: str
) -> bytes:
    return canonical_json(
        {
            "v": ENVELOPE_VERSION,
            "room": room,
            "thread": thread,
            "key_version": key_version,
            "sender": sender,
            "client_msg_id": client_msg_id,
        }
    )


def _check_client_msg_id(value: Any) -> str:
    if not isinstance(value, str) or not _CLIENT_MSG_ID.fullmatch(value):
        raise InvalidEnvelope("client_msg_id must be 8 to 64 of A-Z a-z 0-9 _ -")
    return value


def encrypt_message(
    plaintext: bytes,
    *,
    room_key: RoomKey,
    thread: int,
    sender: int,
    client_msg_id: str,
    signer: IdentityKeyPair,
    nonce: bytes | None = None,
) -> dict[str, Any]:
    """Encrypt and sign a message body; return the wire dict.

    Args:
        plaintext: The body, at most MAX_PLAINTEXT bytes.
        room_key: The room's current key; its department and version go in
            the header.
        thread, sender, client_msg_id: Bound into the additional data.
        signer: The sender's identity (its public half is what the server
            has registered for `sender`).
        nonce: 24 bytes for test vectors only; random when omitted. Never
            reuse a nonce with the same room key.

    Raises:
        ValueError: The plaintext is too long, or a nonce of the wrong size.
        InvalidEnvelope: An id or client_msg_id out of range.
    """
    if not isinstance(plaintext, bytes):
        raise TypeError("plaintext must be bytes")
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f"plaintext over MAX_PLAINTEXT ({MAX_PLAINTEXT} bytes)")
    if not isinstance(room_key, RoomKey) or not isinstance(signer, IdentityKeyPair):
        raise TypeError("room_key must be a RoomKey and signer an IdentityKeyPair")
    if nonce is None:
        nonce = nacl.utils.random(NONCE_SIZE)
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
    check_id(thread, "thread")
    check_id(sender, "sender")
    _check_client_msg_id(client_msg_id)

    ad = _associated_data(room_key.department, thread, room_key.version, sender, client_msg_id)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, ad, nonce, bytes(room_key)
    )
    signature = signer.sign(CONTEXT_ENVELOPE, ad + nonce + ciphertext)
    return {
        "header": {
            "v": ENVELOPE_VERSION,
            "room": room_key.department,
            "thread": thread,
            "key_version": room_key.version,
            "sender": sender,
            "client_msg_id": client_msg_id,
            "nonce": b64encode(nonce),
            "sig": b64encode(signature),
        },
        "ciphertext": b64encode(ciphertext),
    }


def parse_envelope(envelope: Any) -> EnvelopeHeader:
    """Parse an envelope strictly, without checking its signature.

    Exact key sets, integers that are not booleans, ids within 1 .. 2**53 - 1,
    canonical base64 of the exact sizes, ciphertext of 16 .. MAX_CIPHERTEXT
    bytes.

    Raises:
        UnsupportedVersion: `header.v` is an integer other than 1.
        InvalidEnvelope: Anything else.
    """
    if not isinstance(envelope, dict) or set(envelope) != {"header", "ciphertext"}:
        raise InvalidEnvelope("envelope: expected exactly header and ciphertext")
    header = envelope["header"]
    if not isinstance(header, dict):
        raise InvalidEnvelope("envelope: header must be an object")
    check_version(header, "envelope")
    if set(header) != _HEADER_KEYS:
        raise InvalidEnvelope(f"envelope header: expected exactly the keys {sorted(_HEADER_KEYS)}")
    text = envelope["ciphertext"]
    # Refuse an oversized ciphertext before decoding it.
    if not isinstance(text, str) or len(text) > 4 * (MAX_CIPHERTEXT // 3 + 1):
        raise InvalidEnvelope("ciphertext: expected base64 of at most MAX_CIPHERTEXT bytes")
    ciphertext = b64decode(text, field="ciphertext")
    if not TAG_SIZE <= len(ciphertext) <= MAX_CIPHERTEXT:
        raise InvalidEnvelope(f"ciphertext: expected {TAG_SIZE} to {MAX_CIPHERTEXT} bytes")
    return EnvelopeHeader(
        room=check_id(header["room"], "room"),
        thread=check_id(header["thread"], "thread"),
        key_version=check_id(header["key_version"], "key_version"),
        sender=check_id(header["sender"], "sender"),
        client_msg_id=_check_client_msg_id(header["client_msg_id"]),
        nonce=b64decode(header["nonce"], size=NONCE_SIZE, field="nonce"),
        signature=b64decode(header["sig"], size=SIGNATURE_SIZE, field="sig"),
        ciphertext=ciphertext,
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
    sender_key.verify(
        CONTEXT_ENVELOPE,
        parsed.associated_data() + parsed.nonce + parsed.ciphertext,
        parsed.signature,
    )
    return parsed


def decrypt_message(envelope: Any, *, room_key: RoomKey, sender_key: PublicIdentity) -> bytes:
    """Verify the envelope, then decrypt it with the room key.

    Returns the whole plaintext or raises; there is no partial result.

    Raises:
        UnsupportedVersion, InvalidEnvelope, BadSignature: See `verify_envelope`.
        DecryptionFailed: `room_key` is not the key of this envelope's room
            and key version, or the ciphertext does not authenticate.
    """
    parsed = verify_envelope(envelope, sender_key=sender_key)
    if parsed.room != room_key.department or parsed.key_version != room_key.version:
        raise DecryptionFailed(
            f"envelope is for room {parsed.room} key version {parsed.key_version}, "
            f"not room {room_key.department} key version {room_key.version}"
        )
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            parsed.ciphertext, parsed.associated_data(), parsed.nonce, bytes(room_key)
        )
    except nacl.exceptions.CryptoError:
        raise DecryptionFailed("ciphertext does not authenticate under this room key") from None
