"""The `/ws/` consumer: one socket per signed-in device.

Delivery rule: each department's events are numbered densely, and this
consumer remembers the last number it sent per department (`delivered`). An
event at or below it is a duplicate and dropped; one beyond the next number
means events were published out of order by two committing workers, so the
gap is filled from the database first. Together with `resume`, a client gets
every event exactly once and in order.

A second number per department (`sent_after`) remembers where this socket
started: every event after it has been sent here, live or replayed. A resume
replays only what lies between the client's cursor and that number, so an
event that reached the new socket live before the client's `resume` is not
sent again (it came first, ahead of the older ones the resume brings).
"""

import asyncio
import json
import logging
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from django.conf import settings
from django.utils import timezone, translation
from pydantic import ValidationError

from chat import actions as chat_actions
from chat import corrections, redaction
from chat.consumers.auth import handshake_refused, socket_auth
from chat.consumers.batching import Outcome, post_batcher
from chat.consumers.delivery import EventDelivery
from chat.consumers.limits import TokenBucket, connections
from chat.events import department_group, send_ephemeral, session_group, user_group
from chat.lifecycle import this_process
from core import protocol
from core.errors import N_, ErrorCode, RoundsError
from rooms import actions as room_actions
from rounds import logs, metrics
from rounds.i18n import error_body, scope_language
from rounds.text import check_storable, storable

logger = logging.getLogger(__name__)


def internal_error() -> RoundsError:
    return RoundsError(
        N_(
            "The server could not finish this request; try again (a post with the same "
            "client_msg_id is never stored twice)."
        ),
        code=ErrorCode.INTERNAL_ERROR,
        data={"retry": True},
    )


# Posts a socket may have waiting for the database before reading it waits.
POSTS_IN_FLIGHT = 32


