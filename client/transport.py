"""The wire: HTTP for the JSON API, one WebSocket for frames (docs/protocol.md).

`Connection` signs in, calls the API, and keeps one socket: every request
frame gets an id, and its `ack` or `error` resolves the awaiting call.
Pushed events go to a queue, and a per-department cursor from their
`event_seq` lets `reconnect()` resume exactly where the last socket
stopped. It knows nothing of keys: `RoundsClient` (client/sdk.py) builds
the end-to-end encryption on it, and tools that speak the raw protocol
(benchmarks, protocol tests) use it alone.

`http_transport` replaces httpx's network transport (tests put a scripted,
malicious server there).
"""

import asyncio
import contextlib
import itertools
import json
import re
import uuid
from collections.abc import Callable
from typing import Any, Self

import httpx
import websockets
from websockets.typing import Origin

from client.errors import RoundsClientError
from core.events import EventKind

# What a socket pushes unasked: the stored events, and typing, which nothing stores.
EVENT_TYPES = {kind.value for kind in EventKind} | {"typing"}


def in_order_once(frames: list[dict[str, Any]], cursor: dict[str, int]) -> list[dict[str, Any]]:
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


TOTP_CODE = re.compile(r"\d{6}")


class Connection:
    """One signed-in user's HTTP client and WebSocket."""

    def __init__(
        self,
        base_url: str,
        *,
        origin: str | None = None,
        timeout: float = 10.0,
        http_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.origin = origin or self.base_url
        self.timeout = timeout
        self.http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=http_transport
        )
        self.token: str | None = None
        self.user: dict[str, Any] | None = None
        self.ws: Any = None
        self.hello: dict[str, Any] | None = None
        self.cursor: dict[str, int] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        # Resolved with the close code when the socket closes.
        self.closed: asyncio.Future[int | None] | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        # Pushed frames held back while `reconnect()` waits for its resume ack.
        self._held: list[dict[str, Any]] | None = None
        # Thread id → department id, from threads this client has seen.
        self.threads: dict[int, int] = {}

    # --- HTTP -----------------------------------------------------------------

    async def login(
        self, username: str, password: str, device: str | None = None, *, code: str | None = None
    ) -> dict[str, Any]:
        """Sign in; `device` names this device in the user's device list.

        An account with a second factor answers the password with the refusal
        `second_factor_required`, whose `data["pending"]` `finish_login` takes with the
        code; or give the code here (`code`: the authenticator app's six digits, or a
        backup code) and it is sent right after the password (docs/sign-in.md).
        """
        body = {"username": username, "password": password}
        if device is not None:
            body["device"] = device
        try:
            data = await self.call("POST", "/api/auth/login", json=body, auth=False)
        except RoundsClientError as refusal:
            if refusal.code != "second_factor_required" or code is None:
                raise
            return await self.finish_login(refusal.data["pending"], code)
        return self._signed_in(data)

    async def finish_login(self, pending: str, code: str) -> dict[str, Any]:
        """The second step of a sign-in: an app's code, or else a backup code."""
        route = "totp" if TOTP_CODE.fullmatch(code.replace(" ", "")) else "backup-code"
        body = {"pending": pending, "code": code}
        data = await self.call("POST", f"/api/auth/login/{route}", json=body, auth=False)
        return self._signed_in(data)

    async def login_with_passkey(
        self,
        authenticator: Callable[[dict[str, Any]], dict[str, Any]],
        pending: str | None = None,
        device: str | None = None,
    ) -> dict[str, Any]:
        """Sign in with a passkey: alone, or after the password (`pending`).

        `authenticator` answers WebAuthn's request options (JSON, base64url) with the
        assertion as JSON: a security key through python-fido2, say.
        """
        asked = {"pending": pending} if pending else {}
        options = await self.call("POST", "/api/auth/login/passkey/options", json=asked, auth=False)
        body: dict[str, Any] = {
            "ceremony": options["ceremony"],
            "credential": authenticator(options["options"]),
        }
        if device is not None:
            body["device"] = device
        data = await self.call("POST", "/api/auth/login/passkey", json=body, auth=False)
        return self._signed_in(data)

    def _signed_in(self, data: dict[str, Any]) -> dict[str, Any]:
        """Keep the login's token and user; the SDK opens the user's trust store too."""
        self.token = data["token"]
        self.user = data["user"]
        return data

    async def logout(self) -> None:
        await self.call("POST", "/api/auth/logout")
        self.token = None

    async def devices(self) -> list[dict[str, Any]]:
        """This user's signed-in devices, newest first; `current` marks this one."""
        result: list[dict[str, Any]] = await self.call("GET", "/api/auth/devices")
        return result

    async def revoke_device(self, device_id: int) -> dict[str, Any]:
        """Sign one of this user's devices out: its sockets close, its pushes stop."""
        result: dict[str, Any] = await self.call("DELETE", f"/api/auth/devices/{device_id}")
        return result

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Any:
        sent = dict(headers or {})
        if auth and self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        response = await self.http.request(method, path, json=json, params=params, headers=sent)
        if response.status_code >= 400:
            raise refusal(response)
        return _json_body(response)

    async def departments(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call("GET", "/api/departments")
        return result

    async def find_patients(self, **criteria: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.call(
            "POST", "/api/patients/search", json=criteria
        )
        return result

    async def search_people(self, query: str) -> dict[str, Any]:
        """Colleagues by name, for a head admitting them (docs/protocol.md, people search):
        `{"people": [{id, display_name, departments, fingerprint}], "more": bool}`. The words
        travel in the body, never the URL; two letters at least, and a rate limit."""
        found: dict[str, Any] = await self.call("POST", "/api/people/search", json={"q": query})
        return found

    async def create_thread(self, department: int, patient: int, title: str) -> dict[str, Any]:
        thread: dict[str, Any] = await self.call(
            "POST",
            "/api/threads",
            json={"department": department, "patient": patient, "title": title},
        )
        self.threads[thread["id"]] = thread["department"]
        return thread

    async def department_threads(self, department: int) -> list[dict[str, Any]]:
        threads: list[dict[str, Any]] = await self.call(
            "GET", f"/api/departments/{department}/threads"
        )
        for thread in threads:
            self.threads[thread["id"]] = thread["department"]
        return threads

    # --- WebSocket ------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws/"

    async def connect(self) -> dict[str, Any]:
        """Open the socket and wait for `hello`; raises RoundsClientError on 4401."""
        self.ws = await websockets.connect(
            self.ws_url,
            origin=Origin(self.origin),
            additional_headers={"Authorization": f"Bearer {self.token}"},
            max_size=2**22,
            open_timeout=self.timeout,
        )
        try:
            first: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), self.timeout))
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
                if kind in ("ack", "error") and frame.get("id") is not None:
                    # The answer to a request; one given up on (timed out) is dropped.
                    future = self._pending.pop(frame["id"], None)
                    if future is not None and not future.done():
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

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
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
        try:
            await self.ws.send(text)
            reply = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            raise RoundsClientError(
                "timeout",
                f"No answer within {self.timeout} s: retry (a post under the same "
                "client_msg_id is never stored twice), or reconnect.",
                {"id": frame_id},
            ) from None
        finally:
            # A late answer to a request given up on is dropped, not queued as an event.
            self._pending.pop(frame_id, None)
        if reply["type"] == "error":
            raise RoundsClientError(reply["code"], reply["message"], reply.get("data"))
        result: dict[str, Any] = reply["result"]
        return result

    async def post(
        self,
        thread: int,
        envelope: dict[str, Any],
        client_msg_id: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "message.post",
            "thread": thread,
            "client_msg_id": client_msg_id or uuid.uuid4().hex,
            "envelope": envelope,
        }
        if attachments is not None:
            frame["attachments"] = attachments
        return await self.request(frame)

    async def history(
        self, thread: int, before_seq: int | None = None, limit: int = 50
    ) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "history.fetch", "thread": thread, "limit": limit}
        if before_seq is not None:
            frame["before_seq"] = before_seq
        return await self.request(frame)

    async def resume(self, cursor: dict[str, int] | None = None) -> dict[str, Any]:
        result = await self.request({"type": "resume", "cursor": cursor or dict(self.cursor)})
        return result

    async def read(self, thread: int, up_to_seq: int) -> dict[str, Any]:
        return await self.request(
            {"type": "receipt.read", "thread": thread, "up_to_seq": up_to_seq}
        )

    async def receipts(self, thread: int, seq: int | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "receipts.fetch", "thread": thread}
        if seq is not None:
            frame["seq"] = seq
        return await self.request(frame)

    async def redact(self, message_id: int, reason: str | None = None) -> dict[str, Any]:
        """Remove a message from members' view (one's own, or any as a head); the
        server keeps it for compliance. Idempotent: a repeat gets the first answer."""
        frame: dict[str, Any] = {"type": "message.redact", "message": message_id}
        if reason is not None:
            frame["reason"] = reason
        return await self.request(frame)

    async def typing(self, thread: int, active: bool = True) -> dict[str, Any]:
        return await self.request({"type": "typing", "thread": thread, "active": active})

    async def next_event(
        self,
        kind: str | None = None,
        wait: float | None = None,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
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

    async def reconnect(self) -> dict[str, Any]:
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
            # Nothing held is released, and the new socket goes too: left open, its live
            # events would move the cursor past the ones the failed resume never replayed.
            # The next reconnect replays everything from `saved`.
            await self.disconnect()
            self._held, self.cursor = None, saved
            raise
        held, self._held = self._held, None
        for frame in in_order_once(held, saved):
            self._advance_cursor(frame)
            self.events.put_nowait(frame)
        return result

    def _advance_cursor(self, frame: dict[str, Any]) -> None:
        if "event_seq" in frame:
            key = str(frame["department"])
            self.cursor[key] = max(self.cursor.get(key, 0), frame["event_seq"])

    def _observe(self, frame: dict[str, Any]) -> None:
        """What pushed events tell this client: threads' departments."""
        kind = frame.get("type")
        department = frame.get("department")
        if kind in (EventKind.THREAD_CREATED, EventKind.THREAD_CLOSED, EventKind.THREAD_REOPENED):
            thread = frame.get("thread") or {}
            if "id" in thread and "department" in thread:
                self.threads[thread["id"]] = thread["department"]
        elif kind == EventKind.MESSAGE_NEW and isinstance(department, int):
            thread_id = (frame.get("message") or {}).get("thread")
            if isinstance(thread_id, int):
                self.threads.setdefault(thread_id, department)

    async def thread_department(self, thread_id: int) -> int:
        """The department of a thread, looked up among the caller's departments once."""
        if thread_id not in self.threads:
            for department in await self.departments():
                await self.department_threads(department["id"])
        if thread_id not in self.threads:
            raise RoundsClientError("not_found", "Thread not found.")
        return self.threads[thread_id]

    async def aclose(self) -> None:
        await self.disconnect()
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def refusal(response: httpx.Response) -> RoundsClientError:
    """The error of a refused request: Rounds' own code and message, or, for a body
    that is not Rounds' (a proxy's page: HAProxy's 503 while no process is up),
    `server_error` (5xx) or `http_error` with the status, never a decoding error."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    default = "server_error" if response.status_code >= 500 else "http_error"
    return RoundsClientError(
        body.get("code", default),
        body.get("message", f"HTTP {response.status_code}"),
        body.get("data"),
        status=response.status_code,
    )


def _json_body(response: httpx.Response) -> Any:
    """A successful answer's JSON; one that is not JSON is no answer of Rounds."""
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise RoundsClientError(
            "invalid_response",
            f"HTTP {response.status_code} with a body that is not JSON",
            None,
            status=response.status_code,
        ) from None
