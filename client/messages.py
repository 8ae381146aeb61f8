"""Messages: sealed under the current version for the chain head verified, opened only
when the chain, the key version and the replay memory all agree.

Writing (docs/crypto.md §9, R4): the envelope names the version
client/roomkeys.py checked as current, and the chain head this client
verified. Reading (R5, R6): the sender's key is the one the chain admitted
at the head the envelope names, the version's record must verify and allow
it, and an envelope seen before under another message id is a duplicate,
another envelope under a seen (sender, client_msg_id) a replay.

Corrections (docs/protocol.md, message.correct): a correction is sealed like
a post, its signed header's `corrects` naming the corrected message's
client_msg_id. A reader opens the message, then its latest correction, and
shows the correction only if it passes every check of a message *and* is
bound to this message (same sender, thread and department, `corrects` its
client_msg_id); otherwise it shows the original, flagged (fail closed).
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from client.errors import RoundsClientError, crypto_refusal
from client.trust import envelope_hash
from core.crypto import (
    MAX_PLAINTEXT,
    CryptoError,
    EnvelopeHeader,
    IdentityKeyPair,
    check_current,
    encrypt_message,
    open_envelope,
    parse_envelope,
)

if TYPE_CHECKING:
    from client.sdk import RoundsClient

# Pauses between tries of a post the server could not store (`internal_error`).
RETRY_PAUSES = (0.2, 0.5, 1.0)


Send = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def _retrying(send: Send, envelope: dict[str, Any]) -> dict[str, Any]:
    """Send, trying again after a server's `internal_error` (a database restarting):
    the same envelope under the same client_msg_id is never stored twice."""
    for pause in (*RETRY_PAUSES, None):
        try:
            return await send(envelope)
        except RoundsClientError as error:
            if error.code != "internal_error" or pause is None:
                raise
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")


def check_plaintext_size(plaintext: bytes) -> None:
    """A message or a correction is refused on the device when its text would not fit
    a frame: `frame_too_large`, before anything is sealed or sent."""
    if len(plaintext) > MAX_PLAINTEXT:
        raise RoundsClientError(
            "frame_too_large",
            f"A message is at most {MAX_PLAINTEXT} bytes of UTF-8.",
            {"max_plaintext": MAX_PLAINTEXT},
        )


class Opened(NamedTuple):
    """A verified, decrypted message: its plaintext and the header it came with
    (`header.sent_at` is the sender's clock, `header.head` the chain head they verified).

    For a corrected message, `plaintext` is the latest correction's text when
    it verified (`edited`, its `version`: 2 for the first correction) and
    `header` still the original's. `correction_error` is set, and the
    original's text kept, when a correction came that could not be verified:
    show the original, flagged "correction could not be verified".
    """

    plaintext: bytes
    header: EnvelopeHeader
    edited: bool = False
    version: int = 1
    correction_error: str | None = None


def _fields(
    frame_or_message: dict[str, Any], department: int | None
) -> tuple[dict[str, Any], int | None]:
    message = frame_or_message
    if isinstance(frame_or_message.get("message"), dict):
        message = frame_or_message["message"]
        department = frame_or_message.get("department", department)
    return message, department


class Messages:
    """Sealing, posting and opening envelopes for the signed-in user."""

    def __init__(self, client: "RoundsClient") -> None:
        self.client = client

    async def post_body(
        self,
        thread: dict[str, Any] | int,
        plaintext: bytes,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Encrypt a message body, sign it and post it (with `attachments` refs, if any).

        If the server asks for a new key version first (`key_rotation_required`),
        checks or makes one and posts once more: a new envelope under the same
        client_msg_id, which is safe because the refused one was not stored.
        Returns the ack's result.
        """
        client = self.client
        identity = client.identity.keypair()
        if client.ws is None:
            raise RoundsClientError("not_connected", "Call connect() first.")
        if isinstance(thread, dict):
            thread_id = thread["id"]
            department = department or thread.get("department")
        else:
            thread_id = thread
        if department is None:
            department = await client.thread_department(thread_id)
        client.threads.setdefault(thread_id, department)
        check_plaintext_size(plaintext)
        client_msg_id = client_msg_id or uuid.uuid4().hex

        async def send(envelope: dict[str, Any]) -> dict[str, Any]:
            return await client.post(thread_id, envelope, client_msg_id, attachments)

        return await self._seal_and_send(
            department, thread_id, plaintext, client_msg_id, send, identity
        )

    async def correct(
        self,
        message: dict[str, Any],
        plaintext: bytes,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Replace the text of one's own `message` (a history message or a `message.new`
        frame) with `plaintext`: a new envelope under the current room key whose
        signed header names the message's client_msg_id. A retry under the same
        `client_msg_id` is answered once. Returns the ack's result (its `version`).
        """
        client = self.client
        identity = client.identity.keypair()
        if client.ws is None:
            raise RoundsClientError("not_connected", "Call connect() first.")
        message, department = _fields(message, department)
        thread_id = message["thread"]
        if department is None:
            department = await client.thread_department(thread_id)
        check_plaintext_size(plaintext)
        client_msg_id = client_msg_id or uuid.uuid4().hex

        async def send(envelope: dict[str, Any]) -> dict[str, Any]:
            frame = {
                "type": "message.correct",
                "message": message["id"],
                "client_msg_id": client_msg_id,
                "envelope": envelope,
            }
            return await client.request(frame)

        return await self._seal_and_send(
            department,
            thread_id,
            plaintext,
            client_msg_id,
            send,
            identity,
            corrects=message["client_msg_id"],
        )

    async def _seal_and_send(
        self,
        department: int,
        thread_id: int,
        plaintext: bytes,
        client_msg_id: str,
        send: Send,
        identity: IdentityKeyPair,
        corrects: str | None = None,
    ) -> dict[str, Any]:
        """Seal for the current key version and send; if the server asks for a new key
        version first (`key_rotation_required`), check or make one and send once more:
        a new envelope under the same client_msg_id, safe because the refused one was
        not stored. An `internal_error` (a database restarting) is tried again with the
        same envelope, which is never stored twice."""
        client = self.client
        me = client.me()
        for attempt in range(2):
            key, head = await self._writing_key(department, thread_id)
            try:
                envelope = encrypt_message(
                    plaintext,
                    room_key=key,
                    head=head,
                    thread=thread_id,
                    sender=me,
                    client_msg_id=client_msg_id,
                    signer=identity,
                    corrects=corrects,
                )
            except CryptoError as error:
                raise crypto_refusal(error) from None
            try:
                ack = await _retrying(send, envelope)
            except RoundsClientError as error:
                if error.code != "key_rotation_required" or attempt:
                    raise
                client.keys.forget_current(department)
                client.thread_keys.forget(thread_id)
                continue
            message_id = None if corrects is not None else ack.get("message_id")
            client.trust.remember(me, client_msg_id, envelope_hash(envelope), message_id)
            return ack
        raise AssertionError("unreachable")

    async def _writing_key(self, department: int, thread_id: int) -> tuple[Any, Any]:
        """The version checked as current and the chain head to name; checked again when
        an event or a refusal made this client forget it. A consult's thread is
        written under its own thread key (client/consults.py)."""
        client = self.client
        if thread_id in client.thread_keys.consults:
            return await client.thread_keys.current(thread_id)
        key = client.keys.current_key(department)
        record = None if key is None else client.keys.record(department, key.version)
        if key is not None and record is not None:
            chain = await client.membership.chain(department)
            try:
                check_current(record, chain)  # a removal this client has since seen
                return key, chain.head
            except CryptoError:
                client.keys.forget_current(department)
        return await client.room_keys.current(department)

    async def open(
        self, frame_or_message: dict[str, Any], *, department: int | None = None
    ) -> Opened:
        """Verify and decrypt a `message.new` frame, or a message of a history page;
        with its latest correction when it has one that verifies (see `Opened`).

        Raises:
            RoundsClientError: `redacted` (a tombstone), `envelope_mismatch`,
                `duplicate`, `replay`, `no_room_key`, a membership code
                (`membership_withheld`, `membership_fork`, …), a core.crypto
                code (`sender_not_member`, `bad_signature`, `key_version_stale`,
                `key_commitment_mismatch`, `decryption_failed`, …).
        """
        client = self.client
        message, department = _fields(frame_or_message, department)
        if message.get("redacted"):
            raise RoundsClientError(
                "redacted",
                "This message was removed; it is retained for compliance only.",
                dict(message["redacted"]),
            )
        try:
            thread_id = message["thread"]
            sender = message["sender"]
            sender_id = sender["id"] if isinstance(sender, dict) else sender
            client_msg_id = message["client_msg_id"]
            envelope = message["envelope"]
        except (KeyError, TypeError):
            raise RoundsClientError("invalid_envelope", "Not a message.") from None
        try:
            header = parse_envelope(envelope)
        except CryptoError as error:
            raise crypto_refusal(error) from None
        if department is None:
            department = await client.thread_department(thread_id)
        if (header.thread, header.room, header.sender, header.client_msg_id, header.corrects) != (
            thread_id,
            department,
            sender_id,
            client_msg_id,
            None,
        ):
            raise RoundsClientError(
                "envelope_mismatch",
                "The envelope was made for another thread, department, sender or "
                "client_msg_id, or is a correction.",
            )
        plaintext = await self._decrypt(envelope, header, department)
        self._check_seen(sender_id, client_msg_id, envelope, message.get("id"))
        correction = message.get("correction")
        if not correction:
            return Opened(plaintext, header)
        try:
            corrected = await self._open_correction(correction, header, department)
        except RoundsClientError as error:
            return Opened(plaintext, header, correction_error=error.code)
        return Opened(corrected, header, edited=True, version=correction["version"])

    async def _open_correction(
        self, correction: dict[str, Any], original: EnvelopeHeader, department: int
    ) -> bytes:
        """A correction's text, if it passes a message's checks and is bound to `original`.

        Raises:
            RoundsClientError: `correction_mismatch` (made for another message, or
                not a correction), or any refusal of `open`.
        """
        try:
            envelope = correction["envelope"]
            client_msg_id = correction["client_msg_id"]
            version = correction["version"]
            header = parse_envelope(envelope)
        except (KeyError, TypeError):
            raise RoundsClientError("invalid_envelope", "Not a correction.") from None
        except CryptoError as error:
            raise crypto_refusal(error) from None
        if (
            header.corrects,
            header.sender,
            header.thread,
            header.room,
            header.client_msg_id,
        ) != (
            original.client_msg_id,
            original.sender,
            original.thread,
            department,
            client_msg_id,
        ) or not (isinstance(version, int) and version >= 2):
            raise RoundsClientError(
                "correction_mismatch",
                "This correction was not made by the message's sender for this message.",
            )
        plaintext = await self._decrypt(envelope, header, department)
        self._check_seen(header.sender, client_msg_id, envelope, None)
        return plaintext

    async def _decrypt(self, envelope: Any, header: EnvelopeHeader, department: int) -> bytes:
        client = self.client
        chain = await client.membership.chain(department, covers=header.head)
        if header.under_thread_key:
            room_key, record = await client.thread_keys.version(header.thread, header.key_version)
        else:
            room_key, record = await client.room_keys.version(department, header.key_version)
        chain = await client.membership.chain(department, covers=header.head)
        try:
            _, plaintext = open_envelope(envelope, chain=chain, record=record, room_key=room_key)
        except CryptoError as error:
            raise crypto_refusal(error) from None
        return plaintext

    @staticmethod
    def with_correction(message: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        """`message` as a `message.corrected` event says it now reads: open the result.

        The event's word is not trusted: `open` checks that the correction is
        bound to this message and shows the original, flagged, when it is not.

        Raises:
            RoundsClientError: `correction_mismatch`, an event about another message.
        """
        message, _ = _fields(message, None)
        about = event.get("message") or {}
        if event.get("type") != "message.corrected" or about.get("id") != message.get("id"):
            raise RoundsClientError("correction_mismatch", "This event corrects another message.")
        return {**message, "correction": event.get("correction")}

    def _check_seen(
        self, sender: int, client_msg_id: str, envelope: Any, message_id: int | None
    ) -> None:
        """Remember a verified envelope; refuse a replay and a duplicate (R6)."""
        trust = self.client.trust
        digest = envelope_hash(envelope)
        seen = trust.seen(sender, client_msg_id)
        if seen is not None and seen.envelope_hash != digest:
            raise RoundsClientError(
                "replay",
                "Another message was already opened under this sender and client_msg_id.",
                {"sender": sender, "client_msg_id": client_msg_id},
            )
        kept = trust.remember(sender, client_msg_id, digest, message_id)
        if message_id is not None and kept.message_id not in (None, message_id):
            raise RoundsClientError(
                "duplicate",
                "This message was already delivered as another message: the server "
                "delivered it again.",
                {"message_id": kept.message_id, "sender": sender, "client_msg_id": client_msg_id},
            )
