"""Where the machine's CPU went during a measurement: seconds per kind of process.

Read from /proc (Linux) before and after the measured window, for every process
on the machine: the benchmark's own clients, the daphne processes, PostgreSQL's
backends, Redis, HAProxy. On a small machine the servers and the clients share
the cores, and this says which of them ran out first (docs/performance.md).
"""

import collections
import os
from pathlib import Path

KINDS = (  # the first marker found in a command line names its kind
    ("-m bench", "benchmark clients"),
    ("uvicorn bench.floor", "uvicorn (floor)"),
    ("uvicorn rounds", "uvicorn (Rounds)"),
    ("rounds.serve", "daphne (Rounds)"),
    ("bench.floor", "daphne (floor)"),
    ("postgres", "PostgreSQL"),
    ("redis-server", "Redis"),
    ("haproxy", "HAProxy"),
)


def _kind(command: str) -> str | None:
    for marker, kind in KINDS:
        if marker in command:
            return kind
    return None


def snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every process whose kind is known, by pid."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kind = _kind(command)
        if kind is not None:
            found[int(entry.name)] = (kind, (int(fields[11]) + int(fields[12])) / tick)
    return found


def spent(before: dict[int, tuple[str, float]], seconds: float) -> dict[str, float]:
    """Share of one core each kind used since `before`, over `seconds` of wall time
    (1.0 is a core; this machine's total is its number of cores)."""
    used: collections.Counter[str] = collections.Counter()
    for pid, (kind, total) in snapshot().items():
        used[kind] += total - before.get(pid, (kind, 0.0))[1]
    return {kind: round(value / seconds, 2) for kind, value in used.most_common() if value > 0}
