"""Per-connection limits: a token bucket for frames, a count of sockets per user."""

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

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
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


connections = ConnectionCounter()