class RoundsConsumer(EventDelivery):
    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the message's handler, without Channels' per-message connection clean-up.

        Channels closes stale database connections before every handler, in
        the database thread: one thread hop per socket for every event fanned
        out, queued behind the posts. Every database call here goes through
        `database_sync_to_async`, which closes them itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except StopConsumer:
            raise
        except Exception:
            # An exception that escapes ends the consumer without its disconnect(): the
            # socket stayed counted against its user and registered with the process,
            # and daphne closed it with 1011. The database restarting is the usual cause.
            if message["type"] == "websocket.connect":
                await self.opening_failed()
            elif message["type"].startswith("websocket."):
                raise  # receive() answers its own failures; disconnect() is the clean-up
            else:
                self.delivery_failed(message["type"])

    async def opening_failed(self) -> None:
        """The socket could not be set up (its departments unread): say so and close with
        4500; its disconnect() then releases it, and the client reconnects."""
        user = getattr(self, "user", None)  # unset if it failed before the login was read
        logger.exception("opening a socket failed (user %s)", getattr(user, "pk", None))
        await self.send_error(None, internal_error())
        await self.close(code=protocol.CLOSE_INTERNAL)

    async def connect(self) -> None:
        # A frame has no Accept-Language: the handshake chooses for the connection.
        self.language = scope_language(self.scope)
        self.auth = socket_auth(self.scope)
        self.delivered: dict[int, int] = {}
        self.sent_after: dict[int, int] = {}
        self.thread_departments: dict[int, int] = {}
        self.counted = False
        self.groups_joined: set[str] = set()
        self.expiry: asyncio.TimerHandle | None = None
        self.posts_in_flight = asyncio.Semaphore(POSTS_IN_FLIGHT)
        # Each post's answering task, and the outcome it waits for.
        self.post_tasks: dict[asyncio.Task[None], asyncio.Future[Outcome]] = {}
        # Live events, replays and the sweeper's catch-ups send one at a time.
        self.delivery = asyncio.Lock()
        # Live frames behind a gap, by department and seq, while they wait for it.
        self.held: dict[int, dict[int, tuple[str, float | None]]] = {}
        self.gap_timers: dict[int, asyncio.TimerHandle] = {}
        self.gap_fills: set[asyncio.Task[None]] = set()
        self.pending_groups: set[str] = set()
        self.closed_with: int | None = None  # the code, when Rounds closed the socket
        logs.bind(socket=logs.new_id())
        await self.accept()
        metrics.SOCKETS_OPENED.inc()
        process = this_process()
        if process.draining:
            await self.close(code=protocol.CLOSE_RESTARTING)
            return
        if handshake_refused(self.scope):
            await self.send_error(
                None,
                RoundsError(
                    N_("Too many failed sign-ins from this address; try again in a minute."),
                    code=ErrorCode.RATE_LIMITED,
                ),
            )
            await self.close(code=protocol.CLOSE_FLOOD)
            return
        if self.auth is None:
            await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
            return
        self.user = self.auth.user
        if not connections.open(self.user.pk, settings.ROUNDS_WS_MAX_CONNECTIONS_PER_USER):
            await self.send_error(
                None,
                RoundsError(
                    N_("Too many open connections for this user."), code=ErrorCode.RATE_LIMITED
                ),
            )
            await self.close(code=protocol.CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.counted = True
        metrics.SOCKETS_OPEN.inc()
        logger.info("socket open (user %s)", self.user.pk)
        process.register(self)
        self.bucket = TokenBucket(settings.ROUNDS_WS_RATE_PER_SECOND, settings.ROUNDS_WS_RATE_BURST)
        self.flood_strikes = 0
        # The socket lives no longer than the login it was opened with.
        expires_in = (self.auth.expires_at - timezone.now()).total_seconds()
        self.expiry = asyncio.get_running_loop().call_later(
            max(0.0, expires_in),
            lambda: asyncio.ensure_future(self.close(code=protocol.CLOSE_UNAUTHENTICATED)),
        )
        await self.join(user_group(self.user.pk))
        await self.join(session_group(self.auth.session_id))
        # Join first, then read the event numbers: nothing published in between is lost.
        for department_id in await database_sync_to_async(room_actions.my_department_ids)(
            self.user
        ):
            await self.join(department_group(department_id))
        departments = await database_sync_to_async(room_actions.list_my_departments)(self.user)
        for department in departments:
            await self.join(department_group(department["id"]))
            self.delivered[department["id"]] = department["event_seq"]
            self.sent_after[department["id"]] = department["event_seq"]
        await self.send_frame(
            {
                "type": "hello",
                "protocol_version": protocol.PROTOCOL_VERSION,
                "user": {"id": self.user.pk, "username": self.user.username},
                "departments": departments,
                "cursor": {str(d): seq for d, seq in self.delivered.items()},
                "limits": {
                    "max_frame_bytes": settings.ROUNDS_WS_MAX_FRAME_BYTES,
                    "rate_per_second": settings.ROUNDS_WS_RATE_PER_SECOND,
                    "burst": settings.ROUNDS_WS_RATE_BURST,
                },
            }
        )

    async def disconnect(self, code: int) -> None:
        this_process().unregister(self)
        by = "client" if getattr(self, "closed_with", None) is None else "server"
        metrics.socket_closed(code if by == "client" else self.closed_with, by)
        if self.expiry is not None:
            self.expiry.cancel()
        for timer in getattr(self, "gap_timers", {}).values():
            timer.cancel()
        for task in list(getattr(self, "post_tasks", {})):
            task.cancel()  # the posts are stored all the same; only their acks are dropped
        if self.counted:
            connections.close(self.user.pk)
            self.counted = False
            metrics.SOCKETS_OPEN.dec()
            logger.info("socket closed (code %s, by %s)", self.closed_with or code, by)
        for group in list(self.groups_joined):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # the layer is away: the subscription goes with the socket
                metrics.LEAVE_FAILED.inc()
                logger.warning("leaving %s failed", group, exc_info=True)
        self.groups_joined.clear()

    async def send_error(self, frame_id: str | None, error: RoundsError) -> None:
        metrics.FRAME_ERRORS.labels(error.code).inc()
        # Every error frame passes here, whichever task raised it (a batch of posts
        # answers each socket from its own task): the message in this socket's language.
        with translation.override(getattr(self, "language", settings.LANGUAGE_CODE)):
            body = error_body(error)
        await self.send_frame({"type": "error", "id": frame_id, **body})

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if getattr(self, "closed_with", None) is None:
            self.closed_with = code if type(code) is int else 1000
        await super().close(code=code, reason=reason)

    # --- Inbound ---------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        read_at, kind = time.perf_counter(), "unparsed"
        frame_id = None
        try:
            data, refusal = None, None
            try:
                data = self.decode(text_data, bytes_data)
            except RoundsError as error:
                refusal = error
            if isinstance(data, dict) and isinstance(data.get("id"), str) and storable(data["id"]):
                frame_id = data["id"][:64]
            # Every frame pays, whatever its fate: malformed and oversized ones too.
            self.charge()
            if refusal is not None:
                raise refusal
            frame = self.parse(data)
            kind = frame.type
            if isinstance(frame, protocol.MessagePost):
                await self.post_without_waiting(frame, read_at)
                return
            handler = getattr(self, "on_" + frame.type.replace(".", "_"))
            result = await handler(frame)
            await self.send_frame({"type": "ack", "id": frame.id, "result": result})
        except RoundsError as error:
            await self.send_error(frame_id, error)
            if error.close_code:
                await self.close(code=error.close_code)
        except Exception:
            logger.exception("websocket handler failed (user %s)", getattr(self.user, "pk", None))
            await self.send_error(frame_id, internal_error())
            await self.close(code=protocol.CLOSE_INTERNAL)
        finally:
            if kind != "message.post":  # a post's answer comes later (answer_post)
                metrics.frame_answered(kind, read_at)

    def charge(self) -> None:
        """Take one token from this socket's bucket, or refuse (and, if it keeps on, close)."""
        if not self.bucket.take():
            self.flood_strikes += 1
            close = self.flood_strikes >= settings.ROUNDS_WS_FLOOD_CLOSE_AFTER
            raise RoundsError(
                N_("Too many frames; slow down."),
                code=ErrorCode.RATE_LIMITED,
                close_code=protocol.CLOSE_FLOOD if close else None,
            )
        self.flood_strikes = 0

    def decode(self, text_data: str | None, bytes_data: bytes | None) -> Any:
        """Size and encoding checks, then JSON. Raises typed errors only."""
        limit = settings.ROUNDS_WS_MAX_FRAME_BYTES
        raw = bytes_data if text_data is None else text_data
        if raw is None:
            raise RoundsError(N_("Empty frame."), code=ErrorCode.INVALID_FRAME)
        size = len(raw) if isinstance(raw, bytes) or len(raw) * 4 <= limit else len(raw.encode())
        if size > limit:
            raise RoundsError(
                N_("Frames are limited to %(limit)s bytes."),
                params={"limit": limit},
                code=ErrorCode.FRAME_TOO_LARGE,
                data={"max_frame_bytes": limit},
            )
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise RoundsError(
                    N_("Frames must be UTF-8 JSON."), code=ErrorCode.INVALID_UTF8
                ) from None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise RoundsError(
                N_("Frames must be JSON objects."), code=ErrorCode.INVALID_JSON
            ) from None

    def parse(self, data: Any) -> protocol.InboundFrame:
        if not isinstance(data, dict):
            raise RoundsError(N_("Frames must be JSON objects."), code=ErrorCode.INVALID_FRAME)
        check_storable(data)
        kind = data.get("type")
        # A list or object is unhashable: test the type first, or the lookup raises.
        if not isinstance(kind, str) or kind not in protocol.INBOUND_TYPES:
            raise RoundsError(
                N_("Unknown frame type."),
                code=ErrorCode.UNKNOWN_TYPE,
                data={"known": sorted(protocol.INBOUND_TYPES)},
            )
        try:
            return protocol.parse_inbound(data)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(str(p) for p in err["loc"][1:]), "problem": err["msg"]}
                for err in exc.errors(include_input=False, include_url=False)
            ]
            raise RoundsError(
                N_("The frame does not match its schema."),
                code=ErrorCode.INVALID_FRAME,
                data={"errors": problems},
            ) from None

    async def post_without_waiting(self, frame: protocol.MessagePost, read_at: float) -> None:
        """Queue a post and go on reading: its ack (or error) is sent when it is stored.

        A client may keep several posts in flight on one socket; they are
        stored, numbered and acknowledged in the order sent, with whatever
        other sockets posted meanwhile (chat/consumers/batching.py). At most
        POSTS_IN_FLIGHT wait per socket; past that, reading the socket waits.
        """
        await self.posts_in_flight.acquire()
        post = chat_actions.Post(
            self.user,
            frame.thread,
            frame.client_msg_id,
            frame.envelope.model_dump(),
            tuple(ref.model_dump() for ref in frame.attachments),
        )
        outcome = post_batcher().enqueue(post)
        metrics.POSTS_RECEIVED.inc()
        task = asyncio.ensure_future(self.answer_post(frame.id, outcome, read_at))
        self.post_tasks[task] = outcome
        task.add_done_callback(lambda done: self.post_tasks.pop(done, None))

    async def answer_post(
        self, frame_id: str, outcome: "asyncio.Future[Outcome]", read_at: float
    ) -> None:
        try:
            result = await outcome
            if isinstance(result, RoundsError):
                metrics.post_answered("refused", read_at)
                await self.send_error(frame_id, result)
            else:
                metrics.post_answered("duplicate" if result.get("duplicate") else "stored", read_at)
                await self.send_frame({"type": "ack", "id": frame_id, "result": result})
        except Exception:
            # The database restarting, say: whether it was stored is unknown, and a retry
            # under the same client_msg_id is safe either way. The socket stays open.
            logger.exception("storing a post failed (user %s)", getattr(self.user, "pk", None))
            metrics.post_answered("internal_error", read_at)
            await self.send_error(frame_id, internal_error())
        finally:
            self.posts_in_flight.release()

    async def on_history_fetch(self, frame: protocol.HistoryFetch) -> dict[str, Any]:
        result: dict[str, Any] = await database_sync_to_async(chat_actions.check_history)(
            self.user, frame.thread, frame.before_seq, frame.limit, stored_text=True
        )
        return result

    async def on_resume(self, frame: protocol.Resume) -> dict[str, Any]:
        async with self.delivery:
            return await self.resume(frame)

    async def resume(self, frame: protocol.Resume) -> dict[str, Any]:
        cursor = {int(key): seq for key, seq in frame.cursor.items()}
        valid = await database_sync_to_async(chat_actions.check_resume_cursor)(self.user, cursor)
        for department_id, after in valid.items():
            if department_id not in self.delivered:
                continue
            sent_after = self.sent_after[department_id]
            if after >= sent_after:
                # Nothing this socket has not sent is missing; a client ahead of it is believed.
                self.delivered[department_id] = max(self.delivered[department_id], after)
                continue
            await self.replay(department_id, after, before=sent_after + 1)
            self.sent_after[department_id] = after
            await database_sync_to_async(chat_actions.record_resume)(
                self.user, department_id, after, sent_after
            )
        return {
            "cursor": {str(d): seq for d, seq in self.delivered.items()},
            "ignored": sorted(str(d) for d in cursor if d not in valid),
        }

    async def on_receipt_read(self, frame: protocol.ReceiptRead) -> dict[str, Any]:
        result: dict[str, Any] = await database_sync_to_async(chat_actions.check_read_receipt)(
            self.user, frame.thread, frame.up_to_seq
        )
        return result

    async def on_receipts_fetch(self, frame: protocol.ReceiptsFetch) -> dict[str, Any]:
        result: dict[str, Any] = await database_sync_to_async(chat_actions.check_receipts)(
            self.user, frame.thread, frame.seq
        )
        return result

    async def on_message_redact(self, frame: protocol.MessageRedact) -> dict[str, Any]:
        result: dict[str, Any] = await database_sync_to_async(redaction.check_redact_message)(
            self.user, frame.message, frame.reason
        )
        return result

    async def on_message_correct(self, frame: protocol.MessageCorrect) -> dict[str, Any]:
        result: dict[str, Any] = await database_sync_to_async(corrections.check_correct_message)(
            self.user, frame.message, frame.client_msg_id, frame.envelope.model_dump()
        )
        return result

    async def on_typing(self, frame: protocol.Typing) -> dict[str, Any]:
        department_id = self.thread_departments.get(frame.thread)
        if department_id is None or department_id not in self.delivered:
            department_id = await database_sync_to_async(chat_actions.check_typing)(
                self.user, frame.thread
            )
            self.thread_departments[frame.thread] = department_id
        try:
            await send_ephemeral(
                department_id,
                {
                    "type": "typing",
                    "department": department_id,
                    "thread": frame.thread,
                    "user": {"id": self.user.pk, "username": self.user.username},
                    "active": frame.active,
                },
                origin=self.channel_name,
            )
        except Exception:  # best effort, never stored: with the channel layer away, dropped
            logger.warning("typing not relayed: the channel layer is away", exc_info=True)
        return {}

    async def on_ping(self, frame: protocol.Ping) -> dict[str, Any]:
        return {"server_time": timezone.now().isoformat()}

    # --- Outbound (channel layer) ----------------------------------------------

    async def rounds_event(self, message: dict[str, Any]) -> None:
        """One department event, or a run of them (chat/events.py `coalesced`)."""
        department = message["department"]
        async with self.delivery:
            await self.deliver(
                department, message["seq"], message["frame"], message.get("committed_at")
            )
            for seq, frame, committed_at in message.get("then", ()):
                await self.deliver(department, seq, frame, committed_at)

    async def rounds_membership(self, message: dict[str, Any]) -> None:
        async with self.delivery:
            await self.membership_changed(message)

    async def membership_changed(self, message: dict[str, Any]) -> None:
        department_id, seq, change = message["department"], message["seq"], message["change"]
        if change == "admitted" and department_id not in self.delivered:
            await self.join(department_group(department_id))
            self.delivered[department_id] = self.sent_after[department_id] = seq - 1
            await self.deliver(department_id, seq, message["frame"])
            # Events published after the admission but before the join above never
            # reached this socket: join, then read back, as at connect.
            await self.replay(department_id, seq)
            return
        if change == "removed":
            if department_id in self.delivered and seq > self.delivered[department_id]:
                await self.send(text_data=message["frame"])
            # Leave first: from here on, nothing of this department reaches this socket.
            self.delivered.pop(department_id, None)
            self.sent_after.pop(department_id, None)
            await self.leave(department_group(department_id))
            self.thread_departments = {
                t: d for t, d in self.thread_departments.items() if d != department_id
            }
            return
        await self.deliver(department_id, seq, message["frame"])

    async def rounds_ephemeral(self, message: dict[str, Any]) -> None:
        if message["department"] in self.delivered and message["origin"] != self.channel_name:
            await self.send(text_data=message["frame"])

    async def rounds_guest(self, message: dict[str, Any]) -> None:
        """An event of a consult this user is the guest of: outside the department's
        numbered stream, which is not theirs (a member already has it from there)."""
        async with self.delivery:
            if message["department"] in self.delivered:
                return
            # A poster hears of their post after its ack: this frame is sent before the
            # batcher sets the posts' outcomes, so wait for every post in flight (rare
            # frames, a few posts at most).
            if self.post_tasks:
                await asyncio.gather(*self.post_tasks, return_exceptions=True)
            await self.send(text_data=message["frame"])

    async def rounds_session_revoked(self, message: dict[str, Any]) -> None:
        await self.close(code=protocol.CLOSE_UNAUTHENTICATED)
