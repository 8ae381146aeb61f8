"""Entry ids a sealing round passed over, kept so that the next rounds need not scan.

An entry's id is taken when its transaction inserts it, not when it commits. A round
that seals ids 101 to 150 while 120's transaction is still open passes 120 over: it
was not visible. Once committed, 120 is a straggler, below the highest sealed id.

Rather than read every unsealed entry of the straggler window each round (a scan that
grows with the traffic of the last ten minutes: 80-100 ms a round with 100,000 entries
in it, docs/performance.md), a round looks only at ids above the highest sealed one,
and at the few ids it remembers passing over. They are kept per process, for as long as
the straggler window: a gap another process's round saw is found by that process's next
round, or by the periodic sweep of the window (audit/sealer.py), whichever comes first.
"""

import threading
import time
from collections.abc import Iterable
from datetime import timedelta

# Gaps larger than this (a sequence moved on by hand, a restored dump) are left to the
# sweep: remembering each id of them would make every round look them all up.
MAX_REMEMBERED = 10_000


class PassedOver:
    """The ids passed over by this process's rounds, each with when it was first missed."""

    def __init__(self, keep_for: timedelta) -> None:
        self._keep_for = keep_for.total_seconds()
        self._since: dict[int, float] = {}
        self._lock = threading.Lock()

    def ids(self, now: float | None = None) -> list[int]:
        """Those still worth looking for, oldest id first; older ones are forgotten."""
        now = time.monotonic() if now is None else now
        with self._lock:
            expired = [i for i, since in self._since.items() if now - since > self._keep_for]
            for event_id in expired:
                del self._since[event_id]
            return sorted(self._since)

    def note_gaps(self, above: int, sealed: Iterable[int], now: float | None = None) -> None:
        """Remember the ids between `above` (the highest id sealed before) and the highest
        of `sealed` (the ids a round just took above it) that it did not take."""
        now = time.monotonic() if now is None else now
        taken = sorted(set(sealed))
        if not taken:
            return
        with self._lock:
            room = MAX_REMEMBERED - len(self._since)
            previous = above
            for event_id in taken:
                gap = event_id - previous - 1
                if 0 < gap <= room:
                    for missing in range(previous + 1, event_id):
                        self._since.setdefault(missing, now)
                    room -= gap
                previous = event_id

    def settle(self, event_ids: Iterable[int]) -> None:
        """These are sealed now (by this process or another): stop looking for them."""
        with self._lock:
            for event_id in event_ids:
                self._since.pop(event_id, None)

    def clear(self) -> None:
        with self._lock:
            self._since.clear()
