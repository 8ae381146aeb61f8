"""An async client for Rounds: sign in over HTTP, then talk over one WebSocket.

Every request frame gets an id; its `ack` or `error` resolves the awaiting
call. Pushed events go to a queue, and the client keeps a per-department
cursor from their `event_seq`, so `reconnect()` resumes exactly where the
last socket stopped.

End-to-end encryption (docs/crypto.md): `setup_keys()` after login creates
or recovers the user's identity, `room_key()` fetches, unwraps and when
needed rotates a department's room key, `send_text()` encrypts and posts,
`open_message()` verifies and decrypts, `share_history()` gives a newcomer
the earlier key versions. Room keys are wrapped only for members whose
admission a head signed (`membership()`, client/membership.py); heads sign
with `admit()`, `attest()`, `remove_member()`, `set_role()`, and an
administrator appoints a first head with `appoint_head()` and the
institution's admin key. The keys live in `self.keys` (client/keys.py).
Every refusal, the server's or a check of this client's, is a
`RoundsClientError` whose `code` is the server's error code or the
`chat.crypto` error's code.
"""

import asyncio
import contextlib
import itertools
import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from chat.crypto import (
    MAX_PLAINTEXT,
    BadSignature,
    CryptoError,
    IdentityKeyPair,
    InvalidEnvelope,
    PublicIdentity,
    RoomKey,
    WrapRecord,
    b64decode,
    b64encode,
    decrypt_message,
    encrypt_message,
    generate_recovery_secret,
    open_backup,
    seal_backup,
    unwrap_room_key,
    wrap_room_key,
)
from chat.crypto.envelope import parse_envelope
from client.errors import RoundsClientError, crypto_refusal
from client.keys import KeyRing
from client.membership import (
    MembershipChain,
    MembershipRefused,
    check_attested,
    make_statement,
    verify_listing,
)
from client.photo_sdk import PhotoMixin

# How often `room_key()` tries to publish a new version when others keep
# changing the department (a rotation or an admission) under it.
ROTATION_ATTEMPTS = 3

EVENT_TYPES = {
    "message.new",
    "receipt.new",
    "member.admitted",
    "member.removed",
    "member.role_changed",
    "thread.created",
    "thread.closed",
    "thread.reopened",
    "typing",
    "key.rotated",
    "message.redacted",
}


def membership_refusal(refusal: MembershipRefused) -> RoundsClientError:
    """A membership check's refusal as a client error with the same code."""
    return RoundsClientError(refusal.code, refusal.message, refusal.data)


def in_order_once(frames: list[dict], cursor: dict[str, int]) -> list[dict]:
    """Numbered events sorted per department, without repeats or any at or below `cursor`;
    unnumbered frames (typing) after them, as they came."""
    last = dict(cursor)
    numbered = sorted(
        (f for f in frames if "event_seq" in f),
        key=lambda f: (str(f["department"]), f["event_seq"]),
    )
    released = []
    for frame in numbered:
        key = str(frame["department"])
        if key in last and frame["event_seq"] <= last[key]:
            continue
        last[key] = frame["event_seq"]
        released.append(frame)
    return released + [f for f in frames if "event_seq" not in f]


