"""The faults scenario's clients, and the ledger of what they sent, were told and received.

A `Client` behaves as docs/protocol.md asks of an application: after any
disconnect it reconnects (at once the first time, then with a short back-off)
and resumes from its cursor (`Connection.reconnect()`); a post answered
`internal_error`, `rate_limited` or `timeout`, or whose socket closed before
its answer, is sent again with the same client_msg_id and the same envelope,
which the server never stores twice, until it is acknowledged. Everything a
client sees (close codes, error codes, failed reconnections, timeouts) is
counted in the `Ledger` under the phase it happened in.
"""

import asyncio
import collections
import random
import time

import websockets

from client.errors import RoundsClientError
from client.transport import Connection

# A request without an answer for this long is given up (and counted): the server is
# expected to answer every post, with an ack or an error, or to close the socket.
REQUEST_TIMEOUT = 10.0
# Pauses between tries of a post the server could not store: the SDK's
# (client/messages.py RETRY_PAUSES), then the last one for as long as it takes.
RETRY_PAUSES = (0.2, 0.5, 1.0)
RATE_LIMITED_PAUSE = 1.0
# Reconnection back-off after a failed attempt (the first attempt is immediate).
BACKOFF_FIRST, BACKOFF_MAX = 0.05, 1.0
RETRYABLE = {"internal_error", "timeout", "closed", "not_connected", "rate_limited"}


class Sent:
    """One message: who sent it, in which phase, and when it was made and acknowledged."""

    __slots__ = (
        "acked",
        "attempts",
        "client_msg_id",
        "created",
        "phase",
        "sender",
        "seq",
        "stored_unanswered",
    )

    def __init__(self, client_msg_id: str, sender: str, phase: str, created: float) -> None:
        self.client_msg_id = client_msg_id
        self.sender = sender
        self.phase = phase
        self.created = created
        self.acked: float | None = None
        self.attempts = 0
        self.seq: int | None = None
        # The ack said "duplicate": an earlier try was stored, and its answer never came.
        self.stored_unanswered = False


class Ledger:
    """Every message sent, and every delivery of each to each reader, with times."""

    def __init__(self, readers: list[str]) -> None:
        self.phase = "setup"
        self.readers = readers
        self.sent: dict[str, Sent] = {}
        # reader → client_msg_id → the times it was delivered (more than one: a duplicate)
        self.deliveries: dict[str, dict[str, list[float]]] = {
            reader: collections.defaultdict(list) for reader in readers
        }
        # phase → what clients saw ("close 4503", "error internal_error", …) → count
        self.seen: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        # (time, phase, client, what): the same, in order, for the evidence
        self.timeline: list[tuple[float, str, str, str]] = []
        self._everywhere: dict[str, asyncio.Future] = {}

    def new(self, client_msg_id: str, sender: str) -> Sent:
        record = Sent(client_msg_id, sender, self.phase, time.monotonic())
        self.sent[client_msg_id] = record
        return record

    def saw(self, what: str, who: str = "") -> None:
        self.seen[self.phase][what] += 1
        self.timeline.append((time.monotonic(), self.phase, who, what))

    def delivered(self, reader: str, client_msg_id: str) -> None:
        self.deliveries[reader][client_msg_id].append(time.monotonic())
        waiter = self._everywhere.get(client_msg_id)
        if waiter is not None and not waiter.done() and self.everyone_has(client_msg_id):
            waiter.set_result(time.monotonic())

    def everyone_has(self, client_msg_id: str) -> bool:
        return all(client_msg_id in self.deliveries[reader] for reader in self.readers)

    async def everywhere(self, client_msg_id: str) -> float:
        """When the last reader got the message (waits for it)."""
        if self.everyone_has(client_msg_id):
            return max(self.deliveries[r][client_msg_id][0] for r in self.readers)
        waiter = self._everywhere.get(client_msg_id)
        if waiter is None:
            waiter = self._everywhere[client_msg_id] = asyncio.get_running_loop().create_future()
        # Shielded: a caller that gives up must not cancel it for the others.
        return await asyncio.shield(waiter)

    def dump(self) -> dict:
        """Every message and delivery, times relative to the first message: the evidence."""
        origin = min((r.created for r in self.sent.values()), default=0.0)
        wall = time.time() - (time.monotonic() - origin)

        def at(t: float | None) -> float | None:
            return None if t is None else round(t - origin, 4)

        return {
            "origin": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(wall))
            + f".{int(wall % 1 * 1000):03d} UTC",
            "messages": [
                {
                    "client_msg_id": r.client_msg_id,
                    "sender": r.sender,
                    "phase": r.phase,
                    "seq": r.seq,
                    "created": at(r.created),
                    "acked": at(r.acked),
                    "attempts": r.attempts,
                    "stored_unanswered": r.stored_unanswered,
                    "delivered": {
                        reader: [at(t) for t in self.deliveries[reader].get(r.client_msg_id, [])]
                        for reader in self.readers
                    },
                }
                for r in self.sent.values()
            ],
            "seen": [(at(t), phase, who, what) for t, phase, who, what in self.timeline],
        }

    def unsettled(self) -> list[Sent]:
        """Acknowledged messages some reader does not have yet."""
        return [
            record
            for record in self.sent.values()
            if record.acked is not None and not self.everyone_has(record.client_msg_id)
        ]


