"""A socket's share of its departments' events: live frames in order, exactly once.

The consumer (chat/consumers/rounds.py) joins its departments' groups here and
hands every live event to `deliver`, which sends it if it follows on from the
last one sent, holds it behind a gap for the late publication, or reads the
gap back from the database (`replay`); the process's sweep (chat/lifecycle.py)
calls `catch_up` for what a lost publication left out.
"""

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import actions as chat_actions
from chat.consumers.batching import Outcome
from chat.events import department_group, dumps
from rounds import metrics

logger = logging.getLogger(__name__)

# (another process committed the event before and published it after): the
# frames behind the gap wait this long for it before the gap is read from the
# database, which every socket of the process would otherwise do at each gap.
GAP_WAIT_SECONDS = 0.05


class EventDelivery(AsyncWebsocketConsumer):
    """Groups joined, and events sent in order; the state is set up by the consumer's
    `connect`."""

    user: Any
    delivered: dict[int, int]  # department → last event seq sent
    sent_after: dict[int, int]  # department → the seq live delivery started after
    groups_joined: set[str]
    pending_groups: set[str]
    delivery: asyncio.Lock
    post_tasks: "dict[asyncio.Task[None], asyncio.Future[Outcome]]"
    held: dict[int, dict[int, tuple[str, float | None]]]
    gap_timers: dict[int, asyncio.TimerHandle]
    gap_fills: set["asyncio.Task[None]"]

    def delivery_failed(self, kind: str) -> None:
        """A live event this socket could not be sent (a gap to read back while the
        database is away). Nothing is lost and the socket stays: what it was not sent
        stays behind its department's head, where the process's sweep finds it and
        sends it once the database answers."""
        metrics.DELIVERY_FAILED.inc()
        logger.warning("delivering %s failed; the sweep sends it later", kind, exc_info=True)

    async def join(self, group: str) -> None:
        """Join a group; with the channel layer away, the socket still works (the
        sweeper delivers, chat/lifecycle.py) and the join is tried again later."""
        if group in self.groups_joined:
            return
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception:
            metrics.JOIN_FAILED.inc()
            logger.warning("joining %s failed; retried at the next sweep", group, exc_info=True)
            self.pending_groups.add(group)
            return
        if group in self.pending_groups:
            metrics.REJOINS.inc()
        self.pending_groups.discard(group)
        self.groups_joined.add(group)

    async def retry_joins(self) -> None:
        for group in list(self.pending_groups):
            await self.join(group)

    async def leave(self, group: str) -> None:
        self.pending_groups.discard(group)
        if group in self.groups_joined:
            self.groups_joined.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=dumps(frame))

    async def replay(
        self, department_id: int, after: int, before: int | None = None, *, late: bool = False
    ) -> None:
        """Send stored events after `after` (and before `before`), in order; `late`: the
        sweep's catch-up of a lost publication, whose delay is measured."""
        while department_id in self.delivered:
            limit = (
                None if before is None else min(before - after - 1, settings.ROUNDS_RESUME_BATCH)
            )
            if limit is not None and limit <= 0:
                return
            batch = await database_sync_to_async(chat_actions.events_after)(
                self.user, department_id, after, limit, before
            )
            if not batch:
                return
            for seq, frame in batch:
                await self.send_frame(frame)
                if late:
                    metrics.swept(frame)
                after = seq
                # A resume replays below what was already sent live: never move back.
                if department_id in self.delivered:
                    self.delivered[department_id] = max(self.delivered[department_id], seq)

    async def deliver(
        self, department_id: int, seq: int, text: str, committed_at: float | None = None
    ) -> None:
        # A poster hears of a post after its ack: send the acks of stored posts first.
        answering = [task for task, outcome in self.post_tasks.items() if outcome.done()]
        if answering:
            await asyncio.gather(*answering, return_exceptions=True)
        last = self.delivered.get(department_id)
        if last is None or seq <= last:
            return
        if seq > last + 1:
            self.hold(department_id, seq, text, committed_at)
            return
        await self.send_live(department_id, seq, text, committed_at)
        await self.send_held(department_id)

    async def send_live(
        self, department_id: int, seq: int, text: str, committed_at: float | None
    ) -> None:
        await self.send(text_data=text)
        self.delivered[department_id] = seq
        metrics.delivered(committed_at)

    def hold(self, department_id: int, seq: int, text: str, committed_at: float | None) -> None:
        """Keep a frame behind a gap; if the gap is still open GAP_WAIT_SECONDS later,
        it is read from the database (`fill_gap`)."""
        self.held.setdefault(department_id, {})[seq] = (text, committed_at)
        if department_id not in self.gap_timers:
            self.gap_timers[department_id] = asyncio.get_running_loop().call_later(
                GAP_WAIT_SECONDS, self.gap_waited, department_id
            )

    async def send_held(self, department_id: int) -> None:
        """Send the held frames that now follow on, in order; forget those sent since."""
        held = self.held.get(department_id)
        if held is None:
            return
        while department_id in self.delivered:
            following = self.delivered[department_id] + 1
            if following not in held:
                break
            await self.send_live(department_id, following, *held.pop(following))
        last = self.delivered.get(department_id)
        for seq in [seq for seq in held if last is None or seq <= last]:
            del held[seq]
        if not held:
            del self.held[department_id]
            timer = self.gap_timers.pop(department_id, None)
            if timer is not None:
                timer.cancel()

    def gap_waited(self, department_id: int) -> None:
        task = asyncio.ensure_future(self.fill_gap(department_id))
        self.gap_fills.add(task)
        task.add_done_callback(self.gap_fills.discard)

    async def fill_gap(self, department_id: int) -> None:
        """The gap is still open: send the stored events up to the last held frame."""
        async with self.delivery:
            self.gap_timers.pop(department_id, None)
            try:
                await self.fill_gap_now(department_id)
            except Exception:
                self.held.pop(department_id, None)  # the sweep sends them with the gap
                self.delivery_failed("gap")

    async def fill_gap_now(self, department_id: int) -> None:
        """Read the missing events up to the first held frame, send the held frames that
        follow on, and read whatever else is missing up to the last one."""
        held = self.held.get(department_id)
        last = self.delivered.get(department_id)
        if not held or last is None:
            self.held.pop(department_id, None)
            return
        await self.replay(department_id, last, before=min(held))
        await self.send_held(department_id)
        held, last = self.held.pop(department_id, None), self.delivered.get(department_id)
        if held and last is not None and max(held) > last:
            await self.replay(department_id, last, before=max(held) + 1)

    async def catch_up(self, department_id: int, upto: int) -> None:
        """Send what a lost publication left out, up to `upto` (the sweeper calls this)."""
        async with self.delivery:
            await self.retry_joins()
            last = self.delivered.get(department_id)
            if last is None or last >= upto:
                return
            await self.replay(department_id, last, before=upto + 1, late=True)
            if department_id in self.delivered and self.delivered[department_id] < upto:
                # Nothing to replay: the user left the department while its removal's
                # publication was lost. Nothing more of it reaches this socket.
                self.delivered.pop(department_id, None)
                self.sent_after.pop(department_id, None)
                await self.leave(department_group(department_id))
