"""Messages: sealed under the current version for the chain head verified, opened only
when the chain, the key version and the replay memory all agree.

Writing (docs/crypto.md §9, R4): the envelope names the version
client/roomkeys.py checked as current, and the chain head this client
verified. Reading (R5, R6): the sender's key is the one the chain admitted
at the head the envelope names, the version's record must verify and allow
it, and an envelope seen before under another message id is a duplicate,
another envelope under a seen (sender, client_msg_id) a replay.
"""

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, NamedTuple

from client.errors import RoundsClientError, crypto_refusal
from client.trust import envelope_hash
from core.crypto import (
    MAX_PLAINTEXT,
    CryptoError,
    EnvelopeHeader,
    check_current,
    encrypt_message,
    open_envelope,
    parse_envelope,
)

if TYPE_CHECKING:
    from client.sdk import RoundsClient

# Pauses between tries of a post the server could not store (`internal_error`).
RETRY_PAUSES = (0.2, 0.5, 1.0)


class Opened(NamedTuple):
    """A verified, decrypted message: its plaintext and the header it came with
    (`header.sent_at` is the sender's clock, `header.head` the chain head they verified)."""

    plaintext: bytes
    header: EnvelopeHeader


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
        if len(plaintext) > MAX_PLAINTEXT:
            raise RoundsClientError(
                "frame_too_large",
                f"A message is at most {MAX_PLAINTEXT} bytes of UTF-8.",
                {"max_plaintext": MAX_PLAINTEXT},
            )
        client_msg_id = client_msg_id or uuid.uuid4().hex
        me = client.me()
        for attempt in range(2):
            key, head = await self._writing_key(department)
            try:
                envelope = encrypt_message(
                    plaintext,
                    room_key=key,
                    head=head,
                    thread=thread_id,
                    sender=me,
                    client_msg_id=client_msg_id,
                    signer=identity,
                )
            except CryptoError as error:
                raise crypto_refusal(error) from None
            try:
                ack = await self._post(thread_id, envelope, client_msg_id, attachments)
            except RoundsClientError as error:
                if error.code != "key_rotation_required" or attempt:
                    raise
                client.keys.forget_current(department)
                continue
            client.trust.remember(me, client_msg_id, envelope_hash(envelope), ack.get("message_id"))
            return ack
        raise AssertionError("unreachable")

    async def _post(
        self, thread_id: int, envelope: dict[str, Any], client_msg_id: str, attachments: Any
    ) -> dict[str, Any]:
        """Post, trying again after a server's `internal_error` (a database restarting):
        the same envelope under the same client_msg_id is never stored twice."""
        for pause in (*RETRY_PAUSES, None):
            try:
                return await self.client.post(thread_id, envelope, client_msg_id, attachments)
            except RoundsClientError as error:
                if error.code != "internal_error" or pause is None:
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _writing_key(self, department: int) -> tuple[Any, Any]:
        """The version checked as current and the chain head to name; checked again when
        an event or a refusal made this client forget it."""
        client = self.client
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
        """Verify and decrypt a `message.new` frame, or a message of a history page.

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
        if (header.thread, header.room, header.sender, header.client_msg_id) != (
            thread_id,
            department,
            sender_id,
            client_msg_id,
        ):
            raise RoundsClientError(
                "envelope_mismatch",
                "The envelope was made for another thread, department, sender or client_msg_id.",
            )
        chain = await client.membership.chain(department, covers=header.head)
        room_key, record = await client.room_keys.version(department, header.key_version)
        chain = await client.membership.chain(department, covers=header.head)
        try:
            _, plaintext = open_envelope(envelope, chain=chain, record=record, room_key=room_key)
        except CryptoError as error:
            raise crypto_refusal(error) from None
        self._check_seen(sender_id, client_msg_id, envelope, message.get("id"))
        return Opened(plaintext, header)

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
