import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import sealer


class Command(BaseCommand):
    help = (
        "Seal audit entries into the hash chain as they are committed, and write the signed "
        "checkpoints, for every serving process (ROUNDS_AUDIT_SEALER=process). Runs until "
        "SIGTERM or SIGINT; one per deployment."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--rounds", type=int, default=None, help="Stop after this many rounds (tests)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.ROUNDS_AUDIT_SEALER != "process":
            raise CommandError(
                "ROUNDS_AUDIT_SEALER is "
                f"{settings.ROUNDS_AUDIT_SEALER!r}: with it, the serving processes seal "
                "(thread, inline) or cron runs audit_seal (off). Set it to 'process' for "
                "every process of the deployment, this one included."
            )
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
        every = settings.ROUNDS_AUDIT_SEAL_GATHER
        self.stdout.write(f"audit sealer: a round every {every:.2f} s")
        done = sealer.run_forever(stop, options["rounds"])
        self.stdout.write(f"audit sealer: stopped after {done} rounds")
