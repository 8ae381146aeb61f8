"""Who seals, and when: a background thread in servers, inline in tests.

`ROUNDS_AUDIT_SEALER` picks the mode. "thread" (the default) wakes one daemon
thread per process after each commit that wrote audit entries, and every
`ROUNDS_AUDIT_SEAL_INTERVAL` seconds besides, so an entry is chained within
about a second of its commit (at most ROUNDS_AUDIT_SEAL_GATHER plus one
batch after it, when the process is busy). "inline" seals in the committing thread, which
tests use to observe the chain deterministically. "process" leaves sealing to
one process of its own, `manage.py audit_sealer` (`run_forever`), for every
serving process: a round there never waits for the interpreter lock a post
needs (docs/audit.md). "off" leaves sealing to `manage.py audit_seal` (run it
from cron if you choose this).

The thread also writes a signed checkpoint of the chain head every
`ROUNDS_AUDIT_CHECKPOINT_INTERVAL` seconds (audit/checkpoints.py).
"""

import logging
import threading
import time

from django.conf import settings
from django.db import close_old_connections

from rounds import metrics
from rounds.daemon import Daemon

logger = logging.getLogger(__name__)

_wake = threading.Event()


def request() -> None:
    mode = getattr(settings, "ROUNDS_AUDIT_SEALER", "thread")
    if mode in ("off", "process"):
        return
    if mode == "inline":
        from audit.actions import seal_all

        seal_all()
        return
    _sealer.ensure()
    _wake.set()


def _run() -> None:
    while True:
        _wake.wait(timeout=settings.ROUNDS_AUDIT_SEAL_INTERVAL)
        # Let commits gather: one seal per batch instead of one per commit, so
        # the sealer never competes with posts for the write lock at their rate.
        time.sleep(settings.ROUNDS_AUDIT_SEAL_GATHER)
        _wake.clear()
        run_round()


_sealer = Daemon("rounds-audit-sealer", _run)


# How often a process's rounds sweep the whole straggler window; in between, a round
# looks above the highest sealed id and at the ids it passed over (audit/stragglers.py).
SWEEP_SECONDS = 60.0
_last_sweep: float | None = None


def run_forever(stop: threading.Event, rounds: int | None = None) -> int:
    """The `process` mode's loop (`manage.py audit_sealer`): a round every
    ROUNDS_AUDIT_SEAL_GATHER seconds until `stop` is set, or `rounds` are done;
    how many ran.

    No commit wakes this process (they happen in the serving processes), so it
    looks every GATHER seconds: an entry is chained as soon as in the thread
    mode, which gathers as long after a commit. An idle round is three indexed
    look-ups.
    """
    done = 0
    while (rounds is None or done < rounds) and not stop.wait(settings.ROUNDS_AUDIT_SEAL_GATHER):
        run_round()
        done += 1
    return done


def run_round() -> None:
    """One round of the thread: seal what waits, then sign the head if a checkpoint is due.

    The first round of a process sweeps the straggler window, then one each SWEEP_SECONDS:
    what an earlier process passed over and never came back for is sealed there. A row
    that cannot be encoded is quarantined by seal_pending, so a failure here is the
    database's (a restart), never one row's.
    """
    from audit.actions import seal_pending
    from audit.checkpoints import write_if_due

    global _last_sweep
    now = time.monotonic()
    sweep = _last_sweep is None or now - _last_sweep >= SWEEP_SECONDS
    try:
        close_old_connections()
        while seal_pending(wait=False, sweep=sweep):
            pass
        if sweep:
            _last_sweep = now
    except Exception:
        # Never content in the log; the next round retries.
        metrics.AUDIT_SEAL_FAILURES.inc()
        logger.exception("audit sealing failed; will retry")
        return
    try:
        write_if_due()
    except Exception:
        metrics.AUDIT_CHECKPOINTS.labels("failed").inc()
        logger.exception("audit checkpoint failed; will retry")
