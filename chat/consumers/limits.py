"""Per-connection limits: a token bucket for frames, a count of sockets per user, and a
bucket per client address for handshakes that fail authentication."""

import time
from collections import Counter
from collections.abc import Callable


class TokenBucket:
    """`rate` frames per second on average, bursts up to `burst`."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()

    def refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def full(self) -> bool:
        self.refill()
        return self.tokens >= self.burst

    def empty(self) -> bool:
        self.refill()
        return self.tokens < 1

    def take(self) -> bool:
        self.refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class ConnectionCounter:
    """Open sockets per user in this process (a limit per process, see docs/operations.md)."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def open(self, user_id: int, limit: int) -> bool:
        if self.counts[user_id] >= limit:
            return False
        self.counts[user_id] += 1
        return True

    def close(self, user_id: int) -> None:
        self.counts[user_id] -= 1
        if self.counts[user_id] <= 0:
            del self.counts[user_id]


class FailedHandshakes:
    """Handshakes refused for want of a login, per client address, in this process.

    An anonymous handshake costs a session or token lookup; without a bound, one
    address could make the database pay for as many as it can open. Only failures
    count, so the colleagues behind one hospital NAT are never refused for signing in.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, tracked: int = 10_000) -> None:
        self.buckets: dict[str, TokenBucket] = {}
        self.clock = clock
        self.tracked = tracked

    def exhausted(self, address: str) -> bool:
        bucket = self.buckets.get(address)
        return bucket is not None and bucket.empty()

    def failed(self, address: str, per_minute: int) -> None:
        bucket = self.buckets.get(address)
        if bucket is None:
            if len(self.buckets) >= self.tracked:
                self.forget_refilled()
            if len(self.buckets) >= self.tracked:  # still: the oldest address goes
                del self.buckets[next(iter(self.buckets))]
            bucket = self.buckets[address] = TokenBucket(per_minute / 60, per_minute, self.clock)
        bucket.take()

    def forget_refilled(self) -> None:
        """Drop the addresses whose bucket is full again: they owe nothing."""
        for address in [a for a, bucket in self.buckets.items() if bucket.full()]:
            del self.buckets[address]


connections = ConnectionCounter()
failed_handshakes = FailedHandshakes()