class RoundsClient(PhotoMixin):
    def __init__(
        self,
        base_url: str,
        *,
        origin: str | None = None,
        timeout: float = 10.0,
        pinned_compliance_fingerprint: str | None = None,
        pinned_admin_fingerprint: str | None = None,
    ) -> None:
        """Both fingerprints come from configuration, never from the server:
        `pinned_compliance_fingerprint`, the institution's compliance key this
        client agrees to wrap room keys for; `pinned_admin_fingerprint`, the
        institution's admin key that roots every department's signed
        membership (without it the server's admin key is trusted as given)."""
        self.base_url = base_url.rstrip("/")
        self.origin = origin or self.base_url
        self.timeout = timeout
        self.http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)
        self.token: str | None = None
        self.user: dict | None = None
        self.ws: Any = None
        self.hello: dict | None = None
        self.cursor: dict[str, int] = {}
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.closed: asyncio.Future | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task | None = None
        # Pushed frames held back while `reconnect()` waits for its resume ack.
        self._held: list[dict] | None = None
        self.keys = KeyRing(
            pinned_compliance_fingerprint=pinned_compliance_fingerprint,
            pinned_admin_fingerprint=pinned_admin_fingerprint,
        )
        # Department → members listed by the server whose admission is not signed
        # (yet): no room key was wrapped for them.
        self.unattested: dict[int, set[int]] = {}
        # Thread id → department id, from threads this client has seen.
        self.threads: dict[int, int] = {}

    # --- HTTP -----------------------------------------------------------------

    async def login(self, username: str, password: str) -> dict:
        data = await self.call(
            "POST", "/api/auth/login", json={"username": username, "password": password}, auth=False
        )
        self.token = data["token"]
        self.user = data["user"]
        return data

    async def logout(self) -> None:
        await self.call("POST", "/api/auth/logout")
        self.token = None

    async def call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, auth: bool = True
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}
        response = await self.http.request(method, path, json=json, params=params, headers=headers)
        body = response.json() if response.content else {}
        if response.status_code >= 400:
            raise RoundsClientError(
                body.get("code", "http_error"),
                body.get("message", ""),
                body.get("data"),
                status=response.status_code,
            )
        return body

    async def departments(self) -> list[dict]:
        return await self.call("GET", "/api/departments")

    async def find_patients(self, **criteria: str) -> list[dict]:
        return await self.call("POST", "/api/patients/search", json=criteria)

    async def create_thread(self, department: int, patient: int, title: str) -> dict:
        thread = await self.call(
            "POST",
            "/api/threads",
            json={"department": department, "patient": patient, "title": title},
        )
        self.threads[thread["id"]] = thread["department"]
        return thread

    async def department_threads(self, department: int) -> list[dict]:
        threads = await self.call("GET", f"/api/departments/{department}/threads")
        for thread in threads:
            self.threads[thread["id"]] = thread["department"]
        return threads

    # --- WebSocket ------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws/"

    async def connect(self) -> dict:
        """Open the socket and wait for `hello`; raises RoundsClientError on 4401."""
        self.ws = await websockets.connect(
            self.ws_url,
            origin=self.origin,
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=2**22,
            open_timeout=self.timeout,
        )
        try:
            first = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))
        except websockets.ConnectionClosed as closed:
            raise RoundsClientError(
                "closed",
                f"socket closed with {closed.rcvd and closed.rcvd.code}",
                {"close_code": closed.rcvd and closed.rcvd.code},
            ) from None
        if first.get("type") != "hello":
            raise RoundsClientError(first.get("code", "protocol"), first.get("message", ""))
        self.hello = first
        for department, seq in first["cursor"].items():
            self.cursor.setdefault(department, seq)
        self.closed = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read())
        return first

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind in ("ack", "error") and frame.get("id") in self._pending:
                    future = self._pending.pop(frame["id"])
                    if not future.done():
                        future.set_result(frame)
                    continue
                self._observe(frame)
                if self._held is not None:
                    # The cursor moves only once the resume has filled every gap.
                    self._held.append(frame)
                    continue
                self._advance_cursor(frame)
                await self.events.put(frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            code = self.ws.close_code if self.ws else None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(
                        RoundsClientError("closed", "socket closed", {"close_code": code})
                    )
            self._pending.clear()
            if self.closed and not self.closed.done():
                self.closed.set_result(code)

    async def request(self, frame: dict) -> dict:
        """Send a frame and return its ack's result, or raise its error."""
        if self.ws is None:
            raise RoundsClientError("not_connected", "Call connect() first.")
        frame_id = frame.setdefault("id", f"c{next(self._ids)}")
        text = json.dumps(frame)
        limit = (self.hello or {}).get("limits", {}).get("max_frame_bytes")
        if limit and len(text.encode()) > limit:
            # The server cannot name an oversized frame in its refusal; refuse it here.
            raise RoundsClientError(
                "frame_too_large",
                f"Frames are limited to {limit} bytes.",
                {"max_frame_bytes": limit},
            )
        future = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        await self.ws.send(text)
        reply = await asyncio.wait_for(future, self.timeout)
        if reply["type"] == "error":
            raise RoundsClientError(reply["code"], reply["message"], reply.get("data"))
        return reply["result"]

    async def post(
        self,
        thread: int,
        envelope: dict,
        client_msg_id: str | None = None,
        attachments: list[dict] | None = None,
    ) -> dict:
        frame: dict[str, Any] = {
            "type": "message.post",
            "thread": thread,
            "client_msg_id": client_msg_id or uuid.uuid4().hex,
            "envelope": envelope,
        }
        if attachments is not None:
            frame["attachments"] = attachments
        return await self.request(frame)

    async def history(self, thread: int, before_seq: int | None = None, limit: int = 50) -> dict:
        frame: dict[str, Any] = {"type": "history.fetch", "thread": thread, "limit": limit}
        if before_seq is not None:
            frame["before_seq"] = before_seq
        return await self.request(frame)

    async def resume(self, cursor: dict[str, int] | None = None) -> dict:
        result = await self.request({"type": "resume", "cursor": cursor or dict(self.cursor)})
        return result

    async def read(self, thread: int, up_to_seq: int) -> dict:
        return await self.request(
            {"type": "receipt.read", "thread": thread, "up_to_seq": up_to_seq}
        )

    async def receipts(self, thread: int, seq: int | None = None) -> dict:
        frame: dict[str, Any] = {"type": "receipts.fetch", "thread": thread}
        if seq is not None:
            frame["seq"] = seq
        return await self.request(frame)

    async def redact(self, message_id: int, reason: str | None = None) -> dict:
        """Remove a message from members' view (one's own, or any as a head); the
        server keeps it for compliance. Idempotent: a repeat gets the first answer."""
        frame: dict[str, Any] = {"type": "message.redact", "message": message_id}
        if reason is not None:
            frame["reason"] = reason
        return await self.request(frame)

    async def typing(self, thread: int, active: bool = True) -> dict:
        return await self.request({"type": "typing", "thread": thread, "active": active})

    async def next_event(
        self,
        kind: str | None = None,
        wait: float | None = None,
        match: Callable[[dict], bool] | None = None,
    ) -> dict:
        """The next pushed event of `kind` for which `match` holds, skipping others."""
        deadline = asyncio.get_running_loop().time() + (wait or self.timeout)
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            frame = await asyncio.wait_for(self.events.get(), max(remaining, 0.001))
            if (kind is None or frame.get("type") == kind) and (match is None or match(frame)):
                return frame

    async def disconnect(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            if self._reader:
                with contextlib.suppress(Exception):
                    await self._reader
            self.ws = None

    async def reconnect(self) -> dict:
        """A new socket that resumes from this client's cursor: each missed event once, in order.

        The new socket carries live events from its `hello` on, and `resume` then
        brings the older ones, so an event landing in between can come before them
        (or, from a server that replays it, twice). Pushed frames are therefore held
        until the resume ack, which follows the whole replay, and released in
        `event_seq` order per department, each once.
        """
        saved = dict(self.cursor)
        await self.disconnect()
        self._held = []
        try:
            await self.connect()
            result = await self.resume(saved)
        except BaseException:
            # Nothing held is released: the next reconnect replays it from `saved`.
            self._held, self.cursor = None, saved
            raise
        held, self._held = self._held, None
        for frame in in_order_once(held, saved):
            self._advance_cursor(frame)
            self.events.put_nowait(frame)
        return result

    def _advance_cursor(self, frame: dict) -> None:
        if "event_seq" in frame:
            key = str(frame["department"])
            self.cursor[key] = max(self.cursor.get(key, 0), frame["event_seq"])

    def _observe(self, frame: dict) -> None:
        """What pushed events tell the key handling: threads' departments, new versions."""
        kind = frame.get("type")
        department = frame.get("department")
        if kind in ("thread.created", "thread.closed", "thread.reopened"):
            thread = frame.get("thread") or {}
            if "id" in thread and "department" in thread:
                self.threads[thread["id"]] = thread["department"]
        elif kind == "key.rotated" and isinstance(department, int):
            if frame.get("key_version") != self.keys.current.get(department):
                # Someone else published a version: fetch its wrap before the next post.
                self.keys.forget_current(department)
        elif kind == "message.new" and isinstance(department, int):
            thread_id = (frame.get("message") or {}).get("thread")
            if isinstance(thread_id, int):
                self.threads.setdefault(thread_id, department)

    # --- End-to-end keys ------------------------------------------------------

    def _me(self) -> int:
        if not self.user:
            raise RoundsClientError("not_authenticated", "Log in first.")
        return self.user["id"]

    def _identity(self) -> IdentityKeyPair:
        if self.keys.identity is None:
            raise RoundsClientError(
                "keys_not_set_up", "This client has no identity keys; call setup_keys() first."
            )
        return self.keys.identity

    @staticmethod
    def _checked_public(public: Any, fingerprint: str | None, whose: str) -> PublicIdentity:
        """Parse a public identity the server sent, and check it has the fingerprint it claims."""
        try:
            identity = PublicIdentity.from_dict(public)
        except CryptoError as error:
            raise crypto_refusal(error, f"{whose}: ") from None
        if fingerprint is not None and identity.fingerprint != fingerprint:
            raise RoundsClientError(
                "invalid_key", f"{whose}: the public key does not have the fingerprint given"
            )
        return identity

    async def _published_identity(self, user_id: int) -> PublicIdentity | None:
        """A user's published identity (checked against its fingerprint), or None."""
        try:
            data = await self.call("GET", f"/api/keys/identity/{user_id}")
        except RoundsClientError as error:
            if error.code == "not_found":
                return None
            raise
        return self._checked_public(data["public"], data["fingerprint"], f"identity of {user_id}")

    async def identity_of(self, user_id: int, *, refresh: bool = False) -> PublicIdentity:
        """Another user's published identity, fetched once and cached."""
        if not refresh and user_id in self.keys.identities:
            return self.keys.identities[user_id]
        identity = await self._published_identity(user_id)
        if identity is None:
            raise RoundsClientError("not_found", f"User {user_id} has not published keys.")
        self.keys.identities[user_id] = identity
        return identity

    async def setup_keys(
        self,
        recovery_secret: str | None = None,
        *,
        opslimit: int | None = None,
        memlimit: int | None = None,
    ) -> str | None:
        """Create or recover this user's identity; call after `login()`.

        - The server has no identity for the user: generate one, publish it,
          seal a backup under a new recovery secret and store it. Returns the
          secret, for the caller to show once (any `recovery_secret` given is
          not used: there is nothing to recover).
        - The server has one and this client holds it already: returns None.
        - The server has one and this client has no keys: open the server's
          backup with `recovery_secret` and check that the recovered key is
          the published one. Returns None.

        `opslimit` and `memlimit` are the Argon2id limits of a new backup
        (tests pass the minimum; leave them alone otherwise).

        Raises RoundsClientError: `recovery_secret_required`,
        `wrong_passphrase` (or another chat.crypto code for a backup that
        does not parse), `backup_missing`, `invalid_key` (the recovered or
        local key is not the published one), or the server's refusal.
        """
        me = self._me()
        published = await self._published_identity(me)
        local = self.keys.identity
        if published is None:
            identity = local or IdentityKeyPair.generate()
            # Held before publishing, so that a retry after a failure publishes the same key.
            self.keys.identity = identity
            self.keys.backup_stored = False
            try:
                await self.call(
                    "PUT", "/api/keys/identity", json={"public": identity.public.to_dict()}
                )
            except RoundsClientError as error:
                if error.code != "conflict":
                    raise
                # Another device published first: this one recovers that identity.
                self.keys.identity = local
                published = await self._published_identity(me)
                if published is None:
                    raise
                return await self._recover(me, published, recovery_secret)
            self.keys.identities[me] = identity.public
            return await self._store_backup(identity, opslimit=opslimit, memlimit=memlimit)
        if local is not None:
            if local.fingerprint != published.fingerprint:
                raise RoundsClientError(
                    "invalid_key",
                    "This client's identity is not the one the server has published for you.",
                    {"published": published.fingerprint, "local": local.fingerprint},
                )
            self.keys.identities[me] = published
            if not self.keys.backup_stored:
                # Published earlier, but storing its backup failed: store one now.
                return await self._store_backup(local, opslimit=opslimit, memlimit=memlimit)
            return None
        return await self._recover(me, published, recovery_secret)

    async def _store_backup(
        self, identity: IdentityKeyPair, *, opslimit: int | None, memlimit: int | None
    ) -> str:
        secret = generate_recovery_secret()
        blob = await asyncio.to_thread(
            seal_backup, identity, secret, opslimit=opslimit, memlimit=memlimit
        )
        await self.call("PUT", "/api/keys/backup", json={"blob": b64encode(blob)})
        self.keys.backup_stored = True
        return secret

    async def _recover(self, me: int, published: PublicIdentity, secret: str | None) -> None:
        if not secret:
            raise RoundsClientError(
                "recovery_secret_required",
                "Your keys exist on another device: enter your recovery secret to restore them.",
            )
        try:
            data = await self.call("GET", "/api/keys/backup")
        except RoundsClientError as error:
            if error.code != "not_found":
                raise
            raise RoundsClientError(
                "backup_missing", "The server keeps no backup of your keys.", status=error.status
            ) from None
        try:
            blob = b64decode(data["blob"], field="blob")
            identity = await asyncio.to_thread(open_backup, blob, secret)
        except CryptoError as error:
            message = "key backup: "
            if error.code == "wrong_passphrase":
                message = "The recovery secret does not open your key backup: "
            raise crypto_refusal(error, message) from None
        if identity.fingerprint != published.fingerprint:
            raise RoundsClientError(
                "invalid_key",
                "The key recovered from the backup is not the one published for you.",
                {"published": published.fingerprint, "recovered": identity.fingerprint},
            )
        self.keys.identity = identity
        self.keys.identities[me] = published
        self.keys.backup_stored = True
        return None

    def _wrapper_identities(self, data: dict) -> dict[str, PublicIdentity]:
        """Fingerprint → identity of whoever may have wrapped the caller's keys.

        From the server's `wrappers` (each checked against its fingerprint), the
        members' published identities, and this device's own.
        """
        known: dict[str, PublicIdentity] = {}
        candidates = [
            (member.get("identity"), member.get("fingerprint"))
            for member in data.get("members") or []
        ]
        candidates += [(w.get("public"), fp) for fp, w in (data.get("wrappers") or {}).items()]
        for public, fingerprint in candidates:
            if public is None or fingerprint is None:
                continue
            try:
                identity = self._checked_public(public, fingerprint, "wrapper")
            except RoundsClientError:
                continue  # its wraps then fail as made by an unknown wrapper
            known[identity.fingerprint] = identity
        if self.keys.identity is not None:
            known[self.keys.identity.fingerprint] = self.keys.identity.public
        return known

    async def _load_wraps(self, department: int) -> tuple[dict, dict[int, Exception]]:
        """Fetch the department's keys and unwrap this identity's wraps into the key ring.

        A wrap is accepted only from this identity or from a key the
        department's signed membership admitted at some point: a key made by
        a reader the server added on its own is never used.
        Returns the server's answer and, by version, why a wrap was refused.
        """
        identity = self._identity()
        data = await self.call("GET", f"/api/departments/{department}/keys")
        wrappers = self._wrapper_identities(data)
        refused: dict[int, Exception] = {}
        pending = [
            raw
            for raw in data.get("my_wraps") or []
            if not (
                isinstance(raw, dict)
                and isinstance(raw.get("version"), int)
                and self.keys.room_key(department, raw["version"]) is not None
            )
        ]
        admitted: frozenset[str] = frozenset()
        chain_error: RoundsClientError | None = None
        if any(
            isinstance(raw, dict) and raw.get("wrapper_fp") != identity.fingerprint
            for raw in pending
        ):
            try:
                admitted = (await self.membership(department)).ever_admitted
            except RoundsClientError as error:
                chain_error = error
        for raw in pending:
            version = raw.get("version") if isinstance(raw, dict) else None
            try:
                record = WrapRecord.from_dict(raw)
                if record.department != department:
                    raise InvalidEnvelope("the wrap names another department")
                if self.keys.room_key(department, record.version) is not None:
                    continue
                if record.wrapper_fp != identity.fingerprint and record.wrapper_fp not in admitted:
                    if isinstance(version, int):
                        refused[version] = chain_error or RoundsClientError(
                            "unverified_member",
                            "The wrap was made by a key the department's signed membership "
                            "never admitted; it is not used.",
                        )
                    continue
                wrapper = wrappers.get(record.wrapper_fp)
                if wrapper is None:
                    raise BadSignature("the wrap was made by an identity the server does not show")
                key = unwrap_room_key(record, recipient=identity, wrapper=wrapper)
            except CryptoError as error:
                if isinstance(version, int):
                    refused[version] = error
                continue
            self.keys.add_room_key(key)
        return data, refused

    @staticmethod
    def _no_key(department: int, version: int, refused: dict[int, Exception]) -> Exception:
        reason = refused.get(version)
        if isinstance(reason, RoundsClientError):
            return reason
        if isinstance(reason, CryptoError):
            return crypto_refusal(
                reason, f"room key version {version} of department {department}: "
            )
        return RoundsClientError(
            "no_room_key",
            f"No wrap of room key version {version} of department {department} for this "
            "identity; a member must share it (share_history).",
            {"department": department, "key_version": version},
        )

    async def room_key(self, department: int) -> RoomKey:
        """The department's current room key, creating the next version when one is needed.

        Unwraps (and keeps) every version wrapped for this identity, each
        checked against its wrapper's signature. When the department has no
        version yet or needs a new one (a member left), generates it, wraps it
        for every member whose signed admission verifies and for the
        compliance key (which must be the pinned one, if one is pinned) and
        publishes it; if someone else publishes first, uses theirs. Members
        the server lists without a verified admission get nothing; they are
        in `self.unattested[department]`.

        Raises RoundsClientError: `compliance_key_mismatch`, `no_room_key`, a
        membership code (`membership_unverified`, `admin_key_mismatch`,
        `no_admin_key`, `unverified_member` when the server insists on a
        member whose admission does not verify), a chat.crypto code for a
        wrap that does not verify or open, or the server's refusal.
        """
        error: RoundsClientError | None = None
        for _ in range(ROTATION_ATTEMPTS):
            data, refused = await self._load_wraps(department)
            version = data["key_version"]
            if version and not data["rotation_required"]:
                key = self.keys.room_key(department, version)
                if key is None:
                    raise self._no_key(department, version, refused)
                self.keys.set_current(department, version)
                return key
            try:
                return await self._publish_next_version(department, data)
            except RoundsClientError as refusal:
                # Another version came first, or the membership changed: look again.
                if refusal.code not in ("conflict", "wraps_incomplete"):
                    raise
                missing = {str(u) for u in refusal.data.get("missing", [])}
                if unverified := missing & {str(u) for u in self.unattested.get(department, ())}:
                    raise RoundsClientError(
                        "unverified_member",
                        "The server requires a wrap for members whose admission is not signed "
                        f"by a head ({', '.join(sorted(unverified))}); this client refuses.",
                        {"users": sorted(unverified)},
                    ) from None
                error = refusal
        assert error is not None
        raise error

    async def _publish_next_version(self, department: int, data: dict) -> RoomKey:
        identity = self._identity()
        compliance = data.get("compliance")
        compliance_key = (
            self._checked_public(compliance["public"], compliance["fingerprint"], "compliance key")
            if compliance
            else None
        )
        fingerprint = compliance_key.fingerprint if compliance_key else None
        if not self.keys.compliance_allowed(fingerprint):
            raise RoundsClientError(
                "compliance_key_mismatch",
                "The server's compliance key is not the one pinned in this client's "
                "configuration; no room key was wrapped.",
                {"pinned": self.keys.pinned_compliance_fingerprint, "server": fingerprint},
            )
        me = self._me()
        chain = await self.membership(department)
        recipients: dict[str, PublicIdentity] = {identity.fingerprint: identity.public}
        unattested: set[int] = set()
        for member in data["members"]:
            if member.get("identity") is None:
                continue  # receives every version once they publish (share_history)
            public = self._checked_public(
                member["identity"], member["fingerprint"], f"identity of {member['user']}"
            )
            if member["user"] == me:
                if public.fingerprint != identity.fingerprint:
                    raise RoundsClientError(
                        "invalid_key", "This client's identity is not the one published for you."
                    )
                continue
            try:
                check_attested(chain, member["user"], public.fingerprint)
            except MembershipRefused:
                unattested.add(member["user"])
                continue  # shared with them once a head signs their admission
            recipients[public.fingerprint] = public
        self.unattested[department] = unattested
        if compliance_key is not None:
            recipients[compliance_key.fingerprint] = compliance_key
        key = RoomKey.generate(department=department, version=data["key_version"] + 1)
        wraps = [
            wrap_room_key(key, recipient=recipient, wrapper=identity).to_dict()
            for recipient in recipients.values()
        ]
        await self.call(
            "POST",
            f"/api/departments/{department}/keys",
            json={"version": key.version, "wraps": wraps},
        )
        self.keys.add_room_key(key)
        self.keys.set_current(department, key.version)
        return key

    async def share_history(self, department: int, user_id: int) -> dict:
        """Wrap every version of the department's key this client holds for a member.

        Only for a member whose admission, with the key the server shows for
        them, is in the department's verified signed membership: otherwise
        `unverified_member` (or another membership code) and nothing is
        wrapped. One version per request, so a version the member already
        has (the server answers `conflict`) is skipped without losing the
        others. Returns {"user", "fingerprint", "shared": [versions],
        "skipped": [versions]}.
        """
        identity = self._identity()
        await self._load_wraps(department)
        data = await self.call("GET", f"/api/keys/identity/{user_id}")
        recipient = self._checked_public(data["public"], data["fingerprint"], f"user {user_id}")
        chain = await self.membership(department)
        try:
            check_attested(chain, user_id, recipient.fingerprint)
        except MembershipRefused as refusal:
            raise membership_refusal(refusal) from None
        shared: list[int] = []
        skipped: list[int] = []
        for version in self.keys.versions(department):
            room_key = self.keys.room_key(department, version)
            assert room_key is not None
            wrap = wrap_room_key(room_key, recipient=recipient, wrapper=identity)
            try:
                await self.call(
                    "POST",
                    f"/api/departments/{department}/keys/wraps",
                    json={"wraps": [wrap.to_dict()]},
                )
            except RoundsClientError as error:
                if error.code != "conflict":
                    raise
                skipped.append(version)
                continue
            shared.append(version)
        return {
            "user": user_id,
            "fingerprint": recipient.fingerprint,
            "shared": shared,
            "skipped": skipped,
        }

    # --- Signed membership ----------------------------------------------------

    async def membership(self, department: int) -> MembershipChain:
        """The department's signed membership, verified from the pinned admin key.

        Raises RoundsClientError: `no_admin_key`, `admin_key_mismatch`,
        `membership_unverified` (the message names the statement and why).
        """
        return (await self._verified_statements(department))[1]

    async def _verified_statements(self, department: int) -> tuple[dict, MembershipChain]:
        """The server's list of statements, and the chain it verifies to."""
        listing = await self.call("GET", f"/api/departments/{department}/statements")
        try:
            return listing, verify_listing(listing, self.keys.pinned_admin_fingerprint)
        except MembershipRefused as refusal:
            raise membership_refusal(refusal) from None

    async def _post_statement(self, department: int, signed: dict) -> dict:
        return await self.call(
            "POST", f"/api/departments/{department}/statements", json={"signed": signed}
        )

    async def _sign(
        self, department: int, kind: str, user_id: int, fingerprint: str, role: str
    ) -> dict:
        """Sign a statement as this head and post it."""
        signed = make_statement(
            self._identity(),
            kind=kind,
            department=department,
            subject=user_id,
            subject_fingerprint=fingerprint,
            role=role,
            signer_user=self._me(),
        )
        return await self._post_statement(department, signed)

    async def attest(self, department: int, user_id: int) -> list[str]:
        """As a head, sign a member's admission with the key the server shows for them.

        For a member admitted before they had keys, or who replaced their key
        (the old key's admission is removed first), or whose role changed.
        A head's client shows the key's fingerprint to compare with the
        colleague before calling this: signing is what lets them read.
        Returns the kinds of the statements posted (empty if already attested).

        Raises RoundsClientError: `keys_not_published` (the member has no key
        yet), a membership code, or the server's refusal.
        """
        chain = await self.membership(department)
        data = await self.call("GET", f"/api/departments/{department}/keys")
        listed = {m["user"]: m for m in data["members"]}
        if user_id not in listed:
            raise RoundsClientError("not_found", f"User {user_id} is not a member.")
        member = listed[user_id]
        if member.get("identity") is None:
            raise RoundsClientError(
                "keys_not_published",
                f"User {user_id} has not published keys yet; attest them once they have.",
            )
        public = self._checked_public(member["identity"], member["fingerprint"], f"user {user_id}")
        posted: list[str] = []
        current = chain.members.get(user_id)
        if current is not None and current.fingerprint != public.fingerprint:
            await self._sign(department, "remove", user_id, current.fingerprint, current.role)
            posted.append("remove")
            current = None
        if current is None:
            await self._sign(department, "admit", user_id, public.fingerprint, member["role"])
            posted.append("admit")
        elif current.role != member["role"]:
            await self._sign(department, "role", user_id, public.fingerprint, member["role"])
            posted.append("role")
        return posted

    async def admit(self, department: int, user_id: int, role: str = "member") -> dict:
        """As a head, admit a user and sign their admission (if they have published keys)."""
        admitted = await self.call(
            "POST",
            f"/api/departments/{department}/members",
            json={"user_id": user_id, "role": role},
        )
        try:
            admitted["signed"] = await self.attest(department, user_id)
        except RoundsClientError as error:
            if error.code != "keys_not_published":
                raise
            admitted["signed"] = []
        return admitted

    async def set_role(self, department: int, user_id: int, role: str) -> dict:
        """As a head, change a member's role and sign the change."""
        changed = await self.call(
            "POST", f"/api/departments/{department}/members/{user_id}/role", json={"role": role}
        )
        changed["signed"] = await self.attest(department, user_id)
        return changed

    async def remove_member(self, department: int, user_id: int) -> dict:
        """As a head, remove a member and sign the removal, so no client wraps for them again."""
        chain = await self.membership(department)
        removed = await self.call("DELETE", f"/api/departments/{department}/members/{user_id}")
        removed["signed"] = []
        if (current := chain.members.get(user_id)) is not None:
            await self._sign(department, "remove", user_id, current.fingerprint, current.role)
            removed["signed"] = ["remove"]
        return removed

    async def appoint_head(
        self,
        department: int,
        user_id: int,
        admin_key: IdentityKeyPair,
        *,
        fingerprint: str | None = None,
    ) -> dict:
        """As an administrator holding the institution's admin key, appoint a head.

        Signs an admission as head of the user's published key; the
        department must have no head in its signed membership. `fingerprint`,
        compared with the head in person, guards against a key the server
        substituted.

        Raises RoundsClientError: `invalid_key` (the published key is not
        `fingerprint`), or the server's refusal.
        """
        data = await self.call("GET", f"/api/keys/identity/{user_id}")
        public = self._checked_public(data["public"], data["fingerprint"], f"user {user_id}")
        if fingerprint is not None and public.fingerprint != "".join(fingerprint.split()).lower():
            raise RoundsClientError(
                "invalid_key",
                f"User {user_id}'s published key is not the fingerprint given; nothing was signed.",
                {"published": public.fingerprint},
            )
        signed = make_statement(
            admin_key,
            kind="admit",
            department=department,
            subject=user_id,
            subject_fingerprint=public.fingerprint,
            role="head",
            signer_user=None,
        )
        return await self._post_statement(department, signed)

    async def _thread_department(self, thread_id: int) -> int:
        if thread_id not in self.threads:
            for department in await self.departments():
                await self.department_threads(department["id"])
        if thread_id not in self.threads:
            raise RoundsClientError("not_found", "Thread not found.")
        return self.threads[thread_id]

    async def send_text(
        self,
        thread: dict | int,
        text: str,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
    ) -> dict:
        """Encrypt `text` under the department's current room key, sign it and post it.

        `thread` is a thread dict (which names its department) or an id.
        Returns the ack's result (see `_post_body`).
        """
        return await self._post_body(
            thread, text.encode("utf-8"), department=department, client_msg_id=client_msg_id
        )

    async def _post_body(
        self,
        thread: dict | int,
        plaintext: bytes,
        *,
        department: int | None = None,
        client_msg_id: str | None = None,
        attachments: list[dict] | None = None,
    ) -> dict:
        """Encrypt a message body, sign it and post it (with `attachments` refs, if any).

        If the server asks for a new key version first (`key_rotation_required`),
        rotates or fetches it with `room_key()` and posts once more: a new
        envelope under the same client_msg_id, which is safe because the
        refused one was not stored. Returns the ack's result.
        """
        identity = self._identity()
        if self.ws is None:
            raise RoundsClientError("not_connected", "Call connect() first.")
        if isinstance(thread, dict):
            thread_id = thread["id"]
            department = department or thread.get("department")
        else:
            thread_id = thread
        if department is None:
            department = await self._thread_department(thread_id)
        self.threads.setdefault(thread_id, department)
        if len(plaintext) > MAX_PLAINTEXT:
            raise RoundsClientError(
                "frame_too_large",
                f"A message is at most {MAX_PLAINTEXT} bytes of UTF-8.",
                {"max_plaintext": MAX_PLAINTEXT},
            )
        client_msg_id = client_msg_id or uuid.uuid4().hex
        me = self._me()
        key = self.keys.current_key(department) or await self.room_key(department)
        for attempt in range(2):
            try:
                envelope = encrypt_message(
                    plaintext,
                    room_key=key,
                    thread=thread_id,
                    sender=me,
                    client_msg_id=client_msg_id,
                    signer=identity,
                )
            except CryptoError as error:
                raise crypto_refusal(error) from None
            try:
                ack = await self.post(thread_id, envelope, client_msg_id, attachments)
            except RoundsClientError as error:
                if error.code != "key_rotation_required" or attempt:
                    raise
                self.keys.forget_current(department)
                key = await self.room_key(department)
                continue
            self.keys.remember(me, client_msg_id, envelope)
            return ack
        raise AssertionError("unreachable")

    async def open_message(self, frame_or_message: dict, *, department: int | None = None) -> bytes:
        """Verify and decrypt a `message.new` frame, or a message of a history page.

        The envelope's header must name the message's thread, department
        (from the frame, `department`, or the thread), sender and
        client_msg_id (`envelope_mismatch`). The signature is checked against
        the sender's published identity and the ciphertext opened with the
        room key of the header's version (fetched when not held). A second,
        different envelope under a (sender, client_msg_id) already opened is
        refused (`replay`); the same envelope again is opened again.

        Raises RoundsClientError: `redacted` (a tombstone: the server no longer
        serves its content to members), `envelope_mismatch`, `replay`,
        `no_room_key`, a chat.crypto code (`bad_signature`, `decryption_failed`,
        `invalid_envelope`, …), or the server's refusal of a look-up.
        """
        message = frame_or_message
        if isinstance(frame_or_message.get("message"), dict):
            message = frame_or_message["message"]
            department = frame_or_message.get("department", department)
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
            department = await self._thread_department(thread_id)
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
        room_key = self.keys.room_key(department, header.key_version)
        if room_key is None:
            _, refused = await self._load_wraps(department)
            room_key = self.keys.room_key(department, header.key_version)
            if room_key is None:
                raise self._no_key(department, header.key_version, refused)
        sender_key = await self.identity_of(sender_id)
        try:
            plaintext = decrypt_message(envelope, room_key=room_key, sender_key=sender_key)
        except BadSignature as error:
            # The cached key may be stale, or the message older than the sender's
            # current key: try their current key, then every key the department's
            # signed membership admitted for them.
            fresh = await self.identity_of(sender_id, refresh=True)
            candidates = [fresh] if fresh != sender_key else []
            candidates += await self._admitted_keys(department, sender_id)
            for candidate in candidates:
                try:
                    plaintext = decrypt_message(envelope, room_key=room_key, sender_key=candidate)
                    break
                except BadSignature:
                    continue
                except CryptoError as again:
                    raise crypto_refusal(again) from None
            else:
                raise crypto_refusal(error) from None
        except CryptoError as error:
            raise crypto_refusal(error) from None
        if self.keys.is_replay(sender_id, client_msg_id, envelope):
            raise RoundsClientError(
                "replay",
                "Another message was already opened under this sender and client_msg_id.",
                {"sender": sender_id, "client_msg_id": client_msg_id},
            )
        self.keys.remember(sender_id, client_msg_id, envelope)
        return plaintext

    async def _admitted_keys(self, department: int, user_id: int) -> list[PublicIdentity]:
        """Every key the department's verified membership admitted for a user, newest first."""
        listing, chain = await self._verified_statements(department)
        fingerprints = [
            item["signed"]["statement"]["subject_fingerprint"]
            for item in listing["statements"]
            if item["signed"]["statement"]["subject_user"] == user_id
        ]
        keys = listing["keys"]
        return [
            self._checked_public(keys[fp], fp, f"key of {user_id}")
            for fp in dict.fromkeys(reversed(fingerprints))
            if fp in keys and fp in chain.ever_admitted
        ]

    async def aclose(self) -> None:
        await self.disconnect()
        await self.http.aclose()

    async def __aenter__(self) -> "RoundsClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
