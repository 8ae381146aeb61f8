"""`RoundsClient`: the Python SDK, end-to-end encryption included, failing closed.

A small façade over the client's parts, one job each, side by side with
the browser's (docs/crypto.md §9):

- client/transport.py `Connection`: HTTP and the WebSocket (this class is one);
- client/pins.py: the institution's pinned fingerprints (required);
- client/trust.py: what this device remembers across runs;
- client/identity.py: the user's identity, its backup and recovery;
- client/membership.py: the department's chain, verified; a head's signatures;
- client/roomkeys.py: key versions verified, made, shared;
- client/messages.py: envelopes sealed and opened;
- client/photo_sdk.py: photos (encrypted uploads, the library, the report);
- client/advice.py: advice requests and on-call roles;
- client/consults.py: consults across departments, their thread keys.

After `login()`: `setup_keys()` creates or recovers the identity,
`send_text()` encrypts and posts, `open_message()` verifies and decrypts;
heads `admit()`, `attest()`, `set_role()`, `remove_member()` and
`share_history()`; an administrator `appoint_head()` with the
institution's admin key. Every refusal, the server's or this client's, is a
`RoundsClientError` whose `code` says which.
"""

import os
from typing import Any

import httpx

from client.advice import AdviceMixin
from client.consults import ConsultMixin, ThreadKeys
from client.errors import RoundsClientError
from client.factors import FactorsMixin
from client.identity import Identity
from client.keys import KeyRing
from client.membership import Membership
from client.messages import Messages, Opened
from client.photo_sdk import PhotoMixin
from client.pins import resolve_pins
from client.roomkeys import RoomKeys
from client.transport import EVENT_TYPES, Connection, in_order_once
from client.trust import TrustStore
from core.crypto import IdentityKeyPair, RoomKey
from core.events import EventKind

__all__ = ["EVENT_TYPES", "RoundsClient", "RoundsClientError", "in_order_once"]


