"""`python -m rounds.serve`: daphne, with a drain on SIGTERM instead of a drop.

Daphne stops its reactor on SIGTERM: every socket goes without a close
frame (clients see 1006, as for a network failure) and posts in flight lose
their acks. Here SIGTERM drains first (chat/lifecycle.py): `/healthz`
answers 503 so the load balancer sends no one new, new sockets are refused,
and the sockets open keep working for `--drain-grace` seconds (1 by
default), long enough for the load balancer's next health check to take the
process out (deploy/haproxy.cfg checks every 0.5 s). Then the posts in
flight are stored and acknowledged (at most `ROUNDS_DRAIN_SECONDS`), every
socket is closed with 4503 ("restarting": reconnect, another process takes
over), and only then does the process stop. Without the grace, clients told
4503 could reconnect before the balancer's next check, reach the draining
process again and be refused (`python -m bench run faults --services`, the
daphne_sigterm phase, measures it). A second SIGTERM, or SIGINT, stops at
once. Other arguments are daphne's.

Before serving, the garbage collector is set for a process that holds
thousands of sockets (`settle_collector`).
"""

import asyncio
import functools
import gc
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server
from twisted.internet import reactor

logger = logging.getLogger("rounds.serve")

DRAIN_GRACE_SECONDS = 1.0

# Allocations between two collections of the youngest generation (CPython's default:
# 700). See settle_collector.
GC_YOUNG_THRESHOLD = 20_000


def settle_collector() -> None:
    """Collect once, freeze what the loaded application holds, and collect the young
    generation less often.

    Why: a socket holds about 180 objects the collector tracks (its consumer, the
    coroutines of the middleware chain, daphne's and autobahn's protocol objects),
    so 5,000 sockets make 900,000, and a full collection stops the process for
    0.3-0.5 s. With CPython's default of 700 allocations, a burst such as one
    event sent to every socket keeps its in-flight frames alive across several
    young collections, which promote them until a full collection starts in the
    middle of the burst. 20,000 lets a burst's objects die by reference count
    first. The application's own objects (modules, models, schemas: about 100,000)
    live as long as the process: frozen, no collection walks them again.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


class DrainingServer(Server):  # type: ignore[misc]  # daphne is untyped
    """Daphne's server, with SIGTERM and SIGINT handled here rather than by Twisted."""

    def __init__(self, *args: Any, drain_grace: float = 0.0, **kwargs: Any) -> None:
        kwargs["signal_handlers"] = False
        super().__init__(*args, **kwargs)
        self.drain_grace = drain_grace
        self.stopping = False
        self.draining: asyncio.Task[None] | None = None

    def run(self) -> None:
        reactor.callWhenRunning(self._install_signal_handlers)
        settle_collector()  # the application is loaded: daphne imported it before run()
        super().run()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_event_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        loop.add_signal_handler(signal.SIGINT, self._stop_now)

    def _on_sigterm(self) -> None:
        if self.stopping:
            self._stop_now()
            return
        self.stopping = True
        logger.info("SIGTERM: draining")
        self.draining = asyncio.ensure_future(self._drain_then_stop())

    async def _drain_then_stop(self) -> None:
        from chat.lifecycle import this_process

        process = this_process()
        try:
            # Out of rotation at the balancer's next check (/healthz answers 503), and no
            # new socket taken; the open ones are closed only after that check.
            process.draining = True
            await asyncio.sleep(self.drain_grace)
            await process.drain()
            await asyncio.sleep(0.2)  # let the close frames leave
        finally:
            self._stop_now()

    def _stop_now(self) -> None:
        if reactor.running:
            reactor.stop()  # type: ignore[misc]  # twisted types its reactor as zope interfaces


class DrainingCommandLine(CommandLineInterface):  # type: ignore[misc]  # daphne is untyped
    server_class: Callable[..., DrainingServer] = DrainingServer

    def __init__(self) -> None:
        super().__init__()
        self.parser.add_argument(
            "--drain-grace",
            type=float,
            default=DRAIN_GRACE_SECONDS,
            help="Seconds between SIGTERM and closing the sockets, /healthz answering 503 "
            "meanwhile: at least the load balancer's health check interval.",
        )

    def run(self, args: list[str]) -> None:
        known, _ = self.parser.parse_known_args(args)
        self.server_class = functools.partial(DrainingServer, drain_grace=known.drain_grace)
        super().run(args)


def main(argv: list[str] | None = None) -> None:
    DrainingCommandLine().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