def describe(error: BaseException) -> str:
    """What a failed (re)connection looked like to the client, in a few words."""
    if isinstance(error, RoundsClientError):
        close_code = (error.data or {}).get("close_code") if isinstance(error.data, dict) else None
        return f"{error.code} {close_code}" if close_code else error.code
    if isinstance(error, websockets.InvalidStatus):
        return f"http {error.response.status_code}"
    return type(error).__name__


class Client:
    """One signed-in user whose socket comes back after every disconnect."""

    def __init__(self, url: str, username: str, ledger: Ledger) -> None:
        self.conn = Connection(url, timeout=REQUEST_TIMEOUT)
        self.name = username
        self.ledger = ledger
        # Sockets opened so far; a request waits for one open, resumed socket.
        self.generation = 0
        self.live = False
        self.changed = asyncio.Condition()
        self.stopping = False
        self.tasks: list[asyncio.Task] = []

    async def start(self, password: str) -> None:
        await self.conn.login(self.name, password)
        await self.conn.connect()
        await self._set_live(True)
        self.tasks.append(asyncio.create_task(self._supervise()))

    async def stop(self) -> None:
        self.stopping = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.conn.aclose()

    async def _set_live(self, live: bool) -> None:
        async with self.changed:
            self.live = live
            if live:
                self.generation += 1
            self.changed.notify_all()

    async def usable(self, at_least: int) -> int:
        """Wait for an open, resumed socket of generation `at_least` or later."""
        async with self.changed:
            await self.changed.wait_for(lambda: self.live and self.generation >= at_least)
            return self.generation

    async def _supervise(self) -> None:
        while not self.stopping:
            code = await asyncio.shield(self.conn.closed)
            await self._set_live(False)
            self.ledger.saw(f"close {code}", self.name)
            await self._reconnect()

    async def _reconnect(self) -> None:
        pause = 0.0
        while not self.stopping:
            if pause:
                await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            try:
                await self.conn.reconnect()
            except (Exception, asyncio.CancelledError) as error:
                # Nor does a CancelledError that is not this task's own cancellation end
                # the client's reconnecting for good: it is counted and retried. (One
                # run stalled with every client gone quiet mid-cuts, cause not found;
                # this, and the proxy's stall guard, make such a run say so.)
                if isinstance(error, asyncio.CancelledError) and (
                    self.stopping or asyncio.current_task().cancelling()
                ):
                    raise
                self.ledger.saw(f"reconnect failed: {describe(error)}", self.name)
                pause = min(BACKOFF_MAX, max(BACKOFF_FIRST, pause * 2))
                continue
            self.ledger.saw("reconnected", self.name)
            await self._set_live(True)
            return

    async def post_until_acked(self, thread: int, envelope: dict, record: Sent) -> None:
        """Post, and post again under the same client_msg_id until acknowledged."""
        need = 1
        failures = 0
        while True:
            generation = await self.usable(need)
            record.attempts += 1
            try:
                ack = await self.conn.post(thread, envelope, record.client_msg_id)
            except RoundsClientError as error:
                code = error.code
            except websockets.ConnectionClosed:
                # Connection.request lets the library's own error through when the socket
                # is already closed as it sends.
                code = "closed"
            else:
                record.acked = time.monotonic()
                record.seq = ack["seq"]
                record.stored_unanswered = bool(ack.get("duplicate"))
                return
            self.ledger.saw(f"post {code}", self.name)
            if code not in RETRYABLE:
                raise RoundsClientError(code, "not retryable")
            if code in ("closed", "not_connected"):
                need = generation + 1  # the next socket, once resumed
                continue
            pause = (
                RATE_LIMITED_PAUSE
                if code == "rate_limited"
                else RETRY_PAUSES[min(failures, len(RETRY_PAUSES) - 1)]
            )
            failures += 1
            await asyncio.sleep(pause)
            need = generation

    async def read(self, thread: int, record: bool) -> None:
        """Take every pushed event as an application would; note the thread's messages."""
        while True:
            frame = await self.conn.events.get()
            if record and frame.get("type") == "message.new":
                message = frame["message"]
                if message["thread"] == thread:
                    self.ledger.delivered(self.name, message["client_msg_id"])