class RoundsClient(Connection, PhotoMixin, AdviceMixin, ConsultMixin, FactorsMixin):
    def __init__(
        self,
        base_url: str,
        *,
        origin: str | None = None,
        timeout: float = 10.0,
        pinned_admin_fingerprint: str | None = None,
        pinned_compliance_fingerprint: str | None = None,
        pins_file: str | os.PathLike[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """The pins come from configuration (client/pins.py), never from the server;
        without both, `pins_required`. `state_dir` holds what this device remembers
        (client/trust.py); `http_transport` replaces the network (tests)."""
        self.pins = resolve_pins(
            admin=pinned_admin_fingerprint,
            compliance=pinned_compliance_fingerprint,
            pins_file=pins_file,
        )
        super().__init__(base_url, origin=origin, timeout=timeout, http_transport=http_transport)
        self.state_dir = state_dir
        self.keys = KeyRing()
        self._trust: TrustStore | None = None
        self.identity = Identity(self)
        self.membership = Membership(self)
        self.room_keys = RoomKeys(self)
        self.thread_keys = ThreadKeys(self)
        self.messages = Messages(self)

    # --- who, and what this device remembers -------------------------------------

    def _signed_in(self, data: dict[str, Any]) -> dict[str, Any]:
        """Every way of signing in ends here: the user's trust store opens."""
        super()._signed_in(data)
        if self._trust is not None:
            self._trust.close()
        self._trust = TrustStore(self.state_dir, self.base_url, self.me())
        return data

    @property
    def trust(self) -> TrustStore:
        if self._trust is None:
            raise RoundsClientError("not_authenticated", "Log in first.")
        return self._trust

    def me(self) -> int:
        if not self.user:
            raise RoundsClientError("not_authenticated", "Log in first.")
        return int(self.user["id"])

    @property
    def unattested(self) -> dict[int, set[int]]:
        """Department → members listed by the server whose key the chain does not hold."""
        return self.room_keys.unattested

    def _observe(self, frame: dict[str, Any]) -> None:
        super()._observe(frame)
        kind, department = frame.get("type"), frame.get("department")
        if not isinstance(department, int):
            return
        if kind == EventKind.CONSULT_UPDATED and isinstance(frame.get("consult"), dict):
            self.thread_keys.note(frame["consult"])
            self.membership.forget(department)  # a guest signed in or out
        if kind == EventKind.KEY_ROTATED and frame.get("key_version") != self.keys.current.get(
            department
        ):
            # Someone else published a version: check it before the next post.
            self.keys.forget_current(department)
        elif kind in (
            EventKind.MEMBER_ADMITTED,
            EventKind.MEMBER_REMOVED,
            EventKind.MEMBER_ROLE,
            EventKind.MEMBERSHIP_SIGNED,
        ):
            self.membership.forget(department)

    async def aclose(self) -> None:
        await super().aclose()
        if self._trust is not None:
            self._trust.close()
            self._trust = None

    # --- identity -----------------------------------------------------------------

    async def setup_keys(
        self,
        recovery_secret: str | None = None,
        *,
        passphrase: str | None = None,
        opslimit: int | None = None,
        memlimit: int | None = None,
    ) -> str | None:
        """Create or recover this user's identity; call after `login()`.

        - The server has no identity for the user: generate one, publish it,
          seal a backup and store it: under a new recovery secret, returned
          for the caller to show once, or under `passphrase` (checked by
          client/passphrase.py first; `weak_passphrase`), then None.
        - The server has one and this client holds it already: returns None.
        - The server has one and this client has no keys: open the server's
          backup with `recovery_secret` (or `passphrase`) and check that the
          recovered key is the published one. Returns None.

        `opslimit` and `memlimit` are the Argon2id limits of a new backup
        (tests pass the minimum; leave them alone otherwise).

        Raises RoundsClientError: `recovery_secret_required`, `weak_passphrase`,
        `wrong_passphrase` (or another core.crypto code for a backup that
        does not parse), `backup_missing`, `invalid_key` (the recovered or
        local key is not the published one), or the server's refusal.
        """
        return await self.identity.setup(
            recovery_secret, passphrase=passphrase, opslimit=opslimit, memlimit=memlimit
        )

    # --- membership (a head's and an administrator's) -------------------------------

    async def attest(self, department: int, user_id: int, *, fingerprint: str) -> list[str]:
        """Sign a member's admission, new key or role for the key compared (see Membership)."""
        return await self.membership.attest(department, user_id, fingerprint=fingerprint)

    async def admit(
        self, department: int, user_id: int, role: str = "member", *, fingerprint: str | None
    ) -> dict[str, Any]:
        """Admit a user and sign their admission for the key compared (None: sign later)."""
        return await self.membership.admit(department, user_id, role, fingerprint=fingerprint)

    async def set_role(self, department: int, user_id: int, role: str) -> dict[str, Any]:
        return await self.membership.set_role(department, user_id, role)

    async def remove_member(self, department: int, user_id: int) -> dict[str, Any]:
        return await self.membership.remove_member(department, user_id)

    async def appoint_head(
        self, department: int, user_id: int, admin_key: IdentityKeyPair, *, fingerprint: str
    ) -> dict[str, Any]:
        return await self.membership.appoint_head(
            department, user_id, admin_key, fingerprint=fingerprint
        )

    # --- room keys ------------------------------------------------------------------

    async def room_key(self, department: int) -> RoomKey:
        """The department's current room key for writing, making the next version when due."""
        key, _ = await self.room_keys.current(department)
        return key

    async def share_history(self, department: int, user_id: int) -> dict[str, Any]:
        return await self.room_keys.share_history(department, user_id)

    # --- messages -------------------------------------------------------------------

    async def send_text(
        self,
        thread: dict[str, Any] | int,
        text: str,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Encrypt `text` under the department's current room key, sign it and post it.

        `thread` is a thread dict (which names its department) or an id.
        Returns the ack's result (message id, per-thread seq, server timestamp).
        """
        return await self.post_body(
            thread, text.encode("utf-8"), department=department, client_msg_id=client_msg_id
        )

    async def post_body(
        self,
        thread: dict[str, Any] | int,
        plaintext: bytes,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return await self.messages.post_body(
            thread,
            plaintext,
            department=department,
            client_msg_id=client_msg_id,
            attachments=attachments,
        )

    async def correct_text(
        self,
        message: dict[str, Any],
        text: str,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
    ) -> dict[str, Any]:
        """Correct one's own recent `message` (a history message or `message.new` frame)
        to read `text`; every version is kept for compliance. Returns the ack's result."""
        return await self.messages.correct(
            message, text.encode("utf-8"), department=department, client_msg_id=client_msg_id
        )

    def with_correction(self, message: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        """`message` with the correction a `message.corrected` event brings; `open` it
        (the binding is checked there, failing closed to the original)."""
        return self.messages.with_correction(message, event)

    async def open(
        self, frame_or_message: dict[str, Any], *, department: int | None = None
    ) -> Opened:
        """Verify and decrypt a message: its plaintext and header (the sender's `sent_at`)."""
        return await self.messages.open(frame_or_message, department=department)

    async def open_message(
        self, frame_or_message: dict[str, Any], *, department: int | None = None
    ) -> bytes:
        """Verify and decrypt a `message.new` frame or a history message; its plaintext.

        See client/messages.py for every refusal (`duplicate`, `replay`,
        `membership_withheld`, `sender_not_member`, `key_version_stale`, …).
        """
        return (await self.messages.open(frame_or_message, department=department)).plaintext

    async def identity_of(self, user_id: int) -> Any:
        """A user's published identity (the key directory's word, for display only)."""
        identity = await self.identity.published(user_id)
        if identity is None:
            raise RoundsClientError("not_found", f"User {user_id} has not published keys.")
        return identity
