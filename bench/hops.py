"""python -m bench.hops [--calls N]

What one hop from the event loop to a database thread and back costs, with no
database work: through Channels' `database_sync_to_async` (asgiref's
SyncToAsync, which the process's reads use) and through the posting thread's
plain executor (`chat.consumers.batching.in_posting_thread`, which closes stale
connections before and after, as Channels does). One call at a time with 1 ms
between calls, as posts come at a modest rate; p50 and p99 in microseconds.
docs/performance.md gives the figures.
"""

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable


def nothing() -> int:
    return 1


async def timed(call: Callable[[], Awaitable[int]], calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
        await asyncio.sleep(0.001)
    return times[calls // 10 :]  # the first tenth warms up


async def measure(calls: int) -> dict[str, tuple[float, float]]:
    from channels.db import database_sync_to_async

    from chat.consumers.batching import in_posting_thread

    ways: dict[str, Callable[[], Awaitable[int]]] = {
        "database_sync_to_async": lambda: database_sync_to_async(nothing)(),
        "posting thread": lambda: in_posting_thread(nothing),
    }
    results: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(2):  # alternated, so a busy moment of the machine falls on both
        for name, call in ways.items():
            results[name] += await timed(call, calls)
    return {
        name: (
            statistics.median(times) * 1e6,
            sorted(times)[int(len(times) * 0.99)] * 1e6,
        )
        for name, times in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rounds.settings")
    import django

    django.setup()
    for name, (p50, p99) in asyncio.run(measure(args.calls)).items():
        print(f"{name:24} p50 {p50:6.0f} µs   p99 {p99:6.0f} µs")


if __name__ == "__main__":
    main()
