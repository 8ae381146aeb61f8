"""The advice timers' scheduler: fires every due `AdviceRequest.due_at` once.

The timers are rows, not sleeps: a restart loses none, and any process may fire
any of them. `run_due` takes the due open requests under a row lock, oldest
first, and moves each on (advice.actions.do_fire) in the same transaction, which
also sets its next timer. On PostgreSQL the lock is `FOR UPDATE SKIP LOCKED`, so
two processes share the due rows without waiting on each other, and a row is
read under its lock, after whatever another process committed: a request fired
elsewhere is no longer due when this one reads it. SQLite has one writer and
Rounds begins its transactions IMMEDIATE, which serialises the same way.

`ROUNDS_SCHEDULER` picks who runs it: "thread" (the default) starts one daemon
thread per server process (rounds/asgi.py); "off" leaves it to
`manage.py run_scheduler`. The thread sleeps until the earliest timer it knows
of, and never longer than ROUNDS_SCHEDULER_POLL_SECONDS, so a timer set by
another process is seen within that bound; one set in this process wakes it.
Each round first asks for the earliest timer (one index read) and takes the due
rows only when there are some.
"""

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Min
from django.utils import timezone

from advice.models import AdviceRequest, Status
from rounds import metrics
from rounds.daemon import Daemon

if TYPE_CHECKING:
    from django.db.models import QuerySet

logger = logging.getLogger(__name__)

BATCH = 20
# What firing reads of a request: its addressee, and what its event shows.
LOADED = ("department", "thread", "requester", "holder", "to_role", "to_user")

_wake = threading.Event()


def due() -> "QuerySet[AdviceRequest]":
    return AdviceRequest.objects.filter(status=Status.OPEN, due_at__isnull=False)


def run_due(now: datetime | None = None, *, batch: int = BATCH) -> int:
    """Fire every timer due at `now` (default: the server's clock at each batch).

    Returns:
        How many fired here (another process may have fired others meanwhile).
    """
    from advice.actions import do_fire

    fired = 0
    while True:
        at = now or timezone.now()
        with transaction.atomic():
            rows = due().filter(due_at__lte=at).order_by("due_at", "pk")
            if connection.features.has_select_for_update_skip_locked:
                rows = rows.select_for_update(skip_locked=True, of=("self",))
            taken = list(rows.select_related(*LOADED)[:batch])
            for request in taken:
                due_at = request.due_at
                step = do_fire(request, at)
                metrics.ADVICE_TIMERS.labels(step.kind).inc()
                if due_at is not None:
                    metrics.ADVICE_TIMER_LATENESS.observe((step.at - due_at).total_seconds())
        fired += len(taken)
        if len(taken) < batch:
            return fired


def next_due() -> datetime | None:
    """The earliest timer still to fire, in any process's requests."""
    found: datetime | None = due().aggregate(first=Min("due_at"))["first"]
    return found


def wake() -> None:
    """A timer was set in this process: let the thread look again at once."""
    _wake.set()


def start() -> None:
    """Start this process's scheduler thread, if ROUNDS_SCHEDULER says so (once)."""
    if settings.ROUNDS_SCHEDULER == "thread":
        _scheduler.ensure()


def _run() -> None:
    while True:
        _wake.clear()
        pause = run_round()
        _wake.wait(timeout=pause)


_scheduler = Daemon("rounds-advice-scheduler", _run)


def run_round() -> float:
    """Fire what is due, then say how long to sleep: until the next timer, at most the
    poll interval. A failure (the database restarting) is logged and retried."""
    poll = settings.ROUNDS_SCHEDULER_POLL_SECONDS
    try:
        close_old_connections()
        upcoming = next_due()
        # The locked read joins what firing needs: planning it alone costs several
        # milliseconds of the database's time, so it runs only when a timer is due.
        if upcoming is not None and upcoming <= timezone.now():
            run_due()
            upcoming = next_due()
    except Exception:
        metrics.ADVICE_SCHEDULER_FAILURES.inc()
        logger.exception("advice scheduler round failed; will retry")
        return poll
    if upcoming is None:
        return poll
    return max(0.0, min(poll, (upcoming - timezone.now()).total_seconds()))


def run_forever() -> None:
    """`manage.py run_scheduler`: the same rounds in the foreground, until interrupted."""
    while True:
        pause = run_round()
        time.sleep(pause)
